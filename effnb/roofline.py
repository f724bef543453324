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
the compute roof from a large fp32 matrix multiply (M N K MACs), the bandwidth roof from a
large tensor copy (each element read once and written once, the STREAM "Copy" convention of
McCalpin, 1995). Both are timed with ``torch.utils.benchmark`` at an explicit thread count.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils import benchmark

from effnb._checks import check_int, check_multiplier
from effnb.bench import resolve_device, sync_fn

__all__ = ["MAX_COPY_BYTES", "Peaks", "attainable", "measure_peaks"]

MAX_COPY_BYTES = 512 * 2**20  # the copy's source + destination stay a few hundred MB at most


@dataclass(frozen=True)
class Peaks:
    """The two measured roofs: median rate over timed blocks, with the rates' IQR as spread."""

    device: str
    threads: int
    macs_per_s: float  # compute roof: median MAC/s of an n x n x n fp32 matmul
    macs_per_s_iqr: float
    bytes_per_s: float  # bandwidth roof: median bytes/s of a copy (read + write)
    bytes_per_s_iqr: float
    matmul_size: int  # n: the matmul does n^3 MACs per call
    copy_bytes: int  # bytes one copy moves: 2 x the tensor's size

    @property
    def ridge(self) -> float:
        """MACs per byte where the roofs meet: peak MAC/s / bandwidth."""
        return self.macs_per_s / self.bytes_per_s

    def __str__(self) -> str:
        where = f"{self.device}, {self.threads} thread{'s' if self.threads != 1 else ''}"
        return (
            f"compute roof {self.macs_per_s / 1e9:.1f} GMAC/s (IQR {self.macs_per_s_iqr / 1e9:.1f}; "
            f"{self.matmul_size}^3 fp32 matmul), bandwidth roof {self.bytes_per_s / 1e9:.1f} GB/s "
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


def measure_peaks(
    threads: int | None = None,
    *,
    device: str = "cpu",
    matmul_size: int = 1024,
    copy_bytes: int = 256 * 2**20,
    min_run_time: float = 0.5,
) -> Peaks:
    """Measure this machine's compute roof (MAC/s) and bandwidth roof (bytes/s).

    Compute: ``torch.mm`` of two ``matmul_size`` x ``matmul_size`` fp32 matrices into a
    preallocated output, M N K = n^3 MACs per call. Bandwidth: ``dst.copy_(src)`` of fp32
    tensors of ``copy_bytes / 2`` bytes each, counted as ``copy_bytes`` (read + write; a
    cache's write-allocate read is not counted, as in STREAM). Make the copy several times
    the last-level cache so it measures main memory. Each is warmed up, then timed for
    ``min_run_time`` seconds at ``threads`` threads (default: ``torch.get_num_threads()``).
    """
    threads = check_int("threads", threads if threads is not None else torch.get_num_threads())
    n = check_int("matmul_size", matmul_size, minimum=16)
    copy_bytes = check_int("copy_bytes", copy_bytes, minimum=8)
    if copy_bytes > MAX_COPY_BYTES:
        raise ValueError(
            f"copy_bytes must be at most {MAX_COPY_BYTES:,} (source + destination), got {copy_bytes:,}"
        )
    min_run_time = check_multiplier("min_run_time", min_run_time)
    dev = resolve_device(device)
    sync = sync_fn(dev)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(dev) for _ in range(2))
    c = torch.empty(n, n, device=dev)
    numel = copy_bytes // 8  # two fp32 tensors of 4 bytes per element
    src, dst = torch.ones(numel, device=dev), torch.empty(numel, device=dev)

    def matmul() -> None:
        torch.mm(a, b, out=c)
        sync()

    def copy() -> None:
        dst.copy_(src)
        sync()

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for _ in range(2):  # warm-up: first-touch page faults, kernel selection
            matmul()
            copy()
        macs, macs_iqr = _rates(matmul, float(n) ** 3, threads, min_run_time)
        bandwidth, bandwidth_iqr = _rates(copy, 8.0 * numel, threads, min_run_time)
    finally:
        torch.set_num_threads(previous)
    if not (math.isfinite(macs) and math.isfinite(bandwidth)):
        raise RuntimeError("the timer returned a non-finite rate")
    return Peaks(
        device=str(dev),
        threads=threads,
        macs_per_s=macs,
        macs_per_s_iqr=macs_iqr,
        bytes_per_s=bandwidth,
        bytes_per_s_iqr=bandwidth_iqr,
        matmul_size=n,
        copy_bytes=8 * numel,
    )
