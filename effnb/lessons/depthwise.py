"""Plots and the widget of notebooks/01_depthwise_separable.ipynb.

The counts, the MobileNetV1 build and the measurements are on the notebook's page; this
module only draws: the reduction factor C_out k^2 / (k^2 + C_out) (and the widget around it),
MobileNetV1's MACs over width x resolution, and the roofline with the measured roofs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from effnb._checks import check_int, check_kernel
from effnb.costs import reduction_factor
from effnb.plots import figure, plain_log
from effnb.roofline import Peaks, attainable

__all__ = ["plot_reduction", "plot_roofline", "plot_width_resolution", "reduction_view"]


def plot_reduction(
    c_outs: Sequence[int] = tuple(range(8, 1025, 8)),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    mark: tuple[int, int] | None = (256, 3),
):
    """Reduction factor over C_out, one line per k, dotted k^2 limits, ``mark`` = (C_out, k)."""
    fig, ax = figure(width=6.4, height=3.6)
    c = np.asarray(c_outs, dtype=float)
    for k in kernel_sizes:
        (line,) = ax.plot(c, [reduction_factor(int(v), k) for v in c], label=f"k = {k}")
        ax.axhline(k * k, ls=":", color=line.get_color(), lw=1)
    if mark is not None:
        c_out, k = mark
        r = reduction_factor(c_out, k)
        ax.plot([c_out], [r], "o", color="tab:red", label=f"{r:.2f}x at C_out = {c_out}, k = {k}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("C_out (log scale)")
    ax.set_ylabel("standard / separable (params or MACs)")
    ax.set_title("reduction factor; dotted: the k^2 limit")
    ax.legend(loc="upper left")
    return fig


def reduction_view(c_out: int = 256, kernel_size: int = 3):
    """Widget view: the reduction factor at one (C_out, k), its share of the k^2 limit, the curve."""
    c_out = check_int("c_out", c_out)
    kernel_size = check_kernel("kernel_size", kernel_size)
    r, k2 = reduction_factor(c_out, kernel_size), kernel_size * kernel_size
    text = (
        f"C_out = {c_out}, k = {kernel_size}: reduction {c_out} * {k2} / ({k2} + {c_out}) = {r:.3f}x "
        f"({100 * r / k2:.1f}% of the k^2 = {k2} limit)"
    )
    kernels = sorted({3, 5, 7, kernel_size})
    return text, plot_reduction(kernel_sizes=kernels, mark=(c_out, kernel_size))


def plot_width_resolution(
    macs: Mapping[tuple[float, int], int], published: Mapping[tuple[float, int], float]
):
    """MobileNetV1 MACs (millions) over input resolution, one line per width alpha.

    ``macs`` maps (alpha, resolution) to counted MACs; ``published`` to the paper's million
    Mult-Adds, drawn as open circles on top of the lines.
    """
    fig, ax = figure(width=6.4, height=3.8)
    for alpha in sorted({a for a, _ in macs}, reverse=True):
        res = sorted(r for a, r in macs if a == alpha)
        ax.plot(res, [macs[alpha, r] / 1e6 for r in res], ".-", label=f"alpha = {alpha}")
    ax.plot(
        [r for _, r in published],
        list(published.values()),
        "o",
        mfc="none",
        mec="black",
        ms=9,
        label="paper",
    )
    plain_log(ax, "y")
    ax.set_xticks(sorted({r for _, r in macs}))
    ax.set_xlabel("input resolution (px)")
    ax.set_ylabel("MACs (millions, log scale)")
    ax.set_title("MobileNetV1: MACs over width and resolution")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_roofline(
    peaks: Mapping[str, Peaks], points: Mapping[str, Mapping[str, tuple[float, float]]]
):
    """One roofline panel per device: both measured roofs and the measured kernels under them.

    ``points[device][label] = (intensity in MACs/byte, achieved MAC/s)``; each point is
    labelled with its percentage of the roof at its intensity.
    """
    fig, axes = figure(ncols=len(peaks), width=6.4, height=4.2, squeeze=False)
    for ax, (device, pk) in zip(axes[0], peaks.items(), strict=True):
        xs = [i for i, _ in points[device].values()] + [pk.ridge]
        rates = [r / 1e9 for _, r in points[device].values()]
        peak, grid = pk.macs_per_s / 1e9, np.geomspace(min(xs) / 4, max(xs) * 4, 200)
        ax.plot(grid, attainable(grid, pk) / 1e9, color="black", lw=2, label="attainable (roofs)")
        ax.plot([pk.ridge, 4 * pk.ridge], [peak, 4 * peak], ":", color="tab:gray", lw=1)
        ax.plot([grid[0], pk.ridge], [peak, peak], ":", color="tab:gray", lw=1,
                label=f"compute roof {peak:.1f} GMAC/s")  # fmt: skip
        ax.axvline(pk.ridge, color="tab:gray", lw=0.8, ls="--")
        for label, (intensity, rate) in points[device].items():
            (dot,) = ax.plot([intensity], [rate / 1e9], "o", ms=9, label=f"{label} (measured)")
            share = rate / attainable(intensity, pk)
            ax.annotate(f"{100 * share:.0f}%", (intensity, rate / 1e9), (8, -12), "data",
                        "offset points", color=dot.get_color(), fontsize=9,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"})  # fmt: skip
        plain_log(ax)
        ax.set_ylim(min(rates + [grid[0] * pk.bytes_per_s / 1e9]) / 3, peak * 6)
        ax.set_xlim(grid[0], grid[-1])
        x0 = grid[0] * 1.5
        (a, b) = ax.transData.transform([(x0, x0 * pk.bytes_per_s / 1e9), (2 * x0, 2 * x0 * pk.bytes_per_s / 1e9)])  # fmt: skip
        ax.annotate(f"bandwidth roof {pk.bytes_per_s / 1e9:.1f} GB/s", (x0, x0 * pk.bytes_per_s / 1e9),
                    (-6, 8), "data", "offset points", rotation=np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])),
                    rotation_mode="anchor")  # fmt: skip
        ax.set_xlabel("arithmetic intensity (MACs per byte, fp32)")
        ax.set_ylabel("GMAC/s (log scale)")
        threads = f"{pk.threads} thread{'s' if pk.threads != 1 else ''}"
        ax.set_title(f"roofline, {device}, {threads}; dashed: ridge; % = share of the roof")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
