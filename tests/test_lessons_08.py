"""effnb.lessons.deploy: the figures of notebook 08 draw the numbers they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from effnb import bench
from effnb.allocator import ProcessRecord, Study
from effnb.lessons import deploy as lesson
from effnb.roofline import Peaks, attainable, place

PEAKS = Peaks("cpu", 2, 40e9, 1e9, 10e9, 0.5e9, (1024, 4096, 1024), 256 * 2**20)


def _study() -> Study:
    recs = [
        ProcessRecord("default", i, "m", "m", ms, 0.5, f, (ms,))
        for i, (ms, f) in enumerate([(17.0, 3500.0), (25.0, 5400.0), (19.0, 4100.0)])
    ]
    recs += [
        ProcessRecord("glibc", i, "m", "m", ms, 0.2, 0.0, (ms,))
        for i, ms in enumerate([12.0, 11.5, 12.5])
    ]
    return Study(tuple(recs), {"jemalloc": "skipped"}, (), ("default", "glibc", "jemalloc"),
                 ("m",), 2, (3, 224, 224))  # fmt: skip


def test_allocator_figure_has_one_dot_per_process():
    fig = lesson.plot_allocator_study(_study())
    ax_ms, ax_f = fig.axes
    ys = [list(line.get_ydata()) for line in ax_ms.lines]
    assert ys == [[17.0, 25.0, 19.0], [12.0, 11.5, 12.5]]  # jemalloc was skipped: no column
    assert [list(line.get_ydata()) for line in ax_f.lines] == [[3500.0, 5400.0, 4100.0], [0.0] * 3]
    assert [t.get_text() for t in ax_ms.get_xticklabels()] == ["default", "glibc"]
    assert "2 threads" in fig._suptitle.get_text()
    plt.close(fig)


def _comparison() -> bench.Comparison:
    rounds = {
        "m eager": (10.0, 11.0, 12.0, 10.0, 10.5, 11.5, 10.0),
        "m fast": (5.0, 5.5, 6.0, 5.0, 5.25, 5.75, 5.0),  # exactly 2x in every round
        "n eager": (8.0,) * 7,
        "n fast": (2.0,) * 7,  # 4x
    }
    recs = {
        k: bench._record(k, torch.device("cpu"), 2, 1, (3, 8, 8), list(v))
        for k, v in rounds.items()
    }
    return bench.Comparison(records=recs, rounds=rounds)


def test_ladder_bars_are_the_median_speedups():
    ladders = {
        "m": [("eager", "m eager"), ("fast", "m fast")],
        "n": [("eager", "n eager"), ("fast", "n fast")],
    }
    fig = lesson.plot_ladder(_comparison(), ladders)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([1.0, 1.0, 2.0, 4.0])  # eager bars first, then the fast rung
    assert "7 rounds" in ax.get_title()
    plt.close(fig)


def test_roofline_points_sit_at_their_intensity_and_rate():
    placements = {
        "m": {
            "eager": place("m eager", 6e9, 3e9, 1.0, PEAKS),
            "ort": place("m ort", 6e9, 3e9, 0.5, PEAKS),
        },
        "n": {"eager": place("n eager", 8e9, 1e9, 0.4, PEAKS)},
    }
    fig = lesson.plot_roofline(PEAKS, placements)
    ax = fig.axes[0]
    points = [
        (line.get_xdata()[0], line.get_ydata()[0])
        for line in ax.lines
        if len(line.get_xdata()) == 1
    ]
    np.testing.assert_allclose(points, [(2.0, 6.0), (2.0, 12.0), (8.0, 20.0)])
    roof = ax.lines[0]
    np.testing.assert_allclose(roof.get_ydata(), attainable(roof.get_xdata(), PEAKS) / 1e9)
    assert "1024x4096x1024" in ax.get_title() and "40 GMAC/s" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["attainable (roofs)", "m", "n", "eager", "ort"]
    plt.close(fig)
