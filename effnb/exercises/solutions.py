"""Solutions kept apart from the notebooks, and the solved edition for instructors.

Read a solutions file: blocks headed ``# %% N.k solution`` or ``# %% N.k wrong: <text>``.

``<text>`` after ``wrong:`` is a phrase the check's AssertionError must contain (the
misconception it names), compared case-insensitively.
"""

from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass, field

HEADER = re.compile(r"^# %% (?P<id>\d+\.\d+) (?:(?P<sol>solution)|wrong: (?P<wrong>.+?))\s*$")


@dataclass
class Answers:
    solution: str | None = None
    wrong: list[tuple[str, str]] = field(default_factory=list)  # (phrase, source)


def parse(path: pathlib.Path) -> dict[str, Answers]:
    """Exercise id -> its solution source and its wrong answers, in file order."""
    out: dict[str, Answers] = {}
    current: tuple[str, str | None] | None = None
    lines: list[str] = []

    def flush() -> None:
        if current is None:
            return
        ex_id, phrase = current
        source = "\n".join(lines).strip("\n") + "\n"
        answers = out.setdefault(ex_id, Answers())
        if phrase is None:
            if answers.solution is not None:
                raise ValueError(f"{path.name}: exercise {ex_id} has two solutions")
            answers.solution = source
        else:
            answers.wrong.append((phrase, source))

    for line in path.read_text().splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            current = (m["id"], None if m["sol"] else m["wrong"])
            lines = []
        elif line.startswith("# %%"):
            raise ValueError(f"{path.name}: malformed block header {line!r}")
        elif current is not None:
            lines.append(line)
    flush()
    return out


def notebook_exercises(nb) -> list[tuple[int, int, str]]:
    """(exercise cell index, check cell index, id) for each exercise of a notebook.

    Raises ValueError when the convention is broken: an ``exercise`` cell not followed by a
    ``check`` cell, or a check cell that does not call ``check("N.k", ...)``.
    """
    found = []
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if "exercise" not in tags:
            continue
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if nxt is None or "check" not in nxt.get("metadata", {}).get("tags", []):
            raise ValueError(f"exercise cell {i} is not followed by a cell tagged 'check'")
        m = re.search(r"check\(\s*[\"'](\d+\.\d+)[\"']", "".join(nxt["source"]))
        if not m:
            raise ValueError(f"check cell {i + 1} does not call check('N.k', ...)")
        found.append((i, i + 1, m[1]))
    return found


def solved(nb, answers: dict[str, Answers]):
    """A copy of ``nb`` with every exercise cell's placeholder replaced by its solution."""
    import copy

    out = copy.deepcopy(nb)
    for ex_cell, _, ex_id in notebook_exercises(out):
        solution = answers[ex_id].solution if ex_id in answers else None
        if solution is None:
            raise ValueError(f"no solution for exercise {ex_id}")
        out["cells"][ex_cell]["source"] = solution.rstrip("\n")
        out["cells"][ex_cell]["outputs"] = []
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m effnb.exercises.solutions [--execute] OUT``: write solved notebooks to OUT.

    Reads ``notebooks/NN_topic.ipynb`` and ``solutions/NN_topic.py`` from the working
    directory (the project root); with ``--execute`` runs each solved notebook too.
    """
    import argparse

    import nbformat

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--execute", action="store_true")
    args = parser.parse_args(argv)
    root = pathlib.Path.cwd()
    args.out.mkdir(parents=True, exist_ok=True)
    # the solved run must not rewrite the course's figures/
    os.environ.setdefault("EFFNB_FIGURES", str((args.out / "figures").resolve()))
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if not notebook_exercises(nb):
            continue
        sol = solved(nb, parse(root / "solutions" / f"{path.stem}.py"))
        if args.execute:
            from nbclient import NotebookClient

            NotebookClient(
                sol, timeout=900, resources={"metadata": {"path": str(path.parent)}}
            ).execute()
        nbformat.write(sol, args.out / path.name)
        print(f"wrote {args.out / path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
