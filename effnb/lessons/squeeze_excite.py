"""Glue for notebooks/02_squeeze_excitation.ipynb: the SE-cost widget view and two figures.

Everything the notebook teaches (the block, its cost, the sweep, the training) is on the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from effnb._checks import check_int
from effnb.costs import se_macs, se_params
from effnb.plots import figure, plain_log

__all__ = ["plot_gates", "plot_se_overhead", "se_cost_view"]

REDUCTIONS = (2, 4, 8, 16, 32)


def se_cost_view(channels: int = 240, reduction: int = 4):
    """Widget view: SE params and MACs at (C, r), with the params-over-r curve for this C."""
    channels, reduction = check_int("channels", channels), check_int("reduction", reduction)
    squeeze = channels // reduction
    if squeeze < 1:
        text = f"C = {channels}, r = {reduction}: C // r = 0, a zero-width SE (effnb refuses to build it)"
    else:
        text = (
            f"C = {channels}, r = {reduction}: squeeze {squeeze}, params 2*C*(C//r) + C//r + C = "
            f"{se_params(channels, squeeze):,} (weights {2 * channels * squeeze:,}), MACs "
            f"{se_macs(channels, squeeze):,} per image (+ {channels} means and a C*H*W gating "
            "multiply, not MACs)"
        )
    fig, ax = figure(width=6.4, height=3.4)
    rs = [r for r in REDUCTIONS if channels // r >= 1]
    ax.plot(rs, [se_params(channels, channels // r) for r in rs], "o-")
    if squeeze >= 1:
        ax.plot([reduction], [se_params(channels, squeeze)], "*", ms=16, color="tab:red")
    ax.set_xscale("log", base=2)
    ax.set_xticks(REDUCTIONS, [str(r) for r in REDUCTIONS])
    title = f"SE cost for C = {channels} (red star: r = {reduction})"
    ax.set(xlabel="reduction ratio r", ylabel="SE params (weights + biases)", title=title)
    return text, fig


def plot_gates(x: np.ndarray):
    """Sigmoid (solid) and hard-sigmoid (dashed) on the left, their difference on the right."""
    t = torch.as_tensor(x, dtype=torch.float64)
    sig, hsig = torch.sigmoid(t).numpy(), torch.nn.functional.hardsigmoid(t).numpy()
    fig, (ax1, ax2) = figure(1, 2, width=4.0, height=3.2)
    ax1.plot(x, sig, "-", lw=2.5, color="tab:blue", label="sigmoid")
    ax1.plot(x, hsig, "--", lw=1.8, color="tab:orange", label="hard-sigmoid")
    ax1.set(xlabel="x", ylabel="gate value", title="hard-sigmoid(x) = ReLU6(x + 3) / 6")
    ax1.legend(loc="upper left")
    ax2.plot(x, hsig - sig, color="tab:red")
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set(xlabel="x", ylabel="hard-sigmoid - sigmoid", title="their difference")
    fig.tight_layout()
    return fig


def plot_se_overhead(
    rows: Sequence[Mapping], blocks: Sequence[str], reductions: Sequence[int] = REDUCTIONS
):
    """Three panels over r, one bar per block: params added, MACs added, time added (%).

    ``rows``: dicts with "block", "r", "params_pct", "macs_pct" and "time" = (low, median,
    high) of the time ratio with/without SE (its confidence interval), or None if not timed.
    Each panel has its own scale; params and MACs are on log scales, so that the smallest
    bars (a few hundredths of a percent) stay visible.
    """
    by = {(row["block"], row["r"]): row for row in rows}
    x = np.arange(len(reductions))
    width = 0.8 / len(blocks)
    fig, axes = figure(1, 3, width=3.6, height=3.4)
    panels = {"params_pct": "params", "macs_pct": "MACs", "time": "time"}
    for ax, (field, label) in zip(axes, panels.items(), strict=True):
        for i, block in enumerate(blocks):
            pos = x + (i - (len(blocks) - 1) / 2) * width
            if field == "time":
                cis = [by[block, r]["time"] or (math.nan,) * 3 for r in reductions]
                med = np.array([100 * (c[1] - 1) for c in cis])
                err = np.array([[100 * (c[1] - c[0]), 100 * (c[2] - c[1])] for c in cis]).T
                ax.bar(pos, med, width, yerr=np.nan_to_num(err), capsize=3, label=block)
            else:
                ax.bar(pos, [by[block, r][field] for r in reductions], width, label=block)
        if field == "time":
            ax.axhline(0, color="black", lw=0.8)
            ax.set_title("time added (%), 95% CI")
        else:
            plain_log(ax, "y")
            ax.set_title(f"{label} added (%, log scale)")
        ax.set_xticks(x, [f"r={r}" for r in reductions])
    axes[0].legend()
    fig.suptitle("adding SE to an inverted residual: counted (left, middle) and measured (right)")
    fig.tight_layout()
    return fig
