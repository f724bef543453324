"""The cost model and the memory measurements against bad arguments, absurd sizes and other
dtypes: errors name the argument before any allocation; half and double models are profiled
in their own precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import effnb
from effnb import costs
from effnb._checks import SizeLimitError
from effnb.memory import estimate_peak_bytes, measure_peak_bytes, memory_report


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: costs.conv2d_output_size(4, 7, padding=0), ValueError, "does not fit in size=4"),
        (lambda: costs.conv2d_output_size(0, 3), ValueError, "size must be an integer >= 1"),
        (lambda: costs.conv2d_output_size(8, 3, stride=0), ValueError, "stride must be"),
        (lambda: costs.conv2d_output_size(8, 3, padding=-1), ValueError, "padding must be"),
        (lambda: costs.conv2d_params(8, 8, 2.5), TypeError, "kernel_size must be an integer"),
        (lambda: costs.conv2d_params(8, 8, 3, bias=None), TypeError, "bias must be True or False"),
        (lambda: costs.conv2d_macs(8, 8, 3, 0), ValueError, "h_out must be an integer >= 1"),
        (lambda: costs.linear_params("1280", 10), TypeError, "in_features must be an integer"),
        (lambda: costs.linear_macs(1280, 10, batch=0), ValueError, "batch must be an integer"),
        (lambda: costs.depthwise_separable_params(8, -8), ValueError, "c_out must be an integer"),
        (
            lambda: costs.depthwise_separable_macs(8, 8, 3, float("nan")),
            TypeError,
            "h_out must be an integer",
        ),
        (lambda: costs.se_params(0, 4), ValueError, "channels must be an integer >= 1"),
        (lambda: costs.se_macs(8, -1), ValueError, "squeeze_channels must be an integer >= 0"),
        (lambda: costs.reduction_factor(256, 4), ValueError, "kernel_size must be an odd integer"),
    ],
)
def test_formulas_name_the_bad_argument(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_formulas_accept_numpy_numbers():
    assert costs.conv2d_params(np.int64(8), np.int64(16), np.int64(3)) == 9 * 8 * 16
    assert costs.conv2d_output_size(np.int32(17), 3, stride=2) == 9


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"input_size": (3, 100_000, 100_000)}, SizeLimitError, "input_size="),
        ({"input_size": 10_000}, SizeLimitError, r"input_size=10000 would need .* for one layer"),
        ({"batch": 0}, ValueError, "batch must be an integer >= 1, got 0"),
        ({"batch": 2.0}, TypeError, "batch must be an integer"),
        ({"count_bn": "yes"}, TypeError, "count_bn must be True or False"),
        ({"input_size": [3, "a", 8]}, ValueError, "input_size must be positive ints"),
    ],
)
def test_profile_rejects_before_allocating(monkeypatch, kwargs, exc, msg):
    def boom(*args, **kw):
        raise AssertionError("the input was allocated before the checks")

    model = effnb.create_model("mobilenet_v2", num_classes=10)
    monkeypatch.setattr(costs.torch, "zeros", boom)
    with pytest.raises(exc, match=msg):
        costs.profile(model, **({"input_size": 32} | kwargs))


@pytest.mark.parametrize("dtype, size", [(torch.float16, 2), (torch.float64, 8)])
def test_half_and_double_models_are_profiled_in_their_dtype(dtype, size):
    report32 = costs.profile(tiny(), (3, 8, 8))
    report = costs.profile(tiny().to(dtype), (3, 8, 8))
    assert report.dtype == str(dtype).removeprefix("torch.")
    assert report.macs == report32.macs and report.params == report32.params
    assert report.activation_bytes == report32.activation_bytes * size // 4
    assert report.peak_activation_bytes == report32.peak_activation_bytes * size // 4


def test_profile_page_table_arguments():
    report = costs.profile(tiny(), 8)
    assert "Conv2d" in report.table("Conv2d")
    with pytest.raises(ValueError, match="max_rows must be an integer >= 0"):
        report.table(max_rows=-1)


# --- memory ----------------------------------------------------------------------------------


def test_memory_dtype_mismatch_is_named():
    with pytest.raises(TypeError, match=r"x has dtype torch.float32 but the model's weights are"):
        measure_peak_bytes(tiny().double(), torch.randn(1, 3, 8, 8))
    x = torch.randn(1, 3, 8, 8)
    assert measure_peak_bytes(tiny().double(), x.double()) == 2 * measure_peak_bytes(tiny(), x)


def test_memory_of_an_absurd_forward_fails_before_running(monkeypatch):
    model = effnb.create_model("mobilenet_v3_small", num_classes=10)
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(2**20))
    x = torch.randn(1, 3, 256, 256)  # 768 KiB in; the ReLU's input and output, 4 MiB
    with pytest.raises(SizeLimitError, match=r"x.shape=\(1, 3, 256, 256\) would need 4.0 MiB"):
        measure_peak_bytes(tiny(), x)
    with pytest.raises(SizeLimitError, match="x.shape="):
        estimate_peak_bytes(tiny(), x)
    with pytest.raises(SizeLimitError, match="input_size=256"):
        memory_report(model, 256)


def test_memory_report_arguments():
    model = effnb.create_model("mobilenet_v3_small", num_classes=10)
    with pytest.raises(TypeError, match="input_size must be an integer"):
        memory_report(model, (3, 64, 64))
    with pytest.raises(ValueError, match="batch must be an integer >= 1"):
        memory_report(model, 64, batch=0)
