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
same interface and can be passed unchanged. ``DigitsEvaluator`` caches each evaluation on
disk under a key of everything that can change it (architecture, config, seed, data, initial
weights, source code), so a re-run does not retrain and a stale result is never served.
Notebook 06 writes the evolution loop on the page and checks it against ``search``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import numpy as np
import torch

from effnb._checks import check_int
from effnb.nas.space import Architecture, SearchSpace

__all__ = [
    "HARD",
    "SOFT",
    "Candidate",
    "DigitsEvaluator",
    "Evaluation",
    "SearchResult",
    "SynchronousExecutor",
    "mnasnet_reward",
    "pareto_front",
    "reward",
    "search",
]

SOFT = (-0.07, -0.07)  # (alpha, beta): MnasNet's soft constraint
HARD = (0.0, -1.0)  # (alpha, beta): MnasNet's hard constraint


def reward(
    accuracy: float, latency: float, target: float, alpha: float = -0.07, beta: float = -0.07
) -> float:
    """ACC * (LAT / T) ** w with w = alpha if LAT <= T else beta (MnasNet, arXiv 1807.11626)."""
    if not target > 0:
        raise ValueError(f"target latency T must be > 0, got {target}")
    if not latency > 0:
        raise ValueError(f"latency must be > 0, got {latency}")
    w = alpha if latency <= target else beta
    return float(accuracy * (latency / target) ** w)


def mnasnet_reward(
    accuracy: float, latency: float, target: float, constraint: str = "soft"
) -> float:
    """``reward`` with MnasNet's soft (alpha = beta = -0.07) or hard (0, -1) exponents."""
    alpha, beta = _constraint(constraint)
    return reward(accuracy, latency, target, alpha, beta)


def _constraint(constraint: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(constraint, str):
        table = {"soft": SOFT, "hard": HARD}
        if constraint not in table:
            raise ValueError(
                f"constraint must be 'soft', 'hard' or (alpha, beta), got {constraint!r}"
            )
        return table[constraint]
    alpha, beta = constraint
    return float(alpha), float(beta)


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


def _check_evaluation(value) -> str | None:
    acc = value.get("accuracy")
    if not isinstance(acc, float | int) or not 0 <= acc <= 1:
        return f"accuracy={acc!r} is not in [0, 1]"
    if set(value) != {f.name for f in dataclasses.fields(Evaluation)}:
        return f"its fields {sorted(value)} are not an Evaluation's"
    return None


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture, in evaluation order."""

    index: int  # 0-based position in the evaluation sequence
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
class SearchResult:
    strategy: str
    candidates: tuple[Candidate, ...]
    target_ms: float
    alpha: float
    beta: float
    seconds: float  # wall time of the search

    @property
    def best(self) -> Candidate:
        """Highest reward (ties: the earlier candidate)."""
        return max(self.candidates, key=lambda c: (c.reward, -c.index))

    def best_reward_so_far(self) -> list[float]:
        out, best = [], -np.inf
        for c in self.candidates:
            best = max(best, c.reward)
            out.append(best)
        return out

    def pareto_front(self) -> list[Candidate]:
        return pareto_front(self.candidates)


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates no other candidate beats on both axes (lower latency AND higher accuracy).

    Sorted by latency. A candidate is dominated if another has latency <= and accuracy >=,
    with at least one strict; duplicates of the same architecture appear once.
    """
    unique = {c.code: c for c in candidates}.values()
    ordered = sorted(unique, key=lambda c: (c.latency_ms, -c.accuracy))
    front, best_acc = [], -np.inf
    for c in ordered:
        if c.accuracy > best_acc:
            front.append(c)
            best_acc = c.accuracy
    return front


def _as_evaluation(value) -> Evaluation:
    if isinstance(value, Evaluation):
        return value
    return Evaluation(accuracy=float(value))


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
) -> SearchResult:
    """Evaluate ``budget`` candidates by random search or regularized evolution.

    ``evaluator(arch)`` returns an Evaluation (or a bare accuracy) and runs on ``executor``
    (must be picklable for a process pool); ``latency_fn(arch)`` (e.g. a LatencyPredictor)
    runs here. Reward: ``reward(acc, latency_fn(arch), target, alpha, beta)``.

    Evolution: ``population_size`` random candidates first, then cycles that each draw
    ``sample_size`` members, mutate the best and drop the oldest; ``parallel`` children are
    evaluated at once (``parallel=1`` is Real et al.'s sequential algorithm; set it to the
    executor's worker count for a pool). The same architecture is evaluated once per
    search (later draws reuse the result but still count against the budget, as in the paper).
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    if isinstance(target, bool) or not isinstance(target, int | float) or not target > 0:
        raise ValueError(f"target latency T must be a number > 0, got {target!r}")
    budget = check_int("budget", budget)
    population_size = check_int("population_size", population_size)
    sample_size = check_int("sample_size", sample_size)
    parallel = check_int("parallel", parallel)
    if sample_size > population_size:
        raise ValueError(
            f"sample_size={sample_size} cannot exceed population_size={population_size}"
        )
    if strategy not in ("random", "evolution"):
        raise ValueError(f"strategy must be 'random' or 'evolution', got {strategy!r}")
    alpha, beta = _constraint(constraint)
    executor = executor if executor is not None else SynchronousExecutor()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    candidates: list[Candidate] = []
    memo: dict[tuple[int, ...], Future] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, desc=strategy)

    def submit(arch: Architecture) -> Future:
        code = space.encode(arch)
        if code not in memo:
            memo[code] = executor.submit(evaluator, arch)
        return memo[code]

    def collect(archs: list[Architecture], futures: list[Future]) -> list[Candidate]:
        out = []
        for arch, fut in zip(archs, futures, strict=True):
            ev = _as_evaluation(fut.result())
            lat = float(latency_fn(arch))
            cand = Candidate(
                index=len(candidates),
                arch=arch,
                code=space.encode(arch),
                accuracy=ev.accuracy,
                latency_ms=lat,
                reward=reward(ev.accuracy, lat, target, alpha, beta),
                params=ev.params,
                macs=ev.macs,
                seconds=ev.seconds,
                cached=ev.cached,
            )
            candidates.append(cand)
            out.append(cand)
            if bar is not None:
                bar.update(1)
        return out

    if strategy == "random":
        archs = [space.sample(rng) for _ in range(budget)]
        collect(archs, [submit(a) for a in archs])
    else:
        n_init = min(population_size, budget)
        archs = [space.sample(rng) for _ in range(n_init)]
        population: deque[Candidate] = deque(collect(archs, [submit(a) for a in archs]))
        while len(candidates) < budget:
            wave = min(parallel, budget - len(candidates))
            children = []
            for _ in range(wave):
                members = list(population)
                picks = rng.choice(len(members), size=min(sample_size, len(members)), replace=False)
                parent = max((members[i] for i in picks), key=lambda c: (c.reward, -c.index))
                children.append(space.mutate(parent.arch, rng))
            for child in collect(children, [submit(a) for a in children]):
                population.append(child)
                if len(population) > population_size:
                    population.popleft()  # aging: the oldest goes, however good it was
    if bar is not None:
        bar.close()
    return SearchResult(
        strategy=strategy,
        candidates=tuple(candidates),
        target_ms=float(target),
        alpha=alpha,
        beta=beta,
        seconds=time.perf_counter() - start,
    )
