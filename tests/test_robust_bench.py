"""effnb.bench against hostile arguments: nothing hangs, nothing allocates before the checks,
every error names the argument; half and double models are timed in their own dtype."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

import effnb
from effnb import bench
from effnb._checks import SizeLimitError


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())


def _no_allocation(monkeypatch):
    """Fail the test if the harness makes an input (the checks must come first)."""

    def boom(*args, **kwargs):
        raise AssertionError("an input was allocated before the arguments were checked")

    monkeypatch.setattr(bench.torch, "randn", boom)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"min_run_time": float("nan")}, ValueError, "min_run_time must be a positive, finite"),
        ({"min_run_time": float("inf")}, ValueError, "min_run_time must be a positive, finite"),
        ({"min_run_time": 0}, ValueError, "min_run_time must be a positive, finite"),
        ({"min_run_time": -1.0}, ValueError, "min_run_time must be a positive, finite"),
        ({"min_run_time": 1e6}, SizeLimitError, "min_run_time must be at most 600 seconds"),
        ({"min_run_time": "0.1"}, TypeError, "min_run_time must be a positive number"),
        ({"threads": 10_000}, SizeLimitError, r"threads must be an integer <= \d+ \(4 x the"),
        ({"threads": 1.5}, TypeError, "threads must be an integer"),
        ({"warmup": -1}, ValueError, "warmup must be an integer >= 0, got -1"),
        ({"warmup": 10**9}, SizeLimitError, "warmup must be an integer <= 10000"),
        ({"batch": True}, TypeError, "batch must be an integer"),
        ({"input_size": (3, 100_000, 100_000)}, SizeLimitError, r"input_size=\(3, 100000, 100000"),
        ({"input_size": "224"}, TypeError, "input_size must be an int"),
        ({"channels_last": "yes"}, TypeError, "channels_last must be True or False"),
        ({"label": 3}, TypeError, "label must be a string or None"),
        ({"device": 7}, ValueError, "device must be 'cpu'"),
    ],
)
def test_measure_latency_rejects_before_allocating_or_timing(monkeypatch, kwargs, exc, msg):
    _no_allocation(monkeypatch)
    args = {"input_size": 8, "min_run_time": 0.01} | kwargs
    start = time.perf_counter()
    with pytest.raises(exc, match=msg):
        bench.measure_latency(tiny(), **args)
    assert time.perf_counter() - start < 5.0  # fails fast, never hangs


def test_absurd_input_fails_on_activations_before_allocation(monkeypatch):
    """A 10,000 px input fits in memory by itself; MobileNetV2's activations at that size
    would not. The count runs on the meta device, so the error comes in well under a second
    of work and nothing is allocated."""
    _no_allocation(monkeypatch)
    model = effnb.create_model("mobilenet_v2", num_classes=10)
    with pytest.raises(SizeLimitError, match=r"input_size=10000 would need .* GiB for one layer"):
        bench.measure_latency(model, 10_000, min_run_time=0.01)


def test_numpy_and_tensor_numbers_are_accepted():
    rec = bench.measure_latency(
        tiny(),
        np.int64(8),
        batch=np.int64(1),
        threads=np.int64(1),
        warmup=torch.tensor(1),
        min_run_time=np.float32(0.01),
    )
    assert rec.input_shape == (3, 8, 8) and rec.threads == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_half_and_double_models_are_timed_in_their_dtype(dtype):
    model = tiny().to(dtype)
    rec = bench.measure_latency(model, 8, min_run_time=0.01, warmup=1)
    assert rec.dtype == str(dtype).removeprefix("torch.")
    result = bench.compare_latency({"a": model, "b": tiny()}, 8, rounds=2, min_run_time=0.01)
    assert result.records["a"].dtype == rec.dtype and result.records["b"].dtype == "float32"


def test_mixed_precision_model_is_a_clear_error():
    mixed = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1).half())
    with pytest.raises(TypeError, match=r"model mixes floating dtypes \['float16', 'float32'\]"):
        bench.measure_latency(mixed, 8, min_run_time=0.01)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"rounds": 0}, ValueError, "rounds must be an integer >= 1, got 0"),
        ({"rounds": 10**7}, SizeLimitError, "rounds must be an integer <= 10000"),
        (
            {"rounds": 5000, "min_run_time": 1.0},
            SizeLimitError,
            r"rounds=5000 x 2 models x min_run_time=1 s would time for 10,000 s",
        ),
        ({"min_run_time": float("nan")}, ValueError, "min_run_time"),
        ({"threads": 10**4}, SizeLimitError, "threads"),
        ({"input_size": {"a": 8}}, ValueError, r"input_size has no entry for \['b'\]"),
        ({"channels_last": {"b": True}}, ValueError, r"channels_last has no entry for \['a'\]"),
    ],
)
def test_compare_latency_rejects_before_timing(monkeypatch, kwargs, exc, msg):
    _no_allocation(monkeypatch)
    args = {"input_size": 8, "rounds": 2, "min_run_time": 0.01} | kwargs
    with pytest.raises(exc, match=msg):
        bench.compare_latency({"a": tiny(), "b": tiny()}, **args)


def test_compare_latency_names_the_bad_model_and_label():
    with pytest.raises(TypeError, match=r"models\['b'\] must be a torch.nn.Module, got .*str"):
        bench.compare_latency({"a": tiny(), "b": "resnet"}, 8, rounds=1, min_run_time=0.01)
    with pytest.raises(TypeError, match="labels must be strings, got 3"):
        bench.compare_latency({3: tiny()}, 8, rounds=1, min_run_time=0.01)


def _comparison() -> bench.Comparison:
    rounds = {"a": (1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0), "b": (2.0,) * 7}
    records = {
        k: bench._record(k, torch.device("cpu"), 1, 1, (3, 8, 8), list(v))
        for k, v in rounds.items()
    }
    return bench.Comparison(records=records, rounds=rounds)


def test_comparison_arguments_are_checked():
    result = _comparison()
    assert result.ratio_ci("a", "b", np.float64(0.9))[1] == pytest.approx(0.5)
    for bad in (float("nan"), 0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="confidence must be a finite number in"):
            result.ratio_ci("a", "b", bad)
    with pytest.raises(ValueError, match="tolerance must be a finite number in"):
        result.verdict("a", "b", tolerance=float("nan"))
    with pytest.raises(ValueError, match=r"unknown label 'c'; measured: \['a', 'b'\]"):
        result.speedup("c", "a")
    with pytest.raises(ValueError, match="unknown label"):
        result.ratios("a", ["b"])


def test_median_ci_rejects_non_finite_values_and_names_the_index():
    with pytest.raises(ValueError, match=r"values\[2\] must be a finite number, got nan"):
        bench.median_ci([1.0, 2.0, float("nan")])
    with pytest.raises(TypeError, match=r"values\[0\] must be a finite number"):
        bench.median_ci(["1"])
    with pytest.raises(ValueError, match="values is empty"):
        bench.median_ci([])
    with pytest.raises(TypeError, match="values must be a sequence of numbers"):
        bench.median_ci(3.0)
    assert bench.median_ci(np.array([1.0, 2.0, 3.0]))[1] == 2.0
