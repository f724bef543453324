"""Depthwise-separable convolutions: the functions behind notebooks/01_depthwise_separable.ipynb.

Formula-vs-counted checks for a standard and a depthwise-separable conv, the reduction
factor C_out k^2 / (k^2 + C_out), the seed's 8.6x explained, arithmetic intensity (MACs per
byte moved, the roofline view of why depthwise convs are memory-bound), and MobileNetV1's
width (alpha) x resolution (rho) grid against the paper's Tables 6 and 7.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import FuncFormatter
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effnb._checks import check_int, check_kernel, check_multiplier
from effnb.costs import (
    conv2d_macs,
    conv2d_params,
    depthwise_separable_macs,
    depthwise_separable_params,
    profile,
    reduction_factor,
)
from effnb.layers import DepthwiseSeparableConv
from effnb.models import create_model
from effnb.plots import figure

__all__ = [
    "MOBILENET_V1_PUBLISHED",
    "ConvIntensity",
    "CountRow",
    "conv_intensity",
    "formula_vs_counted",
    "mobilenet_v1_cost",
    "mobilenet_v1_grid",
    "mobilenet_v1_view",
    "plot_intensity",
    "plot_reduction",
    "reduction_view",
    "seed_ratio",
]

# MobileNets (arXiv 1704.04861): Table 6 varies the width multiplier alpha at 224 px,
# Table 7 the resolution at alpha = 1.0. (alpha, resolution) -> (million Mult-Adds,
# million params). These are the paper's numbers, quoted; ours are computed.
MOBILENET_V1_PUBLISHED: dict[tuple[float, int], tuple[float, float, str]] = {
    (1.0, 224): (569, 4.2, "Table 6/7"),
    (0.75, 224): (325, 2.6, "Table 6"),
    (0.5, 224): (149, 1.3, "Table 6"),
    (0.25, 224): (41, 0.5, "Table 6"),
    (1.0, 192): (418, 4.2, "Table 7"),
    (1.0, 160): (290, 4.2, "Table 7"),
    (1.0, 128): (186, 4.2, "Table 7"),
}
ALPHAS = (0.25, 0.5, 0.75, 1.0)
RESOLUTIONS = (128, 160, 192, 224)


def _plain_ticks(axis) -> None:
    """Log-scale tick labels as plain numbers (20, 50, 100) rather than 2 x 10^1."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))


@dataclass(frozen=True)
class CountRow:
    """A quantity by formula and as counted by PyTorch."""

    what: str
    formula: int
    counted: int

    @property
    def match(self) -> bool:
        return self.formula == self.counted


def _weights(module: nn.Module) -> int:
    """Conv weights only (no bias, no BatchNorm): what the reduction-factor formula compares."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def formula_vs_counted(c_in: int, c_out: int, kernel_size: int, size: int) -> list[CountRow]:
    """Standard k x k conv vs effnb's DepthwiseSeparableConv at size x size, stride 1.

    Params: k^2 C_in C_out vs k^2 C_in + C_in C_out (conv weights; BatchNorm listed apart).
    MACs: the same times H_out W_out, counted by effnb.costs.profile and FlopCounterMode / 2.
    """
    standard = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False)
    separable = DepthwiseSeparableConv(c_in, c_out, kernel_size)
    x = torch.zeros(1, c_in, size, size)
    rows = []
    for label, module, params, macs in (
        (
            "standard",
            standard,
            conv2d_params(c_in, c_out, kernel_size),
            conv2d_macs(c_in, c_out, kernel_size, size),
        ),
        (
            "separable",
            separable,
            depthwise_separable_params(c_in, c_out, kernel_size),
            depthwise_separable_macs(c_in, c_out, kernel_size, size),
        ),
    ):
        module.eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(x)
        rows += [
            CountRow(f"{label} conv weights", params, _weights(module)),
            CountRow(
                f"{label} MACs (effnb.costs.profile)",
                macs,
                profile(module, (c_in, size, size)).macs,
            ),
            CountRow(f"{label} MACs (FlopCounterMode / 2)", macs, counter.get_total_flops() // 2),
        ]
    bn = sum(
        p.numel()
        for m in separable.modules()
        if isinstance(m, nn.BatchNorm2d)
        for p in m.parameters()
    )
    rows.append(CountRow("separable BatchNorm params (2 per channel)", 2 * (c_in + c_out), bn))
    return rows


def seed_ratio(channels: int = 256, kernel_size: int = 3, size: int = 56) -> dict[str, float | int]:
    """The seed's 8.6x, taken apart: what each side of its ratio contained.

    The seed compared ``nn.Conv2d(256, 256, 3, padding=1)`` (bias on: 590,080 params) with a
    depthwise-separable block that has two BatchNorms (68,864 = 67,840 weights + 1,024 BN).
    thop's MACs at 56 x 56 include 4 x numel per BatchNorm, so its ratio is 8.44x.
    """
    from effnb.lessons.counting import thop_macs

    standard = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)  # bias=True
    separable = DepthwiseSeparableConv(channels, channels, kernel_size)
    std_params = sum(p.numel() for p in standard.parameters())
    sep_params = sum(p.numel() for p in separable.parameters())
    std_thop = thop_macs(standard, (channels, size, size))[0]
    sep_thop = thop_macs(separable, (channels, size, size))[0]
    return {
        "standard_params_with_bias": std_params,
        "separable_params_with_bn": sep_params,
        "separable_conv_weights": _weights(separable),
        "separable_bn_params": sep_params - _weights(separable),
        "seed_ratio": std_params / sep_params,
        "weights_ratio": _weights(standard) / _weights(separable),
        "formula_ratio": reduction_factor(channels, kernel_size),
        "thop_standard_macs": std_thop,
        "thop_separable_macs": sep_thop,
        "thop_macs_ratio": std_thop / sep_thop,
    }


def plot_reduction(
    c_outs: Sequence[int] = tuple(range(8, 1025, 8)),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    mark: tuple[int, int] | None = (256, 3),
):
    """Reduction factor C_out k^2 / (k^2 + C_out) over C_out, one line per k, with the k^2 limits."""
    fig, ax = figure(width=6.4, height=3.6)
    c = np.asarray(c_outs, dtype=float)
    for k in kernel_sizes:
        (line,) = ax.plot(c, [reduction_factor(int(v), k) for v in c], label=f"k = {k}")
        ax.axhline(k * k, ls=":", color=line.get_color(), lw=1)
    if mark is not None:
        c_out, k = mark
        r = reduction_factor(c_out, k)
        ax.plot([c_out], [r], "o", color="tab:red")
        ax.annotate(
            f"{r:.2f}x (C_out={c_out}, k={k})",
            (c_out, r),
            xytext=(8, -14),
            textcoords="offset points",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("C_out (log scale)")
    ax.set_ylabel("standard / separable (params or MACs)")
    ax.set_title("reduction factor; dotted: the k^2 limit")
    ax.legend()
    return fig


def reduction_view(c_out: int = 256, kernel_size: int = 3):
    """Widget view: the reduction factor at one (C_out, k), its k^2 limit, and the curve."""
    c_out = check_int("c_out", c_out)
    kernel_size = check_kernel("kernel_size", kernel_size)
    r = reduction_factor(c_out, kernel_size)
    k2 = kernel_size * kernel_size
    text = (
        f"C_out = {c_out}, k = {kernel_size}: reduction {c_out} * {k2} / ({k2} + {c_out}) = {r:.3f}x "
        f"({100 * r / k2:.1f}% of the k^2 = {k2} limit)"
    )
    return text, plot_reduction(
        kernel_sizes=sorted({3, 5, 7, kernel_size}), mark=(c_out, kernel_size)
    )


@dataclass(frozen=True)
class ConvIntensity:
    """MACs and minimum bytes moved (fp32: read input and weights once, write output once)."""

    kind: str
    macs: int
    bytes_moved: int

    @property
    def intensity(self) -> float:
        """MACs per byte: the x axis of a roofline plot."""
        return self.macs / self.bytes_moved


def conv_intensity(kind: str, c_in: int, c_out: int, kernel_size: int, size: int) -> ConvIntensity:
    """Arithmetic intensity of a 'standard', 'depthwise' (C_out = C_in) or 'pointwise' conv.

    bytes = 4 * (C_in H W + weights + C_out H W) at stride 1: the least traffic any kernel
    needs. Depthwise does k^2 MACs per output element while moving about two floats per
    element, so its intensity is about k^2 / 8 whatever the width: memory-bound.
    """
    if kind == "standard":
        weights, out_ch = conv2d_params(c_in, c_out, kernel_size), c_out
    elif kind == "depthwise":
        weights, out_ch = conv2d_params(c_in, c_in, kernel_size, groups=c_in), c_in
    elif kind == "pointwise":
        weights, out_ch = conv2d_params(c_in, c_out, 1), c_out
    else:
        raise ValueError(f"kind must be 'standard', 'depthwise' or 'pointwise', got {kind!r}")
    macs = weights * size * size
    bytes_moved = 4 * (c_in * size * size + weights + out_ch * size * size)
    return ConvIntensity(kind, macs, bytes_moved)


def plot_intensity(
    channels: Sequence[int] = (16, 32, 64, 128, 256, 512, 1024),
    kernel_size: int = 3,
    size: int = 28,
):
    """MACs per byte over the width C (C_in = C_out = C) for the three conv kinds."""
    fig, ax = figure(width=6.4, height=3.6)
    for kind in ("standard", "pointwise", "depthwise"):
        ax.plot(
            channels,
            [conv_intensity(kind, c, c, kernel_size, size).intensity for c in channels],
            "o-",
            label=kind,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _plain_ticks(ax.yaxis)
    ax.set_xlabel("channels C (C_in = C_out)")
    ax.set_ylabel("MACs per byte moved (fp32)")
    ax.set_title(f"arithmetic intensity, {kernel_size}x{kernel_size}, {size}x{size} feature map")
    ax.legend()
    return fig


@functools.lru_cache(maxsize=32)
def mobilenet_v1_cost(alpha: float, resolution: int) -> tuple[int, int]:
    """(params, conv+linear MACs) of MobileNetV1 at width alpha and input resolution."""
    alpha = check_multiplier("alpha", alpha)
    resolution = check_int("resolution", resolution, minimum=32)
    report = profile(create_model("mobilenet_v1", width_mult=alpha), resolution)
    return report.params, report.macs


def mobilenet_v1_grid(
    alphas: Sequence[float] = ALPHAS, resolutions: Sequence[int] = RESOLUTIONS
) -> str:
    """Params and MACs over the alpha x resolution grid, with the paper's numbers where published."""
    head = f"{'alpha':>5s} {'res':>4s} {'params':>11s} {'MACs':>13s} {'paper MACs':>11s} {'paper params':>13s}"
    lines = [head, "-" * len(head)]
    for a in alphas:
        for r in resolutions:
            params, macs = mobilenet_v1_cost(a, r)
            pub = MOBILENET_V1_PUBLISHED.get((a, r))
            paper = f"{pub[0]:>10.0f}M {pub[1]:>12.1f}M" if pub else f"{'':>11s} {'':>13s}"
            lines.append(f"{a:>5.2f} {r:>4d} {params:>11,} {macs / 1e6:>12.1f}M {paper}")
    return "\n".join(lines)


def mobilenet_v1_view(alpha: float = 1.0, resolution: int = 224):
    """Widget view: MobileNetV1 params and MACs at (alpha, resolution) against the whole grid."""
    params, macs = mobilenet_v1_cost(alpha, resolution)
    base_params, base_macs = mobilenet_v1_cost(1.0, 224)
    pub = MOBILENET_V1_PUBLISHED.get((alpha, resolution))
    quoted = f"; paper: {pub[0]:.0f}M Mult-Adds, {pub[1]}M params ({pub[2]})" if pub else ""
    text = (
        f"MobileNetV1 alpha={alpha}, {resolution}px: {params:,} params "
        f"({params / base_params:.2f}x of 1.0-224), {macs / 1e6:.1f}M MACs "
        f"({macs / base_macs:.2f}x; alpha^2 rho^2 = {alpha**2 * (resolution / 224) ** 2:.2f}){quoted}"
    )
    fig, ax = figure(width=6.4, height=3.6)
    for a in ALPHAS:
        ax.plot(
            RESOLUTIONS,
            [mobilenet_v1_cost(a, r)[1] / 1e6 for r in RESOLUTIONS],
            "o-",
            label=f"alpha {a}",
        )
    ax.plot([resolution], [macs / 1e6], "*", ms=16, color="tab:red", label="selected")
    ax.set_yscale("log")
    _plain_ticks(ax.yaxis)
    ax.set_xlabel("input resolution (px)")
    ax.set_ylabel("MACs (millions, log scale)")
    ax.set_title("MobileNetV1: width x resolution")
    ax.legend(fontsize=8)
    return text, fig
