"""Self-checking exercises: ``check("N.k", answer)`` in a notebook's check cell.

The convention (CONTRIBUTING.md, "Exercises"): a notebook's exercise cell (tag ``exercise``)
ships a placeholder, ``answer = ...`` or a function/class whose body raises
``NotImplementedError``; the check cell below it (tag ``check``) calls ``check``.

- Placeholder still there (``...``, ``None``, or ``NotImplementedError`` raised while the
  check runs the student's code): prints ``Exercise N.k: not attempted yet`` and the hint,
  and raises nothing, so the shipped notebook runs top to bottom.
- An answer: the exercise's check function tests it. It prints ``Exercise N.k: correct`` or
  raises ``AssertionError`` saying what was expected, what came, and which misconception
  usually gives that wrong value. Messages never print the solution itself.

Each notebook's checks live in ``effnb/exercises/nbNN.py`` and register themselves with
``@exercise("N.k", hint=...)``. Solutions and plausible wrong answers are kept apart, in
``solutions/NN_topic.py``; ``tests/test_exercises.py`` runs every one of them through
its notebook.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Exercise",
    "NotAttempted",
    "build_module",
    "check",
    "exercise",
    "exercises",
    "expect_function",
    "expect_module_class",
    "expect_number",
    "expect_numbers",
    "is_placeholder",
]


class NotAttempted(Exception):
    """Raised inside a check when the answer is still the shipped placeholder."""


@dataclass(frozen=True)
class Exercise:
    id: str  # "N.k": notebook number, then the exercise's number in that notebook
    hint: str  # one hint, printed while the placeholder is still there
    run: Callable[[Any], str | None]  # raises AssertionError on a wrong answer


_REGISTRY: dict[str, Exercise] = {}
_LOADED = False


def exercise(exercise_id: str, *, hint: str) -> Callable[[Callable], Callable]:
    """Register ``fn(answer)`` as the check of exercise ``exercise_id`` ("N.k")."""
    parts = exercise_id.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"exercise id must look like 'N.k' (e.g. '4.1'), got {exercise_id!r}")

    def register(fn: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, hint, fn)
        return fn

    return register


def _load_all() -> None:
    global _LOADED
    if not _LOADED:
        for mod in pkgutil.iter_modules(__path__):
            if mod.name.startswith("nb"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _LOADED = True


def exercises() -> dict[str, Exercise]:
    """Every registered exercise, by id, in notebook order."""
    _load_all()
    key = lambda i: tuple(int(p) for p in i.split("."))  # noqa: E731
    return {i: _REGISTRY[i] for i in sorted(_REGISTRY, key=key)}


def is_placeholder(answer: Any) -> bool:
    """``...`` and ``None`` are the shipped placeholders for values."""
    return answer is ... or answer is None


def check(exercise_id: str, answer: Any) -> None:
    """Check ``answer`` for exercise ``exercise_id`` and print the outcome.

    Prints "not attempted yet" with a hint for a placeholder, "correct" for a right answer;
    a wrong answer raises ``AssertionError`` with a message meant for the student. Returns
    None, so a check cell stores only what it printed.
    """
    table = exercises()
    if exercise_id not in table:
        raise ValueError(f"unknown exercise {exercise_id!r}; the exercises are {list(table)}")
    ex = table[exercise_id]
    try:
        if is_placeholder(answer):
            raise NotAttempted
        note = ex.run(answer)
    except (NotAttempted, NotImplementedError):
        print(f"Exercise {exercise_id}: not attempted yet. Hint: {ex.hint}")
        return
    except AssertionError as exc:
        raise AssertionError(f"Exercise {exercise_id}: not yet. {exc}") from None
    print(f"Exercise {exercise_id}: correct" + (f". {note}" if note else ""))


# Small helpers the per-notebook checks share -------------------------------------------


def expect_function(answer: Any, what: str = "the function itself") -> Callable[..., Any]:
    """``answer`` if it is callable; else AssertionError 'hand in {what}, got ...'."""
    if not callable(answer):
        raise AssertionError(f"hand in {what}, got {answer!r}")
    return answer


def build_module(cls: type, *args: Any, note: str = "", **kwargs: Any) -> Any:
    """The student's ``cls(*args, **kwargs)``, an ``nn.Module``.

    ``NotImplementedError`` passes through (the placeholder: not attempted yet); any other
    error becomes an AssertionError naming the call and the error, then ``note`` (what the
    arguments mean, or the likely cause), so the check cell reports instead of crashing.
    """
    from torch import nn

    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    call = f"{cls.__name__}({', '.join(shown)})"
    try:
        module = cls(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the student's constructor failed: say how
        raise AssertionError(f"{call} raised {type(exc).__name__}: {exc}{note}") from None
    if not isinstance(module, nn.Module):
        raise AssertionError(f"{call} built a {type(module).__name__}, not an nn.Module")
    return module


def expect_numbers(got: Any, names: tuple[str, ...], what: str) -> tuple[float, ...]:
    """``got`` as len(names) floats, e.g. ``expect_numbers(r, ("median_ms", "iqr_ms"), "fn")``;
    anything else (a string, the wrong count, a non-number) is an AssertionError naming them."""
    values: tuple[float, ...] | None
    try:
        values = None if isinstance(got, str) else tuple(float(v) for v in got)
    except (TypeError, ValueError):
        values = None
    if values is None or len(values) != len(names):
        raise AssertionError(
            f"{what} should return ({', '.join(names)}), {len(names)} numbers; got {got!r}"
        )
    return values


def expect_module_class(answer: Any) -> type:
    """``answer`` if it is an ``nn.Module`` subclass (the class, not an instance)."""
    from torch import nn

    if not (isinstance(answer, type) and issubclass(answer, nn.Module)):
        raise AssertionError(f"hand in the class itself (an nn.Module subclass), got {answer!r}")
    return answer


def expect_number(
    got: Any,
    expected: float,
    *,
    what: str,
    rel: float = 0.0,
    abs_tol: float = 0.0,
    wrong: dict[float, str] | None = None,
) -> None:
    """Assert ``got`` is a number equal to ``expected`` (within ``rel``/``abs_tol``).

    ``wrong`` maps the value a known misconception gives to the sentence explaining it, so a
    student who made that mistake reads why (never the right value itself).
    """
    import math

    try:
        value = float(got)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} should be a number, got {got!r}") from None
    if not math.isfinite(value):
        raise AssertionError(f"{what} should be a finite number, got {got!r}")
    tol = max(abs_tol, rel * abs(expected))
    if abs(value - expected) <= tol:
        return
    shown = f"{int(value):,}" if value.is_integer() else f"{value:,.6g}"
    for wrong_value, why in (wrong or {}).items():
        if abs(value - wrong_value) <= max(abs_tol, rel * abs(wrong_value), 1e-9):
            raise AssertionError(f"{what}: {shown} is what you get when {why}")
    direction = "too large" if value > expected else "too small"
    raise AssertionError(f"{what}: {shown} is {direction}")
