"""A latency model for the search space: a per-block lookup table, summed and calibrated.

MnasNet (arXiv 1807.11626) measured every candidate on a phone; later work (ProxylessNAS,
FBNet, nn-Meter) predicts latency instead, from a table of measured pieces. Here:

1. ``build_latency_table`` measures every distinct block the space can build at the fixed
   input size (``SearchSpace.all_block_specs``), plus the stem and the head + classifier, at
   batch 1 with a fixed thread count, and optionally whole networks in the **same** run.
   ``measure_interleaved`` takes many short samples (``SampleTimer``: about 3 ms of
   back-to-back calls each), one per piece per round, in a fresh random order every round;
   ``speed_normalised`` divides each round by the machine's speed in that round, judged from
   all the blocks at once; each entry is the median over rounds. On a shared VM whose speed
   jumps by 10-60% from one second to the next, this is what makes a table repeatable.
   The table is cached on disk as JSON, keyed by device, torch version, thread count, CPU model
   and the measurement settings, so a second run reuses it and a different machine does not.
2. ``LatencyPredictor.predict(arch) = scale * (stem + sum of blocks + head) + overhead``:
   the sum over blocks, then a scale and a per-network overhead fitted by least squares on
   calibration networks measured whole in the same run (``fit``). Blocks timed one at a time
   miss what a whole network adds or saves (Python dispatch between modules, cache warmth),
   which is what the two fitted numbers absorb.
3. ``validate`` compares predictions with held-out networks measured whole: the share within
   +-10% and Spearman's rank correlation. The bar is nn-Meter's 99.0% within +-10% on a mobile
   CPU (MobiSys 2021), reached by predicting per fused kernel. ``repeatability`` is the
   measurement's own ceiling: the same networks measured twice (even and odd rounds).

Notebook 06 builds the table on the machine it runs on.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark

from effnb._cache import cache_dir, source_digest
from effnb._checks import check_int
from effnb.bench import _prepare as _prepare_step
from effnb.nas.space import Architecture, SearchSpace

__all__ = [
    "LatencyPredictor",
    "LatencyTable",
    "MeasureFn",
    "SampleTimer",
    "ValidationReport",
    "bootstrap_difference",
    "build_latency_table",
    "cache_dir",
    "cpu_model",
    "default_measure",
    "measure_interleaved",
    "measure_networks",
    "measurement_halves",
    "network_key",
    "repeatability",
    "round_speed",
    "source_digest",
    "spearman",
    "speed_normalised",
    "validate",
    "within_share",
]

# measure(module, (C, H, W)) -> milliseconds for one forward pass at batch 1
MeasureFn = Callable[[nn.Module, tuple[int, int, int]], float]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


class SampleTimer:
    """The default ``MeasureFn``: one timing sample of a module, ``sample_ms`` of back-to-back calls.

    The first time it sees a module it puts it in eval mode, makes a random batch-1 input,
    runs ``warmup`` untimed calls and fixes ``number``, the calls per sample, so that a sample
    lasts about ``sample_ms`` (at least one call). Every call after that is one
    ``torch.utils.benchmark.Timer.timeit(number)`` with ``threads`` threads under
    ``torch.inference_mode``, returned as milliseconds per call. Samples are short on purpose:
    ``measure_interleaved`` takes many of them, interleaved, instead of one long one.
    One thread by default: on a shared 2-core machine a second thread mostly waits for other
    processes, and blocks this small do not parallelise anyway.
    """

    def __init__(self, threads: int = 1, sample_ms: float = 3.0, warmup: int = 3) -> None:
        self.threads = check_int("threads", threads)
        if not isinstance(sample_ms, int | float) or not sample_ms > 0:
            raise ValueError(
                f"sample_ms must be a positive number of milliseconds, got {sample_ms!r}"
            )
        self.sample_ms = float(sample_ms)
        self.warmup = check_int("warmup", warmup, minimum=0)
        self._prepared: dict[int, tuple[nn.Module, benchmark.Timer, int]] = {}

    def _prepare(self, module: nn.Module, shape: tuple[int, int, int]) -> tuple:
        # the same timed step as effnb.bench: eval mode, a random batch-1 input, inference_mode
        step, _ = _prepare_step(module, shape, 1, torch.device("cpu"), False)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for _ in range(self.warmup):
                step()
            t0 = time.perf_counter()
            step()
            step()
            per_call = (time.perf_counter() - t0) / 2
        finally:
            torch.set_num_threads(before)
        number = max(1, round(self.sample_ms / 1e3 / per_call))
        timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=self.threads)
        # the module is kept so its id is not reused while it is in the cache
        return module, timer, number

    def __call__(self, module: nn.Module, shape: tuple[int, int, int]) -> float:
        key = id(module)
        if key not in self._prepared:
            self._prepared[key] = self._prepare(module, shape)
        _, timer, number = self._prepared[key]
        return timer.timeit(number).mean * 1e3


def default_measure(threads: int = 1, sample_ms: float = 3.0, warmup: int = 3) -> MeasureFn:
    """``SampleTimer(threads, sample_ms, warmup)``: the measure tables and networks use."""
    return SampleTimer(threads=threads, sample_ms=sample_ms, warmup=warmup)


def measure_interleaved(
    pieces: Mapping[str, tuple[nn.Module, tuple[int, int, int]]],
    *,
    rounds: int = 30,
    measure: MeasureFn | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Per-round milliseconds of every piece, shape (rounds, len(pieces)).

    Each round takes one sample (``measure(module, shape)``) of every piece, in a fresh random
    order (``numpy.random.default_rng(seed)``). A round over this module's table takes about a
    second, so whatever the machine does (a neighbour's burst, a frequency change) hits the
    pieces of one round alike and ``speed_normalised`` can take it out.
    """
    rounds = check_int("rounds", rounds)
    if not pieces:
        raise ValueError("pieces must be a non-empty mapping of key -> (module, (C, H, W))")
    measure = measure if measure is not None else default_measure()
    items = list(pieces.values())
    rng = np.random.default_rng(seed)
    per_round = np.zeros((rounds, len(items)))
    it = range(rounds)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{len(items)} pieces x {rounds} rounds")
    for r in it:
        for i in rng.permutation(len(items)):
            module, shape = items[i]
            per_round[r, i] = float(measure(module, shape))
    return per_round


def round_speed(
    per_round: np.ndarray, reference: Sequence[int] | slice | None = None
) -> np.ndarray:
    """How slow each round ran: ``f_r = median over pieces i of t[r, i] / median_r' t[r', i]``.

    1.0 is the run's typical speed, 1.3 a round 30% slower. ``reference`` picks the pieces that
    judge it (all of them by default; the table's blocks in ``build_latency_table``).
    """
    per_round = np.asarray(per_round, dtype=float)
    if per_round.ndim != 2 or per_round.shape[0] < 1 or per_round.shape[1] < 1:
        raise ValueError(f"per_round must be (rounds, pieces), got shape {per_round.shape}")
    ref = per_round if reference is None else per_round[:, reference]
    return np.median(ref / np.median(ref, axis=0), axis=1)


def speed_normalised(
    per_round: np.ndarray, reference: Sequence[int] | slice | None = None
) -> np.ndarray:
    """Each round divided by that round's speed factor: ``t[r, i] / f_r`` (see ``round_speed``).

    On a VM whose speed moves by 10-60% from one second to the next, drift that hits a whole
    round becomes a factor that cancels, and the median over rounds then only has to reject
    what hit single samples. The result is in milliseconds at the run's typical speed.
    """
    per_round = np.asarray(per_round, dtype=float)
    return per_round / round_speed(per_round, reference)[:, None]


@dataclass(frozen=True)
class LatencyTable:
    """Milliseconds per block key (``BlockSpec.key``, ``stem@S``, ``head@S``), and per network.

    ``networks`` maps ``network_key(arch)`` to the milliseconds of whole networks measured in
    the same interleaved run as the blocks (``build_latency_table(..., networks=...)``);
    ``rounds`` keeps every entry's per-round (speed-normalised) times for repeatability.
    """

    entries: dict[str, float]
    meta: dict = field(default_factory=dict)
    networks: dict[str, float] = field(default_factory=dict)
    rounds: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        if key not in self.entries:
            raise KeyError(
                f"no latency measured for {key!r}; the table has {len(self.entries)} entries"
            )
        return self.entries[key]

    def __len__(self) -> int:
        return len(self.entries)

    def network_ms(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Measured whole-network milliseconds of ``archs`` (each must have been measured)."""
        keys = [network_key(a) for a in archs]
        missing = [k for k in keys if k not in self.networks]
        if missing:
            raise KeyError(
                f"{len(missing)} network(s) were not measured with this table, e.g. {missing[0]!r}; "
                "pass them as build_latency_table(..., networks=...)"
            )
        return np.array([self.networks[k] for k in keys])

    def network_rounds(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Per-round milliseconds of ``archs``, shape (rounds, len(archs))."""
        self.network_ms(archs)  # checks they were measured
        return np.array([self.rounds[network_key(a)] for a in archs]).T

    def save(self, path: str | os.PathLike) -> None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = {"meta": self.meta, "entries": self.entries, "networks": self.networks}
        tmp.write_text(json.dumps({**data, "rounds": self.rounds}, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyTable:
        data = json.loads(pathlib.Path(path).read_text())
        return cls(
            entries=data["entries"],
            meta=data["meta"],
            networks=data.get("networks", {}),
            rounds=data.get("rounds", {}),
        )


def network_key(arch: Architecture) -> str:
    """The key of a whole network in ``LatencyTable.networks``: ``net:`` and the arch as text."""
    return f"net:{arch}"


def _stem_key(size: int) -> str:
    return f"stem@{size}"


def _head_key(size: int) -> str:
    return f"head@{size}"


def _final_size(space: SearchSpace, input_size: int) -> int:
    size = input_size
    for s in space.skeleton:
        size = (size - 1) // s.stride + 1
    return size


def _table_pieces(space: SearchSpace, input_size: int) -> dict[str, tuple[nn.Module, tuple]]:
    pieces: dict[str, tuple[nn.Module, tuple]] = {}
    pieces[_stem_key(input_size)] = (space.build_stem(), (space.in_chans, input_size, input_size))
    for spec in space.all_block_specs(input_size):
        pieces[spec.key] = (spec.build(), (spec.in_channels, spec.size, spec.size))
    final = _final_size(space, input_size)
    head = nn.Sequential(
        space.build_head(), space.build(space.baselines()["mobilenet_v2_like"]).classifier
    )
    pieces[_head_key(input_size)] = (head, (space.skeleton[-1].out_channels, final, final))
    return pieces


def _table_source() -> str:
    """Digest of the code that builds and times the table's pieces (a cache-key field)."""
    import sys

    from effnb import bench, layers
    from effnb.models import net
    from effnb.nas import space

    return source_digest(layers, net, space, bench, sys.modules[__name__])


def build_latency_table(
    space: SearchSpace,
    input_size: int,
    *,
    networks: Sequence[Architecture] = (),
    rounds: int = 30,
    measure: MeasureFn | None = None,
    threads: int = 1,
    sample_ms: float = 3.0,
    seed: int = 0,
    use_cache: bool = True,
    progress: bool = False,
) -> LatencyTable:
    """Measure every distinct block of ``space`` at ``input_size`` (plus stem and head), and
    the whole ``networks`` given, in one interleaved run.

    ``measure_interleaved`` takes ``rounds`` rounds of one short sample per piece;
    ``speed_normalised`` (round factors from the blocks) takes out what hit whole rounds; each
    entry is the median over rounds. Networks measured in the same run share the blocks' drift,
    which is what makes them fair calibration and validation data for the predictor.

    With the default measure (``measure=None``) the table is cached as JSON under
    ``cache_dir()``; the file name hashes the space, the input size, the networks, the device,
    the torch version, the thread count, the rounds, ``sample_ms``, the CPU model and the source
    of the code that builds and times the pieces (``source_digest``), so it is only reused where
    it was measured, by the code that measured it. A custom ``measure`` (tests, other devices) is never
    cached.
    """
    input_size = check_int("input_size", input_size)
    networks = [space.check(a) for a in networks]
    meta = {
        "device": "cpu",
        "torch": torch.__version__,
        "threads": check_int("threads", threads),
        "cpu": cpu_model(),
        "input_size": input_size,
        "rounds": check_int("rounds", rounds),
        "sample_ms": float(sample_ms),
        "seed": int(seed),
        "space": repr(space),
        "networks": [network_key(a) for a in networks],
        "source": _table_source(),
    }
    cached = measure is None and use_cache
    path = None
    if cached:
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
        path = cache_dir() / f"nas-latency-table-{digest}.json"
        if path.is_file():
            return LatencyTable.load(path)
    if measure is None:
        measure = default_measure(threads=threads, sample_ms=sample_ms)
    pieces = _table_pieces(space, input_size)
    n_blocks = len(pieces)
    shape = (space.in_chans, input_size, input_size)
    for arch in networks:
        pieces.setdefault(network_key(arch), (space.build(arch).eval(), shape))
    t0 = time.perf_counter()
    raw = measure_interleaved(pieces, rounds=rounds, measure=measure, seed=seed, progress=progress)
    speed = round_speed(raw, slice(0, n_blocks))
    norm = raw / speed[:, None]
    med = np.median(norm, axis=0)
    keys = list(pieces)
    table = LatencyTable(
        entries={k: float(v) for k, v in zip(keys[:n_blocks], med[:n_blocks], strict=True)},
        meta={
            **meta,
            "seconds": round(time.perf_counter() - t0, 1),
            "round_speed": [round(float(f), 4) for f in speed],
        },
        networks={k: float(v) for k, v in zip(keys[n_blocks:], med[n_blocks:], strict=True)},
        rounds={k: norm[:, i].tolist() for i, k in enumerate(keys)},
    )
    if path is not None:
        table.save(path)
    return table


@dataclass(frozen=True)
class LatencyPredictor:
    """predict(arch) = scale * (stem + sum of the arch's blocks + head) + overhead_ms."""

    space: SearchSpace
    table: LatencyTable
    input_size: int
    scale: float = 1.0
    overhead_ms: float = 0.0

    def block_sum(self, arch: Architecture) -> float:
        """Stem + every block + head, straight from the table (no calibration)."""
        specs = self.space.block_specs(arch, self.input_size)
        total = self.table[_stem_key(self.input_size)] + self.table[_head_key(self.input_size)]
        return total + sum(self.table[s.key] for s in specs)

    def predict(self, arch: Architecture) -> float:
        return self.scale * self.block_sum(arch) + self.overhead_ms

    __call__ = predict

    def fit(self, archs: Sequence[Architecture], measured_ms: Sequence[float]) -> LatencyPredictor:
        """A copy with scale and overhead fitted by least squares: measured ~ a * sum + b.

        With one network only the overhead is fitted (scale 1).
        """
        sums = np.array([self.block_sum(a) for a in archs], dtype=float)
        y = np.asarray(measured_ms, dtype=float)
        if len(sums) != len(y) or len(y) == 0:
            raise ValueError(
                f"fit needs as many measurements as architectures (>= 1), got {len(sums)} archs "
                f"and {len(y)} measurements"
            )
        if len(y) == 1 or np.ptp(sums) == 0:
            return replace(self, scale=1.0, overhead_ms=float(np.mean(y - sums)))
        design = np.stack([sums, np.ones_like(sums)], axis=1)  # (n, 2)
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        return replace(self, scale=float(a), overhead_ms=float(b))


def measure_networks(
    space: SearchSpace,
    archs: Sequence[Architecture],
    input_size: int,
    *,
    measure: MeasureFn | None = None,
    threads: int = 1,
    rounds: int = 30,
    sample_ms: float = 3.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Whole networks alone, measured like the table: interleaved rounds, speed-normalised.

    Returns (median over rounds, per-round ms of shape (rounds, n)). For networks to compare
    with a table's predictions, measure them with the table instead
    (``build_latency_table(..., networks=...)``): the same run shares the same drift.
    """
    input_size = check_int("input_size", input_size)
    archs = [space.check(a) for a in archs]
    if measure is None:
        measure = default_measure(threads=threads, sample_ms=sample_ms)
    shape = (space.in_chans, input_size, input_size)
    pieces = {str(i): (space.build(a).eval(), shape) for i, a in enumerate(archs)}
    raw = measure_interleaved(pieces, rounds=rounds, measure=measure, seed=seed)
    norm = speed_normalised(raw)
    return np.median(norm, axis=0), norm


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the ranks (ties get average ranks)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(
            f"spearman needs two 1-D sequences of equal length >= 2, got {x.shape}, {y.shape}"
        )
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def within_share(
    predicted: Sequence[float], reference: Sequence[float], tol: float = 0.10
) -> float:
    """Share of pairs with |predicted / reference - 1| <= tol."""
    p, r = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    return float(np.mean(np.abs(p / r - 1.0) <= tol))


def repeatability(per_round: np.ndarray, tol: float = 0.10) -> float:
    """Share of networks measured twice whose two measurements agree within +-tol.

    With 4 or more interleaved rounds, the two measurements are the medians of the even and
    of the odd rounds (two independent halves of one run); with 2 or 3 rounds, rounds 1 and 2.
    Pass speed-normalised rounds (``LatencyTable.network_rounds``) to ask whether the table's
    numbers repeat; raw rounds ask whether absolute milliseconds on this machine repeat.
    """
    first, second = measurement_halves(per_round)
    return within_share(second, first, tol)


def measurement_halves(per_round: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two measurements ``repeatability`` compares, each of shape (n,).

    With 4 or more rounds, the medians of the even and of the odd rounds; with 2 or 3 rounds,
    rounds 1 and 2.
    """
    per_round = np.asarray(per_round, dtype=float)
    if per_round.ndim != 2 or per_round.shape[0] < 2:
        raise ValueError(f"per_round must be (rounds >= 2, n), got shape {per_round.shape}")
    if per_round.shape[0] >= 4:
        return np.median(per_round[0::2], axis=0), np.median(per_round[1::2], axis=0)
    return per_round[0], per_round[1]


@dataclass(frozen=True)
class ValidationReport:
    predicted_ms: tuple[float, ...]
    measured_ms: tuple[float, ...]
    within_10: float  # share of networks with |pred / meas - 1| <= 10%
    spearman_rho: float
    mean_abs_pct_error: float

    def summary(self) -> str:
        return (
            f"{len(self.measured_ms)} held-out networks: {100 * self.within_10:.0f}% within +-10%, "
            f"Spearman rho {self.spearman_rho:.3f}, mean |error| {self.mean_abs_pct_error:.1f}%"
        )


def validate(
    predictor: LatencyPredictor | Callable[[Architecture], float],
    archs: Sequence[Architecture],
    measured_ms: Sequence[float],
) -> ValidationReport:
    """Predicted vs measured on held-out networks: share within +-10%, Spearman rho, MAPE."""
    pred = np.array([predictor(a) for a in archs], dtype=float)
    meas = np.asarray(measured_ms, dtype=float)
    if len(pred) != len(meas) or len(meas) < 2:
        raise ValueError(
            f"validate needs >= 2 archs with one measurement each, got {len(pred)}, {len(meas)}"
        )
    return ValidationReport(
        predicted_ms=tuple(pred.tolist()),
        measured_ms=tuple(meas.tolist()),
        within_10=within_share(pred, meas),
        spearman_rho=spearman(pred, meas),
        mean_abs_pct_error=float(100 * np.mean(np.abs(pred / meas - 1))),
    )


def bootstrap_difference(
    metric: Callable[[np.ndarray, np.ndarray], float],
    measured: Sequence[float],
    predicted_a: Sequence[float],
    predicted_b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(low, observed, high) of ``metric(a, measured) - metric(b, measured)``.

    A paired percentile bootstrap over the networks: each resample draws n networks with
    replacement and scores both predictors on the same draw, so the interval reflects how
    much the comparison depends on which networks were held out. ``metric(predicted,
    measured)`` is e.g. ``spearman`` or ``within_share``. An interval that excludes 0 means
    the held-out networks resolve which predictor is better.
    """
    meas = np.asarray(measured, dtype=float)
    a, b = np.asarray(predicted_a, dtype=float), np.asarray(predicted_b, dtype=float)
    if not meas.shape == a.shape == b.shape or meas.ndim != 1 or len(meas) < 3:
        raise ValueError(
            f"need three 1-D sequences of one equal length >= 3, got {meas.shape}, {a.shape}, "
            f"{b.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_boot = check_int("n_boot", n_boot)
    rng = np.random.default_rng(seed)
    observed = metric(a, meas) - metric(b, meas)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(len(meas), size=len(meas))
        d = metric(a[i], meas[i]) - metric(b[i], meas[i])
        if np.isfinite(d):  # a resample of all-equal values has no rank correlation
            diffs.append(d)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(observed), float(high)
