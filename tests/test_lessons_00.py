"""Values computed by effnb.lessons.counting (notebook 00); no timings asserted."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn

import effnb
from effnb.costs import conv2d_macs
from effnb.layers import ConvNormAct
from effnb.lessons import counting

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
