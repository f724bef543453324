"""effnb.nas.scale's Optuna adapter: two worker processes share one SQLite study; every trial
lands once, and the study's own Pareto front is effnb.nas.pareto_front on the same trials.

Bounded in time: the workers are joined with a timeout and killed if they outlive it.
"""

from __future__ import annotations

import multiprocessing

import optuna
import pytest

from effnb.nas import (
    DigitsEvaluator,
    LatencyPredictor,
    LatencyTable,
    SearchSpace,
    StageSkeleton,
    pareto_front,
)
from effnb.nas.scale import (
    create_study,
    gene_choices,
    load_study,
    optuna_worker,
    study_candidates,
    suggest_architecture,
)

pytestmark = pytest.mark.slow
JOIN_S = 180.0  # both workers together: process start, imports and 2 x 4 tiny trainings

SPACE = SearchSpace(
    kernels=(3, 5),
    expansions=(1, 3, 6),
    se_ratios=(0.0,),
    layers=(1, 2),
    skeleton=(StageSkeleton(8, 1), StageSkeleton(16, 2)),
    stem_channels=8,
    head_channels=32,
)
SIZE = 8


def _predictor() -> LatencyPredictor:
    """Made-up, asymmetric entries: a picklable latency function with distinct values."""
    entries = {f"stem@{SIZE}": 0.05, f"head@{SIZE}": 0.07}
    for i, spec in enumerate(SPACE.all_block_specs(SIZE)):
        entries[spec.key] = 0.1 + 0.0131 * i + 0.0017 * spec.kernel * spec.hidden_channels
    return LatencyPredictor(SPACE, LatencyTable(entries), SIZE, scale=1.1, overhead_ms=0.02)


def test_two_processes_share_one_study_and_its_front_is_effnb_pareto_front(tmp_path):
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    evaluator = DigitsEvaluator(
        SPACE, image_size=SIZE, epochs=1, batch_size=64, seed=0, use_cache=False
    )
    per_worker = (4, 3)  # asymmetric: the count must be the sum, not 2 x either
    create_study(storage, "shared")  # once, before the workers: they would race on the tables
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(
            target=optuna_worker,
            args=(storage, "shared", SPACE, evaluator, _predictor(), n, 10 + i, 4),
        )
        for i, n in enumerate(per_worker)
    ]
    for w in workers:
        w.start()
    try:
        for w in workers:
            w.join(timeout=JOIN_S)
        assert not any(w.is_alive() for w in workers), f"a worker outlived {JOIN_S} s"
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
                w.join(timeout=10)
    assert [w.exitcode for w in workers] == [0, 0]

    study = load_study(storage, "shared")
    trials = study.get_trials()
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(sum(per_worker)))  # every trial once, none lost, none twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]

    cands = study_candidates(storage, "shared", SPACE)
    assert [c.index for c in cands] == numbers
    latency = _predictor()
    for c, t in zip(cands, sorted(trials, key=lambda t: t.number), strict=True):
        assert SPACE.encode(c.arch) == c.code == tuple(t.user_attrs["code"])
        assert c.latency_ms == pytest.approx(latency(c.arch))  # the objective is latency_fn
        assert c.accuracy == t.values[0] and 0 < c.accuracy < 1
        assert c.reward == c.accuracy and c.macs > 0 and c.params > 0  # no target: reward = acc
    # the study's Pareto front is effnb's, as (architecture, accuracy, latency)
    ours = {(c.code, c.accuracy, c.latency_ms) for c in pareto_front(cands)}
    by_number = {c.index: c for c in cands}
    theirs = {(by_number[t.number].code, t.values[0], t.values[1]) for t in study.best_trials}
    assert ours == theirs
    assert 1 <= len(ours) < len(cands) or len(cands) == 1


def test_suggestions_cover_every_searchable_gene_in_the_space_order(tmp_path):
    names = [name for name, *_ in gene_choices(SPACE)]
    # se_ratio has one choice: not searchable; the rest, stage by stage, in GENES order
    assert names == [
        "s0_kernel", "s0_expansion", "s0_layers", "s1_kernel", "s1_expansion", "s1_layers",
    ]  # fmt: skip
    fixed = {"s0_kernel": 5, "s0_expansion": 6, "s0_layers": 1}
    fixed |= {"s1_kernel": 3, "s1_expansion": 3, "s1_layers": 2}
    trial = optuna.trial.FixedTrial(fixed)
    arch = suggest_architecture(trial, SPACE)
    assert SPACE.encode(arch) == (1, 2, 0, 0, 0, 1, 0, 1)


def test_reward_with_a_target_and_bad_arguments(tmp_path):
    storage = f"sqlite:///{tmp_path / 'one.db'}"
    evaluator = DigitsEvaluator(
        SPACE, image_size=SIZE, epochs=1, batch_size=64, seed=0, use_cache=False
    )
    numbers = optuna_worker(storage, "one", SPACE, evaluator, _predictor(), 1, 0)
    assert numbers == [0]
    (c,) = study_candidates(storage, "one", SPACE, target=0.5, constraint="hard")
    expected = c.accuracy * (0.5 / c.latency_ms if c.latency_ms > 0.5 else 1.0)
    assert c.reward == pytest.approx(expected)
    with pytest.raises(ValueError, match="storage must be an RDB URL"):
        optuna_worker("nas.db", "one", SPACE, evaluator, _predictor(), 1, 0)
    with pytest.raises(ValueError, match="n_trials"):
        optuna_worker(storage, "one", SPACE, evaluator, _predictor(), 0, 0)
    with pytest.raises(TypeError, match="space must be a SearchSpace"):
        optuna_worker(storage, "one", "space", evaluator, _predictor(), 1, 0)


def test_a_failing_evaluation_is_told_fail_and_raises(tmp_path):
    storage = f"sqlite:///{tmp_path / 'fail.db'}"
    with pytest.raises(ZeroDivisionError):
        optuna_worker(storage, "f", SPACE, lambda arch: 1 / 0, _predictor(), 2, 0)
    (trial,) = load_study(storage, "f").get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL
