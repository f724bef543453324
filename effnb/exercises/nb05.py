"""Checks for notebook 05 (compound scaling)."""

from __future__ import annotations

import math

import torch

from effnb.exercises import exercise, expect_function, expect_numbers
from effnb.models.efficientnet import EFFICIENTNET_B0_TABLE, EFFICIENTNET_VARIANTS, efficientnet

# (phi, alpha, beta, gamma, base resolution): the paper's coefficients, then a made-up set in
# which alpha, beta and gamma all differ from theirs, so a swapped or squared term shows.
_COMPOUND_CASES = (
    (0, 1.2, 1.1, 1.15, 224),
    (1, 1.2, 1.1, 1.15, 224),
    (7, 1.2, 1.1, 1.15, 224),
    (2.5, 1.3, 1.05, 1.25, 160),
)


def _compound_wrongs(phi, a, b, g, r0) -> dict[str, tuple[float, float, float]]:
    return {
        "alpha is the depth coefficient and beta the width's: depth and width are swapped": (
            b**phi,
            a**phi,
            r0 * g**phi,
        ),
        "the squares belong to the MACs constraint alpha * beta^2 * gamma^2, not to the "
        "multipliers": (a**phi, b ** (2 * phi), r0 * g ** (2 * phi)),
        "the resolution is a multiplier here, not pixels: multiply by the base resolution": (
            a**phi,
            b**phi,
            g**phi,
        ),
        "each coefficient is raised to the power phi, not multiplied by it": (
            1 + phi * (a - 1),
            1 + phi * (b - 1),
            r0 * (1 + phi * (g - 1)),
        ),
    }


def _close(got, want) -> bool:
    return (
        math.isclose(got[0], want[0], rel_tol=1e-3)
        and math.isclose(got[1], want[1], rel_tol=1e-3)
        and abs(got[2] - want[2]) <= 0.5
    )


@exercise(
    "5.1",
    hint="depth, width and resolution each get their own coefficient raised to the power phi; "
    "the resolution starts from base_resolution pixels.",
)
def compound(fn) -> str:
    expect_function(fn)
    for phi, a, b, g, r0 in _COMPOUND_CASES:
        got = fn(phi, a, b, g, r0)
        got = expect_numbers(got, ("depth", "width", "resolution"), "compound(...)")
        want = (a**phi, b**phi, r0 * g**phi)
        if _close(got, want):
            continue
        call = f"compound({phi}, alpha={a}, beta={b}, gamma={g}, base_resolution={r0})"
        for why, wrong in _compound_wrongs(phi, a, b, g, r0).items():
            if _close(got, wrong):
                raise AssertionError(f"{call} gave {got}: {why}")
        raise AssertionError(
            f"{call} gave ({got[0]:.3f}, {got[1]:.3f}, {got[2]:.1f}); expected depth "
            f"{want[0]:.3f}, width {want[1]:.3f}, {want[2]:.1f} px"
        )
    d, w, r = fn(7, 1.2, 1.1, 1.15, 224)
    return (
        f"phi = 7 gives depth {d:.2f}, width {w:.2f}, {r:.0f} px; the released B7 is depth 3.1, "
        "width 2.0, 600 px (section 2)"
    )


# Widths a scaled stage asks for, picked so each misconception gives a different answer:
# 17.6 = 16 x 1.1 (ceil gives 24), 20 and 52 (ties: Python's round() goes to the even
# multiple, and at 52 the 10% rule does not undo it), 9.2 and 11.5 (nearest is more than 10%
# down), 4.4 (below the minimum of 8), 33.6 = 24 x 1.4, 60 (floor gives 56 even with the 10%
# rule; round() gives the right 64).
_ROUND_PROBES = (17.6, 20.0, 52.0, 9.2, 11.5, 4.4, 33.6, 60.0, 123.2, 211.2, 35.2, 64.0)

# The ways to round c to a multiple of 8, and what each gets wrong when it is not the nearest.
_ROUNDINGS = {
    "nearest": (lambda c: int(c + 4) // 8 * 8, ""),
    "ceil": (
        lambda c: math.ceil(c / 8) * 8,
        "ceil rounding: rounding every width up to a multiple of 8 (a common tutorial's "
        "ceil(c / 8) * 8) widens most stages",
    ),
    "floor": (lambda c: int(c / 8) * 8, "floor rounding: int(c / 8) * 8 always rounds down"),
    "round": (
        lambda c: round(c / 8) * 8,
        "Python's round() rounds a tie such as 52 / 8 = 6.5 to the even 6, where the release "
        "rounds half up",
    ),
}
_NO_10 = "the 10% rule is missing: when the nearest multiple is more than 10% below c, add 8"
_NO_MIN = "no minimum: a width must be at least 8 channels"


def _reference_round(c: float) -> int:
    new = max(8, int(c + 4) // 8 * 8)
    return new + 8 if new < 0.9 * c else new


def _misconceptions():
    """(reasons, rounding function) for every wrong combination, fewest reasons first."""
    out = []
    for fn, why in _ROUNDINGS.values():
        for ten in (True, False):
            for minimum in (True, False):

                def wrong(c, fn=fn, ten=ten, minimum=minimum):
                    v = max(8, fn(c)) if minimum else fn(c)
                    return v + 8 if ten and v < 0.9 * c else v

                reasons = [r for r in (why, "" if ten else _NO_10, "" if minimum else _NO_MIN) if r]
                if reasons:
                    out.append((reasons, wrong))
    return sorted(out, key=lambda item: len(item[0]))


@exercise(
    "5.2",
    hint="round c to the NEAREST multiple of 8 (at least 8); if that is more than 10% below c, "
    "add 8.",
)
def round_channels(fn) -> str:
    expect_function(fn)
    got = {c: fn(c) for c in _ROUND_PROBES}
    want = {c: _reference_round(c) for c in _ROUND_PROBES}
    bad = [c for c in _ROUND_PROBES if got[c] != want[c] or not isinstance(got[c], int)]
    if bad:
        c = bad[0]
        if got[c] == want[c]:
            raise AssertionError(
                f"round_channels({c}) returned {got[c]!r} of type {type(got[c]).__name__}; a "
                "channel count must be an int"
            )
        # the misconception (or combination) that explains every probe
        why = next(
            (
                "; ".join(r)
                for r, wrong in _misconceptions()
                if all(got[p] == wrong(p) for p in got)
            ),
            "",
        )
        msg = f"round_channels({c}) = {got[c]!r}, expected {want[c]}" + (f": {why}" if why else "")
        raise AssertionError(msg + _b2_note(fn))
    params = _b2_params(fn)
    if params != B2_PARAMS:
        raise AssertionError(f"EfficientNet-B2 built with your rounding has {params:,} parameters")
    return f"EfficientNet-B2 built with your rounding has {B2_PARAMS:,} parameters, as released"


B2_PARAMS = 9_109_994  # torchvision efficientnet_b2


def _b2_params(fn) -> int:
    cfg = EFFICIENTNET_VARIANTS["b2"]
    with torch.device("meta"):
        model = efficientnet(cfg.width, cfg.depth, round_channels=fn)
    return sum(p.numel() for p in model.parameters())


def _b2_note(fn) -> str:
    """What EfficientNet-B2 becomes with the student's rounding, when it builds at all."""
    try:
        params = _b2_params(fn)
    except Exception:  # noqa: BLE001 - a broken rounding may fail anywhere in the builder
        return ""
    if params == B2_PARAMS:
        return ""
    return f" (EfficientNet-B2 built with it has {params:,} parameters, the released {B2_PARAMS:,})"


def _depth_cases() -> list[tuple[int, float]]:
    return [
        (row.layers, cfg.depth)
        for cfg in EFFICIENTNET_VARIANTS.values()
        for row in EFFICIENTNET_B0_TABLE
    ]


_DEPTH_WRONGS = {
    "round() to the nearest drops the fraction of a layer (1 x 1.1 = 1.1 becomes 1): EfficientNet "
    "rounds the layer count up": lambda n, d: round(n * d),
    "int() truncates (floor): EfficientNet rounds the layer count up": lambda n, d: int(n * d),
}


@exercise(
    "5.3",
    hint="a stage of n layers scaled by d gets n * d layers, rounded so no fraction of a layer is "
    "lost; return an int.",
)
def scale_depth(fn) -> str:
    expect_function(fn)
    cases = _depth_cases()
    for n, d in cases:
        got, want = fn(n, d), math.ceil(n * d)
        if isinstance(got, bool) or not isinstance(got, int):
            raise AssertionError(
                f"scale_depth({n}, {d}) returned {got!r} ({type(got).__name__}); a layer count "
                "must be an int"
            )
        if got != want:
            for why, wrong in _DEPTH_WRONGS.items():
                if all(fn(m, e) == wrong(m, e) for m, e in cases):
                    raise AssertionError(f"scale_depth({n}, {d}) = {got}, expected {want}: {why}")
            raise AssertionError(f"scale_depth({n}, {d}) = {got}, expected {want}")
    b1 = sum(fn(row.layers, EFFICIENTNET_VARIANTS["b1"].depth) for row in EFFICIENTNET_B0_TABLE)
    return f"B1 (depth 1.1) gets {b1} MBConv blocks where B0 has 16"
