"""The latency harness: what it records, device and sync logic, interleaving, errors.

No test asserts a speed: timings are measured by benchmarks/, not by tests.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import effnb
from effnb import bench


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())


def test_measure_latency_records_what_was_measured():
    rec = bench.measure_latency(
        tiny(), (3, 16, 16), batch=2, threads=1, warmup=1, min_run_time=0.02, label="tiny"
    )
    assert (rec.label, rec.device, rec.threads, rec.batch, rec.input_shape) == (
        "tiny",
        "cpu",
        1,
        2,
        (3, 16, 16),
    )
    assert rec.median_ms > 0 and rec.iqr_ms >= 0 and rec.min_ms <= rec.median_ms
    assert len(rec.times_ms) >= bench.MIN_SAMPLES and rec.torch_version == torch.__version__
    assert "median_ms" in rec.as_dict() and "times_ms" not in rec.as_dict()


def test_measure_latency_leaves_model_in_eval_and_uses_input_shapes():
    model = effnb.create_model("mobilenet_v3_small", num_classes=10)
    rec = bench.measure_latency(model, 32, min_run_time=0.01, warmup=0)
    assert rec.input_shape == (3, 32, 32) and not model.training
    assert bench.measure_latency(tiny(), (16, 16), min_run_time=0.01).input_shape == (3, 16, 16)


def test_too_small_input_fails_before_timing():
    with pytest.raises(ValueError, match="H, W >= 32"):
        bench.measure_latency(effnb.create_model("mobilenet_v2"), 16)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"model": "mobilenet_v2"}, TypeError, "model must be a torch.nn.Module, got str"),
        ({"batch": 0}, ValueError, "batch must be an integer >= 1, got 0"),
        ({"input_size": (3, -1, 8)}, ValueError, "input_size must be positive ints"),
        ({"device": "tpu"}, ValueError, "device must be 'cpu', 'cuda'"),
        ({"threads": 0}, ValueError, "threads must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, exc, msg):
    args = {"model": tiny(), "input_size": 16, "min_run_time": 0.01} | kwargs
    with pytest.raises(exc, match=msg):
        bench.measure_latency(args.pop("model"), **args)


def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.resolve_device("auto") == torch.device("cpu")
    assert bench.available_devices() == ["cpu"]
    with pytest.raises(ValueError, match="CUDA is not available"):
        bench.resolve_device("cuda")


def test_resolve_device_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert bench.resolve_device("auto") == torch.device("cuda")
    assert bench.resolve_device("cuda:1") == torch.device("cuda:1")
    assert bench.available_devices() == ["cpu", "cuda"]


def test_cuda_sync_is_called_after_each_step(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    bench.sync_fn(torch.device("cuda:0"))()
    assert calls == [torch.device("cuda:0")]
    bench.sync_fn(torch.device("cpu"))()
    assert calls == [torch.device("cuda:0")]


def test_compare_latency_interleaves_rounds_and_reports_ratios():
    result = bench.compare_latency(
        {"a": tiny(), "b": tiny()},
        {"a": (3, 8, 8), "b": (3, 16, 16)},
        rounds=3,
        min_run_time=0.01,
        warmup=1,
    )
    assert list(result.records) == ["a", "b"]
    assert all(len(v) == 3 for v in result.rounds.values())
    assert result.records["b"].input_shape == (3, 16, 16)
    assert result.ratio("a", "a") == 1.0
    ratios = [a / b for a, b in zip(result.rounds["a"], result.rounds["b"], strict=True)]
    assert result.ratio("a", "b") == sorted(ratios)[1]
    assert result.ratio_spread("a", "a") == 0.0 and result.ratio_spread("a", "b") >= 0.0
    with pytest.raises(ValueError, match="unknown label 'c'"):
        result.ratio("c", "a")
    text = bench.format_records(result.records)
    assert "median ms" in text and "3x16x16" in text


def test_compare_latency_needs_a_mapping():
    with pytest.raises(TypeError, match="non-empty mapping"):
        bench.compare_latency([tiny()])
