"""The block vocabulary: exact widths, linear projections, shuffles, rounding, and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effnb.layers import (
    ConvNormAct,
    DepthwiseSeparableConv,
    DropPath,
    GhostBottleneck,
    GhostModule,
    InvertedResidual,
    ShuffleUnit,
    SqueezeExcite,
    channel_shuffle,
    get_act_layer,
    make_divisible,
    scale_depth,
)


@pytest.mark.parametrize(
    "value, divisor, expected",
    [
        (32, 8, 32),
        (35.2, 8, 32),
        (36, 8, 40),
        (12, 8, 16),
        (3.5, 8, 8),
        (352.0, 8, 352),
        (19.2, 8, 24),
        (26.4, 8, 24),
    ],
)
def test_make_divisible_rounds_to_nearest_and_never_drops_10_percent(value, divisor, expected):
    assert make_divisible(value, divisor) == expected
    assert make_divisible(value, divisor) >= 0.9 * value


def test_scale_depth_is_ceil():
    assert [scale_depth(n, 1.1) for n in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert scale_depth(4, 3.1) == 13


def test_conv_norm_act_padding_and_bias():
    block = ConvNormAct(8, 16, 5, 2)
    assert block.conv.padding == (2, 2) and block.conv.bias is None
    no_norm = ConvNormAct(8, 16, 3, norm_layer=None, act_layer=None)
    assert no_norm.conv.bias is not None and isinstance(no_norm.bn, nn.Identity)
    assert block(torch.zeros(1, 8, 16, 16)).shape == (1, 16, 8, 8)


@pytest.mark.parametrize("k", [2, 4, 0])
def test_even_or_zero_kernel_is_rejected(k):
    with pytest.raises(
        ValueError,
        match=f"kernel_size must be an odd integer|kernel_size must be an integer >= 1, got {k}",
    ):
        ConvNormAct(8, 8, k)


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match="groups=3 must divide in_channels=8"):
        ConvNormAct(8, 8, 3, groups=3)


def test_depthwise_separable_counts_match_seed_errata():
    """68,864 params = 67,840 conv weights + 1,024 BatchNorm (SEED_ERRATA.md)."""
    block = DepthwiseSeparableConv(256, 256, 3)
    total = sum(p.numel() for p in block.parameters())
    weights = block.conv_dw.conv.weight.numel() + block.conv_pw.conv.weight.numel()
    assert (total, weights) == (68_864, 67_840)


def test_squeeze_excite_rejects_zero_width_and_gates():
    with pytest.raises(ValueError, match="squeeze_channels must be >= 1.*got 0 for channels=8"):
        SqueezeExcite(8, 8 // 16)
    se = SqueezeExcite(16, 4, gate_layer=nn.Hardsigmoid)
    assert sum(p.numel() for p in se.parameters()) == 2 * 16 * 4 + 4 + 16
    x = torch.randn(2, 16, 5, 5)
    gate = se.gate(se.fc2(se.act(se.fc1(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(se(x), x * gate)


def test_get_act_layer_by_name_and_error():
    assert get_act_layer("hswish") is nn.Hardswish
    with pytest.raises(ValueError, match="act_layer must be one of"):
        get_act_layer("swishy")


def test_inverted_residual_structure_and_skip():
    block = InvertedResidual(16, 16, 96, 3, 1, se_channels=4).eval()
    assert block.has_skip
    assert "act" not in block.conv_pwl._modules  # linear bottleneck
    x = torch.randn(1, 16, 8, 8)
    manual = block.conv_pwl(block.se(block.conv_dw(block.conv_pw(x)))) + x
    torch.testing.assert_close(block(x), manual)
    no_expand = InvertedResidual(16, 24, 16, 3, 2)
    assert isinstance(no_expand.conv_pw, nn.Identity) and not no_expand.has_skip
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 3"):
        InvertedResidual(16, 16, 32, 3, 3)


def test_drop_path_is_identity_in_eval_and_unbiased_in_training():
    dp = DropPath(0.5)
    x = torch.ones(20000, 1, 1, 1)
    assert torch.equal(dp.eval()(x), x)
    torch.manual_seed(0)
    y = dp.train()(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert abs(y.mean().item() - 1.0) < 0.05
    with pytest.raises(ValueError, match=r"drop_path must be in \[0, 1\), got 1.5"):
        DropPath(1.5)


@pytest.mark.parametrize("out", [1, 15, 16, 17])
def test_ghost_module_gives_exact_width(out):
    module = GhostModule(8, out)
    assert module(torch.randn(2, 8, 6, 6)).shape == (2, out, 6, 6)


def test_ghost_bottleneck_second_module_is_linear_and_odd_widths_work():
    block = GhostBottleneck(15, 33, 17, stride=2, se_channels=8).eval()
    assert "act" not in block.ghost2.primary_conv._modules
    assert "act" not in block.ghost2.cheap_operation._modules
    y = block(torch.randn(2, 15, 8, 8))
    assert y.shape == (2, 17, 4, 4)
    ghost_out = block.ghost2(block.se(block.conv_dw(block.ghost1(torch.randn(2, 15, 8, 8)))))
    assert ghost_out.min() < 0  # no ReLU after the second ghost module
    assert isinstance(GhostBottleneck(16, 48, 16).shortcut, nn.Identity)


def test_ghost_ratio_must_be_at_least_two():
    with pytest.raises(ValueError, match="ratio must be an integer >= 2, got 1"):
        GhostModule(8, 8, ratio=1)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    with pytest.raises(ValueError, match="channels=6 must be divisible by groups=4"):
        channel_shuffle(torch.zeros(1, 6, 1, 1), 4)


def test_shuffle_unit_shapes_and_errors():
    assert ShuffleUnit(24, 48, 2)(torch.randn(1, 24, 16, 16)).shape == (1, 48, 8, 8)
    unit = ShuffleUnit(48, 48, 1).eval()
    x = torch.randn(1, 48, 8, 8)
    y = unit(x)
    # the untouched half comes through, interleaved to the even positions by the shuffle
    torch.testing.assert_close(y[:, 0::2], x[:, :24])
    with pytest.raises(ValueError, match="out_channels must be even.*got 47"):
        ShuffleUnit(24, 47, 2)
    with pytest.raises(
        ValueError, match="needs in_channels == out_channels; got in_channels=24, out_channels=48"
    ):
        ShuffleUnit(24, 48, 1)


def test_channel_counts_must_be_positive_integers():
    with pytest.raises(ValueError, match="out_channels must be an integer >= 1, got 0"):
        ConvNormAct(8, 0)
    with pytest.raises(TypeError, match=r"in_channels must be an integer >= 1, got 8.0 \(float\)"):
        ConvNormAct(8.0, 8)
