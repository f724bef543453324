"""Checks for notebook 06 (hardware-aware NAS): the regularized-evolution loop, the reward."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from effnb.exercises import exercise, expect_function
from effnb.nas.search import mnasnet_reward, search
from effnb.nas.space import SearchSpace

_SPACE = SearchSpace()


def _fake_score(arch) -> float:
    """A cheap, deterministic, rugged 'score' in [0, 1): one hash per architecture.

    Rugged on purpose: a child is rarely better than the best member, so an early, good
    member stays good for a long time, and only aging removes it.
    """
    digest = hashlib.sha256(repr(_SPACE.encode(arch)).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _history(out, budget: int) -> list[tuple]:
    try:
        pairs = [(arch, float(score)) for arch, score in out]
    except (TypeError, ValueError):
        raise AssertionError(
            "return the history: a list of (architecture, score) pairs, one per evaluation, in "
            f"evaluation order; got {type(out).__name__}"
        ) from None
    return pairs


@exercise(
    "6.1",
    hint="evaluate population_size sampled architectures first; then, until the budget is spent, "
    "draw rng.choice(len(population), size=sample_size, replace=False), mutate the best of "
    "that sample, evaluate and append the child, and drop the oldest member.",
)
def regularized_evolution(fn) -> str:
    fn = expect_function(fn)
    P, S, budget, seed = 5, 2, 60, 7  # noqa: N806 - the paper's symbols
    rng = np.random.default_rng(seed)
    samples: list = []
    mutations: list[tuple] = []  # (parent, child) per call

    def sample():
        samples.append(_SPACE.sample(rng))
        return samples[-1]

    def mutate(arch):
        child = _SPACE.mutate(arch, rng)
        mutations.append((arch, child))
        return child

    history = _history(fn(sample, mutate, _fake_score, budget, P, S, rng), budget)
    if len(history) != budget:
        why = ""
        if len(history) in (budget - P, budget + P):
            why = ": every evaluation counts against the budget, the initial population's too"
        raise AssertionError(f"budget={budget} evaluations expected, got {len(history)}{why}")
    for i, (arch, score) in enumerate(history):
        if score != _fake_score(arch):
            raise AssertionError(
                f"entry {i}: the score should be evaluate(architecture) of that architecture"
            )
    archs = [a for a, _ in history]
    if len(samples) != P or archs[:P] != samples:
        raise AssertionError(
            f"the first population_size={P} evaluations are the random initial population, one "
            f"sample() each; sample() was called {len(samples)} times"
        )
    if len(mutations) != budget - P or [c for _, c in mutations] != archs[P:]:
        raise AssertionError(
            f"each of the {budget - P} cycles after the initial population calls mutate once and "
            f"evaluates the child it returns; mutate was called {len(mutations)} times"
        )
    for j, (parent, _) in enumerate(mutations):
        i = P + j  # the child's position in the history
        population = history[i - P : i]  # aging: the P most recent evaluations
        if parent not in [a for a, _ in population]:
            raise AssertionError(
                f"cycle {j + 1}: the parent was evaluated more than population_size={P} "
                "evaluations earlier, so it should have aged out. Regularized evolution removes "
                "the OLDEST member each cycle; removing the worst is plain tournament selection, "
                "which lets a lucky early member breed forever"
            )
        score = _fake_score(parent)
        below = sum(s <= score for _, s in population) - 1  # members it can beat, not itself
        if below < S - 1:
            raise AssertionError(
                f"cycle {j + 1}: the mutated parent is the worst member of the population, which "
                f"no sample of sample_size={S} has as its best: mutate the best of the drawn "
                "sample, not a random member of the population"
            )
    ref = search(
        _SPACE,
        _fake_score,
        lambda arch: 1.0,
        1.0,
        strategy="evolution",
        budget=budget,
        constraint=(0.0, 0.0),  # reward = score
        seed=seed,
        population_size=P,
        sample_size=S,
    )
    for i, (arch, cand) in enumerate(zip(archs, ref.candidates, strict=True)):
        if arch != cand.arch:
            raise AssertionError(
                f"your run departs from the reference at evaluation {i + 1} although each step "
                "looks legal: draw the sample once per cycle with rng.choice(len(population), "
                "size=sample_size, replace=False) from the population kept oldest first, then "
                "call mutate once (sample, choice and mutate share the one rng)"
            )
    best = max(score for _, score in history)
    return f"the same {budget} evaluations as effnb.nas.search (best score {best:.3f})"


@exercise(
    "6.2",
    hint="reward = accuracy * (latency / target) ** w, where w = alpha if latency <= target "
    "else beta; soft: alpha = beta = -0.07, hard: alpha = 0, beta = -1.",
)
def reward(fn) -> str:
    fn = expect_function(fn)
    acc, target = 0.8, 4.0
    latencies = (1.0, 3.0, 4.0, 6.0, 12.0)  # below, at and above T
    exps = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}  # (alpha, beta), MnasNet Eq. 2

    def w(lat, t, c, swap=False):
        alpha, beta = exps[c]
        return (alpha if lat <= t else beta) if not swap else (beta if lat <= t else alpha)

    wrong = {
        "you raised T / LAT to w; the ratio is LAT / T, so that with w < 0 a slower model "
        "loses reward": lambda a, lat, t, c: a * (t / lat) ** w(lat, t, c),
        "the hard constraint's exponent -1 was applied below T as well: below T the hard "
        "constraint uses alpha = 0, a model gains nothing by being faster than the target": (
            lambda a, lat, t, c: a * (lat / t) ** exps[c][1]
        ),
        "the exponents are swapped between the two sides of T: w = alpha when LAT <= T, "
        "w = beta above": lambda a, lat, t, c: a * (lat / t) ** w(lat, t, c, swap=True),
        "w has the wrong sign: MnasNet's exponents are negative (-0.07; -1 above T)": (
            lambda a, lat, t, c: a * (lat / t) ** -w(lat, t, c)
        ),
    }
    got: dict[tuple, float] = {}
    for constraint in ("soft", "hard"):
        for lat in latencies:
            value = fn(acc, lat, target, constraint)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise AssertionError(
                    f"my_reward({acc}, {lat}, {target}, {constraint!r}) should return a number, "
                    f"got {value!r}"
                ) from None
            got[(constraint, lat)] = value
    bad = [
        k for k, v in got.items() if not math.isclose(v, mnasnet_reward(acc, k[1], target, k[0]))
    ]
    if not bad:
        return "equal to effnb.nas.mnasnet_reward below, at and above T, soft and hard"
    for why, variant in wrong.items():
        if all(math.isclose(v, variant(acc, k[1], target, k[0])) for k, v in got.items()):
            raise AssertionError(why)
    constraint, lat = bad[0]
    value, expected = got[bad[0]], mnasnet_reward(acc, lat, target, constraint)
    side = "below" if lat < target else "at" if lat == target else "above"
    raise AssertionError(
        f"with accuracy {acc}, LAT = {lat} {side} T = {target}, {constraint} constraint: "
        f"{value:.4g} is {'too large' if value > expected else 'too small'}"
    )
