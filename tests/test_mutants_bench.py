"""Tests that kill the mutants of effnb/bench.py that the other tests let live (issue 16;
scripts/mutants.py runs mutmut against these).

No test here times anything: ``torch.utils.benchmark.Timer`` is replaced by a scripted fake
whose times are given by the test, and the page-fault counter by a counter the model bumps, so
every record, ratio, interval and sentence can be asserted exactly."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from effnb import bench
from effnb._checks import SizeLimitError


def raises(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


ALLOC = "glibc 2.99 malloc, defaults (dynamic trim and mmap thresholds)"


@pytest.fixture
def fixed_allocator(monkeypatch):
    """Records carry these settings, whatever the machine."""
    settings = {"platform": "Linux x86_64", "libc": "glibc 2.99", "allocator": ALLOC}
    monkeypatch.setattr(bench, "allocator_settings", lambda: dict(settings))
    return settings


class Counting(nn.Module):
    """Adds ``faults`` to a shared fake page-fault counter at every forward, and counts calls."""

    def __init__(self, counter: list[int], faults: int, in_chans: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 2, 1)
        self.counter, self.faults, self.calls = counter, faults, 0
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.counter[0] += self.faults
        self.calls += 1
        self.inputs.append(x)
        return self.conv(x)


class _Stats:
    def __init__(self, times=(), median=None):
        self.times = list(times)
        self.median = median


class FakeTimer:
    """Stands in for ``torch.utils.benchmark.Timer``: each ``blocked_autorange`` calls the step
    ``calls_per_block`` times and returns the next scripted seconds; ``timeit(number=1)`` calls
    it once."""

    blocks: list = []  # what each blocked_autorange returns: a list of times or a median
    singles: list[float] = []
    made: list[FakeTimer] = []
    calls_per_block = 4
    counter = 0  # the k-th block of compare_latency has median k/8 s (blocks empty)

    def __init__(self, stmt, globals, num_threads):
        assert stmt == "step()"
        self.step, self.num_threads = globals["step"], num_threads
        self.run_times: list[float] = []
        FakeTimer.made.append(self)

    def blocked_autorange(self, min_run_time):
        self.run_times.append(min_run_time)
        for _ in range(FakeTimer.calls_per_block):
            self.step()
        if FakeTimer.blocks:
            return _Stats(times=FakeTimer.blocks.pop(0))
        FakeTimer.counter += 1
        return _Stats(median=FakeTimer.counter * 0.125)  # exact in binary

    def timeit(self, number):
        assert number == 1
        self.step()
        return _Stats(median=FakeTimer.singles.pop(0))


@pytest.fixture
def fake_timer(monkeypatch, fixed_allocator):
    FakeTimer.blocks, FakeTimer.singles, FakeTimer.made = [], [], []
    FakeTimer.calls_per_block, FakeTimer.counter = 4, 0
    monkeypatch.setattr(bench.benchmark, "Timer", FakeTimer)
    counter = [1000]
    monkeypatch.setattr(bench, "minor_faults", lambda: counter[0])
    return counter


# --- records and their statistics ------------------------------------------------------------


def test_record_statistics_from_unsorted_times(fixed_allocator):
    rec = bench._record("m", torch.device("cpu"), 3, 2, [3, 8, 9], [5.0, 1.0, 3.0, 2.0, 10.0])
    # sorted 1 2 3 5 10: median 3; quartiles (exclusive method) 1.5 and 7.5
    assert rec.median_ms == 3.0 and rec.iqr_ms == 6.0 and rec.min_ms == 1.0
    assert rec.times_ms == (5.0, 1.0, 3.0, 2.0, 10.0)  # in measurement order
    assert (rec.label, rec.device, rec.threads, rec.batch) == ("m", "cpu", 3, 2)
    assert rec.input_shape == (3, 8, 9) and isinstance(rec.input_shape, tuple)
    assert rec.dtype == "float32" and rec.faults_per_call is None
    assert rec.allocator == fixed_allocator
    assert rec.spread_pct == 200.0  # 100 * 6 / 3
    one = bench._record("m", torch.device("cpu"), 1, 1, (3, 8, 8), [4.0], torch.float16, 2.5)
    assert (one.median_ms, one.iqr_ms, one.min_ms) == (4.0, 0.0, 4.0)
    assert one.dtype == "float16" and one.faults_per_call == 2.5
    two = bench._record("m", torch.device("cpu"), 1, 1, (3, 8, 8), [3.0, 1.0])
    assert two.iqr_ms == 3.0  # quartiles 0.5 and 3.5 of (1, 3)


def test_spread_pct_and_as_dict():
    rec = bench.LatencyRecord("m", "cpu", 1, 1, (3, 4, 4), 8.0, 2.0, 7.0, (8.0,))
    assert rec.spread_pct == 25.0
    zero = bench.LatencyRecord("m", "cpu", 1, 1, (3, 4, 4), 0.0, 2.0, 0.0, (0.0,))
    assert math.isnan(zero.spread_pct)
    assert list(rec.as_dict()) == [
        "label",
        "device",
        "threads",
        "batch",
        "input_shape",
        "median_ms",
        "iqr_ms",
        "min_ms",
        "torch_version",
        "dtype",
        "faults_per_call",
        "allocator",
    ]


def test_faults_per_call():
    assert bench._faults_per_call(10, 25, 5) == 3.0
    assert bench._faults_per_call(10, 25, 0) is None
    assert bench._faults_per_call(10, 25, -1) is None
    assert bench._faults_per_call(None, 25, 5) is None
    assert bench._faults_per_call(10, None, 5) is None


# --- median_ci --------------------------------------------------------------------------------


def _sign_test_ci(values, confidence):
    """An independent sign-test interval: the largest k with P(k <= rank-order <= n+1-k)."""
    x, n = sorted(values), len(values)
    best = None
    for k in range(1, n // 2 + 1):
        coverage = sum(math.comb(n, i) for i in range(k, n - k + 1)) / 2**n
        if coverage >= confidence:
            best = k
    return (x[best - 1], x[n - best]) if best else (math.nan, math.nan)


@pytest.mark.parametrize("n", [6, 7, 9, 10, 17, 30])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_median_ci_matches_an_independent_sign_test(n, confidence):
    values = [((7 * i) % n) ** 1.5 + 0.1 * i for i in range(n)]  # unsorted, distinct
    lo, med, hi = bench.median_ci(values, confidence)
    want = _sign_test_ci(values, confidence)
    assert (
        med == sorted(values)[n // 2]
        if n % 2
        else med == pytest.approx((sorted(values)[n // 2 - 1] + sorted(values)[n // 2]) / 2)
    )
    if math.isnan(want[0]):
        assert math.isnan(lo) and math.isnan(hi)
    else:
        assert (lo, hi) == want


def test_median_ci_exact_values_and_coverage_boundary():
    values = [5, 1, 4, 2, 3, 9, 7, 8, 6, 10]
    assert bench.median_ci(values) == (2.0, 5.5, 9.0)
    assert bench.median_ci(values, 0.99) == (1.0, 5.5, 10.0)
    assert bench.median_ci(values, 0.5) == (4.0, 5.5, 7.0)
    six = [6.0, 2.0, 4.0, 1.0, 5.0, 3.0]
    assert bench.median_ci(six, 1 - 2 / 64) == (1.0, 3.5, 6.0)  # coverage exactly 62/64
    lo, med, hi = bench.median_ci(six, 1 - 2 / 64 + 1e-9)
    assert math.isnan(lo) and med == 3.5 and math.isnan(hi)
    lo, med, hi = bench.median_ci([2.0])
    assert math.isnan(lo) and med == 2.0 and math.isnan(hi)


def test_median_ci_messages():
    with raises(
        ValueError,
        "confidence must be a finite number in (0.0, 1.0), got 0",
    ):
        bench.median_ci([1.0, 2.0], 0)
    with raises(TypeError, "values must be a sequence of numbers, got str"):
        bench.median_ci("12")
    with raises(TypeError, "values must be a sequence of numbers, got bytes"):
        bench.median_ci(b"12")
    with raises(ValueError, "median_ci needs at least one value; values is empty"):
        bench.median_ci(())
    assert bench.median_ci(iter([3.0, 1.0, 2.0]))[1] == 2.0  # any iterable


# --- Comparison -------------------------------------------------------------------------------

ROUNDS = {
    "fast": (1.0, 1.1, 0.9, 1.2, 1.05, 0.95, 1.0),
    "slow": (2.0, 2.5, 2.2, 2.1, 2.4, 2.3, 2.6),
    "mid": (1.1, 1.3, 0.9, 1.4, 1.2, 1.0, 1.1),
}


def _comparison(threads: int = 2) -> bench.Comparison:
    records = {
        k: bench._record(
            k,
            torch.device("cpu"),
            threads,
            1,
            [3, 8, 8],
            list(v),
            torch.float64,
            1234.4 if k == "fast" else None,
        )
        for k, v in ROUNDS.items()
    }
    return bench.Comparison(records=records, rounds=ROUNDS)


def test_comparison_ratios_speedup_and_allocator(fixed_allocator):
    c = _comparison()
    assert c.ratios("fast", "slow") == [
        a / b for a, b in zip(ROUNDS["fast"], ROUNDS["slow"], strict=True)
    ]
    ratios = sorted(a / b for a, b in zip(ROUNDS["fast"], ROUNDS["slow"], strict=True))
    assert c.ratio("fast", "slow") == ratios[3]
    assert (
        c.speedup("fast", "slow")
        == sorted(b / a for a, b in zip(ROUNDS["fast"], ROUNDS["slow"], strict=True))[3]
    )
    assert c.ratio_ci("fast", "slow") == (ratios[0], ratios[3], ratios[6])
    assert c.allocator == fixed_allocator
    assert c.allocator is not c.records["fast"].allocator
    assert bench.Comparison(records={}, rounds={}).allocator == {}
    with raises(ValueError, "unknown label 'nope'; measured: ['fast', 'slow', 'mid']"):
        c.ratios("fast", "nope")
    with raises(ValueError, "unknown label 'nope'; measured: ['fast', 'slow', 'mid']"):
        c.speedup("fast", "nope")


def test_verdicts_are_exact_sentences(fixed_allocator):
    c = _comparison()
    assert c.verdict("fast", "slow") == (
        "fast / slow time ratio 0.44 (95% CI 0.38-0.57; cpu, 2 threads, 7 rounds): "
        "fast is faster, 2.29x (resolved)"
    )
    assert c.verdict("slow", "fast") == (
        "slow / fast time ratio 2.29 (95% CI 1.75-2.60; cpu, 2 threads, 7 rounds): "
        "slow is slower, 2.29x the time (resolved)"
    )
    assert c.verdict("fast", "mid") == (
        "fast / mid time ratio 0.91 (95% CI 0.85-1.00; cpu, 2 threads, 7 rounds): "
        "not resolved, this run cannot tell them apart"
    )
    one = _comparison(threads=1)
    assert one.verdict("fast", "slow", 0.5).startswith(
        "fast / slow time ratio 0.44 (50% CI 0.41-0.44; cpu, 1 thread, 7 rounds)"
    )
    few = bench.Comparison(
        records={k: one.records[k] for k in ("fast", "slow")},
        rounds={k: ROUNDS[k][:3] for k in ("fast", "slow")},
    )
    assert few.verdict("fast", "slow") == (
        "fast / slow time ratio 0.44 (too few rounds for a CI; cpu, 1 thread, 3 rounds): "
        "not resolved, this run cannot tell them apart"
    )
    assert few.verdict("slow", "fast").endswith("not resolved, this run cannot tell them apart")


def test_verdict_tolerance_bounds():
    c = _comparison()
    _, _, hi = c.ratio_ci("fast", "slow")  # 0.5652...
    lo, _, _ = c.ratio_ci("slow", "fast")  # 1.75
    assert c.verdict("fast", "slow", tolerance=1 - hi - 1e-9).endswith("(resolved)")
    assert c.verdict("fast", "slow", tolerance=1 - hi + 1e-9).endswith("tell them apart")
    assert c.verdict("slow", "fast", tolerance=lo - 1 - 1e-9).endswith("(resolved)")
    assert c.verdict("slow", "fast", tolerance=lo - 1 + 1e-9).endswith("tell them apart")
    assert c.verdict("fast", "slow", tolerance=0.0).endswith("(resolved)")
    # a CI inside [1 - tolerance, 1 + tolerance] (edges included): equal within it, resolved
    m_lo, _, m_hi = c.ratio_ci("fast", "mid")  # 0.85-1.00: neither side of 1 resolved
    assert m_lo < 1 <= m_hi < 2 - m_lo
    assert c.verdict("fast", "mid", tolerance=1 - m_lo) == (
        "fast / mid time ratio 0.91 (95% CI 0.85-1.00; cpu, 2 threads, 7 rounds): "
        f"equal within {1 - m_lo:.0%} (resolved)"
    )
    assert c.verdict("fast", "mid", tolerance=1 - m_lo - 1e-9).endswith("tell them apart")
    assert c.verdict("mid", "fast", tolerance=1 / m_lo - 1).endswith("(resolved)")
    assert c.verdict("mid", "fast", tolerance=1 / m_lo - 1 - 1e-9).endswith("tell them apart")
    # exact binary fractions: the edge 1 + tolerance is hit exactly, and counts as inside
    edge = bench.Comparison(
        records={k: c.records[k] for k in ("fast", "slow")},
        rounds={"fast": [0.75, 1.0, 1.0, 1.0, 1.0, 1.25, 1.25], "slow": [1.0] * 7},
    )
    assert edge.ratio_ci("fast", "slow") == (0.75, 1.0, 1.25)
    assert edge.verdict("fast", "slow", tolerance=0.25).endswith("equal within 25% (resolved)")
    assert edge.verdict("fast", "slow", tolerance=0.125).endswith("tell them apart")
    # identical times: a CI of exactly 1-1 is no evidence of equality without a tolerance
    same = bench.Comparison(
        records={k: c.records[k] for k in ("fast", "slow")},
        rounds={"fast": [1.0] * 7, "slow": [1.0] * 7},
    )
    assert same.verdict("fast", "slow").endswith("cannot tell them apart")
    with raises(ValueError, "tolerance must be a finite number in [0.0, 1.0), got 1"):
        c.verdict("fast", "slow", tolerance=1)
    with raises(ValueError, "tolerance must be a finite number in [0.0, 1.0), got -0.1"):
        c.verdict("fast", "slow", tolerance=-0.1)


def test_ranking_is_exact(fixed_allocator):
    c = _comparison()
    assert c.ranking() == "\n".join(
        [
            "fast (1 ms, 1,234 faults/call) < mid (1.1 ms) < slow (2.3 ms)  "
            "(median per-round times)",
            "  " + c.verdict("fast", "mid"),
            "  " + c.verdict("mid", "slow"),
            "  allocator: " + ALLOC,
        ]
    )
    assert c.ranking(0.5).splitlines()[1] == "  " + c.verdict("fast", "mid", 0.5)


# --- allocator settings -----------------------------------------------------------------------


def _start(monkeypatch, env, *, system="Linux", loaded=None, libc="glibc 2.99", now=None):
    monkeypatch.setattr(bench, "_start_environment", lambda: (env, "/proc/self/environ"))
    monkeypatch.setattr(bench, "_loaded_allocator", lambda: loaded)
    monkeypatch.setattr(bench.platform, "system", lambda: system)
    monkeypatch.setattr(bench.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(bench.platform, "libc_ver", lambda: ("glibc", "2.98"))
    monkeypatch.setattr(bench.os, "confstr", lambda name: libc)
    now = env if now is None else now
    for key in bench.GLIBC_VARIABLES + bench.PRELOAD_VARIABLES:
        if key in now:
            monkeypatch.setenv(key, now[key])
        else:
            monkeypatch.delenv(key, raising=False)


def test_allocator_settings_exact_on_glibc(monkeypatch):
    _start(monkeypatch, {"PATH": "/bin"})
    assert bench.allocator_settings() == {
        "platform": "Linux x86_64",
        "libc": "glibc 2.99",
        "allocator": "glibc 2.99 malloc, defaults (dynamic trim and mmap thresholds)",
    }
    env = {"MALLOC_MMAP_THRESHOLD_": "7", "LD_PRELOAD": "x.so", "MALLOC_ARENA_MAX": "2"}
    _start(monkeypatch, env)
    assert bench.allocator_settings() == {
        "platform": "Linux x86_64",
        "libc": "glibc 2.99",
        "allocator": "glibc 2.99 malloc, partly configured",
        "MALLOC_MMAP_THRESHOLD_": "7",
        "MALLOC_ARENA_MAX": "2",
        "LD_PRELOAD": "x.so",
    }
    _start(monkeypatch, {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=9"})
    assert bench.allocator_settings()["allocator"] == "glibc 2.99 malloc, partly configured"
    _start(monkeypatch, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=9"})
    assert bench.allocator_settings()["allocator"] == "glibc 2.99 malloc, partly configured"
    both = {"MALLOC_TRIM_THRESHOLD_": "1", "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=9"}
    _start(monkeypatch, both)
    assert bench.allocator_settings()["allocator"] == (
        "glibc 2.99 malloc, configured (trim and mmap thresholds fixed)"
    )


@pytest.mark.parametrize("name", ["jemalloc", "tcmalloc"])
def test_allocator_settings_preloaded(monkeypatch, name):
    lib = f"/opt/lib/lib{name}.so.2"
    _start(monkeypatch, {"LD_PRELOAD": lib, "MALLOC_CONF": "x"}, loaded=lib)
    assert bench.allocator_settings() == {
        "platform": "Linux x86_64",
        "libc": "glibc 2.99",
        "allocator": f"{name} (preloaded)",
        "preloaded": lib,
        "LD_PRELOAD": lib,
        "MALLOC_CONF": "x",
    }
    assert bench.allocator_summary(bench.allocator_settings()) == (
        f"allocator: {name} (preloaded); LD_PRELOAD={lib}; MALLOC_CONF=x"
    )
    # a preloaded allocator on a non-glibc system is controlled: no "not controlled" entry
    _start(monkeypatch, {}, loaded=lib, libc="")
    assert "not controlled" not in bench.allocator_settings()


def test_allocator_settings_late_variables(monkeypatch):
    _start(monkeypatch, {"MALLOC_TOP_PAD_": "1"}, now={"MALLOC_ARENA_MAX": "2", "LD_PRELOAD": "y"})
    s = bench.allocator_settings()
    assert s["set after start"] == (
        "LD_PRELOAD, MALLOC_ARENA_MAX, MALLOC_TOP_PAD_ differ in os.environ from the start-up "
        "environment: the allocator read them at start-up, so the new values have no effect"
    )
    assert s["MALLOC_TOP_PAD_"] == "1" and "MALLOC_ARENA_MAX" not in s
    # read from os.environ itself: nothing can differ
    monkeypatch.setattr(bench, "_start_environment", lambda: ({}, "os.environ"))
    assert "set after start" not in bench.allocator_settings()


def test_allocator_settings_on_other_systems(monkeypatch):
    _start(monkeypatch, {}, libc="")
    assert bench.allocator_settings() == {
        "platform": "Linux x86_64",
        "libc": "unknown (not glibc)",
        "allocator": "the system allocator",
        "not controlled": "unknown (not glibc): not glibc, so the MALLOC_*_ variables the "
        "course sets do nothing",
    }
    _start(monkeypatch, {}, libc="musl 1.2")
    assert bench.allocator_settings()["libc"] == "musl 1.2"

    def broken(name):
        raise ValueError(name)

    _start(monkeypatch, {})
    monkeypatch.setattr(bench.os, "confstr", broken)
    assert bench.allocator_settings()["libc"] == "glibc 2.98"  # from platform.libc_ver
    _start(monkeypatch, {}, system="Darwin")
    monkeypatch.setattr(bench.platform, "libc_ver", lambda: ("", ""))
    assert bench.allocator_settings() == {
        "platform": "Darwin x86_64",
        "libc": "the Darwin C library",
        "allocator": "the system allocator",
        "not controlled": "macOS: the system allocator (libmalloc) has no settings effnb sets; "
        "times here include whatever it does with freed memory",
    }
    _start(monkeypatch, {}, system="Windows")
    s = bench.allocator_settings()
    assert (
        s["libc"] == "glibc 2.98"
        and s["allocator"] == "glibc 2.98 malloc, defaults (dynamic trim and mmap thresholds)"
    )
    assert s["not controlled"] == (
        "Windows: the system heap has no settings effnb sets, and page faults are not "
        "counted (no resource module)"
    )


def test_allocator_summary():
    assert bench.allocator_summary({}) == "allocator: unknown"
    s = {"platform": "p", "libc": "l", "allocator": "A", "preloaded": "x", "B": "1", "C": "2"}
    assert bench.allocator_summary(s) == "allocator: A; B=1; C=2"
    assert bench.allocator_summary({"allocator": "A"}) == "allocator: A"


def test_allocator_summary_reads_the_process_settings(monkeypatch):
    monkeypatch.setattr(bench, "allocator_settings", lambda: {"allocator": "Z", "K": "v"})
    assert bench.allocator_summary() == "allocator: Z; K=v"


# --- devices ----------------------------------------------------------------------------------


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.resolve_device() == torch.device("cpu")
    assert bench.resolve_device(None) == torch.device("cpu")
    assert bench.resolve_device("auto") == torch.device("cpu")
    assert bench.available_devices() == ["cpu"]
    with raises(
        ValueError,
        "device='cuda:1' was requested but CUDA is not available here; use 'cpu' or 'auto'",
    ):
        bench.resolve_device("cuda:1")
    with raises(ValueError, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'meta'"):
        bench.resolve_device("meta")
    with raises(ValueError, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu'"):
        bench.resolve_device("gpu")
    with raises(ValueError, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 3.5"):
        bench.resolve_device(3.5)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert bench.resolve_device(None) == torch.device("cuda")
    assert bench.resolve_device("auto") == torch.device("cuda")
    assert bench.resolve_device("cuda:1") == torch.device("cuda:1")
    assert bench.available_devices() == ["cpu", "cuda"]


def test_sync_fn_on_cpu_returns_none(monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: pytest.fail("synced"))
    assert bench.sync_fn(torch.device("cpu"))() is None


# --- measure_latency and compare_latency with a scripted timer ---------------------------------


def test_measure_latency_with_a_scripted_timer(fake_timer, fixed_allocator):
    model = Counting(fake_timer, faults=7).train()
    FakeTimer.blocks = [[0.5, 0.125, 0.375]]  # 3 blocks < MIN_SAMPLES: 2 single calls more
    FakeTimer.singles = [0.25, 1.25]
    rec = bench.measure_latency(model, (3, 5, 6), batch=2, threads=1, warmup=4, min_run_time=0.25)
    assert rec.times_ms == (500.0, 125.0, 375.0, 250.0, 1250.0)
    # sorted 125 250 375 500 1250: quartiles (exclusive method) 187.5 and 875
    assert (rec.median_ms, rec.iqr_ms, rec.min_ms) == (375.0, 687.5, 125.0)
    assert rec.label == "Counting" and rec.input_shape == (3, 5, 6) and rec.batch == 2
    (timer,) = FakeTimer.made
    assert timer.num_threads == 1 and timer.run_times == [0.25]
    assert model.calls == 4 + 4 + 2  # warm-up, one block of 4 calls, 2 single calls
    assert rec.faults_per_call == 7.0  # the warm-up's faults are not counted
    assert not model.training and rec.allocator == fixed_allocator
    assert model.inputs[0].shape == (2, 3, 5, 6)
    assert not model.inputs[0].is_contiguous(memory_format=torch.channels_last)


def test_measure_latency_defaults(fake_timer, monkeypatch):
    monkeypatch.setattr(bench.torch, "get_num_threads", lambda: 2)
    model = Counting(fake_timer, faults=0)
    FakeTimer.blocks = [[0.001] * 6]
    rec = bench.measure_latency(model, 8, label="", channels_last=True)
    assert rec.label == "Counting" and rec.threads == 2 and FakeTimer.made[0].num_threads == 2
    assert FakeTimer.made[0].run_times == [0.5] and model.calls == 3 + 4
    assert rec.input_shape == (3, 8, 8) and rec.batch == 1 and len(rec.times_ms) == 6
    assert model.inputs[0].is_contiguous(memory_format=torch.channels_last)
    FakeTimer.blocks = [[0.001] * 5]
    assert bench.measure_latency(Counting(fake_timer, 0), 8, label="L", warmup=0).label == "L"
    with raises(TypeError, "label must be a string or None, got 3"):
        bench.measure_latency(model, 8, label=3)


def test_measure_latency_argument_messages(fake_timer):
    model = Counting(fake_timer, 0)
    with raises(ValueError, "warmup must be an integer <= 10000, got 10001"):
        bench.measure_latency(model, 8, warmup=10_001)
    FakeTimer.blocks = [[0.001] * 5]
    bench.measure_latency(model, 8, warmup=10_000)  # the largest allowed
    assert model.calls == 10_000 + 4
    with pytest.raises(ValueError, match="^min_run_time must be"):
        bench.measure_latency(model, 8, min_run_time=0)
    with pytest.raises(ValueError, match="^threads must be"):
        bench.measure_latency(model, 8, threads=0)
    with pytest.raises(ValueError, match="^batch must be"):
        bench.measure_latency(model, 8, batch=0)
    with pytest.raises(TypeError, match="^channels_last must be"):
        bench.measure_latency(model, 8, channels_last=1)
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module"):
        bench.measure_latency("model", 8)


def test_prepare_checks_the_input_before_timing_and_counts_calls(fake_timer):
    seen = []
    model = Counting(fake_timer, 0, in_chans=5)
    model.in_chans = 5
    model.check_input = lambda x: seen.append(tuple(x.shape))
    step, shape, calls = bench._prepare(model, 6, 2, torch.device("cpu"), False)
    assert shape == (5, 6, 6) and seen == [(2, 5, 6, 6)] and calls == [0]
    step()
    step()
    assert calls == [2] and model.calls == 2
    with torch.no_grad():
        assert torch.is_inference_mode_enabled() is False
    model.check_input = lambda x: (_ for _ in ()).throw(ValueError("bad input"))
    with raises(ValueError, "bad input"):
        bench._prepare(model, 6, 2, torch.device("cpu"), False)
    with pytest.raises(TypeError, match=r"^name must be a torch.nn.Module"):
        bench._prepare("x", 6, 1, torch.device("cpu"), False, "name")


def test_prepare_times_under_inference_mode(fake_timer):
    modes = []

    class Mode(nn.Module):
        def forward(self, x):
            modes.append(torch.is_inference_mode_enabled())
            return x

    step, _, _ = bench._prepare(Mode(), 4, 1, torch.device("cpu"), False)
    step()
    assert modes == [True]


def test_compare_latency_rotates_the_order_and_keeps_per_round_medians(fake_timer, fixed_allocator):
    counter = fake_timer
    models = {
        "a": Counting(counter, 7),
        "b": Counting(counter, 3),
        "c": Counting(counter, 0, in_chans=2),
    }
    models["c"].in_chans = 2
    run = bench.compare_latency(
        models,
        {"a": 8, "b": (3, 6, 4), "c": 5},
        rounds=3,
        threads=1,
        warmup=2,
        min_run_time=0.125,
        channels_last={"a": True, "b": False, "c": False},
    )
    # the k-th timed block has median 125 k ms; round r starts at label r % 3
    assert run.rounds == {
        "a": (125.0, 750.0, 1000.0),
        "b": (250.0, 500.0, 1125.0),
        "c": (375.0, 625.0, 875.0),
    }
    assert run.records["a"].times_ms == (125.0, 750.0, 1000.0)
    assert run.records["a"].median_ms == 750.0
    assert run.faults == {"a": (7.0, 7.0, 7.0), "b": (3.0, 3.0, 3.0), "c": (0.0, 0.0, 0.0)}
    assert run.records["b"].faults_per_call == 3.0
    assert [r.input_shape for r in run.records.values()] == [(3, 8, 8), (3, 6, 4), (2, 5, 5)]
    assert all(m.calls == 2 + 3 * 4 for m in models.values())
    assert all(t.num_threads == 1 and t.run_times == [0.125] for t in FakeTimer.made)
    assert len(FakeTimer.made) == 9
    assert models["a"].inputs[0].is_contiguous(memory_format=torch.channels_last)
    assert not models["b"].inputs[0].is_contiguous(memory_format=torch.channels_last)
    assert run.records["c"].label == "c" and run.records["c"].allocator == fixed_allocator
    assert run.records["a"].threads == 1 and run.records["a"].batch == 1


def test_compare_latency_defaults(fake_timer, monkeypatch):
    monkeypatch.setattr(bench.torch, "get_num_threads", lambda: 2)
    models = {"a": Counting(fake_timer, 1), "b": Counting(fake_timer, 1)}
    run = bench.compare_latency(models, 6, batch=3)
    assert all(len(v) == 10 for v in run.rounds.values())
    assert all(m.calls == 3 + 10 * 4 for m in models.values())
    assert all(t.num_threads == 2 and t.run_times == [0.2] for t in FakeTimer.made)
    assert run.records["a"].input_shape == (3, 6, 6) and run.records["a"].batch == 3
    assert models["a"].inputs[0].shape == (3, 3, 6, 6)
    assert not models["a"].inputs[0].is_contiguous(memory_format=torch.channels_last)
    assert run.records["a"].dtype == "float32"


def test_compare_latency_without_fault_counts(fake_timer, monkeypatch):
    monkeypatch.setattr(bench, "minor_faults", lambda: None)
    run = bench.compare_latency({"a": Counting(fake_timer, 1).double()}, 4, rounds=2)
    assert run.faults == {} and run.records["a"].faults_per_call is None
    assert run.records["a"].dtype == "float64"


def test_compare_latency_limits_and_messages(fake_timer):
    model = Counting(fake_timer, 0)
    with raises(
        SizeLimitError,
        "rounds=3601 x 2 models x min_run_time=0.5 s would time for 3,601 s, more than the "
        "3,600 s one comparison may take",
    ):
        bench.compare_latency({"a": model, "b": model}, 4, rounds=3601, min_run_time=0.5)
    FakeTimer.calls_per_block = 0
    run = bench.compare_latency({"a": model}, 4, rounds=7200, min_run_time=0.5, warmup=0)
    assert len(run.rounds["a"]) == 7200  # exactly the limit is allowed
    with raises(ValueError, "rounds must be an integer <= 10000, got 10001"):
        bench.compare_latency({"a": model}, 4, rounds=10_001, min_run_time=0.001)
    with raises(ValueError, "warmup must be an integer <= 10000, got 10001"):
        bench.compare_latency({"a": model}, 4, warmup=10_001)
    with pytest.raises(ValueError, match="^min_run_time must be"):
        bench.compare_latency({"a": model}, 4, min_run_time=0)
    with pytest.raises(ValueError, match="^threads must be"):
        bench.compare_latency({"a": model}, 4, threads=0)
    with raises(TypeError, "models must be a non-empty mapping of label -> nn.Module"):
        bench.compare_latency({})
    with raises(TypeError, "models' labels must be strings, got 1"):
        bench.compare_latency({"a": model, 1: model})
    with raises(ValueError, "input_size has no entry for ['b']; it has ['a']"):
        bench.compare_latency({"a": model, "b": model}, {"a": 4})
    with raises(ValueError, "channels_last has no entry for ['a']; it has ['b']"):
        bench.compare_latency({"a": model, "b": model}, 4, channels_last={"b": True})
    with pytest.raises(TypeError, match=r"^models\['a'\] must be a torch.nn.Module"):
        bench.compare_latency({"a": "x"}, 4)
    with pytest.raises(ValueError, match="^device must be"):
        bench.compare_latency({"a": model}, 4, device="tpu")


# --- format_records ---------------------------------------------------------------------------


def test_format_records_exact(fixed_allocator):
    c = _comparison()
    long = bench._record("a-much-longer-label-than-24", torch.device("cpu"), 1, 4, (3, 9, 7), [2.5])
    text = bench.format_records({**c.records, "x": long})
    head = f"{'model':27s} device  thr batch         input  median ms   IQR ms faults/call"
    assert text.splitlines() == [
        head,
        "-" * len(head),
        f"{'fast':27s} cpu       2     1         3x8x8       1.00     0.15       1,234",
        f"{'slow':27s} cpu       2     1         3x8x8       2.30     0.40           -",
        f"{'mid':27s} cpu       2     1         3x8x8       1.10     0.30           -",
        "a-much-longer-label-than-24 cpu       1     4         3x9x7       2.50     0.00           -",
        "allocator: " + ALLOC,
    ]
    bare = bench.LatencyRecord("m", "cpu", 1, 1, (3, 4, 4), 1.0, 0.0, 1.0, (1.0,))
    assert bench.format_records([bare]).splitlines()[2].startswith(f"{'m':24s} cpu")
    assert len(bench.format_records([bare]).splitlines()) == 3  # no allocator line
    other = bench.LatencyRecord(
        "n", "cpu", 1, 1, (3, 4, 4), 1.0, 0.0, 1.0, (1.0,), allocator={"allocator": "B"}
    )
    assert bench.format_records([c.records["fast"], other, c.records["mid"]]).splitlines()[-2:] == [
        "allocator: " + ALLOC,
        "allocator: B",
    ]


# --- survivors of the first mutation run ------------------------------------------------------


def test_faults_per_call_of_one_call():
    assert bench._faults_per_call(10, 17, 1) == 7.0


def test_prepare_checks_the_whole_batch_in_the_model_dtype(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", "700")
    model = nn.Conv2d(3, 2, 1).double()
    with raises(
        SizeLimitError,
        "input_size=4 would need 768 B for a batch of 2 inputs of shape (3, 4, 4), more than "
        "the limit of 700 B ($EFFNB_MAX_BYTES)",
    ):
        bench._prepare(model, 4, 2, torch.device("cpu"), False)


def test_prepare_checks_the_forward_pass_in_the_model_dtype(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", "80000")
    model = nn.Conv2d(3, 512, 1).double()  # input 480 B, one layer's output 80 KiB
    with raises(
        SizeLimitError,
        "input_size=(3, 4, 5) would need 80.5 KiB for one layer's input and output in a forward "
        "pass of (1, 3, 4, 5), more than the limit of 78.1 KiB ($EFFNB_MAX_BYTES)",
    ):
        bench._prepare(model, (3, 4, 5), 1, torch.device("cpu"), False)


class _Recording(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.to_args: list = []
        self.devices: list = []

    def to(self, *args, **kwargs):
        self.to_args.append(args)
        return super().to(*args, **kwargs)

    def forward(self, x):
        self.devices.append(x.device)
        return self.conv(x)


def test_prepare_moves_the_model_and_makes_the_input_on_the_device():
    model = _Recording()
    before = torch.get_default_device()
    torch.set_default_device("meta")  # an input made without device= would land here
    try:
        step, _, _ = bench._prepare(model, 4, 1, torch.device("cpu"), False)
    finally:
        torch.set_default_device(before)
    assert model.to_args == [(torch.device("cpu"),)]
    step()
    assert model.devices == [torch.device("cpu")]


def test_measure_and_compare_use_the_device_asked_for(fake_timer, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # "auto" would pick CUDA
    FakeTimer.blocks = [[0.125] * 5]
    rec = bench.measure_latency(Counting(fake_timer, 0).double(), 4, device="cpu")
    assert rec.device == "cpu" and rec.dtype == "float64"
    run = bench.compare_latency({"a": Counting(fake_timer, 0)}, 4, rounds=1, device="cpu")
    assert run.records["a"].device == "cpu"


def test_default_input_size_is_224(fake_timer):
    FakeTimer.blocks = [[0.125] * 5]
    assert bench.measure_latency(Counting(fake_timer, 0)).input_shape == (3, 224, 224)
    FakeTimer.calls_per_block = 0
    run = bench.compare_latency({"a": Counting(fake_timer, 0)}, rounds=1, warmup=0)
    assert run.records["a"].input_shape == (3, 224, 224)


def test_allocator_settings_asks_for_the_glibc_version(monkeypatch):
    _start(monkeypatch, {})

    def confstr(name):
        if name != "CS_GNU_LIBC_VERSION":
            raise ValueError(f"unrecognized configuration name {name!r}")
        return "glibc 2.99"

    monkeypatch.setattr(bench.os, "confstr", confstr)
    assert bench.allocator_settings()["libc"] == "glibc 2.99"


def test_median_ci_names_the_bad_value():
    with raises(ValueError, "values[1] must be a finite number, got inf"):
        bench.median_ci([1.0, math.inf])


def test_cuda_sync_synchronises_that_device(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    bench.sync_fn(torch.device("cuda:1"))()
    assert calls == [torch.device("cuda:1")]


def test_ranking_orders_by_median_not_by_label_and_shows_this_runs_allocator(monkeypatch):
    rounds = {"b-fast": (1.0,) * 3, "a-slow": (3.0,) * 3}
    records = {
        k: bench._record(k, torch.device("cpu"), 1, 1, (3, 4, 4), list(v))
        for k, v in rounds.items()
    }
    records = {
        k: bench.LatencyRecord(
            **{**r.as_dict(), "times_ms": r.times_ms, "allocator": {"allocator": "RUN"}}
        )
        for k, r in records.items()
    }
    monkeypatch.setattr(bench, "allocator_settings", lambda: {"allocator": "PROCESS"})
    c = bench.Comparison(records=records, rounds=rounds)
    lines = c.ranking().splitlines()
    assert lines[0].startswith("b-fast (1 ms) < a-slow (3 ms)")
    assert lines[-1] == "  allocator: RUN"


def test_ratios_refuse_rounds_of_different_lengths():
    c = bench.Comparison(records={}, rounds={"a": (1.0, 2.0), "b": (1.0,)})
    with pytest.raises(ValueError, match="zip"):
        c.ratios("a", "b")
    with pytest.raises(ValueError, match="zip"):
        c.speedup("a", "b")


def test_verdict_slower_needs_the_interval_above_one():
    rounds = {"a": (2.0,) * 6 + (1.0,), "b": (1.0,) * 7}  # ratios: six 2.0 and one 1.0
    c = bench.Comparison(
        records={
            k: bench._record(k, torch.device("cpu"), 1, 1, (3, 4, 4), list(v))
            for k, v in rounds.items()
        },
        rounds=rounds,
    )
    lo, _, _ = c.ratio_ci("a", "b")
    assert lo == 1.0
    assert c.verdict("a", "b").endswith("not resolved, this run cannot tell them apart")


def test_minor_faults_reads_getrusage(monkeypatch):
    if bench.resource is None:
        pytest.skip("no resource module on this platform")

    class Usage:
        ru_minflt = 4321

    fake = type("R", (), {"RUSAGE_SELF": 0, "getrusage": staticmethod(lambda who: Usage)})
    monkeypatch.setattr(bench, "resource", fake)
    assert bench.minor_faults() == 4321
    monkeypatch.setattr(bench, "resource", None)
    assert bench.minor_faults() is None
