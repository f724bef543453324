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
   The file goes through ``effnb._cache``: an atomic write (a unique temporary file, then a
   rename, so concurrent writers and readers never see half a file) with a schema number and
   the key it was stored under. A truncated, hand-edited or mismatched file (another torch
   version, a missing block, a NaN or negative entry) is reported with a ``CacheWarning``
   naming the file and what was wrong, and measured again: never served, never fatal.
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

import importlib
import json
import math
import os
import pathlib
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark

from effnb import _cache
from effnb._cache import cache_dir, source_digest
from effnb._checks import (
    SizeLimitError,
    check_bool,
    check_callable,
    check_finite_array,
    check_fraction,
    check_int,
    check_module,
    check_real,
    check_seed,
    check_threads,
)
from effnb.bench import _prepare as _prepare_step
from effnb.nas.space import MAX_INPUT_SIZE, Architecture, SearchSpace

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
ArrayLike = Sequence[float] | np.ndarray

MAX_SAMPLE_MS = 1000.0  # one timing sample; the default is 3 ms, a second is already generous
MAX_WARMUP = 1000  # untimed calls before a module's first sample
MAX_ROUNDS = 1000  # interleaved rounds; notebook 06 uses 30
MAX_TABLE_HOURS = 4.0  # rounds x pieces x sample_ms beyond this is a typo, not a table
MAX_BOOT = 100_000  # bootstrap resamples; 2000 already resolves a percentile interval
MAX_TOL = 10.0  # a relative tolerance of 1000% accepts anything


def _check_space(space: Any) -> SearchSpace:
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
    return space


def _check_archs(space: SearchSpace, name: str, archs: Any) -> list[Architecture]:
    if isinstance(archs, str | Architecture) or not isinstance(archs, Sequence):
        raise TypeError(f"{name} must be a sequence of Architecture, got {type(archs).__name__}")
    return [space.check(a) for a in archs]


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
        self.threads = check_threads("threads", threads)
        self.sample_ms = _check_sample_ms(sample_ms)
        self.warmup = check_int("warmup", warmup, minimum=0, maximum=MAX_WARMUP)
        self._prepared: dict[int, tuple[nn.Module, benchmark.Timer, int]] = {}

    def _prepare(self, module: nn.Module, shape: tuple[int, int, int]) -> tuple:
        # the same timed step as effnb.bench: eval mode, a random batch-1 input, inference_mode
        step = _prepare_step(module, shape, 1, torch.device("cpu"), False)[0]
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


def _check_sample_ms(sample_ms: Any) -> float:
    """Milliseconds of one timing sample: finite, > 0 and at most ``MAX_SAMPLE_MS``."""
    return check_real(
        "sample_ms", sample_ms, minimum=0.0, include_minimum=False, maximum=MAX_SAMPLE_MS
    )


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
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    seed = check_seed("seed", seed)
    progress = check_bool("progress", progress)
    if not isinstance(pieces, Mapping) or not pieces:
        raise ValueError(
            f"pieces must be a non-empty mapping of key -> (module, (C, H, W)), got {pieces!r}"[
                :200
            ]
        )
    for key, piece in pieces.items():
        if not isinstance(piece, tuple) or len(piece) != 2:
            raise TypeError(f"pieces[{key!r}] must be a (module, (C, H, W)) pair, got {piece!r}")
        check_module(f"pieces[{key!r}][0]", piece[0])
        shape = piece[1]
        if not isinstance(shape, Sequence) or len(shape) != 3:
            raise ValueError(f"pieces[{key!r}][1] must be a (C, H, W) shape, got {shape!r}")
        for j, n in enumerate(shape):
            check_int(f"pieces[{key!r}][1][{j}]", n, maximum=MAX_INPUT_SIZE * 64)
    if measure is not None:
        check_callable("measure", measure)
    measure = measure if measure is not None else default_measure()
    keys = list(pieces)
    items = list(pieces.values())
    rng = np.random.default_rng(seed)
    per_round = np.zeros((rounds, len(items)))
    it: Any = range(rounds)
    if progress:
        tqdm = importlib.import_module("tqdm.auto").tqdm
        it = tqdm(it, desc=f"{len(items)} pieces x {rounds} rounds")
    for r in it:
        for i in rng.permutation(len(items)):
            module, shape = items[i]
            per_round[r, i] = check_real(
                f"measure(pieces[{keys[i]!r}]) in round {r}",
                measure(module, shape),
                minimum=0.0,
                include_minimum=False,
            )
    return per_round


def round_speed(
    per_round: np.ndarray, reference: Sequence[int] | slice | None = None
) -> np.ndarray:
    """How slow each round ran: ``f_r = median over pieces i of t[r, i] / median_r' t[r', i]``.

    1.0 is the run's typical speed, 1.3 a round 30% slower. ``reference`` picks the pieces that
    judge it (all of them by default; the table's blocks in ``build_latency_table``).
    """
    per_round = _check_rounds_array(per_round, min_rounds=1)
    ref = per_round if reference is None else per_round[:, reference]
    return np.median(ref / np.median(ref, axis=0), axis=1)


def _check_rounds_array(per_round: Any, min_rounds: int) -> np.ndarray:
    """``per_round`` as a (rounds >= min_rounds, n >= 1) float array of finite values > 0."""
    try:
        array = np.asarray(per_round, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"per_round must be a (rounds, pieces) array of milliseconds, got {type(per_round).__name__}"
        ) from None
    if array.ndim != 2 or array.shape[0] < min_rounds or array.shape[1] < 1:
        raise ValueError(
            f"per_round must be (rounds >= {min_rounds}, pieces >= 1), got shape {array.shape}"
        )
    bad = ~np.isfinite(array) | (array <= 0)
    if bad.any():
        r, i = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"per_round must hold finite milliseconds > 0; per_round[{r}, {i}] is {array[r, i]}"
        )
    return array


def speed_normalised(
    per_round: np.ndarray, reference: Sequence[int] | slice | None = None
) -> np.ndarray:
    """Each round divided by that round's speed factor: ``t[r, i] / f_r`` (see ``round_speed``).

    On a VM whose speed moves by 10-60% from one second to the next, drift that hits a whole
    round becomes a factor that cancels, and the median over rounds then only has to reject
    what hit single samples. The result is in milliseconds at the run's typical speed.
    """
    per_round = _check_rounds_array(per_round, min_rounds=1)
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

    def key(self) -> dict[str, Any]:
        """What the table was measured for: its meta without what the run itself measured
        (``seconds``, ``round_speed``). The cache stores the table under this key."""
        return {k: v for k, v in self.meta.items() if k not in _RUN_FIELDS}

    def _value(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "entries": self.entries,
            "networks": self.networks,
            "rounds": self.rounds,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the table to ``path`` as JSON through ``effnb._cache.write_entry``: atomic
        (a unique temporary file, then a rename), with a schema number and ``key()``.

        A table with a non-finite or non-positive entry is refused (ValueError naming the path
        and the entry); a meta that is not JSON is a TypeError; a write that fails (read-only
        folder, full disk) is an OSError naming the path.
        """
        path = pathlib.Path(path)
        problem = _table_problem(self._value(), self.key())
        if problem:
            raise ValueError(f"cannot save the latency table to {path}: {problem}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", _cache.CacheWarning)
            try:
                written = _cache.write_entry(path, self.key(), self._value())
            except TypeError as exc:
                raise TypeError(
                    f"cannot save the latency table to {path}: its meta or entries are not "
                    f"JSON ({exc})"
                ) from None
        others = [w for w in caught if not issubclass(w.category, _cache.CacheWarning)]
        for w in others:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if not written:
            why = "; ".join(
                str(w.message) for w in caught if issubclass(w.category, _cache.CacheWarning)
            )
            raise OSError(f"cannot save the latency table to {path}: {why}")

    @classmethod
    def load(cls, path: str | os.PathLike, expect: Mapping[str, Any] | None = None) -> LatencyTable:
        """The table saved at ``path``; ValueError naming ``path`` and what is wrong if the file
        is truncated or not JSON, has another schema, is missing a field, holds an entry that
        is not a finite number of milliseconds > 0, or if its meta disagrees with the key it
        was stored under or with ``expect`` (e.g. ``{"torch": torch.__version__, "cpu":
        cpu_model(), "threads": 1, "input_size": 12, "space": repr(space)}``).
        FileNotFoundError if there is no file.
        """
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no latency table at {path}")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"the latency table {path} cannot be read ({type(exc).__name__}: {exc}); "
                "delete it or measure it again"
            ) from None
        problem = None
        if not isinstance(data, dict):
            problem = f"it holds a {type(data).__name__}, not a table"
        elif data.get("schema") != _cache.SCHEMA:
            problem = f"schema {data.get('schema')!r} is not {_cache.SCHEMA}"
        elif not isinstance(data.get("key"), dict):
            problem = "it has no key"
        else:
            problem = _table_problem(data.get("value"), data["key"])
        if problem is None and expect is not None:
            if not isinstance(expect, Mapping):
                raise TypeError(f"expect must be a mapping, got {type(expect).__name__}")
            meta = data["value"]["meta"]
            problem = next(
                (
                    f"it was measured with {k}={meta.get(k)!r}, not the expected {v!r}"
                    for k, v in expect.items()
                    if meta.get(k) != v
                ),
                None,
            )
        if problem:
            raise ValueError(f"the latency table {path} cannot be used: {problem}")
        return cls._from_value(data["value"])

    @classmethod
    def _from_value(cls, value: Mapping[str, Any]) -> LatencyTable:
        return cls(
            entries={k: float(v) for k, v in value["entries"].items()},
            meta=dict(value["meta"]),
            networks={k: float(v) for k, v in value["networks"].items()},
            rounds={k: [float(x) for x in v] for k, v in value["rounds"].items()},
        )


_RUN_FIELDS = ("seconds", "round_speed")  # what a run measured, not what it was asked for


def _positive_ms(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def _table_problem(
    value: Any,
    key: Mapping[str, Any],
    entries: Sequence[str] | None = None,
    networks: Sequence[str] | None = None,
) -> str | None:
    """Why a stored table must not be trusted (None if it may): a missing field, an entry or
    round that is not a finite number of milliseconds > 0, a meta that disagrees with ``key``,
    and (when given) block ``entries`` or ``networks`` other than the expected ones."""
    if not isinstance(value, dict):
        return f"its value is a {type(value).__name__}, not a table"
    missing = [f for f in ("meta", "entries", "networks", "rounds") if f not in value]
    if missing:
        return f"it has no {', '.join(missing)}"
    if not all(isinstance(value[f], dict) for f in ("meta", "entries", "networks", "rounds")):
        return "its meta, entries, networks and rounds are not all mappings"
    meta = value["meta"]
    for k, v in key.items():
        if meta.get(k) != v:
            return f"its meta has {k}={meta.get(k)!r} where its key has {v!r}"
    for name in ("entries", "networks"):
        for k, ms in value[name].items():
            if not _positive_ms(ms):
                return f"{name}[{k!r}] = {ms!r} is not a finite number of milliseconds > 0"
    for name, want in (("entries", entries), ("networks", networks)):
        if want is None:
            continue
        lost = [k for k in want if k not in value[name]]
        extra = [k for k in value[name] if k not in set(want)]
        if lost:
            return f"{name} lacks {len(lost)} of the {len(want)} expected keys, e.g. {lost[0]!r}"
        if extra:
            return f"{name} has {len(extra)} unexpected keys, e.g. {extra[0]!r}"
    rounds = value["rounds"]
    if set(rounds) != set(value["entries"]) | set(value["networks"]):
        return "its rounds do not cover exactly its entries and networks"
    n_rounds = meta.get("rounds")
    for k, per in rounds.items():
        if not isinstance(per, list) or not all(_positive_ms(x) for x in per):
            return f"rounds[{k!r}] is not a list of finite milliseconds > 0"
        if n_rounds is not None and len(per) != n_rounds:
            return f"rounds[{k!r}] has {len(per)} rounds, its meta says {n_rounds}"
    return None


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
    space = _check_space(space)
    input_size = check_int("input_size", input_size, maximum=MAX_INPUT_SIZE)
    networks = _check_archs(space, "networks", networks)
    threads = check_threads("threads", threads)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    sample_ms = _check_sample_ms(sample_ms)
    seed = check_seed("seed", seed)
    use_cache = check_bool("use_cache", use_cache)
    progress = check_bool("progress", progress)
    if measure is not None:
        check_callable("measure", measure)
    block_keys = [
        _stem_key(input_size),
        *(spec.key for spec in space.all_block_specs(input_size)),
        _head_key(input_size),
    ]
    network_keys = list(dict.fromkeys(network_key(a) for a in networks))
    if measure is None:
        hours = rounds * (len(block_keys) + len(network_keys)) * sample_ms / 3.6e6
        if hours > MAX_TABLE_HOURS:
            raise SizeLimitError(
                f"rounds={rounds} x {len(block_keys) + len(network_keys)} pieces x "
                f"sample_ms={sample_ms:g} would take {hours:.1f} hours of samples, more than "
                f"{MAX_TABLE_HOURS:g}: fewer rounds or shorter samples"
            )
    meta = {
        "device": "cpu",
        "torch": torch.__version__,
        "threads": threads,
        "cpu": cpu_model(),
        "input_size": input_size,
        "rounds": rounds,
        "sample_ms": sample_ms,
        "seed": seed,
        "space": repr(space),
        "networks": [network_key(a) for a in networks],
        "source": _table_source(),
    }
    cached = measure is None and use_cache
    path = None
    if cached:
        path = cache_dir() / f"nas-latency-table-{_cache.key_digest(meta)}.json"
        value = _cache.read_entry(
            path, meta, lambda v: _table_problem(v, meta, block_keys, network_keys)
        )
        if value is not None:
            return LatencyTable._from_value(value)
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
        _cache.write_entry(path, meta, table._value())  # a failed write warns, never fatal
    return table


@dataclass(frozen=True)
class LatencyPredictor:
    """predict(arch) = scale * (stem + sum of the arch's blocks + head) + overhead_ms."""

    space: SearchSpace
    table: LatencyTable
    input_size: int
    scale: float = 1.0
    overhead_ms: float = 0.0

    def __post_init__(self) -> None:
        _check_space(self.space)
        if not isinstance(self.table, LatencyTable):
            raise TypeError(f"table must be a LatencyTable, got {type(self.table).__name__}")
        object.__setattr__(
            self, "input_size", check_int("input_size", self.input_size, maximum=MAX_INPUT_SIZE)
        )
        object.__setattr__(self, "scale", check_real("scale", self.scale))
        object.__setattr__(self, "overhead_ms", check_real("overhead_ms", self.overhead_ms))

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

        With one network only the overhead is fitted (scale 1). ``measured_ms`` must hold one
        finite number > 0 per architecture.
        """
        archs = _check_archs(self.space, "archs", archs)
        y = check_finite_array("measured_ms", measured_ms, length=len(archs), positive=True)
        if not archs:
            raise ValueError("fit needs at least one architecture, got none")
        sums = np.array([self.block_sum(a) for a in archs], dtype=float)
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
    space = _check_space(space)
    input_size = check_int("input_size", input_size, maximum=MAX_INPUT_SIZE)
    archs = _check_archs(space, "archs", archs)
    if not archs:
        raise ValueError("archs must hold at least one Architecture, got none")
    threads = check_threads("threads", threads)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    sample_ms = _check_sample_ms(sample_ms)
    seed = check_seed("seed", seed)
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


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho: Pearson correlation of the ranks (ties get average ranks).

    ``x`` and ``y``: 1-D, finite, of one length >= 2. NaN when either is constant.
    """
    xs = check_finite_array("x", x, min_length=2)
    ys = check_finite_array("y", y, length=len(xs))
    rx, ry = _ranks(xs), _ranks(ys)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def within_share(predicted: ArrayLike, reference: ArrayLike, tol: float = 0.10) -> float:
    """Share of pairs with |predicted / reference - 1| <= tol.

    ``predicted`` finite, ``reference`` finite and > 0, of one length >= 1; ``tol`` a finite
    number in [0, 10].
    """
    tol = check_real("tol", tol, minimum=0.0, maximum=MAX_TOL)
    p = check_finite_array("predicted", predicted)
    r = check_finite_array("reference", reference, length=len(p), positive=True)
    return float(np.mean(np.abs(p / r - 1.0) <= tol))


def repeatability(per_round: np.ndarray, tol: float = 0.10) -> float:
    """Share of networks measured twice whose two measurements agree within +-tol.

    With 4 or more interleaved rounds, the two measurements are the medians of the even and
    of the odd rounds (two independent halves of one run); with 2 or 3 rounds, rounds 1 and 2.
    Pass speed-normalised rounds (``LatencyTable.network_rounds``) to ask whether the table's
    numbers repeat; raw rounds ask whether absolute milliseconds on this machine repeat.
    """
    tol = check_real("tol", tol, minimum=0.0, maximum=MAX_TOL)
    first, second = measurement_halves(per_round)
    return within_share(second, first, tol)


def measurement_halves(per_round: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two measurements ``repeatability`` compares, each of shape (n,).

    With 4 or more rounds, the medians of the even and of the odd rounds; with 2 or 3 rounds,
    rounds 1 and 2.
    """
    per_round = _check_rounds_array(per_round, min_rounds=2)
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
    """Predicted vs measured on held-out networks: share within +-10%, Spearman rho, MAPE.

    ``archs``: at least 2; ``measured_ms``: one finite number > 0 per arch; every prediction
    must be a finite number > 0 too (the error names the first that is not).
    """
    check_callable("predictor", predictor)
    if isinstance(archs, str | Architecture) or not isinstance(archs, Sequence):
        raise TypeError(f"archs must be a sequence of Architecture, got {type(archs).__name__}")
    meas = check_finite_array("measured_ms", measured_ms, min_length=2, positive=True)
    if len(archs) != len(meas):
        raise ValueError(
            f"validate needs one measurement per arch: {len(archs)} archs, "
            f"measured_ms has length {len(meas)}"
        )
    pred = check_finite_array(
        "the predictions predictor(archs[i])", [predictor(a) for a in archs], positive=True
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
    check_callable("metric", metric)
    meas = check_finite_array("measured", measured, min_length=3, positive=True)
    a = check_finite_array("predicted_a", predicted_a, length=len(meas))
    b = check_finite_array("predicted_b", predicted_b, length=len(meas))
    confidence = check_fraction("confidence", confidence)
    n_boot = check_int("n_boot", n_boot, maximum=MAX_BOOT)
    seed = check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    observed = metric(a, meas) - metric(b, meas)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(len(meas), size=len(meas))
        d = metric(a[i], meas[i]) - metric(b[i], meas[i])
        if np.isfinite(d):  # a resample of all-equal values has no rank correlation
            diffs.append(d)
    if not diffs:
        raise ValueError(
            f"metric gave no finite difference on any of the {n_boot} resamples (are the "
            "predictions constant?)"
        )
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(observed), float(high)
