"""effnb.memory: measured peaks equal hand counts on small modules; the estimate tracks the
measurement on real models and the cost model's figure is below both."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import effnb
from effnb.memory import estimate_peak_bytes, measure_peak_bytes, peak_activation_bytes

F32 = 4  # bytes per float32 element


def test_single_conv_peak_is_its_output():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 16, 16)
    assert measure_peak_bytes(conv, x) == 2 * 8 * 16 * 16 * F32  # B * C_out * H * W * 4
    assert peak_activation_bytes(conv, x) == (2 * 8 + 2 * 3) * 16 * 16 * F32


def test_inplace_activation_adds_nothing_and_outofplace_adds_its_output():
    x = torch.randn(2, 3, 16, 16)
    inplace = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 1))
    outplace = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    # in place: the 8-channel map, then the 4-channel output beside it
    assert measure_peak_bytes(inplace, x) == (8 + 4) * 2 * 256 * F32
    # out of place: conv output + ReLU output (Sequential still holds the conv's output)
    assert measure_peak_bytes(outplace, x) == (8 + 8) * 2 * 256 * F32


def test_allocator_measurement_sees_at_least_the_tensors():
    conv = nn.Conv2d(8, 16, 3, padding=1)
    x = torch.randn(1, 8, 16, 16)
    tensors = measure_peak_bytes(conv, x, "tensors")
    assert tensors == 16 * 16 * 16 * F32
    assert measure_peak_bytes(conv, x, "allocator") >= tensors  # plus kernel scratch


def test_memory_is_freed_between_calls():
    """Each call counts its own tensors only: after a larger forward pass, a small model still
    measures its hand count (was: the small call compared with itself, which cannot fail)."""
    small = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU())
    x = torch.randn(1, 3, 8, 8)
    # a ReLU's input and output, 8 channels each, 8 x 8, float32
    expected = (8 + 8) * 8 * 8 * F32
    assert measure_peak_bytes(small, x) == expected
    large = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
    assert measure_peak_bytes(large, torch.randn(2, 3, 12, 10)) == 2 * (2 * 16 * 12 * 10) * F32
    assert measure_peak_bytes(small, x) == expected
    assert measure_peak_bytes(small, torch.randn(1, 3, 4, 8)) == expected // 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5"])
def test_estimate_matches_measurement_and_cost_model_is_a_lower_bound(name):
    model = effnb.create_model(name)
    x = torch.randn(1, 3, 64, 64)
    measured = peak_activation_bytes(model, x)
    assert estimate_peak_bytes(model, x) == measured
    assert effnb.profile(model, 64).peak_activation_bytes <= measured


def test_bad_arguments():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        measure_peak_bytes("conv", torch.randn(1))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        measure_peak_bytes(nn.ReLU(), [1.0])
    with pytest.raises(ValueError, match="method must be one of"):
        measure_peak_bytes(nn.ReLU(), torch.randn(1), method="rss")
