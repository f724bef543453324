"""Figures and the reward widget of notebook 06 (notebooks/06_nas.ipynb); nothing here
measures or trains: the page builds the latency table, the reward and the search loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from effnb.nas.search import Candidate, mnasnet_reward, pareto_front
from effnb.plots import figure

__all__ = ["plot_latency_validation", "plot_search", "reward_curve_view"]


def reward_curve_view(w: float = -0.3, ratio: float = 2.0) -> tuple[str, object]:
    """Reward / ACC over LAT / T: MnasNet's soft and hard constraints, and w = ``w`` both sides."""
    x = np.linspace(0.25, 3.0, 300)
    fig, ax = figure(width=6.0, height=3.6)
    ax.plot(x, [mnasnet_reward(1, r, 1, "soft") for r in x], lw=2, label="soft (w = -0.07)")
    ax.plot(x, [mnasnet_reward(1, r, 1, "hard") for r in x], "--", lw=2, label="hard (0, -1)")
    ax.plot(x, x**w, ":", lw=2.5, label=f"w = {w:g} on both sides")
    ax.axvline(ratio, color="tab:red", lw=0.8, label=f"LAT / T = {ratio:g}")
    ax.set(xlabel="LAT / T", ylabel="reward / accuracy", ylim=(0, 1.5))
    ax.legend(loc="lower left")
    plt.close(fig)
    soft, hard = mnasnet_reward(1, ratio, 1, "soft"), mnasnet_reward(1, ratio, 1, "hard")
    return (
        f"At LAT = {ratio:g} x T the reward is {100 * ratio**w:.1f}% of the accuracy with "
        f"w = {w:g}; soft: {100 * soft:.1f}%, hard: {100 * hard:.1f}%."
    ), fig


def plot_latency_validation(measured: Sequence[float], predictions: Mapping[str, Sequence[float]]):
    """Each predictor's milliseconds against the measured ones, with the +-10% band."""
    meas = np.asarray(measured, dtype=float)
    fig, ax = figure(width=5.0, height=4.2)
    line = np.linspace(0.9 * meas.min(), 1.1 * meas.max(), 10)
    ax.plot(line, line, "k-", lw=0.8)
    ax.fill_between(line, 0.9 * line, 1.1 * line, color="grey", alpha=0.2, label="+-10%")
    for (label, pred), marker in zip(predictions.items(), "ox^s", strict=False):
        ax.scatter(meas, pred, marker=marker, s=22, alpha=0.8, label=label)
    ax.set(xlabel="measured whole network (ms, batch 1)", ylabel="predicted (ms)")
    ax.legend(loc="upper left")
    plt.close(fig)
    return fig


def plot_search(
    results: Mapping[str, Sequence[Candidate]],
    retrained: Mapping[str, tuple[float, Sequence[float]]],
):
    """Left: best reward so far per search. Right: accuracy vs predicted latency of every
    candidate (one seed), the Pareto front, and ``retrained`` name -> (latency, accuracies
    over seeds) drawn as mean with a min-max bar."""
    fig, (left, right) = figure(1, 2, width=5.0, height=3.8)
    styles = [
        {"ls": "-", "marker": "o", "ms": 5},
        {"ls": "--", "marker": "s", "ms": 9, "mfc": "none"},
    ]
    for (name, cands), style in zip(results.items(), styles, strict=False):
        best = np.maximum.accumulate([c.reward for c in cands])
        left.plot(range(1, len(best) + 1), best, label=name, **style)
        right.scatter(
            [c.latency_ms for c in cands], [100 * c.accuracy for c in cands],
            marker=style["marker"], alpha=0.5, label=f"{name} candidates (seed 0)",
        )  # fmt: skip
    left.set(xlabel="evaluations (trainings)", ylabel="best reward so far")
    left.legend()
    front = pareto_front([c for cands in results.values() for c in cands])
    lat, acc = [c.latency_ms for c in front], [100 * c.accuracy for c in front]
    right.plot(lat, acc, "k-", lw=0.8, label="Pareto front (seed 0)")
    colors = ("tab:red", "tab:brown", "tab:purple")
    for (name, (ms, accs)), color in zip(retrained.items(), colors, strict=False):
        a = 100 * np.asarray(accs)
        right.errorbar(
            ms, a.mean(), yerr=[[a.mean() - a.min()], [a.max() - a.mean()]], fmt="*", ms=12,
            capsize=4, color=color, label=f"{name}, {len(a)} new seeds",
        )  # fmt: skip
    right.set(xlabel="predicted latency (ms, batch 1)", ylabel="val accuracy (%)")
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    plt.close(fig)
    return fig
