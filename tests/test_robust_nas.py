"""effnb.nas under hostile but fair use: arguments checked at entry (naming the argument),
rewards that refuse NaN and out-of-range numbers, a search that keeps its finished work when a
candidate fails (in this process and in real worker processes), and latency that is never
measured while evaluations are running (issue 12, item 3)."""

from __future__ import annotations

import math
import multiprocessing
import os
import pathlib
import re
import threading
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from effnb._checks import SizeLimitError, check_callable, check_finite_array, check_generator
from effnb.nas import (
    Architecture,
    Evaluation,
    Failure,
    LatencyPredictor,
    LatencyTable,
    SearchError,
    SearchSpace,
    SearchWarning,
    StageChoice,
    StageSkeleton,
    build_latency_table,
    measure_networks,
    mnasnet_reward,
    reward,
    search,
    spearman,
    validate,
)
from effnb.nas.latency import (
    SampleTimer,
    bootstrap_difference,
    measure_interleaved,
    repeatability,
    round_speed,
    within_share,
)
from effnb.nas.search import _check_evaluation

SPACE = SearchSpace()
TINY = SearchSpace(kernels=(3, 5), expansions=(1, 6), se_ratios=(0.0,), layers=(1, 2))
POOL_SECONDS = 240  # a bound on every test that starts worker processes


def _bounded(fn, seconds=POOL_SECONDS):
    """fn() in a daemon thread, with warnings recorded: (value, warnings); fail after ``seconds``."""
    box: dict = {}

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                box["error"] = exc
        box["warnings"] = caught

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not finish within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"], box["warnings"]


# --- the reward ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"accuracy": float("nan")}, ValueError, "accuracy"),
        ({"accuracy": 1.5}, ValueError, "accuracy"),
        ({"accuracy": -0.01}, ValueError, "accuracy"),
        ({"accuracy": "0.9"}, TypeError, "accuracy"),
        ({"accuracy": True}, TypeError, "accuracy"),
        ({"latency": float("inf")}, ValueError, "latency"),
        ({"latency": 0.0}, ValueError, "latency"),
        ({"latency": float("nan")}, ValueError, "latency"),
        ({"target": -2.0}, ValueError, "target"),
        ({"target": float("nan")}, ValueError, "target"),
        ({"alpha": 0.5}, ValueError, "alpha"),
        ({"alpha": float("nan")}, ValueError, "alpha"),
        ({"beta": -11.0}, ValueError, "beta"),
        ({"beta": None}, TypeError, "beta"),
    ],
)
def test_reward_rejects_bad_numbers_naming_the_argument(kwargs, error, name):
    args = {"accuracy": 0.9, "latency": 3.0, "target": 2.0, "alpha": -0.07, "beta": -0.5}
    with pytest.raises(error, match=re.escape(name)):
        reward(**{**args, **kwargs})


def test_reward_accepts_numpy_scalars_and_0d_tensors_with_the_same_value():
    expected = 0.9 * (3.0 / 2.0) ** -0.5
    assert reward(0.9, 3.0, 2.0, -0.07, -0.5) == pytest.approx(expected)
    got = reward(np.float32(0.9), torch.tensor(3.0), np.float64(2.0), -0.07, np.float64(-0.5))
    assert got == pytest.approx(expected, rel=1e-6) and isinstance(got, float)
    # the limits themselves are allowed: accuracy 0 and 1, an exponent of 0 and of -10
    assert reward(1.0, 4.0, 2.0, 0.0, -10.0) == pytest.approx(2.0**-10)
    assert reward(0.0, 1.0, 2.0) == 0.0


def test_reward_overflow_is_an_error_not_inf():
    with pytest.raises(ValueError, match="overflows"):
        reward(0.5, 1e-300, 1e300, alpha=-10.0)


@pytest.mark.parametrize(
    "constraint, error, name",
    [
        ("medium", ValueError, "constraint"),
        ((-0.07,), ValueError, "constraint"),
        ((0.0, -1.0, 2.0), ValueError, "constraint"),
        ((0.0, float("nan")), ValueError, "constraint[1] (beta)"),
        ((0.3, -1.0), ValueError, "constraint[0] (alpha)"),
        (("a", -1.0), TypeError, "constraint[0] (alpha)"),
        (5, TypeError, "constraint"),
        (None, TypeError, "constraint"),
    ],
)
def test_constraint_is_checked(constraint, error, name):
    with pytest.raises(error, match=re.escape(name)):
        mnasnet_reward(0.9, 3.0, 2.0, constraint)
    with pytest.raises(error, match=re.escape(name)):
        search(SPACE, lambda a: 0.5, lambda a: 1.0, 1.0, constraint=constraint, budget=1)


def test_constraint_pairs_as_lists_and_arrays():
    want = reward(0.9, 3.0, 2.0, -0.2, -0.7)
    assert mnasnet_reward(0.9, 3.0, 2.0, [-0.2, -0.7]) == pytest.approx(want)
    assert mnasnet_reward(0.9, 3.0, 2.0, np.array([-0.2, -0.7])) == pytest.approx(want)
    assert mnasnet_reward(0.9, 3.0, 2.0, "hard") == pytest.approx(0.9 * 2 / 3)


# --- search arguments and evaluator results --------------------------------------------------


def _acc(arch):
    """A deterministic accuracy in [0, 1) that prefers larger kernels and more layers."""
    score = sum(s.kernel / 7 + s.layers / 3 + s.expansion / 6 for s in arch.stages)
    return Evaluation(accuracy=0.9 * score / (3 * len(arch.stages)), params=7, macs=11)


def _lat(arch):
    return float(sum(s.layers * s.expansion * s.kernel for s in arch.stages))


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"target": float("nan")}, ValueError, "target"),
        ({"target": "1"}, TypeError, "target"),
        ({"budget": 10**9}, SizeLimitError, "budget"),
        ({"budget": 2.5}, TypeError, "budget"),
        ({"seed": -1}, ValueError, "seed"),
        ({"parallel": 0}, ValueError, "parallel"),
        ({"max_failures": -1}, ValueError, "max_failures"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"strategy": "rl"}, ValueError, "strategy"),
        ({"evaluator": "train"}, TypeError, "evaluator"),
        ({"latency_fn": 3.0}, TypeError, "latency_fn"),
        ({"executor": object()}, TypeError, "executor"),
        ({"space": "space"}, TypeError, "space"),
    ],
)
def test_search_arguments_are_checked_at_entry(kwargs, error, name):
    calls = []
    args = {
        "space": SPACE,
        "evaluator": lambda a: calls.append(a) or 0.5,
        "latency_fn": _lat,
        "target": 100.0,
        "budget": 3,
    }
    args.update(kwargs)
    with pytest.raises(error, match=re.escape(name)):
        search(**args)
    assert calls == []  # nothing was evaluated


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({"accuracy": 7.5, "params": 1, "macs": 1, "seconds": 0.1, "cached": False}, "accuracy=7.5"),
        ({"accuracy": float("nan"), "params": 1, "macs": 1, "seconds": 0.1, "cached": False}, "accuracy=nan"),
        ({"accuracy": 0.5, "params": -3, "macs": 1, "seconds": 0.1, "cached": False}, "params=-3"),
        ({"accuracy": 0.5, "params": 1, "macs": 2.5, "seconds": 0.1, "cached": False}, "macs=2.5"),
        ({"accuracy": 0.5, "params": 1, "macs": 1, "seconds": float("inf"), "cached": False}, "seconds=inf"),
        ({"accuracy": 0.5, "params": 1, "macs": 1, "seconds": -1.0, "cached": False}, "seconds=-1.0"),
        ({"accuracy": 0.5, "params": 1, "macs": 1, "seconds": 0.1, "cached": "no"}, "cached="),
        ({"accuracy": 0.5, "params": 1, "macs": 1, "seconds": 0.1}, "fields"),
    ],
)  # fmt: skip
def test_cached_evaluations_are_checked(value, fragment):
    assert fragment in _check_evaluation(value)


def test_check_evaluation_accepts_a_plausible_entry():
    ok = {"accuracy": 1.0, "params": 0, "macs": 10**12, "seconds": 0.0, "cached": True}
    assert _check_evaluation(ok) is None


# --- search failures, in this process ----------------------------------------------------------


def _failing_on(codes, error=None, value=None):
    """An evaluator that fails (raises ``error`` or returns ``value``) on the given codes."""

    def evaluate(arch):
        if SPACE.encode(arch) in codes:
            if value is not None:
                return value
            raise error if error is not None else RuntimeError("out of memory")
        return _acc(arch)

    return evaluate


def _search(evaluator, latency_fn=_lat, **kw):
    kw = {"budget": 12, "seed": 4, **kw}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = search(SPACE, evaluator, latency_fn, 100.0, **kw)
    return res, [w for w in caught if issubclass(w.category, SearchWarning)]


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_a_failing_evaluation_keeps_the_others_and_names_the_candidate(strategy):
    clean, _ = _search(_acc, strategy=strategy)
    doomed = {clean.candidates[2].code, clean.candidates[5].code}
    res, caught = _search(_failing_on(doomed), strategy=strategy)
    # every position of the budget is a candidate or a failure, in order
    indices = sorted([c.index for c in res.candidates] + [f.index for f in res.failures])
    assert indices == list(range(12))
    assert {f.code for f in res.failures} <= doomed and len(res.failures) >= 2
    first = res.failures[0]
    assert (first.index, first.code, first.step) == (2, clean.candidates[2].code, "evaluation")
    assert (first.error_type, first.message) == ("RuntimeError", "out of memory")
    assert "RuntimeError: out of memory" in first.traceback
    assert str(first).startswith(f"candidate 2 ({clean.candidates[2].arch}; code ")
    # each failure was reported as it happened, naming the candidate and the error
    assert len(caught) == len(res.failures)
    assert "candidate 2" in str(caught[0].message) and "out of memory" in str(caught[0].message)
    for c in res.candidates:
        assert c.accuracy == pytest.approx(_acc(c.arch).accuracy)
        assert c.reward == pytest.approx(mnasnet_reward(c.accuracy, _lat(c.arch), 100.0))
    if strategy == "random":  # the draws do not depend on the outcomes: the rest are the same
        kept = [c for c in clean.candidates if c.code not in doomed]
        assert [(c.index, c.code) for c in res.candidates] == [(c.index, c.code) for c in kept]
    else:  # the evaluations before the first failure are the same; no failure is a parent
        assert res.candidates[:2] == clean.candidates[:2]
        assert all(c.code not in doomed for c in res.candidates)


def test_evolution_never_breeds_from_a_failure():
    clean, _ = _search(_acc, budget=20, population_size=4, sample_size=2)
    doomed = {c.code for c in clean.candidates[:3]}  # three of the four initial members
    res, _ = _search(_failing_on(doomed), budget=20, population_size=4, sample_size=2)
    (survivor,) = [c for c in res.candidates if c.index < 4]
    child = next(c for c in res.candidates if c.index == 4)
    assert sum(a != b for a, b in zip(child.code, survivor.code, strict=True)) == 1


@pytest.mark.parametrize(
    "value, step, fragment",
    [
        (float("nan"), "evaluation", "accuracy=nan"),
        (1.2, "evaluation", "accuracy=1.2"),
        (Evaluation(0.5, params=-1), "evaluation", "params=-1"),
        (Evaluation(0.5, seconds=float("nan")), "evaluation", "seconds=nan"),
        ("0.5", "evaluation", "must return an Evaluation"),
    ],
)
def test_implausible_evaluator_results_are_failures(value, step, fragment):
    clean, _ = _search(_acc, strategy="random", budget=4)
    bad = clean.candidates[1].code
    res, caught = _search(_failing_on({bad}, value=value), strategy="random", budget=4)
    (failure,) = res.failures
    assert (failure.index, failure.code, failure.step) == (1, bad, step)
    assert fragment in failure.message and fragment in str(caught[0].message)
    assert len(res.candidates) == 3


def test_numpy_and_tensor_accuracies_are_accepted_as_plain_floats():
    res, caught = _search(lambda a: np.float32(0.25), strategy="random", budget=2)
    assert [c.accuracy for c in res.candidates] == [0.25, 0.25] and caught == []
    res, _ = _search(lambda a: torch.tensor(0.5), strategy="random", budget=2)
    assert type(res.candidates[0].accuracy) is float and res.candidates[0].accuracy == 0.5


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1.0, float("inf"), "fast"])
def test_a_bad_latency_is_a_failure_naming_the_candidate(bad):
    clean, _ = _search(_acc, strategy="random", budget=5)
    target = clean.candidates[3].code

    def latency(arch):
        return bad if SPACE.encode(arch) == target else _lat(arch)

    res, caught = _search(_acc, latency, strategy="random", budget=5)
    (failure,) = res.failures
    assert (failure.index, failure.step) == (3, "latency")
    assert "latency_fn(arch)" in failure.message
    assert "candidate 3" in str(caught[0].message)


def test_max_failures_stops_with_the_finished_work():
    clean, _ = _search(_acc, strategy="random", budget=6)
    doomed = {clean.candidates[1].code, clean.candidates[4].code}
    with pytest.raises(SearchError, match="max_failures=1") as info:
        _search(_failing_on(doomed), strategy="random", budget=6, max_failures=1)
    partial = info.value.result
    assert [c.index for c in partial.candidates] == [0, 2, 3, 5]
    assert [f.index for f in partial.failures] == [1, 4]
    assert "candidate 1" in str(info.value)
    # max_failures=2 is enough for two failures
    res, _ = _search(_failing_on(doomed), strategy="random", budget=6, max_failures=2)
    assert len(res.failures) == 2 and res.best.index in (0, 2, 3, 5)


def test_a_search_where_nothing_finishes_is_an_error_not_an_empty_result():
    with pytest.raises(SearchError, match="no candidate finished") as info:
        _search(lambda a: 1 / 0, budget=5)
    assert len(info.value.result.failures) == 5
    assert info.value.result.failures[0].error_type == "ZeroDivisionError"
    with pytest.raises(ValueError, match="no finished candidate"):
        info.value.result.best  # noqa: B018


# --- search failures and latency, in real worker processes -----------------------------------


def _raise_on_big_kernels(arch):
    """Picklable: fails for architectures whose first stage has kernel 7."""
    if arch.stages[0].kernel == 7:
        raise ValueError(f"diverged: loss is nan (kernel {arch.stages[0].kernel})")
    return _acc(arch)


def _spawn_pool(workers=2):
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def test_worker_failures_are_kept_with_their_traceback_and_the_rest_is_returned():
    kw = {"strategy": "evolution", "budget": 10, "population_size": 4, "parallel": 2, "seed": 1}
    local, _ = _search(_raise_on_big_kernels, **kw)
    assert local.failures  # the seed draws kernel 7 in the first stage at least once

    def run():
        with _spawn_pool() as pool:
            return search(SPACE, _raise_on_big_kernels, _lat, 100.0, executor=pool, **kw)

    res, caught = _bounded(run)
    assert res.candidates == local.candidates
    assert [(f.index, f.code, f.message) for f in res.failures] == [
        (f.index, f.code, f.message) for f in local.failures
    ]
    assert "diverged: loss is nan" in res.failures[0].message
    assert "_raise_on_big_kernels" in res.failures[0].traceback  # the worker's own traceback
    assert sum(issubclass(w.category, SearchWarning) for w in caught) == len(res.failures)


def _exit_on(code, arch):
    """Picklable: the worker process dies (as if killed) on one architecture."""
    if SPACE.encode(arch) == code:
        os._exit(3)
    time.sleep(0.05)
    return _acc(arch)


def test_a_broken_pool_stops_the_search_but_keeps_what_finished():
    import functools

    kw = {"strategy": "evolution", "budget": 10, "population_size": 4, "parallel": 2, "seed": 2}
    local, _ = _search(_acc, **kw)
    fatal = local.candidates[6].code

    def run():
        with _spawn_pool() as pool:
            evaluator = functools.partial(_exit_on, fatal)
            return search(SPACE, evaluator, _lat, 100.0, executor=pool, **kw)

    with pytest.raises(SearchError, match="executor broke") as info:
        _bounded(run)
    partial = info.value.result
    assert partial.candidates == local.candidates[:6]  # both waves before the crash
    assert partial.failures and partial.failures[0].error_type == "BrokenProcessPool"


def _marking_evaluator(folder, arch):
    """Picklable: a marker file exists in ``folder`` while this evaluation runs."""
    marker = pathlib.Path(folder) / f"running-{os.getpid()}-{uuid.uuid4().hex}"
    marker.touch()
    try:
        time.sleep(0.02 + 0.2 * (SPACE.index(arch) % 97) / 97)  # 20-220 ms, varied by arch
        return _acc(arch)
    finally:
        marker.unlink()


class _WatchingLatency:
    """A latency_fn that records every call made while an evaluation runs, or while another
    latency call is in progress."""

    def __init__(self, folder):
        self.folder, self.calls, self.problems, self.active = pathlib.Path(folder), 0, [], False

    def __call__(self, arch):
        if self.active:
            self.problems.append("two latency measurements at once")
        self.active = True
        try:
            self.calls += 1
            running = sorted(p.name for p in self.folder.glob("running-*"))
            if running:
                self.problems.append(f"measured while {len(running)} evaluations ran")
            time.sleep(0.005)
            return _lat(arch)
        finally:
            self.active = False


@pytest.mark.parametrize(
    "kw",
    [
        {"strategy": "random", "budget": 6},
        {"strategy": "evolution", "budget": 10, "population_size": 4, "parallel": 2},
    ],
)
def test_latency_is_never_measured_while_evaluations_run(tmp_path, kw):
    import functools

    latency = _WatchingLatency(tmp_path)

    def run():
        with _spawn_pool() as pool:
            evaluator = functools.partial(_marking_evaluator, str(tmp_path))
            return search(SPACE, evaluator, latency, 100.0, executor=pool, seed=0, **kw)

    res, _ = _bounded(run)
    assert res.failures == () and len(res.candidates) == kw["budget"]
    assert latency.calls == kw["budget"]
    assert latency.problems == []
    assert list(tmp_path.glob("running-*")) == []


def test_failure_and_search_error_pickle_with_their_result():
    import pickle

    with pytest.raises(SearchError) as info:
        _search(lambda a: 1 / 0, budget=2)
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, SearchError) and str(again) == str(info.value)
    assert again.result.failures == info.value.result.failures
    assert isinstance(again.result.failures[0], Failure)


# --- the space -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"kernels": (4,)}, ValueError, "kernels[0]"),
        ({"kernels": (3, 3.0)}, TypeError, "kernels[1]"),
        ({"kernels": 3}, TypeError, "kernels"),
        ({"kernels": ()}, ValueError, "kernels"),
        ({"expansions": (1, 0)}, ValueError, "expansions[1]"),
        ({"expansions": (100,)}, SizeLimitError, "expansions[0]"),
        ({"se_ratios": (1.0,)}, ValueError, "se_ratios[0]"),
        ({"se_ratios": (0.0, float("nan"))}, ValueError, "se_ratios[1]"),
        ({"layers": (1, 1)}, ValueError, "layers"),
        ({"layers": (True,)}, TypeError, "layers[0]"),
        ({"skeleton": (StageSkeleton(16, 3),)}, ValueError, "skeleton[0].stride"),
        ({"skeleton": (StageSkeleton(16, 1), StageSkeleton(0, 2))}, ValueError, "skeleton[1].out_channels"),
        ({"skeleton": ((16, 1),)}, TypeError, "skeleton[0]"),
        ({"skeleton": ()}, ValueError, "skeleton"),
        ({"stem_channels": 0}, ValueError, "stem_channels"),
        ({"head_channels": 10**6}, SizeLimitError, "head_channels"),
        ({"in_chans": 2.0}, TypeError, "in_chans"),
    ],
)  # fmt: skip
def test_search_space_arguments(kwargs, error, name):
    with pytest.raises(error, match=re.escape(name)):
        SearchSpace(**kwargs)


def test_numpy_choices_give_the_same_space_and_the_same_repr():
    same = SearchSpace(
        kernels=np.array([3, 5, 7]),
        expansions=[np.int64(1), 3, np.int32(6)],
        se_ratios=(np.float32(0.0), torch.tensor(0.25)),
        layers=(1, 2, 3),
        skeleton=[StageSkeleton(np.int64(c), np.int64(s)) for c, s in ((16, 1), (24, 2), (32, 2), (64, 2))],
        stem_channels=np.int64(16),
    )  # fmt: skip
    assert repr(same) == repr(SPACE) and same == SPACE  # repr(space) is part of cache keys
    assert all(type(k) is int for k in same.kernels) and type(same.se_ratios[1]) is float


def test_codes_are_checked_gene_by_gene():
    good = SPACE.encode(SPACE.baselines()["mobilenet_v2_like"])
    assert SPACE.decode(np.array(good)) == SPACE.decode(list(good))
    with pytest.raises(ValueError, match="16 genes"):
        SPACE.decode(good[:-1])
    with pytest.raises(TypeError, match="code must be a sequence"):
        SPACE.decode("0000")
    with pytest.raises(TypeError, match="code must be a sequence"):
        SPACE.decode(7)
    with pytest.raises(TypeError, match=re.escape("code[3] (gene 3: stage 0 layers)")):
        SPACE.decode(good[:3] + (1.0,) + good[4:])
    with pytest.raises(ValueError, match=re.escape("code[5] (gene 5: stage 1 expansion)")):
        SPACE.decode(good[:5] + (3,) + good[6:])
    with pytest.raises(ValueError, match=re.escape("code[0]")):
        SPACE.decode((-1,) + good[1:])


def test_architectures_and_generators_are_checked():
    with pytest.raises(TypeError, match=re.escape("arch.stages[1] must be a StageChoice")):
        SPACE.encode(Architecture((StageChoice(3, 1, 0.0, 1), (3, 1, 0.0, 1), None, None)))
    with pytest.raises(TypeError, match="arch must be an Architecture"):
        SPACE.encode((0,) * 16)
    with pytest.raises(TypeError, match="rng"):
        SPACE.sample(0)
    with pytest.raises(TypeError, match="rng"):
        SPACE.mutate(SPACE.baselines()["mobilenet_v2_like"], np.random.RandomState(0))
    with pytest.raises(ValueError, match="input_size"):
        SPACE.block_specs(SPACE.baselines()["mobilenet_v2_like"], 0)
    with pytest.raises(SizeLimitError, match="input_size"):
        SPACE.all_block_specs(10_000)
    with pytest.raises(ValueError, match="dropout"):
        SPACE.build(SPACE.baselines()["mobilenet_v2_like"], dropout=1.5)
    assert not SPACE.contains("not an arch")


# --- the latency model's arguments -------------------------------------------------------------


def _fake_measure(module, shape):
    return sum(p.numel() for p in module.parameters()) / 1e4 + 0.01


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"sample_ms": float("nan")}, ValueError, "sample_ms"),
        ({"sample_ms": float("inf")}, ValueError, "sample_ms"),
        ({"sample_ms": 0}, ValueError, "sample_ms"),
        ({"sample_ms": -3.0}, ValueError, "sample_ms"),
        ({"sample_ms": 5000.0}, ValueError, "sample_ms"),
        ({"threads": 10**6}, SizeLimitError, "threads"),
        ({"threads": 0}, ValueError, "threads"),
        ({"warmup": -1}, ValueError, "warmup"),
        ({"warmup": 2.0}, TypeError, "warmup"),
    ],
)
def test_sample_timer_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        SampleTimer(**kwargs)


def test_sample_timer_accepts_numpy_numbers():
    timer = SampleTimer(threads=np.int64(1), sample_ms=np.float32(2.5), warmup=np.int32(2))
    assert (timer.threads, timer.sample_ms, timer.warmup) == (1, 2.5, 2)
    assert type(timer.sample_ms) is float and type(timer.threads) is int


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"sample_ms": float("nan")}, ValueError, "sample_ms"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"threads": 10**6}, SizeLimitError, "threads"),
        ({"rounds": 10**6}, SizeLimitError, "rounds"),
        ({"rounds": 0}, ValueError, "rounds"),
        ({"rounds": 1000, "sample_ms": 1000.0}, SizeLimitError, "hours"),
        ({"input_size": 5000}, SizeLimitError, "input_size"),
        ({"networks": "k3"}, TypeError, "networks"),
        ({"use_cache": 1}, TypeError, "use_cache"),
        ({"space": None}, TypeError, "space"),
    ],
)
def test_build_latency_table_arguments(kwargs, error, name, monkeypatch):
    import effnb.nas.latency as latency

    calls = []
    monkeypatch.setattr(latency, "measure_interleaved", lambda *a, **k: calls.append(1))
    args = {"space": TINY, "input_size": 8, "use_cache": False, **kwargs}
    with pytest.raises(error, match=name):
        build_latency_table(args.pop("space"), args.pop("input_size"), **args)
    assert calls == []  # refused before anything was measured


def test_build_latency_table_custom_measure_is_checked():
    with pytest.raises(TypeError, match="measure must be callable"):
        build_latency_table(TINY, 8, measure="fast")
    with pytest.raises(ValueError, match=r"measure\(pieces\['stem@8'\]\) in round 0"):
        build_latency_table(
            TINY, 8, measure=lambda m, s: float("nan") if s[0] == 3 else 1.0, rounds=1
        )


def test_measure_interleaved_arguments():
    relu = (nn.ReLU(), (3, 4, 4))
    with pytest.raises(ValueError, match="pieces"):
        measure_interleaved({}, measure=_fake_measure)
    with pytest.raises(ValueError, match=re.escape("pieces['a'][1]")):
        measure_interleaved({"a": (nn.ReLU(), (3, 8))}, measure=_fake_measure)
    with pytest.raises(TypeError, match=re.escape("pieces['a'][0]")):
        measure_interleaved({"a": ("relu", (3, 4, 4))}, measure=_fake_measure)
    with pytest.raises(ValueError, match="seed"):
        measure_interleaved({"a": relu}, measure=_fake_measure, seed=-2)
    with pytest.raises(ValueError, match=r"measure\(pieces\['b'\]\) in round 1"):
        values = iter([1.0, 2.0, 1.0, -2.0])
        measure_interleaved({"a": relu, "b": relu}, measure=lambda m, s: next(values), rounds=2)
    with pytest.raises(ValueError, match=r"per_round\[1, 0\]"):
        round_speed(np.array([[1.0, 2.0], [np.nan, 2.0]]))


def test_measure_networks_arguments():
    archs = list(TINY.baselines().values())
    with pytest.raises(ValueError, match="archs"):
        measure_networks(TINY, [], 8, measure=_fake_measure)
    with pytest.raises(TypeError, match="archs"):
        measure_networks(TINY, archs[0], 8, measure=_fake_measure)
    with pytest.raises(ValueError, match="rounds"):
        measure_networks(TINY, archs, 8, measure=_fake_measure, rounds=0)
    with pytest.raises(SizeLimitError, match="threads"):
        measure_networks(TINY, archs, 8, threads=10**6)
    with pytest.raises(ValueError, match="sample_ms"):
        measure_networks(TINY, archs, 8, sample_ms=float("nan"))


def _predictor():
    table = build_latency_table(TINY, 8, measure=_fake_measure, rounds=1)
    return LatencyPredictor(TINY, table, 8)


def test_predictor_fit_and_validate_arguments():
    pred = _predictor()
    rng = np.random.default_rng(0)
    archs = [TINY.sample(rng) for _ in range(4)]
    truth = [2.0 * pred.block_sum(a) + 1.0 for a in archs]
    fitted = pred.fit(archs, truth)
    assert (fitted.scale, fitted.overhead_ms) == pytest.approx((2.0, 1.0))
    with pytest.raises(ValueError, match="measured_ms must have length 4"):
        pred.fit(archs, truth[:3])
    with pytest.raises(ValueError, match=re.escape("measured_ms[2] is inf")):
        pred.fit(archs, truth[:2] + [math.inf, 1.0])
    with pytest.raises(ValueError, match=re.escape("measured_ms[0] is -1.0")):
        pred.fit(archs, [-1.0] + truth[1:])
    with pytest.raises(ValueError, match="outside the space"):
        pred.fit([SPACE.baselines()["mobilenet_v2_like"]], [1.0])
    with pytest.raises(ValueError, match="scale"):
        LatencyPredictor(TINY, pred.table, 8, scale=float("nan"))
    with pytest.raises(TypeError, match="table"):
        LatencyPredictor(TINY, {"stem@8": 1.0}, 8)
    report = validate(fitted, archs, truth)
    assert report.within_10 == 1.0
    with pytest.raises(ValueError, match="one measurement per arch"):
        validate(fitted, archs, truth[:3])
    with pytest.raises(ValueError, match=re.escape("measured_ms[1] is 0.0")):
        validate(fitted, archs, [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("predictor(archs[i])[2] is nan")):
        validate(lambda a: math.nan if a == archs[2] else 1.0, archs, truth)
    with pytest.raises(TypeError, match="predictor"):
        validate("table", archs, truth)


def test_statistics_arguments():
    with pytest.raises(ValueError, match="x must have length >= 2"):
        spearman([1.0], [2.0])
    with pytest.raises(ValueError, match="y must have length 3"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=re.escape("x[1] is nan")):
        spearman([1.0, math.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="y must be"):
        spearman([1.0, 2.0], ["a", "b"])
    assert spearman(np.array([1, 2, 3]), torch.tensor([3.0, 1.0, 2.0])) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="tol"):
        within_share([1.0], [1.0], tol=-0.1)
    with pytest.raises(ValueError, match="tol"):
        within_share([1.0], [1.0], tol=math.nan)
    with pytest.raises(ValueError, match=re.escape("reference[0] is 0.0")):
        within_share([1.0], [0.0])
    assert within_share([1.0, 1.5, 2.0], [1.05, 1.0, 2.0], tol=0.1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="tol"):
        repeatability(np.ones((4, 2)), tol=math.inf)
    with pytest.raises(ValueError, match="per_round"):
        repeatability(np.ones((1, 2)))


def test_bootstrap_difference_arguments():
    rng = np.random.default_rng(0)
    meas = rng.uniform(1, 10, 12)
    a, b = meas * 1.01, meas[::-1].copy()
    with pytest.raises(SizeLimitError, match="n_boot"):
        bootstrap_difference(spearman, meas, a, b, n_boot=10**7)
    with pytest.raises(ValueError, match="seed"):
        bootstrap_difference(spearman, meas, a, b, seed=-1)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_difference(spearman, meas, a, b, confidence=1.0)
    with pytest.raises(ValueError, match=re.escape("predicted_b[3] is nan")):
        bootstrap_difference(spearman, meas, a, np.where(np.arange(12) == 3, np.nan, b))
    with pytest.raises(ValueError, match="measured must have length >= 3"):
        bootstrap_difference(spearman, meas[:2], a[:2], b[:2])
    with pytest.raises(TypeError, match="metric"):
        bootstrap_difference("spearman", meas, a, b)
    with pytest.raises(ValueError, match="no finite difference"):
        bootstrap_difference(lambda p, m: math.nan, meas, a, b, n_boot=20)


# --- the checks added for effnb.nas ----------------------------------------------------------


def test_check_finite_array():
    assert check_finite_array("x", [1, 2.5]).tolist() == [1.0, 2.5]
    assert check_finite_array("x", torch.tensor([3.0])).dtype == np.float64
    with pytest.raises(TypeError, match="x must be"):
        check_finite_array("x", "12")
    with pytest.raises(TypeError, match="x must be"):
        check_finite_array("x", [True, False])
    with pytest.raises(TypeError, match="x must be"):
        check_finite_array("x", [1.0, None])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        check_finite_array("x", np.ones((2, 2)))
    with pytest.raises(ValueError, match=re.escape("x[1] is -inf (2 of 3 values are not)")):
        check_finite_array("x", [1.0, -math.inf, math.nan])
    with pytest.raises(ValueError, match=re.escape("x[0] is 0.0")):
        check_finite_array("x", [0.0, 1.0], positive=True)
    assert check_finite_array("x", [0.0, 1.0]).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="x must have length >= 1"):
        check_finite_array("x", [])


def test_check_callable_and_generator():
    assert check_callable("f", len) is len
    with pytest.raises(TypeError, match="f must be callable"):
        check_callable("f", 3)
    rng = np.random.default_rng(0)
    assert check_generator("rng", rng) is rng
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_generator("rng", 42)


def test_a_saved_table_with_a_bad_entry_is_refused(tmp_path):
    table = LatencyTable(entries={"stem@8": 1.0, "ir": math.nan}, meta={"torch": "x"})
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "t.json"))):
        table.save(tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()
