"""effnb.allocator: environments, the exact test, argument checks before any process starts,
and one bounded run of real fresh processes (no timing is asserted)."""

from __future__ import annotations

import math
import platform
import subprocess

import pytest

from effnb import allocator
from effnb.allocator import (
    GLIBC_CONFIGURED,
    ProcessRecord,
    Study,
    environment,
    exact_mann_whitney,
    fresh_process_study,
)
from effnb.bench import GLIBC_VARIABLES

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_course_values_are_the_documented_ones():
    # 32 MiB is glibc's largest mmap threshold on 64-bit (4 * 1024 * 1024 * sizeof(long)).
    assert GLIBC_CONFIGURED == {
        "MALLOC_TRIM_THRESHOLD_": "1073741824",
        "MALLOC_MMAP_THRESHOLD_": "33554432",
    }


def test_default_environment_strips_the_allocator_settings(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "5")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    monkeypatch.setenv("LD_PRELOAD", "/x/libjemalloc.so.2 /y/libother.so")
    monkeypatch.setenv("MALLOC_CONF", "background_thread:true")
    env, why = environment("default")
    assert env is not None and "defaults" in why
    assert not any(k in env for k in GLIBC_VARIABLES) and "MALLOC_CONF" not in env
    assert env["LD_PRELOAD"] == "/y/libother.so" and env["HF_HUB_OFFLINE"] == "1"
    monkeypatch.setenv("LD_PRELOAD", "/x/libtcmalloc_minimal.so.4")
    env, _ = environment("default")
    assert env is not None and "LD_PRELOAD" not in env


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_environment_sets_both_thresholds(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "5")
    env, why = environment("glibc")
    assert env is not None
    assert env["MALLOC_TRIM_THRESHOLD_"] == "1073741824"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "33554432"
    assert "MALLOC_MMAP_THRESHOLD_=33554432" in why


def test_glibc_environment_is_skipped_off_glibc(monkeypatch):
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    env, why = environment("glibc")
    assert env is None and why.startswith("skipped: not glibc (Darwin)")


def test_missing_library_is_skipped_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(allocator, "_LIB_DIRS", (str(tmp_path),))
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    env, why = environment("jemalloc")
    assert env is None and "jemalloc is not installed here" in why and str(tmp_path) in why
    (tmp_path / "libjemalloc.so.2").write_bytes(b"")
    env, why = environment("jemalloc")
    assert env is not None and env["LD_PRELOAD"].split()[0] == str(tmp_path / "libjemalloc.so.2")
    assert why == f"jemalloc via LD_PRELOAD={tmp_path / 'libjemalloc.so.2'}"


def test_environment_names_are_checked():
    with pytest.raises(ValueError, match=r"env must be one of \['default', 'glibc'"):
        environment("mimalloc")
    with pytest.raises(ValueError, match="name must be one of"):
        allocator.find_library("ptmalloc")


@pytest.mark.parametrize(
    ("a", "b", "p"),
    [
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], 2 / 20),  # fully separated, 3 vs 3
        ([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], 2 / 20),  # symmetric
        ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], 2 / 70),  # 4 vs 4: the smallest p
        ([1.0, 3.0, 5.0], [2.0, 4.0, 6.0], 14 / 20),
        ([1.0, 8.0], [2.0, 3.0, 4.0], 1.0),
    ],
)
def test_exact_mann_whitney(a, b, p):
    assert exact_mann_whitney(a, b) == pytest.approx(p)


def test_exact_mann_whitney_needs_values():
    with pytest.raises(ValueError, match="both groups need values"):
        exact_mann_whitney([], [1.0])


def _record(env, process, label, ms, faults, rounds=(1.0,)):
    return ProcessRecord(env, process, label, label, ms, 0.1 * ms, faults, tuple(rounds))


def _study() -> Study:
    recs = []
    for i, (d, g) in enumerate([(17.0, 12.0), (25.0, 11.5), (18.0, 13.0), (20.0, 12.5)]):
        recs.append(_record("default", i, "net", d, 3000.0 + i, rounds=(d, d + 1, d - 1)))
        recs.append(_record("glibc", i, "net", g, 0.0, rounds=(g, g, g)))
        recs.append(_record("glibc", i, "ref", 2 * g, 0.0, rounds=(2 * g, 2 * g, g)))
    return Study(tuple(recs), {"jemalloc": "skipped: x"}, ("glibc process 9: boom",),
                 ("default", "glibc", "jemalloc"), ("net", "ref"), 2, (3, 224, 224))  # fmt: skip


def test_study_verdict_and_table_come_from_the_records():
    s = _study()
    assert s.medians("default", "net") == [17.0, 25.0, 18.0, 20.0]
    v = s.verdict("net", "glibc")
    assert "12.2 vs 19.0 ms, ratio 0.64" in v and "p = 0.029" in v
    assert v.endswith("glibc is faster, 1.55x (resolved)")
    table = s.table()
    assert "3,000-3,003" in table and "11.5 / 12.2 / 13.0" in table
    assert "jemalloc  skipped: x" in table and "failed: glibc process 9: boom" in table
    lo, med, hi = s.process_ratio_ci("glibc", 0, "ref", "net")
    assert med == 2.0 and math.isnan(lo) and math.isnan(hi)  # 3 rounds: too few for a CI
    with pytest.raises(ValueError, match="unknown env 'tcmalloc'"):
        s.medians("tcmalloc", "net")
    with pytest.raises(ValueError, match="unknown label 'resnet'"):
        s.verdict("resnet", "glibc")


def test_unresolved_study_says_so():
    recs = [_record("default", i, "n", ms, None) for i, ms in enumerate([1.0, 3.0, 5.0])]
    recs += [_record("glibc", i, "n", ms, None) for i, ms in enumerate([2.0, 4.0, 6.0])]
    s = Study(tuple(recs), {}, (), ("default", "glibc"), ("n",), 1, (3, 32, 32))
    assert s.verdict("n", "glibc").endswith("not resolved, these processes cannot tell them apart")
    assert "not counted" in s.table()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"processes": 0}, ValueError, "processes must be an integer >= 1, got 0"),
        ({"processes": 21}, ValueError, "processes must be an integer <= 20"),
        ({"envs": ["default", "mimalloc"]}, ValueError, r"envs must be one of \['default'"),
        ({"envs": ["glibc", "glibc"]}, ValueError, "lists an environment twice"),
        ({"envs": "glibc"}, TypeError, "envs must be a non-empty list"),
        ({"timeout": math.nan}, ValueError, "timeout must be a positive, finite number"),
        ({"timeout": 1e5}, ValueError, "timeout must be at most 600"),
        (
            {"models": ["resnet_9000"]},
            ValueError,
            r"models\['resnet_9000'\] = 'resnet_9000' is not",
        ),
        ({"models": {"a": "timm:"}}, ValueError, "names no model after the prefix"),
        ({"models": []}, ValueError, "models is empty"),
        ({"rounds": 0}, ValueError, "rounds must be an integer >= 1"),
        ({"min_run_time": 60.0}, ValueError, "min_run_time must be at most 10"),
        ({"threads": 0}, ValueError, "threads must be an integer >= 1"),
        ({"input_size": 0}, ValueError, "input_size must be an integer >= 1"),
        ({"same_weights": {"mobilenet_v2": "ref"}}, ValueError, "both must be labels"),
        (
            {"rounds": 1000, "min_run_time": 10.0, "processes": 20},
            ValueError,
            "would time for 400,000 s",
        ),
    ],
)
def test_study_arguments_are_checked_before_any_process_starts(monkeypatch, kwargs, error, match):
    def boom(*args, **kw):
        raise AssertionError("a process was started before the arguments were checked")

    monkeypatch.setattr(allocator.subprocess, "run", boom)
    args = {"models": ["mobilenet_v2"], "envs": ["default", "glibc"]} | kwargs
    with pytest.raises(error, match=match):
        fresh_process_study(**args)


def test_a_failed_or_slow_process_is_recorded_and_the_others_kept(monkeypatch):
    calls = []

    def fake_run(cmd, env, timeout, **kw):
        calls.append(env.get("MALLOC_TRIM_THRESHOLD_"))
        if len(calls) == 1:
            raise subprocess.TimeoutExpired(cmd, timeout)
        if len(calls) == 2:
            return subprocess.CompletedProcess(cmd, 1, "", "Traceback\nModuleNotFoundError: x\n")
        rec = {"median_ms": 2.0, "iqr_ms": 0.1, "faults_per_call": 5.0, "rounds_ms": [2.0]}
        out = allocator.RESULT_MARK + allocator.json.dumps(
            {"allocator": {"allocator": "fake"}, "summary": "", "records": {"mobilenet_v2": rec}}
        )
        return subprocess.CompletedProcess(cmd, 0, "noise\n" + out + "\n", "")

    monkeypatch.setattr(allocator.subprocess, "run", fake_run)
    envs = ["default", "glibc"] if GLIBC else ["default"]
    s = fresh_process_study(["mobilenet_v2"], envs, processes=2, timeout=7.0)
    assert s.failures[0] == f"{envs[0]} process 0: timed out after 7 s (killed)"
    assert "exit code 1: Traceback | ModuleNotFoundError: x" in s.failures[1]
    assert len(s.records) == 2 * len(envs) - 2
    assert all(r.faults_per_call == 5.0 and r.allocator == {"allocator": "fake"} for r in s.records)
    if GLIBC:  # interleaved: default, glibc, then glibc, default
        assert calls == [None, "1073741824", "1073741824", None]


@pytest.mark.slow
def test_real_fresh_processes_report_their_allocator():
    envs = ["default", "glibc"] if GLIBC else ["default"]
    s = fresh_process_study(
        {"small": "mobilenet_v3_small"},
        envs,
        processes=1,
        input_size=64,
        threads=1,
        rounds=2,
        min_run_time=0.01,
        warmup=1,
        timeout=180.0,
    )
    assert s.failures == ()
    by_env = {r.env: r for r in s.records}
    assert set(by_env) == set(envs)
    for r in by_env.values():
        assert r.median_ms > 0 and len(r.rounds_ms) == 2
        assert r.faults_per_call is None or r.faults_per_call >= 0
    if GLIBC:
        assert (
            by_env["default"]
            .allocator["allocator"]
            .endswith("defaults (dynamic trim and mmap thresholds)")
        )
        assert by_env["glibc"].allocator["MALLOC_MMAP_THRESHOLD_"] == "33554432"


def test_makefile_exports_the_course_values():
    """`make course`, `make run-notebooks` and `make test` start processes with the values the
    study calls configured (when the Makefile sets them at all, they must agree)."""
    import pathlib
    import re

    makefile = pathlib.Path(__file__).resolve().parent.parent / "Makefile"
    text = makefile.read_text() if makefile.is_file() else ""
    found = dict(re.findall(r"^export (MALLOC_\w+_)\s*[:?]?=\s*(\S+)", text, flags=re.M))
    if not found:
        pytest.skip("the Makefile does not set the allocator variables")
    assert found == GLIBC_CONFIGURED
