"""Argument checks shared by every layer, model and tool in effnb.

Each check raises at entry, before any allocation or timing, with a message that names the
argument, the value it got and what is allowed, so a bad width fails here and not as a
shape error three layers down, and an absurd size fails in milliseconds instead of after
gigabytes. One helper per kind of check:

* numbers: ``check_real`` (finite, in a range), ``check_int``, ``check_multiplier``,
  ``check_probability``, ``check_fraction``, ``check_seconds``, ``check_bool``. Python
  numbers, numpy scalars and 0-d tensors are accepted where a number is; ``bool`` is not.
* the machine: ``check_threads`` (at most ``max_threads()``, a small multiple of the CPUs),
  ``memory_limit`` / ``check_bytes`` (sizes whose tensors would not fit), and
  ``check_forward_fits`` (the activations of one forward pass, counted on the ``meta``
  device before anything is allocated).
* shapes and types: ``check_input_size``, ``check_kernel``, ``check_choice``,
  ``check_instance``, ``check_module``, ``model_dtype``; seeds: ``check_seed``.

Size errors are ``SizeLimitError`` (a ``ValueError``), so callers can add context.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_LAYER_PARAMS",
    "MAX_SECONDS",
    "MAX_SEED",
    "SizeLimitError",
    "check_bool",
    "check_bytes",
    "check_choice",
    "check_forward_fits",
    "check_fraction",
    "check_input_size",
    "check_instance",
    "check_int",
    "check_kernel",
    "check_layer_params",
    "check_module",
    "check_multiplier",
    "check_probability",
    "check_real",
    "check_seconds",
    "check_seed",
    "check_threads",
    "format_bytes",
    "max_threads",
    "memory_limit",
    "model_dtype",
]

DEFAULT_MAX_BYTES = 4 * 2**30  # one forward pass, one dataset, one model's weights
THREADS_PER_CPU = 4  # more threads than 4 per core only queue behind each other
MAX_SECONDS = 600.0  # one latency measurement; longer is a typo, not a benchmark
# The largest conv/linear weight in any registered model is 2,560,000 (EfficientNet-B7's
# classifier); a layer 6.5x that is a width or class count gone wrong, caught before the
# layers before it have allocated more than half a gigabyte.
MAX_LAYER_PARAMS = 2**24
MAX_SEED = 2**63 - 1  # torch.manual_seed's range
# Below this many input bytes (limit / 256) a CNN's activations cannot plausibly reach the
# limit, so ``check_forward_fits`` skips its meta-device pass.
_FORWARD_EXPANSION = 256


class SizeLimitError(ValueError):
    """A size beyond what this machine can do (or beyond any sane use of the course)."""


# --- numbers --------------------------------------------------------------------------------


def _unwrap(value: Any) -> Any:
    """numpy scalars, 0-d numpy arrays and 0-d tensors as Python numbers; anything else as is."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0 and value.dtype != torch.bool and not value.is_complex():
            return value.item()
        return value
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        if getattr(value, "dtype", None) is not None and value.dtype.kind in "iuf":
            return value.item()
    return value


def _number(name: str, value: Any, what: str) -> Any:
    """``value`` as a plain Python real number, or TypeError naming ``name`` and ``what``.

    numpy scalars, 0-d numpy arrays and 0-d real tensors become Python numbers; ``bool``
    (a subclass of int), complex numbers, strings and arrays are refused.
    """
    x = _unwrap(value)
    if isinstance(x, bool) or not isinstance(x, Real):
        if isinstance(value, torch.Tensor):
            got = f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
        else:
            got = f"{value!r} ({type(value).__name__})"
        raise TypeError(f"{name} must be {what}, got {got}")
    try:
        float(x)
    except OverflowError:
        size = (
            f"an integer of {x.bit_length()} bits" if isinstance(x, int) else "too large a number"
        )
        raise ValueError(f"{name} must be {what}, got {size}") from None
    return x


def check_real(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    include_minimum: bool = True,
    include_maximum: bool = True,
) -> float:
    """``value`` as a float if it is a finite real number in the range; raise otherwise."""
    lo = "" if minimum is None else f"{'[' if include_minimum else '('}{minimum}"
    hi = "" if maximum is None else f"{maximum}{']' if include_maximum else ')'}"
    if minimum is not None and maximum is not None:
        what = f"a finite number in {lo}, {hi}"
    elif minimum is not None:
        what = f"a finite number {'>=' if include_minimum else '>'} {minimum}"
    elif maximum is not None:
        what = f"a finite number {'<=' if include_maximum else '<'} {maximum}"
    else:
        what = "a finite number"
    x = _number(name, value, what)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be {what}, got {x}")
    too_low = minimum is not None and (x < minimum if include_minimum else x <= minimum)
    too_high = maximum is not None and (x > maximum if include_maximum else x >= maximum)
    if too_low or too_high:
        raise ValueError(f"{name} must be {what}, got {x}")
    return float(x)


def check_int(
    name: str, value: Any, *, minimum: int = 1, maximum: int | None = None, why: str = ""
) -> int:
    """Return ``value`` if it is an integer in [``minimum``, ``maximum``]; raise otherwise.

    ``why`` explains the maximum in the message (e.g. "4 x the 2 CPUs here").
    """
    original = value
    value = _unwrap(value)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {original!r} ({type(original).__name__})"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        reason = f" ({why})" if why else ""
        raise SizeLimitError(f"{name} must be an integer <= {maximum}{reason}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False (numpy's bool too); raise otherwise."""
    if type(value).__module__ == "numpy" and type(value).__name__ == "bool":
        value = bool(value)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_multiplier(name: str, value: Any, *, maximum: float | None = None) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (and <= ``maximum``)."""
    x = _number(name, value, "a positive number")
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive number, got {x}")
    if maximum is not None and x > maximum:
        raise SizeLimitError(f"{name} must be a positive number <= {maximum}, got {x}")
    return float(x)


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` if it lies in [0, 1); raise otherwise."""
    x = _number(name, value, "a number in [0, 1)")
    if not (math.isfinite(x) and 0.0 <= x < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {x}")
    return float(x)


def check_fraction(name: str, value: Any) -> float:
    """Return ``value`` if it lies strictly between 0 and 1; raise otherwise."""
    x = _number(name, value, "a number in (0, 1)")
    if not (math.isfinite(x) and 0.0 < x < 1.0):
        raise ValueError(f"{name} must be in (0, 1) (exclusive), got {x}")
    return float(x)


def check_seconds(name: str, value: Any, *, maximum: float = MAX_SECONDS) -> float:
    """A positive, finite duration in seconds, at most ``maximum`` (NaN would never end)."""
    x = _number(name, value, "a positive number of seconds")
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {x}")
    if x > maximum:
        raise SizeLimitError(f"{name} must be at most {maximum:g} seconds, got {x}")
    return float(x)


def check_kernel(name: str, value: Any) -> int:
    """Kernel sizes must be odd positive integers so that 'same' padding is (k - 1) // 2."""
    k = check_int(name, value, minimum=1, maximum=1023)
    if k % 2 == 0:
        raise ValueError(f"{name} must be an odd integer (1, 3, 5, 7, ...), got {k}")
    return k


def check_choice(name: str, value: Any, allowed: tuple | list) -> Any:
    """Return ``value`` if it is one of ``allowed``; raise otherwise."""
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value against a set, say
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_module(name: str, value: Any) -> nn.Module:
    """Cost and latency functions take a ``torch.nn.Module``; say so when they get anything else."""
    return check_instance(name, value, nn.Module, "a torch.nn.Module")


def check_instance(name: str, value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is an instance of ``types``; else TypeError
    '{name} must be {what}, got {type name}'. ``what`` says what is allowed in words
    ("a TrainConfig or None", "a path (str or os.PathLike)")."""
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_seed(name: str, value: Any) -> int:
    """A random seed: an integer in [0, ``MAX_SEED``] (what ``torch.manual_seed`` and
    ``numpy.random.default_rng`` both take)."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED, why="torch.manual_seed's range")


# --- the machine ----------------------------------------------------------------------------


def max_threads() -> int:
    """The most threads a measurement may ask for: ``THREADS_PER_CPU`` x ``os.cpu_count()``."""
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def check_threads(name: str, value: Any) -> int:
    """A thread count in [1, ``max_threads()``]."""
    cpus = os.cpu_count() or 1
    return check_int(
        name,
        value,
        minimum=1,
        maximum=max_threads(),
        why=f"{THREADS_PER_CPU} x the {cpus} CPU{'s' if cpus != 1 else ''} of this machine",
    )


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit() -> int:
    """Bytes one tensor-making call may need: ``$EFFNB_MAX_BYTES``, else the smaller of
    ``DEFAULT_MAX_BYTES`` (4 GiB) and half of this machine's physical memory."""
    env = os.environ.get("EFFNB_MAX_BYTES")
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise ValueError(f"EFFNB_MAX_BYTES must be a number of bytes, got {env!r}") from None
        if value <= 0:
            raise ValueError(f"EFFNB_MAX_BYTES must be a positive number of bytes, got {env!r}")
        return value
    physical = _physical_memory()
    return min(DEFAULT_MAX_BYTES, physical // 2) if physical else DEFAULT_MAX_BYTES


def _limit_text(limit: int) -> str:
    source = (
        "$EFFNB_MAX_BYTES"
        if os.environ.get("EFFNB_MAX_BYTES")
        else "the smaller of 4 GiB and half this machine's memory; set EFFNB_MAX_BYTES to change it"
    )
    return f"{format_bytes(limit)} ({source})"


def check_bytes(name: str, value: Any, nbytes: int, what: str, limit: int | None = None) -> None:
    """Raise SizeLimitError if ``nbytes`` (needed for ``what``) exceeds the memory limit."""
    limit = memory_limit() if limit is None else limit
    if nbytes > limit:
        raise SizeLimitError(
            f"{name}={value!r} would need {format_bytes(nbytes)} for {what}, more than the "
            f"limit of {_limit_text(limit)}"
        )


def _allocates_memory() -> bool:
    """False under ``with torch.device('meta')``, where tensors hold no data."""
    return torch.get_default_device().type != "meta"


def check_layer_params(layer: str, params: int) -> None:
    """Refuse to build one layer with more than ``MAX_LAYER_PARAMS`` weights (on a real device)."""
    if params > MAX_LAYER_PARAMS and _allocates_memory():
        raise SizeLimitError(
            f"{layer} would hold {params:,} weights ({format_bytes(4 * params)} as float32), more "
            f"than the {MAX_LAYER_PARAMS:,} one layer may have (6.5x the largest layer of any "
            "registered model): a width multiplier, channel count or class count is far too "
            "large. Build it under `with torch.device('meta')` to count it without allocating."
        )


# --- shapes, dtypes and forward passes -----------------------------------------------------


def check_input_size(
    input_size: Any, in_chans: int = 3, *, batch: int = 1, dtype: torch.dtype | None = None
) -> tuple[int, ...]:
    """One sample's shape from an int (square), (H, W) or (C, H, W); ``in_chans`` fills C.

    The whole input, ``batch`` samples of ``dtype`` (default float32), must fit in
    ``memory_limit()``; the message names ``input_size`` and the limit.
    """
    if isinstance(input_size, bool):
        raise TypeError(
            f"input_size must be an int or a (C, H, W) / (H, W) tuple, got {input_size!r}"
        )
    size = _unwrap(input_size)
    if isinstance(size, Integral) and not isinstance(size, bool):
        side = check_int("input_size", size)
        shape: tuple = (in_chans, side, side)
    else:
        if type(size).__module__ == "numpy" and hasattr(size, "tolist"):
            size = size.tolist()
        if isinstance(size, str | bytes) or not isinstance(size, Sequence | torch.Size):
            raise TypeError(
                "input_size must be an int or a (C, H, W) / (H, W) tuple, "
                f"got {input_size!r} ({type(input_size).__name__})"
            )
        shape = tuple(size)
        if len(shape) == 2:
            shape = (in_chans, *shape)
        try:
            shape = tuple(check_int("input_size", s) for s in shape) if len(shape) == 3 else ()
        except (TypeError, ValueError):
            shape = ()
        if not shape:
            raise ValueError(
                f"input_size must be positive ints, (C, H, W), (H, W) or one int, got {input_size!r}"
            )
    element = torch.empty((), dtype=dtype).element_size() if dtype is not None else 4
    check_bytes(
        "input_size",
        input_size,
        batch * math.prod(shape) * element,
        f"a batch of {batch} input{'s' if batch != 1 else ''} of shape {tuple(shape)}",
    )
    return tuple(shape)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of ``model``'s parameters (of its buffers if it has no parameters;
    float32 if it has neither).

    Buffers do not vote when there are parameters: counters such as thop's float64
    ``total_ops`` ride along any model. Parameters in mixed dtypes (half the layers in
    float16) cannot take one input, so that is an error naming the dtypes.
    """
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if not dtypes:
        dtypes = {b.dtype for b in model.buffers() if b.is_floating_point()}
    if not dtypes:
        return torch.get_default_dtype()
    if len(dtypes) > 1:
        names = sorted(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(
            f"model mixes floating dtypes {names}: convert it to one, e.g. model.float() or "
            "model.half(), before profiling or timing it"
        )
    return dtypes.pop()


def _shape_model(model: nn.Module) -> nn.Module | None:
    """The eager module that computes ``model``'s shapes (None when there is none)."""
    shape_model = getattr(model, "shape_model", None)
    if callable(shape_model):
        model = shape_model()
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    if isinstance(model, torch.jit.ScriptModule):
        return None
    return model


def forward_peak_bytes(model: nn.Module, shape: Sequence[int], dtype: torch.dtype) -> int | None:
    """The largest input + output of any module call in ``model(x)``, for ``x`` of ``shape``.

    Counted on the ``meta`` device (``torch.func.functional_call`` with meta copies of the
    weights), so nothing is allocated and no arithmetic is done. None when the model cannot
    run on meta tensors (data-dependent code, a TorchScript module): the caller goes ahead.
    """
    target = _shape_model(model)
    if target is None:
        return None
    tensors = {
        **{n: torch.empty_like(p, device="meta") for n, p in target.named_parameters()},
        **{n: torch.empty_like(b, device="meta") for n, b in target.named_buffers()},
    }
    peak = 0

    def hook(module: nn.Module, args, out) -> None:
        nonlocal peak
        if isinstance(out, torch.Tensor):
            inp = args[0] if args and isinstance(args[0], torch.Tensor) else None
            size = out.numel() * out.element_size()
            size += inp.numel() * inp.element_size() if inp is not None else 0
            peak = max(peak, size)

    handles = [m.register_forward_hook(hook) for m in target.modules()]
    try:
        x = torch.empty(tuple(shape), dtype=dtype, device="meta")
        with torch.no_grad():
            torch.func.functional_call(target, tensors, (x,), strict=False)
    except Exception:  # noqa: BLE001 - no estimate; the real call reports its own error
        return None
    finally:
        for h in handles:
            h.remove()
    return peak


def check_forward_fits(
    model: nn.Module, shape: Sequence[int], dtype: torch.dtype, *, name: str, value: Any
) -> None:
    """Raise SizeLimitError, naming ``name``=``value``, if one forward pass of ``model`` on an
    input of ``shape`` would hold more than ``memory_limit()`` bytes in one layer.

    Small inputs are let through without counting (see ``_FORWARD_EXPANSION``); larger ones
    are counted with ``forward_peak_bytes`` before anything is allocated.
    """
    limit = memory_limit()
    element = torch.empty((), dtype=dtype).element_size()
    if math.prod(shape) * element * _FORWARD_EXPANSION <= limit:
        return
    param = next(iter(model.parameters()), None)
    if param is not None and param.device.type == "meta":
        return  # a meta model allocates nothing
    peak = forward_peak_bytes(model, shape, dtype)
    if peak is not None:
        check_bytes(
            name, value, peak, f"one layer's input and output in a forward pass of {tuple(shape)}"
        )


# --- callables, generators and sequences of numbers -----------------------------------------


def check_callable(name: str, value: Any) -> Any:
    """``value`` if it can be called (a function, a class, an object with ``__call__``)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r} ({type(value).__name__})")
    return value


def check_generator(name: str, value: Any) -> Any:
    """``value`` if it is a ``numpy.random.Generator`` (``np.random.default_rng(seed)``).

    A seed or the legacy ``RandomState`` is refused: the caller owns one generator and passes
    it along, so that a sequence of draws can be reproduced.
    """
    import numpy as np

    if not isinstance(value, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {value!r} ({type(value).__name__})"
        )
    return value


def check_finite_array(
    name: str,
    values: Any,
    *,
    min_length: int = 1,
    length: int | None = None,
    positive: bool = False,
) -> Any:
    """``values`` as a 1-D float64 numpy array of finite numbers (each > 0 if ``positive``).

    Lists, tuples, numpy arrays and 1-D tensors of real numbers are accepted; strings, ``None``
    entries, nested lists and complex numbers are a TypeError. A wrong length (fewer than
    ``min_length``, or not ``length``), a NaN, an infinity or (with ``positive``) a value <= 0
    is a ValueError naming ``name``, the position and the value.
    """
    import numpy as np

    what = f"a 1-D sequence of finite numbers{' > 0' if positive else ''}"
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be {what}, got {values!r} ({type(values).__name__})")
    try:
        array = np.asarray(values)
        if array.dtype.kind not in "iuf" or array.dtype == bool:
            raise TypeError
        array = array.astype(np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be {what}, got {type(values).__name__} {_short(values)}"
        ) from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be {what}, got an array of shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} must have length {length}, got length {len(array)}")
    if len(array) < min_length:
        raise ValueError(f"{name} must have length >= {min_length}, got length {len(array)}")
    bad = ~np.isfinite(array) | ((array <= 0) if positive else False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be {what}; {name}[{i}] is {array[i]} "
            f"({int(bad.sum())} of {len(array)} values are not)"
        )
    return array


def _short(values: Any, limit: int = 80) -> str:
    text = repr(values)
    return text if len(text) <= limit else text[: limit - 3] + "..."
