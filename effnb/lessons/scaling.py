"""Notebook 05 (compound scaling): the formula, the released configs, and a scaling experiment.

EfficientNet (Tan & Le, arXiv 1905.11946, section 3.3) scales depth, width and resolution
together: d = alpha^phi, w = beta^phi, r = gamma^phi with alpha * beta^2 * gamma^2 ~ 2, so
that MACs grow by about 2^phi. The released B1..B7 do not follow the formula exactly; the
functions here compute both and count what each costs. Counting runs on PyTorch's ``meta``
device (shapes only, no arithmetic), so B7 at 600 px counts in about a second.

The seed notes round channels with ``ceil(c * w / 8) * 8``; ``channel_rounding`` builds the
real EfficientNet builder with that rounding swapped in, to count what it changes.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from torch import nn

import effnb.models.efficientnet as _effnet
from effnb._checks import check_int, check_multiplier
from effnb.costs import profile
from effnb.models import create_model, model_info
from effnb.models.efficientnet import EFFICIENTNET_VARIANTS
from effnb.plots import figure, plain_log

__all__ = [
    "ALPHA",
    "BASE_RESOLUTION",
    "BETA",
    "GAMMA",
    "SEED_000_SCALING_TABLE",
    "Arm",
    "FormulaConfig",
    "VariantCost",
    "arm_costs",
    "arm_model",
    "experiment_arms",
    "meta_variant",
    "ceil_to_multiple",
    "channel_rounding",
    "compound_factor",
    "fit_power_law",
    "flops_factor",
    "format_formula_vs_published",
    "formula_config",
    "plot_experiment",
    "plot_formula_vs_measured",
    "plot_macs_fit",
    "scaled_costs",
    "scaled_model_view",
    "seed_table_report",
    "variant_costs",
    "variant_params",
]

# arXiv 1905.11946, section 4 (step 1 of the compound scaling method): a small grid search on
# B0 under alpha * beta^2 * gamma^2 ~ 2 found these.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
BASE_RESOLUTION = 224  # B0's input size


def flops_factor(alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> float:
    """alpha * beta^2 * gamma^2: the factor by which MACs grow per unit of phi.

    MACs of a conv net grow linearly with depth and quadratically with width (C_in * C_out)
    and with resolution (H * W); so d * w^2 * r^2 per step.
    """
    for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        check_multiplier(name, v)
    return alpha * beta**2 * gamma**2


@dataclass(frozen=True)
class FormulaConfig:
    """What the formula gives for one phi: multipliers and the input size in pixels."""

    phi: float
    depth: float
    width: float
    resolution: float  # pixels, not rounded


def formula_config(
    phi: float,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    base_resolution: int = BASE_RESOLUTION,
) -> FormulaConfig:
    """d = alpha^phi, w = beta^phi, r = base_resolution * gamma^phi (arXiv 1905.11946, eq. 3)."""
    if isinstance(phi, bool) or not isinstance(phi, int | float) or phi < 0:
        raise ValueError(f"phi must be a number >= 0, got {phi!r}")
    return FormulaConfig(phi, alpha**phi, beta**phi, base_resolution * gamma**phi)


# Seed 000's "Scaling Examples" table, as printed: (variant, phi, depth, width, resolution,
# "FLOPS"). SEED_ERRATA.md: it mixes the formula's multipliers with the released resolutions.
SEED_000_SCALING_TABLE: tuple[tuple[str, int, float, float, int, str], ...] = (
    ("b0", 0, 1.0, 1.0, 224, "0.39B"),
    ("b1", 1, 1.2, 1.1, 240, "0.70B"),
    ("b4", 4, 2.1, 1.5, 380, "4.2B"),
    ("b7", 7, 3.1, 2.0, 600, "37B"),
)


def format_formula_vs_published() -> str:
    """phi = 0..7: the formula's depth, width, resolution beside the released B0..B7."""
    head = (
        f"{'variant':7s} {'phi':>3s} | {'formula d':>9s} {'w':>5s} {'r (px)':>7s} | "
        f"{'released d':>10s} {'w':>5s} {'r (px)':>7s} {'dropout':>7s}"
    )
    lines = [head, "-" * len(head)]
    for phi, (key, cfg) in enumerate(EFFICIENTNET_VARIANTS.items()):
        f = formula_config(phi)
        lines.append(
            f"{key.upper():7s} {phi:>3d} | {f.depth:>9.2f} {f.width:>5.2f} {f.resolution:>7.1f} | "
            f"{cfg.depth:>10.1f} {cfg.width:>5.1f} {cfg.resolution:>7d} {cfg.dropout:>7.1f}"
        )
    return "\n".join(lines)


def _source_of(value: float, formula: float, released: float, decimals: int) -> str:
    f = round(formula, decimals) == value
    r = round(released, decimals) == value
    return {(True, True): "both", (True, False): "formula", (False, True): "released"}.get(
        (f, r), "neither"
    )


def seed_table_report() -> str:
    """Which of seed 000's scaling-table entries come from the formula, which from the release."""
    head = f"{'row':4s} {'seed d':>6s} {'from':>9s} {'seed w':>6s} {'from':>9s} {'seed r':>6s} {'from':>9s}"
    lines = [head, "-" * len(head)]
    for key, phi, d, w, r, _ in SEED_000_SCALING_TABLE:
        f, cfg = formula_config(phi), EFFICIENTNET_VARIANTS[key]
        lines.append(
            f"{key.upper():4s} {d:>6.1f} {_source_of(d, f.depth, cfg.depth, 1):>9s} "
            f"{w:>6.1f} {_source_of(w, f.width, cfg.width, 1):>9s} "
            f"{r:>6d} {_source_of(r, f.resolution, cfg.resolution, 0):>9s}"
        )
    return "\n".join(lines)


# --- channel rounding -------------------------------------------------------------------


def ceil_to_multiple(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The seed's rounding: ceil(value / divisor) * divisor (always up, never to nearest).

    Same signature as ``effnb.layers.make_divisible`` so it can stand in for it.
    """
    divisor = check_int("divisor", divisor)
    new_value = int(math.ceil(value / divisor) * divisor)
    return max(divisor if min_value is None else min_value, new_value)


@contextlib.contextmanager
def channel_rounding(round_fn: Callable[..., int]) -> Iterator[None]:
    """Build EfficientNets with ``round_fn`` in place of ``make_divisible`` inside this block.

    The one builder (``effnb.models.efficientnet.efficientnet``) is used unchanged; only the
    name it looks up for channel rounding is swapped, and restored on exit. For teaching the
    seed's error, not for production use (it is not thread-safe).
    """
    if not callable(round_fn):
        raise TypeError(f"round_fn must be callable, got {type(round_fn).__name__}")
    original = _effnet.make_divisible
    _effnet.make_divisible = round_fn
    try:
        yield
    finally:
        _effnet.make_divisible = original


def _meta_build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs).eval()


def meta_variant(key: str, round_fn: Callable[..., int] | None = None) -> nn.Module:
    """EfficientNet-``key`` (e.g. 'b2') on the meta device, optionally under another rounding."""
    if key not in EFFICIENTNET_VARIANTS:
        raise ValueError(f"key must be one of {list(EFFICIENTNET_VARIANTS)}, got {key!r}")
    ctx = channel_rounding(round_fn) if round_fn is not None else contextlib.nullcontext()
    with ctx:
        return _meta_build(f"efficientnet_{key}")


def variant_params(key: str, round_fn: Callable[..., int] | None = None) -> int:
    """Parameters of EfficientNet-``key``, optionally under another channel rounding."""
    return sum(p.numel() for p in meta_variant(key, round_fn).parameters())


# --- costs of the variants ----------------------------------------------------------------


@dataclass(frozen=True)
class VariantCost:
    """One released variant: its config, counted params and MACs, published top-1."""

    key: str
    width: float
    depth: float
    resolution: int
    dropout: float
    params: int
    macs: int  # conv + linear at native resolution
    top1: float  # arXiv 1905.11946 Table 2 (quoted)


def variant_costs(round_fn: Callable[..., int] | None = None) -> dict[str, VariantCost]:
    """Count B0..B7 at native resolution on the meta device (about a second each)."""
    out = {}
    for key, cfg in EFFICIENTNET_VARIANTS.items():
        report = profile(meta_variant(key, round_fn), cfg.resolution)
        out[key] = VariantCost(
            key,
            cfg.width,
            cfg.depth,
            cfg.resolution,
            cfg.dropout,
            report.params,
            report.macs,
            model_info(f"efficientnet_{key}").top1,
        )
    return out


def compound_factor(
    width: float, depth: float, resolution: float, base_resolution: int = BASE_RESOLUTION
) -> float:
    """d * w^2 * (r / r0)^2: the MACs multiplier the scaling argument predicts over B0."""
    return depth * width**2 * (resolution / base_resolution) ** 2


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares line through (log x, log y): returns (slope, intercept), y ~ e^b * x^slope."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if lx.size < 2:
        raise ValueError(f"need at least two points to fit, got {lx.size}")
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def plot_macs_fit(costs: Mapping[str, VariantCost]) -> tuple[Figure, float]:
    """Measured MACs against d * w^2 * (r/224)^2 of the released configs (log-log), with the fit."""
    x = [compound_factor(c.width, c.depth, c.resolution) for c in costs.values()]
    y = [c.macs / 1e9 for c in costs.values()]
    slope, intercept = fit_power_law(x, y)
    fig, ax = figure()
    ax.scatter(x, y, color="tab:red", zorder=3)
    for xi, yi, key in zip(x, y, costs, strict=True):
        ax.annotate(key.upper(), (xi, yi), xytext=(4, -10), textcoords="offset points", fontsize=8)
    xs = np.geomspace(min(x), max(x), 50)
    ax.plot(xs, np.exp(intercept) * xs**slope, color="gray", lw=1, label=f"fit: slope {slope:.3f}")
    plain_log(ax)
    ax.set_xlabel("d * w^2 * (r / 224)^2 of the released config (log scale)")
    ax.set_ylabel("measured conv + linear MACs (billions, log scale)")
    ax.set_title("MACs grow as depth x width^2 x resolution^2")
    ax.legend()
    return fig, slope


def plot_formula_vs_measured(costs: Mapping[str, VariantCost]) -> Figure:
    """MACs of B0..B7 (measured) against 1.92^phi and 2^phi times B0's MACs, phi = 0..7."""
    b0 = costs["b0"].macs / 1e9
    phis = np.arange(len(costs))
    fig, ax = figure()
    ax.plot(phis, [c.macs / 1e9 for c in costs.values()], "o-", color="tab:red", label="measured")
    ax.plot(phis, b0 * flops_factor() ** phis, "--", color="gray", label="B0 x 1.92^phi")
    ax.plot(phis, b0 * 2.0**phis, ":", color="black", label="B0 x 2^phi")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xticks(phis, [f"B{p}" for p in phis])
    ax.set_xlabel("variant (phi = n for Bn)")
    ax.set_ylabel("conv + linear MACs (billions, log scale)")
    ax.set_title("The released variants against the formula's MACs")
    ax.legend()
    return fig


# --- the widget -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def scaled_costs(width: float, depth: float, resolution: int) -> tuple[int, int]:
    """(params, MACs) of the generic EfficientNet at (width, depth) and ``resolution`` px."""
    model = _meta_build("efficientnet", width_mult=width, depth_mult=depth)
    report = profile(model, resolution)
    return report.params, report.macs


def scaled_model_view(
    width: float,
    depth: float,
    resolution: int,
    costs: Mapping[str, VariantCost],
    ms_per_gmac: float | None = None,
) -> tuple[str, Figure]:
    """Text and chart for the widget: a scaled EfficientNet among the released B0..B7.

    ``ms_per_gmac``: a measured CPU latency per billion MACs (e.g. B0's), to print a latency
    estimate proportional to MACs; None leaves it out (it is a measurement, not a count).
    """
    width, depth = round(float(width), 3), round(float(depth), 3)
    resolution = check_int("resolution", int(resolution), minimum=32)
    params, macs = scaled_costs(width, depth, resolution)
    b0 = costs["b0"]
    predicted = compound_factor(width, depth, resolution)
    nearest = min(costs.values(), key=lambda c: abs(math.log(c.macs / macs)))
    text = (
        f"width {width:.2f}, depth {depth:.2f}, {resolution} px: {params / 1e6:.2f}M params, "
        f"{macs / 1e9:.3f}G MACs\n"
        f"MACs / B0's = {macs / b0.macs:.2f}x; d * w^2 * (r/224)^2 predicts {predicted:.2f}x\n"
        f"closest released variant by MACs: {nearest.key.upper()} ({nearest.macs / 1e9:.3f}G, "
        f"{nearest.params / 1e6:.2f}M params)"
    )
    if ms_per_gmac is not None:
        text += f"\nlatency estimate (B0's ms per GMAC x MACs): {ms_per_gmac * macs / 1e9:.0f} ms"
    fig, ax = figure(width=6.0, height=4.0)
    ax.plot(
        [c.macs / 1e9 for c in costs.values()],
        [c.params / 1e6 for c in costs.values()],
        "o-",
        color="tab:red",
        alpha=0.6,
        label="released B0..B7",
    )
    for c in costs.values():
        ax.annotate(c.key.upper(), (c.macs / 1e9, c.params / 1e6), xytext=(4, -10),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    ax.scatter(macs / 1e9, params / 1e6, marker="*", s=220, color="black", zorder=3, label="yours")
    plain_log(ax)
    ax.set_xlim(0.05, 200)
    ax.set_ylim(0.5, 300)
    ax.set_xlabel("conv + linear MACs (billions, log scale)")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("Your scaled EfficientNet among B0..B7")
    ax.legend(loc="upper left")
    return text, fig


# --- the width / depth / resolution experiment --------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One network of the experiment: generic EfficientNet multipliers and the input size."""

    name: str
    width: float
    depth: float
    resolution: int


def arm_model(arm: Arm, num_classes: int = 10) -> nn.Module:
    """The arm's network for small images: stem stride 1 (total stride 16), no dropout.

    Dropout and stochastic depth are off so the arms differ only in shape (a few epochs on
    digits do not need regularising, and drop-path would differ between depths).
    """
    return create_model(
        "efficientnet",
        small_input=True,
        width_mult=arm.width,
        depth_mult=arm.depth,
        num_classes=num_classes,
        dropout=0.0,
        drop_path=0.0,
    )


def arm_costs(arm: Arm, num_classes: int = 10) -> tuple[int, int]:
    """(params, MACs) of ``arm_model(arm)`` at ``arm.resolution`` px, counted on meta."""
    with torch.device("meta"):
        model = arm_model(arm, num_classes).eval()
    report = profile(model, arm.resolution)
    return report.params, report.macs


def experiment_arms(base: Arm, phi: float = 2.5) -> list[Arm]:
    """The four ways to spend ~4x the base's MACs on digits (notebook 05, section 8).

    Width, depth and resolution alone were each set so the MACs land near 4x the base's
    (channel rounding to multiples of 8 and whole layers make the steps coarse; the
    notebook prints the exact ratios). The compound arm is the formula itself on top of
    the base: d x alpha^phi, w x beta^phi, r x gamma^phi with phi = 2.5 (1.92^2.5 = 5.1 by
    the formula; rounding brings it to about 4x here).
    """
    f = formula_config(phi, base_resolution=base.resolution)
    return [
        Arm("width", round(base.width * 2.5, 3), base.depth, base.resolution),
        Arm("depth", base.width, round(base.depth * 7.5, 3), base.resolution),
        Arm("resolution", base.width, base.depth, 2 * base.resolution),
        Arm(
            "compound",
            round(base.width * f.width, 3),
            round(base.depth * f.depth, 3),
            int(round(f.resolution)),
        ),
    ]


def plot_experiment(rows: Sequence[dict]) -> Figure:
    """Validation accuracy (each seed a dot, the mean a bar) against MACs, per arm.

    ``rows``: dicts with keys 'arm', 'macs', 'seed', 'val_acc'.
    """
    colors = {
        "base": "black",
        "width": "tab:blue",
        "depth": "tab:orange",
        "resolution": "tab:green",
        "compound": "tab:red",
    }
    fig, ax = figure()
    for name in dict.fromkeys(r["arm"] for r in rows):
        pts = [r for r in rows if r["arm"] == name]
        macs = pts[0]["macs"] / 1e6
        accs = [100 * r["val_acc"] for r in pts]
        color = colors.get(name, "tab:gray")
        ax.scatter([macs] * len(accs), accs, color=color, s=25, alpha=0.7)
        ax.errorbar(
            macs,
            np.mean(accs),
            yerr=[[np.mean(accs) - min(accs)], [max(accs) - np.mean(accs)]],
            fmt="s",
            color=color,
            capsize=4,
            label=f"{name} (mean, range over seeds)",
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("conv + linear MACs per image (millions, log scale)")
    ax.set_ylabel("digits validation accuracy (%)")
    ax.set_title("Scaling one dimension vs all three, at ~equal MACs")
    ax.legend(fontsize=8, loc="center left")
    return fig
