"""effnb.nas: space, latency model (with a fake measure), reward, search and executors."""

import dataclasses
import json
import math
import re
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from effnb.costs import profile
from effnb.layers import InvertedResidual
from effnb.nas import (
    HARD,
    SOFT,
    Architecture,
    DigitsEvaluator,
    Evaluation,
    LatencyPredictor,
    LatencyTable,
    SearchSpace,
    StageChoice,
    build_latency_table,
    measure_networks,
    mnasnet_reward,
    pareto_front,
    repeatability,
    reward,
    search,
    spearman,
    validate,
)
from effnb.nas.latency import (
    SampleTimer,
    bootstrap_difference,
    round_speed,
    source_digest,
    speed_normalised,
    within_share,
)
from effnb.nas.search import Candidate

SPACE = SearchSpace()


def test_space_size_matches_hand_count():
    # 3 kernels x 3 expansions x 2 SE ratios x 3 depths per stage, four stages
    assert SPACE.choices_per_stage == 54
    assert SPACE.size == 54**4 == 8_503_056
    small = SearchSpace(kernels=(3,), expansions=(1, 6), se_ratios=(0,), layers=(1,))
    assert small.size == 2**4
    # the hand count agrees with enumerating a small space
    codes = {small.encode(small.decode(c)) for c in np.ndindex(*small.cardinalities)}
    assert len(codes) == small.size


def test_encode_decode_round_trip_for_sampled_archs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = SPACE.sample(rng)
        assert SPACE.contains(arch)
        code = SPACE.encode(arch)
        assert len(code) == 16
        assert SPACE.decode(code) == arch
        assert 0 <= SPACE.index(arch) < SPACE.size
    assert hash(arch) == hash(SPACE.decode(code))


def test_mutate_changes_exactly_one_gene_and_stays_in_space():
    rng = np.random.default_rng(1)
    for _ in range(200):
        arch = SPACE.sample(rng)
        child = SPACE.mutate(arch, rng)
        assert SPACE.contains(child)
        diff = [a != b for a, b in zip(SPACE.encode(arch), SPACE.encode(child), strict=True)]
        assert sum(diff) == 1


def test_build_output_shape_and_blocks_match_arch():
    arch = Architecture(
        (
            StageChoice(3, 1, 0.0, 1),
            StageChoice(5, 3, 0.25, 2),
            StageChoice(7, 6, 0.0, 3),
            StageChoice(3, 6, 0.25, 1),
        )
    )
    model = SPACE.build(arch, num_classes=7)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert [len(s) for s in model.stages] == [1, 2, 3, 1]
    for stage, choice in zip(model.stages, arch.stages, strict=True):
        for block in stage:
            assert isinstance(block, InvertedResidual)
            assert block.conv_dw.conv.kernel_size == (choice.kernel, choice.kernel)
            assert isinstance(block.se, torch.nn.Identity) == (choice.se_ratio == 0)
            c_in = block.conv_dw.conv.in_channels
            if choice.expansion == 1:
                assert isinstance(block.conv_pw, torch.nn.Identity)
            else:
                assert block.conv_pw.conv.out_channels == c_in
    # first stage: 16 -> 16 channels, expansion 1; second stage's SE squeezes 16 * 0.25 = 4
    assert model.stages[1][0].se.fc1.out_channels == 4
    assert model.stages[1][1].se.fc1.out_channels == 6  # 24 * 0.25
    # the cost model sees it: params equal the module's parameter count
    assert profile(model, input_size=16).params == sum(p.numel() for p in model.parameters())


def test_baselines_are_in_the_space():
    base = SPACE.baselines()
    assert set(base) == {"mobilenet_v2_like", "mobilenet_v2_like_e3"}
    v2 = base["mobilenet_v2_like"]
    assert SPACE.contains(v2)
    assert [s.expansion for s in v2.stages] == [1, 6, 6, 6]
    assert {s.kernel for s in v2.stages} == {3} and {s.se_ratio for s in v2.stages} == {0.0}
    assert [s.expansion for s in base["mobilenet_v2_like_e3"].stages] == [1, 3, 3, 3]


def test_bad_inputs_raise():
    outside = Architecture(tuple(StageChoice(9, 6, 0.0, 2) for _ in range(4)))
    assert not SPACE.contains(outside)
    with pytest.raises(ValueError, match="kernel=9"):
        SPACE.encode(outside)
    with pytest.raises(ValueError, match="kernel=9"):
        SPACE.build(outside)
    with pytest.raises(ValueError, match="stages"):
        SPACE.encode(Architecture(outside.stages[:2]))
    with pytest.raises(ValueError, match="kernels"):
        SearchSpace(kernels=())
    with pytest.raises(ValueError, match="odd"):
        SearchSpace(kernels=(4,))
    with pytest.raises(ValueError, match="gene"):
        SPACE.decode((5,) * 16)
    with pytest.raises(ValueError, match="T"):
        reward(0.9, 1.0, 0.0)
    with pytest.raises(ValueError, match="constraint"):
        mnasnet_reward(0.9, 1.0, 1.0, "medium")
    base = SPACE.baselines()["mobilenet_v2_like"]

    def fake_eval(arch):
        return 0.5

    with pytest.raises(ValueError, match="budget"):
        search(SPACE, fake_eval, lambda a: 1.0, 1.0, budget=0)
    with pytest.raises(ValueError, match="target"):
        search(SPACE, fake_eval, lambda a: 1.0, -2.0)
    with pytest.raises(ValueError, match="strategy"):
        search(SPACE, fake_eval, lambda a: 1.0, 1.0, strategy="rl")
    assert SPACE.contains(base)


@pytest.mark.parametrize(
    "constraint, ratio, expected",
    [
        ("soft", 1.0, 1.0),
        ("soft", 2.0, 2**-0.07),
        ("soft", 0.5, 0.5**-0.07),
        ("hard", 1.0, 1.0),
        ("hard", 2.0, 0.5),
        ("hard", 0.5, 1.0),
    ],
)
def test_reward_at_known_points(constraint, ratio, expected):
    target = 20.0
    assert mnasnet_reward(0.8, ratio * target, target, constraint) == pytest.approx(0.8 * expected)
    alpha, beta = SOFT if constraint == "soft" else HARD
    assert reward(0.8, ratio * target, target, alpha, beta) == pytest.approx(0.8 * expected)


def test_soft_reward_numbers():
    # doubling latency costs 1 - 2**-0.07 = 4.7% of the reward
    assert 1 - mnasnet_reward(1.0, 2.0, 1.0) == pytest.approx(0.04737, abs=1e-5)


def _fake_measure(module, shape):
    """Deterministic 'latency': 1 ms per million MACs + 0.1 ms per module call."""
    rep = profile(module, input_size=shape)
    return rep.macs / 1e6 + 0.1


def test_latency_table_and_predictor_with_fake_measure():
    space = SearchSpace(kernels=(3, 5), expansions=(1, 6), se_ratios=(0.0,), layers=(1, 2))
    table = build_latency_table(space, 16, measure=_fake_measure, rounds=1)
    assert len(table) == len(space.all_block_specs(16)) + 2  # blocks + stem + head
    pred = LatencyPredictor(space, table, 16)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(10)]
    sums = np.array([pred.block_sum(a) for a in archs])
    # block sum = sum over pieces of MACs/1e6 + 0.1 per piece
    arch = archs[0]
    n_pieces = len(space.block_specs(arch, 16)) + 2
    whole = profile(space.build(arch), input_size=16).macs / 1e6
    assert pred.block_sum(arch) == pytest.approx(whole + 0.1 * n_pieces)
    # a fake 'whole-network' truth: 1.5 x the sum + 2 ms; the fit recovers it exactly
    truth = 1.5 * sums + 2.0
    fitted = pred.fit(archs[:4], truth[:4])
    assert fitted.scale == pytest.approx(1.5) and fitted.overhead_ms == pytest.approx(2.0)
    report = validate(fitted, archs[4:], truth[4:])
    assert report.within_10 == 1.0 and report.spearman_rho == pytest.approx(1.0)
    # uncalibrated predictions undershoot by a third or more: none within 10%
    raw = validate(pred, archs[4:], truth[4:])
    assert raw.within_10 == 0.0 and raw.mean_abs_pct_error > 30


TINY = SearchSpace(kernels=(3,), expansions=(1, 6), se_ratios=(0.0,), layers=(1, 2))


def _drifting_measure(n_pieces: int, speeds: list[float]):
    """Fake 'latency' = parameter count / 1e4 ms, times the machine's speed in this round."""
    calls = []

    def measure(module, shape):
        calls.append(id(module))
        r = (len(calls) - 1) // n_pieces
        return speeds[r] * sum(p.numel() for p in module.parameters()) / 1e4

    return measure, calls


def test_table_and_networks_share_one_interleaved_run_and_drift_cancels():
    rng = np.random.default_rng(0)
    archs = [TINY.sample(rng) for _ in range(3)]
    archs = list(dict.fromkeys(archs))  # distinct
    n_blocks = len(TINY.all_block_specs(16)) + 2
    speeds = [1.0, 1.6, 0.8, 1.25]  # a VM that jumps between speeds from round to round
    measure, calls = _drifting_measure(n_blocks + len(archs), speeds)
    table = build_latency_table(TINY, 16, networks=archs, measure=measure, rounds=4)
    # every round takes one sample of every piece, networks included, in a new order
    assert len(calls) == 4 * (n_blocks + len(archs))
    first, second = (
        calls[: n_blocks + len(archs)],
        calls[n_blocks + len(archs) : 2 * (n_blocks + len(archs))],
    )
    assert sorted(first) == sorted(second) and first != second
    # the round factors are recovered relative to the run's median speed, and cancel exactly
    assert table.meta["round_speed"] == pytest.approx(
        np.array(speeds) / np.median(speeds), abs=1e-4
    )
    norm = np.median(speeds)
    blocks = TINY.all_block_specs(16)
    want = sum(p.numel() for p in blocks[0].build().parameters()) / 1e4
    assert table[blocks[0].key] == pytest.approx(want * norm)
    whole = np.array([sum(p.numel() for p in TINY.build(a).parameters()) / 1e4 for a in archs])
    assert table.network_ms(archs) == pytest.approx(whole * norm)
    rounds = table.network_rounds(archs)
    assert rounds.shape == (4, len(archs))
    assert rounds == pytest.approx(np.tile(whole * norm, (4, 1)))  # normalised rounds agree
    assert repeatability(rounds) == 1.0
    with pytest.raises(KeyError, match="not measured with this table"):
        table.network_ms([next(a for a in iter(lambda: TINY.sample(rng), None) if a not in archs)])


def test_latency_table_save_load_round_trip(tmp_path):
    arch = TINY.sample(np.random.default_rng(1))
    n = len(TINY.all_block_specs(16)) + 3
    measure, _ = _drifting_measure(n, [1.0, 2.0])
    table = build_latency_table(TINY, 16, networks=[arch], measure=measure, rounds=2)
    table.save(tmp_path / "t.json")
    again = LatencyTable.load(tmp_path / "t.json")
    assert again == table
    assert again.network_ms([arch]).tolist() == table.network_ms([arch]).tolist()


def test_round_speed_and_normalisation_by_hand():
    per = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 8.0], [1.0, 2.0, 40.0]])
    # per-piece medians 1, 2, 8; round 2 is twice as slow; round 3 has one outlier sample
    assert round_speed(per).tolist() == pytest.approx([1.0, 2.0, 1.0])
    norm = speed_normalised(per)
    assert norm[1].tolist() == pytest.approx([1.0, 2.0, 4.0])
    assert np.median(norm, axis=0).tolist() == pytest.approx([1.0, 2.0, 4.0])
    # judged from the first two pieces only, round 3's outlier does not move its factor
    assert round_speed(per, slice(0, 2)).tolist() == pytest.approx([1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="per_round"):
        round_speed(np.ones(3))


def test_measure_networks_interleaves_and_repeatability():
    archs = list(SPACE.baselines().values())
    measure, calls = _drifting_measure(len(archs), [1.0, 3.0, 1.0, 1.0])
    med, per_round = measure_networks(SPACE, archs, 16, measure=measure, rounds=4)
    assert per_round.shape == (4, 2) and len(calls) == 8
    whole = [sum(p.numel() for p in SPACE.build(a).parameters()) / 1e4 for a in archs]
    assert med.tolist() == pytest.approx(whole)  # the slow round is normalised away
    assert repeatability(np.array([[10.0, 10.0, 10.0], [10.5, 12.0, 9.2]])) == pytest.approx(2 / 3)


def test_sample_timer_calibrates_once_and_rejects_bad_settings():
    timer = SampleTimer(threads=1, sample_ms=1.0, warmup=1)
    block = InvertedResidual(8, 8, hidden_channels=16)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        t1 = timer(block, (8, 8, 8))
        t2 = timer(block, (8, 8, 8))
        assert torch.get_num_threads() == 2  # the caller's setting is left alone
    finally:
        torch.set_num_threads(threads)
    assert t1 > 0 and t2 > 0 and len(timer._prepared) == 1
    _, _, number = timer._prepared[id(block)]
    assert number >= 1
    with pytest.raises(ValueError, match="sample_ms"):
        SampleTimer(sample_ms=0)
    with pytest.raises(ValueError, match="rounds"):
        build_latency_table(TINY, 16, measure=_fake_measure, rounds=0)
    with pytest.raises(ValueError, match="outside|not in|space"):
        build_latency_table(
            TINY, 16, networks=[SPACE.baselines()["mobilenet_v2_like"]], measure=_fake_measure
        )


def test_spearman_matches_scipy_and_handles_ties():
    x = [1, 2, 2, 5, 3, 9, 0]
    y = [2, 1, 4, 6, 3, 8, 1]
    scipy_stats = pytest.importorskip("scipy.stats")
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def _fake_accuracy(arch):
    """A cheap deterministic 'accuracy' that prefers large kernels and more layers."""
    score = sum(s.kernel / 7 + s.layers / 3 + s.expansion / 6 for s in arch.stages)
    return Evaluation(accuracy=score / (3 * len(arch.stages)), params=1, macs=1)


def _fake_latency(arch):
    return float(sum(s.layers * s.expansion * s.kernel for s in arch.stages))


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_search_returns_best_by_reward(strategy):
    target = 150.0
    res = search(SPACE, _fake_accuracy, _fake_latency, target, strategy=strategy, budget=30, seed=3)
    assert len(res.candidates) == 30
    assert [c.index for c in res.candidates] == list(range(30))
    for c in res.candidates:
        expect = mnasnet_reward(_fake_accuracy(c.arch).accuracy, _fake_latency(c.arch), target)
        assert c.reward == pytest.approx(expect)
    assert res.best.reward == max(c.reward for c in res.candidates)
    curve = res.best_reward_so_far()
    assert curve[-1] == res.best.reward and all(
        a <= b for a, b in zip(curve[:-1], curve[1:], strict=True)
    )
    # the same seed gives the same search
    again = search(
        SPACE, _fake_accuracy, _fake_latency, target, strategy=strategy, budget=30, seed=3
    )
    assert [c.code for c in again.candidates] == [c.code for c in res.candidates]


def test_evolution_beats_random_on_a_smooth_fake_problem():
    wins = 0
    for seed in range(5):
        kw = {"budget": 40, "seed": seed, "constraint": "hard"}
        evo = search(SPACE, _fake_accuracy, _fake_latency, 300.0, strategy="evolution", **kw)
        rnd = search(SPACE, _fake_accuracy, _fake_latency, 300.0, strategy="random", **kw)
        wins += evo.best.reward >= rnd.best.reward
    assert wins >= 3


def test_evolution_children_are_one_mutation_from_a_population_member():
    res = search(
        SPACE, _fake_accuracy, _fake_latency, 100.0, budget=20, population_size=5, sample_size=2
    )
    for i, child in enumerate(res.candidates[5:], start=5):
        # the parent is among the five before it (aging population of 5)
        dists = [
            sum(a != b for a, b in zip(child.code, p.code, strict=True))
            for p in res.candidates[i - 5 : i]
        ]
        assert min(dists) == 1


def test_pareto_front():
    arch = SPACE.baselines()["mobilenet_v2_like"]

    def cand(i, acc, lat):
        code = (i,) + (0,) * 15
        return Candidate(i, arch, code, acc, lat, acc)

    cands = [
        cand(0, 0.9, 10),
        cand(1, 0.95, 20),
        cand(2, 0.85, 15),
        cand(3, 0.97, 30),
        cand(4, 0.8, 5),
    ]
    front = pareto_front(cands)
    assert [c.index for c in front] == [4, 0, 1, 3]


def test_process_pool_executor_works():
    with ProcessPoolExecutor(max_workers=2) as pool:
        res = search(
            SPACE,
            _fake_accuracy,
            _fake_latency,
            150.0,
            strategy="evolution",
            budget=12,
            population_size=4,
            sample_size=2,
            parallel=2,
            executor=pool,
            seed=0,
        )
    assert len(res.candidates) == 12
    for c in res.candidates:
        assert c.accuracy == pytest.approx(_fake_accuracy(c.arch).accuracy)
    assert math.isfinite(res.best.reward)


def test_lesson_figures_and_reward_text():
    from effnb.lessons import nas as lesson

    fig = lesson.plot_latency_validation(
        [1.0, 2.0, 3.0], {"table": [1.0, 2.2, 2.9], "macs": [2, 2, 2]}
    )
    ax = fig.axes[0]
    table_pts, macs_pts = ax.collections[-2].get_offsets(), ax.collections[-1].get_offsets()
    assert table_pts[:, 1].tolist() == [1.0, 2.2, 2.9] and macs_pts[:, 1].tolist() == [2, 2, 2]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["+-10%", "table", "macs"]

    arch = SPACE.baselines()["mobilenet_v2_like"]
    cands = [
        Candidate(0, arch, (0,), 0.90, 2.0, 0.90),
        Candidate(1, arch, (1,), 0.95, 3.0, 0.93),
        Candidate(2, arch, (2,), 0.80, 2.5, 0.80),  # dominated: off the front
    ]
    fig = lesson.plot_search({"evolution": cands}, {"found": (2.5, [0.9, 0.94, 0.92])})
    left, right = fig.axes
    assert left.lines[0].get_ydata().tolist() == [0.90, 0.93, 0.93]  # best reward so far
    front = right.lines[0]
    assert front.get_xdata().tolist() == [2.0, 3.0] and front.get_ydata().tolist() == [90, 95]
    bar = right.containers[0]  # mean 92% with a bar from the lowest to the highest seed
    assert bar.lines[0].get_ydata().tolist() == pytest.approx([92.0])
    low, high = bar.lines[2][0].get_segments()[0][:, 1]
    assert (low, high) == pytest.approx((90.0, 94.0))

    text, _ = lesson.reward_curve_view(w=-0.5, ratio=4.0)
    # 4 ** -0.5 = 50.0%; soft: 4 ** -0.07 = 90.8%; hard: 1/4 = 25.0%
    assert "50.0% of the accuracy with w = -0.5" in text
    assert "soft: 90.8%" in text and "hard: 25.0%" in text


def test_bootstrap_difference_resolves_a_better_predictor_and_not_a_tie():
    rng = np.random.default_rng(0)
    measured = rng.uniform(1, 10, 40)
    good = measured * rng.uniform(0.97, 1.03, 40)
    bad = measured * rng.uniform(0.6, 1.4, 40)
    lo, diff, hi = bootstrap_difference(spearman, measured, good, bad, n_boot=500)
    assert diff == pytest.approx(spearman(good, measured) - spearman(bad, measured))
    assert 0 < lo <= diff <= hi
    lo, diff, hi = bootstrap_difference(within_share, measured, bad, good, n_boot=500)
    assert hi < 0  # arguments swapped: the bad predictor minus the good one
    assert bootstrap_difference(spearman, measured, good, good, n_boot=50) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="length"):
        bootstrap_difference(spearman, measured, good[:5], bad)


def test_latency_table_cache_is_keyed_by_the_code_that_measured_it(tmp_path, monkeypatch):
    import effnb.nas.latency as latency

    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    kw = {"rounds": 1, "sample_ms": 0.2}
    first = build_latency_table(TINY, 8, **kw)
    assert first.meta["source"] == latency._table_source()
    assert build_latency_table(TINY, 8, **kw) == first  # served from the cache
    assert len(list(tmp_path.glob("nas-latency-table-*.json"))) == 1
    monkeypatch.setattr(latency, "_table_source", lambda: "edited layers")
    again = build_latency_table(TINY, 8, **kw)  # another key: measured afresh, not served
    assert again.meta["source"] == "edited layers"
    assert len(list(tmp_path.glob("nas-latency-table-*.json"))) == 2
    assert source_digest(latency.spearman) != source_digest(latency.within_share)


def _fake_train(model, train_set, val_set, config):
    """Instant stand-in for effnb.train.train: accuracy 0.5 + seed / 10."""
    from effnb.train import EpochStats, TrainResult

    _fake_train.calls += 1
    acc = 0.5 + config.seed / 10
    hist = (EpochStats(1, 1.0, acc, 1.0, acc, 0.0),)
    return TrainResult(hist, acc, acc, 0.25, sum(p.numel() for p in model.parameters()))


def test_digits_evaluator_cache_is_keyed_and_refuses_stale_entries(tmp_path, monkeypatch):
    import warnings

    import effnb.train

    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    monkeypatch.setattr(effnb.train, "train", _fake_train)
    _fake_train.calls = 0
    arch = TINY.sample(np.random.default_rng(0))
    ev = DigitsEvaluator(TINY, image_size=8, epochs=1)
    first = ev(arch)
    assert (first.accuracy, first.seconds, first.cached, _fake_train.calls) == (0.5, 0.25, False, 1)
    assert first.params == sum(p.numel() for p in TINY.build(arch).parameters())
    again = ev(arch)
    assert again == dataclasses.replace(first, cached=True) and _fake_train.calls == 1
    key = ev.cache_key(arch)
    assert {"code", "train", "data", "init", "source", "torch"} <= set(key)
    # another seed changes the initial weights and the split: a new training
    assert DigitsEvaluator(TINY, image_size=8, epochs=1, seed=2)(arch).accuracy == 0.7
    assert _fake_train.calls == 2
    # an entry whose stored key does not match its file name's key is ignored and retrained
    entries = (tmp_path / "nas-evals").glob("*.json")
    (path,) = [p for p in entries if json.loads(p.read_text())["value"]["accuracy"] == 0.5]
    path.write_text(path.read_text().replace('"init": "', '"init": "x'))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ev(arch).cached is False and _fake_train.calls == 3
    assert any("another key" in str(w.message) for w in caught)
    # editing the source of the layers or of the training loop changes the key
    monkeypatch.setattr("effnb.nas.latency.source_digest", lambda *objs: "edited")
    assert ev.cache_key(arch)["source"] == "edited" != key["source"]


def _solution_namespaces(ex_id):
    """(label, namespace) for the solution and each wrong answer of exercise ``ex_id``."""
    import pathlib
    from collections import deque

    from effnb.exercises.solutions import parse

    root = pathlib.Path(__file__).resolve().parent.parent
    answers = parse(root / "solutions" / "06_nas.py")[ex_id]
    for label, source in [("solution", answers.solution), *answers.wrong]:
        namespace = {"deque": deque, "np": np}
        exec(source, namespace)
        yield label, next(v for k, v in namespace.items() if k.startswith("my_"))


@pytest.mark.parametrize("ex_id", ["6.1", "6.2"])
def test_exercise_checks_pass_the_solution_and_name_each_wrong_answer(ex_id, capsys):
    from effnb.exercises import check

    for label, fn in _solution_namespaces(ex_id):
        if label == "solution":
            check(ex_id, fn)
            assert f"Exercise {ex_id}: correct" in capsys.readouterr().out
        else:
            with pytest.raises(AssertionError, match=f"(?i){re.escape(label)}"):
                check(ex_id, fn)


def test_evolution_check_rejects_an_untouched_budget_and_a_plain_greedy_loop():
    from effnb.exercises import check

    def no_initial_population(sample, mutate, evaluate, budget, population_size, sample_size, rng):
        pop = [(a, evaluate(a)) for a in (sample() for _ in range(population_size))]
        history = []
        for _ in range(budget):
            child = mutate(max(pop, key=lambda m: m[1])[0])
            history.append((child, evaluate(child)))
        return history

    with pytest.raises(AssertionError, match="initial population"):
        check("6.1", no_initial_population)

    def greedy(sample, mutate, evaluate, budget, population_size, sample_size, rng):
        history = [(a, evaluate(a)) for a in (sample() for _ in range(population_size))]
        while len(history) < budget:
            pop = history[-population_size:]
            child = mutate(max(pop, key=lambda m: m[1])[0])  # no tournament: always the best
            history.append((child, evaluate(child)))
        return history

    with pytest.raises(AssertionError, match="departs from the reference"):
        check("6.1", greedy)
