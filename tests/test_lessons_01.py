"""Values computed by effnb.lessons.depthwise (notebook 01); no timings asserted."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from effnb.costs import reduction_factor
from effnb.lessons import depthwise

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _one_thread():
    """One forward pass per test, no speed needed: one thread avoids fighting over shared cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --- counting (notebook 00) ------------------------------------------------------------


def test_formula_vs_counted_all_match():
    rows = depthwise.formula_vs_counted(256, 256, 3, 56)
    assert all(row.match for row in rows)
    values = {row.what: row.counted for row in rows}
    assert values["standard conv weights"] == 589_824
    assert values["separable conv weights"] == 67_840
    assert values["standard MACs (FlopCounterMode / 2)"] == 1_849_688_064
    assert values["separable MACs (effnb.costs.profile)"] == 212_746_240


def test_seed_ratio_errata():
    s = depthwise.seed_ratio(256, 3, 56)
    assert s["standard_params_with_bias"] == 590_080
    assert s["separable_params_with_bn"] == 68_864
    assert s["separable_bn_params"] == 1_024
    assert round(s["seed_ratio"], 1) == 8.6
    assert math.isclose(s["weights_ratio"], 256 * 9 / 265)
    assert round(s["formula_ratio"], 2) == 8.69
    assert s["thop_separable_macs"] == 212_746_240 + 2 * 4 * 256 * 56 * 56
    assert round(s["thop_macs_ratio"], 2) == 8.44


def test_reduction_view_text_depends_on_c_out():
    text, fig = depthwise.reduction_view(256, 3)
    assert "8.694x" in text
    text2, fig2 = depthwise.reduction_view(264, 3)
    assert text2 != text and f"{reduction_factor(264, 3):.3f}x" in text2
    matplotlib.pyplot.close(fig)
    matplotlib.pyplot.close(fig2)
    with pytest.raises(ValueError, match="kernel_size"):
        depthwise.reduction_view(256, 4)


def test_conv_intensity():
    dw = depthwise.conv_intensity("depthwise", 128, 128, 3, 28)
    assert dw.macs == 9 * 128 * 28 * 28
    assert dw.bytes_moved == 4 * (2 * 128 * 28 * 28 + 9 * 128)
    std = depthwise.conv_intensity("standard", 128, 128, 3, 28)
    pw = depthwise.conv_intensity("pointwise", 128, 128, 3, 28)
    assert std.intensity > pw.intensity > dw.intensity
    assert dw.intensity < 9 / 8  # about k^2 / 8, independent of width
    with pytest.raises(ValueError, match="kind"):
        depthwise.conv_intensity("grouped", 8, 8, 3, 8)


@pytest.mark.parametrize(
    ("alpha", "resolution", "published_macs_m", "published_params_m"),
    [(1.0, 224, 569, 4.2), (0.75, 224, 325, 2.6), (0.5, 224, 149, 1.3), (0.25, 224, 41, 0.5),
     (1.0, 192, 418, 4.2), (1.0, 160, 290, 4.2), (1.0, 128, 186, 4.2)],
)  # fmt: skip
def test_mobilenet_v1_grid_matches_paper(alpha, resolution, published_macs_m, published_params_m):
    params, macs = depthwise.mobilenet_v1_cost(alpha, resolution)
    assert depthwise.MOBILENET_V1_PUBLISHED[(alpha, resolution)][:2] == (
        published_macs_m,
        published_params_m,
    )
    assert abs(macs / 1e6 - published_macs_m) / published_macs_m < 0.005
    assert round(params / 1e6, 1) == published_params_m


def test_mobilenet_v1_reference_point():
    assert depthwise.mobilenet_v1_cost(1.0, 224) == (4_231_976, 568_740_352)
