"""effnb.layers block by block against a functional re-computation from the block's own weights,
on inputs with distinct sizes everywhere (C_in != C_out != hidden, H != W, odd sizes, stride 2),
with the structure asserted (kernel, stride, padding, groups, bias, activation, in place) and
every check at its boundary. (scripts/mutants.py runs mutmut against these.)"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effnb import layers
from effnb._checks import SizeLimitError
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
    depthwise,
    get_act_layer,
    make_divisible,
    scale_depth,
)


def raises(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine terms, eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
    return module.eval()


def bn(x: torch.Tensor, m: nn.Module) -> torch.Tensor:
    if isinstance(m, nn.Identity):
        return x
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def cna(x: torch.Tensor, block: ConvNormAct, act=None) -> torch.Tensor:
    c = block.conv
    y = F.conv2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
    y = bn(y, block.bn)
    return act(y) if act is not None else y


def x_of(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- activations, rounding, depth ----------------------------------------------------------


def test_get_act_layer_and_create_act():
    assert get_act_layer(None) is None
    assert get_act_layer(nn.GELU) is nn.GELU
    for name, cls in [("relu", nn.ReLU), ("relu6", nn.ReLU6), ("hswish", nn.Hardswish)]:
        assert get_act_layer(name) is cls
    assert get_act_layer("hsigmoid") is nn.Hardsigmoid and get_act_layer("silu") is nn.SiLU
    assert get_act_layer("sigmoid") is nn.Sigmoid
    with raises(
        ValueError,
        "act_layer must be one of ['hsigmoid', 'hswish', 'relu', 'relu6', 'sigmoid', 'silu'], "
        "a callable or None, got 'gelu'",
    ):
        get_act_layer("gelu")
    with pytest.raises(ValueError, match="got 3$"):
        get_act_layer(3)
    relu = layers._create_act("relu")
    assert type(relu) is nn.ReLU and relu.inplace is True
    assert type(layers._create_act(None)) is nn.Identity
    sigmoid = layers._create_act(nn.Sigmoid)  # takes no inplace argument
    assert type(sigmoid) is nn.Sigmoid


@pytest.mark.parametrize(
    "value, divisor, min_value, expected",
    [
        (10, 8, None, 16),  # int(14) -> 8 < 0.9 * 10: one divisor more
        (12, 8, None, 16),  # int(16) -> 16
        (11.9, 8, None, 16),  # int(15.9) = 15 -> 8 < 10.71: + 8
        (20, 8, None, 24),
        (19.9, 8, None, 24),  # int(23.9) = 23 -> 16 < 17.91: + 8
        (17.5, 8, None, 16),  # int(21.5) = 21 -> 16 >= 15.75
        (3, 8, None, 8),  # min_value defaults to the divisor
        (3, 8, 4, 4),  # max(4, 0); 4 >= 2.7
        (33, 4, 40, 40),
        (0, 8, None, 8),
        (26.9, 6, None, 30),  # int(29.9) = 29 -> 24 < 24.21: + 6
        (20, 9, None, 18),  # int(24.5) -> 18 == 0.9 * 20: not less, kept
        (32.6, 5, None, 35),  # int(35.1) -> 35: half the divisor is 2.5, not 2
        (4, 3, None, 6),
    ],
)
def test_make_divisible(value, divisor, min_value, expected):
    got = make_divisible(value, divisor, min_value)
    assert got == expected and type(got) is int


def test_make_divisible_defaults_and_checks():
    assert make_divisible(13) == 16 and make_divisible(11) == 16 and make_divisible(16.2) == 16
    assert make_divisible(36) == 40  # int(40) -> 40: divisor 8 by default
    with raises(ValueError, "value must be a finite number >= 0.0, got -1.5"):
        make_divisible(-1.5)
    with raises(ValueError, "divisor must be an integer >= 1, got 0"):
        make_divisible(8, 0)
    with raises(ValueError, "min_value must be an integer >= 1, got 0"):
        make_divisible(8, 8, 0)
    assert make_divisible(1, 1, 1) == 1


def test_scale_depth():
    assert scale_depth(3, 1.2) == 4  # ceil(3.6)
    assert scale_depth(4, 1.1) == 5  # ceil(4.4): not round
    assert scale_depth(5, 1.0) == 5 and scale_depth(0, 2.0) == 0
    assert scale_depth(7, 0.5) == 4 and type(scale_depth(3, 1.2)) is int
    with raises(ValueError, "num_layers must be an integer >= 0, got -1"):
        scale_depth(-1, 1.0)
    with raises(ValueError, "depth_mult must be a positive number, got 0"):
        scale_depth(3, 0)


# --- ConvNormAct and depthwise --------------------------------------------------------------


def test_conv_norm_act_structure_and_forward():
    block = randomize(ConvNormAct(6, 9, 5, stride=2, groups=3, dilation=2, act_layer="hswish"))
    c = block.conv
    assert (c.in_channels, c.out_channels, c.kernel_size) == (6, 9, (5, 5))
    assert c.stride == (2, 2) and c.padding == (4, 4) and c.dilation == (2, 2)
    assert c.groups == 3 and c.bias is None and c.padding_mode == "zeros"
    assert type(block.bn) is nn.BatchNorm2d and block.bn.num_features == 9
    assert type(block.act) is nn.Hardswish and block.act.inplace
    x = x_of(2, 6, 11, 8)
    y = block(x)
    assert y.shape == (2, 9, 6, 4)
    assert torch.allclose(y, cna(x, block, F.hardswish), atol=1e-6)


def test_conv_norm_act_defaults():
    block = ConvNormAct(4, 7)
    c = block.conv
    assert c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1)
    assert c.groups == 1 and c.dilation == (1, 1) and c.bias is None
    assert type(block.act) is nn.ReLU and block.act.inplace
    plain = ConvNormAct(4, 7, 1, norm_layer=None, act_layer=None)
    assert plain.conv.bias is not None and plain.conv.padding == (0, 0)
    assert type(plain.bn) is nn.Identity and "act" not in plain._modules
    assert list(block._modules) == ["conv", "bn", "act"] and list(plain._modules) == ["conv", "bn"]
    no_bias = ConvNormAct(4, 7, 3, norm_layer=None, bias=False)
    assert no_bias.conv.bias is None
    biased = ConvNormAct(4, 7, 3, bias=True)
    assert biased.conv.bias is not None and type(biased.bn) is nn.BatchNorm2d
    x = x_of(1, 4, 5, 6)
    assert torch.allclose(plain(x), F.conv2d(x, plain.conv.weight, plain.conv.bias), atol=1e-6)


def test_conv_norm_act_checks():
    with raises(ValueError, "groups=3 must divide in_channels=6 and out_channels=8"):
        ConvNormAct(6, 8, groups=3)
    with raises(ValueError, "groups=3 must divide in_channels=8 and out_channels=6"):
        ConvNormAct(8, 6, groups=3)
    with raises(TypeError, "norm_layer must be a callable (e.g. nn.BatchNorm2d) or None, got 'bn'"):
        ConvNormAct(4, 4, norm_layer="bn")
    with raises(TypeError, "bias must be True or False, got 1 (int)"):
        ConvNormAct(4, 4, bias=1)
    for kwargs, message in [
        ({"in_channels": 0}, "in_channels must be an integer >= 1, got 0"),
        ({"out_channels": 0}, "out_channels must be an integer >= 1, got 0"),
        ({"stride": 0}, "stride must be an integer >= 1, got 0"),
        ({"groups": 0}, "groups must be an integer >= 1, got 0"),
        ({"dilation": 0}, "dilation must be an integer >= 1, got 0"),
        ({"kernel_size": 2}, "kernel_size must be an odd integer (1, 3, 5, 7, ...), got 2"),
    ]:
        with raises(ValueError, message):
            ConvNormAct(**({"in_channels": 4, "out_channels": 4} | kwargs))
    ConvNormAct(1, 1, 1, 1, 1, 1)  # every minimum
    with pytest.raises(
        SizeLimitError, match=r"^ConvNormAct\(in_channels=4097, out_channels=4097, "
    ):
        ConvNormAct(4097, 4097, 1)  # 16,785,409 weights: just past the limit
    assert ConvNormAct(4096, 4096, 1, norm_layer=None, act_layer=None).conv.weight.numel() == 2**24


def test_depthwise_helper():
    block = randomize(depthwise(6, 5, 2, multiplier=2, act_layer="relu6"))
    c = block.conv
    assert (c.in_channels, c.out_channels, c.groups) == (6, 12, 6)
    assert c.kernel_size == (5, 5) and c.stride == (2, 2) and c.padding == (2, 2)
    assert type(block.act) is nn.ReLU6 and block.bn.num_features == 12
    x = x_of(1, 6, 9, 7)
    assert torch.allclose(block(x), cna(x, block, F.relu6), atol=1e-6)
    d = depthwise(5)
    assert (d.conv.out_channels, d.conv.groups, d.conv.kernel_size) == (5, 5, (3, 3))
    assert d.conv.stride == (1, 1) and type(d.act) is nn.ReLU and type(d.bn) is nn.BatchNorm2d
    assert type(depthwise(5, norm_layer=None).bn) is nn.Identity
    with raises(ValueError, "multiplier must be an integer >= 1, got 0"):
        depthwise(5, multiplier=0)
    with raises(ValueError, "in_channels must be an integer >= 1, got 0"):
        depthwise(0)


# --- depthwise separable, SE ------------------------------------------------------------------


def test_depthwise_separable_structure_and_forward():
    block = randomize(DepthwiseSeparableConv(6, 10, 5, 2, act_layer="hswish"))
    assert block.conv_dw.conv.groups == 6 and block.conv_dw.conv.kernel_size == (5, 5)
    assert block.conv_dw.conv.stride == (2, 2) and block.conv_pw.conv.kernel_size == (1, 1)
    assert block.conv_pw.conv.stride == (1, 1) and block.conv_pw.conv.out_channels == 10
    x = x_of(2, 6, 9, 8)
    want = cna(cna(x, block.conv_dw, F.hardswish), block.conv_pw, F.hardswish)
    assert torch.allclose(block(x), want, atol=1e-5) and want.shape == (2, 10, 5, 4)
    default = DepthwiseSeparableConv(6, 10)
    assert default.conv_dw.conv.kernel_size == (3, 3) and default.conv_dw.conv.stride == (1, 1)
    assert type(default.conv_dw.act) is nn.ReLU and type(default.conv_pw.act) is nn.ReLU
    linear_dw = DepthwiseSeparableConv(6, 10, dw_act=False)
    assert "act" not in linear_dw.conv_dw._modules and type(linear_dw.conv_pw.act) is nn.ReLU
    linear_pw = DepthwiseSeparableConv(6, 10, pw_act=False)
    assert type(linear_pw.conv_dw.act) is nn.ReLU and "act" not in linear_pw.conv_pw._modules
    no_norm = DepthwiseSeparableConv(6, 10, norm_layer=None)
    assert type(no_norm.conv_dw.bn) is nn.Identity and type(no_norm.conv_pw.bn) is nn.Identity
    with raises(TypeError, "dw_act must be True or False, got 1 (int)"):
        DepthwiseSeparableConv(6, 10, dw_act=1)
    with raises(TypeError, "pw_act must be True or False, got 0 (int)"):
        DepthwiseSeparableConv(6, 10, pw_act=0)


def test_squeeze_excite_forward_and_structure():
    se = SqueezeExcite(6, 4, act_layer="silu", gate_layer="hsigmoid").eval()
    assert (se.fc1.in_channels, se.fc1.out_channels, se.fc1.kernel_size) == (6, 4, (1, 1))
    assert (se.fc2.in_channels, se.fc2.out_channels) == (4, 6)
    assert se.fc1.bias is not None and se.fc2.bias is not None
    assert type(se.act) is nn.SiLU and type(se.gate) is nn.Hardsigmoid
    x = x_of(2, 6, 5, 3)
    s = x.mean((2, 3), keepdim=True)
    s = F.hardsigmoid(se.fc2(F.silu(se.fc1(s))))
    assert torch.allclose(se(x), x * s, atol=1e-6)
    default = SqueezeExcite(6, 4)
    assert type(default.act) is nn.ReLU and type(default.gate) is nn.Sigmoid
    assert sum(p.numel() for p in default.parameters()) == 2 * 6 * 4 + 4 + 6
    SqueezeExcite(1, 1)
    with raises(
        ValueError,
        "squeeze_channels must be >= 1 (the SE hidden layer needs at least one unit), "
        "got 0 for channels=6",
    ):
        SqueezeExcite(6, 0)
    with raises(ValueError, "channels must be an integer >= 1, got 0"):
        SqueezeExcite(0, 4)
    with raises(TypeError, "squeeze_channels must be an integer >= 1, got True (bool)"):
        SqueezeExcite(6, True)
    with raises(TypeError, "squeeze_channels must be an integer >= 1, got 1.5 (float)"):
        SqueezeExcite(6, 1.5)
    with pytest.raises(
        SizeLimitError, match=r"^SqueezeExcite\(channels=4097, squeeze_channels=4097\)"
    ):
        SqueezeExcite(4097, 4097)


# --- DropPath -------------------------------------------------------------------------------------


def test_drop_path_mask_and_scale():
    drop = DropPath(0.25).train()
    assert drop.p == 0.25 and drop.extra_repr() == "p=0.25"
    x = torch.ones(4000, 3, 2, 5)
    torch.manual_seed(0)
    y = drop(x)
    kept = y[:, 0, 0, 0] != 0
    # each sample is either all zero or all 1 / (1 - p)
    assert torch.equal(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert torch.equal(y[~kept], torch.zeros_like(y[~kept]))
    assert 0.70 < kept.float().mean().item() < 0.80  # P(keep) = 0.75
    torch.manual_seed(0)
    mask = torch.empty(4000, 1, 1, 1).bernoulli_(0.75)
    assert torch.equal(kept, mask[:, 0, 0, 0].bool())  # one draw per sample, shape (B, 1, 1, 1)
    assert drop.eval()(x) is x
    assert DropPath(0.0).train()(x) is x and DropPath().p == 0.0
    with raises(ValueError, "drop_path must be in [0, 1), got 1"):
        DropPath(1)


# --- InvertedResidual ----------------------------------------------------------------------------


def test_inverted_residual_forward_with_skip_and_se():
    block = randomize(InvertedResidual(6, 6, 15, 5, 1, se_channels=4, act_layer="hswish"))
    assert block.has_skip and type(block.drop_path) is DropPath
    assert block.conv_pw.conv.kernel_size == (1, 1) and block.conv_pw.conv.out_channels == 15
    assert block.conv_dw.conv.groups == 15 and block.conv_dw.conv.kernel_size == (5, 5)
    assert "act" not in block.conv_pwl._modules and block.conv_pwl.conv.out_channels == 6
    assert type(block.se) is SqueezeExcite and block.se.fc1.out_channels == 4
    x = x_of(2, 6, 7, 5)
    h = cna(x, block.conv_pw, F.hardswish)
    h = cna(h, block.conv_dw, F.hardswish)
    h = block.se(h)
    want = cna(h, block.conv_pwl) + x
    assert torch.allclose(block(x), want, atol=1e-5)


def test_inverted_residual_drops_its_branch_in_training_only():
    block = randomize(InvertedResidual(6, 6, 12, drop_path=0.5)).eval()
    x = x_of(16, 6, 5, 3)
    with torch.no_grad():
        branch = block.conv_pwl(block.conv_dw(block.conv_pw(x)))
        assert torch.allclose(block(x), branch + x, atol=1e-5)  # eval: the branch is kept
        block.training = block.drop_path.training = True  # BatchNorm stays in eval mode
        torch.manual_seed(0)
        y = block(x)
    kept = [torch.allclose(y[i], branch[i] / 0.5 + x[i], atol=1e-5) for i in range(16)]
    dropped = [torch.equal(y[i], x[i]) for i in range(16)]
    assert all(k != d for k, d in zip(kept, dropped, strict=True))  # each sample one or other
    assert any(kept) and any(dropped)


def test_inverted_residual_without_skip_or_expansion():
    down = randomize(InvertedResidual(6, 10, 6, 3, 2))
    assert not down.has_skip and type(down.drop_path) is nn.Identity
    assert type(down.conv_pw) is nn.Identity  # expansion ratio 1
    assert type(down.se) is nn.Identity and down.conv_dw.conv.stride == (2, 2)
    assert type(down.conv_dw.act) is nn.ReLU6
    x = x_of(1, 6, 9, 6)
    want = cna(cna(x, down.conv_dw, F.relu6), down.conv_pwl)
    y = down(x)
    assert y.shape == (1, 10, 5, 3) and torch.allclose(y, want, atol=1e-5)
    wider = InvertedResidual(6, 10, 18)  # stride 1 but another width: no skip
    assert not wider.has_skip and wider.conv_dw.conv.kernel_size == (3, 3)
    assert not InvertedResidual(6, 6, 18, stride=2).has_skip
    assert InvertedResidual(6, 6, 18, drop_path=0.3).drop_path.p == 0.3
    assert type(InvertedResidual(6, 6, 18, se_channels=1).se) is SqueezeExcite
    se = InvertedResidual(6, 6, 18, se_channels=2, se_act_layer="silu", se_gate_layer="hsigmoid")
    assert type(se.se.act) is nn.SiLU and type(se.se.gate) is nn.Hardsigmoid
    plain = InvertedResidual(6, 6, 18, se_channels=2)
    assert type(plain.se.act) is nn.ReLU and type(plain.se.gate) is nn.Sigmoid
    no_norm = InvertedResidual(6, 6, 18, norm_layer=None)
    assert type(no_norm.conv_pw.bn) is nn.Identity and type(no_norm.conv_pwl.bn) is nn.Identity
    assert type(no_norm.conv_dw.bn) is nn.Identity


def test_inverted_residual_checks():
    with raises(ValueError, "stride must be 1 or 2, got 3"):
        InvertedResidual(6, 6, 12, stride=3)
    for kwargs, message in [
        ({"in_channels": 0}, "in_channels must be an integer >= 1, got 0"),
        ({"out_channels": 0}, "out_channels must be an integer >= 1, got 0"),
        ({"hidden_channels": 0}, "hidden_channels must be an integer >= 1, got 0"),
        ({"stride": 0}, "stride must be an integer >= 1, got 0"),
        ({"se_channels": -1}, "se_channels must be an integer >= 0, got -1"),
        ({"drop_path": 1.0}, "drop_path must be in [0, 1), got 1.0"),
    ]:
        with raises(ValueError, message):
            InvertedResidual(
                **({"in_channels": 6, "out_channels": 6, "hidden_channels": 12} | kwargs)
            )


# --- Ghost ------------------------------------------------------------------------------------------


def test_ghost_module_forward_and_widths():
    ghost = randomize(GhostModule(5, 7, kernel_size=3, ratio=3, dw_size=5, stride=2))
    # C_init = ceil(7 / 3) = 3 intrinsic maps; cheap op: 3 -> 6 ghosts; sliced to 7
    p = ghost.primary_conv.conv
    assert (p.in_channels, p.out_channels, p.kernel_size, p.stride) == (5, 3, (3, 3), (2, 2))
    q = ghost.cheap_operation.conv
    assert (q.in_channels, q.out_channels, q.groups, q.kernel_size) == (3, 6, 3, (5, 5))
    assert q.stride == (1, 1)
    x = x_of(2, 5, 9, 6)
    x1 = cna(x, ghost.primary_conv, F.relu)
    x2 = cna(x1, ghost.cheap_operation, F.relu)
    want = torch.cat([x1, x2], 1)[:, :7]
    y = ghost(x)
    assert y.shape == (2, 7, 5, 3) and torch.allclose(y, want, atol=1e-6)
    default = GhostModule(5, 7)
    assert default.primary_conv.conv.kernel_size == (1, 1) and default.out_channels == 7
    assert (
        default.primary_conv.conv.out_channels == 4
        and default.cheap_operation.conv.out_channels == 4
    )
    assert default.cheap_operation.conv.kernel_size == (3, 3)
    linear = GhostModule(5, 7, act_layer=None)
    assert (
        "act" not in linear.primary_conv._modules and "act" not in linear.cheap_operation._modules
    )
    with raises(ValueError, "ratio must be an integer >= 2, got 1"):
        GhostModule(5, 7, ratio=1)
    with raises(ValueError, "out_channels must be an integer >= 1, got 0"):
        GhostModule(5, 0)
    assert GhostModule(5, 1)(x_of(1, 5, 3, 3)).shape == (1, 1, 3, 3)


def test_ghost_bottleneck_forward():
    block = randomize(GhostBottleneck(6, 10, 8, kernel_size=5, stride=2, se_channels=3))
    assert not block.has_identity_shortcut
    assert type(block.shortcut) is DepthwiseSeparableConv
    assert block.shortcut.conv_dw.conv.kernel_size == (5, 5)
    assert block.shortcut.conv_dw.conv.stride == (2, 2)
    assert (
        "act" not in block.shortcut.conv_dw._modules
        and "act" not in block.shortcut.conv_pw._modules
    )
    assert block.conv_dw.conv.stride == (2, 2) and block.conv_dw.conv.kernel_size == (5, 5)
    assert "act" not in block.conv_dw._modules
    assert type(block.se.gate) is nn.Hardsigmoid and type(block.se.act) is nn.ReLU
    assert type(block.ghost1.primary_conv.act) is nn.ReLU
    assert "act" not in block.ghost2.primary_conv._modules
    x = x_of(2, 6, 9, 7)
    h = block.ghost1(x)
    h = cna(h, block.conv_dw)
    h = block.ghost2(block.se(h))
    want = h + block.shortcut(x)
    y = block(x)
    assert y.shape == (2, 8, 5, 4) and torch.allclose(y, want, atol=1e-5)


def test_ghost_bottleneck_identity_and_checks():
    same = randomize(GhostBottleneck(6, 10, 6))
    assert same.has_identity_shortcut and type(same.shortcut) is nn.Identity
    assert type(same.conv_dw) is nn.Identity and type(same.se) is nn.Identity
    x = x_of(1, 6, 5, 4)
    assert torch.allclose(same(x), same.ghost2(same.ghost1(x)) + x, atol=1e-6)
    wider = GhostBottleneck(6, 10, 8)
    assert not wider.has_identity_shortcut and wider.shortcut.conv_dw.conv.stride == (1, 1)
    assert wider.shortcut.conv_dw.conv.kernel_size == (3, 3)
    assert not GhostBottleneck(6, 10, 6, stride=2).has_identity_shortcut
    with raises(ValueError, "stride must be 1 or 2, got 3"):
        GhostBottleneck(6, 10, 6, stride=3)
    with raises(ValueError, "stride must be an integer >= 1, got 0"):
        GhostBottleneck(6, 10, 6, stride=0)
    with raises(ValueError, "se_channels must be an integer >= 0, got -1"):
        GhostBottleneck(6, 10, 6, se_channels=-1)
    assert type(GhostBottleneck(6, 10, 6, se_channels=1).se) is SqueezeExcite


# --- shuffle --------------------------------------------------------------------------------------


def test_channel_shuffle_moves_channel_j_of_group_i_to_j_times_g_plus_i():
    x = torch.arange(2 * 6 * 2 * 3, dtype=torch.float32).reshape(2, 6, 2, 3)
    y = channel_shuffle(x, 3)  # groups of 2: [0 1][2 3][4 5] -> 0 2 4 1 3 5
    assert torch.equal(y, x[:, [0, 2, 4, 1, 3, 5]])
    assert torch.equal(channel_shuffle(x, 2), x[:, [0, 3, 1, 4, 2, 5]])
    assert torch.equal(channel_shuffle(x, 1), x)
    with raises(ValueError, "channels=6 must be divisible by groups=4"):
        channel_shuffle(x, 4)
    with raises(ValueError, "channel_shuffle needs a (B, C, H, W) tensor, got (6, 2, 3)"):
        channel_shuffle(x[0], 3)
    with raises(ValueError, "channel_shuffle needs a (B, C, H, W) tensor, got list"):
        channel_shuffle([1], 3)
    with raises(ValueError, "groups must be an integer >= 1, got 0"):
        channel_shuffle(x, 0)


def test_shuffle_unit_stride_1_forward():
    unit = randomize(ShuffleUnit(10, 10))
    assert type(unit.branch1) is nn.Identity and unit.stride == 1
    pw, dw, pwl = unit.branch2.conv_pw, unit.branch2.conv_dw, unit.branch2.conv_pwl
    assert (pw.conv.in_channels, pw.conv.out_channels) == (5, 5)
    assert dw.conv.groups == 5 and dw.conv.stride == (1, 1) and "act" not in dw._modules
    x = x_of(2, 10, 5, 3)
    x1, x2 = x[:, :5], x[:, 5:]
    b2 = cna(cna(cna(x2, pw, F.relu), dw), pwl, F.relu)
    want = torch.cat([x1, b2], 1)[:, [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]]
    assert torch.allclose(unit(x), want, atol=1e-5)


def test_shuffle_unit_stride_2_forward():
    unit = randomize(ShuffleUnit(6, 10, 2, act_layer="hswish"))
    b1 = unit.branch1
    assert type(b1) is DepthwiseSeparableConv and b1.conv_dw.conv.stride == (2, 2)
    assert b1.conv_dw.conv.kernel_size == (3, 3) and b1.conv_pw.conv.out_channels == 5
    assert "act" not in b1.conv_dw._modules and type(b1.conv_pw.act) is nn.Hardswish
    pw, dw, pwl = unit.branch2.conv_pw, unit.branch2.conv_dw, unit.branch2.conv_pwl
    assert (pw.conv.in_channels, pw.conv.out_channels) == (6, 5)
    assert dw.conv.stride == (2, 2) and dw.conv.kernel_size == (3, 3)
    assert type(pw.act) is nn.Hardswish and type(pwl.act) is nn.Hardswish
    x = x_of(2, 6, 7, 4)
    left = cna(cna(x, b1.conv_dw), b1.conv_pw, F.hardswish)
    right = cna(cna(cna(x, pw, F.hardswish), dw), pwl, F.hardswish)
    want = torch.cat([left, right], 1)[:, [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]]
    y = unit(x)
    assert y.shape == (2, 10, 4, 2) and torch.allclose(y, want, atol=1e-5)


def test_shuffle_unit_checks():
    with raises(ValueError, "stride must be 1 or 2, got 3"):
        ShuffleUnit(6, 10, 3)
    with raises(ValueError, "out_channels must be even: the unit concatenates two halves, got 9"):
        ShuffleUnit(6, 9, 2)
    with raises(
        ValueError,
        "a stride-1 ShuffleUnit splits its input in two halves of out_channels // 2, so it needs "
        "in_channels == out_channels; got in_channels=6, out_channels=10",
    ):
        ShuffleUnit(6, 10, 1)
    for kwargs, message in [
        ({"in_channels": 0}, "in_channels must be an integer >= 1, got 0"),
        ({"out_channels": 0}, "out_channels must be an integer >= 1, got 0"),
        ({"stride": 0}, "stride must be an integer >= 1, got 0"),
    ]:
        with raises(ValueError, message):
            ShuffleUnit(**({"in_channels": 6, "out_channels": 10, "stride": 2} | kwargs))
    no_norm = ShuffleUnit(6, 10, 2, norm_layer=None)
    assert type(no_norm.branch1.conv_dw.bn) is nn.Identity
    assert all(type(m.bn) is nn.Identity for m in no_norm.branch2)


def _norms(module: nn.Module) -> list[str]:
    return [type(m.bn).__name__ for m in module.modules() if isinstance(m, ConvNormAct)]


def _kernels(module: nn.Module) -> list[tuple[int, int]]:
    return [m.conv.kernel_size for m in module.modules() if isinstance(m, ConvNormAct)]


def test_shuffle_unit_layers_are_normalised_and_pointwise():
    down, same = ShuffleUnit(6, 10, 2), ShuffleUnit(10, 10)
    # branch1 (dw, pw), then branch2 (pw, dw, pwl); a stride-1 unit has no branch1
    assert _norms(down) == ["BatchNorm2d"] * 5 and _norms(same) == ["BatchNorm2d"] * 3
    assert _kernels(down) == [(3, 3), (1, 1), (1, 1), (3, 3), (1, 1)]
    assert _kernels(same) == [(1, 1), (3, 3), (1, 1)]
    gn = ShuffleUnit(6, 10, 2, norm_layer=lambda c: nn.GroupNorm(1, c))
    assert _norms(gn) == ["GroupNorm"] * 5


def _group_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(1, channels)


@pytest.mark.parametrize(
    "build, kernels",
    [
        (lambda **kw: DepthwiseSeparableConv(6, 10, 5, **kw), [(5, 5), (1, 1)]),
        (lambda **kw: InvertedResidual(6, 6, 15, 5, se_channels=2, **kw), [(1, 1), (5, 5), (1, 1)]),
        (lambda **kw: GhostModule(5, 7, 3, dw_size=5, **kw), [(3, 3), (5, 5)]),
        # ghost1 (primary 1x1, cheap 3x3), dw 5x5 stride 2, ghost2, shortcut (dw 5x5, pw 1x1)
        (
            lambda **kw: GhostBottleneck(6, 10, 8, 5, 2, **kw),
            [(1, 1), (3, 3), (5, 5), (1, 1), (3, 3), (5, 5), (1, 1)],
        ),
    ],
)
def test_every_conv_of_a_block_gets_the_norm_layer_and_its_kernel(build, kernels):
    assert _kernels(build()) == kernels
    assert set(_norms(build())) == {"BatchNorm2d"}
    assert set(_norms(build(norm_layer=_group_norm))) == {"GroupNorm"}


def _acts(module: nn.Module) -> list[str]:
    """Each ConvNormAct's activation, "Identity" for a linear one (which has no act child)."""
    return [
        type(m._modules.get("act", nn.Identity())).__name__
        for m in module.modules()
        if isinstance(m, ConvNormAct)
    ]


def test_the_activation_reaches_the_convs_that_have_one():
    # GhostBottleneck: ghost1 (primary, cheap) activated; dw, ghost2 and the shortcut linear
    assert _acts(GhostBottleneck(6, 10, 8, 5, 2, act_layer="hswish")) == [
        "Hardswish",
        "Hardswish",
        "Identity",
        "Identity",
        "Identity",
        "Identity",
        "Identity",
    ]
    assert _acts(GhostModule(5, 7, act_layer="silu")) == ["SiLU", "SiLU"]
    assert _acts(InvertedResidual(6, 6, 15, act_layer="silu")) == ["SiLU", "SiLU", "Identity"]
    assert _acts(ShuffleUnit(6, 10, 2, act_layer="silu")) == [
        "Identity",
        "SiLU",
        "SiLU",
        "Identity",
        "SiLU",
    ]


def test_drop_path_keeps_the_shape_of_a_small_batch():
    x = torch.ones(4, 3, 2, 5)
    assert DropPath(0.5).train()(x).shape == (4, 3, 2, 5)
    assert DropPath(0.5).train()(torch.ones(3, 7)).shape == (3, 7)


def test_layer_size_limit_counts_the_kernel_and_the_groups():
    weights = 3 * 3 * (2732 // 2) * 2732  # 33,587,208: twice the limit
    with raises(
        SizeLimitError,
        f"ConvNormAct(in_channels=2732, out_channels=2732, kernel_size=3, groups=2) would hold "
        f"{weights:,} weights (128.1 MiB as float32), more than the 16,777,216 one layer may "
        "have (6.5x the largest layer of any registered model): a width multiplier, channel "
        "count or class count is far too large. Build it under `with torch.device('meta')` to "
        "count it without allocating.",
    ):
        ConvNormAct(2732, 2732, 3, groups=2)
    with pytest.raises(SizeLimitError, match="would hold 16,793,604 weights"):
        ConvNormAct(1366, 1366, 3)  # 9 x 1366^2: the kernel's 9 puts it over
