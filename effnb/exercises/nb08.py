"""Checks for notebook 08 (deployment: the allocator, the ladder, the roofline)."""

from __future__ import annotations

import math
from typing import Any

import torch

from effnb.exercises import exercise

# Shapes with four different sizes, so that every stride is a different product.
_SHAPES = ((2, 3, 5, 7), (1, 16, 4, 9), (3, 8, 6, 2))


def _strides(fn, shape: tuple[int, int, int, int]) -> tuple[int, ...]:
    got = fn(*shape)
    try:
        values = tuple(int(v) for v in got)
    except (TypeError, ValueError):
        raise AssertionError(
            f"nhwc_strides{shape} should return four integers (N, C, H, W strides), got {got!r}"
        ) from None
    if len(values) != 4:
        raise AssertionError(
            f"nhwc_strides{shape} returned {len(values)} strides; a 4-D tensor has 4"
        )
    return values


@exercise(
    "8.1",
    hint="in memory, the C values of one pixel sit next to each other, then the next pixel of "
    "the row (W), then the next row (H), then the next image (N); give the strides in the "
    "order of the dims (N, C, H, W).",
)
def nhwc_strides(fn) -> str:
    if not callable(fn):
        raise AssertionError(f"hand in the function nhwc_strides(n, c, h, w), got {fn!r}")
    for n, c, h, w in _SHAPES:
        got = _strides(fn, (n, c, h, w))
        want = torch.empty(n, c, h, w, memory_format=torch.channels_last).stride()
        if got == tuple(want):
            continue
        shape = f"(n, c, h, w) = {(n, c, h, w)}"
        if got == (c * h * w, h * w, w, 1):
            raise AssertionError(
                f"{shape}: these are the strides of the default NCHW (contiguous) layout, where "
                "each channel is a whole H x W plane; channels-last interleaves the channels"
            )
        if got == (h * w * c, w * c, c, 1):
            raise AssertionError(
                f"{shape}: right numbers, but in the order of an (N, H, W, C) tensor's dims. "
                "PyTorch keeps the logical dims (N, C, H, W) and only changes their strides: "
                "give them in that order"
            )
        if got == (h * w * c, 1, c, h * c):
            raise AssertionError(
                f"{shape}: H and W are swapped: the next pixel of a row (W) is c values away, "
                "the next row (H) a whole row of W pixels away"
            )
        raise AssertionError(f"{shape}: got strides {got}, which are not channels-last")
    return "the same strides as torch.empty(..., memory_format=torch.channels_last).stride()"


def _triple(fn, args: tuple[float, ...]) -> tuple[float, float, float]:
    got: Any = fn(*args)
    try:
        values = tuple(float(v) for v in got)
    except (TypeError, ValueError):
        raise AssertionError(
            f"roofline_point should return (intensity, achieved MAC/s, fraction), got {got!r}"
        ) from None
    if len(values) != 3:
        raise AssertionError(f"roofline_point should return 3 numbers, got {len(values)}")
    return values[0], values[1], values[2]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


# (macs, bytes, seconds, peak MAC/s, bandwidth bytes/s): one point left of the ridge (4 MACs
# per byte here), one right of it, with numbers that tell each wrong formula apart.
_CASES = (
    (6e9, 3e9, 0.5, 40e9, 10e9),  # I = 2 (memory side): roof 20 GMAC/s, 12 achieved: 0.6
    (8e9, 1e9, 0.4, 40e9, 10e9),  # I = 8 (compute side): roof 40, 20 achieved: 0.5
)


@exercise(
    "8.2",
    hint="intensity = MACs / bytes; achieved = MACs / seconds; the roof at that intensity is "
    "the smaller of the peak and intensity x bandwidth; the fraction is achieved / roof.",
)
def roofline_point(fn) -> str:
    if not callable(fn):
        raise AssertionError(f"hand in the function roofline_point(...), got {fn!r}")
    for macs, nbytes, seconds, peak, bandwidth in _CASES:
        intensity, achieved, fraction = _triple(fn, (macs, nbytes, seconds, peak, bandwidth))
        want_i = macs / nbytes
        want_a = macs / seconds
        roof = min(peak, want_i * bandwidth)
        where = f"for {macs:.0e} MACs, {nbytes:.0e} bytes, {seconds} s"
        if not _close(intensity, want_i):
            if _close(intensity, nbytes / macs):
                raise AssertionError(
                    f"{where}: your intensity is bytes per MAC; arithmetic intensity is work "
                    "per byte moved, MACs / bytes"
                )
            if _close(intensity, 2 * macs / nbytes):
                raise AssertionError(
                    f"{where}: your intensity counts FLOPs (2 per MAC); the roofs here are in MACs"
                )
            raise AssertionError(f"{where}: the intensity is off")
        if not _close(achieved, want_a):
            if _close(achieved, 2 * want_a):
                raise AssertionError(
                    f"{where}: you counted FLOPs (2 per MAC) per second; the roofs here are in "
                    "MACs per second"
                )
            raise AssertionError(f"{where}: the achieved rate is off (work per second)")
        if not _close(fraction, want_a / roof):
            if _close(fraction, want_a / peak):
                raise AssertionError(
                    f"{where}: you divided by the compute roof alone; left of the ridge the "
                    "memory roof (intensity x bandwidth) is lower and is the one that binds"
                )
            if _close(fraction, want_a / (want_i * bandwidth)):
                raise AssertionError(
                    f"{where}: you divided by the memory roof alone; right of the ridge the "
                    "compute roof (the peak) is lower and is the one that binds"
                )
            raise AssertionError(f"{where}: the fraction of the roof is off")
    return "both sides of the ridge placed like effnb.roofline.place"
