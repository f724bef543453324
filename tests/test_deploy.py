"""effnb.deploy: BatchNorm folding, channels-last, block replacements and the frozen trace
give the eager model's outputs, for every registered model (the ONNX runtimes:
test_deploy_backends.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import randomise_bn
from torch import nn

import effnb
from effnb.deploy import deploy, fold_batchnorm, fuse_conv_bn, shuffle_concat
from effnb.layers import ConvNormAct, InvertedResidual, channel_shuffle

# B6/B7 take seconds each just to build; B0-B5 cover the family's code paths. B5 is marked
# slow (deselect with -m "not slow").
SKIPPED = {"efficientnet_b6", "efficientnet_b7"}
MODELS = [
    pytest.param(n, marks=pytest.mark.slow) if n == "efficientnet_b5" else n
    for n in effnb.list_models()
    if n not in SKIPPED
]
TRACED = {"mobilenet_v3_small", "ghostnet", "efficientnet_b0"}  # + ShuffleNetV2 below


@pytest.mark.parametrize("name", MODELS)
def test_deployed_model_matches_eager(name):
    model = randomise_bn(effnb.create_model(name))
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # 32 = total stride
    with torch.inference_mode():
        expected = model(x)
    # Eager path for all (fast); the frozen trace is checked on one model per family below.
    deployed = deploy(model, jit="freeze" if name in TRACED else None)
    out = deployed(x)
    if name in TRACED:  # the output came from a trace (there is no fallback to eager)
        assert [type(t) for t in deployed._runners.values()] == [torch.jit.RecursiveScriptModule]
    scale = expected.abs().max().item()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5 * max(scale, 1.0))
    assert deployed.folded == n_bn  # every BatchNorm follows a conv and was folded
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.model.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == n_bn  # original intact


def test_trace_is_shape_generic_and_options_agree():
    """The frozen trace made on one batch/resolution serves another; every option combination
    gives the same outputs."""
    model = randomise_bn(effnb.create_model("shufflenet_v2_x0_5"))
    x1, x2 = torch.randn(1, 3, 32, 32), torch.randn(3, 3, 64, 48)
    with torch.inference_mode():
        e1, e2 = model(x1), model(x2)
    deployed = deploy(model, example_input=x1)
    torch.testing.assert_close(deployed(x2), e2, rtol=1e-4, atol=1e-5)
    for kwargs in (
        {"jit": "optimize"},
        {"fold_bn": False, "jit": None},
        {"channels_last": False, "replace_blocks": False},
    ):
        torch.testing.assert_close(deploy(model, **kwargs)(x1), e1, rtol=1e-4, atol=1e-5)


def test_channels_last_weights_and_inference_mode():
    deployed = deploy(effnb.create_model("mobilenet_v3_small"), jit=None)
    convs = [m for m in deployed.model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    out = deployed(torch.randn(1, 3, 64, 64))
    assert out.is_inference() and not out.requires_grad
    assert not deployed.model.training


def test_fuse_conv_bn_formula_by_hand():
    """W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta."""
    conv = nn.Conv2d(1, 2, 1, bias=True)
    bn = nn.BatchNorm2d(2, eps=0.0).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 3.0]).reshape(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([1.0, -1.0]))
        bn.running_mean.copy_(torch.tensor([0.5, 1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([1.0, 2.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.5]))
    fused = fuse_conv_bn(conv, bn)
    # scale = gamma / sqrt(var) = [0.5, 4]
    assert fused.weight.flatten().tolist() == [1.0, 12.0]
    assert fused.bias.tolist() == [(1.0 - 0.5) * 0.5 + 0.0, (-1.0 - 1.0) * 4.0 + 0.5]


def test_fold_in_a_plain_sequential_and_in_blocks():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    block = InvertedResidual(8, 8, 32, se_channels=8)
    model = randomise_bn(nn.Sequential(net, block))
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        expected = model(x)
    assert fold_batchnorm(model) == 1 + 3  # the Sequential's pair + the block's three ConvNormActs
    assert isinstance(model[0][1], nn.Identity)
    assert isinstance(block.conv_dw.bn, nn.Identity)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_shuffle_concat_equals_cat_then_channel_shuffle():
    a, b = torch.randn(2, 6, 5, 4), torch.randn(2, 6, 5, 4)
    expected = channel_shuffle(torch.cat((a, b), 1), 2)
    for fmt in (torch.contiguous_format, torch.channels_last):
        out = shuffle_concat(a.contiguous(memory_format=fmt), b.contiguous(memory_format=fmt))
        assert torch.equal(out, expected)
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_bad_arguments_fail_loudly():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        deploy("mobilenet_v2")
    with pytest.raises(ValueError, match="jit must be one of"):
        deploy(nn.Conv2d(1, 1, 1), jit="script")
    with pytest.raises(TypeError, match="example_input"):
        deploy(nn.Conv2d(1, 1, 1), example_input=[1.0])
    with pytest.raises(TypeError, match="bn must be an nn.BatchNorm2d"):
        fuse_conv_bn(nn.Conv2d(1, 1, 1), nn.ReLU())
    with pytest.raises(ValueError, match="running statistics"):
        fuse_conv_bn(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(ValueError, match="expects input of shape"):
        deploy(effnb.create_model("mobilenet_v3_small"))(torch.randn(1, 3, 16, 16))


def test_convnormact_without_bn_is_left_alone():
    layer = ConvNormAct(3, 4, norm_layer=None)
    assert fold_batchnorm(layer) == 0
    assert layer.conv.bias is not None
