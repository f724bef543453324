"""The cost model against sum(p.numel()), FlopCounterMode and thop, on every model."""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import pytest
import thop
import torch
from conftest import load_reference
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import effnb
from effnb import costs
from effnb.layers import DepthwiseSeparableConv, InvertedResidual, SqueezeExcite

NAMED_MODELS = [n for n in effnb.list_models() if n != "efficientnet"]
SMALL = [
    n
    for n in NAMED_MODELS
    if n not in ("efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7")
]


def flop_counter_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(shape))
    return counter.get_total_flops() // 2


def thop_macs(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        macs, params = thop.profile(model.eval(), inputs=(torch.zeros(shape),), verbose=False)
    return int(macs), int(params)


# --- formulas ----------------------------------------------------------------------------


def test_conv_formulas_match_pytorch():
    for c_in, c_out, k, g, bias in [
        (3, 32, 3, 1, False),
        (64, 64, 3, 64, False),
        (16, 48, 1, 1, True),
        (32, 64, 5, 4, True),
    ]:
        conv = nn.Conv2d(c_in, c_out, k, groups=g, bias=bias)
        assert costs.conv2d_params(c_in, c_out, k, g, bias) == sum(
            p.numel() for p in conv.parameters()
        )
        h = costs.conv2d_output_size(17, k, stride=2)
        out = nn.Conv2d(c_in, c_out, k, 2, (k - 1) // 2, groups=g)(torch.zeros(1, c_in, 17, 17))
        assert out.shape[-1] == h
        assert costs.conv2d_macs(c_in, c_out, k, h, groups=g) == flop_counter_macs(
            nn.Conv2d(c_in, c_out, k, 2, (k - 1) // 2, groups=g), (1, c_in, 17, 17)
        )


def test_linear_and_se_formulas():
    assert costs.linear_params(1280, 1000) == 1_281_000
    assert costs.linear_macs(1280, 1000, batch=2) == 2_560_000
    se = SqueezeExcite(96, 24)
    assert costs.se_params(96, 24) == sum(p.numel() for p in se.parameters())
    assert costs.se_params(96, 24, bias=False) == 2 * 96 * 24
    assert costs.se_macs(96, 24) == flop_counter_macs(se, (1, 96, 7, 7))


def test_depthwise_separable_formulas_and_reduction_factor():
    block = DepthwiseSeparableConv(256, 256, 3)
    weights = block.conv_dw.conv.weight.numel() + block.conv_pw.conv.weight.numel()
    assert costs.depthwise_separable_params(256, 256, 3) == weights == 67_840
    assert costs.depthwise_separable_macs(256, 256, 3, 56) == flop_counter_macs(
        block, (1, 256, 56, 56)
    )
    standard = costs.conv2d_params(256, 256, 3)
    assert (
        costs.reduction_factor(256, 3)
        == pytest.approx(standard / weights)
        == pytest.approx(8.694, abs=1e-3)
    )
    assert costs.reduction_factor(10**6, 3) == pytest.approx(9.0, abs=1e-3)  # k^2 only in the limit
    with pytest.raises(ValueError, match="kernel_size must be an odd integer"):
        costs.reduction_factor(256, 4)


# --- whole models ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_profile_params_and_macs_match_pytorch_and_reference(name):
    model = effnb.create_model(name)
    report = costs.profile(model)
    assert report.params == sum(p.numel() for p in model.parameters())
    shape = report.input_shape
    assert report.macs == flop_counter_macs(model, shape) == load_reference(name)["macs"]
    assert report.flops == 2 * report.macs


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7"]
)
def test_profile_macs_of_large_efficientnets_match_reference(name):
    """Counts only (one forward each at 380-600 px)."""
    report = costs.profile(effnb.create_model(name))
    ref = load_reference(name)
    assert report.macs == ref["macs"] and report.params == ref["params"]
    assert report.input_shape == (1, 3, ref["input_size"], ref["input_size"])


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_thop_difference_is_exactly_batchnorm_and_pooling(name):
    """thop = conv+linear MACs + 4 x numel per affine BatchNorm input + (H*W + 1) x numel per
    adaptive-average-pool output; it counts 0 for activations and never sees functional ops."""
    model = effnb.create_model(name)
    report = costs.profile(model, 96)
    thop_total, thop_params = thop_macs(model, report.input_shape)
    bn = sum(
        4 * math.prod(layer.input_shape) for layer in report.layers if layer.type == "BatchNorm2d"
    )
    pool = sum(
        (layer.input_shape[2] * layer.input_shape[3] + 1) * math.prod(layer.output_shape)
        for layer in report.layers
        if layer.type == "AdaptiveAvgPool2d"
    )
    assert thop_params == report.params
    assert thop_total == report.macs + bn + pool
    assert thop_total > report.macs


@pytest.mark.slow
def test_mobilenet_v2_thop_figure_from_reference():
    """REFERENCE.md: thop gives 327.5M for MobileNetV2 against 300.8M conv+linear MACs."""
    model = effnb.create_model("mobilenet_v2")
    assert round(thop_macs(model, (1, 3, 224, 224))[0] / 1e6, 1) == 327.6
    assert round(costs.profile(model).macs / 1e6, 1) == 300.8


def test_count_bn_adds_one_mac_per_bn_element():
    model = effnb.create_model("mobilenet_v3_small")
    plain, with_bn = costs.profile(model, 64), costs.profile(model, 64, count_bn=True)
    bn_elems = sum(
        math.prod(layer.output_shape) for layer in plain.layers if layer.type == "BatchNorm2d"
    )
    assert with_bn.macs - plain.macs == bn_elems > 0


def test_profile_report_table_and_activation_memory():
    block = InvertedResidual(16, 16, 96, 3, 1)
    report = costs.profile(block, (16, 8, 8), batch=2)
    assert report.input_shape == (2, 16, 8, 8)
    # new tensors: expand conv, bn (96 ch each), dw conv, bn (96), project conv, bn (16), float32;
    # the in-place ReLU6s and the eval-mode DropPath allocate nothing
    assert report.activation_bytes == 4 * 2 * 8 * 8 * (4 * 96 + 2 * 16)
    assert [layer.activation_bytes for layer in report.layers if layer.type == "ReLU6"] == [0, 0]
    assert report.peak_activation_bytes == 4 * 2 * 8 * 8 * (96 + 96)  # a BatchNorm: 96 in, 96 out
    text = report.table()
    assert "MACs = multiply-accumulates" in text and f"{report.macs:,}" in text
    assert report.by_type()["Conv2d"]["count"] == 3


def test_profile_lists_parameters_of_modules_never_called():
    class Partial(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Conv2d(3, 4, 1)
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            return self.used(x)

    report = costs.profile(Partial(), (3, 4, 4))
    assert report.params == 16 + 20
    assert any(layer.type == "Linear (not called)" for layer in report.layers)


def test_profile_bad_input():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        costs.profile("mobilenet_v2")
    with pytest.raises(ValueError, match="input_size is required"):
        costs.profile(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="input_size must be positive ints"):
        costs.profile(nn.Conv2d(3, 3, 1), (3, 0, 4))
    with pytest.raises(ValueError, match="H, W >= 32"):
        costs.profile(effnb.create_model("mobilenet_v2"), 16)
