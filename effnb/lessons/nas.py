"""Figures and widget functions for notebook 06 (notebooks/06_nas.ipynb): NAS on a CPU.

Every function returns a figure (and, for widgets, a text) computed from effnb.nas;
nothing here measures or trains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from effnb.nas.latency import ValidationReport, measurement_halves, repeatability
from effnb.nas.search import HARD, SOFT, Candidate, SearchResult, pareto_front, reward
from effnb.plots import figure

__all__ = [
    "plot_latency_validation",
    "plot_pareto",
    "plot_search_progress",
    "reward_curve_view",
    "winner_view",
]


def reward_curve_view(w: float = -0.07, ratio: float = 2.0) -> tuple[str, object]:
    """Reward / ACC over LAT/T for MnasNet's soft and hard constraints and for w = ``w``.

    The text says how much of its reward a model ``ratio`` times the target keeps with
    exponent ``w`` (applied on both sides of T) and under the soft and hard constraints.
    """
    x = np.linspace(0.25, 3.0, 300)
    curves = {
        "soft (w = -0.07)": [reward(1.0, r, 1.0, *SOFT) for r in x],
        "hard (0 below T, -1 above)": [reward(1.0, r, 1.0, *HARD) for r in x],
        f"w = {w:g} on both sides": [reward(1.0, r, 1.0, w, w) for r in x],
    }
    fig, ax = figure(width=6.0, height=3.6)
    for (label, y), style in zip(curves.items(), ["-", "--", ":"], strict=True):
        ax.plot(x, y, style, label=label, lw=2)
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.axvline(ratio, color="tab:red", lw=0.8)
    ax.set_xlabel("LAT / T")
    ax.set_ylabel("reward / accuracy")
    ax.set_ylim(0, 1.3)
    ax.legend(loc="upper right")
    keep = reward(1.0, ratio, 1.0, w, w)
    text = (
        f"At LAT = {ratio:g} x T a model keeps {100 * keep:.1f}% of its accuracy as reward with "
        f"w = {w:g}; soft: {100 * reward(1.0, ratio, 1.0, *SOFT):.1f}%, "
        f"hard: {100 * reward(1.0, ratio, 1.0, *HARD):.1f}%."
    )
    plt_close(fig)
    return text, fig


def plt_close(fig) -> None:
    """Detach ``fig`` from pyplot so notebooks do not draw it twice."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def winner_view(
    candidates: Sequence[Candidate], target_ms: float, w: float = -0.07
) -> tuple[str, object]:
    """Which evaluated candidate wins for target ``target_ms`` and exponent ``w``.

    Re-scores the already-trained candidates (no training): reward = ACC * (LAT / T) ** w with
    the same w on both sides (``w = -1`` with ``hard``-like behaviour above T).
    """
    unique = list({c.code: c for c in candidates}.values())
    scores = [reward(c.accuracy, c.latency_ms, target_ms, w, w) for c in unique]
    best = unique[int(np.argmax(scores))]
    fig, ax = figure(width=6.0, height=3.6)
    sc = ax.scatter(
        [c.latency_ms for c in unique], [100 * c.accuracy for c in unique], c=scores, cmap="viridis"
    )
    ax.scatter([best.latency_ms], [100 * best.accuracy], s=200, facecolors="none", edgecolors="r")
    ax.axvline(target_ms, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("predicted latency (ms, batch 1, this CPU)")
    ax.set_ylabel("val accuracy (%)")
    fig.colorbar(sc, ax=ax, label="reward")
    text = (
        f"T = {target_ms:.2f} ms, w = {w:g}: the winner is {best.arch} "
        f"(accuracy {100 * best.accuracy:.1f}%, predicted {best.latency_ms:.2f} ms)."
    )
    plt_close(fig)
    return text, fig


def plot_latency_validation(report: ValidationReport, per_round: np.ndarray | None = None):
    """Predicted vs measured latency with the +-10% band, and the measurement against itself.

    ``per_round`` (rounds, n) are the held-out networks' per-round times; the second panel
    plots the two measurements ``effnb.nas.repeatability`` compares
    (``effnb.nas.latency.measurement_halves``: with 4 or more rounds, the median of the odd
    rounds against the median of the even rounds).
    """
    ncols = 2 if per_round is not None else 1
    fig, axes = figure(1, ncols, width=4.6, height=4.0)
    axes = np.atleast_1d(axes)
    meas, pred = np.array(report.measured_ms), np.array(report.predicted_ms)
    lo, hi = 0.9 * min(meas.min(), pred.min()), 1.1 * max(meas.max(), pred.max())
    line = np.linspace(lo, hi, 10)
    for ax in axes:
        ax.plot(line, line, "k-", lw=0.8)
        ax.fill_between(line, 0.9 * line, 1.1 * line, color="grey", alpha=0.2, label="+-10%")
    axes[0].scatter(meas, pred)
    axes[0].set_xlabel("measured whole network (ms)")
    axes[0].set_ylabel("predicted from block table (ms)")
    axes[0].set_title(
        f"{100 * report.within_10:.0f}% within +-10%, rho = {report.spearman_rho:.2f}"
    )
    axes[0].legend(loc="upper left")
    if per_round is not None:
        first, second = measurement_halves(per_round)
        axes[1].scatter(first, second, color="tab:orange")
        axes[1].set_xlabel("measurement 1: even rounds (ms)")
        axes[1].set_ylabel("measurement 2: odd rounds (ms)")
        axes[1].set_title(f"repeatability: {100 * repeatability(per_round):.0f}% within +-10%")
    fig.tight_layout()
    plt_close(fig)
    return fig


def plot_search_progress(results: Sequence[SearchResult]):
    """Best reward so far vs number of evaluations, one line per search."""
    fig, ax = figure(width=6.0, height=3.6)
    for res in results:
        curve = res.best_reward_so_far()
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=res.strategy)
    ax.set_xlabel("evaluations (short trainings)")
    ax.set_ylabel("best reward so far")
    ax.legend()
    plt_close(fig)
    return fig


def plot_pareto(
    candidates: Sequence[Candidate], baselines: dict[str, tuple[float, float]] | None = None
):
    """Accuracy vs predicted latency of every candidate, the Pareto front, and baselines.

    ``baselines`` maps a name to (predicted latency ms, accuracy).
    """
    front = pareto_front(candidates)
    fig, ax = figure(width=6.0, height=3.8)
    ax.scatter(
        [c.latency_ms for c in candidates],
        [100 * c.accuracy for c in candidates],
        alpha=0.5,
        label="evaluated",
    )
    ax.plot(
        [c.latency_ms for c in front],
        [100 * c.accuracy for c in front],
        "r-o",
        label="Pareto front",
    )
    for name, (lat, acc) in (baselines or {}).items():
        ax.scatter([lat], [100 * acc], marker="*", s=160, label=name)
    ax.set_xlabel("predicted latency (ms, batch 1, this CPU)")
    ax.set_ylabel("val accuracy (%)")
    ax.legend(fontsize=8)
    plt_close(fig)
    return fig
