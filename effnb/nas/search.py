"""Reward, evaluators and two search strategies: random search and regularized evolution.

Reward (MnasNet, Tan et al., arXiv 1807.11626, Eq. 2)::

    R(m) = ACC(m) * (LAT(m) / T) ** w,   w = alpha if LAT(m) <= T else beta

- soft constraint: alpha = beta = -0.07 (MnasNet's choice: doubling latency costs about 5%
  of the reward on either side of T, so slightly slow but accurate models still win);
- hard constraint: alpha = 0, beta = -1 (no reward for being faster than T; above T the
  reward falls as T / LAT).

EfficientNet-B0's search used the same reward with FLOPs in place of latency (T = 400M).

Regularized evolution (Real et al., arXiv 1802.01548, Algorithm 1): a population of P
random architectures; each cycle draws S of them at random, mutates the best of the
sample (by reward) and adds the child, removing the OLDEST member (aging), not the worst.
Random search draws every candidate uniformly. Both get the same number of evaluations.

Candidates are evaluated through a ``concurrent.futures.Executor``: the default runs them
synchronously in this process; ``ProcessPoolExecutor`` spreads them over cores; Dask's
``Client.get_executor()`` and Ray's ``ray.util.ActorPool``-backed executors implement the
same interface and can be passed unchanged.

Latency is never measured while evaluations are running. ``latency_fn`` runs in the
search's own process, and ``search`` calls it only once every evaluation of the current wave
has finished (random search: all of them; evolution: the ``parallel`` children of a cycle)
and before the next wave is submitted. A predictor (``LatencyPredictor``) does not care, but
a ``latency_fn`` that times the network on this machine would otherwise share the cores
with the training processes of the other candidates: its milliseconds would measure the
neighbours' load, not the network, and differ from run to run with the pool's size.

One failing evaluation does not lose the others. An evaluator that raises, or returns an
implausible result (an accuracy outside [0, 1] or NaN, negative params or MACs, a negative
or non-finite time), and a ``latency_fn`` that raises or returns anything but a finite
number > 0, make that candidate a ``Failure`` (its index, architecture, code, which step
failed, the exception's type, message and traceback) with a ``SearchWarning``; the search
goes on with the others, and ``SearchResult.failures`` lists them. A failure counts
against the budget (it was an evaluation) and does not join evolution's population. The
search stops with a ``SearchError`` whose ``result`` holds every finished evaluation and
every failure so far when the executor itself breaks (a worker process killed, say), when
more than ``max_failures`` evaluations have failed, or when none succeeded. ``DigitsEvaluator`` caches each evaluation on
disk under a key of everything that can change it (architecture, config, seed, data, initial
weights, source code), so a re-run does not retrain and a stale result is never served.
Notebook 06 writes the evolution loop on the page and checks it against ``search``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch

from effnb._checks import (
    _unwrap,
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_real,
    check_seed,
)
from effnb.nas.space import Architecture, SearchSpace

__all__ = [
    "HARD",
    "SOFT",
    "Candidate",
    "DigitsEvaluator",
    "Evaluation",
    "Failure",
    "SearchError",
    "SearchResult",
    "SearchWarning",
    "SynchronousExecutor",
    "mnasnet_reward",
    "pareto_front",
    "reward",
    "search",
]

SOFT = (-0.07, -0.07)  # (alpha, beta): MnasNet's soft constraint
HARD = (0.0, -1.0)  # (alpha, beta): MnasNet's hard constraint


MIN_EXPONENT = -10.0  # below this a 10% change in latency moves the reward by more than 2.6x
MAX_BUDGET = 100_000  # evaluations in one search; more is a typo, not a search


def _exponent(name: str, value: Any) -> float:
    """alpha or beta: a finite number in [MIN_EXPONENT, 0].

    A positive exponent would reward slower networks; MnasNet's are -0.07 (soft) and 0, -1
    (hard), and 0 makes the reward the accuracy alone.
    """
    return check_real(name, value, minimum=MIN_EXPONENT, maximum=0.0)


def reward(
    accuracy: float, latency: float, target: float, alpha: float = -0.07, beta: float = -0.07
) -> float:
    """ACC * (LAT / T) ** w with w = alpha if LAT <= T else beta (MnasNet, arXiv 1807.11626).

    ``accuracy`` must be in [0, 1]; ``latency`` and ``target`` finite and > 0, in the same
    unit; ``alpha`` and ``beta`` finite and in [-10, 0] (a positive exponent would reward a
    slower network). Python numbers, numpy scalars and 0-d tensors are accepted. Anything else
    is a TypeError or ValueError naming the argument, before any arithmetic.
    """
    accuracy = check_real("accuracy", accuracy, minimum=0.0, maximum=1.0)
    latency = check_real("latency", latency, minimum=0.0, include_minimum=False)
    target = check_real("target latency T", target, minimum=0.0, include_minimum=False)
    alpha, beta = _exponent("alpha", alpha), _exponent("beta", beta)
    w = alpha if latency <= target else beta
    try:
        factor = (latency / target) ** w
    except (OverflowError, ZeroDivisionError):  # LAT / T beyond float range, either way
        factor = math.inf
    if not math.isfinite(factor):  # only alpha < 0 with LAT many orders of magnitude below T
        raise ValueError(
            f"the reward overflows: (latency / target) ** alpha = ({latency} / {target}) ** "
            f"{alpha}; latency and target must be in the same unit"
        )
    return float(accuracy * factor)


def mnasnet_reward(
    accuracy: float, latency: float, target: float, constraint: str | tuple[float, float] = "soft"
) -> float:
    """``reward`` with MnasNet's soft (alpha = beta = -0.07) or hard (0, -1) exponents, or an
    explicit ``(alpha, beta)`` pair."""
    alpha, beta = _constraint(constraint)
    return reward(accuracy, latency, target, alpha, beta)


def _constraint(constraint: Any) -> tuple[float, float]:
    """'soft' -> SOFT, 'hard' -> HARD, or a pair (alpha, beta) of exponents in [-10, 0]."""
    if isinstance(constraint, str):
        table = {"soft": SOFT, "hard": HARD}
        return table[check_choice("constraint", constraint, ("soft", "hard"))]
    if isinstance(constraint, Sequence | np.ndarray):
        if len(constraint) != 2:
            raise ValueError(
                "constraint must be 'soft', 'hard' or a pair (alpha, beta), got a sequence of "
                f"{len(constraint)}: {constraint!r}"
            )
        return (
            _exponent("constraint[0] (alpha)", constraint[0]),
            _exponent("constraint[1] (beta)", constraint[1]),
        )
    raise TypeError(
        "constraint must be 'soft', 'hard' or a pair (alpha, beta), "
        f"got {constraint!r} ({type(constraint).__name__})"
    )


class SynchronousExecutor(Executor):
    """An Executor that runs each call at ``submit`` time in this process (the default)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future


@dataclass(frozen=True)
class Evaluation:
    """What training a candidate produced."""

    accuracy: float  # validation accuracy in [0, 1]
    params: int = 0
    macs: int = 0  # conv + linear multiply-accumulates at the evaluator's input size
    seconds: float = 0.0  # wall time of the training when it ran (kept in the cache)
    cached: bool = False  # True when read from the on-disk cache


@dataclass(frozen=True)
class DigitsEvaluator:
    """Accuracy of an architecture after a short, seeded training on digits (effnb.train).

    A frozen dataclass of plain values, so it pickles into worker processes. ``seed`` seeds
    the initial weights, the data order and the train/val split (``effnb.data.digits``).
    Results are cached as one JSON file per evaluation under ``cache_dir()/nas-evals/``,
    keyed by everything that can change the result: the architecture's code and the space,
    the image size, the training config, the seed, the bytes of the data, the initial
    weights, the source of the layers, the network builder and the training loop, and the
    torch version (``effnb._cache`` refuses an entry stored under another key). Set
    ``use_cache=False`` to always train.
    """

    space: SearchSpace
    image_size: int = 16  # digits are 8x8: 16 px keeps four strides meaningful and cheap
    epochs: int = 3  # enough to rank candidates; absolute accuracy is not the point
    batch_size: int = 32  # more steps per epoch than 64: learns faster in few epochs
    lr: float = 0.1  # high with a cosine decay to 0: short runs need big early steps
    weight_decay: float = 5e-4
    seed: int = 0  # seeds the weights, the data order and the split
    threads: int = 1  # one per process; run processes in parallel instead
    use_cache: bool = True

    def train_config(self):
        from effnb.train import TrainConfig

        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=self.seed,
            threads=self.threads,
            progress=False,
        )

    def cache_key(self, arch: Architecture, model=None, data=None) -> dict:
        """The full key of ``arch``'s evaluation (builds the seeded model and loads the data
        when they are not given)."""
        from effnb import _cache, layers, train
        from effnb.data import digits
        from effnb.models import net
        from effnb.nas import space as space_module
        from effnb.nas.latency import source_digest
        from effnb.train import _fingerprint

        if model is None:
            torch.manual_seed(self.seed)
            model = self.space.build(arch, num_classes=10)
        if data is None:
            data = digits(image_size=self.image_size, seed=self.seed)
        cfg = dataclasses.asdict(self.train_config())
        for name in ("progress", "threads", "device"):
            cfg.pop(name)
        return {
            "space": repr(self.space),
            "code": list(self.space.encode(arch)),
            "image_size": self.image_size,
            "train": cfg,
            "data": [_fingerprint(d) for d in data],
            "init": _cache.state_digest(model.state_dict()),
            "source": source_digest(layers, net, space_module, train.train),
            "torch": torch.__version__,
        }

    def __call__(self, arch: Architecture) -> Evaluation:
        from effnb import _cache
        from effnb.costs import profile
        from effnb.data import digits
        from effnb.train import train

        torch.manual_seed(self.seed)
        model = self.space.build(arch, num_classes=10)
        data = digits(image_size=self.image_size, seed=self.seed)
        key = self.cache_key(arch, model, data)
        path = _cache.cache_dir() / "nas-evals" / f"{_cache.key_digest(key)}.json"
        if self.use_cache:
            value = _cache.read_entry(path, key, _check_evaluation)
            if value is not None:
                return Evaluation(**{**value, "cached": True})
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # the counting pass too: on a busy machine a
        try:  # second thread mostly waits for the first
            report = profile(model, input_size=self.image_size)
            result = train(model, *data, self.train_config())
        finally:
            torch.set_num_threads(threads)
        ev = Evaluation(result.final_val_acc, report.params, report.macs, result.seconds)
        if self.use_cache:
            _cache.write_entry(path, key, {**dataclasses.asdict(ev), "cached": False})
        return ev


def _evaluation_problem(accuracy: Any, params: Any, macs: Any, seconds: Any) -> str | None:
    """Why an evaluation is implausible (None if it is not): accuracy finite in [0, 1],
    params and MACs non-negative integers, seconds finite and >= 0."""
    acc = _unwrap(accuracy)
    if isinstance(acc, bool) or not isinstance(acc, int | float) or not 0 <= acc <= 1:
        return f"accuracy={accuracy!r} is not a finite number in [0, 1]"
    for name, value in (("params", params), ("macs", macs)):
        v = _unwrap(value)
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 0:
            return f"{name}={value!r} is not a non-negative integer"
    sec = _unwrap(seconds)
    if isinstance(sec, bool) or not isinstance(sec, int | float) or not 0 <= sec < math.inf:
        return f"seconds={seconds!r} is not a finite number >= 0"
    return None


def _check_evaluation(value: Mapping[str, Any]) -> str | None:
    """The cache's validator: why a stored evaluation must not be served (None if it may)."""
    if set(value) != {f.name for f in dataclasses.fields(Evaluation)}:
        return f"its fields {sorted(value)} are not an Evaluation's"
    problem = _evaluation_problem(
        value["accuracy"], value["params"], value["macs"], value["seconds"]
    )
    if problem is None and not isinstance(value["cached"], bool):
        problem = f"cached={value['cached']!r} is not true or false"
    return problem


def _as_evaluation(value: Any) -> Evaluation:
    """An evaluator's return value (an Evaluation or a bare accuracy) as a checked Evaluation
    of plain Python numbers; TypeError or ValueError saying what is wrong with it."""
    if not isinstance(value, Evaluation):
        acc = _unwrap(value)
        if isinstance(acc, bool) or not isinstance(acc, int | float):
            raise TypeError(
                "the evaluator must return an Evaluation or an accuracy in [0, 1], got "
                f"{value!r} ({type(value).__name__})"
            )
        value = Evaluation(accuracy=acc)
    problem = _evaluation_problem(value.accuracy, value.params, value.macs, value.seconds)
    if problem is not None:
        raise ValueError(f"the evaluator returned {problem}")
    return Evaluation(
        accuracy=float(_unwrap(value.accuracy)),
        params=int(_unwrap(value.params)),
        macs=int(_unwrap(value.macs)),
        seconds=float(_unwrap(value.seconds)),
        cached=bool(value.cached),
    )


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture, in evaluation order."""

    index: int  # 0-based position in the evaluation sequence (failures take positions too)
    arch: Architecture
    code: tuple[int, ...]
    accuracy: float
    latency_ms: float  # predicted by the latency function the search was given
    reward: float
    params: int = 0
    macs: int = 0
    seconds: float = 0.0  # training wall time when it ran (also for cached results)
    cached: bool = False


@dataclass(frozen=True)
class Failure:
    """One candidate whose evaluation, latency or reward failed; kept in evaluation order.

    ``step`` is ``"evaluation"`` (the evaluator raised or returned an implausible result),
    ``"latency"`` (``latency_fn`` raised or returned anything but a finite number > 0) or
    ``"reward"``. The exception is kept as text (its type, message and the formatted
    traceback, with a worker process's own traceback when the executor sends it), so a
    result can be pickled and saved whatever the exception was.
    """

    index: int  # 0-based position in the evaluation sequence
    arch: Architecture
    code: tuple[int, ...]
    step: str
    error_type: str  # e.g. "ValueError"
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return (
            f"candidate {self.index} ({self.arch}; code {self.code}): {self.step} failed with "
            f"{self.error_type}: {self.message}"
        )


@dataclass(frozen=True)
class SearchResult:
    strategy: str
    candidates: tuple[Candidate, ...]
    target_ms: float
    alpha: float
    beta: float
    seconds: float  # wall time of the search
    failures: tuple[Failure, ...] = ()  # candidates that failed, in evaluation order

    @property
    def best(self) -> Candidate:
        """Highest reward (ties: the earlier candidate)."""
        if not self.candidates:
            raise ValueError(
                f"this search has no finished candidate ({len(self.failures)} failed); "
                "see .failures"
            )
        return max(self.candidates, key=lambda c: (c.reward, -c.index))

    def best_reward_so_far(self) -> list[float]:
        out, best = [], -np.inf
        for c in self.candidates:
            best = max(best, c.reward)
            out.append(best)
        return out

    def pareto_front(self) -> list[Candidate]:
        return pareto_front(self.candidates)


class SearchWarning(UserWarning):
    """A candidate failed; the search goes on with the others (see ``SearchResult.failures``)."""


class SearchError(RuntimeError):
    """The search stopped early. ``result`` is a ``SearchResult`` of every evaluation that
    finished and every failure so far, so no finished work is lost."""

    def __init__(self, message: str, result: SearchResult) -> None:
        super().__init__(message)
        self.result = result

    def __reduce__(self):  # picklable with its result (raised inside a worker, say)
        return (type(self), (str(self), self.result))


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates no other candidate beats on both axes (lower latency AND higher accuracy).

    Sorted by latency. A candidate is dominated if another has latency <= and accuracy >=,
    with at least one strict; duplicates of the same architecture appear once.
    """
    unique = {c.code: c for c in candidates}.values()
    ordered = sorted(unique, key=lambda c: (c.latency_ms, -c.accuracy))
    front: list[Candidate] = []
    best_acc = -np.inf
    for c in ordered:
        if c.accuracy > best_acc:
            front.append(c)
            best_acc = c.accuracy
    return front


def _outcome(future: Future) -> tuple[Any, BaseException | None]:
    """(value, None) or (None, exception): waits for ``future``; never raises an Exception."""
    try:
        return future.result(), None
    except Exception as exc:  # noqa: BLE001 - the candidate fails, the search goes on
        return None, exc


def _failed_future(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def search(
    space: SearchSpace,
    evaluator: Callable[[Architecture], Evaluation | float],
    latency_fn: Callable[[Architecture], float],
    target: float,
    *,
    strategy: str = "evolution",
    budget: int = 20,
    constraint: str | tuple[float, float] = "soft",
    seed: int = 0,
    executor: Executor | None = None,
    population_size: int = 8,
    sample_size: int = 3,
    parallel: int = 1,
    progress: bool = False,
    max_failures: int | None = None,
) -> SearchResult:
    """Evaluate ``budget`` candidates by random search or regularized evolution.

    ``evaluator(arch)`` returns an Evaluation (or a bare accuracy in [0, 1]) and runs on
    ``executor`` (must be picklable for a process pool); ``latency_fn(arch)`` (e.g. a
    LatencyPredictor) runs here, only while no evaluation is in flight (see the module's
    docstring). Reward: ``reward(acc, latency_fn(arch), target, alpha, beta)``.

    Evolution: ``population_size`` random candidates first, then cycles that each draw
    ``sample_size`` members, mutate the best and drop the oldest; ``parallel`` children are
    evaluated at once (``parallel=1`` is Real et al.'s sequential algorithm; set it to the
    executor's worker count for a pool). The same architecture is evaluated once per
    search (later draws reuse the result but still count against the budget, as in the paper).

    Failures: a candidate whose evaluation or latency fails becomes a ``Failure`` in
    ``SearchResult.failures`` (with a ``SearchWarning``) and the search goes on; it raises
    ``SearchError`` (its ``.result`` holds everything finished) if the executor breaks, if
    more than ``max_failures`` candidates fail (None: no limit), or if none succeeds. If the
    population is empty because every member failed, evolution draws a random candidate.
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    check_callable("evaluator", evaluator)
    check_callable("latency_fn", latency_fn)
    target = check_real("target latency T", target, minimum=0.0, include_minimum=False)
    strategy = check_choice("strategy", strategy, ("random", "evolution"))
    budget = check_int("budget", budget, maximum=MAX_BUDGET)
    population_size = check_int("population_size", population_size, maximum=MAX_BUDGET)
    sample_size = check_int("sample_size", sample_size, maximum=MAX_BUDGET)
    parallel = check_int("parallel", parallel, maximum=MAX_BUDGET)
    seed = check_seed("seed", seed)
    progress = check_bool("progress", progress)
    if max_failures is not None:
        max_failures = check_int("max_failures", max_failures, minimum=0)
    if sample_size > population_size:
        raise ValueError(
            f"sample_size={sample_size} cannot exceed population_size={population_size}"
        )
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor (or None), got {type(executor).__name__}"
        )
    alpha, beta = _constraint(constraint)
    pool = executor if executor is not None else SynchronousExecutor()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    candidates: list[Candidate] = []
    failures: list[Failure] = []
    memo: dict[tuple[int, ...], Future] = {}
    bar = None
    if progress:
        bar = importlib.import_module("tqdm.auto").tqdm(total=budget, desc=strategy)

    def result() -> SearchResult:
        return SearchResult(
            strategy=strategy,
            candidates=tuple(candidates),
            target_ms=target,
            alpha=alpha,
            beta=beta,
            seconds=time.perf_counter() - start,
            failures=tuple(failures),
        )

    def stop(why: str) -> SearchError:
        if bar is not None:
            bar.close()
        done = f"{len(candidates)} finished and {len(failures)} failed of budget={budget}"
        first = f"; first failure: {failures[0]}" if failures else ""
        return SearchError(f"search stopped: {why} ({done}){first}", result())

    def submit(arch: Architecture) -> Future:
        code = space.encode(arch)
        if code not in memo:
            try:
                memo[code] = pool.submit(evaluator, arch)
            except Exception as exc:  # noqa: BLE001 - a broken or shut-down executor
                memo[code] = _failed_future(exc)
        return memo[code]

    def run_wave(archs: list[Architecture]) -> list[Candidate]:
        """Evaluate ``archs`` on the executor, wait for all of them, then (nothing in flight)
        compute their latencies and rewards, in order."""
        futures = [submit(a) for a in archs]
        outcomes = [_outcome(f) for f in futures]  # every evaluation of the wave has ended
        out, broken = [], None
        for arch, (value, exc) in zip(archs, outcomes, strict=True):
            index, code, step = len(candidates) + len(failures), space.encode(arch), "evaluation"
            try:
                if exc is not None:
                    raise exc
                ev = _as_evaluation(value)
                step = "latency"
                lat = check_real(
                    "latency_fn(arch)", latency_fn(arch), minimum=0.0, include_minimum=False
                )
                step = "reward"
                r = reward(ev.accuracy, lat, target, alpha, beta)
            except Exception as err:  # noqa: BLE001 - recorded, reported and survived
                failure = Failure(
                    index=index,
                    arch=arch,
                    code=code,
                    step=step,
                    error_type=type(err).__name__,
                    message=str(err),
                    traceback="".join(traceback.format_exception(err)),
                )
                failures.append(failure)
                warnings.warn(f"search: {failure}", SearchWarning, stacklevel=3)
                if isinstance(err, BrokenExecutor):
                    broken = err
            else:
                cand = Candidate(
                    index=index,
                    arch=arch,
                    code=code,
                    accuracy=ev.accuracy,
                    latency_ms=lat,
                    reward=r,
                    params=ev.params,
                    macs=ev.macs,
                    seconds=ev.seconds,
                    cached=ev.cached,
                )
                candidates.append(cand)
                out.append(cand)
            if bar is not None:
                bar.update(1)
        if broken is not None:
            raise stop(f"the executor broke ({type(broken).__name__}: {broken})")
        if max_failures is not None and len(failures) > max_failures:
            raise stop(f"more than max_failures={max_failures} candidates failed")
        return out

    def evaluated() -> int:
        return len(candidates) + len(failures)

    if strategy == "random":
        run_wave([space.sample(rng) for _ in range(budget)])
    else:
        n_init = min(population_size, budget)
        population: deque[Candidate] = deque(run_wave([space.sample(rng) for _ in range(n_init)]))
        while evaluated() < budget:
            wave = min(parallel, budget - evaluated())
            children = []
            for _ in range(wave):
                members = list(population)
                if not members:  # every member failed: start again from a random candidate
                    children.append(space.sample(rng))
                    continue
                picks = rng.choice(len(members), size=min(sample_size, len(members)), replace=False)
                parent = max((members[i] for i in picks), key=lambda c: (c.reward, -c.index))
                children.append(space.mutate(parent.arch, rng))
            for child in run_wave(children):
                population.append(child)
                if len(population) > population_size:
                    population.popleft()  # aging: the oldest goes, however good it was
    if not candidates:
        raise stop("no candidate finished")
    if bar is not None:
        bar.close()
    return result()
