"""The roofline model with this machine's roofs, measured (notebook 01).

Williams, Waterman and Patterson, "Roofline: an insightful visual performance model for
multicore architectures", Communications of the ACM 52(4), 2009: a kernel that does W units
of work while moving Q bytes between the processor and main memory has arithmetic intensity
I = W / Q, and it cannot run faster than

    attainable(I) = min(peak compute rate, I x peak memory bandwidth).

The two roofs meet at the ridge point I = peak / bandwidth: below it a kernel is bound by
memory, above it by arithmetic. Here the unit of work is the MAC (one multiply-accumulate;
FLOPs = 2 x MACs), so the compute roof is in MAC/s and the intensity in MACs per byte.

``measure_peaks`` measures both roofs on this machine rather than quoting a data sheet:
the compute roof as the fastest of a few large fp32 matrix multiplies (M N K MACs each;
one 1024^3 product underestimates what the BLAS reaches on larger or differently shaped
products, and convolutions have been measured above it), the bandwidth roof from a large
tensor copy (each element read once and written once, the STREAM "Copy" convention of
McCalpin, 1995). Both are timed with ``torch.utils.benchmark`` at an explicit thread count.

``place`` puts a measured model (or backend) on the roofline: given its MACs, the bytes it
moves and its measured time, it returns the intensity, the achieved MAC/s and the fraction
of the roof attainable at that intensity. ``model_traffic`` counts the MACs and an
estimate of the bytes from ``effnb.costs.profile`` (notebook 08).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark

from effnb._checks import check_int, check_module, check_multiplier, check_real
from effnb.bench import resolve_device, sync_fn

__all__ = [
    "GEMM_SHAPES",
    "MAX_COPY_BYTES",
    "Peaks",
    "Placement",
    "attainable",
    "measure_peaks",
    "model_traffic",
    "place",
]

MAX_COPY_BYTES = 512 * 2**20  # the copy's source + destination stay a few hundred MB at most
MAX_GEMM_MACS = 2**34  # one product of at most ~17 GMAC (seconds, not minutes, on one core)
# (M, K, N) of the products the compute roof is the best of: square ones of two sizes, a
# long inner dimension (more work per element loaded), and the shape of a 1x1 convolution
# at 56 x 56 pixels (3136 rows) with 576 channels in and out.
GEMM_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1024, 1024, 1024),
    (1536, 1536, 1536),
    (1024, 4096, 1024),
    (3136, 576, 576),
)


@dataclass(frozen=True)
class Peaks:
    """The two measured roofs: median rate over timed blocks, with the rates' IQR as spread."""

    device: str
    threads: int
    macs_per_s: float  # compute roof: the best median MAC/s over the fp32 products timed
    macs_per_s_iqr: float  # IQR of that product's rates
    bytes_per_s: float  # bandwidth roof: median bytes/s of a copy (read + write)
    bytes_per_s_iqr: float
    matmul_shape: tuple[int, int, int]  # (M, K, N) of the fastest product: M K N MACs per call
    copy_bytes: int  # bytes one copy moves: 2 x the tensor's size
    # every product timed: ((M, K, N), median MAC/s), in the order measured
    matmul_rates: tuple[tuple[tuple[int, int, int], float], ...] = ()

    @property
    def ridge(self) -> float:
        """MACs per byte where the roofs meet: peak MAC/s / bandwidth."""
        return self.macs_per_s / self.bytes_per_s

    def __str__(self) -> str:
        where = f"{self.device}, {self.threads} thread{'s' if self.threads != 1 else ''}"
        m, k, n = self.matmul_shape
        others = len(self.matmul_rates) - 1
        best = (
            f"best of {len(self.matmul_rates)} fp32 products: {m}x{k} @ {k}x{n}"
            if others > 0
            else f"{m}x{k} @ {k}x{n} fp32 product"
        )
        return (
            f"compute roof {self.macs_per_s / 1e9:.1f} GMAC/s (IQR {self.macs_per_s_iqr / 1e9:.1f}; "
            f"{best}), bandwidth roof {self.bytes_per_s / 1e9:.1f} GB/s "
            f"(IQR {self.bytes_per_s_iqr / 1e9:.1f}; a copy moving {self.copy_bytes / 2**20:.0f} MiB), "
            f"ridge at {self.ridge:.1f} MACs/byte ({where})"
        )


def attainable(intensity, peaks: Peaks):
    """The roofline: min(peak MAC/s, intensity x bytes/s) (Williams et al., CACM 2009).

    ``intensity`` is in MACs per byte moved to or from main memory; a number gives a float,
    an array gives an array of the same shape.
    """
    values = np.asarray(intensity, dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"intensity must be finite and >= 0 MACs/byte, got {intensity!r}")
    roof = np.minimum(peaks.macs_per_s, values * peaks.bytes_per_s)
    return float(roof) if roof.ndim == 0 else roof


def _rates(step, work: float, threads: int, min_run_time: float) -> tuple[float, float]:
    """(median, IQR) of work / seconds over the per-call times of ``blocked_autorange``."""
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    times = list(timer.blocked_autorange(min_run_time=min_run_time).times)
    while len(times) < 5:  # a slow call fills min_run_time with one block: add single calls
        times.append(timer.timeit(number=1).median)
    rates = [work / t for t in times]
    q = statistics.quantiles(rates, n=4)
    return statistics.median(rates), q[2] - q[0]


def _gemm_shapes(matmul_size: int | None, shapes) -> tuple[tuple[int, int, int], ...]:
    if matmul_size is not None:
        if shapes is not None:
            raise ValueError("give matmul_size (one n x n x n product) or matmul_shapes, not both")
        n = check_int("matmul_size", matmul_size, minimum=16)
        out: tuple[tuple[int, int, int], ...] = ((n, n, n),)
    elif shapes is None:
        out = GEMM_SHAPES
    else:
        if isinstance(shapes, str) or not isinstance(shapes, Sequence) or not shapes:
            raise TypeError(f"matmul_shapes must be a non-empty list of (M, K, N), got {shapes!r}")
        checked = []
        for i, shape in enumerate(shapes):
            if isinstance(shape, str) or not isinstance(shape, Sequence) or len(shape) != 3:
                raise TypeError(f"matmul_shapes[{i}] must be (M, K, N), got {shape!r}")
            checked.append(tuple(check_int(f"matmul_shapes[{i}]", d, minimum=16) for d in shape))
        out = tuple(checked)  # type: ignore[arg-type]  # three ints each, checked above
    for m, k, n in out:
        if m * k * n > MAX_GEMM_MACS:
            raise ValueError(
                f"matmul shape ({m}, {k}, {n}) does {m * k * n:,} MACs per call, more than "
                f"{MAX_GEMM_MACS:,}: choose smaller products"
            )
    return out


def measure_peaks(
    threads: int | None = None,
    *,
    device: str = "cpu",
    matmul_size: int | None = None,
    matmul_shapes: Sequence[tuple[int, int, int]] | None = None,
    copy_bytes: int = 256 * 2**20,
    min_run_time: float = 0.5,
) -> Peaks:
    """Measure this machine's compute roof (MAC/s) and bandwidth roof (bytes/s).

    Compute: ``torch.mm`` of fp32 (M, K) @ (K, N) into a preallocated output, M K N MACs per
    call, for each shape of ``matmul_shapes`` (default ``GEMM_SHAPES``; ``matmul_size=n``
    times the one n x n x n product instead); the roof is the best median rate, since a roof
    is what the fastest well-tuned kernel reaches here. Bandwidth: ``dst.copy_(src)`` of fp32
    tensors of ``copy_bytes / 2`` bytes each, counted as ``copy_bytes`` (read + write; a
    cache's write-allocate read is not counted, as in STREAM). Make the copy several times
    the last-level cache so it measures main memory. Each is warmed up, then timed for
    ``min_run_time`` seconds at ``threads`` threads (default: ``torch.get_num_threads()``).
    """
    threads = check_int("threads", threads if threads is not None else torch.get_num_threads())
    shapes = _gemm_shapes(matmul_size, matmul_shapes)
    copy_bytes = check_int("copy_bytes", copy_bytes, minimum=8)
    if copy_bytes > MAX_COPY_BYTES:
        raise ValueError(
            f"copy_bytes must be at most {MAX_COPY_BYTES:,} (source + destination), got {copy_bytes:,}"
        )
    min_run_time = check_multiplier("min_run_time", min_run_time)
    dev = resolve_device(device)
    sync = sync_fn(dev)
    gen = torch.Generator().manual_seed(0)
    numel = copy_bytes // 8  # two fp32 tensors of 4 bytes per element
    src, dst = torch.ones(numel, device=dev), torch.empty(numel, device=dev)

    def copy() -> None:
        dst.copy_(src)
        sync()

    rates: list[tuple[tuple[int, int, int], float, float]] = []
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for m, k, n in shapes:
            a = torch.randn(m, k, generator=gen).to(dev)
            b = torch.randn(k, n, generator=gen).to(dev)
            c = torch.empty(m, n, device=dev)

            def matmul(a=a, b=b, c=c) -> None:
                torch.mm(a, b, out=c)
                sync()

            for _ in range(2):  # warm-up: first-touch page faults, kernel selection
                matmul()
            rate, iqr = _rates(matmul, float(m) * k * n, threads, min_run_time)
            rates.append(((m, k, n), rate, iqr))
            del a, b, c
        for _ in range(2):
            copy()
        bandwidth, bandwidth_iqr = _rates(copy, 8.0 * numel, threads, min_run_time)
    finally:
        torch.set_num_threads(previous)
    best_shape, macs, macs_iqr = max(rates, key=lambda r: r[1])
    if not (math.isfinite(macs) and math.isfinite(bandwidth)):
        raise RuntimeError("the timer returned a non-finite rate")
    return Peaks(
        device=str(dev),
        threads=threads,
        macs_per_s=macs,
        macs_per_s_iqr=macs_iqr,
        bytes_per_s=bandwidth,
        bytes_per_s_iqr=bandwidth_iqr,
        matmul_shape=best_shape,
        copy_bytes=8 * numel,
        matmul_rates=tuple((shape, rate) for shape, rate, _ in rates),
    )


@dataclass(frozen=True)
class Placement:
    """A measured workload on the roofline (Williams et al., CACM 2009)."""

    label: str
    macs: float
    bytes_moved: float
    seconds: float  # measured time of one call
    intensity: float  # MACs per byte: macs / bytes_moved
    achieved: float  # MAC/s: macs / seconds
    roof: float  # attainable MAC/s at this intensity: min(peak, intensity x bandwidth)
    fraction: float  # achieved / roof
    bound: str  # "memory" below the ridge, "compute" at or above it

    def __str__(self) -> str:
        return (
            f"{self.label}: I = {self.intensity:.1f} MACs/byte ({self.bound}-bound side), "
            f"{self.achieved / 1e9:.1f} GMAC/s achieved = {100 * self.fraction:.1f}% of the "
            f"{self.roof / 1e9:.1f} GMAC/s attainable there ({self.seconds * 1e3:.2f} ms per call)"
        )


def place(label: str, macs: float, bytes_moved: float, seconds: float, peaks: Peaks) -> Placement:
    """Put a measured workload on ``peaks``' roofline.

    intensity I = macs / bytes_moved (MACs per byte); achieved = macs / seconds (MAC/s);
    roof = attainable(I) = min(peak MAC/s, I x bandwidth); fraction = achieved / roof. A
    fraction above 1 means the bytes did not all come from main memory (caches served part
    of them) or the roofs were measured under other load than the workload.
    """
    if not isinstance(label, str):
        raise TypeError(f"label must be a string, got {label!r}")
    if not isinstance(peaks, Peaks):
        raise TypeError(f"peaks must be a Peaks (from measure_peaks), got {type(peaks).__name__}")
    macs = check_real("macs", macs, minimum=0.0, include_minimum=False)
    bytes_moved = check_real("bytes_moved", bytes_moved, minimum=0.0, include_minimum=False)
    seconds = check_real("seconds", seconds, minimum=0.0, include_minimum=False)
    intensity = macs / bytes_moved
    roof = attainable(intensity, peaks)
    achieved = macs / seconds
    return Placement(
        label=label,
        macs=macs,
        bytes_moved=bytes_moved,
        seconds=seconds,
        intensity=intensity,
        achieved=achieved,
        roof=roof,
        fraction=achieved / roof,
        bound="memory" if intensity < peaks.ridge else "compute",
    )


def model_traffic(model: nn.Module, input_size=224, *, batch: int = 1) -> tuple[int, int]:
    """(MACs, bytes moved) of one forward pass, from ``effnb.costs.profile``.

    MACs: conv + linear multiply-accumulates. Bytes: every parameter read once, plus, for
    every convolution and linear layer, its input read and its output written once (element
    size of the model's dtype). BatchNorm, activations, pooling and additions are taken as
    fused into the layer before them, as BatchNorm folding and a runtime's fusion make
    them. No reuse through caches is assumed, so this is an upper bound on main-memory
    traffic (a lower bound on the intensity): at batch 1 the small late activations stay in
    cache, which can put a model above its memory roof. The same count serves every backend
    of one model, so their points differ only in time.
    """
    from effnb.costs import profile

    check_module("model", model)
    report = profile(model, input_size, batch=batch)
    element = torch.empty((), dtype=getattr(torch, report.dtype)).element_size()
    target = getattr(model, "shape_model", None)
    params = sum(p.numel() for p in (target() if callable(target) else model).parameters())
    traffic = params * element
    for layer in report.layers:
        if layer.type in ("Conv2d", "Linear"):
            traffic += (math.prod(layer.input_shape) + math.prod(layer.output_shape)) * element
    return report.macs, traffic
