"""effnb.lessons.counting (notebook 00): the widget view and the two figures.
No timings are asserted; the figures get fixed, asymmetric data."""

from __future__ import annotations

import statistics

import matplotlib
import pytest
import torch
from matplotlib.patches import Polygon, Rectangle

from effnb.lessons import counting

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _one_thread():
    """One forward pass per test, no speed needed: one thread avoids fighting over shared cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_mobilenet_v2_cost_view_text_changes_with_resolution_and_width():
    text_224, fig = counting.mobilenet_v2_cost_view(224)
    assert "3,504,872 params" in text_224
    assert "300.8M MACs = 601.5M FLOPs" in text_224
    text_160, fig2 = counting.mobilenet_v2_cost_view(160)
    assert "154.1M MACs" in text_160 and "(0.51x the MACs at 224" in text_160
    text_half, fig3 = counting.mobilenet_v2_cost_view(224, 0.5)
    assert "width 0.5" in text_half and "1,968,680 params" in text_half
    bars = [p.get_height() for p in fig2.axes[0].patches]
    assert bars == pytest.approx([154.1, 308.2], abs=0.05)
    for f in (fig, fig2, fig3):
        matplotlib.pyplot.close(f)


def test_plot_naive_vs_benchmark_draws_every_call_and_both_boxes():
    calls = [30.0, 10.0, 11.0, 12.0]
    naive, bench = [9.0, 14.0, 10.0, 30.0, 11.0], [10.0, 10.5, 10.2, 10.1, 10.4]
    fig = counting.plot_naive_vs_benchmark(calls, naive, bench)
    ax1, ax2 = fig.axes
    bars = [p for p in ax1.patches if isinstance(p, Rectangle)]
    assert [b.get_height() for b in bars] == calls
    assert bars[0].get_facecolor() != bars[1].get_facecolor()  # call 1 stands out
    medians = sorted(line.get_ydata()[0] for line in ax2.lines if line.get_color() == "C1")
    assert medians == sorted([statistics.median(naive), statistics.median(bench)])
    points = [line for line in ax2.lines if line.get_marker() == "o" and len(line.get_ydata())]
    assert sorted(points[0].get_ydata()) == sorted(naive)
    assert sorted(points[1].get_ydata()) == sorted(bench)
    matplotlib.pyplot.close(fig)


def test_plot_rounds_shades_the_interval_only_when_there_is_one():
    per_round = {"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.5]}
    ratios = [0.5, 1.0, 1.2]
    fig = counting.plot_rounds(per_round, ratios, "a / b", (0.5, 1.0, 1.2), {"other": [0.8, 0.9]})
    ax1, ax2 = fig.axes
    assert [list(line.get_ydata()) for line in ax1.lines] == list(per_round.values())
    assert len([p for p in ax2.patches if isinstance(p, Polygon | Rectangle)]) == 1
    labels = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert labels == ["per-round ratio", "median 1.00", "95% CI 0.50-1.20"]
    marks = [line for line in ax2.lines if line.get_marker() == "_"]
    assert [list(line.get_ydata()) for line in marks] == [[0.8, 0.9]]
    assert marks[0].get_xdata()[0] == 6  # a column of its own after round 3
    assert ax2.get_xticklabels()[-1].get_text() == "other"
    matplotlib.pyplot.close(fig)
    fig = counting.plot_rounds(per_round, ratios, "a / b", (float("nan"), 1.0, float("nan")))
    assert not fig.axes[1].patches
    assert "95% CI" not in " ".join(t.get_text() for t in fig.axes[1].get_legend().get_texts())
    matplotlib.pyplot.close(fig)
