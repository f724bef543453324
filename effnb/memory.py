"""Peak activation memory of one inference forward pass on CPU: measured and estimated.

Two measurements, because "memory" means two things:

* ``method="tensors"`` counts the bytes of every tensor storage the forward creates, from
  the moment an op returns it until the last Python reference to it (and to its views)
  goes away. It hooks into the dispatcher with a ``TorchDispatchMode`` (every aten op of
  the forward passes through it) and a ``weakref.finalize`` per returned tensor. This is
  the activation memory the model's code holds; it is deterministic and exactly what a
  hand count gives (a single conv: B * C_out * H_out * W_out * 4 bytes).
* ``method="allocator"`` sums the allocation and free events of the CPU allocator,
  recorded by ``torch.profiler`` with ``profile_memory=True``. It also sees what kernels
  allocate internally (oneDNN reorders of weights and inputs, im2col buffers), so it is
  larger and depends on the backend a convolution picks.

Both exclude memory alive before the forward (weights, the input) and report the peak
*during* the forward. ``peak_activation_bytes`` adds the input back, to be comparable
with ``effnb.costs.profile(...).peak_activation_bytes`` (the max over layers of
input + output, a lower bound). ``estimate_peak_bytes`` refines that bound by adding what
eager PyTorch keeps alive around a layer: the inputs of every enclosing module call
(held by the caller's frame) and outputs a block still needs (a shortcut). ``benchmarks/memory.py``
compares the three.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from effnb._checks import (
    check_choice,
    check_forward_fits,
    check_input_size,
    check_int,
    check_module,
    model_dtype,
)
from effnb.layers import GhostBottleneck

__all__ = [
    "MemoryReport",
    "estimate_peak_bytes",
    "measure_peak_bytes",
    "memory_report",
    "peak_activation_bytes",
]

METHODS = ("tensors", "allocator")


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class _LiveTensorBytes(TorchDispatchMode):
    """Live bytes of the storages created by ops run under this mode, and their peak."""

    def __init__(self, preexisting: set[int]) -> None:
        super().__init__()
        self.preexisting = preexisting
        self.refs: dict[int, int] = {}  # storage data_ptr -> live tensors seen on it
        self.sizes: dict[int, int] = {}  # storage data_ptr -> bytes
        self.live = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            self.live -= self.sizes.pop(key)

    def _track(self, t: torch.Tensor) -> None:
        key = _storage_key(t)
        if key == 0 or key in self.preexisting:  # empty tensor, or a view of weights/input
            return
        if key not in self.refs:
            self.refs[key] = 0
            self.sizes[key] = t.untyped_storage().nbytes()
            self.live += self.sizes[key]
            self.peak = max(self.peak, self.live)
        self.refs[key] += 1
        weakref.finalize(t, self._release, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out


def _allocator_peak(model: nn.Module, x: torch.Tensor) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        y = model(x)
    del y
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()  # > 0 allocation, < 0 free
        peak = max(peak, live)
    return peak


def _check_input(model: nn.Module, x: torch.Tensor) -> None:
    """``x`` is a tensor of the model's dtype whose forward pass fits in memory."""
    check_module("model", model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    dtype = model_dtype(model)
    if x.is_floating_point() and x.dtype != dtype:
        raise TypeError(
            f"x has dtype {x.dtype} but the model's weights are {dtype}: pass x.to({dtype}) "
            "(memory is measured in the model's own precision)"
        )
    check_forward_fits(model, tuple(x.shape), x.dtype, name="x.shape", value=tuple(x.shape))


def measure_peak_bytes(model: nn.Module, x: torch.Tensor, method: str = "tensors") -> int:
    """Peak bytes allocated during ``model(x)`` in eval mode under ``torch.inference_mode``.

    Memory alive before the call (weights, buffers, ``x``) is not counted; the output is.
    ``method``: ``"tensors"`` (storages of op outputs, exact and backend-independent) or
    ``"allocator"`` (CPU allocator events from ``torch.profiler``, includes kernel
    scratch). See the module docstring. ``x`` must have the model's dtype; an input whose
    forward pass would not fit in ``effnb._checks.memory_limit()`` fails before it runs.
    """
    check_choice("method", method, METHODS)
    _check_input(model, x)
    model.eval()
    with torch.inference_mode():
        if method == "allocator":
            return _allocator_peak(model, x)
        preexisting = {_storage_key(t) for t in (*model.parameters(), *model.buffers(), x)}
        mode = _LiveTensorBytes(preexisting)
        with mode:
            y = model(x)
        peak = mode.peak
        del y
    return peak


def peak_activation_bytes(model: nn.Module, x: torch.Tensor, method: str = "tensors") -> int:
    """``measure_peak_bytes`` plus the input's bytes: the peak including the input, the
    quantity ``effnb.costs.profile(...).peak_activation_bytes`` bounds from below."""
    return measure_peak_bytes(model, x, method) + x.untyped_storage().nbytes()


def estimate_peak_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Estimated peak activation bytes (input included) from the module call structure.

    In eager PyTorch a module's input stays alive while the module runs: the caller's frame
    (or ``nn.Sequential``'s loop variable) still refers to it. So at any module call the
    live set is: this call's input and output, plus the input of every enclosing call,
    plus what a block computed earlier and still needs (GhostBottleneck's shortcut output,
    computed before its main path). Storages are counted once (an in-place activation's
    output is its input). The estimate is the max over calls of that live set.
    ``effnb.costs`` takes the max of input + output alone: a lower bound that misses the
    enclosing inputs (MobileNetV2: the stem output, held by the caller of ``stages``, and
    the block input sit beside the 96-channel expansion at 112x112).
    """
    _check_input(model, x)
    shape_model = getattr(model, "shape_model", None)
    if callable(shape_model):  # a DeployedModel: its trace runs no hooks, its eager copy does
        model = shape_model()
    frames: list[list[torch.Tensor]] = []  # per open call: its input, then values it holds
    shortcut_modules = {m.shortcut for m in model.modules() if isinstance(m, GhostBottleneck)}
    peak = 0

    def live_bytes(tensors: list[torch.Tensor]) -> int:
        seen = {_storage_key(t): t.untyped_storage().nbytes() for t in tensors}
        return sum(seen.values())

    def pre(module: nn.Module, args) -> None:
        frames.append([a for a in args[:1] if isinstance(a, torch.Tensor)])

    def post(module: nn.Module, args, out) -> None:
        nonlocal peak
        frames.pop()
        if isinstance(out, torch.Tensor):
            held = [t for frame in frames for t in frame]
            peak = max(peak, live_bytes([*args[:1], out, *held]))
            if module in shortcut_modules and frames:
                frames[-1].append(out)  # the bottleneck keeps it until the final add

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    try:
        with torch.inference_mode():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return peak


@dataclass(frozen=True)
class MemoryReport:
    """Measured and estimated peaks (bytes, input included) of one model at one input."""

    model: str
    input_shape: tuple[int, ...]
    measured_tensors: int
    measured_allocator: int
    cost_model: int  # effnb.costs: max over layers of input + output
    estimate: int  # estimate_peak_bytes: + what enclosing blocks hold


def memory_report(model: nn.Module, input_size: int = 224, batch: int = 1) -> MemoryReport:
    """Both measurements and both estimates for ``model`` on a (batch, C, S, S) input in the
    model's dtype."""
    from effnb.costs import profile

    check_module("model", model)
    size = check_int("input_size", input_size)
    batch = check_int("batch", batch)
    dtype = model_dtype(model)
    shape = check_input_size(size, getattr(model, "in_chans", 3), batch=batch, dtype=dtype)
    check_forward_fits(model, (batch, *shape), dtype, name="input_size", value=input_size)
    x = torch.randn(batch, *shape, dtype=dtype)
    return MemoryReport(
        model=getattr(model, "name", type(model).__name__),
        input_shape=tuple(x.shape),
        measured_tensors=peak_activation_bytes(model, x, "tensors"),
        measured_allocator=peak_activation_bytes(model, x, "allocator"),
        cost_model=profile(model, size, batch=batch).peak_activation_bytes,
        estimate=estimate_peak_bytes(model, x),
    )
