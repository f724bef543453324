"""Latency of models and blocks on this machine's CPU, and on CUDA when there is one.

Everything goes through ``torch.utils.benchmark.Timer``: warm-up calls first, an explicit
thread count, CUDA synchronisation around each timed call on a GPU, eval mode under
``torch.inference_mode``. Results are ``LatencyRecord`` values with the device, threads,
batch, input shape, median and spread (interquartile range), so a table always says what
was measured where. Notebook 00 explains why one ``time.time()`` around one call lies.

On a shared machine absolute times drift by 10% or more between runs; ``compare_latency``
measures several models in interleaved rounds and reports per-round ratios, which are
what to trust.

The allocator is part of what is timed. Every record carries the minor page faults per call
over its timed calls (``resource.getrusage``: a page the process touches for the first time,
or again after the allocator gave it back to the system) and the allocator settings the
process started with (``allocator_settings``): with glibc's default thresholds, a process can
return freed activation memory to the system after every forward and fault it back in on the
next, and that alone moved MobileNetV2 by up to 1.45x from process to process here.
``effnb.allocator`` measures it across fresh processes; notebook 08 teaches it.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import pathlib
import platform
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils import benchmark

try:  # POSIX only; on Windows page faults are not counted (the records say None)
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]  # the module is absent; minor_faults checks

from effnb._checks import (
    SizeLimitError,
    check_bool,
    check_forward_fits,
    check_input_size,
    check_int,
    check_module,
    check_real,
    check_seconds,
    check_threads,
    model_dtype,
)

__all__ = [
    "Comparison",
    "LatencyRecord",
    "allocator_settings",
    "allocator_summary",
    "available_devices",
    "compare_latency",
    "format_records",
    "measure_latency",
    "median_ci",
    "minor_faults",
    "resolve_device",
    "sync_fn",
]

InputSize = int | Sequence[int]
MIN_SAMPLES = 5  # fewest per-call times a record holds, so its spread means something
MAX_WARMUP = 10_000  # untimed calls; more is a typo
MAX_ROUNDS = 10_000  # interleaved rounds of compare_latency
MAX_TOTAL_SECONDS = 3600.0  # rounds x models x min_run_time of one compare_latency call


@dataclass(frozen=True)
class LatencyRecord:
    """One latency measurement: median and spread of per-call times in milliseconds."""

    label: str
    device: str
    threads: int
    batch: int
    input_shape: tuple[int, ...]  # (C, H, W) of one sample
    median_ms: float
    iqr_ms: float  # interquartile range of the per-call times
    min_ms: float
    times_ms: tuple[float, ...] = field(repr=False)
    torch_version: str = torch.__version__
    dtype: str = "float32"  # the model's (and input's) floating dtype
    # minor page faults of the whole process per timed call (median over rounds in a
    # comparison); None where ``resource`` is unavailable (Windows)
    faults_per_call: float | None = None
    # allocator_settings() of the process that measured it
    allocator: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def spread_pct(self) -> float:
        """IQR as a percentage of the median."""
        return 100.0 * self.iqr_ms / self.median_ms if self.median_ms else float("nan")

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("times_ms")
        return d


# Environment variables that change how the C allocator hands memory to the process. glibc
# reads its MALLOC_*_ variables (aliases of its glibc.malloc.* tunables) once, at start-up.
GLIBC_VARIABLES = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
    "MALLOC_PERTURB_",
    "MALLOC_CHECK_",
    "GLIBC_TUNABLES",
)
PRELOAD_VARIABLES = ("LD_PRELOAD", "MALLOC_CONF", "TCMALLOC_RELEASE_RATE")
_ALLOCATOR_LIBRARIES = {"jemalloc": "libjemalloc", "tcmalloc": "libtcmalloc"}


@functools.cache
def _start_environment() -> tuple[dict[str, str], str]:
    """The environment this process started with, and where it was read from (read once).

    glibc and ``LD_PRELOAD`` act on the environment at start-up; a variable set later in
    ``os.environ`` changes nothing. On Linux ``/proc/self/environ`` holds the start-up copy.
    """
    try:
        raw = pathlib.Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ), "os.environ"
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env, "/proc/self/environ"


@functools.cache
def _loaded_allocator() -> str | None:
    """Path of a jemalloc or tcmalloc library mapped into this process (Linux), else None.

    Read once: a preloaded allocator is mapped before the first line of Python runs."""
    try:
        maps = pathlib.Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split()[-1] if line.split() else ""
        if any(lib in pathlib.Path(path).name for lib in _ALLOCATOR_LIBRARIES.values()):
            return path
    return None


def allocator_settings() -> dict[str, str]:
    """The allocator settings this process runs under, as ``{name: value}`` strings.

    Always: ``platform``, ``libc`` and ``allocator`` (one phrase: ``"glibc 2.36 malloc,
    configured"``, ``"... defaults"``, ``"jemalloc (preloaded)"``, ...). Then every glibc malloc
    variable (``GLIBC_VARIABLES``) and ``LD_PRELOAD`` / ``MALLOC_CONF`` that was set when the
    process started (read from ``/proc/self/environ`` on Linux), ``preloaded`` when a jemalloc
    or tcmalloc library is mapped into the process, ``set after start`` naming variables that
    ``os.environ`` has now but the process did not start with (they have no effect), and on
    macOS, Windows or a non-glibc Linux a ``not controlled`` entry saying what effnb cannot
    set there. Nothing here changes a setting: it reports them.
    """
    start, source = _start_environment()
    system = platform.system()
    out: dict[str, str] = {"platform": f"{system} {platform.machine()}".strip()}
    libc, version = platform.libc_ver()
    if system == "Linux":
        try:
            libc_text = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (ValueError, OSError, AttributeError):
            libc_text = f"{libc} {version}".strip()
        out["libc"] = libc_text or "unknown (not glibc)"
    else:
        out["libc"] = f"{libc} {version}".strip() or f"the {system} C library"
    glibc = out["libc"].startswith("glibc")
    set_vars = {k: start[k] for k in GLIBC_VARIABLES + PRELOAD_VARIABLES if k in start}
    loaded = _loaded_allocator()
    if loaded is not None:
        name = next(n for n, lib in _ALLOCATOR_LIBRARIES.items() if lib in loaded)
        allocator = f"{name} (preloaded)"
        out["preloaded"] = loaded
    elif glibc:
        tunables = start.get("GLIBC_TUNABLES", "")
        trim = "MALLOC_TRIM_THRESHOLD_" in set_vars or "malloc.trim_threshold" in tunables
        mmap = "MALLOC_MMAP_THRESHOLD_" in set_vars or "malloc.mmap_threshold" in tunables
        state = (
            "configured (trim and mmap thresholds fixed)"
            if trim and mmap
            else "partly configured"
            if trim or mmap
            else "defaults (dynamic trim and mmap thresholds)"
        )
        allocator = f"{out['libc']} malloc, {state}"
    else:
        allocator = "the system allocator"
    out["allocator"] = allocator
    out.update(set_vars)
    late = sorted(
        k
        for k in GLIBC_VARIABLES + PRELOAD_VARIABLES
        if source != "os.environ" and os.environ.get(k) != start.get(k)
    )
    if late:
        out["set after start"] = (
            f"{', '.join(late)} differ in os.environ from the start-up environment: the "
            "allocator read them at start-up, so the new values have no effect"
        )
    if system == "Darwin":
        out["not controlled"] = (
            "macOS: the system allocator (libmalloc) has no settings effnb sets; times here "
            "include whatever it does with freed memory"
        )
    elif system == "Windows":
        out["not controlled"] = (
            "Windows: the system heap has no settings effnb sets, and page faults are not "
            "counted (no resource module)"
        )
    elif not glibc and loaded is None:
        out["not controlled"] = (
            f"{out['libc']}: not glibc, so the MALLOC_*_ variables the course sets do nothing"
        )
    return out


def allocator_summary(settings: dict[str, str] | None = None) -> str:
    """One line for a printout: the allocator phrase, the variables set, what is not controlled."""
    settings = allocator_settings() if settings is None else settings
    skip = {"platform", "libc", "allocator", "preloaded"}
    extra = [f"{k}={v}" for k, v in settings.items() if k not in skip]
    line = f"allocator: {settings.get('allocator', 'unknown')}"
    return line + (f"; {'; '.join(extra)}" if extra else "")


def minor_faults() -> int | None:
    """Minor page faults of this process so far (``getrusage(RUSAGE_SELF).ru_minflt``; every
    thread counts), or None where the ``resource`` module does not exist (Windows)."""
    if resource is None:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def _faults_per_call(before: int | None, after: int | None, calls: int) -> float | None:
    if before is None or after is None or calls <= 0:
        return None
    return (after - before) / calls


def available_devices() -> list[str]:
    """'cpu', plus 'cuda' when a GPU is usable."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """'auto' (or None) picks CUDA when available, else CPU; asking for CUDA without one is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here; use 'cpu' or 'auto'"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return dev


def sync_fn(device: torch.device) -> Callable[[], None]:
    """What to call after a timed step: ``torch.cuda.synchronize`` on a GPU (kernels run
    asynchronously, so without it we would time the launch, not the work), nothing on CPU."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _prepare(
    model: nn.Module,
    input_size: InputSize,
    batch: int,
    device: torch.device,
    channels_last: bool,
    name: str = "model",
) -> tuple[Callable[[], None], tuple[int, ...], list[int]]:
    """The timed step for ``model``: eval mode on ``device``, a random input in the model's
    own dtype (a half or double model is timed in half or double), checked before any timing.

    The third value is a one-element list counting the step's calls, so the page faults over
    exactly the timed calls (calibration included) can be divided by their number.
    """
    check_module(name, model)
    batch = check_int("batch", batch)
    check_bool("channels_last", channels_last)
    dtype = model_dtype(model)
    shape = check_input_size(input_size, getattr(model, "in_chans", 3), batch=batch, dtype=dtype)
    check_forward_fits(model, (batch, *shape), dtype, name="input_size", value=input_size)
    model = model.to(device).eval()
    x = torch.randn(batch, *shape, device=device, dtype=dtype)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    check = getattr(model, "check_input", None)
    if check is not None:
        check(x)  # a clear error before any timing
    sync = sync_fn(device)
    calls = [0]

    def step() -> None:
        with torch.inference_mode():
            model(x)
        sync()
        calls[0] += 1

    return step, shape, calls


def measure_latency(
    model: nn.Module,
    input_size: InputSize = 224,
    *,
    batch: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    warmup: int = 3,
    min_run_time: float = 0.5,
    channels_last: bool = False,
    label: str | None = None,
) -> LatencyRecord:
    """Median latency of one forward pass (ms), with ``warmup`` untimed calls first.

    The model is put in eval mode and moved to ``device`` (it stays there). The input has
    the model's dtype (float32, or half/double for a converted model; recorded as
    ``dtype``). ``threads`` defaults to ``torch.get_num_threads()``, at most
    ``effnb._checks.max_threads()``, and is recorded. ``min_run_time`` is the seconds
    (positive, at most ``MAX_SECONDS``) ``Timer.blocked_autorange`` spends; each of its blocks
    averages several calls, and the record holds the per-call time of every block (at least
    ``MIN_SAMPLES``). Arguments are checked before anything is allocated or timed.
    """
    dev = resolve_device(device)
    threads = check_threads("threads", threads if threads is not None else torch.get_num_threads())
    min_run_time = check_seconds("min_run_time", min_run_time)
    warmup = check_int("warmup", warmup, minimum=0, maximum=MAX_WARMUP)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string or None, got {label!r}")
    step, shape, calls = _prepare(model, input_size, batch, dev, channels_last)
    for _ in range(warmup):
        step()
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    faults_before, calls_before = minor_faults(), calls[0]
    times = list(timer.blocked_autorange(min_run_time=min_run_time).times)
    while (
        len(times) < MIN_SAMPLES
    ):  # a slow model fills min_run_time with one block: add single calls
        times.append(timer.timeit(number=1).median)
    faults = _faults_per_call(faults_before, minor_faults(), calls[0] - calls_before)
    label = label or type(model).__name__
    times_ms = [t * 1e3 for t in times]
    return _record(label, dev, threads, batch, shape, times_ms, model_dtype(model), faults)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _record(
    label: str,
    dev: torch.device,
    threads: int,
    batch: int,
    shape,
    times_ms: list[float],
    dtype: torch.dtype = torch.float32,
    faults_per_call: float | None = None,
) -> LatencyRecord:
    times_sorted = sorted(times_ms)
    q = statistics.quantiles(times_sorted, n=4) if len(times_sorted) > 1 else [times_sorted[0]] * 3
    return LatencyRecord(
        label=label,
        device=str(dev),
        threads=threads,
        batch=batch,
        input_shape=tuple(shape),
        median_ms=statistics.median(times_sorted),
        iqr_ms=q[2] - q[0],
        min_ms=times_sorted[0],
        times_ms=tuple(times_ms),
        dtype=_dtype_name(dtype),
        faults_per_call=faults_per_call,
        allocator=allocator_settings(),
    )


@dataclass(frozen=True)
class Comparison:
    """Interleaved measurements of several models: one record each, plus per-round times
    and per-round minor page faults per call (empty when they were not counted)."""

    records: dict[str, LatencyRecord]
    rounds: dict[str, tuple[float, ...]]  # label -> per-round median (ms)
    faults: dict[str, tuple[float, ...]] = field(default_factory=dict)  # label -> per round

    @property
    def allocator(self) -> dict[str, str]:
        """The allocator settings the run was measured under (``allocator_settings()``)."""
        first = next(iter(self.records.values()), None)
        return dict(first.allocator) if first is not None else {}

    def _check_labels(self, label: str, baseline: str) -> None:
        for name in (label, baseline):
            if not isinstance(name, str) or name not in self.rounds:
                raise ValueError(f"unknown label {name!r}; measured: {list(self.rounds)}")

    def ratio(self, label: str, baseline: str) -> float:
        """Median over rounds of time(label) / time(baseline): < 1 means faster than baseline."""
        return statistics.median(self.ratios(label, baseline))

    def ratios(self, label: str, baseline: str) -> list[float]:
        """The per-round ratios time(label) / time(baseline), in round order."""
        self._check_labels(label, baseline)
        return [a / b for a, b in zip(self.rounds[label], self.rounds[baseline], strict=True)]

    def ratio_ci(
        self, label: str, baseline: str, confidence: float = 0.95
    ) -> tuple[float, float, float]:
        """(low, median, high): a distribution-free confidence interval for the median ratio.

        From the order statistics of the n per-round ratios r_(1) <= ... <= r_(n): the interval
        [r_(k), r_(n+1-k)] covers the true median with probability 1 - 2 P(Bin(n, 1/2) < k),
        k the largest index that keeps that >= ``confidence`` (the sign-test interval;
        Conover, *Practical Nonparametric Statistics*, 3rd ed., sec. 3.2). With too few
        rounds for that confidence (n < 6 at 95%) the interval is (nan, median, nan).
        """
        return median_ci(self.ratios(label, baseline), confidence)

    def verdict(
        self, label: str, baseline: str, confidence: float = 0.95, tolerance: float = 0.0
    ) -> str:
        """One sentence, from the data: is ``label`` faster or slower than ``baseline``?

        "Resolved" means the whole confidence interval of the median per-round ratio
        (``ratio_ci``) lies on one side of 1 +- ``tolerance``, or, with a ``tolerance`` > 0,
        inside [1 - tolerance, 1 + tolerance] (the two are equal within it); otherwise the
        sentence says the run cannot tell them apart. Times are per call on this run's device
        and threads.
        """
        tolerance = check_real(
            "tolerance", tolerance, minimum=0.0, maximum=1.0, include_maximum=False
        )
        lo, med, hi = self.ratio_ci(label, baseline, confidence)
        n = len(self.rounds[label])
        rec = self.records[label]
        where = f"{rec.device}, {rec.threads} thread{'s' if rec.threads != 1 else ''}, {n} rounds"
        ci = (
            f"{confidence:.0%} CI {lo:.2f}-{hi:.2f}"
            if math.isfinite(lo)
            else "too few rounds for a CI"
        )
        head = f"{label} / {baseline} time ratio {med:.2f} ({ci}; {where})"
        if math.isfinite(hi) and hi < 1 - tolerance:
            return f"{head}: {label} is faster, {1 / med:.2f}x (resolved)"
        if math.isfinite(lo) and lo > 1 + tolerance:
            return f"{head}: {label} is slower, {med:.2f}x the time (resolved)"
        if tolerance > 0 and 1 - tolerance <= lo and hi <= 1 + tolerance:
            return f"{head}: equal within {tolerance:.0%} (resolved)"
        return f"{head}: not resolved, this run cannot tell them apart"

    def ranking(self, confidence: float = 0.95) -> str:
        """Labels from fastest to slowest by median time (with minor page faults per call
        when counted), each neighbour pair's verdict below, the allocator settings last."""
        order = sorted(self.records, key=lambda k: self.records[k].median_ms)
        lines = [
            " < ".join(
                f"{k} ({self.records[k].median_ms:.3g} ms{_faults_text(k, self)})" for k in order
            )
            + "  (median per-round times)"
        ]
        for a, b in itertools.pairwise(order):
            lines.append("  " + self.verdict(a, b, confidence))
        lines.append("  " + allocator_summary(self.allocator))
        return "\n".join(lines)

    def speedup(self, label: str, baseline: str) -> float:
        """Median over rounds of time(baseline) / time(label): > 1 means faster than baseline."""
        self._check_labels(label, baseline)
        return statistics.median(
            b / a for a, b in zip(self.rounds[label], self.rounds[baseline], strict=True)
        )


def _faults_text(label: str, comparison: Comparison) -> str:
    faults = comparison.records[label].faults_per_call
    return "" if faults is None else f", {faults:,.0f} faults/call"


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(low, median, high) of ``values`` with the sign-test confidence interval of the median.

    See ``Comparison.ratio_ci``; (nan, median, nan) when there are too few values.
    """
    confidence = check_real(
        "confidence",
        confidence,
        minimum=0.0,
        maximum=1.0,
        include_minimum=False,
        include_maximum=False,
    )
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"values must be a sequence of numbers, got {type(values).__name__}")
    x = sorted(check_real(f"values[{i}]", v) for i, v in enumerate(values))
    n = len(x)
    if n == 0:
        raise ValueError("median_ci needs at least one value; values is empty")
    med = statistics.median(x)
    k = 0  # largest k with coverage 1 - 2 P(Bin(n, 1/2) <= k - 1) >= confidence
    for j in range(1, n // 2 + 1):
        tail = sum(math.comb(n, i) for i in range(j)) / 2**n
        if 1 - 2 * tail >= confidence:
            k = j
        else:
            break
    if k == 0:
        return float("nan"), med, float("nan")
    return x[k - 1], med, x[n - k]


def compare_latency(
    models: Mapping[str, nn.Module],
    input_size: InputSize | Mapping[str, InputSize] = 224,
    *,
    batch: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    rounds: int = 10,
    min_run_time: float = 0.2,
    warmup: int = 3,
    channels_last: bool | Mapping[str, bool] = False,
) -> Comparison:
    """Measure several models in ``rounds`` interleaved rounds (order rotated each round).

    Each round times every model for ``min_run_time`` seconds; a model's record holds its
    per-round medians, so drift on a shared machine hits all models alike and
    ``Comparison.ratio`` (median of per-round ratios) stays trustworthy. Minor page faults
    are counted over each round's calls (``Comparison.faults``; the record holds their
    median) and the records carry ``allocator_settings()``.
    """
    if not isinstance(models, Mapping) or not models:
        raise TypeError("models must be a non-empty mapping of label -> nn.Module")
    for label in models:
        if not isinstance(label, str):
            raise TypeError(f"models' labels must be strings, got {label!r}")
    for arg_name, arg in (("input_size", input_size), ("channels_last", channels_last)):
        if isinstance(arg, Mapping):
            missing = [k for k in models if k not in arg]
            if missing:
                raise ValueError(f"{arg_name} has no entry for {missing}; it has {list(arg)}")
    dev = resolve_device(device)
    threads = check_threads("threads", threads if threads is not None else torch.get_num_threads())
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    min_run_time = check_seconds("min_run_time", min_run_time)
    warmup = check_int("warmup", warmup, minimum=0, maximum=MAX_WARMUP)
    planned = rounds * len(models) * min_run_time
    if planned > MAX_TOTAL_SECONDS:
        raise SizeLimitError(
            f"rounds={rounds} x {len(models)} models x min_run_time={min_run_time:g} s would time "
            f"for {planned:,.0f} s, more than the {MAX_TOTAL_SECONDS:,.0f} s one comparison may take"
        )
    steps, shapes, dtypes, calls = {}, {}, {}, {}
    for label, model in models.items():
        size = input_size[label] if isinstance(input_size, Mapping) else input_size
        cl = channels_last[label] if isinstance(channels_last, Mapping) else channels_last
        steps[label], shapes[label], calls[label] = _prepare(
            model, size, batch, dev, cl, f"models[{label!r}]"
        )
        dtypes[label] = model_dtype(model)
    for label in models:
        for _ in range(warmup):
            steps[label]()
    labels = list(models)
    per_round: dict[str, list[float]] = {label: [] for label in labels}
    faults: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            timer = benchmark.Timer(
                stmt="step()", globals={"step": steps[label]}, num_threads=threads
            )
            before, calls_before = minor_faults(), calls[label][0]
            per_round[label].append(timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)
            per_call = _faults_per_call(before, minor_faults(), calls[label][0] - calls_before)
            if per_call is not None:
                faults[label].append(per_call)
    records = {
        label: _record(
            label,
            dev,
            threads,
            batch,
            shapes[label],
            per_round[label],
            dtypes[label],
            statistics.median(faults[label]) if faults[label] else None,
        )
        for label in labels
    }
    return Comparison(
        records=records,
        rounds={k: tuple(v) for k, v in per_round.items()},
        faults={k: tuple(v) for k, v in faults.items() if v},
    )


def format_records(records: Sequence[LatencyRecord] | Mapping[str, LatencyRecord]) -> str:
    """A plain-text table: label, device, threads, batch, input, median ms, IQR ms, minor page
    faults per call ("-" where not counted), then the allocator settings the records were
    measured under (one line per distinct setting)."""
    recs = list(records.values()) if isinstance(records, Mapping) else list(records)
    width = max([24] + [len(r.label) for r in recs])
    head = (
        f"{'model':{width}s} {'device':7s} {'thr':>3s} {'batch':>5s} {'input':>13s} "
        f"{'median ms':>10s} {'IQR ms':>8s} {'faults/call':>11s}"
    )
    lines = [head, "-" * len(head)]
    for r in recs:
        shape = "x".join(map(str, r.input_shape))
        faults = "-" if r.faults_per_call is None else f"{r.faults_per_call:,.0f}"
        lines.append(
            f"{r.label:{width}s} {r.device:7s} {r.threads:>3d} {r.batch:>5d} {shape:>13s} "
            f"{r.median_ms:>10.2f} {r.iqr_ms:>8.2f} {faults:>11s}"
        )
    summaries = list(dict.fromkeys(allocator_summary(r.allocator) for r in recs if r.allocator))
    lines.extend(summaries)
    return "\n".join(lines)
