"""The figure and widget glue of notebook 04 (effnb.lessons.shuffle_ghost), on made-up timings."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from effnb import profile  # noqa: E402
from effnb.bench import Comparison, LatencyRecord  # noqa: E402
from effnb.layers import GhostModule  # noqa: E402
from effnb.lessons import shuffle_ghost as S  # noqa: E402


def _comparison(rounds: dict[str, list[float]]) -> Comparison:
    records = {
        k: LatencyRecord(k, "cpu", 1, 1, (8, 4, 4), float(np.median(v)), 0.0, min(v), tuple(v))
        for k, v in rounds.items()
    }
    return Comparison(records=records, rounds={k: tuple(v) for k, v in rounds.items()})


def test_plot_guidelines_draws_ratios_cis_and_macs() -> None:
    # "b" takes twice the time of "a" in every round but one; "c" 0.5x; 8 rounds give a 95% CI
    a = [1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 1.1, 1.0]
    b = [2 * t for t in a]
    b[3] = 3.0
    comp = _comparison({"a": a, "b": b, "c": [t / 2 for t in a]})
    macs = {"G9": {"a": 100, "b": 150, "c": 100}}
    fig = S.plot_guidelines({"G9": comp}, macs, {"G9": "agrees\nnot resolved on this CPU"})
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([1.0, 2.0, 0.5])
    diamonds = [line for line in ax.lines if line.get_marker() == "D"][0]
    assert list(diamonds.get_ydata()) == pytest.approx([1.0, 1.5, 1.0])
    assert ax.get_title() == "G9\nagrees\nnot resolved on this CPU"
    lo, med, hi = comp.ratio_ci("b", "a")
    assert (lo, med, hi) == pytest.approx((2.0, 2.0, 3.0))
    # the error bar of "b" spans its CI (ylim leaves room above the highest end)
    assert ax.get_ylim()[1] == pytest.approx(3.0 * 1.1)
    legend = sorted(t.get_text() for t in fig.legends[0].get_texts())
    assert legend == ["MACs", "measured time (95% CI)"]
    plt.close(fig)


def test_plot_latency_vs_macs_places_each_model_at_its_macs_and_median() -> None:
    comp = _comparison({"big": [30.0] * 6 + [31.0, 29.0], "small": [10.0] * 8})
    fig = S.plot_latency_vs_macs(comp, {"big": 500_000_000, "small": 40_000_000})
    ax = fig.axes[0]
    points = sorted(
        (float(line.get_xdata()[0]), float(line.get_ydata()[0]))
        for line in ax.lines
        if line.get_marker() == "o"
    )
    assert points == [(40.0, 10.0), (500.0, 30.0)]
    assert sorted(t.get_text() for t in ax.texts) == ["big", "small"]
    assert "cpu, 1 thread" in ax.get_ylabel()
    plt.close(fig)


@pytest.mark.parametrize(("ratio", "c_out"), [(2, 64), (3, 64), (2, 15), (4, 17), (2, 1)])
def test_explore_ghost_matches_profile_of_effnb_ghost_module(ratio: int, c_out: int) -> None:
    text, fig = S.explore_ghost(ratio, c_out, c_in=64)
    convs = [
        layer.macs
        for layer in profile(GhostModule(64, c_out, ratio=ratio), (64, 56, 56)).layers
        if layer.type == "Conv2d"
    ]
    assert f"= {sum(convs):,} vs ordinary 1x1 {64 * c_out * 56 * 56:,}" in text
    assert f"{convs[0]:,} + {convs[1]:,}" in text
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert bars == pytest.approx(np.array([convs[0], convs[1], 64 * c_out * 3136]) / 1e6)
    plt.close(fig)


def test_explore_ghost_text_and_errors() -> None:
    text, fig = S.explore_ghost(3, 64)
    assert "m = ceil(64/3) = 22 maps" in text and "66 sliced to 64" in text
    assert "2.27x fewer" in text
    plt.close(fig)
    text, fig = S.explore_ghost(2, 15)
    assert "m = ceil(15/2) = 8" in text and "16 sliced to 15" in text
    plt.close(fig)
    with pytest.raises(ValueError, match="ratio"):
        S.explore_ghost(1, 64)
