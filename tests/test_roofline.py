"""effnb.roofline: the roofline formula's values, and measure_peaks' bookkeeping (no timings)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from effnb.roofline import MAX_COPY_BYTES, Peaks, attainable, measure_peaks

# A machine with a 40 GMAC/s compute roof and 10 GB/s of bandwidth: the ridge is at 4 MACs/byte.
PEAKS = Peaks("cpu", 1, 40e9, 1e9, 10e9, 0.5e9, 1024, 256 * 2**20)


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
    assert (pk.device, pk.threads, pk.matmul_size) == ("cpu", 1, 48)
    assert pk.copy_bytes == 2**20  # two fp32 tensors: rounded down to whole 8-byte pairs
    for value in (pk.macs_per_s, pk.bytes_per_s, pk.macs_per_s_iqr, pk.bytes_per_s_iqr):
        assert math.isfinite(value) and value >= 0
    assert pk.macs_per_s > 0 and pk.bytes_per_s > 0
    assert pk.ridge == pk.macs_per_s / pk.bytes_per_s


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"copy_bytes": MAX_COPY_BYTES + 8}, ValueError, "copy_bytes"),
        ({"matmul_size": 8}, ValueError, "matmul_size"),
        ({"threads": 0}, ValueError, "threads"),
        ({"threads": 1.5}, TypeError, "threads"),
        ({"min_run_time": 0}, ValueError, "min_run_time"),
    ],
)
def test_measure_peaks_rejects_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        measure_peaks(**kwargs)
