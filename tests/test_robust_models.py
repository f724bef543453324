"""Model builders and layers against absurd sizes and bad arguments: they fail fast, before
allocating gigabytes, naming the argument; the meta device still builds anything."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

import effnb
from effnb import layers
from effnb._checks import MAX_LAYER_PARAMS, SizeLimitError
from effnb.models import mobilenet, register_model
from effnb.models.net import ClassifierHead, EfficientCNN


@pytest.mark.parametrize(
    "name, kwargs, arg",
    [
        ("mobilenet_v1", {"width_mult": 100}, "width_mult=100"),
        ("mobilenet_v2", {"width_mult": 100.0}, "width_mult=100.0"),
        ("mobilenet_v3_large", {"width_mult": 50}, "width_mult=50"),
        ("ghostnet", {"width_mult": 100}, "width_mult=100"),
        ("efficientnet", {"width_mult": 100}, "width_mult=100"),
        ("mobilenet_v2", {"num_classes": 10**9}, "num_classes=1000000000"),
        ("shufflenet_v2_x1_0", {"num_classes": 10**8}, "num_classes=100000000"),
    ],
)
def test_absurd_sizes_fail_fast_naming_the_argument(name, kwargs, arg):
    start = time.perf_counter()
    with pytest.raises(SizeLimitError, match=rf"create_model\('{name}', {arg}\).*far too large"):
        effnb.create_model(name, **kwargs)
    assert time.perf_counter() - start < 20.0  # not minutes of allocation


def test_total_parameter_bytes_are_bounded(monkeypatch):
    """Deep instead of wide: no single layer is large, the total is (EFFNB_MAX_BYTES / 8)."""
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(16 * 2**20))  # models up to 2 MiB of weights
    effnb.create_model("mobilenet_v3_small", width_mult=0.35, num_classes=10)  # 1.3 MiB: fits
    with pytest.raises(
        SizeLimitError,
        match=r"create_model\('efficientnet', depth_mult=2\.0\) would hold more than 2\.0 MiB",
    ):
        effnb.create_model("efficientnet", depth_mult=2.0)


@pytest.mark.parametrize(
    "kwargs, counted",
    # counts as built on the meta device: 4 bytes x sum(p.numel())
    [({"depth_mult": 100}, "1.8 GiB"), ({"depth_mult": 8.0, "num_classes": 7}, "147.1 MiB")],
)
def test_deep_efficientnet_fails_from_its_config_before_building(monkeypatch, kwargs, counted):
    """Depth alone makes no layer too large: the config's parameter count stops it at once."""
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(8 * 128 * 2**20))  # a 128 MiB model bound
    monkeypatch.setattr(
        effnb.models.efficientnet,
        "InvertedResidual",
        lambda *a, **k: pytest.fail("built a block before checking the config"),
    )
    call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    with pytest.raises(
        SizeLimitError,
        match=rf"create_model\('efficientnet', {call}\) would hold more than 128\.0 MiB .*"
        rf"config counts {counted} of parameters before building",
    ):
        effnb.create_model("efficientnet", **kwargs)


def test_a_config_under_the_bound_still_builds_and_direct_calls_are_unbounded(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(8 * 22 * 2**20))  # B0 (20.2 MiB) fits in 22 MiB
    assert sum(p.numel() for p in effnb.create_model("efficientnet").parameters()) == 5_288_548
    with pytest.raises(SizeLimitError, match="config counts 29.7 MiB"):  # B1: 7,794,184 x 4 B
        effnb.create_model("efficientnet", depth_mult=1.1)
    with torch.device("meta"):  # counted, never allocated: any depth builds
        assert len(effnb.create_model("efficientnet", depth_mult=1.1).stages[1]) == 3


def test_meta_device_builds_any_size_without_allocating():
    with torch.device("meta"):
        model = effnb.create_model("mobilenet_v2", width_mult=100)
    assert sum(p.numel() for p in model.parameters()) > 10**10


def test_direct_builder_calls_stop_at_the_first_oversized_layer():
    """Builders called without create_model still stop before any layer over the limit."""
    with pytest.raises(SizeLimitError, match=r"ConvNormAct\(in_channels=\d+, out_channels=\d+"):
        mobilenet.mobilenet_v2(width_mult=100)


def test_create_model_accepts_numpy_numbers_and_checks_small_input():
    model = effnb.create_model("mobilenet_v2", width_mult=np.float32(0.5), num_classes=np.int64(10))
    assert model.classifier.fc.out_features == 10
    with pytest.raises(TypeError, match="small_input must be True or False, got 'yes'"):
        effnb.create_model("mobilenet_v2", small_input="yes")


def test_register_model_checks_its_arguments():
    with pytest.raises(TypeError, match="model name must be a non-empty string"):
        register_model("", family="x")
    with pytest.raises(TypeError, match="builder for 'x' must be callable, got int"):
        register_model("x", family="x")(3)


# --- layers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, exc, msg",
    [
        (lambda: layers.ConvNormAct(8, 8, dilation=0), ValueError, "dilation must be an integer"),
        (lambda: layers.ConvNormAct(8, 8, bias="no"), TypeError, "bias must be True or False"),
        (
            lambda: layers.ConvNormAct(8, 8, norm_layer="bn"),
            TypeError,
            "norm_layer must be a callable",
        ),
        (lambda: layers.ConvNormAct(8, 8, kernel_size=10**6 + 1), ValueError, "kernel_size"),
        (
            lambda: layers.ConvNormAct(8192, 8192, 3),
            SizeLimitError,
            rf"ConvNormAct\(in_channels=8192, .* more than the {MAX_LAYER_PARAMS:,}",
        ),
        (
            lambda: layers.SqueezeExcite(10**5, 10**4),
            SizeLimitError,
            r"SqueezeExcite\(channels=100000, squeeze_channels=10000\)",
        ),
        (
            lambda: layers.InvertedResidual(8, 16, 32, drop_path=5.0),
            ValueError,
            r"drop_path must be in \[0, 1\), got 5.0",
        ),
        (
            lambda: layers.InvertedResidual(8, 8, 32, se_channels=-1),
            ValueError,
            "se_channels must be an integer >= 0, got -1",
        ),
        (
            lambda: layers.GhostBottleneck(8, 16, 8, se_channels=2.5),
            TypeError,
            "se_channels must be an integer",
        ),
        (
            lambda: layers.DepthwiseSeparableConv(8, 8, dw_act=None),
            TypeError,
            "dw_act must be True or False",
        ),
        (
            lambda: ClassifierHead(1280, 10**9),
            SizeLimitError,
            r"the classifier \(1280 features -> num_classes=1000000000\)",
        ),
        (lambda: ClassifierHead(0, 10), ValueError, "in_features must be an integer >= 1, got 0"),
        (
            lambda: ClassifierHead(64, 10, hidden_features=-1),
            ValueError,
            "hidden_features must be an integer >= 0",
        ),
        (
            lambda: EfficientCNN(nn.Identity(), [], nn.Identity(), nn.Identity(), in_chans=0),
            ValueError,
            "in_chans must be an integer >= 1, got 0",
        ),
        (
            lambda: EfficientCNN(nn.Identity(), [], nn.Identity(), nn.Identity(), name=3),
            TypeError,
            "name must be a string, got 3",
        ),
    ],
)
def test_layer_arguments_fail_at_construction(build, exc, msg):
    with pytest.raises(exc, match=msg):
        build()


def test_layer_size_limit_does_not_apply_on_meta():
    with torch.device("meta"):
        conv = layers.ConvNormAct(8192, 8192, 3)
    assert conv.conv.weight.numel() > MAX_LAYER_PARAMS


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: layers.make_divisible(float("nan")), ValueError, "value must be a finite number"),
        (lambda: layers.make_divisible(-8.0), ValueError, "value must be a finite number >= 0"),
        (lambda: layers.make_divisible("32"), TypeError, "value must be a finite number"),
        (lambda: layers.make_divisible(32, 0), ValueError, "divisor must be an integer >= 1"),
        (lambda: layers.make_divisible(32, 8, 0), ValueError, "min_value must be an integer >= 1"),
        (lambda: layers.scale_depth(3, float("inf")), ValueError, "depth_mult must be a positive"),
        (lambda: layers.scale_depth(-1, 1.0), ValueError, "num_layers must be an integer >= 0"),
        (lambda: layers.channel_shuffle(torch.zeros(2, 4), 2), ValueError, r"\(B, C, H, W\)"),
        (lambda: layers.channel_shuffle(torch.zeros(1, 4, 2, 2), 0), ValueError, "groups"),
        (lambda: layers.channel_shuffle([1, 2], 2), ValueError, "got list"),
    ],
)
def test_layer_functions_check_their_arguments(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_layer_functions_accept_numpy_numbers():
    assert layers.make_divisible(np.float64(30.0)) == 32
    assert layers.scale_depth(np.int64(3), np.float32(1.5)) == 5


def test_model_input_must_be_a_tensor():
    model = effnb.create_model("mobilenet_v3_small", num_classes=10)
    with pytest.raises(TypeError, match="mobilenet_v3_small takes a torch.Tensor, got list"):
        model([[1.0]])
