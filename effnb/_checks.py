"""Argument checks shared by every layer, model and tool in effnb.

Each check raises at construction time with a message that names the argument, the
value it got and what is allowed, so a bad width fails here and not as a shape error
three layers down.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from torch import nn


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_multiplier(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number > 0; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value}")
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` if it lies in [0, 1); raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_kernel(name: str, value: Any) -> int:
    """Kernel sizes must be odd positive integers so that 'same' padding is (k - 1) // 2."""
    k = check_int(name, value, minimum=1)
    if k % 2 == 0:
        raise ValueError(f"{name} must be an odd integer (1, 3, 5, 7, ...), got {k}")
    return k


def check_choice(name: str, value: Any, allowed: tuple | list) -> Any:
    """Return ``value`` if it is one of ``allowed``; raise otherwise."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_module(name: str, value: Any) -> nn.Module:
    """Cost and latency functions take a ``torch.nn.Module``; say so when they get anything else."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def check_input_size(input_size: Any, in_chans: int = 3) -> tuple[int, ...]:
    """One sample's shape from an int (square), (H, W) or (C, H, W); ``in_chans`` fills C."""
    if isinstance(input_size, bool):
        raise TypeError(
            f"input_size must be an int or a (C, H, W) / (H, W) tuple, got {input_size!r}"
        )
    if isinstance(input_size, int):
        return (in_chans, check_int("input_size", input_size), input_size)
    shape = tuple(input_size)
    if len(shape) == 2:
        shape = (in_chans, *shape)
    if not shape or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(
            f"input_size must be positive ints, (C, H, W), (H, W) or one int, got {input_size!r}"
        )
    return shape
