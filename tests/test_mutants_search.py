"""Tests that kill the mutants of effnb/nas/search.py that the other tests let live (issue 16;
scripts/mutants.py runs mutmut against these).

``search`` is checked against a hand-written regularized evolution (Real et al., Algorithm 1)
and random search that draw from the same generator: same candidates, same order, same
rewards. Evaluators and latencies are fakes with asymmetric values; nothing trains."""

from __future__ import annotations

import importlib
import math
import pickle
import re
import sys
from collections import deque
from concurrent.futures import BrokenExecutor, Future

import numpy as np
import pytest
import torch

from effnb.nas.space import SearchSpace

S = importlib.import_module("effnb.nas.search")  # effnb.nas.search is also a function
SPACE = SearchSpace(kernels=(3, 5), expansions=(1, 6), se_ratios=(0.0, 0.25), layers=(1, 2))


def raises(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def acc_of(arch) -> float:
    code = SPACE.encode(arch)
    return 0.3 + 0.6 * sum((i + 1) * g for i, g in enumerate(code)) / (len(code) ** 2)


def lat_of(arch) -> float:
    code = SPACE.encode(arch)
    return 1.0 + sum(g * (2 if i % 2 else 3) for i, g in enumerate(code)) / 4


# --- reward -----------------------------------------------------------------------------------


def test_reward_exponents_on_each_side_of_the_target():
    assert S.reward(0.8, 2.0, 1.0, -0.1, -0.5) == pytest.approx(0.8 * 2.0**-0.5)
    assert S.reward(0.8, 0.5, 1.0, -0.1, -0.5) == pytest.approx(0.8 * 0.5**-0.1)
    assert S.reward(0.8, 3.0, 1.5) == pytest.approx(0.8 * 2.0**-0.07)  # defaults: soft
    assert S.reward(0.8, 0.75, 1.5) == pytest.approx(0.8 * 0.5**-0.07)
    assert S.reward(0.6, 1.5, 1.5, -3.0, -9.0) == pytest.approx(0.6)
    assert S.reward(0.5, 2.0, 1.0, 0.0, 0.0) == 0.5
    assert S.reward(1, 1, 1) == 1.0 and type(S.reward(1, 1, 1)) is float
    assert S.reward(0.5, 4.0, 2.0, -10.0, -10.0) == pytest.approx(0.5 * 2.0**-10)


def test_reward_overflow_messages():
    with raises(
        ValueError,
        "the reward overflows: (latency / target) ** alpha = (1e-200 / 1e+200) ** -10.0; "
        "latency and target must be in the same unit",
    ):
        S.reward(0.5, 1e-200, 1e200, -10.0, -1.0)  # the ratio underflows to 0
    with raises(
        ValueError,
        "the reward overflows: (latency / target) ** alpha = (1e-50 / 1e+50) ** -4.0; "
        "latency and target must be in the same unit",
    ):
        S.reward(0.5, 1e-50, 1e50, -4.0, -1.0)  # 1e-100 ** -4 overflows


def test_reward_argument_messages():
    with raises(ValueError, "accuracy must be a finite number in [0.0, 1.0], got 1.5"):
        S.reward(1.5, 1.0, 1.0)
    assert S.reward(0.0, 1.0, 1.0) == 0.0
    with raises(ValueError, "latency must be a finite number > 0.0, got 0"):
        S.reward(0.5, 0, 1.0)
    with raises(ValueError, "target latency T must be a finite number > 0.0, got 0"):
        S.reward(0.5, 1.0, 0)
    with raises(ValueError, "alpha must be a finite number in [-10.0, 0.0], got 0.1"):
        S.reward(0.5, 1.0, 1.0, 0.1)
    with raises(ValueError, "beta must be a finite number in [-10.0, 0.0], got -10.5"):
        S.reward(0.5, 1.0, 1.0, -1.0, -10.5)


def test_mnasnet_reward_and_constraints():
    assert S.mnasnet_reward(0.8, 2.0, 1.0) == pytest.approx(0.8 * 2.0**-0.07)
    assert S.mnasnet_reward(0.8, 2.0, 1.0, "hard") == pytest.approx(0.4)
    assert S.mnasnet_reward(0.8, 0.5, 1.0, "hard") == pytest.approx(0.8)
    assert S.mnasnet_reward(0.8, 2.0, 1.0, (0.0, -2.0)) == pytest.approx(0.2)
    assert S.mnasnet_reward(0.8, 0.5, 1.0, np.array([-1.0, 0.0])) == pytest.approx(1.6)
    assert S._constraint("soft") == S.SOFT == (-0.07, -0.07)
    assert S._constraint("hard") == S.HARD == (0.0, -1.0)
    assert S._constraint([-0.5, -0.25]) == (-0.5, -0.25)
    with raises(
        ValueError,
        "constraint must be 'soft', 'hard' or a pair (alpha, beta), got a sequence of 3: (0, 0, 0)",
    ):
        S._constraint((0, 0, 0))
    with raises(
        TypeError, "constraint must be 'soft', 'hard' or a pair (alpha, beta), got 3 (int)"
    ):
        S._constraint(3)
    with raises(ValueError, "constraint[1] (beta) must be a finite number in [-10.0, 0.0], got 1"):
        S._constraint((0, 1))
    with raises(ValueError, "constraint[0] (alpha) must be a finite number in [-10.0, 0.0], got 1"):
        S._constraint((1, 0))
    with pytest.raises(ValueError, match="^constraint must be one of"):
        S._constraint("medium")


# --- evaluations ------------------------------------------------------------------------------


def test_synchronous_executor():
    ex = S.SynchronousExecutor()
    assert ex.submit(lambda a, b=1: a * 10 + b, 4, b=2).result() == 42
    failed = ex.submit(lambda: 1 / 0)
    assert isinstance(failed.exception(), ZeroDivisionError)

    def stop():
        raise KeyboardInterrupt

    assert isinstance(ex.submit(stop).exception(), KeyboardInterrupt)


def test_evaluation_problems():
    P = S._evaluation_problem
    assert P(0.0, 0, 0, 0.0) is None and P(1, 5, 7, 2) is None
    assert P(np.float32(0.5), np.int64(3), torch.tensor(4), np.float64(1.5)) is None
    assert P(1.01, 0, 0, 0) == "accuracy=1.01 is not a finite number in [0, 1]"
    assert P(-0.01, 0, 0, 0) == "accuracy=-0.01 is not a finite number in [0, 1]"
    assert P(math.nan, 0, 0, 0) == "accuracy=nan is not a finite number in [0, 1]"
    assert P(True, 0, 0, 0) == "accuracy=True is not a finite number in [0, 1]"
    assert P("0.5", 0, 0, 0) == "accuracy='0.5' is not a finite number in [0, 1]"
    assert P(0.5, -1, 0, 0) == "params=-1 is not a non-negative integer"
    assert P(0.5, 1.0, 0, 0) == "params=1.0 is not a non-negative integer"
    assert P(0.5, True, 0, 0) == "params=True is not a non-negative integer"
    assert P(0.5, 0, -2, 0) == "macs=-2 is not a non-negative integer"
    assert P(0.5, 0, False, 0) == "macs=False is not a non-negative integer"
    assert P(0.5, 0, 0, -0.5) == "seconds=-0.5 is not a finite number >= 0"
    assert P(0.5, 0, 0, math.inf) == "seconds=inf is not a finite number >= 0"
    assert P(0.5, 0, 0, True) == "seconds=True is not a finite number >= 0"
    assert P(0.5, 0, 0, "1") == "seconds='1' is not a finite number >= 0"


def test_check_evaluation():
    good = {"accuracy": 0.5, "params": 1, "macs": 2, "seconds": 0.5, "cached": False}
    assert S._check_evaluation(good) is None
    assert S._check_evaluation({**good, "extra": 1}) == (
        "its fields ['accuracy', 'cached', 'extra', 'macs', 'params', 'seconds'] are not an "
        "Evaluation's"
    )
    assert S._check_evaluation({**good, "cached": 0}) == "cached=0 is not true or false"
    assert S._check_evaluation({**good, "macs": -1, "cached": 0}) == (
        "macs=-1 is not a non-negative integer"
    )
    assert S._check_evaluation({**good, "seconds": -1.0}) == (
        "seconds=-1.0 is not a finite number >= 0"
    )
    assert (
        S._check_evaluation({**good, "params": 1.5}) == "params=1.5 is not a non-negative integer"
    )
    assert S._check_evaluation({**good, "accuracy": 2}) == (
        "accuracy=2 is not a finite number in [0, 1]"
    )


def test_as_evaluation():
    ev = S._as_evaluation(np.float32(0.25))
    assert ev == S.Evaluation(0.25) and type(ev.accuracy) is float
    full = S._as_evaluation(
        S.Evaluation(torch.tensor(0.5), np.int64(7), np.int32(9), np.float32(1.5), cached=1)
    )
    assert full == S.Evaluation(0.5, 7, 9, 1.5, True)
    assert type(full.params) is int and type(full.macs) is int and type(full.seconds) is float
    assert full.cached is True
    assert S._as_evaluation(1) == S.Evaluation(1.0)
    with raises(
        TypeError,
        "the evaluator must return an Evaluation or an accuracy in [0, 1], got True (bool)",
    ):
        S._as_evaluation(True)
    with raises(
        TypeError,
        "the evaluator must return an Evaluation or an accuracy in [0, 1], got 'x' (str)",
    ):
        S._as_evaluation("x")
    with raises(ValueError, "the evaluator returned accuracy=2.0 is not a finite number in [0, 1]"):
        S._as_evaluation(2.0)
    with raises(ValueError, "the evaluator returned macs=-1 is not a non-negative integer"):
        S._as_evaluation(S.Evaluation(0.5, 1, -1))


# --- results ----------------------------------------------------------------------------------


def _cand(index, reward, latency=1.0, accuracy=0.5, code=None):
    return S.Candidate(index, None, code or (index,), accuracy, latency, reward)


def test_best_and_best_reward_so_far():
    cands = (_cand(0, 0.2), _cand(1, 0.5), _cand(2, 0.4), _cand(3, 0.5), _cand(4, 0.1))
    result = S.SearchResult("random", cands, 1.0, -0.07, -0.07, 0.0)
    assert result.best.index == 1  # ties: the earlier one
    assert result.best_reward_so_far() == [0.2, 0.5, 0.5, 0.5, 0.5]
    neg = S.SearchResult("random", (_cand(0, -3.0), _cand(1, -1.0)), 1.0, 0, 0, 0.0)
    assert neg.best_reward_so_far() == [-3.0, -1.0]
    failure = S.Failure(0, None, (0,), "evaluation", "ValueError", "bad")
    empty = S.SearchResult("evolution", (), 1.0, 0, 0, 0.0, (failure, failure))
    with raises(ValueError, "this search has no finished candidate (2 failed); see .failures"):
        _ = empty.best
    assert result.pareto_front() == S.pareto_front(cands)


def test_pareto_front():
    c = [
        _cand(0, 0, latency=2.0, accuracy=0.6, code=(0,)),
        _cand(1, 0, latency=1.0, accuracy=0.5, code=(1,)),
        _cand(2, 0, latency=1.0, accuracy=0.55, code=(2,)),  # same latency, better: kept
        _cand(3, 0, latency=3.0, accuracy=0.6, code=(3,)),  # as accurate, slower: dominated
        _cand(4, 0, latency=2.5, accuracy=0.7, code=(4,)),
        _cand(5, 0, latency=0.5, accuracy=0.1, code=(5,)),
        _cand(6, 0, latency=9.0, accuracy=0.7, code=(4,)),  # same code as 4: the later one wins
    ]
    assert [x.index for x in S.pareto_front(c)] == [5, 2, 0, 6]
    c[6] = _cand(6, 0, latency=2.5, accuracy=0.7, code=(6,))
    assert [x.index for x in S.pareto_front(c)] == [5, 2, 0, 4]
    assert [x.index for x in S.pareto_front([_cand(7, 0, 2.0, -0.5, (7,))])] == [7]


def test_failure_text_and_error_pickling():
    f = S.Failure(3, "ARCH", (1, 2), "latency", "KeyError", "'x'", "tb")
    assert str(f) == "candidate 3 (ARCH; code (1, 2)): latency failed with KeyError: 'x'"
    result = S.SearchResult("random", (), 2.0, 0.0, -1.0, 1.5, (f,))
    err = pickle.loads(pickle.dumps(S.SearchError("stopped", result)))
    assert str(err) == "stopped" and err.result == result


def test_outcome_and_failed_future():
    ok: Future = Future()
    ok.set_result(5)
    assert S._outcome(ok) == (5, None)
    exc = ValueError("v")
    assert S._outcome(S._failed_future(exc)) == (None, exc)


# --- search against a hand-written reference ---------------------------------------------------


def reference_search(
    strategy,
    budget,
    seed,
    target,
    alpha,
    beta,
    P=8,
    S_=3,
    parallel=1,
    acc=None,
    lat=None,
    fails=(),
):
    """Random search or regularized evolution, written out: (index, arch, accuracy, latency,
    reward) of every finished candidate. Candidates whose code is in ``fails`` fail: they take
    an index and count against the budget but do not join the population."""
    acc, lat = acc or acc_of, lat or lat_of
    rng = np.random.default_rng(seed)
    out, count = [], [0]

    def evaluate(archs):
        done = []
        for a in archs:
            index = count[0]
            count[0] += 1
            if SPACE.encode(a) in fails:
                continue
            w = alpha if lat(a) <= target else beta
            done.append((index, a, acc(a), lat(a), acc(a) * (lat(a) / target) ** w))
            out.append(done[-1])
        return done

    if strategy == "random":
        evaluate([SPACE.sample(rng) for _ in range(budget)])
        return out
    population = deque(evaluate([SPACE.sample(rng) for _ in range(min(P, budget))]))
    while count[0] < budget:
        children = []
        for _ in range(min(parallel, budget - count[0])):
            members = list(population)
            if not members:
                children.append(SPACE.sample(rng))
                continue
            picks = rng.choice(len(members), size=min(S_, len(members)), replace=False)
            parent = max((members[i] for i in picks), key=lambda c: (c[4], -c[0]))
            children.append(SPACE.mutate(parent[1], rng))
        for child in evaluate(children):
            population.append(child)
            if len(population) > P:
                population.popleft()
    return out


def _as_tuples(result):
    return [(c.index, c.arch, c.accuracy, c.latency_ms, c.reward) for c in result.candidates]


@pytest.mark.parametrize(
    ("strategy", "kwargs", "ref"),
    [
        ("random", {"budget": 7, "seed": 3}, {"budget": 7, "seed": 3}),
        (
            "evolution",
            {"budget": 17, "seed": 1, "population_size": 5, "sample_size": 2},
            {"budget": 17, "seed": 1, "P": 5, "S_": 2},
        ),
        (
            "evolution",
            {"budget": 15, "seed": 2, "population_size": 4, "sample_size": 4, "parallel": 3},
            {"budget": 15, "seed": 2, "P": 4, "S_": 4, "parallel": 3},
        ),
        (
            "evolution",
            {"budget": 13, "seed": 5, "population_size": 6, "sample_size": 6, "constraint": "hard"},
            {"budget": 13, "seed": 5, "P": 6, "S_": 6},
        ),
    ],
)
def test_search_matches_the_reference(strategy, kwargs, ref):
    target = 4.0
    alpha, beta = S.HARD if kwargs.get("constraint") == "hard" else S.SOFT
    result = S.search(SPACE, acc_of, lat_of, target, strategy=strategy, **kwargs)
    want = reference_search(strategy, target=target, alpha=alpha, beta=beta, **ref)
    got = _as_tuples(result)
    assert [g[:4] for g in got] == [w[:4] for w in want]
    assert [g[4] for g in got] == pytest.approx([w[4] for w in want])
    assert result.strategy == strategy and result.target_ms == 4.0
    assert (result.alpha, result.beta) == (alpha, beta) and result.failures == ()
    assert [c.code for c in result.candidates] == [SPACE.encode(c.arch) for c in result.candidates]
    assert result.seconds >= 0


def test_search_defaults_are_evolution_20_p8_s3_seed0():
    result = S.search(SPACE, acc_of, lat_of, 4.0)
    want = reference_search("evolution", 20, 0, 4.0, *S.SOFT, P=8, S_=3)
    assert [c.arch for c in result.candidates] == [w[1] for w in want]


def test_budget_smaller_than_the_population():
    result = S.search(SPACE, acc_of, lat_of, 4.0, budget=3, population_size=8, seed=4)
    rng = np.random.default_rng(4)
    assert [c.arch for c in result.candidates] == [SPACE.sample(rng) for _ in range(3)]


def test_candidates_carry_the_evaluation():
    def evaluator(arch):
        return S.Evaluation(acc_of(arch), params=11, macs=22, seconds=3.5, cached=True)

    result = S.search(SPACE, evaluator, lat_of, 4.0, strategy="random", budget=2)
    c = result.candidates[1]
    assert (c.params, c.macs, c.seconds, c.cached) == (11, 22, 3.5, True)
    assert c.index == 1 and c.accuracy == acc_of(c.arch) and c.latency_ms == lat_of(c.arch)


def test_each_architecture_is_evaluated_once():
    calls = []

    def evaluator(arch):
        calls.append(SPACE.encode(arch))
        return acc_of(arch)

    small = SearchSpace(kernels=(3,), expansions=(1,), se_ratios=(0.0,), layers=(1, 2))
    result = S.search(small, evaluator, lambda a: 1.0, 1.0, strategy="random", budget=40)
    assert len(result.candidates) == 40
    assert len(calls) == len(set(calls)) == len({c.code for c in result.candidates})


class _Events:
    """An executor that records submits and a latency function that records its calls."""

    def __init__(self):
        self.log = []
        self.pending: list = []

    def submit(self, fn, arch):
        self.log.append("submit")
        future: Future = Future()
        future.set_result(fn(arch))
        return future

    def latency(self, arch):
        self.log.append("latency")
        return lat_of(arch)


def test_latency_runs_only_between_waves():
    events = _Events()
    S.search(
        SPACE,
        acc_of,
        events.latency,
        4.0,
        budget=7,
        population_size=3,
        sample_size=2,
        parallel=2,
        executor=events,
        seed=1,
    )
    runs = []
    for e in events.log:
        if runs and runs[-1][0] == e:
            runs[-1][1] += 1
        else:
            runs.append([e, 1])
    # 3 initial, then waves of 2, 2 (the last wave is what is left of the budget: 0)
    assert [r[0] for r in runs] == ["submit", "latency"] * (len(runs) // 2)
    assert [r[1] for r in runs if r[0] == "latency"] == [3, 2, 2]


def _failing(bad_codes, step="evaluation"):
    def evaluator(arch):
        if SPACE.encode(arch) in bad_codes and step == "evaluation":
            raise RuntimeError("no accuracy")
        return acc_of(arch)

    def latency(arch):
        if SPACE.encode(arch) in bad_codes and step == "latency":
            raise KeyError("no latency")
        return lat_of(arch)

    return evaluator, latency


def test_failures_are_recorded_with_index_step_and_message():
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(5)]
    bad = {SPACE.encode(archs[1]), SPACE.encode(archs[3])}
    evaluator, latency = _failing(bad)
    with pytest.warns(S.SearchWarning) as caught:
        result = S.search(SPACE, evaluator, latency, 4.0, strategy="random", budget=5)
    assert [c.index for c in result.candidates] == [0, 2, 4]
    assert [f.index for f in result.failures] == [1, 3]
    f = result.failures[0]
    assert (f.arch, f.code, f.step, f.error_type, f.message) == (
        archs[1],
        SPACE.encode(archs[1]),
        "evaluation",
        "RuntimeError",
        "no accuracy",
    )
    assert "RuntimeError: no accuracy" in f.traceback
    assert str(caught[0].message) == f"search: {f}"
    evaluator, latency = _failing(bad, "latency")
    with pytest.warns(S.SearchWarning):
        result = S.search(SPACE, evaluator, latency, 4.0, strategy="random", budget=5)
    assert [(f.step, f.error_type, f.message) for f in result.failures] == [
        ("latency", "KeyError", "'no latency'")
    ] * 2
    # a reward that cannot be computed (the ratio underflows) is a "reward" failure
    with pytest.warns(S.SearchWarning), pytest.raises(S.SearchError) as info:
        S.search(
            SPACE,
            acc_of,
            lambda a: 1e-200,
            1e200,
            strategy="random",
            budget=2,
            constraint=(-10.0, -1.0),
        )
    assert [(f.step, f.error_type) for f in info.value.result.failures] == [
        ("reward", "ValueError")
    ] * 2


def test_max_failures_boundary():
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(6)]
    bad = {SPACE.encode(archs[0]), SPACE.encode(archs[1])}
    evaluator, latency = _failing(bad)
    with pytest.warns(S.SearchWarning):
        result = S.search(
            SPACE, evaluator, latency, 4.0, strategy="random", budget=6, max_failures=2
        )
    assert len(result.failures) == 2 and len(result.candidates) == 4
    with pytest.warns(S.SearchWarning), pytest.raises(S.SearchError) as info:
        S.search(SPACE, evaluator, latency, 4.0, strategy="random", budget=6, max_failures=1)
    assert str(info.value) == (
        "search stopped: more than max_failures=1 candidates failed (4 finished and 2 failed "
        f"of budget=6); first failure: {info.value.result.failures[0]}"
    )
    assert len(info.value.result.candidates) == 4


def test_nothing_finished_is_an_error():
    def evaluator(arch):
        raise RuntimeError("x")

    with pytest.warns(S.SearchWarning), pytest.raises(S.SearchError) as info:
        S.search(SPACE, evaluator, lat_of, 4.0, strategy="random", budget=2)
    assert str(info.value) == (
        "search stopped: no candidate finished (0 finished and 2 failed of budget=2); first "
        f"failure: {info.value.result.failures[0]}"
    )
    assert info.value.result.strategy == "random" and info.value.result.target_ms == 4.0


def first_two_fail():
    """An evaluator whose first two calls raise; later calls give ``acc_of(arch)``."""
    state = {"n": 0}

    def evaluator(arch):
        state["n"] += 1
        if state["n"] <= 2:
            raise RuntimeError("the first two fail")
        return acc_of(arch)

    return evaluator


def test_evolution_restarts_from_a_random_candidate_when_every_member_failed():
    evaluator = first_two_fail()

    with pytest.warns(S.SearchWarning):
        result = S.search(
            SPACE, evaluator, lat_of, 4.0, budget=4, population_size=2, sample_size=1, seed=6
        )
    rng = np.random.default_rng(6)
    draws = [SPACE.sample(rng) for _ in range(4)]
    firsts = [f.arch for f in result.failures]
    assert firsts == draws[:2] and [c.arch for c in result.candidates][:1] == draws[2:3]


class _Broken:
    def __init__(self, after):
        self.after, self.n = after, 0

    def submit(self, fn, arch):
        self.n += 1
        future: Future = Future()
        if self.n > self.after:
            future.set_exception(BrokenExecutor("a worker died"))
        else:
            future.set_result(fn(arch))
        return future


class _Refusing:
    def submit(self, fn, arch):
        raise RuntimeError("cannot schedule new futures after shutdown")


def test_a_broken_executor_stops_the_search():
    with pytest.warns(S.SearchWarning), pytest.raises(S.SearchError) as info:
        S.search(SPACE, acc_of, lat_of, 4.0, strategy="random", budget=4, executor=_Broken(2))
    assert str(info.value).startswith(
        "search stopped: the executor broke (BrokenExecutor: a worker died) (2 finished and "
        "2 failed of budget=4); first failure: "
    )
    with pytest.warns(S.SearchWarning), pytest.raises(S.SearchError) as info:
        S.search(SPACE, acc_of, lat_of, 4.0, strategy="random", budget=2, executor=_Refusing())
    f = info.value.result.failures[0]
    assert f.error_type == "RuntimeError" and f.message.startswith("cannot schedule")


class _Bar:
    made: list = []

    def __init__(self, total, desc):
        self.total, self.desc, self.updates, self.closed = total, desc, 0, 0
        _Bar.made.append(self)

    def update(self, n):
        self.updates += n

    def close(self):
        self.closed += 1


def test_progress_bar(monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made = []
    S.search(SPACE, acc_of, lat_of, 4.0, budget=5, population_size=2, sample_size=2, progress=True)
    (bar,) = _Bar.made
    assert (bar.total, bar.desc, bar.updates, bar.closed) == (5, "evolution", 5, 1)

    def evaluator(arch):
        raise RuntimeError("x")

    with pytest.warns(S.SearchWarning), pytest.raises(S.SearchError):
        S.search(SPACE, evaluator, lat_of, 4.0, strategy="random", budget=2, progress=True)
    assert _Bar.made[1].closed == 1 and _Bar.made[1].updates == 2
    S.search(SPACE, acc_of, lat_of, 4.0, budget=2)
    assert len(_Bar.made) == 2  # no bar unless asked


def test_search_argument_messages():
    with raises(TypeError, "space must be a SearchSpace, got str"):
        S.search("space", acc_of, lat_of, 4.0)
    with raises(ValueError, "sample_size=4 cannot exceed population_size=3"):
        S.search(SPACE, acc_of, lat_of, 4.0, population_size=3, sample_size=4)
    S.search(SPACE, acc_of, lat_of, 4.0, budget=4, population_size=3, sample_size=3)
    with raises(TypeError, "executor must be a concurrent.futures.Executor (or None), got int"):
        S.search(SPACE, acc_of, lat_of, 4.0, executor=3)
    with pytest.raises(ValueError, match="^max_failures must be an integer >= 0"):
        S.search(SPACE, acc_of, lat_of, 4.0, max_failures=-1)
    with pytest.raises(ValueError, match="^budget must be an integer"):
        S.search(SPACE, acc_of, lat_of, 4.0, budget=S.MAX_BUDGET + 1)
    with pytest.raises(ValueError, match="^parallel must be an integer"):
        S.search(SPACE, acc_of, lat_of, 4.0, parallel=0)
    with pytest.raises(ValueError, match="^target latency T must be"):
        S.search(SPACE, acc_of, lat_of, 0.0)
    with pytest.raises(ValueError, match="^strategy must be one of"):
        S.search(SPACE, acc_of, lat_of, 4.0, strategy="grid")
    with pytest.raises(TypeError, match="^evaluator must be callable"):
        S.search(SPACE, 3, lat_of, 4.0)
    with pytest.raises(TypeError, match="^latency_fn must be callable"):
        S.search(SPACE, acc_of, 3, 4.0)
    with pytest.raises(TypeError, match="^progress must be"):
        S.search(SPACE, acc_of, lat_of, 4.0, progress=1)
    with pytest.raises(ValueError, match="^seed must be"):
        S.search(SPACE, acc_of, lat_of, 4.0, seed=-1)


# --- DigitsEvaluator, with a stand-in for the training loop ---------------------------------------

TINY = SearchSpace(kernels=(3,), expansions=(1, 6), se_ratios=(0.0,), layers=(1, 2))


def test_digits_evaluator_defaults_and_train_config():
    ev = S.DigitsEvaluator(TINY)
    assert (ev.image_size, ev.epochs, ev.batch_size, ev.lr, ev.weight_decay) == (
        16,
        3,
        32,
        0.1,
        5e-4,
    )
    assert (ev.seed, ev.threads, ev.use_cache) == (0, 1, True)
    cfg = S.DigitsEvaluator(
        TINY, epochs=2, batch_size=7, lr=0.03, weight_decay=0.002, seed=5, threads=2
    ).train_config()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.seed, cfg.threads) == (
        2,
        7,
        0.03,
        0.002,
        5,
        2,
    )
    assert cfg.progress is False


def test_digits_evaluator_cache_key_fields(monkeypatch):
    import dataclasses

    from effnb import _cache
    from effnb.data import digits
    from effnb.train import _fingerprint

    monkeypatch.setattr("effnb.nas.latency.source_digest", lambda *objs: f"{len(objs)} objects")
    arch = TINY.sample(np.random.default_rng(2))
    ev = S.DigitsEvaluator(TINY, image_size=8, epochs=2, seed=3)
    key = ev.cache_key(arch)
    torch.manual_seed(3)
    model = TINY.build(arch, num_classes=10)
    data = digits(image_size=8, seed=3)
    cfg = dataclasses.asdict(ev.train_config())
    for name in ("progress", "threads", "device"):
        del cfg[name]
    assert key == {
        "space": repr(TINY),
        "code": list(TINY.encode(arch)),
        "image_size": 8,
        "train": cfg,
        "data": [_fingerprint(d) for d in data],
        "init": _cache.state_digest(model.state_dict()),
        "source": "4 objects",
        "torch": torch.__version__,
    }
    assert ev.cache_key(arch, model, data) == key
    other = S.DigitsEvaluator(TINY, image_size=8, epochs=2, seed=4).cache_key(arch, model, data)
    assert other["train"]["seed"] == 4 and other["init"] == key["init"]


def test_digits_evaluator_trains_with_its_threads_and_counts_costs(tmp_path, monkeypatch):
    import effnb.train
    from effnb.costs import profile
    from effnb.train import EpochStats, TrainResult

    seen = []

    def fake_train(model, train_set, val_set, config):
        seen.append((torch.get_num_threads(), len(train_set), config.epochs, model.training))
        hist = (EpochStats(1, 1.0, 0.625, 1.0, 0.625, 0.0),)
        return TrainResult(hist, 0.625, 0.625, 1.75, 0)

    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    monkeypatch.setattr(effnb.train, "train", fake_train)
    # a recorded thread count, not a real one: a second OpenMP thread in a process that mutmut
    # forks from can deadlock the fork
    threads = [1]
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads[0])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: threads.__setitem__(0, n))
    arch = TINY.sample(np.random.default_rng(1))
    before = torch.get_num_threads()
    ev = S.DigitsEvaluator(TINY, image_size=8, epochs=2, threads=2, use_cache=False)
    result = ev(arch)
    assert torch.get_num_threads() == before
    assert seen[0][0] == 2 and seen[0][2] == 2
    report = profile(TINY.build(arch), input_size=8)
    assert result == S.Evaluation(0.625, report.params, report.macs, 1.75, False)
    assert not list(tmp_path.rglob("*.json"))  # use_cache=False writes nothing
    cached = S.DigitsEvaluator(TINY, image_size=8, epochs=2, threads=2)
    assert cached(arch).cached is False and cached(arch).cached is True and len(seen) == 2
    (path,) = tmp_path.rglob("*.json")
    assert path.parent.name == "nas-evals"
    assert ev(arch).cached is False and len(seen) == 3  # use_cache=False never reads it

    def broken(*args):
        raise RuntimeError("training failed")

    monkeypatch.setattr(effnb.train, "train", broken)
    with pytest.raises(RuntimeError, match="training failed"):
        ev(arch)
    assert torch.get_num_threads() == before


# --- survivors of the first mutation run ------------------------------------------------------


def test_ties_in_reward_go_to_the_older_parent():
    def acc(arch):
        return 0.5

    def lat(arch):
        return 2.0

    result = S.search(SPACE, acc, lat, 4.0, budget=14, population_size=4, sample_size=3, seed=8)
    want = reference_search("evolution", 14, 8, 4.0, *S.SOFT, P=4, S_=3, acc=acc, lat=lat)
    assert [c.arch for c in result.candidates] == [w[1] for w in want]


@pytest.mark.parametrize("parallel", [1, 2])
def test_failed_members_leave_the_population_short(parallel):
    rng = np.random.default_rng(11)
    first = [SPACE.sample(rng) for _ in range(4)]
    fails = {SPACE.encode(first[0]), SPACE.encode(first[2])}

    def evaluator(arch):
        if SPACE.encode(arch) in fails:
            raise RuntimeError("fails")
        return acc_of(arch)

    with pytest.warns(S.SearchWarning):
        result = S.search(
            SPACE,
            evaluator,
            lat_of,
            4.0,
            budget=13,
            population_size=4,
            sample_size=2,
            parallel=parallel,
            seed=11,
        )
    want = reference_search(
        "evolution", 13, 11, 4.0, *S.SOFT, P=4, S_=2, parallel=parallel, fails=fails
    )
    assert [(c.index, c.arch) for c in result.candidates] == [w[:2] for w in want]
    assert len(result.candidates) + len(result.failures) == 13


def test_restart_wave_draws_every_child_at_random():
    evaluator = first_two_fail()

    with pytest.warns(S.SearchWarning):
        result = S.search(
            SPACE,
            evaluator,
            lat_of,
            4.0,
            budget=4,
            population_size=2,
            sample_size=1,
            parallel=2,
            seed=6,
        )
    rng = np.random.default_rng(6)
    draws = [SPACE.sample(rng) for _ in range(4)]
    assert [c.arch for c in result.candidates] == draws[2:]
    assert len(result.candidates) + len(result.failures) == 4


def test_search_seconds_from_the_clock(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(S.time, "perf_counter", lambda: next(clock))
    assert S.search(SPACE, acc_of, lat_of, 4.0, strategy="random", budget=2).seconds == 2.5


def test_latency_failure_message_and_traceback():
    bad = SPACE.encode(SPACE.sample(np.random.default_rng(0)))  # the first candidate drawn

    def latency(arch):
        return 0.0 if SPACE.encode(arch) == bad else 1.0

    with pytest.warns(S.SearchWarning) as caught:
        result = S.search(SPACE, acc_of, latency, 4.0, strategy="random", budget=2)
    f = result.failures[0]
    assert f.message == "latency_fn(arch) must be a finite number > 0.0, got 0.0"
    assert f.traceback.startswith("Traceback (most recent call last):\n  File ")
    assert f.traceback.endswith(f"ValueError: {f.message}\n")
    # stacklevel=3: the warning is attributed to the caller of search (under mutmut, a
    # trampoline frame sits between the two)
    expected = "trampoline.py" if "mutmut" in sys.modules else __file__
    assert caught[0].filename.endswith(expected)


def test_population_sample_size_and_parallel_are_checked_by_name():
    big = S.MAX_BUDGET + 1
    for kwargs, message in [
        ({"population_size": 0}, "population_size must be an integer >= 1, got 0"),
        ({"population_size": big}, f"population_size must be an integer <= 100000, got {big}"),
        ({"sample_size": 0}, "sample_size must be an integer >= 1, got 0"),
        ({"sample_size": big}, f"sample_size must be an integer <= 100000, got {big}"),
        ({"parallel": big}, f"parallel must be an integer <= 100000, got {big}"),
        ({"budget": big}, f"budget must be an integer <= 100000, got {big}"),
    ]:

        def evaluator(arch):
            raise RuntimeError("a search ran")

        with raises(ValueError, message):
            S.search(SPACE, evaluator, lat_of, 4.0, max_failures=0, **kwargs)


def test_digits_evaluator_trains_on_its_own_data_and_stores_uncached(tmp_path, monkeypatch):
    import json

    import effnb.train
    from effnb.data import digits
    from effnb.train import EpochStats, TrainResult

    seen = []

    def fake_train(model, train_set, val_set, config):
        seen.append(train_set.tensors[0])
        hist = (EpochStats(1, 1.0, 0.5, 1.0, 0.5, 0.0),)
        return TrainResult(hist, 0.5, 0.5, 1.0, 0)

    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    monkeypatch.setattr(effnb.train, "train", fake_train)
    arch = TINY.sample(np.random.default_rng(1))
    ev = S.DigitsEvaluator(TINY, image_size=8, epochs=1, seed=3)
    assert ev(arch).cached is False
    assert torch.equal(seen[0], digits(image_size=8, seed=3)[0].tensors[0])
    (path,) = tmp_path.rglob("*.json")
    data = json.loads(path.read_text())
    assert data["value"]["cached"] is False
    # an implausible stored evaluation is refused and trained again
    data["value"]["accuracy"] = 2.0
    path.write_text(json.dumps(data))
    with pytest.warns(Warning, match="accuracy=2.0 is not a finite number in"):
        assert ev(arch).accuracy == 0.5
    assert len(seen) == 2
