"""Counting and timing: the functions behind notebooks/00_counting_and_timing.ipynb.

Three counters side by side (effnb's formulas, ``torch.utils.flop_counter.FlopCounterMode``
and the MIT package ``thop``) with the exact terms that separate them, the naive
one-call timing the notebook warns against, and the widget view of MobileNetV2's cost
at a chosen input resolution.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effnb._checks import check_input_size, check_int
from effnb.costs import profile
from effnb.models import create_model
from effnb.plots import figure

__all__ = [
    "PUBLISHED_MACS",
    "ThreeCounts",
    "count_three_ways",
    "flop_counter_flops",
    "mobilenet_v2_cost_view",
    "naive_call_times",
    "plot_naive_times",
    "plot_thread_records",
    "thop_extra_terms",
    "thop_macs",
    "uncounted_elementwise",
]

# Published multiply-adds ("FLOPs" or "Mult-Adds" in the papers' tables), in millions.
PUBLISHED_MACS: dict[str, tuple[float, str]] = {
    "mobilenet_v1": (569, "MobileNets, arXiv 1704.04861, Table 6 (Mult-Adds)"),
    "mobilenet_v2": (300, "MobileNetV2, arXiv 1801.04381, Table 4 (MAdds)"),
    "mobilenet_v3_large": (219, "MobileNetV3, arXiv 1905.02244, Table 3 (MAdds)"),
    "mobilenet_v3_small": (56, "MobileNetV3, arXiv 1905.02244, Table 3 (MAdds)"),
    "efficientnet_b0": (390, "EfficientNet, arXiv 1905.11946, Table 2 ('FLOPS' 0.39B)"),
}


def _input(model: nn.Module, input_size: int | Sequence[int]) -> torch.Tensor:
    """A zero input of batch 1 on the model's device (meta included); ``input_size`` is an int
    (square, model's channels), (H, W) or (C, H, W)."""
    shape = check_input_size(input_size, getattr(model, "in_chans", 3))
    param = next(model.parameters(), None)
    return torch.zeros(1, *shape, device=param.device if param is not None else "cpu")


def _forward_then_remove(model: nn.Module, input_size, handles: list) -> None:
    """One eval-mode forward pass with the given hooks registered, then remove them."""
    try:
        model.eval()
        with torch.no_grad():
            model(_input(model, input_size))
    finally:
        for h in handles:
            h.remove()


def flop_counter_flops(model: nn.Module, input_size: int | Sequence[int]) -> int:
    """Total FLOPs PyTorch's FlopCounterMode sees in one forward pass (2 per conv/matmul MAC)."""
    x = _input(model, input_size)
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def thop_macs(model: nn.Module, input_size: int | Sequence[int]) -> tuple[int, int]:
    """(MACs, params) as ``thop.profile`` reports them, on a deep copy (thop adds buffers)."""
    import thop  # test dependency; imported here so effnb itself does not need it

    clone = copy.deepcopy(model).eval()
    macs, params = thop.profile(clone, inputs=(_input(clone, input_size),), verbose=False)
    return int(macs), int(params)


def thop_extra_terms(model: nn.Module, input_size: int | Sequence[int]) -> tuple[int, int]:
    """The two terms thop adds to conv+linear MACs: (BatchNorm term, adaptive-pool term).

    BatchNorm: 4 x numel(input) for an affine BN (thop counts 2 per element, doubled when
    affine). Adaptive average pooling: (H_in*W_in / (H_out*W_out) + 1) x numel(output), i.e.
    (H*W + 1) x C for a global pool to 1 x 1.
    """
    terms = {"bn": 0, "pool": 0}

    def hook(module: nn.Module, args, out) -> None:
        x = args[0]
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            terms["bn"] += (4 if module.affine else 2) * x.numel()
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            kernel = (x.shape[-2] * x.shape[-1]) // (out.shape[-2] * out.shape[-1])
            terms["pool"] += (kernel + 1) * out.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.AdaptiveAvgPool2d)
    ]
    _forward_then_remove(model, input_size, handles)
    return terms["bn"], terms["pool"]


@dataclass(frozen=True)
class ThreeCounts:
    """One module counted three ways. MACs = multiply-accumulates; FLOPs = 2 x MACs."""

    label: str
    params: int  # sum(p.numel() for p in model.parameters())
    macs: int  # effnb.costs.profile: conv + linear MACs
    flop_counter_flops: int  # FlopCounterMode total (FLOPs)
    thop_macs: int  # thop.profile's first return value (MACs, with BN and pooling)
    bn_term: int  # 4 x numel of every affine BN input
    pool_term: int  # (H*W/(h*w) + 1) x numel of every adaptive-pool output

    @property
    def flop_counter_match(self) -> bool:
        """FlopCounterMode = 2 x our MACs, exactly."""
        return self.flop_counter_flops == 2 * self.macs

    @property
    def thop_match(self) -> bool:
        """thop = our MACs + BN term + pool term, exactly."""
        return self.thop_macs == self.macs + self.bn_term + self.pool_term

    def lines(self) -> list[str]:
        """The comparison as printable lines, with units."""
        return [
            f"{self.label}",
            f"  params (sum of numel)              {self.params:>15,}",
            f"  MACs, effnb formula (conv+linear)  {self.macs:>15,}",
            f"  FLOPs, FlopCounterMode             {self.flop_counter_flops:>15,}"
            f"  = 2 x MACs: {self.flop_counter_match}",
            f"  MACs, thop                         {self.thop_macs:>15,}",
            f"    = ours {self.macs:,} + BN 4*numel {self.bn_term:,} + pool {self.pool_term:,}"
            f"  match: {self.thop_match}",
        ]


def count_three_ways(
    model: nn.Module, input_size: int | Sequence[int], label: str | None = None
) -> ThreeCounts:
    """Count ``model`` at ``input_size`` with effnb, FlopCounterMode and thop."""
    report = profile(model, input_size)
    bn, pool = thop_extra_terms(model, input_size)
    return ThreeCounts(
        label=label or getattr(model, "name", "") or type(model).__name__,
        params=sum(p.numel() for p in model.parameters()),
        macs=report.macs,
        flop_counter_flops=flop_counter_flops(model, input_size),
        thop_macs=thop_macs(model, input_size)[0],
        bn_term=bn,
        pool_term=pool,
    )


def naive_call_times(model: nn.Module, x: torch.Tensor, calls: int = 15) -> list[float]:
    """Milliseconds of each of ``calls`` single forward passes, each timed on its own.

    This is the anti-pattern notebook 00 takes apart (a wall-clock read around one call,
    no warm-up, no repetition): it exists to show that call 1 is an outlier and that the
    others scatter. Real measurements go through ``effnb.bench``.
    """
    calls = check_int("calls", calls)
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(calls):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return times


def plot_naive_times(times_ms: Sequence[float], title: str = ""):
    """Bar per call: the first call (lazy initialisation) in a different colour."""
    fig, ax = figure(width=6.4, height=3.2)
    colors = ["tab:red"] + ["tab:blue"] * (len(times_ms) - 1)
    ax.bar(range(1, len(times_ms) + 1), times_ms, color=colors)
    ax.set_xlabel("call number")
    ax.set_ylabel("wall time of that one call (ms)")
    ax.set_title(title or "one timer read per call: call 1 (red) pays for set-up")
    return fig


def plot_thread_records(records: Sequence) -> object:
    """Median latency with IQR error bars, one bar per LatencyRecord (label / threads)."""
    fig, ax = figure(width=6.4, height=3.2)
    labels = [f"{r.label}\n{r.device}, {r.threads} thr" for r in records]
    ax.bar(
        labels,
        [r.median_ms for r in records],
        yerr=[r.iqr_ms / 2 for r in records],
        capsize=4,
        color="tab:blue",
    )
    ax.set_ylabel("median latency (ms), bars: IQR")
    return fig


@functools.lru_cache(maxsize=4)
def _mobilenet_v2(width_mult: float) -> nn.Module:
    return create_model("mobilenet_v2", width_mult=width_mult).eval()


@functools.lru_cache(maxsize=64)
def _v2_cost(resolution: int, width_mult: float) -> tuple[int, int]:
    report = profile(_mobilenet_v2(width_mult), resolution)
    return report.params, report.macs


RESOLUTIONS = tuple(range(96, 321, 32))


def mobilenet_v2_cost_view(resolution: int = 224, width_mult: float = 1.0):
    """Widget view: MobileNetV2's params, MACs and FLOPs at one input resolution.

    Params do not depend on the resolution; MACs grow roughly with its square. Returns
    (text, figure): the bars show MACs and FLOPs (millions), the line MACs over resolutions.
    """
    resolution = check_int("resolution", resolution, minimum=32)
    params, macs = _v2_cost(resolution, width_mult)
    _, macs_224 = _v2_cost(224, width_mult)
    text = (
        f"MobileNetV2 (width {width_mult}) at {resolution}x{resolution}: {params:,} params, "
        f"{macs / 1e6:,.1f}M MACs = {2 * macs / 1e6:,.1f}M FLOPs "
        f"({macs / macs_224:.2f}x the MACs at 224; (res/224)^2 = {(resolution / 224) ** 2:.2f})"
    )
    fig, (ax1, ax2) = figure(1, 2, width=4.0, height=3.2)
    ax1.bar(["MACs", "FLOPs"], [macs / 1e6, 2 * macs / 1e6], color=["tab:blue", "tab:orange"])
    ax1.set_ylabel("millions (FLOPs = 2 x MACs)")
    ax1.set_ylim(0, 2 * _v2_cost(max(RESOLUTIONS), width_mult)[1] / 1e6 * 1.05)
    ax1.set_title(f"{resolution} px")
    sizes = sorted(set(RESOLUTIONS) | {resolution})
    ax2.plot(sizes, [_v2_cost(s, width_mult)[1] / 1e6 for s in sizes], "o-", ms=3)
    ax2.plot([resolution], [macs / 1e6], "o", color="tab:red", ms=8)
    ax2.set_xlabel("input resolution (px)")
    ax2.set_ylabel("MACs (millions)")
    ax2.set_title(f"params fixed at {params / 1e6:.2f}M")
    fig.tight_layout()
    return text, fig


def uncounted_elementwise(model: nn.Module, input_size: int | Sequence[int]) -> dict[str, int]:
    """Elementwise work that neither FlopCounterMode nor thop reports, in elements touched.

    residual adds (outputs of blocks with ``has_skip``), SE gating multiplies (outputs of
    every ``SqueezeExcite``) and activation outputs. Each is one op per element and, more
    to the point for latency, one read and one write of the whole tensor.
    """
    from effnb.layers import SqueezeExcite

    counts = {"residual add": 0, "SE multiply": 0, "activation": 0}
    acts = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid)

    def hook(module: nn.Module, args, out) -> None:
        if getattr(module, "has_skip", False) or getattr(module, "has_identity_shortcut", False):
            counts["residual add"] += out.numel()
        elif isinstance(module, SqueezeExcite):
            counts["SE multiply"] += out.numel()
        elif isinstance(module, acts):
            counts["activation"] += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    _forward_then_remove(model, input_size, handles)
    return counts
