"""effnb.roofline: the roofline formula's values, and measure_peaks' bookkeeping (no timings)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from effnb import roofline
from effnb.roofline import (
    MAX_COPY_BYTES,
    Peaks,
    attainable,
    measure_peaks,
    model_traffic,
    place,
)

# A machine with a 40 GMAC/s compute roof and 10 GB/s of bandwidth: the ridge is at 4 MACs/byte.
PEAKS = Peaks("cpu", 1, 40e9, 1e9, 10e9, 0.5e9, (1024, 1024, 1024), 256 * 2**20)


def test_ridge_is_peak_over_bandwidth():
    assert PEAKS.ridge == 4.0
    assert "ridge at 4.0 MACs/byte" in str(PEAKS)
    assert "40.0 GMAC/s" in str(PEAKS) and "10.0 GB/s" in str(PEAKS)


@pytest.mark.parametrize(
    ("intensity", "expected"),
    [(0.0, 0.0), (0.5, 5e9), (1.0, 10e9), (3.0, 30e9), (4.0, 40e9), (4.5, 40e9), (100.0, 40e9)],
)
def test_attainable_is_min_of_the_two_roofs(intensity, expected):
    assert attainable(intensity, PEAKS) == pytest.approx(expected)


def test_attainable_on_arrays_keeps_the_shape():
    got = attainable(np.array([[0.25, 2.0], [8.0, 1e3]]), PEAKS)
    np.testing.assert_allclose(got, [[2.5e9, 20e9], [40e9, 40e9]])
    assert isinstance(attainable(2, PEAKS), float)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, [1.0, -0.5]])
def test_attainable_rejects_impossible_intensities(bad):
    with pytest.raises(ValueError, match="intensity"):
        attainable(bad, PEAKS)


def test_peaks_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PEAKS.macs_per_s = 1.0  # type: ignore[misc]


def test_measure_peaks_bookkeeping_and_thread_count_restored():
    before = torch.get_num_threads()
    pk = measure_peaks(1, matmul_size=48, copy_bytes=2**20 + 4, min_run_time=0.01)
    assert torch.get_num_threads() == before
    assert (pk.device, pk.threads, pk.matmul_shape) == ("cpu", 1, (48, 48, 48))
    assert [shape for shape, _ in pk.matmul_rates] == [(48, 48, 48)]
    assert pk.copy_bytes == 2**20  # two fp32 tensors: rounded down to whole 8-byte pairs
    for value in (pk.macs_per_s, pk.bytes_per_s, pk.macs_per_s_iqr, pk.bytes_per_s_iqr):
        assert math.isfinite(value) and value >= 0
    assert pk.macs_per_s > 0 and pk.bytes_per_s > 0
    assert pk.ridge == pk.macs_per_s / pk.bytes_per_s


def test_compute_roof_is_the_best_of_the_products(monkeypatch):
    # Fake timings: the product with K = 64 runs at 3 MAC/s, the others at 1 and 2.
    speed = {32: 1.0, 64: 3.0, 48: 2.0}

    def fake_rates(step, work, threads, min_run_time):
        k = fake_rates.k
        return speed.get(k, 5.0), 0.1 * speed.get(k, 5.0)

    fake_rates.k = None
    real_randn = torch.randn

    def spy_randn(*size, **kwargs):
        if len(size) == 2:
            fake_rates.k = size[1] if size[1] in speed else fake_rates.k
        return real_randn(*size, **kwargs)

    monkeypatch.setattr(roofline, "_rates", fake_rates)
    monkeypatch.setattr(roofline.torch, "randn", spy_randn)
    shapes = [(16, 32, 16), (16, 64, 16), (16, 48, 16)]
    pk = measure_peaks(1, matmul_shapes=shapes, copy_bytes=64, min_run_time=0.01)
    assert pk.matmul_shape == (16, 64, 16)
    assert pk.macs_per_s == 3.0 and pk.macs_per_s_iqr == pytest.approx(0.3)
    assert [r for _, r in pk.matmul_rates] == [1.0, 3.0, 2.0]
    assert "best of 3 fp32 products: 16x64 @ 64x16" in str(pk)


def test_default_products_include_more_than_one_shape():
    assert len(roofline.GEMM_SHAPES) >= 3 and (1024, 1024, 1024) in roofline.GEMM_SHAPES


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"copy_bytes": MAX_COPY_BYTES + 8}, ValueError, "copy_bytes"),
        ({"matmul_size": 8}, ValueError, "matmul_size"),
        ({"matmul_size": 64, "matmul_shapes": [(64, 64, 64)]}, ValueError, "not both"),
        ({"matmul_shapes": []}, TypeError, "matmul_shapes must be a non-empty list"),
        ({"matmul_shapes": [(64, 64)]}, TypeError, r"matmul_shapes\[0\] must be \(M, K, N\)"),
        ({"matmul_shapes": [(64, 8, 64)]}, ValueError, r"matmul_shapes\[0\]"),
        ({"matmul_shapes": [(2**12, 2**12, 2**12)]}, ValueError, "more than"),
        ({"threads": 0}, ValueError, "threads"),
        ({"threads": 1.5}, TypeError, "threads"),
        ({"min_run_time": 0}, ValueError, "min_run_time"),
    ],
)
def test_measure_peaks_rejects_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        measure_peaks(**kwargs)


def test_place_divides_work_by_bytes_and_time():
    # 6 GMACs over 3 GB: I = 2 MACs/byte, memory side; the roof there is 20 GMAC/s.
    p = place("net", 6e9, 3e9, 0.5, PEAKS)
    assert (p.intensity, p.roof, p.achieved) == (2.0, 20e9, 12e9)
    assert p.fraction == pytest.approx(0.6) and p.bound == "memory"
    q = place("gemm", 8e9, 1e9, 0.4, PEAKS)  # I = 8: compute side, roof 40 GMAC/s
    assert (q.intensity, q.roof, q.bound) == (8.0, 40e9, "compute")
    assert q.fraction == pytest.approx(0.5)
    assert "60.0% of the 20.0 GMAC/s attainable" in str(p)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("x", 0, 1, 1), ValueError, "macs"),
        (("x", 1, -1, 1), ValueError, "bytes_moved"),
        (("x", 1, 1, math.nan), ValueError, "seconds"),
        ((3, 1, 1, 1), TypeError, "label"),
    ],
)
def test_place_rejects_impossible_measurements(args, error, match):
    with pytest.raises(error, match=match):
        place(*args, PEAKS)
    with pytest.raises(TypeError, match="peaks must be a Peaks"):
        place("x", 1, 1, 1, {"macs_per_s": 1})


def test_model_traffic_counts_weights_and_conv_linear_inputs_and_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),  # 3x10x12 -> 8x5x6
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(240, 5),
    )
    macs, traffic = model_traffic(model, (10, 12))
    assert macs == 9 * 3 * 8 * 5 * 6 + 240 * 5
    params = 8 * 3 * 9 + 2 * 8 + 240 * 5 + 5  # conv, BatchNorm's gamma and beta, linear
    conv_io = 3 * 10 * 12 + 8 * 5 * 6
    linear_io = 240 + 5
    assert traffic == 4 * (params + conv_io + linear_io)
    macs_b2, traffic_b2 = model_traffic(model, (10, 12), batch=2)
    assert macs_b2 == 2 * macs and traffic_b2 == traffic + 4 * (conv_io + linear_io)
