"""Figures and the widget of notebook 04 (notebooks/04_shufflenet_ghostnet.ipynb).

The guideline models, the ShuffleNetV2 unit and network, the ghost module and GhostNet are
built on the notebook's page; this module only draws what the page measured.

* ``plot_guidelines``: measured time of each guideline variant relative to its baseline (with
  the 95% confidence interval of the median per-round ratio) next to its MACs ratio.
* ``plot_latency_vs_macs``: median latency (with its interval) against MACs, one point a model.
* ``explore_ghost``: the widget, a ghost module's MACs against an ordinary 1x1 conv.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from effnb._checks import check_int
from effnb.bench import Comparison, median_ci
from effnb.plots import figure

__all__ = ["explore_ghost", "plot_guidelines", "plot_latency_vs_macs"]


def plot_guidelines(
    comparisons: Mapping[str, Comparison],
    macs: Mapping[str, Mapping[str, int]],
    verdicts: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per guideline: time / time(first label) with its 95% CI, and MACs / MACs(first).

    ``macs[guideline][label]`` are the variants' MACs; ``verdicts[guideline]`` goes under the
    panel's title (one line per verdict: separate them with newlines).
    """
    fig, axes = figure(1, len(comparisons), width=3.3, height=3.6)
    for ax, (name, comp) in zip(np.atleast_1d(axes), comparisons.items(), strict=True):
        labels = list(comp.records)
        base = labels[0]
        cis = [comp.ratio_ci(label, base) if label != base else (1.0, 1.0, 1.0) for label in labels]
        med = np.array([c[1] for c in cis])
        lo = np.array([c[0] for c in cis])
        hi = np.array([c[2] for c in cis])
        lo, hi = np.where(np.isfinite(lo), lo, med), np.where(np.isfinite(hi), hi, med)
        pos = np.arange(len(labels))
        ax.bar(pos, med, 0.6, color="C0", label="measured time (95% CI)")
        ax.errorbar(pos, med, yerr=[med - lo, hi - med], fmt="none", ecolor="k", capsize=3)
        ratios = [macs[name][label] / macs[name][base] for label in labels]
        ax.plot(pos, ratios, "D", color="C1", ms=6, label="MACs")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(pos, labels, rotation=35, ha="right", fontsize=8)
        title = name if verdicts is None else f"{name}\n{verdicts[name]}"
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, max(1.2, float(hi.max()) * 1.1))
    first = np.atleast_1d(axes)[0]
    device = next(iter(next(iter(comparisons.values())).records.values())).device
    first.set_ylabel(f"time or MACs relative to the first bar ({device})")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(*first.get_legend_handles_labels(), loc="upper center", ncol=2, fontsize=8)
    return fig


def plot_latency_vs_macs(comparison: Comparison, macs: Mapping[str, int]) -> Figure:
    """Median per-round latency against MACs, with the 95% CI of that median as error bars."""
    fig, ax = figure(1, 1, width=6.4, height=4.2)
    rec = next(iter(comparison.records.values()))
    for i, (name, rounds) in enumerate(comparison.rounds.items()):
        lo, med, hi = median_ci(rounds)
        lo, hi = (lo, hi) if math.isfinite(lo) else (med, med)
        x = macs[name] / 1e6
        ax.errorbar(x, med, yerr=[[med - lo], [hi - med]], fmt="o", color=f"C{i}", capsize=3)
        ax.annotate(name, (x, med), fontsize=8, xytext=(6, -3), textcoords="offset points")
    ax.set_xlabel("MACs (millions, conv + linear, 224 px)")
    ax.set_ylabel(f"median latency, ms ({rec.device}, {rec.threads} thread(s), batch 1)")
    ax.set_xlim(0, max(macs.values()) / 1e6 * 1.35)
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    return fig


def explore_ghost(ratio: int = 2, c_out: int = 64, c_in: int = 64) -> tuple[str, Figure]:
    """Widget: a ghost module C_in -> C_out with ratio s against an ordinary 1x1 conv (56 x 56).

    m = ceil(C_out / s) maps from the 1x1 conv (C_in m MACs per pixel), (s - 1) m from the 3x3
    depthwise cheap operation (9 MACs per map per pixel), then the slice keeps C_out of them.
    """
    ratio = check_int("ratio", ratio, minimum=2)
    c_out, c_in = check_int("c_out", c_out), check_int("c_in", c_in)
    hw = 56 * 56
    m = math.ceil(c_out / ratio)
    ghosts = (ratio - 1) * m
    primary, cheap, ordinary = c_in * m * hw, 9 * ghosts * hw, c_in * c_out * hw
    saving = ordinary / (primary + cheap)
    text = (
        f"GhostModule {c_in} -> {c_out}, s = {ratio}: the 1x1 conv makes m = ceil({c_out}/{ratio}) "
        f"= {m} maps, the 3x3 depthwise makes {ghosts}, {m + ghosts} sliced to {c_out}\n"
        f"MACs at 56x56: {primary:,} + {cheap:,} = {primary + cheap:,} vs ordinary 1x1 "
        f"{ordinary:,}: {saving:.2f}x fewer (the limit for large C_in is s = {ratio})"
    )
    fig, ax = figure(1, 1, width=5.5, height=3.2)
    ax.bar(["ghost module"], [primary / 1e6], color="C0", label="primary 1x1")
    ax.bar(
        ["ghost module"], [cheap / 1e6], bottom=[primary / 1e6], color="C1", label="cheap 3x3 dw"
    )
    ax.bar(["ordinary 1x1"], [ordinary / 1e6], color="C2", label="ordinary 1x1")
    ax.set_ylabel("MACs (millions, 56x56)")
    ax.set_title(f"s = {ratio}, C_out = {c_out}: {saving:.2f}x fewer MACs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return text, fig
