"""effnb.lessons.scaling (notebook 05's figures and widget): values, not "it ran"."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from effnb.lessons import scaling as S  # noqa: E402
from effnb.models import model_info  # noqa: E402

KEYS = [f"b{i}" for i in range(8)]
# variant -> (params, MACs at native resolution), torchvision's counts kept in the registry
COSTS = {
    k: (
        model_info(f"efficientnet_{k}").reference_params,
        model_info(f"efficientnet_{k}").reference_macs,
    )
    for k in KEYS
}


def test_scaled_costs_count_b0_and_b2():
    assert S.scaled_costs(1.0, 1.0, 224) == (5_288_548, 385_814_752)
    assert S.scaled_costs(1.1, 1.2, 260) == (9_109_994, 993_561_872)
    params, macs = S.scaled_costs(1.0, 1.0, 448)  # resolution: MACs about 4x, params unchanged
    assert params == 5_288_548
    assert 3.9 < macs / 385_814_752 < 4.0


def test_scaled_costs_rejects_bad_multipliers():
    with pytest.raises(ValueError):
        S.scaled_costs(0.0, 1.0, 224)


def _star(fig):
    """The widget's star: the last scatter's single offset (MACs in G, params in M)."""
    ((x, y),) = fig.axes[0].collections[-1].get_offsets()
    return float(x), float(y)


def test_scaled_model_view_b0_and_a_wider_net_change_text_and_star():
    text, fig = S.scaled_model_view(1.0, 1.0, 224, COSTS)
    star = _star(fig)
    plt.close(fig)
    assert "5.29M params, 0.386G MACs" in text
    assert "MACs / B0's = 1.00x" in text and "closest released variant by MACs: B0" in text
    assert "latency" not in text
    assert star == pytest.approx((0.385814752, 5.288548))
    # the browser test moves the first slider (width): text and plot must both change
    text2, fig2 = S.scaled_model_view(1.5, 1.0, 224, COSTS, ms_per_gmac=100.0)
    star2 = _star(fig2)
    plt.close(fig2)
    assert text2 != text and star2[0] > star[0] and star2[1] > star[1]
    params, macs = S.scaled_costs(1.5, 1.0, 224)
    assert f"latency estimate (B0's ms per GMAC x these MACs): {100.0 * macs / 1e9:.0f} ms" in text2
    assert star2 == pytest.approx((macs / 1e9, params / 1e6))


def test_scaled_model_view_names_the_closest_variant_by_macs():
    text, fig = S.scaled_model_view(2.0, 3.1, 600, COSTS)
    plt.close(fig)
    assert "closest released variant by MACs: B7" in text
    assert "d * w^2 * (r/224)^2 = 88.97x" in text  # 3.1 * 4 * (600/224)^2


def test_plot_macs_draws_the_points_and_the_fit():
    predicted = [1.0, 1.26, 1.96, 3.62, 10.15, 23.34, 46.8, 88.97]
    fig = S.plot_macs(predicted, COSTS, 1.92, (0.969, 19.99))
    left, right = fig.axes
    counted = left.collections[0].get_offsets()
    assert np.allclose(counted[:, 0], predicted)
    assert np.allclose(counted[:, 1], [COSTS[k][1] / 1e9 for k in KEYS])
    assert "slope 0.969" in left.get_legend().get_texts()[0].get_text()
    formula = right.get_lines()[1].get_ydata()  # B0 x 1.92^phi
    assert formula[3] == pytest.approx(COSTS["b0"][1] / 1e9 * 1.92**3)
    assert [t.get_text() for t in right.get_xticklabels()] == [k.upper() for k in KEYS]
    plt.close(fig)


def test_plot_experiment_one_column_per_arm_with_mean_and_range():
    rows = [{"arm": "base", "macs": 87_936, "val_acc": v} for v in (0.97, 0.96, 0.98)] + [
        {"arm": "depth", "macs": 262_560, "val_acc": v} for v in (0.95, 0.99, 0.96)
    ]
    fig = S.plot_experiment(rows)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["base\n88K MACs", "depth\n263K MACs"]
    means = [line.get_ydata()[0] for line in ax.get_lines() if line.get_marker() == "s"]
    assert means == pytest.approx([97.0, 96.667], abs=1e-3)
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]  # one scatter per arm
    seeds = dots[1].get_offsets()  # the depth arm's, one dot per seed
    assert sorted(seeds[:, 1]) == pytest.approx([95.0, 96.0, 99.0])
    assert "3 seeds" in ax.get_title()
    plt.close(fig)
