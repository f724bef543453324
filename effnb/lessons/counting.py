"""Figures and the widget of notebooks/00_counting_and_timing.ipynb; the counting and the
timing themselves are done on the page."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from matplotlib.ticker import MaxNLocator
from torch import nn

from effnb._checks import check_int
from effnb.costs import profile
from effnb.models import create_model
from effnb.plots import figure

__all__ = ["mobilenet_v2_cost_view", "plot_naive_vs_benchmark", "plot_rounds"]


def plot_naive_vs_benchmark(
    call_ms: Sequence[float], naive_ms: Sequence[float], bench_ms: Sequence[float]
):
    """Left: each naive call's time (call 1 in red). Right: the number each method reported
    in each repeat, as points over a box (quartiles, median line, whiskers to the extremes)."""
    fig, (ax1, ax2) = figure(1, 2, width=4.2, height=3.4)
    ax1.bar(range(1, len(call_ms) + 1), call_ms, color=["tab:red"] + ["tab:blue"] * len(call_ms))
    ax1.set_xlabel("call number (fresh model, new input shape)")
    ax1.set_ylabel("time of that one call (ms)")
    ax1.set_title("one time.time() per call (call 1 in red)", fontsize=10)
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    groups = {"one naive call": naive_ms, "benchmark median": bench_ms}
    ax2.boxplot(list(groups.values()), whis=(0, 100), widths=0.5)
    for i, values in enumerate(groups.values(), start=1):
        offsets = [0.18 * ((j * 0.618) % 1 - 0.5) for j in range(len(values))]
        ax2.plot([i + o for o in offsets], values, "o", ms=4, alpha=0.7, color="tab:blue")
    ax2.set_xticks([1, 2], list(groups))
    ax2.set_ylabel("reported time (ms)")
    ax2.set_title(f"the number each method reports, {len(naive_ms)} repeats", fontsize=10)
    fig.tight_layout()
    return fig


def plot_rounds(
    per_round: Mapping[str, Sequence[float]],
    ratios: Sequence[float],
    ratio_label: str,
    ci: tuple[float, float, float],
    marks: Mapping[str, Sequence[float]] | None = None,
):
    """Left: per-round times of each label. Right: the per-round ratios, their median and its
    confidence interval (shaded; absent when there are too few rounds), and ``marks`` (other
    estimates of the same ratio, drawn as ticks in a column of their own, named on the x axis)."""
    fig, (ax1, ax2) = figure(1, 2, width=4.2, height=3.4)
    for label, times in per_round.items():
        ax1.plot(range(1, len(times) + 1), times, "o-", ms=4, label=label)
    ax1.set_xlabel("round")
    ax1.set_ylabel("median time per call in the round (ms)")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    n = len(ratios)
    ax2.plot(range(1, n + 1), ratios, "o", color="tab:purple", label="per-round ratio")
    lo, med, hi = ci
    ax2.axhline(med, color="tab:purple", lw=1, label=f"median {med:.2f}")
    if lo == lo and hi == hi:  # not NaN
        ax2.axhspan(lo, hi, color="tab:purple", alpha=0.15, label=f"95% CI {lo:.2f}-{hi:.2f}")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    if marks:
        ticks = [int(t) for t in ax2.get_xticks() if 1 <= t <= n]
        for i, values in enumerate(marks.values()):
            ax2.plot([n + 3 + i] * len(values), values, "_", ms=14, mew=2, color="tab:gray")
            ticks.append(n + 3 + i)
        ax2.set_xticks(ticks, [str(t) for t in ticks[: -len(marks)]] + list(marks))
    ax2.axhline(1.0, color="k", lw=0.6, ls=":")
    ax2.set_xlabel("round")
    ax2.set_ylabel(ratio_label)
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
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
    """Widget view: MobileNetV2's params, MACs and FLOPs (= 2 x MACs) at one resolution and
    width. Returns (text, figure): bars for MACs and FLOPs, MACs against resolution."""
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
    ax1.set_ylim(0, 2 * _v2_cost(max(RESOLUTIONS), 1.4)[1] / 1e6 * 1.05)
    ax1.set_title(f"{resolution} px, width {width_mult}")
    sizes = sorted(set(RESOLUTIONS) | {resolution})
    ax2.plot(sizes, [_v2_cost(s, width_mult)[1] / 1e6 for s in sizes], "o-", ms=3)
    ax2.plot([resolution], [macs / 1e6], "o", color="tab:red", ms=8)
    ax2.set_xlabel("input resolution (px)")
    ax2.set_ylabel("MACs (millions)")
    ax2.set_title(f"params fixed at {params / 1e6:.2f}M")
    fig.tight_layout()
    return text, fig
