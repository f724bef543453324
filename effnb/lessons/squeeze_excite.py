"""Squeeze-and-excitation: the functions behind notebooks/02_squeeze_excitation.ipynb.

SE's parameter cost by formula and as counted, the seed's silent zero-width SE, SE added to
an inverted-residual block at several reduction ratios, sigmoid vs hard-sigmoid gates, and
where each family's squeeze width comes from (read off the built models), including the
MobileNetV3-Small count with and without rounding the squeeze width to a multiple of 8.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from effnb._checks import check_int
from effnb.costs import profile, se_macs, se_params
from effnb.layers import GhostBottleneck, InvertedResidual, SqueezeExcite, make_divisible
from effnb.models import create_model
from effnb.plots import figure

__all__ = [
    "SEWidth",
    "gate_curves",
    "mobilenet_v3_small_unrounded",
    "plot_gates",
    "plot_se_sweep",
    "ratio_iqr",
    "se_block",
    "se_cost_view",
    "se_param_rows",
    "se_sweep",
    "se_widths",
    "seed_se_gate",
]


def se_param_rows(channels: int, reduction: int) -> dict[str, int]:
    """SE params with squeeze width C/r: formula (2C^2/r; + C/r + C biases) vs effnb's block."""
    channels, reduction = check_int("channels", channels), check_int("reduction", reduction)
    squeeze = channels // reduction
    block = SqueezeExcite(channels, squeeze)
    weights = block.fc1.weight.numel() + block.fc2.weight.numel()
    return {
        "channels": channels,
        "squeeze": squeeze,
        "formula_no_bias": 2 * channels * channels // reduction,
        "counted_weights": weights,
        "formula_with_bias": se_params(channels, squeeze),
        "counted_all": sum(p.numel() for p in block.parameters()),
        "macs": se_macs(channels, squeeze),
    }


def seed_se_gate(channels: int = 8, reduction: int = 16, seed: int = 0) -> torch.Tensor:
    """The gate the seed's SEBlock computes (Linear C -> C // r -> C, no biases, sigmoid).

    Reproduced inline only to show its failure: for C < r the hidden layer has zero units,
    the second Linear outputs zeros for any input, and sigmoid(0) = 0.5 gates every channel
    at one half. PyTorch only warns that it initialised a zero-element tensor.
    """
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )
    z = torch.randn(4, channels)  # (B, C): the squeezed vector of 4 random inputs
    with torch.no_grad():
        return fc(z)


def se_block(
    reduction: int | None,
    in_channels: int = 40,
    expand: int = 6,
    kernel_size: int = 5,
) -> InvertedResidual:
    """An inverted-residual block (MobileNetV3 stage 3 shape: 40 -> 240 -> 40, k = 5) with
    an SE of squeeze width hidden / r after the depthwise conv, or none for r = None."""
    hidden = in_channels * expand
    se_ch = 0 if reduction is None else max(1, hidden // reduction)
    return InvertedResidual(in_channels, in_channels, hidden, kernel_size, 1, se_channels=se_ch)


def se_sweep(
    reductions: Sequence[int] = (2, 4, 8, 16, 32), size: int = 28, **block_kwargs
) -> list[dict]:
    """Params and MACs of the block without SE and with SE at each r (profiled at size x size)."""
    base = profile(
        se_block(None, **block_kwargs), (block_kwargs.get("in_channels", 40), size, size)
    )
    rows = [{"label": "no SE", "r": None, "params": base.params, "macs": base.macs}]
    for r in reductions:
        rep = profile(
            se_block(r, **block_kwargs), (block_kwargs.get("in_channels", 40), size, size)
        )
        rows.append({"label": f"SE r={r}", "r": r, "params": rep.params, "macs": rep.macs})
    for row in rows:
        row["params_overhead_pct"] = 100 * (row["params"] / base.params - 1)
        row["macs_overhead_pct"] = 100 * (row["macs"] / base.macs - 1)
    return rows


def ratio_iqr(comparison, label: str, baseline: str) -> float:
    """Interquartile range of the per-round ratios time(label) / time(baseline) of a
    ``effnb.bench.Comparison``: how far the paired ratio itself scatters between rounds."""
    ratios = [
        a / b for a, b in zip(comparison.rounds[label], comparison.rounds[baseline], strict=True)
    ]
    if len(ratios) < 2:
        return float("nan")
    q = statistics.quantiles(ratios, n=4)
    return q[2] - q[0]


def plot_se_sweep(rows: Sequence[dict], time_ratios: dict[str, float] | None = None):
    """Overhead of SE over the plain block, in % of params, MACs and (if given) measured time."""
    fig, ax = figure(width=6.4, height=3.6)
    se_rows = [row for row in rows if row["r"] is not None]
    x = np.arange(len(se_rows))
    width = 0.27 if time_ratios else 0.4
    ax.bar(x - width, [row["params_overhead_pct"] for row in se_rows], width, label="params")
    ax.bar(x, [row["macs_overhead_pct"] for row in se_rows], width, label="MACs")
    if time_ratios:
        ax.bar(
            x + width,
            [100 * (time_ratios[row["label"]] - 1) for row in se_rows],
            width,
            label="time (measured)",
        )
    ax.set_xticks(x, [f"r={row['r']}" for row in se_rows])
    ax.set_ylabel("overhead over the block without SE (%)")
    ax.set_title("adding SE to a 40-240-40 inverted residual, 28x28")
    ax.legend()
    return fig


def gate_curves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sigmoid(x) = 1 / (1 + e^-x) and hard-sigmoid(x) = ReLU6(x + 3) / 6 (MobileNetV3, eq. 1)."""
    t = torch.as_tensor(x, dtype=torch.float64)
    return torch.sigmoid(t).numpy(), nn.functional.hardsigmoid(t).numpy()


def plot_gates(x: np.ndarray | None = None):
    """Both gates and their difference."""
    x = np.linspace(-6, 6, 601) if x is None else x
    sig, hsig = gate_curves(x)
    fig, (ax1, ax2) = figure(1, 2, width=4.0, height=3.2)
    ax1.plot(x, sig, label="sigmoid")
    ax1.plot(x, hsig, label="hard-sigmoid")
    ax1.set_xlabel("x")
    ax1.set_ylabel("gate value")
    ax1.legend()
    ax2.plot(x, hsig - sig, color="tab:red")
    ax2.set_xlabel("x")
    ax2.set_ylabel("hard-sigmoid - sigmoid")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class SEWidth:
    """One SE module in a built model: where it sits and its widths."""

    block: str
    block_in: int  # channels entering the block
    channels: int  # channels SE gates (the expanded width)
    squeeze: int  # its hidden width (fc1 out_channels)


def se_widths(model: nn.Module) -> list[SEWidth]:
    """Every SE of an effnb model, read from the modules (not from the config table)."""
    rows = []
    for name, block in model.named_modules():
        se = getattr(block, "se", None)
        if not isinstance(se, SqueezeExcite):
            continue
        if isinstance(block, InvertedResidual):
            first = block.conv_pw if not isinstance(block.conv_pw, nn.Identity) else block.conv_dw
            block_in = first.conv.in_channels
        elif isinstance(block, GhostBottleneck):
            block_in = block.ghost1.primary_conv.conv.in_channels
        else:
            continue
        rows.append(SEWidth(name, block_in, se.fc1.in_channels, se.fc1.out_channels))
    return rows


def mobilenet_v3_small_unrounded(
    width_mult: float = 1.0,
) -> tuple[nn.Module, list[tuple[int, int, int]]]:
    """MobileNetV3-Small with each SE rebuilt at squeeze width C // 4 (not rounded to 8).

    That is what the seed's code does; it gives 2,537,238 params instead of 2,542,856.
    Returns the model and (channels, rounded, unrounded) for every SE.
    """
    model = create_model("mobilenet_v3_small", width_mult=width_mult)
    changes = []
    for block in model.modules():
        if isinstance(block, InvertedResidual) and isinstance(block.se, SqueezeExcite):
            c = block.se.fc1.in_channels
            rounded = block.se.fc1.out_channels
            assert rounded == make_divisible(c // 4, 8)
            block.se = SqueezeExcite(c, c // 4, nn.ReLU, nn.Hardsigmoid)
            changes.append((c, rounded, c // 4))
    return model, changes


REDUCTIONS = (2, 4, 8, 16, 32)


def se_cost_view(channels: int = 240, reduction: int = 4):
    """Widget view: SE params and MACs at (C, r), with the params-over-r curve for this C."""
    channels = check_int("channels", channels)
    reduction = check_int("reduction", reduction)
    squeeze = channels // reduction
    if squeeze < 1:
        text = f"C = {channels}, r = {reduction}: C // r = 0, a zero-width SE (effnb refuses to build it)"
        params = macs = 0
    else:
        params, macs = se_params(channels, squeeze), se_macs(channels, squeeze)
        text = (
            f"C = {channels}, r = {reduction}: squeeze {squeeze}, params 2C^2/r + C/r + C = {params:,} "
            f"(weights {2 * channels * squeeze:,}), MACs {macs:,} per image "
            f"(+ {channels} pooled means and a C*H*W gating multiply, not MACs)"
        )
    fig, ax = figure(width=6.4, height=3.4)
    rs = [r for r in REDUCTIONS if channels // r >= 1]
    ax.plot(
        rs, [se_params(channels, channels // r) for r in rs], "o-", label=f"params, C={channels}"
    )
    if params:
        ax.plot([reduction], [params], "*", ms=16, color="tab:red", label=f"r={reduction}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("reduction ratio r (log scale)")
    ax.set_ylabel("SE params (= MACs + C/r + C)")
    ax.set_title(f"SE cost for C = {channels}")
    ax.legend()
    return text, fig
