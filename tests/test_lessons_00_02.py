"""Values computed by the lesson modules behind notebooks 00-02 (counting, depthwise, SE).

Every number here is also printed by a notebook; the published ones come from
/work/shared/REFERENCE.md and SEED_ERRATA.md (MobileNetV2 thop 327.5M, the seed's 8.6x, the
MobileNetV3-Small count without rounding). No timings are asserted.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from torch import nn

import effnb
from effnb.costs import conv2d_macs, reduction_factor, se_params
from effnb.layers import ConvNormAct, DepthwiseSeparableConv, make_divisible
from effnb.lessons import counting, depthwise
from effnb.lessons import squeeze_excite as se

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _one_thread():
    """One forward pass per test, no speed needed: one thread avoids fighting over shared cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --- counting (notebook 00) ------------------------------------------------------------


def test_conv_three_ways_agree_without_bn():
    conv = nn.Conv2d(64, 128, 3, padding=1, bias=False)
    c = counting.count_three_ways(conv, (64, 56, 56))
    assert c.params == 73_728
    assert c.macs == 231_211_008 == conv2d_macs(64, 128, 3, 56)
    assert c.flop_counter_flops == 462_422_016
    assert c.thop_macs == c.macs
    assert (c.bn_term, c.pool_term) == (0, 0)
    assert c.flop_counter_match and c.thop_match


def test_bn_term_is_four_per_element():
    c = counting.count_three_ways(ConvNormAct(64, 128, 3), (64, 56, 56))
    assert c.bn_term == 4 * 128 * 56 * 56 == 1_605_632
    assert c.thop_macs == 232_816_640
    assert c.thop_match


def test_mobilenet_v2_thop_decomposition():
    c = counting.count_three_ways(effnb.create_model("mobilenet_v2"), 224)
    assert c.params == 3_504_872
    assert c.macs == 300_774_272
    assert c.flop_counter_flops == 2 * 300_774_272
    assert c.thop_macs == 327_550_720  # REFERENCE.md: thop 327.5M for MobileNetV2
    assert c.bn_term == 26_712_448
    assert c.pool_term == (7 * 7 + 1) * 1280 == 64_000
    assert c.thop_match


def test_uncounted_elementwise_counts_residuals_and_se():
    v2 = counting.uncounted_elementwise(effnb.create_model("mobilenet_v2"), 224)
    assert v2["SE multiply"] == 0
    assert v2["residual add"] > 0 and v2["activation"] > 0
    b0 = counting.uncounted_elementwise(effnb.create_model("efficientnet_b0"), 224)
    assert b0["SE multiply"] > 0


def test_naive_call_times_returns_one_time_per_call():
    times = counting.naive_call_times(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8), calls=4)
    assert len(times) == 4 and all(t > 0 for t in times)
    with pytest.raises(TypeError, match="calls"):
        counting.naive_call_times(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8), calls=2.5)


def test_mobilenet_v2_cost_view_text_changes_with_resolution():
    text_224, fig = counting.mobilenet_v2_cost_view(224)
    assert (
        "3,504,872 params" in text_224 and "300.8M MACs" in text_224 and "601.5M FLOPs" in text_224
    )
    text_160, fig2 = counting.mobilenet_v2_cost_view(160)
    assert text_160 != text_224 and "154.1M MACs" in text_160
    matplotlib.pyplot.close(fig)
    matplotlib.pyplot.close(fig2)


# --- depthwise (notebook 01) -----------------------------------------------------------


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


# --- squeeze-excitation (notebook 02) --------------------------------------------------


@pytest.mark.parametrize(("channels", "r"), [(64, 4), (240, 16), (960, 4)])
def test_se_param_rows(channels, r):
    row = se.se_param_rows(channels, r)
    assert row["formula_no_bias"] == row["counted_weights"] == 2 * channels * channels // r
    assert (
        row["formula_with_bias"]
        == row["counted_all"]
        == 2 * channels**2 // r + channels // r + channels
    )


def test_seed_se_gate_is_one_half_everywhere():
    gate = se.seed_se_gate(8, 16)
    assert gate.shape == (4, 8)
    assert torch.all(gate == 0.5)
    assert not torch.all(se.seed_se_gate(32, 16) == 0.5)


def test_se_sweep_values():
    rows = se.se_sweep((2, 4, 8, 16, 32), size=28)
    base = rows[0]
    assert base["params"] == 26_240 and base["macs"] == 19_756_800
    by_r = {row["r"]: row for row in rows[1:]}
    for r, row in by_r.items():
        squeeze = 240 // r
        assert row["params"] - base["params"] == se_params(240, squeeze)
        assert row["macs"] - base["macs"] == 2 * 240 * squeeze
    assert by_r[2]["macs_overhead_pct"] < 0.3


def test_gate_curves():
    sig, hsig = se.gate_curves([-3.0, 0.0, 3.0])
    assert list(hsig) == [0.0, 0.5, 1.0]
    assert sig[1] == 0.5


def test_se_widths_mobilenet_v3_large():
    widths = se.se_widths(effnb.create_model("mobilenet_v3_large"))
    assert [w.squeeze for w in widths] == [24, 32, 32, 120, 168, 168, 240, 240]
    assert all(w.squeeze == make_divisible(w.channels / 4, 8) for w in widths)


def test_se_widths_efficientnet_b0_use_block_input():
    widths = se.se_widths(effnb.create_model("efficientnet_b0"))
    assert len(widths) == 16
    assert all(w.squeeze == max(1, w.block_in // 4) for w in widths)
    assert (widths[1].block_in, widths[1].channels, widths[1].squeeze) == (16, 96, 4)


def test_se_widths_ghostnet():
    widths = se.se_widths(effnb.create_model("ghostnet"))
    assert widths[0].channels == 72 and widths[0].squeeze == 20
    assert all(w.squeeze == make_divisible(w.channels / 4, 4) for w in widths)


def test_mobilenet_v3_small_unrounded_is_the_seed_count():
    model, changes = se.mobilenet_v3_small_unrounded()
    assert sum(p.numel() for p in model.parameters()) == 2_537_238
    changed = [(c, a, b) for c, a, b in changes if a != b]
    assert changed == [(16, 8, 4), (240, 64, 60), (240, 64, 60), (120, 32, 30), (144, 40, 36)]
    assert sum(se_params(c, a) - se_params(c, b) for c, a, b in changes) == 2_542_856 - 2_537_238
    x = torch.zeros(1, 3, 64, 64)
    assert model.eval()(x).shape == (1, 1000)


def test_se_cost_view():
    text, fig = se.se_cost_view(240, 4)
    assert "squeeze 60" in text and f"{se_params(240, 60):,}" in text
    text2, fig2 = se.se_cost_view(248, 4)
    assert text2 != text
    text3, fig3 = se.se_cost_view(8, 16)
    assert "zero-width" in text3
    for f in (fig, fig2, fig3):
        matplotlib.pyplot.close(f)


def test_se_block_shapes():
    block = se.se_block(4)
    assert block.se.fc1.out_channels == 60
    assert isinstance(se.se_block(None).se, nn.Identity)
    assert isinstance(DepthwiseSeparableConv(8, 8).conv_dw, ConvNormAct)


def test_ratio_iqr_of_paired_rounds():
    from effnb.bench import Comparison

    cmp = Comparison(
        records={}, rounds={"a": (2.0, 4.0, 6.0, 8.0, 10.0), "b": (1.0, 2.0, 3.0, 4.0, 5.0)}
    )
    assert se.ratio_iqr(cmp, "a", "b") == 0.0  # drift cancels in the paired ratio
    cmp2 = Comparison(records={}, rounds={"a": (1.0, 2.0, 3.0, 4.0), "b": (1.0, 1.0, 1.0, 1.0)})
    assert se.ratio_iqr(cmp2, "a", "b") == pytest.approx(2.5)
