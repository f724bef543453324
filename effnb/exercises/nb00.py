"""Checks for notebook 00 (counting and timing)."""

from __future__ import annotations

import math
import statistics
import time

import torch
from torch import nn

from effnb.costs import profile
from effnb.exercises import exercise, expect_function, expect_number, expect_numbers
from effnb.models import create_model

# --- 0.1: one strided depthwise conv on an odd, non-square map ----------------------------

_K, _C, _H, _W = 5, 96, 57, 43  # nn.Conv2d(96, 96, 5, stride=2, padding=2, groups=96)


def _dw_macs(h_out: int, w_out: int, groups: int = _C) -> int:
    return _K * _K * (_C // groups) * _C * h_out * w_out


@exercise("0.1", hint="k*k*(C_in/groups)*C_out*H_out*W_out, with H_out = (H + 2p - k) // s + 1.")
def strided_depthwise_macs(answer) -> str:
    h_out, w_out = (_H + 4 - _K) // 2 + 1, (_W + 4 - _K) // 2 + 1
    right = _dw_macs(h_out, w_out)
    expect_number(
        answer,
        right,
        what="the MACs of Conv2d(96, 96, 5, stride=2, padding=2, groups=96) on 96x57x43",
        wrong={
            2 * right: "you count FLOPs (2 per MAC); the question asks for MACs",
            _dw_macs(h_out, w_out, groups=1): "you ignore groups: with groups = C_in each "
            "output channel sees C_in / groups = 1 input channel, not 96",
            _dw_macs(_H // 2, _W // 2): "you halve 57 and 43 and round down: the output size "
            "is (H + 2p - k) // s + 1",
            _dw_macs(_H, _W): "you use the input size: a stride-2 conv computes every second "
            "position, so the output size is about half the input's",
            _dw_macs((_H - _K) // 2 + 1, (_W - _K) // 2 + 1): "you leave out the padding of 2 "
            "when working out the output size",
        },
    )
    return f"{right:,} MACs = {2 * right:,} FLOPs"


# --- 0.2: MACs by kind of layer, with forward hooks --------------------------------------

KINDS = ("depthwise", "pointwise", "conv", "linear")


class _Probe(nn.Module):
    """Every kind once, some grouped, two at stride 2, for a non-square input."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)  # conv
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)  # depthwise
        self.pw = nn.Conv2d(8, 12, 1, groups=2, bias=False)  # pointwise, grouped
        self.grouped = nn.Conv2d(12, 6, 3, stride=2, padding=1, groups=3)  # conv, grouped
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.grouped(self.pw(self.dw(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def _kind(m: nn.Module) -> str | None:
    if isinstance(m, nn.Linear):
        return "linear"
    if not isinstance(m, nn.Conv2d):
        return None
    if m.groups == m.in_channels > 1:
        return "depthwise"
    return "pointwise" if m.kernel_size == (1, 1) else "conv"


def _by_kind(model: nn.Module, input_size, variant: str = "right") -> dict[str, int]:
    """Reference split from effnb.costs.profile's per-layer rows; ``variant`` gives the value
    a misconception produces ('groups': groups ignored, 'input': input size for output size)."""
    out = dict.fromkeys(KINDS, 0)
    for row in profile(model, input_size).layers:
        module = model.get_submodule(row.name)
        kind = _kind(module)
        if kind is None:
            continue
        macs = row.macs
        if variant == "groups" and isinstance(module, nn.Conv2d):
            macs *= module.groups
        elif variant == "input" and kind != "linear":
            macs = macs * row.input_shape[-2] * row.input_shape[-1]
            macs //= row.output_shape[-2] * row.output_shape[-1]
        out[kind] += macs
    return out


def _call(fn, model: nn.Module, x: torch.Tensor) -> dict:
    got = fn(model, x)
    if not isinstance(got, dict) or set(got) != set(KINDS):
        keys = sorted(got) if isinstance(got, dict) else type(got).__name__
        raise AssertionError(f"return a dict with the keys {list(KINDS)}; got {keys}")
    if any(m._forward_hooks for m in model.modules()):
        raise AssertionError("your hooks are still registered after the call: remove them")
    return got


@exercise(
    "0.2",
    hint="one hook on every Conv2d and Linear; inside it, decide the kind from module.groups, "
    "module.in_channels and module.kernel_size, and add the MACs from out.shape.",
)
def macs_by_kind(fn) -> str:
    expect_function(fn)
    size = (3, 23, 17)
    model = _Probe().eval()
    got = _call(fn, model, torch.randn(1, *size, generator=torch.Generator().manual_seed(0)))
    want = _by_kind(model, size)
    if got != want:
        groups, at_input = _by_kind(model, size, "groups"), _by_kind(model, size, "input")
        bad = [k for k in KINDS if got[k] != want[k]]
        lines = [f"{k}: expected {want[k]:,}, got {got[k]:,}" for k in bad]
        why = "check the formula per kind"
        if all(got[k] == 2 * want[k] for k in bad):
            why = "every wrong value is twice the right one: you count FLOPs, not MACs"
        elif all(got[k] == groups[k] for k in bad):
            why = "you ignore groups: each output channel sees in_channels / groups channels"
        elif all(got[k] == at_input[k] for k in bad):
            why = (
                "you use the input's height and width: the output size is what counts, and "
                "a stride-2 conv has about half as many output positions"
            )
        elif sum(got.values()) == sum(want.values()):
            why = (
                "the total is right but the split is not: depthwise means "
                "groups == in_channels (> 1); every other 1x1 conv is pointwise, grouped or not"
            )
        raise AssertionError(
            f"on a probe network with an input of {size}: {'; '.join(lines)}. {why}"
        )
    v2 = create_model("mobilenet_v2").eval()
    got = _call(fn, v2, torch.zeros(1, 3, 224, 224))
    want = _by_kind(v2, 224)
    if got != want:
        raise AssertionError(f"right on the probe network but on MobileNetV2 got {got}")
    total = sum(got.values())
    shares = ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in got.items())
    return f"MobileNetV2 at 224 px, {total:,} MACs: {shares}"


# --- 0.3: a timing function -------------------------------------------------------------


class _Workload:
    """Sleeps 300 ms on its first call (one-off set-up), 2 ms after; records its threads."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def __call__(self) -> None:
        self.threads.append(torch.get_num_threads())
        time.sleep(0.3 if len(self.threads) == 1 else 0.002)


def _typical_ms(calls: int = 15) -> float:
    """What one 2 ms sleep takes on this machine right now (the right answer, measured)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        time.sleep(0.002)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@exercise(
    "0.3",
    hint="benchmark.Timer(stmt='fn()', globals={'fn': fn}, num_threads=threads); call fn a few "
    "times first; blocked_autorange(min_run_time=...) gives .median and .iqr in seconds.",
)
def time_it(fn) -> str:
    expect_function(fn)
    before = torch.get_num_threads()
    threads = 3 if before != 3 else 2  # neither the current count nor Timer's default of 1
    work = _Workload()
    try:
        got = fn(work, threads)
    finally:
        torch.set_num_threads(before)
    median, iqr = expect_numbers(got, ("median_ms", "iqr_ms"), "your function")
    typical = _typical_ms()
    low, high = 0.6 * typical, 2 * typical + 1.5
    if low <= 1e3 * median <= high:
        raise AssertionError(f"{median:g} looks like seconds: return milliseconds")
    if median > high:
        raise AssertionError(
            f"median {median:.3g} ms, but a typical call takes about {typical:.2f} ms: the "
            "first call's one-off set-up (300 ms) is in your number; warm up before timing"
        )
    if median < low:
        raise AssertionError(f"median {median:.3g} ms is shorter than one call can take")
    if len(work.threads) < 5:
        raise AssertionError(f"fn ran {len(work.threads)} time(s): one call is one sample")
    timed = work.threads[len(work.threads) // 2 :]
    if statistics.mode(timed) != threads:
        raise AssertionError(
            f"asked for {threads} threads, fn ran with {statistics.mode(timed)}: pass the "
            "thread count to the Timer (num_threads=)"
        )
    if not (math.isfinite(iqr) and 0 <= iqr < high):
        raise AssertionError(f"iqr {iqr!r} ms is not the interquartile range of the per-call times")
    return f"median {median:.2f} ms (a 2 ms sleep), IQR {iqr:.3f} ms, {len(work.threads)} calls"
