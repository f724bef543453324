"""Plotting and widget glue for notebook 03 (notebooks/03_inverted_residuals.ipynb).

The experiments and networks are built on the page; these functions draw what the page computed
and feed the widget with the page's builders. MACs: conv + linear multiply-accumulates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from effnb.costs import CostReport, profile
from effnb.plots import figure

__all__ = [
    "explore_mobilenet_v2",
    "part_costs",
    "plot_activations",
    "plot_block_comparison",
    "plot_expansion_sweep",
    "plot_projection_runs",
    "plot_relu_manifolds",
]


def plot_relu_manifolds(x: np.ndarray, pictures: Mapping, table: Mapping) -> Figure:
    """MobileNetV2's Fig. 1: top row T+ ReLU(T x), bottom row the best linear decoder, per n.

    ``pictures[n]``: (N, 2) arrays ``pinv``, ``linear`` and their ``*_error``; ``table[n]``: mean
    ``pinv_error``, ``linear_error``, ``recoverable`` over several T, drawn against n.
    """
    dims = list(pictures)
    fig, axes = figure(2, len(dims) + 1, width=2.3, height=2.3)
    colours = np.linspace(0, 1, len(x))
    axes[0, 0].scatter(x[:, 0], x[:, 1], c=colours, s=3, cmap="viridis")
    axes[0, 0].set_title("input spiral (2-D)", fontsize=9)
    for row, (key, name) in enumerate([("pinv", "T⁺ReLU(Tx)"), ("linear", "linear decoder")]):
        for col, n in enumerate(dims, start=1):
            pts = np.asarray(pictures[n][key])
            ax = axes[row, col]
            ax.scatter(pts[:, 0], pts[:, 1], c=colours, s=3, cmap="viridis")
            ax.set_title(f"n={n}: {name}\nerror {pictures[n][key + '_error']:.3f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    ax, ns = axes[1, 0], sorted(table)
    ax.plot(ns, [table[n]["pinv_error"] for n in ns], "o-", label="T⁺ error")
    ax.plot(ns, [table[n]["linear_error"] for n in ns], "s--", label="linear-decoder error")
    ax.plot(ns, [1 - table[n]["recoverable"] for n in ns], "^:", label="not recoverable")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("embedding width n")
    ax.set_ylabel("error / fraction (mean over T)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_block_comparison(rows: Sequence[Mapping]) -> Figure:
    """Bars per block (rows of ``label``, ``params``, ``macs``, ``skip_bytes``, ``widest_bytes``):
    params, MACs, and memory kept for the skip vs the widest tensor inside."""
    fig, axes = figure(1, 3, width=3.2, height=3.0)
    labels = [str(r["label"]) for r in rows]
    colours = [f"C{i}" for i in range(len(rows))]
    units = ("params (thousands)", "MACs (millions)")
    for ax, key, scale, unit in zip(axes[:2], ("params", "macs"), (1e3, 1e6), units, strict=True):
        ax.bar(labels, [r[key] / scale for r in rows], color=colours)
        ax.set_ylabel(unit)
    pos = np.arange(len(rows))
    skip = [r["skip_bytes"] / 1024 for r in rows]
    axes[2].bar(pos - 0.2, skip, 0.4, color="C2", label="kept for the skip")
    widest = [r["widest_bytes"] / 1024 for r in rows]
    axes[2].bar(pos + 0.2, widest, 0.4, color="C4", label="widest inside")
    axes[2].set_xticks(pos, labels)
    axes[2].set_ylabel("activation memory (KiB, float32)")
    axes[2].legend(fontsize=7, loc="upper left")
    axes[2].set_ylim(0, 1.3 * max(widest))
    fig.tight_layout()
    return fig


def plot_expansion_sweep(ts: Sequence[int], relative: Mapping, time_ci=None) -> Figure:
    """``relative``: label -> one value per t; ``time_ci``: per t the (low, median, high) of the
    measured time ratio to t = 1, drawn with its interval."""
    fig, ax = figure(1, 1, width=6.2, height=3.8)
    markers = "os^vx+"
    for i, (label, values) in enumerate(relative.items()):
        ax.plot(ts, values, marker=markers[i % len(markers)], linestyle="-", label=label)
    if time_ci is not None:
        lo, med, hi = (np.array(v) for v in zip(*time_ci, strict=True))
        err = np.vstack([med - lo, hi - med])
        label = "measured time (median, 95% CI)"
        ax.errorbar(ts, med, np.nan_to_num(err), fmt="D-", color="k", capsize=3, label=label)
    ax.set_xlabel("expansion ratio t")
    ax.set_ylabel("relative to t = 1")
    ax.set_xticks(list(ts))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_projection_runs(runs: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """``runs``: arm -> metric -> one value per seed. One panel per metric: each seed a dot,
    the mean with a +-1 standard deviation bar beside them."""
    arms = list(runs)
    metrics = list(runs[arms[0]])
    fig, axes = figure(1, len(metrics), width=3.4, height=3.2)
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics, strict=True):
        for i, arm in enumerate(arms):
            values = np.asarray(runs[arm][metric], dtype=float)
            jitter = np.linspace(-0.08, 0.08, len(values))
            ax.plot(i + jitter, values, "o", color=f"C{i}", alpha=0.6)
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.errorbar(i + 0.25, values.mean(), yerr=sd, fmt="s", color="k", capsize=4)
        ax.set_xticks(range(len(arms)), arms)
        ax.set_xlim(-0.5, len(arms) - 0.3)
        ax.set_ylabel(metric)
    axes[0].set_title("dots: seeds; squares: mean +- 1 sd", fontsize=8)
    fig.tight_layout()
    return fig


def plot_activations(lo: float = -5.0, hi: float = 8.0) -> Figure:
    """Three panels, so no curve hides another: ReLU vs ReLU6, swish vs h-swish, their gap."""
    x = torch.linspace(lo, hi, 1301)
    f = nn.functional
    fig, axes = figure(1, 3, width=3.3, height=3.0)
    for ax, (wide, dashed), title in [
        (axes[0], (("ReLU", f.relu), ("ReLU6", f.relu6)), "equal below 6, ReLU6 caps at 6"),
        (axes[1], (("swish x·σ(x)", f.silu), ("h-swish", f.hardswish)), "h-swish = x·ReLU6(x+3)/6"),
    ]:  # the first curve wide and pale, the second dashed on top: both stay visible
        ax.plot(x, wide[1](x), linewidth=4, alpha=0.45, label=wide[0])
        ax.plot(x, dashed[1](x), linestyle="--", linewidth=1.8, label=dashed[0])
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
        ax.set_ylabel("activation(x)")
    axes[2].plot(x, f.hardswish(x) - f.silu(x), color="C3")
    axes[2].axhline(0.0, color="0.5", linewidth=0.8)
    axes[2].set_title("h-swish − swish", fontsize=9)
    for ax in axes:
        ax.set_xlabel("x")
    fig.tight_layout()
    return fig


def part_costs(report: CostReport) -> dict[str, dict[str, int]]:
    """Params, MACs and output channels (of the last conv/linear) per part: 'stem', 'blocks.i',
    'head', 'classifier', as the page's builders name them; in order."""
    parts: dict[str, dict[str, int]] = {}
    for layer in report.layers:
        head, *rest = layer.name.split(".")  # 'blocks.3.conv_pw.conv' -> part 'blocks.3'
        name = f"{head}.{rest[0]}" if head == "blocks" and rest else head
        part = parts.setdefault(name, {"params": 0, "macs": 0, "channels": 0})
        part["params"] += layer.params
        part["macs"] += layer.macs
        if layer.type in ("Conv2d", "Linear") and ".se." not in f".{layer.name}.":
            part["channels"] = layer.output_shape[1]
    return parts


Builder = Callable[[float, int], nn.Module]


def explore_mobilenet_v2(
    build_reference: Builder, build_tutorial: Builder, width_mult: float = 1.0, expansion: int = 6
) -> tuple[str, Figure]:
    """Widget: the page's MobileNetV2 builders ``build_*(width_mult, expansion)`` under both
    roundings, counted at 224 px. Text: totals and channels; figure: params and MACs per part."""
    costs = {}
    for rule, build in (("reference", build_reference), ("tutorial", build_tutorial)):
        report = profile(build(width_mult, expansion), (3, 224, 224))
        costs[rule] = (report, part_costs(report))
    (ref, ref_parts), (tut, tut_parts) = costs["reference"], costs["tutorial"]
    text = (
        f"MobileNetV2, width {width_mult:.2f}, expansion t={expansion} (in the rows with t=6)\n"
        f"  reference rounding (make_divisible, last layer >= 1280): {ref.params:>10,} params, "
        f"{ref.macs / 1e6:6.1f}M MACs at 224 px\n"
        f"  tutorial rounding (max(8, int(c*w)), last layer scaled): {tut.params:>10,} params, "
        f"{tut.macs / 1e6:6.1f}M MACs at 224 px\n"
        f"  output channels, reference: {[p['channels'] for p in ref_parts.values()][:-1]}\n"
        f"  output channels, tutorial:  {[p['channels'] for p in tut_parts.values()][:-1]}"
    )
    names = list(ref_parts)
    short = [n.replace("blocks.", "b") if n != "classifier" else "fc" for n in names]
    fig, axes = figure(2, 1, width=9.0, height=2.6)
    pos = np.arange(len(names))
    for ax, key, unit, scale in [
        (axes[0], "params", "params (thousands, log)", 1e3),
        (axes[1], "macs", "MACs (millions, 224 px)", 1e6),
    ]:
        ax.bar(pos - 0.2, [ref_parts[n][key] / scale for n in names], 0.4, label="reference")
        ax.bar(pos + 0.2, [tut_parts[n][key] / scale for n in names], 0.4, label="tutorial")
        ax.set_xticks(pos, short, fontsize=7)
        ax.set_ylabel(unit, fontsize=8)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[0].set_title(
        f"width {width_mult:.2f}, t={expansion}: {ref.params / 1e6:.2f}M (reference) vs "
        f"{tut.params / 1e6:.2f}M (tutorial) params",
        fontsize=9,
    )
    fig.tight_layout()
    return text, fig
