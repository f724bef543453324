"""Plain functions behind notebook 04 (notebooks/04_shufflenet_ghostnet.ipynb).

* ``shuffle_order``: where ``effnb.layers.channel_shuffle`` sends each labelled channel.
* ShuffleNetV2's four guidelines (arXiv 1807.11164, section 2) as small layer stacks whose
  MACs are (nearly) equal within each experiment, so measured time differences come from
  memory traffic, parallelism and element-wise work: ``guideline_models``, ``guideline_rows``.
  ``memory_access_cost`` is the paper's "MAC", which is NOT our MACs (multiply-accumulates).
* ``ghost_costs``: params and MACs of a ghost module's primary and cheap parts against an
  ordinary 1x1 conv of the same output width.
* ``explore_ghost`` / ``explore_groups``: the notebook's widgets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from effnb._checks import check_choice, check_int
from effnb.bench import Comparison
from effnb.costs import conv2d_params, profile
from effnb.layers import channel_shuffle
from effnb.lessons.inverted import ClassicBottleneck
from effnb.plots import figure

__all__ = [
    "G1_PAIRS",
    "G2_WIDTHS",
    "Fragmented",
    "GhostCost",
    "GuidelineRow",
    "explore_ghost",
    "explore_groups",
    "ghost_costs",
    "group_conv_stack",
    "guideline_models",
    "guideline_rows",
    "format_guideline_rows",
    "memory_access_cost",
    "plot_guidelines",
    "plot_latency_vs_macs",
    "pointwise_pair_stack",
    "seed_ghost_width",
    "shuffle_order",
]

# G1: (c1, c2) with c1 * c2 ~ 128 * 128, ratios 1:1, 1:2, 1:6, 1:12 (the paper's Table 1 widths).
G1_PAIRS: tuple[tuple[int, int], ...] = ((128, 128), (90, 180), (52, 312), (36, 436))
# G2: groups -> width c of a c -> c 1x1 conv with c^2 / g ~ 128^2 (c divisible by g).
G2_WIDTHS: dict[int, int] = {1: 128, 2: 180, 4: 256, 8: 360}
SIZE = 28  # feature map side for the guideline experiments (small, so rounds stay short)
BLOCKS = 2  # blocks per stack (small: each stack runs in a few ms on one core)


def shuffle_order(channels: int = 8, groups: int = 2) -> list[int]:
    """Labels of the channels after ``channel_shuffle``: channel c carries the value c before."""
    channels, groups = check_int("channels", channels), check_int("groups", groups)
    x = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1)  # (1, C, 1, 1)
    return [int(v) for v in channel_shuffle(x, groups).flatten()]


def memory_access_cost(h: int, w: int, c1: int, c2: int, groups: int = 1) -> int:
    """ShuffleNetV2's memory access cost of a 1x1 conv (eq. 1/2 of arXiv 1807.11164), in elements.

    MAC_mem = h*w*(c1 + c2) + c1*c2/g: read the input, write the output, read the weights.
    For fixed B = h*w*c1*c2/g MACs it is smallest when c1 = c2 (G1) and grows with g (G2).
    """
    return h * w * (c1 + c2) + c1 * c2 // groups


def pointwise_pair_stack(c1: int, c2: int, blocks: int = BLOCKS) -> nn.Sequential:
    """G1: ``blocks`` x (1x1 conv c1 -> c2, 1x1 conv c2 -> c1), no norm or activation."""
    layers = nn.Sequential()
    for i in range(check_int("blocks", blocks)):
        layers.add_module(f"conv{i}_a", nn.Conv2d(c1, c2, 1, bias=False))
        layers.add_module(f"conv{i}_b", nn.Conv2d(c2, c1, 1, bias=False))
    return layers


def group_conv_stack(channels: int, groups: int, layers: int = 2 * BLOCKS) -> nn.Sequential:
    """G2: ``layers`` x 1x1 conv channels -> channels with ``groups`` groups."""
    stack = nn.Sequential()
    for i in range(check_int("layers", layers)):
        stack.add_module(f"conv{i}", nn.Conv2d(channels, channels, 1, groups=groups, bias=False))
    return stack


class Fragmented(nn.Module):
    """G3: one block made of ``fragments`` 1x1 convs, in series or in parallel (paper appendix).

    parallel: ``fragments`` branches C -> C/k, concatenated (MACs C^2 HW, same as one conv).
    series: ``fragments`` convs C_k -> C_k with C_k = round(C / sqrt(k)) (MACs k C_k^2 HW ~ C^2 HW).
    """

    def __init__(self, channels: int, fragments: int, mode: str = "series") -> None:
        super().__init__()
        channels, fragments = check_int("channels", channels), check_int("fragments", fragments)
        self.mode = check_choice("mode", mode, ("series", "parallel"))
        if mode == "parallel":
            if channels % fragments:
                raise ValueError(
                    f"channels={channels} must be divisible by fragments={fragments} in parallel mode"
                )
            self.in_channels = channels
            self.branches = nn.ModuleList(
                nn.Conv2d(channels, channels // fragments, 1, bias=False) for _ in range(fragments)
            )
        else:
            self.in_channels = round(channels / math.sqrt(fragments))
            self.branches = nn.ModuleList(
                nn.Conv2d(self.in_channels, self.in_channels, 1, bias=False)
                for _ in range(fragments)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "parallel":
            return torch.cat([branch(x) for branch in self.branches], dim=1)  # (B, C, H, W)
        for branch in self.branches:
            x = branch(x)
        return x


def _fragmented_stack(channels: int, fragments: int, mode: str) -> tuple[nn.Module, int]:
    blocks = [Fragmented(channels, fragments, mode) for _ in range(BLOCKS)]
    return nn.Sequential(*blocks), blocks[0].in_channels


def guideline_models() -> dict[str, dict[str, tuple[nn.Module, tuple[int, int, int]]]]:
    """The four experiments: guideline -> {label: (model, (C, H, W) input)}; first label = baseline."""
    g1 = {
        f"1:{c2 // c1} ({c1}->{c2})": (pointwise_pair_stack(c1, c2), (c1, SIZE, SIZE))
        for c1, c2 in G1_PAIRS
    }
    g2 = {f"g={g} (c={c})": (group_conv_stack(c, g), (c, SIZE, SIZE)) for g, c in G2_WIDTHS.items()}
    g3 = {}
    for fragments, mode in [
        (1, "series"),
        (2, "series"),
        (4, "series"),
        (2, "parallel"),
        (4, "parallel"),
    ]:
        model, c_in = _fragmented_stack(128, fragments, mode)
        label = "1 fragment" if fragments == 1 else f"{fragments}-fragment {mode}"
        g3[label] = (model, (c_in, SIZE, SIZE))
    g4 = {}
    for relu, skip in [(True, True), (False, True), (True, False), (False, False)]:
        units = nn.Sequential(
            *[
                ClassicBottleneck(
                    128, 32, norm_layer=None, act_layer=nn.ReLU if relu else None, skip=skip
                )
                for _ in range(BLOCKS)
            ]
        )
        label = f"ReLU {'on' if relu else 'off'}, add {'on' if skip else 'off'}"
        g4[label] = (units, (128, SIZE, SIZE))
    return {"G1": g1, "G2": g2, "G3": g3, "G4": g4}


@dataclass(frozen=True)
class GuidelineRow:
    """One line of a guideline table: our MACs, the paper's memory access cost, measured time."""

    guideline: str
    label: str
    macs: int  # multiply-accumulates (conv), from effnb.costs.profile
    memory_access: int | None  # paper's "MAC" (elements moved), G1/G2 only
    median_ms: float | None
    ratio: float | None  # median over rounds of time / time(baseline)


def guideline_rows(
    guideline: str,
    models: Mapping[str, tuple[nn.Module, tuple[int, int, int]]],
    comparison: Comparison | None = None,
) -> list[GuidelineRow]:
    """Rows for one guideline's table; without ``comparison`` only the deterministic columns."""
    baseline = next(iter(models))
    rows = []
    for label, (model, shape) in models.items():
        macs = profile(model, shape).macs
        mem = None
        if guideline == "G1":
            c1, h = shape[0], shape[1]
            c2 = model.conv0_a.out_channels
            mem = BLOCKS * 2 * memory_access_cost(h, h, c1, c2)
        elif guideline == "G2":
            c, h = shape[0], shape[1]
            mem = 2 * BLOCKS * memory_access_cost(h, h, c, c, model.conv0.groups)
        median = ratio = None
        if comparison is not None:
            median = comparison.records[label].median_ms
            ratio = comparison.ratio(label, baseline)
        rows.append(GuidelineRow(guideline, label, macs, mem, median, ratio))
    return rows


def format_guideline_rows(rows: Sequence[GuidelineRow], device: str = "cpu") -> str:
    """Text table: label, MACs (ours), memory access cost (paper), median ms, ratio to first row."""
    head = f"{'':26s} {'MACs (M)':>9s} {'mem. access (M elem.)':>22s} {f'{device} ms':>9s} {'x first':>8s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        mem = f"{r.memory_access / 1e6:.3f}" if r.memory_access is not None else "-"
        ms = f"{r.median_ms:.3f}" if r.median_ms is not None else "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        lines.append(f"{r.label:26s} {r.macs / 1e6:>9.2f} {mem:>22s} {ms:>9s} {ratio:>8s}")
    return "\n".join(lines)


def plot_guidelines(tables: Mapping[str, Sequence[GuidelineRow]]) -> Figure:
    """One panel per guideline: measured time relative to the first row, with MACs relative too."""
    fig, axes = figure(1, len(tables), width=3.3, height=3.4)
    for ax, (name, rows) in zip(np.atleast_1d(axes), tables.items(), strict=True):
        pos = np.arange(len(rows))
        ax.bar(pos - 0.2, [r.macs / rows[0].macs for r in rows], 0.4, label="MACs")
        ax.bar(pos + 0.2, [r.ratio or 0.0 for r in rows], 0.4, label="measured time")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(
            pos, [r.label.split(" (")[0] for r in rows], rotation=35, ha="right", fontsize=7
        )
        ax.set_title(name)
        ax.set_ylabel("relative to first bar")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# --- Ghost module costs -----------------------------------------------------------------


@dataclass(frozen=True)
class GhostCost:
    """Conv weights and MACs of a GhostModule against an ordinary conv with the same output."""

    c_in: int
    c_out: int
    ratio: int
    init_channels: int  # ceil(C_out / s): made by the primary conv
    cheap_channels: int  # (s - 1) * init: made by the depthwise cheap operation
    primary_params: int
    cheap_params: int
    ordinary_params: int
    primary_macs: int
    cheap_macs: int
    ordinary_macs: int

    @property
    def params(self) -> int:
        return self.primary_params + self.cheap_params

    @property
    def macs(self) -> int:
        return self.primary_macs + self.cheap_macs

    @property
    def macs_saving(self) -> float:
        """ordinary / ghost MACs, close to s when d^2 << C_in k^2 (arXiv 1911.11907 eq. 4)."""
        return self.ordinary_macs / self.macs


def ghost_costs(
    c_in: int,
    c_out: int,
    ratio: int = 2,
    kernel_size: int = 1,
    dw_size: int = 3,
    size: int = 56,
) -> GhostCost:
    """Weights (no BatchNorm) and MACs at ``size`` x ``size`` of effnb.layers.GhostModule's parts.

    primary: k^2 * C_in * m with m = ceil(C_out / s); cheap: d^2 * (s - 1) * m (depthwise,
    one d x d filter per ghost map); ordinary: k^2 * C_in * C_out.
    """
    ratio = check_int("ratio", ratio, minimum=2)
    init = math.ceil(check_int("c_out", c_out) / ratio)
    cheap = init * (ratio - 1)
    hw = size * size
    pp = conv2d_params(c_in, init, kernel_size)
    cp = conv2d_params(init, cheap, dw_size, groups=init)
    op = conv2d_params(c_in, c_out, kernel_size)
    return GhostCost(c_in, c_out, ratio, init, cheap, pp, cp, op, pp * hw, cp * hw, op * hw)


def seed_ghost_width(c_out: int, ratio: int = 2) -> int:
    """What the seed's GhostModule returned: (C_out // s) intrinsic + (C_out // s)(s - 1) ghosts."""
    return (c_out // ratio) * ratio


def explore_ghost(ratio: int = 2, c_out: int = 64, c_in: int = 64) -> tuple[str, Figure]:
    """Widget: a GhostModule's primary and cheap costs vs an ordinary 1x1 conv (56 x 56 map)."""
    g = ghost_costs(c_in, c_out, ratio)
    text = (
        f"GhostModule {c_in} -> {c_out}, ratio s={ratio}: primary 1x1 makes {g.init_channels} maps, "
        f"cheap 3x3 depthwise makes {g.cheap_channels}, sliced to {c_out}\n"
        f"  weights: primary {g.primary_params:,} + cheap {g.cheap_params:,} = {g.params:,} "
        f"vs ordinary 1x1 {g.ordinary_params:,}\n"
        f"  MACs at 56x56: {g.macs:,} vs {g.ordinary_macs:,}  ->  {g.macs_saving:.2f}x fewer"
    )
    fig, ax = figure(1, 1, width=5.5, height=3.2)
    ax.bar(["ghost"], [g.primary_macs / 1e6], label="primary 1x1")
    ax.bar(["ghost"], [g.cheap_macs / 1e6], bottom=[g.primary_macs / 1e6], label="cheap depthwise")
    ax.bar(["ordinary 1x1"], [g.ordinary_macs / 1e6], color="C2", label="ordinary conv")
    ax.set_ylabel("MACs (millions, 56x56)")
    ax.set_title(f"s = {ratio}: {g.macs_saving:.2f}x fewer MACs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return text, fig


def explore_groups(groups: int = 1, size: int = 28) -> tuple[str, Figure]:
    """Widget: a c -> c 1x1 conv with ``groups`` groups at (nearly) fixed MACs B = h w c^2 / g.

    The width grows as c = 128 sqrt(g) (rounded to a multiple of g) to hold MACs; the paper's
    memory access cost h w 2c + c^2 / g then grows (G2). Formula only, no timing.
    """
    groups, size = check_int("groups", groups), check_int("size", size)
    all_g = [1, 2, 4, 8, 16, 32]

    def width(g: int) -> int:
        return max(g, round(128 * math.sqrt(g) / g) * g)

    c = width(groups)
    macs = size * size * c * c // groups
    mem = memory_access_cost(size, size, c, c, groups)
    text = (
        f"1x1 conv, groups g={groups}, width c={c}, {size}x{size} map: "
        f"{conv2d_params(c, c, 1, groups):,} weights, {macs:,} MACs, "
        f"memory access {mem:,} elements ({mem / macs:.3f} per MAC)"
    )
    fig, ax = figure(1, 1, width=5.5, height=3.2)
    mems = [memory_access_cost(size, size, width(g), width(g), g) for g in all_g]
    macs_all = [size * size * width(g) ** 2 // g for g in all_g]
    ax.plot(all_g, np.array(mems) / 1e6, "o-", label="memory access (M elements)")
    ax.plot(all_g, np.array(macs_all) / 1e6, "s--", label="MACs (M)")
    ax.plot([groups], [mem / 1e6], "r*", ms=16, label=f"g={groups}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("groups g")
    ax.set_ylabel("millions")
    ax.set_title(f"g={groups}: c={c}, memory access / MACs = {mem / macs:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return text, fig


def plot_latency_vs_macs(
    macs: Mapping[str, int], latency_ms: Mapping[str, float], device: str = "cpu"
) -> Figure:
    """Scatter of measured latency against MACs, one labelled point per model."""
    fig, ax = figure(1, 1, width=6.0, height=4.0)
    for name in macs:
        ax.scatter(macs[name] / 1e6, latency_ms[name], s=40)
        ax.annotate(
            name,
            (macs[name] / 1e6, latency_ms[name]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("MACs (millions, 224 px)")
    ax.set_ylabel(f"median latency (ms, {device}, batch 1)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    return fig
