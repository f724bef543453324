"""A latency model for the search space: a per-block lookup table, summed and calibrated.

MnasNet (arXiv 1807.11626) measured every candidate on a phone; later work (ProxylessNAS,
FBNet, nn-Meter) predicts latency instead, from a table of measured pieces. Here:

1. ``build_latency_table`` measures every distinct block the space can build at the fixed
   input size (``SearchSpace.all_block_specs``), plus the stem and the head + classifier,
   with ``effnb.bench.measure_latency`` at batch 1 and a fixed thread count. The table is
   cached on disk as JSON, keyed by device, torch version, thread count and CPU model, so a
   second run (or another notebook) reuses it and a different machine does not.
2. ``LatencyPredictor.predict(arch) = scale * (stem + sum of blocks + head) + overhead``:
   the sum over blocks, then a scale and a per-network overhead fitted by least squares on
   a few networks measured whole (``fit``). Measuring blocks one at a time misses what a
   whole network adds or saves (Python dispatch between modules, cache warmth), which is
   what the two fitted numbers absorb.
3. ``validate`` compares predictions with held-out networks measured whole: the share within
   +-10% and Spearman's rank correlation. The bar is nn-Meter's 99.0% within +-10% on a mobile
   CPU (MobiSys 2021), reached by predicting per fused kernel. ``repeatability`` measures the
   ceiling on a shared machine: the same networks measured twice, interleaved.

Notebook 06 builds the table on the machine it runs on.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from effnb._checks import check_int
from effnb.bench import measure_latency
from effnb.nas.space import Architecture, SearchSpace

__all__ = [
    "LatencyPredictor",
    "LatencyTable",
    "MeasureFn",
    "ValidationReport",
    "build_latency_table",
    "cache_dir",
    "cpu_model",
    "default_measure",
    "measure_networks",
    "repeatability",
    "spearman",
    "validate",
    "within_share",
]

# measure(module, (C, H, W)) -> milliseconds for one forward pass at batch 1
MeasureFn = Callable[[nn.Module, tuple[int, int, int]], float]


def cache_dir() -> pathlib.Path:
    """``$EFFNB_CACHE`` or ``~/.cache/effnb``: where tables and search results are kept."""
    return pathlib.Path(os.environ.get("EFFNB_CACHE", "~/.cache/effnb")).expanduser()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def default_measure(
    threads: int = 1, min_run_time: float = 0.1, warmup: int = 3, statistic: str = "min"
) -> MeasureFn:
    """A MeasureFn using ``effnb.bench.measure_latency`` (batch 1, CPU), in ms.

    ``statistic`` is "min" (default) or "median" of the per-call times. Under contention
    from other processes the minimum estimates the uncontended cost; on the course's 2-core
    VM with nothing else running, the host's drift dominates instead, and medians over many
    interleaved rounds repeat far better (notebook 06 uses ``statistic="median"``).
    One thread by default: on a shared 2-core machine a second thread mostly waits for other
    processes, and blocks this small do not parallelise anyway.
    """
    threads = check_int("threads", threads)
    if statistic not in ("min", "median"):
        raise ValueError(f"statistic must be 'min' or 'median', got {statistic!r}")

    def measure(module: nn.Module, shape: tuple[int, int, int]) -> float:
        rec = measure_latency(
            module, shape, batch=1, threads=threads, warmup=warmup, min_run_time=min_run_time
        )
        return rec.min_ms if statistic == "min" else rec.median_ms

    return measure


@dataclass(frozen=True)
class LatencyTable:
    """Measured milliseconds per block key (``BlockSpec.key``, ``stem@S``, ``head@S``)."""

    entries: dict[str, float]
    meta: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        if key not in self.entries:
            raise KeyError(
                f"no latency measured for {key!r}; the table has {len(self.entries)} entries"
            )
        return self.entries[key]

    def __len__(self) -> int:
        return len(self.entries)

    def save(self, path: str | os.PathLike) -> None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"meta": self.meta, "entries": self.entries}, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyTable:
        data = json.loads(pathlib.Path(path).read_text())
        return cls(entries=data["entries"], meta=data["meta"])


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


def build_latency_table(
    space: SearchSpace,
    input_size: int,
    *,
    measure: MeasureFn | None = None,
    threads: int = 1,
    min_run_time: float = 0.1,
    statistic: str = "min",
    use_cache: bool = True,
    progress: bool = False,
) -> LatencyTable:
    """Measure every distinct block of ``space`` at ``input_size`` (plus stem and head).

    With the default measure (``measure=None``) the table is cached as JSON under
    ``cache_dir()``; the file name hashes the space, the input size, the device, the torch
    version, the thread count, ``min_run_time`` and the CPU model, so it is only reused where
    it was measured. A custom ``measure`` (tests, other devices) is never cached.
    """
    input_size = check_int("input_size", input_size)
    meta = {
        "device": "cpu",
        "torch": torch.__version__,
        "threads": check_int("threads", threads),
        "cpu": cpu_model(),
        "input_size": input_size,
        "min_run_time": float(min_run_time),
        "statistic": statistic,
        "space": repr(space),
    }
    cached = measure is None and use_cache
    path = None
    if cached:
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
        path = cache_dir() / f"nas-latency-table-{digest}.json"
        if path.is_file():
            return LatencyTable.load(path)
    if measure is None:
        measure = default_measure(threads=threads, min_run_time=min_run_time, statistic=statistic)
    pieces = _table_pieces(space, input_size)
    items = pieces.items()
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="latency table", total=len(pieces))
    entries = {key: float(measure(module, shape)) for key, (module, shape) in items}
    table = LatencyTable(entries=entries, meta=meta)
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
    rounds: int = 2,
    min_run_time: float = 0.1,
    statistic: str = "min",
) -> tuple[np.ndarray, np.ndarray]:
    """Whole networks measured in ``rounds`` interleaved rounds (order rotated each round).

    Returns (median over rounds, per-round ms of shape (rounds, n)). Rounds 1 and 2 are two
    independent measurements of every network, hit alike by the machine's drift, which is
    what ``repeatability`` compares. Same ``measure`` (default: ``default_measure``) as the
    table, so predicted and measured use one statistic.
    """
    rounds = check_int("rounds", rounds)
    input_size = check_int("input_size", input_size)
    if measure is None:
        measure = default_measure(threads=threads, min_run_time=min_run_time, statistic=statistic)
    models = [space.build(a).eval() for a in archs]
    shape = (space.in_chans, input_size, input_size)
    n = len(models)
    per_round = np.zeros((rounds, n))
    for r in range(rounds):
        for j in range(n):
            i = (j + r) % n
            per_round[r, i] = measure(models[i], shape)
    return np.median(per_round, axis=0), per_round


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
    """
    per_round = np.asarray(per_round, dtype=float)
    if per_round.ndim != 2 or per_round.shape[0] < 2:
        raise ValueError(f"per_round must be (rounds >= 2, n), got shape {per_round.shape}")
    if per_round.shape[0] >= 4:
        first, second = np.median(per_round[0::2], axis=0), np.median(per_round[1::2], axis=0)
    else:
        first, second = per_round[0], per_round[1]
    return within_share(second, first, tol)


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
