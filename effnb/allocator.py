"""The allocator's share of CPU latency, measured in fresh processes (notebook 08).

A C allocator decides, per process, whether memory freed after one forward pass stays with the
process or goes back to the operating system. glibc's ``malloc`` by default returns the top of
its heap once more than ``M_TRIM_THRESHOLD`` bytes are free there, and serves blocks above
``M_MMAP_THRESHOLD`` with ``mmap`` (given back on ``free``). Both thresholds start at 128 KiB
and move with what the program does (GNU C Library manual, "Malloc Tunable Parameters";
mallopt(3)). A CNN at batch 1 allocates and frees activations of 0.1-5 MB on every call, so
depending on the heap layout a process happens to have, every forward may fault its
activations back in page by page: thousands of minor page faults per call, each a trip into
the kernel that zeroes a 4 KiB page. The allocator is chosen when a process starts, so it is
measured across *fresh* processes, never inside one:

``fresh_process_study(models, envs, processes=...)`` starts ``processes`` new Python processes
per named environment (``sys.executable -m effnb.allocator``, interleaved: default, glibc,
default, glibc, ...), each timing the same models in one interleaved ``compare_latency`` run
and reporting median ms, spread and minor page faults per call. The environments:

* ``"default"``: glibc's defaults (the parent's MALLOC_* variables and preloaded allocators
  removed);
* ``"glibc"``: ``GLIBC_CONFIGURED``, glibc told to keep freed memory (see below);
* ``"jemalloc"``, ``"tcmalloc"``: the library preloaded with ``LD_PRELOAD`` where its file
  exists (PyTorch's CPU performance tuning guide suggests either); skipped, with the reason,
  where it does not.

The values of ``GLIBC_CONFIGURED``, from mallopt(3) and the glibc manual:

* ``MALLOC_MMAP_THRESHOLD_=33554432`` (32 MiB): blocks below it come from the heap, where a
  freed block is reused instead of unmapped and faulted in again. 32 MiB is the largest value
  glibc accepts on a 64-bit system (``DEFAULT_MMAP_THRESHOLD_MAX`` = 4 x 1024 x 1024 x
  sizeof(long)); a larger value is refused and the dynamic default stays. Every activation of
  the course's models at batch 1 (MobileNetV2's largest, 96 x 112 x 112 fp32, is 4.8 MB)
  fits under it. Setting it also disables the dynamic adjustment of both thresholds.
* ``MALLOC_TRIM_THRESHOLD_=1073741824`` (1 GiB): the heap's top is given back to the system
  only when more than 1 GiB of it is free, which no forward pass of the course frees at once;
  a process that really shrinks by more than that still returns it.

Nothing in effnb depends on these being set; ``effnb.bench.allocator_settings`` reports what
a process runs under, and every latency record carries it.
"""

from __future__ import annotations

import argparse
import ctypes.util
import importlib
import itertools
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from effnb._checks import (
    SizeLimitError,
    check_choice,
    check_input_size,
    check_int,
    check_seconds,
    check_threads,
)
from effnb.bench import GLIBC_VARIABLES, allocator_summary

__all__ = [
    "ENVIRONMENTS",
    "GLIBC_CONFIGURED",
    "MAX_PROCESSES",
    "ProcessRecord",
    "Study",
    "environment",
    "exact_mann_whitney",
    "find_library",
    "fresh_process_study",
]

GLIBC_CONFIGURED = {
    "MALLOC_TRIM_THRESHOLD_": str(2**30),  # 1 GiB: never trim the heap during a forward
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),  # 32 MiB: glibc's maximum on 64-bit systems
}
ENVIRONMENTS = ("default", "glibc", "jemalloc", "tcmalloc")
MAX_PROCESSES = 20  # per environment; more is a typo, not a study
MAX_STUDY_SECONDS = 3600.0  # planned timing of one study, start-up not counted
MAX_ROUNDS = 1000
MAX_SAMPLE_SECONDS = 10.0
RESULT_MARK = "EFFNB_ALLOCATOR_RESULT "
_LIBRARIES = {
    "jemalloc": ("libjemalloc.so.2", "libjemalloc.so.1", "libjemalloc.so"),
    "tcmalloc": (
        "libtcmalloc_minimal.so.4",
        "libtcmalloc.so.4",
        "libtcmalloc_minimal.so",
        "libtcmalloc.so",
    ),
}
_LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)
_REFERENCE_PREFIXES = ("torchvision:", "timm:")


def find_library(name: str) -> str | None:
    """Path of the jemalloc or tcmalloc shared library on this machine, or None.

    Looks for the usual file names in the system library folders, then asks
    ``ctypes.util.find_library`` (ldconfig's cache). Linux only: ``LD_PRELOAD`` is how the
    study swaps the allocator, and macOS/Windows have no equivalent it uses.
    """
    check_choice("name", name, tuple(_LIBRARIES))
    if platform.system() != "Linux":
        return None
    for folder in _LIB_DIRS:
        for filename in _LIBRARIES[name]:
            path = pathlib.Path(folder) / filename
            if path.is_file():
                return str(path)
    found = ctypes.util.find_library(name.replace("tcmalloc", "tcmalloc_minimal"))
    if found:
        for folder in _LIB_DIRS:
            path = pathlib.Path(folder) / found
            if path.is_file():
                return str(path)
    return None


def _base_environment() -> dict[str, str]:
    """os.environ without the allocator settings, and offline for any hub library."""
    env = {k: v for k, v in os.environ.items() if k not in GLIBC_VARIABLES}
    env.pop("MALLOC_CONF", None)
    preload = [
        p for p in env.get("LD_PRELOAD", "").split() if "jemalloc" not in p and "tcmalloc" not in p
    ]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def environment(name: str) -> tuple[dict[str, str] | None, str]:
    """(the environment variables a child runs with, a description), or (None, why skipped).

    ``"default"`` is always available; ``"glibc"`` only where the C library is glibc;
    ``"jemalloc"``/``"tcmalloc"`` only where ``find_library`` finds the file.
    """
    check_choice("env", name, ENVIRONMENTS)
    env = _base_environment()
    if name == "default":
        return env, "the C library's allocator with its defaults"
    if name == "glibc":
        if platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc":
            return (
                None,
                f"skipped: not glibc ({platform.system()}), the MALLOC_*_ variables do nothing",
            )
        env.update(GLIBC_CONFIGURED)
        return env, "glibc, " + ", ".join(f"{k}={v}" for k, v in GLIBC_CONFIGURED.items())
    path = find_library(name)
    if path is None:
        where = (
            "LD_PRELOAD is used on Linux only"
            if platform.system() != "Linux"
            else (f"none of {', '.join(_LIBRARIES[name])} in {', '.join(_LIB_DIRS)}")
        )
        return None, f"skipped: {name} is not installed here ({where})"
    env["LD_PRELOAD"] = " ".join([path, *env.get("LD_PRELOAD", "").split()])
    return env, f"{name} via LD_PRELOAD={path}"


@dataclass(frozen=True)
class ProcessRecord:
    """One model timed in one fresh process under one environment."""

    env: str
    process: int  # 0-based index of the process within its environment
    label: str
    model: str  # the spec: an effnb name, "torchvision:NAME" or "timm:NAME"
    median_ms: float  # median of the per-round medians
    iqr_ms: float
    faults_per_call: float | None  # median over rounds of minor page faults per call
    rounds_ms: tuple[float, ...] = field(repr=False)
    allocator: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    max_abs_diff: float | None = None  # against the model it shares weights with, if any

    @property
    def spread_pct(self) -> float:
        return 100.0 * self.iqr_ms / self.median_ms if self.median_ms else float("nan")


def exact_mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided exact p-value of the Mann-Whitney U test that ``a`` and ``b`` come from one
    distribution (no ties assumed; ties count one half).

    U = #{(i, j): a_i < b_j} + #{a_i = b_j} / 2; under the null every split of the pooled values
    into groups of len(a) and len(b) is equally likely, so p = P(|U - mn/2| >= |u - mn/2|),
    counted over all C(m + n, m) splits (Mann and Whitney, Ann. Math. Statist. 18, 1947).
    With 4 processes against 4 the smallest possible p is 2 / 70 = 0.029.
    """
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        raise ValueError(f"both groups need values, got {m} and {n}")
    if math.comb(m + n, m) > 2_000_000:
        raise SizeLimitError(f"exact test over {m} + {n} values is too large to enumerate")

    def u_stat(x: Sequence[float], y: Sequence[float]) -> float:
        return sum((xi < yj) + 0.5 * (xi == yj) for xi in x for yj in y)

    centre = m * n / 2
    observed = abs(u_stat(a, b) - centre)
    pooled = list(a) + list(b)
    extreme = total = 0
    for idx in itertools.combinations(range(m + n), m):
        chosen = set(idx)
        x = [pooled[i] for i in idx]
        y = [pooled[i] for i in range(m + n) if i not in chosen]
        total += 1
        extreme += abs(u_stat(x, y) - centre) >= observed - 1e-9
    return extreme / total


@dataclass(frozen=True)
class Study:
    """Every process's records, the environments skipped (with why) and the failures."""

    records: tuple[ProcessRecord, ...]
    skipped: dict[str, str]  # env -> reason
    failures: tuple[str, ...]  # one line per process that failed (the others are kept)
    envs: tuple[str, ...]
    labels: tuple[str, ...]
    threads: int
    input_shape: tuple[int, ...]

    def select(self, env: str, label: str) -> list[ProcessRecord]:
        return [r for r in self.records if r.env == env and r.label == label]

    def medians(self, env: str, label: str) -> list[float]:
        """The per-process median times (ms) of ``label`` under ``env``, in process order."""
        self._check(env, label)
        return [r.median_ms for r in self.select(env, label)]

    def faults(self, env: str, label: str) -> list[float]:
        self._check(env, label)
        return [r.faults_per_call for r in self.select(env, label) if r.faults_per_call is not None]

    def _check(self, env: str, label: str) -> None:
        if env not in self.envs:
            raise ValueError(f"unknown env {env!r}; this study ran {list(self.envs)}")
        if label not in self.labels:
            raise ValueError(f"unknown label {label!r}; this study timed {list(self.labels)}")

    def verdict(self, label: str, env: str, baseline: str = "default") -> str:
        """One sentence from the data: is ``label`` faster under ``env`` than under
        ``baseline``, across processes? Resolved when the exact two-sided Mann-Whitney test
        over the per-process medians gives p < 0.05 (every process of one environment
        faster than every process of the other, with 4 + 4 processes)."""
        a, b = self.medians(env, label), self.medians(baseline, label)
        if not a or not b:
            return f"{label}: {env} or {baseline} has no finished process to compare"
        ratio = statistics.median(a) / statistics.median(b)
        p = exact_mann_whitney(a, b)
        head = (
            f"{label}, {env} / {baseline}: median of the process medians "
            f"{statistics.median(a):.1f} vs {statistics.median(b):.1f} ms, ratio {ratio:.2f} "
            f"({len(a)} vs {len(b)} fresh processes, exact Mann-Whitney p = {p:.3f})"
        )
        if p >= 0.05:
            return f"{head}: not resolved, these processes cannot tell them apart"
        faster = env if ratio < 1 else baseline
        return f"{head}: {faster} is faster, {max(ratio, 1 / ratio):.2f}x (resolved)"

    def process_ratio_ci(
        self, env: str, process: int, label: str, baseline: str
    ) -> tuple[float, float, float]:
        """(low, median, high) of time(label) / time(baseline) within one process, from its
        interleaved rounds (``effnb.bench.median_ci``: sign-test 95% interval)."""
        from effnb.bench import median_ci

        self._check(env, label)
        self._check(env, baseline)
        recs = {r.label: r for r in self.records if r.env == env and r.process == process}
        if label not in recs or baseline not in recs:
            raise ValueError(f"process {process} of {env} has no records for both labels")
        ratios = [
            x / y for x, y in zip(recs[label].rounds_ms, recs[baseline].rounds_ms, strict=True)
        ]
        return median_ci(ratios)

    def table(self) -> str:
        """Per environment and model: processes, min / median / max of the process medians,
        the median spread within a process, faults per call (min-max), and the allocator the
        children reported (which proves the setting took effect)."""
        head = (
            f"{'env':9s} {'model':22s} {'proc':>4s} {'ms: min / median / max':>24s} "
            f"{'IQR %':>6s} {'faults/call: min-max':>21s}  allocator in the child"
        )
        lines = [head, "-" * len(head)]
        for env in self.envs:
            if env in self.skipped:
                lines.append(f"{env:9s} {self.skipped[env]}")
                continue
            for label in self.labels:
                recs = self.select(env, label)
                if not recs:
                    lines.append(f"{env:9s} {label:22s} no finished process")
                    continue
                ms = [r.median_ms for r in recs]
                spread = statistics.median(r.spread_pct for r in recs)
                faults = [r.faults_per_call for r in recs if r.faults_per_call is not None]
                ftext = f"{min(faults):,.0f}-{max(faults):,.0f}" if faults else "not counted"
                times = f"{min(ms):.1f} / {statistics.median(ms):.1f} / {max(ms):.1f}"
                phrase = recs[0].allocator.get("allocator", "?")
                lines.append(
                    f"{env:9s} {label:22s} {len(recs):>4d} {times:>24s} {spread:>6.1f} "
                    f"{ftext:>21s}  {phrase}"
                )
        where = (
            f"batch 1, input {'x'.join(map(str, self.input_shape))}, {self.threads} "
            f"thread{'s' if self.threads != 1 else ''}, cpu"
        )
        lines.append(f"({where}; one line per environment and model over its fresh processes)")
        lines.extend(f"failed: {f}" for f in self.failures)
        return "\n".join(lines)


def _check_models(models: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(models, str):
        models = [models]
    if isinstance(models, Mapping):
        specs = dict(models)
    elif isinstance(models, Sequence):
        specs = {m: m for m in models}
    else:
        raise TypeError(
            f"models must be a list of names or a mapping label -> name, got {models!r}"
        )
    if not specs:
        raise ValueError("models is empty: give at least one model name")
    from effnb.models import list_models

    known = list_models()
    for label, spec in specs.items():
        if not isinstance(label, str) or not isinstance(spec, str):
            raise TypeError(f"models' labels and names must be strings, got {label!r}: {spec!r}")
        if spec.startswith(_REFERENCE_PREFIXES):
            if not spec.split(":", 1)[1]:
                raise ValueError(f"models[{label!r}] = {spec!r} names no model after the prefix")
        elif spec not in known:
            raise ValueError(
                f"models[{label!r}] = {spec!r} is not an effnb model ({', '.join(known)}) nor "
                f"'torchvision:NAME' / 'timm:NAME'"
            )
    return specs


def fresh_process_study(
    models: Mapping[str, str] | Sequence[str] = ("mobilenet_v2",),
    envs: Sequence[str] = ("default", "glibc"),
    *,
    processes: int = 3,
    input_size: int = 224,
    threads: int | None = None,
    rounds: int = 5,
    min_run_time: float = 0.1,
    warmup: int = 3,
    timeout: float = 120.0,
    same_weights: Mapping[str, str] | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> Study:
    """Time ``models`` in ``processes`` fresh Python processes under each of ``envs``.

    ``models``: effnb names, or ``{label: name}`` where a name may also be
    ``"torchvision:NAME"`` / ``"timm:NAME"`` (imported in the child; a process without them
    fails and is reported). All models of a process are timed in one interleaved
    ``effnb.compare_latency`` run of ``rounds`` rounds of ``min_run_time`` seconds, at batch 1
    and ``threads`` threads (default: ``torch.get_num_threads()`` here). ``same_weights``
    maps an effnb label to a reference label whose weights it loads
    (``effnb.models.weights.load_reference_state_dict``); the child reports the largest
    output difference. Processes run one at a time, environments interleaved (default,
    glibc, default, glibc, ...), each with ``timeout`` seconds. An environment that cannot
    run here is skipped with its reason (printed when ``verbose``); a process that fails or
    times out is recorded in ``Study.failures`` and the others are kept. All arguments are
    checked before any process starts.
    """
    import torch

    specs = _check_models(models)
    if isinstance(envs, str) or not isinstance(envs, Sequence) or not envs:
        raise TypeError(f"envs must be a non-empty list of {list(ENVIRONMENTS)}, got {envs!r}")
    for e in envs:
        check_choice("envs", e, ENVIRONMENTS)
    if len(set(envs)) != len(envs):
        raise ValueError(f"envs lists an environment twice: {list(envs)}")
    processes = check_int("processes", processes, maximum=MAX_PROCESSES)
    threads = check_threads("threads", threads if threads is not None else torch.get_num_threads())
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    min_run_time = check_seconds("min_run_time", min_run_time, maximum=MAX_SAMPLE_SECONDS)
    warmup = check_int("warmup", warmup, minimum=0, maximum=1000)
    timeout = check_seconds("timeout", timeout)
    seed = check_int("seed", seed, minimum=0)
    shape = check_input_size(input_size, 3)
    pairs = dict(same_weights or {})
    for ours, ref in pairs.items():
        if ours not in specs or ref not in specs:
            raise ValueError(
                f"same_weights {ours!r} -> {ref!r}: both must be labels of models {list(specs)}"
            )
        if specs[ours].startswith(_REFERENCE_PREFIXES):
            raise ValueError(f"same_weights: {ours!r} must be an effnb model, got {specs[ours]!r}")
    planned = len(envs) * processes * rounds * len(specs) * min_run_time
    if planned > MAX_STUDY_SECONDS:
        raise SizeLimitError(
            f"{len(envs)} envs x {processes} processes x {rounds} rounds x {len(specs)} models "
            f"x {min_run_time:g} s would time for {planned:,.0f} s, more than {MAX_STUDY_SECONDS:,.0f} s"
        )
    runnable: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    for e in envs:
        env, why = environment(e)
        if env is None:
            skipped[e] = why
            if verbose:
                print(f"{e}: {why}")
        else:
            runnable[e] = env
    job = {
        "models": specs,
        "same_weights": pairs,
        "input_shape": list(shape),
        "threads": threads,
        "rounds": rounds,
        "min_run_time": min_run_time,
        "warmup": warmup,
        "seed": seed,
    }
    records: list[ProcessRecord] = []
    failures: list[str] = []
    names = list(runnable)
    for i in range(processes):
        for e in names[i % len(names) :] + names[: i % len(names)] if names else []:
            start = time.perf_counter()
            result, error = _run_child(job, runnable[e], timeout)
            if error is not None:
                failures.append(f"{e} process {i}: {error}")
                if verbose:
                    print(f"{e} process {i}: FAILED: {error}")
                continue
            assert result is not None
            for label, r in result["records"].items():
                records.append(
                    ProcessRecord(
                        env=e,
                        process=i,
                        label=label,
                        model=specs[label],
                        median_ms=r["median_ms"],
                        iqr_ms=r["iqr_ms"],
                        faults_per_call=r["faults_per_call"],
                        rounds_ms=tuple(r["rounds_ms"]),
                        allocator=result["allocator"],
                        max_abs_diff=r.get("max_abs_diff"),
                    )
                )
            if verbose:
                took = time.perf_counter() - start
                summary = ", ".join(
                    f"{label} {r['median_ms']:.1f} ms" for label, r in result["records"].items()
                )
                print(f"{e} process {i} ({took:.0f} s): {summary}")
    return Study(
        records=tuple(records),
        skipped=skipped,
        failures=tuple(failures),
        envs=tuple(envs),
        labels=tuple(specs),
        threads=threads,
        input_shape=tuple(shape),
    )


def _run_child(job: dict, env: dict[str, str], timeout: float) -> tuple[dict | None, str | None]:
    """Run one child; (its result, None) or (None, what went wrong)."""
    cmd = [sys.executable, "-m", "effnb.allocator", "--child", json.dumps(job)]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s (killed)"
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
        return None, f"exit code {done.returncode}: {tail}"
    return json.loads(lines[-1][len(RESULT_MARK) :]), None


def _build(spec: str):
    """An eval-mode model from its spec (in the child). torchvision and timm are imported by
    name: the project does not depend on them (a reference venv has them)."""
    if spec.startswith("torchvision:"):
        models = importlib.import_module("torchvision.models")
        return getattr(models, spec.split(":", 1)[1])(weights=None).eval()
    if spec.startswith("timm:"):
        timm = importlib.import_module("timm")
        return timm.create_model(spec.split(":", 1)[1], pretrained=False).eval()
    from effnb.models import create_model

    return create_model(spec).eval()


def _child(job: dict) -> dict:
    """Build the models, time them in one interleaved run, return what the parent records."""
    import torch

    from effnb.bench import allocator_settings, compare_latency
    from effnb.models.weights import load_reference_state_dict

    torch.manual_seed(job["seed"])
    torch.set_num_threads(job["threads"])
    models = {label: _build(spec) for label, spec in job["models"].items()}
    shape = tuple(job["input_shape"])
    diffs: dict[str, float] = {}
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(job["seed"]))
    for ours, ref in job["same_weights"].items():
        load_reference_state_dict(models[ours], models[ref].state_dict())
        with torch.inference_mode():
            diffs[ours] = float((models[ours](x) - models[ref](x)).abs().max())
    run = compare_latency(
        models,
        shape,
        threads=job["threads"],
        rounds=job["rounds"],
        min_run_time=job["min_run_time"],
        warmup=job["warmup"],
    )
    return {
        "allocator": allocator_settings(),
        "summary": allocator_summary(),
        "records": {
            label: {
                "median_ms": rec.median_ms,
                "iqr_ms": rec.iqr_ms,
                "faults_per_call": rec.faults_per_call,
                "rounds_ms": list(run.rounds[label]),
                "max_abs_diff": diffs.get(label),
            }
            for label, rec in run.records.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="effnb allocator study (child process)")
    parser.add_argument("--child", required=True, help="the job, as JSON (from the parent)")
    args = parser.parse_args(argv)
    result = _child(json.loads(args.child))
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
