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
        ({"model": "mobilenet_v2"}, TypeError, r"model must be a torch.nn.Module, got .*str"),
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
    assert result.ratios("a", "a") == [1.0, 1.0, 1.0]
    assert not hasattr(result, "ratio_spread")  # one spread statistic: ratio_ci (issue 16)
    with pytest.raises(ValueError, match="unknown label 'c'"):
        result.ratio("c", "a")
    text = bench.format_records(result.records)
    assert "median ms" in text and "3x16x16" in text


def test_compare_latency_needs_a_mapping():
    with pytest.raises(TypeError, match="non-empty mapping"):
        bench.compare_latency([tiny()])


class _Touching(nn.Module):
    """A model whose every call adds 7 to a fake page-fault counter."""

    def __init__(self, counter: list[int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.counter = counter

    def forward(self, x):
        self.counter[0] += 7
        return self.conv(x)


def test_faults_per_call_divides_the_faults_by_the_timed_calls_only(monkeypatch):
    counter = [1000]  # warm-up calls add to it too: the count starts after them
    monkeypatch.setattr(bench, "minor_faults", lambda: counter[0])
    rec = bench.measure_latency(_Touching(counter), 8, warmup=3, min_run_time=0.01)
    assert rec.faults_per_call == 7.0
    run = bench.compare_latency(
        {"a": _Touching(counter), "b": tiny()}, 8, rounds=3, min_run_time=0.01, warmup=2
    )
    assert run.faults["a"] == (7.0, 7.0, 7.0) and run.records["a"].faults_per_call == 7.0
    assert run.faults["b"] == (0.0, 0.0, 0.0)
    assert "7 faults/call" in run.ranking() and "0 faults/call" in run.ranking()


def test_faults_are_none_where_they_cannot_be_counted(monkeypatch):
    monkeypatch.setattr(bench, "minor_faults", lambda: None)
    rec = bench.measure_latency(tiny(), 8, min_run_time=0.01)
    assert rec.faults_per_call is None
    run = bench.compare_latency({"a": tiny()}, 8, rounds=2, min_run_time=0.01)
    assert run.faults == {} and run.records["a"].faults_per_call is None
    line = bench.format_records([rec]).splitlines()[2]
    assert line.split()[-1] == "-"


def test_real_fault_counter_is_monotonic():
    first = bench.minor_faults()
    if first is None:
        pytest.skip("no resource module on this platform")
    _ = bytearray(8 * 2**20)  # touching fresh pages faults them in
    assert bench.minor_faults() >= first


def _fake_start(monkeypatch, env: dict, *, system="Linux", loaded=None):
    monkeypatch.setattr(bench, "_start_environment", lambda: (env, "/proc/self/environ"))
    monkeypatch.setattr(bench, "_loaded_allocator", lambda: loaded)
    monkeypatch.setattr(bench.platform, "system", lambda: system)
    for key in bench.GLIBC_VARIABLES + bench.PRELOAD_VARIABLES:
        if key in env:
            monkeypatch.setenv(key, env[key])
        else:
            monkeypatch.delenv(key, raising=False)


@pytest.mark.skipif(not bench.platform.libc_ver()[0] == "glibc", reason="a glibc machine")
def test_allocator_settings_on_glibc(monkeypatch):
    _fake_start(monkeypatch, {"PATH": "/bin"})
    s = bench.allocator_settings()
    assert s["libc"].startswith("glibc") and s["allocator"].endswith(
        "defaults (dynamic trim and mmap thresholds)"
    )
    assert "not controlled" not in s and "MALLOC_TRIM_THRESHOLD_" not in s
    env = {"MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_MMAP_THRESHOLD_": "33554432"}
    _fake_start(monkeypatch, env)
    s = bench.allocator_settings()
    assert s["allocator"].endswith("configured (trim and mmap thresholds fixed)")
    assert s["MALLOC_TRIM_THRESHOLD_"] == "1073741824" and s["MALLOC_MMAP_THRESHOLD_"] == "33554432"
    assert bench.allocator_summary(s).startswith("allocator: glibc")
    assert "MALLOC_MMAP_THRESHOLD_=33554432" in bench.allocator_summary(s)
    _fake_start(monkeypatch, {"MALLOC_TRIM_THRESHOLD_": "1"})
    assert bench.allocator_settings()["allocator"].endswith("partly configured")
    _fake_start(
        monkeypatch,
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=9:glibc.malloc.mmap_threshold=9"},
    )
    assert bench.allocator_settings()["allocator"].endswith(
        ", configured (trim and mmap thresholds fixed)"
    )


def test_allocator_settings_names_a_preloaded_allocator(monkeypatch):
    lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    _fake_start(monkeypatch, {"LD_PRELOAD": lib}, loaded=lib)
    s = bench.allocator_settings()
    assert s["allocator"] == "jemalloc (preloaded)" and s["preloaded"] == lib
    assert s["LD_PRELOAD"] == lib


def test_allocator_settings_flags_variables_set_after_start(monkeypatch):
    _fake_start(monkeypatch, {})
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    s = bench.allocator_settings()
    assert "MALLOC_ARENA_MAX" in s["set after start"] and "no effect" in s["set after start"]
    assert "MALLOC_ARENA_MAX" not in s  # not in force


@pytest.mark.parametrize(("system", "phrase"), [("Darwin", "macOS"), ("Windows", "Windows")])
def test_allocator_settings_say_what_is_not_controlled(monkeypatch, system, phrase):
    _fake_start(monkeypatch, {}, system=system)
    s = bench.allocator_settings()
    assert s["not controlled"].startswith(phrase)
    assert "not controlled=" + phrase in bench.allocator_summary(s)


def test_records_and_tables_carry_the_allocator_settings(monkeypatch):
    _fake_start(monkeypatch, {"MALLOC_ARENA_MAX": "3"})
    rec = bench.measure_latency(tiny(), 8, min_run_time=0.01)
    assert rec.allocator["MALLOC_ARENA_MAX"] == "3"
    assert rec.as_dict()["allocator"]["MALLOC_ARENA_MAX"] == "3"
    text = bench.format_records({"x": rec})
    assert "faults/call" in text.splitlines()[0]
    assert text.splitlines()[-1].startswith("allocator: ") and "MALLOC_ARENA_MAX=3" in text
    run = bench.compare_latency({"a": tiny(), "b": tiny()}, 8, rounds=2, min_run_time=0.01)
    assert run.allocator["MALLOC_ARENA_MAX"] == "3"
    assert run.ranking().splitlines()[-1].strip().startswith("allocator: ")
