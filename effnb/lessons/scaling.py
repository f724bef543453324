"""Notebook 05 (compound scaling): its figures and its "scale B0 yourself" widget.

The scaling itself (the formula, MBConv, the B0 table, the builder, the channel rounding, the
digits experiment) is written on the notebook's page; this module only draws and feeds the
widget. Counting runs on PyTorch's ``meta`` device (shapes only, no arithmetic), so a B7 at
600 px counts without allocating its weights.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from effnb._checks import check_int, check_multiplier
from effnb.costs import profile
from effnb.models.efficientnet import efficientnet
from effnb.plots import figure, plain_log

__all__ = ["plot_experiment", "plot_macs", "scaled_costs", "scaled_model_view"]

Costs = Mapping[str, tuple[int, int]]  # variant ("b0".."b7") -> (params, MACs)


def plot_macs(
    predicted: Sequence[float], costs: Costs, factor: float, fit: tuple[float, float]
) -> Figure:
    """Two panels over B0..B7: counted MACs against d w^2 (r/224)^2 (log-log, with the fitted
    line ``fit`` = (slope, intercept) of log MACs on log x), and against factor^phi x B0's MACs."""
    keys = list(costs)
    macs = np.array([costs[k][1] for k in keys]) / 1e9
    fig, (left, right) = figure(1, 2, width=5.2, height=4.0)
    slope, intercept = fit
    xs = np.geomspace(min(predicted), max(predicted), 50)
    left.plot(
        xs, np.exp(intercept) * xs**slope / 1e9, color="gray", lw=1, label=f"fit: slope {slope:.3f}"
    )
    left.scatter(predicted, macs, color="tab:red", zorder=3, label="counted")
    for x, y, key in zip(predicted, macs, keys, strict=True):
        left.annotate(key.upper(), (x, y), xytext=(5, -9), textcoords="offset points", fontsize=8)
    plain_log(left)
    left.set_xlabel("d * w^2 * (r / 224)^2 of the released config")
    left.set_ylabel("counted conv + linear MACs (billions)")
    left.set_title("MACs against depth x width^2 x resolution^2")
    left.legend(loc="upper left")
    phis = np.arange(len(keys))
    # markers only for the counts, lines drawn over them: B5..B7 sit on the 1.92^phi line
    right.plot(phis, macs, "o", color="tab:red", ms=8, label="counted (released configs)")
    right.plot(phis, macs[0] * factor**phis, "--", color="dimgray", label=f"B0 x {factor:.2f}^phi")
    right.plot(phis, macs[0] * 2.0**phis, ":", color="black", label="B0 x 2^phi")
    plain_log(right, "y")
    right.set_xticks(phis, [k.upper() for k in keys])
    right.set_xlabel("variant (phi = n for Bn)")
    right.set_ylabel("conv + linear MACs (billions, log scale)")
    right.set_title("The released variants against the formula")
    right.legend(loc="upper left")
    fig.tight_layout()
    return fig


@functools.lru_cache(maxsize=256)
def scaled_costs(width: float, depth: float, resolution: int) -> tuple[int, int]:
    """(params, MACs) of effnb's EfficientNet at (width, depth), counted at ``resolution`` px."""
    with torch.device("meta"):
        model = efficientnet(check_multiplier("width", width), check_multiplier("depth", depth))
    report = profile(model.eval(), resolution)
    return report.params, report.macs


def scaled_model_view(
    width: float, depth: float, resolution: int, costs: Costs, ms_per_gmac: float | None = None
) -> tuple[str, Figure]:
    """The widget: B0 scaled by (width, depth) at ``resolution`` px among the released B0..B7.

    ``costs``: variant -> (params, MACs) at native resolution. ``ms_per_gmac``: B0's measured
    CPU milliseconds per billion MACs, to print a latency *estimate* proportional to MACs
    (None leaves it out: it is a measurement, not a count).
    """
    width, depth = round(float(width), 3), round(float(depth), 3)
    resolution = check_int("resolution", int(resolution), minimum=32)
    params, macs = scaled_costs(width, depth, resolution)
    b0_macs = costs["b0"][1]
    nearest = min(costs, key=lambda k: abs(math.log(costs[k][1] / macs)))
    text = (
        f"width {width:.2f}, depth {depth:.2f}, {resolution} px: {params / 1e6:.2f}M params, "
        f"{macs / 1e9:.3f}G MACs\n"
        f"MACs / B0's = {macs / b0_macs:.2f}x; d * w^2 * (r/224)^2 = "
        f"{depth * width**2 * (resolution / 224) ** 2:.2f}x\n"
        f"closest released variant by MACs: {nearest.upper()} ({costs[nearest][1] / 1e9:.3f}G MACs, "
        f"{costs[nearest][0] / 1e6:.2f}M params)"
    )
    if ms_per_gmac is not None:
        text += (
            f"\nlatency estimate (B0's ms per GMAC x these MACs): {ms_per_gmac * macs / 1e9:.0f} ms"
        )
    fig, ax = figure(width=6.0, height=4.0)
    ax.plot(
        [c[1] / 1e9 for c in costs.values()],
        [c[0] / 1e6 for c in costs.values()],
        "o-",
        color="tab:red",
        alpha=0.6,
        label="released B0..B7",
    )
    for key, (p, m) in costs.items():
        ax.annotate(
            key.upper(), (m / 1e9, p / 1e6), xytext=(5, -10), textcoords="offset points", fontsize=8
        )
    ax.scatter(macs / 1e9, params / 1e6, marker="*", s=220, color="black", zorder=3, label="yours")
    plain_log(ax)
    ax.set_xlim(0.05, 200)
    ax.set_ylim(0.5, 300)
    ax.set_xlabel("conv + linear MACs (billions, log scale)")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("Your scaled EfficientNet among B0..B7")
    ax.legend(loc="upper left")
    return text, fig


ARM_COLORS = {
    "base": "black",
    "width": "tab:blue",
    "depth": "tab:orange",
    "resolution": "tab:green",
    "compound": "tab:red",
}


def plot_experiment(rows: Sequence[Mapping]) -> Figure:
    """Validation accuracy per arm: each seed a dot, the mean a square with the range over the
    seeds; each arm labelled with its MACs. ``rows``: mappings with 'arm', 'macs', 'val_acc'
    (0..1), in the order the arms should appear."""
    fig, ax = figure(width=6.4, height=4.0)
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    for i, name in enumerate(arms):
        pts = [r for r in rows if r["arm"] == name]
        accs = np.array([100 * r["val_acc"] for r in pts])
        color = ARM_COLORS.get(name, "tab:gray")
        ax.scatter(np.full(len(accs), i + 0.12), accs, color=color, s=22, alpha=0.7)
        ax.errorbar(
            i - 0.12,
            accs.mean(),
            yerr=[[accs.mean() - accs.min()], [accs.max() - accs.mean()]],
            fmt="s",
            color=color,
            capsize=4,
        )
    labels = [
        f"{a}\n{next(r['macs'] for r in rows if r['arm'] == a) / 1e3:,.0f}K MACs" for a in arms
    ]
    ax.set_xticks(range(len(arms)), labels)
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylabel("digits validation accuracy (%)")
    n = len(rows) // max(1, len(arms))
    ax.set_title(f"Each arm over {n} seeds: mean and range (square), seeds (dots)")
    return fig
