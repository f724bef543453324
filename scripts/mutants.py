"""Mutation testing of effnb, one module at a time, with results kept between runs (issue 16).

    python scripts/mutants.py                       # every module in [tool.mutmut] only_mutate
    python scripts/mutants.py effnb/costs.py        # one module (make mutants MODULE=...)
    python scripts/mutants.py --rerun effnb/costs.py   # forget its results, test every mutant
    python scripts/mutants.py --table               # only print the table of stored results
    python scripts/mutants.py --table --check       # ... and exit 1 if a module is below 90%

It drives mutmut 3.8 (configured in pyproject.toml, [tool.mutmut]), which copies effnb/ and
tests/ into mutants/, writes every mutant of a function into the copy behind a switch, maps each
unit test to the functions it calls (one "stats" run, cached in mutants/), then runs, for each
mutant, the tests that call its function; a failing test kills it.

What this script adds to ``mutmut run``:

- one module per run, in a subprocess of its own, and only the tests listed for that module in
  ``effnb_tests`` (a mutant of ``check_int`` is otherwise run against every test that validates
  an argument); ``effnb_functions`` restricts a module to some of its functions (``deploy.py``:
  the BatchNorm folding);
- results kept: a killed mutant stays killed until its function changes (mutmut then makes it
  anew); survivors, timeouts and untested mutants are run again each time, so a new test shows;
- the score counts the reviewed equivalent mutants of ``tests/mutants_equivalent.txt`` (one
  ``mutant-name  reason`` a line) as neither killed nor survived:
  score = killed / (total - equivalent). A timeout is not counted as killed (on a loaded
  machine it is more often a slow run than a mutant that hangs): it is run again next time;
- the table: module, mutants, killed, survived, timeout, equivalent, score, and the survivors
  that still need a test (``mutmut show NAME``, run in this directory, prints one's diff).

Adding a module (``only_mutate``, ``effnb_tests`` and the test list in pyproject.toml): mutmut
3.8 keeps two caches that do not notice, so clear them first. It re-mutates a source only when
its copy in ``mutants/`` is older (delete ``mutants/effnb/<module>.py`` if it holds no
``__mutmut_`` functions), and re-maps tests to functions only for new or changed test files
(move ``mutants/mutmut-stats.json`` aside so the stats run maps every listed test anew). A
change to the test list also resets mutmut's stored verdicts of the other modules: keep a copy
of their ``mutants/**/*.meta`` files and put back the verdicts of functions whose source hash
is unchanged, or run them again.

It relies on two internals of mutmut 3.8 (``collect_source_file_mutation_data`` and
``collect_or_load_stats`` of ``mutmut.__main__``), wrapped, not copied; a mutmut without them
stops this script with a message (the dev extra should say ``mutmut>=3.8,<4``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "tests" / "mutants_equivalent.txt"
# mutmut's exit-code classes (mutmut/stats.py): 1 and 3 are failing tests, 0 a pass.
KILLED, SURVIVED = {1, 3}, {0}
TIMEOUT = {36, -24, 24, 152, 255}
RERUN = SURVIVED | TIMEOUT | {None, 33, 5, 35, -9, -11, 2}  # anything not a kill is tried again


def _settings() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]


def _module_name(path: str) -> str:
    """effnb/models/weights.py -> effnb.models.weights (mutmut's prefix of a mutant's name)."""
    return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def _in_scope(mutant: str, module: str, functions: list[str] | None) -> bool:
    """True when ``mutant`` belongs to ``module`` (and to one of ``functions``, if given)."""
    prefix = _module_name(module) + "."
    if not mutant.startswith(prefix):
        return False
    key = mutant[len(prefix) :].partition("__mutmut_")[0]  # x_name or xǁClassǁmethod
    if "." in key:  # a submodule's mutant
        return False
    if functions is None:
        return True
    name = key.removeprefix("x_").split("ǁ")[-1]
    return name in functions


def load_equivalent(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """mutant name -> the reviewer's reason, from ``name  reason`` lines (# starts a comment)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if "__mutmut_" not in name or not reason.strip():
            raise SystemExit(f"{path}:{number}: expected 'mutant-name  reason', got {raw!r}")
        out[name] = reason.strip()
    return out


def _results(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / (module + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text("utf-8"))["exit_code_by_key"]


def run_one(module: str, rerun: bool, max_children: int) -> int:
    """Run mutmut on ``module`` in this process (called in a subprocess by ``main``)."""
    os.chdir(ROOT)
    settings = _settings()
    tests = settings.get("effnb_tests", {}).get(module)
    if tests is None:
        raise SystemExit(f"no tests listed for {module} in [tool.mutmut] effnb_tests")
    functions = settings.get("effnb_functions", {}).get(module)
    allowed = {t.split("::")[0] for t in tests}

    import mutmut.__main__ as mm
    from mutmut.state import state

    for needed in ("collect_source_file_mutation_data", "collect_or_load_stats", "cli"):
        if not hasattr(mm, needed):
            raise SystemExit(f"this mutmut has no mutmut.__main__.{needed}: use mutmut 3.8")

    original_collect = mm.collect_source_file_mutation_data
    original_stats = mm.collect_or_load_stats

    def collect(*, mutant_names):
        mutants, by_path = original_collect(mutant_names=mutant_names)
        chosen = [
            (m, name, result)
            for m, name, result in mutants
            if _in_scope(name, module, functions) and (rerun or result in RERUN)
        ]
        if not chosen:
            print(f"{module}: every mutant already has a verdict (--rerun tests them again)")
            raise SystemExit(0)
        print(f"{module}: testing {len(chosen)} of {len(mutants)} mutants")
        return chosen, by_path

    def stats(runner, **kwargs):
        original_stats(runner, **kwargs)
        prefix = _module_name(module) + "."
        table = state().tests_by_mangled_function_name
        for key in list(table):
            if key.startswith(prefix):
                table[key] = {t for t in table[key] if t.split("::")[0] in allowed}

    mm.collect_source_file_mutation_data = collect
    mm.collect_or_load_stats = stats
    pattern = _module_name(module) + ".*"
    try:
        mm.cli.main(["run", "--max-children", str(max_children), pattern], standalone_mode=False)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def table(modules: list[str]) -> tuple[str, bool]:
    """The score table from the stored results, and whether every module reached 90%."""
    functions_of = _settings().get("effnb_functions", {})
    equivalent = load_equivalent()
    labels = {
        module: module + (f" ({', '.join(f)})" if (f := functions_of.get(module)) else "")
        for module in modules
    }
    width = max(len("module"), *map(len, labels.values()))
    head = (
        f"{'module':{width}s} {'mutants':>7s} {'killed':>6s} {'survived':>8s} {'timeout':>7s} "
        f"{'untested':>8s} {'equiv.':>6s} {'score':>7s}"
    )
    lines = [head, "-" * len(head)]
    survivors: list[str] = []
    all_good = True
    for module in modules:
        functions = functions_of.get(module)
        results = {k: v for k, v in _results(module).items() if _in_scope(k, module, functions)}
        killed = sum(v in KILLED for v in results.values())
        timeout = sum(v in TIMEOUT for v in results.values())
        survived = [k for k, v in results.items() if v in SURVIVED]
        untested = sum(v not in KILLED | TIMEOUT | SURVIVED for v in results.values())
        equiv = [k for k in survived if k in equivalent]
        stale = [k for k in equivalent if k in results and results[k] not in SURVIVED]
        survivors += [k for k in survived if k not in equivalent]
        judged = len(results) - len(equiv)
        score = killed / judged if judged else float("nan")
        all_good &= bool(judged) and score >= 0.9 and not untested
        lines.append(
            f"{labels[module]:{width}s} {len(results):7d} {killed:6d} {len(survived):8d} {timeout:7d} "
            f"{untested:8d} {len(equiv):6d} {100 * score:6.1f}%"
        )
        for name in stale:
            lines.append(f"    listed as equivalent but not a survivor: {name}")
    lines.append("score = killed / (mutants - equivalent); target >= 90%")
    if survivors:
        lines.append(f"survivors without a test or a reviewed reason ({len(survivors)}):")
        lines += [f"    {name}" for name in sorted(survivors)]
    return "\n".join(lines), all_good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="effnb/....py paths (default: only_mutate)")
    parser.add_argument("--rerun", action="store_true", help="test every mutant again")
    parser.add_argument("--table", action="store_true", help="print the stored results only")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutants (2)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a module scores below 90%% (or is untested)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one module here
    args = parser.parse_args(argv)
    if args.one:
        return run_one(args.one, args.rerun, args.max_children)

    known = _settings()["only_mutate"]
    modules = args.modules or known
    for module in modules:
        if module not in known:
            parser.error(f"{module!r} is not in [tool.mutmut] only_mutate: {known}")
    if not args.table:
        for module in modules:
            start = time.monotonic()
            command = [sys.executable, __file__, "--one", module, "--max-children"]
            command += [str(args.max_children)] + (["--rerun"] if args.rerun else [])
            # one thread: no OpenMP pool for the forked mutant runs to inherit (see pyproject)
            env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
            print(f"{module}: mutmut finished with {code} in {time.monotonic() - start:.0f} s")
            if code:
                return code
    text, all_good = table(modules)
    print(text)
    return 1 if args.check and not all_good else 0


if __name__ == "__main__":
    sys.exit(main())
