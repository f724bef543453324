"""The plotting and widget glue of effnb.lessons.squeeze_excite (notebook 02), and its checks."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

from effnb.costs import se_params
from effnb.lessons import squeeze_excite as se

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402


@pytest.mark.parametrize(("channels", "reduction", "squeeze"), [(240, 4, 60), (248, 16, 15)])
def test_se_cost_view_text_and_curve(channels, reduction, squeeze):
    text, fig = se.se_cost_view(channels, reduction)
    assert f"squeeze {squeeze}," in text
    assert f"= {se_params(channels, squeeze):,} (weights {2 * channels * squeeze:,})" in text
    assert f"MACs {2 * channels * squeeze:,} per image" in text
    curve, star = fig.axes[0].lines
    assert list(curve.get_xdata()) == [2, 4, 8, 16, 32]
    assert list(curve.get_ydata()) == [
        se_params(channels, channels // r) for r in (2, 4, 8, 16, 32)
    ]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (reduction, se_params(channels, squeeze))
    plt.close(fig)


def test_se_cost_view_zero_width_draws_only_buildable_ratios():
    text, fig = se.se_cost_view(8, 16)
    assert "C // r = 0, a zero-width SE" in text
    (curve,) = fig.axes[0].lines  # no star for an SE that cannot be built
    assert list(curve.get_xdata()) == [2, 4, 8]
    plt.close(fig)


def test_plot_gates_draws_both_curves_distinctly_and_their_difference():
    x = np.array([-4.0, -3.0, -1.0, 0.0, 2.0, 3.0])
    fig = se.plot_gates(x)
    ax1, ax2 = fig.axes
    sig, hsig = ax1.lines
    assert sig.get_linestyle() != hsig.get_linestyle()
    np.testing.assert_allclose(hsig.get_ydata(), [0.0, 0.0, 1 / 3, 0.5, 5 / 6, 1.0])
    np.testing.assert_allclose(sig.get_ydata(), 1 / (1 + np.exp(-x)))
    diff = ax2.lines[0].get_ydata()
    np.testing.assert_allclose(diff, hsig.get_ydata() - sig.get_ydata())
    plt.close(fig)


def test_plot_se_overhead_bar_heights_and_error_bars():
    rows = [
        {"block": "a", "r": 2, "params_pct": 200.0, "macs_pct": 0.3, "time": (1.1, 1.2, 1.5)},
        {"block": "a", "r": 4, "params_pct": 100.0, "macs_pct": 0.1, "time": None},
        {"block": "b", "r": 2, "params_pct": 270.0, "macs_pct": 5.6, "time": (0.9, 1.05, 1.3)},
        {"block": "b", "r": 4, "params_pct": 130.0, "macs_pct": 2.8, "time": (1.0, 1.1, 1.2)},
    ]
    fig = se.plot_se_overhead(rows, ["a", "b"], reductions=(2, 4))
    params_ax, macs_ax, time_ax = fig.axes

    def heights(ax):
        return [round(p.get_height(), 6) for p in ax.patches]

    assert heights(params_ax) == [200.0, 100.0, 270.0, 130.0]
    assert heights(macs_ax) == [0.3, 0.1, 5.6, 2.8]
    times = heights(time_ax)
    assert times[0] == 20.0 and math.isnan(times[1]) and times[2:] == [5.0, 10.0]
    errorbars = [c for c in time_ax.containers if isinstance(c, ErrorbarContainer)]
    segments = errorbars[0].lines[2][0].get_segments()  # block "a": one vertical line per bar
    (x0, low), (_, high) = segments[0]
    assert (round(low, 6), round(high, 6)) == (10.0, 50.0)  # the CI 1.1-1.5 as % added
    plt.close(fig)
