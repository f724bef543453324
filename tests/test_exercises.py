"""Every exercise: the shipped placeholder says "not attempted", each wrong answer fails with
its misconception named, and the solution passes, run inside its own notebook.

One kernel per notebook executes the cells in order; at each exercise cell it runs the
placeholder, then every wrong answer from ``solutions/NN_topic.py``, then the solution
(which stays in place for the cells after it), each followed by the check cell.
"""

from __future__ import annotations

import pathlib

import nbformat
import pytest

from effnb.exercises import check, exercises
from effnb.exercises.solutions import notebook_exercises, parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = ROOT / "solutions"


def _text(outputs) -> str:
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o['ename']}: {o['evalue']}")
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_exercise_convention(path):
    nb = nbformat.read(path, as_version=4)
    found = notebook_exercises(nb)
    assert len(found) >= 2, f"{path.name} has {len(found)} exercises; the course wants 2+"
    ids = [ex_id for *_, ex_id in found]
    number = int(path.name[:2])
    assert all(int(i.split(".")[0]) == number for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    registered = exercises()
    assert set(ids) <= set(registered), f"unregistered checks: {set(ids) - set(registered)}"
    answers = parse(SOLUTIONS / f"{path.stem}.py")
    assert set(answers) == set(ids), f"solutions for {sorted(answers)}, exercises {ids}"
    for ex_id in ids:
        assert answers[ex_id].solution, f"{ex_id} has no solution"
        assert answers[ex_id].wrong, f"{ex_id} has no wrong answer to prove the check can fail"
    for ex_cell, _, _ in found:
        cell = nb.cells[ex_cell]
        assert cell.outputs == [], "exercise cells ship without outputs"


def test_every_registered_exercise_is_in_a_notebook():
    in_notebooks = {
        ex_id for p in NOTEBOOKS for *_, ex_id in notebook_exercises(nbformat.read(p, as_version=4))
    }
    assert set(exercises()) == in_notebooks


def test_check_reports_placeholders_and_unknown_ids(capsys):
    some_id = next(iter(exercises()))
    assert check(some_id, ...) is None
    assert f"Exercise {some_id}: not attempted yet. Hint:" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown exercise '99.9'"):
        check("99.9", 1)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_pass_and_wrong_answers_fail_in_the_notebook(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("EFFNB_FIGURES", str(tmp_path / "figures"))
    nb = nbformat.read(path, as_version=4)
    answers = parse(SOLUTIONS / f"{path.stem}.py")
    found = {ex_cell: ex_id for ex_cell, _, ex_id in notebook_exercises(nb)}
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    problems: list[str] = []

    def run(source: str, index: int):
        cell = nbformat.v4.new_code_cell(source)
        try:
            client.execute_cell(cell, index)
        except CellExecutionError:
            pass
        return cell.outputs

    with client.setup_kernel():
        i = 0
        while i < len(nb.cells):
            cell = nb.cells[i]
            if i not in found:
                if cell.cell_type == "code":
                    client.execute_cell(cell, i)  # any error here fails the test
                i += 1
                continue
            ex_id, check_src = found[i], "".join(nb.cells[i + 1].source)
            run(cell.source, i)
            text = _text(run(check_src, i + 1))
            if f"Exercise {ex_id}: not attempted yet" not in text:
                problems.append(f"{ex_id} placeholder: expected 'not attempted yet', got {text!r}")
            for phrase, source in answers[ex_id].wrong:
                run(source, i)
                outs = run(check_src, i + 1)
                errors = [o for o in outs if o.get("output_type") == "error"]
                if not errors or errors[0]["ename"] != "AssertionError":
                    problems.append(
                        f"{ex_id} wrong answer ({phrase}) did not fail: {_text(outs)!r}"
                    )
                elif phrase.lower() not in errors[0]["evalue"].lower():
                    problems.append(
                        f"{ex_id} wrong answer: message {errors[0]['evalue']!r} lacks {phrase!r}"
                    )
            sol_outs = run(answers[ex_id].solution, i)
            if any(o.get("output_type") == "error" for o in sol_outs):
                problems.append(f"{ex_id} solution cell raised: {_text(sol_outs)!r}")
            text = _text(run(check_src, i + 1))
            if f"Exercise {ex_id}: correct" not in text:
                problems.append(f"{ex_id} solution: expected 'correct', got {text!r}")
            i += 2
    assert not problems, "\n".join(problems)
