"""Plain functions behind notebook 03 (notebooks/03_inverted_residuals.ipynb).

* ``relu_manifold``: MobileNetV2's Fig. 1 experiment (arXiv 1801.04381): a 2-D spiral
  embedded in n dimensions by a random matrix T, passed through ReLU and projected back.
* ``ClassicBottleneck`` and ``block_costs``: the ResNet bottleneck (wide ends) against
  ``effnb.layers.InvertedResidual`` (thin ends) in params, MACs and activation memory.
* ``mobilenet_v2_costs`` / ``build_mobilenet_v2``: MobileNetV2's table under two channel
  rounding rules, the reference ``make_divisible`` one and the seed's ``max(8, int(c * w))``
  (SEED_ERRATA: 1,221,768 instead of 1,968,680 params at width 0.5), by formula and built
  from effnb blocks.
* ``explore_mobilenet_v2``: the notebook's widget (width multiplier, expansion ratio).

Units: a MAC is one multiply-accumulate (conv + linear only, as ``effnb.costs``); FLOPs = 2 x MACs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from effnb._checks import check_choice, check_int, check_multiplier
from effnb.costs import conv2d_macs, conv2d_output_size, conv2d_params, linear_params, profile
from effnb.layers import ConvNormAct, InvertedResidual, LayerFactory, _create_act, make_divisible
from effnb.models.mobilenet import MOBILENET_V2_TABLE, MOBILENET_V3_SMALL_TABLE
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.plots import figure

__all__ = [
    "DIMS",
    "EXPANSIONS",
    "ROUNDING_RULES",
    "BlockCost",
    "ClassicBottleneck",
    "ManifoldResult",
    "MobileNetV2Cost",
    "block_costs",
    "block_pair",
    "build_mobilenet_v2",
    "explore_mobilenet_v2",
    "expansion_sweep",
    "mobilenet_v2_costs",
    "mobilenet_v3_small_se_params",
    "plot_activations",
    "plot_block_comparison",
    "plot_expansion_sweep",
    "plot_relu_manifolds",
    "relu_manifold",
    "relu_manifold_table",
    "round_channels",
    "spiral",
]

DIMS: tuple[int, ...] = (2, 3, 5, 15, 30)  # the embedding widths of MobileNetV2's Fig. 1
EXPANSIONS: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
ROUNDING_RULES: tuple[str, ...] = ("reference", "seed")
BYTES_PER_FLOAT = 4


# --- 1. ReLU on a low-dimensional manifold (MobileNetV2 Fig. 1) --------------------------


def spiral(n_points: int = 400, turns: float = 2.0) -> np.ndarray:
    """A 2-D spiral through the origin: r = t / t_max, angle t in [0, 2 pi turns]. Shape (N, 2)."""
    n_points = check_int("n_points", n_points, minimum=2)
    t = np.linspace(0.0, 2.0 * np.pi * turns, n_points)
    r = t / t[-1]
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


@dataclass(frozen=True)
class ManifoldResult:
    """What is left of the spiral after x -> ReLU(T x) -> back to 2-D, for one n and one T."""

    dim: int
    seed: int
    pinv: np.ndarray  # T^+ ReLU(T x), rescaled by the best single factor (the paper's picture)
    linear: np.ndarray  # the best linear decoder W ReLU(T x) (least squares): what is recoverable
    pinv_error: float  # ||a T^+ y - x|| / ||x|| with the best scalar a
    linear_error: float  # ||W y - x|| / ||x||
    invertible_fraction: float  # points whose active rows of T still span 2-D (exactly invertible)


def relu_manifold(dim: int, seed: int = 0, n_points: int = 400) -> ManifoldResult:
    """Embed ``spiral()`` in ``dim`` dimensions with a Gaussian T (dim x 2), apply ReLU, come back.

    y = ReLU(T x). The paper projects back with T^{-1} (here the pseudo-inverse T^+). T^+ y is
    not the inverse of ReLU(T .): ReLU zeroes about half the coordinates, so T^+ y shrinks
    towards x / 2 and is distorted; we rescale it by the best single factor before measuring.
    Two sharper measures of what survived: the best linear decoder's error, and the fraction
    of points for which the rows of T that stayed active (y_i > 0) still span the plane, so
    x = T_active^+ y_active exactly.
    """
    dim = check_int("dim", dim)
    x = spiral(n_points)
    rng = np.random.default_rng(seed)
    t_mat = rng.standard_normal((dim, 2))  # (n, 2)
    y = np.maximum(x @ t_mat.T, 0.0)  # (N, n): ReLU(T x) for every point
    back = y @ np.linalg.pinv(t_mat).T  # (N, 2): T^+ y
    scale = float((back * x).sum() / max((back * back).sum(), 1e-12))
    w, *_ = np.linalg.lstsq(y, x, rcond=None)  # (n, 2): best linear decoder
    linear = y @ w
    norm = np.linalg.norm(x)
    active = (y > 0).astype(float)  # (N, n)
    gram = active @ np.einsum("ni,nj->nij", t_mat, t_mat).reshape(dim, 4)  # (N, 4): T_a^T T_a
    det = gram[:, 0] * gram[:, 3] - gram[:, 1] * gram[:, 2]
    invertible = np.mean(det > 1e-9 * (gram[:, 0] + gram[:, 3]) ** 2)  # rank 2 <=> det > 0
    return ManifoldResult(
        dim=dim,
        seed=seed,
        pinv=scale * back,
        linear=linear,
        pinv_error=float(np.linalg.norm(scale * back - x) / norm),
        linear_error=float(np.linalg.norm(linear - x) / norm),
        invertible_fraction=float(invertible),
    )


def relu_manifold_table(
    dims: Sequence[int] = DIMS, seeds: Iterable[int] = range(10), n_points: int = 400
) -> list[dict[str, float]]:
    """Mean of each error measure over several random T per n (one T can be lucky)."""
    seeds = list(seeds)
    rows = []
    for dim in dims:
        runs = [relu_manifold(dim, s, n_points) for s in seeds]
        rows.append(
            {
                "dim": dim,
                "pinv_error": float(np.mean([r.pinv_error for r in runs])),
                "linear_error": float(np.mean([r.linear_error for r in runs])),
                "invertible_fraction": float(np.mean([r.invertible_fraction for r in runs])),
            }
        )
    return rows


def plot_relu_manifolds(
    results: Sequence[ManifoldResult], table: Sequence[dict[str, float]] | None = None
) -> Figure:
    """Top row: T^+ ReLU(T x) per n (the paper's Fig. 1); bottom row: best linear decoder;
    right: mean errors against n."""
    x = spiral(len(results[0].pinv))
    ncols = len(results) + 1
    fig, axes = figure(2, ncols, width=2.3, height=2.3)
    colours = np.linspace(0, 1, len(x))
    axes[0, 0].scatter(x[:, 0], x[:, 1], c=colours, s=3, cmap="viridis")
    axes[0, 0].set_title("input spiral (2-D)")
    for row, (attr, name) in enumerate([("pinv", "T⁺ReLU(Tx)"), ("linear", "best linear decoder")]):
        for col, res in enumerate(results, start=1):
            pts = getattr(res, attr)
            ax = axes[row, col]
            ax.scatter(pts[:, 0], pts[:, 1], c=colours, s=3, cmap="viridis")
            err = res.pinv_error if attr == "pinv" else res.linear_error
            ax.set_title(f"n={res.dim}: {name}\nrel. error {err:.3f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    ax = axes[1, 0]
    if table is not None:
        dims = [r["dim"] for r in table]
        ax.plot(dims, [r["pinv_error"] for r in table], "o-", label="T⁺ (rescaled)")
        ax.plot(dims, [r["linear_error"] for r in table], "s-", label="linear decoder")
        ax.plot(dims, [1 - r["invertible_fraction"] for r in table], "^-", label="not invertible")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.set_xlabel("embedding width n")
        ax.set_ylabel("relative error / fraction")
        ax.legend(fontsize=7)
        ax.set_title("mean over 10 random T", fontsize=8)
    else:
        ax.axis("off")
    fig.tight_layout()
    return fig


# --- 2. Classic vs inverted bottleneck --------------------------------------------------


class ClassicBottleneck(nn.Module):
    """ResNet's bottleneck (He et al., arXiv 1512.03385, Fig. 5): wide -> thin -> thin -> wide.

    1x1 reduce (C -> C/t, act) -> 3x3 full conv (C/t -> C/t, act) -> 1x1 expand (C/t -> C),
    then the skip adds the wide input and a final activation follows (as in ResNet). Params
    (weights) = C*C/t + 9*(C/t)^2 + C/t*C. The residual joins the WIDE ends, so the tensor
    kept for the skip is the wide one. ``skip`` and ``act_layer=None`` switch off the add and
    the activations (ShuffleNetV2 guideline G4 in notebook 04).
    """

    def __init__(
        self,
        channels: int,
        bottleneck_channels: int,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU,
        skip: bool = True,
    ) -> None:
        super().__init__()
        channels = check_int("channels", channels)
        bottleneck_channels = check_int("bottleneck_channels", bottleneck_channels)
        self.conv_reduce = ConvNormAct(
            channels, bottleneck_channels, 1, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv_3x3 = ConvNormAct(
            bottleneck_channels, bottleneck_channels, 3, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv_expand = ConvNormAct(
            bottleneck_channels, channels, 1, norm_layer=norm_layer, act_layer=None
        )
        self.act = _create_act(act_layer)
        self.has_skip = bool(skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_expand(self.conv_3x3(self.conv_reduce(x)))
        if self.has_skip:
            x = x + shortcut
        return self.act(x)


@dataclass(frozen=True)
class BlockCost:
    """Costs of one block for one (C, H, W) input, batch 1, float32."""

    label: str
    in_channels: int
    params: int
    macs: int
    boundary_bytes: int  # the block's input: what must stay alive until the skip add
    peak_bytes: int  # largest single tensor the block produces inside (its widest activation)


def block_costs(label: str, block: nn.Module, in_channels: int, size: int) -> BlockCost:
    """Params and MACs from ``effnb.costs.profile``; memory from the tensor shapes."""
    report = profile(block, (in_channels, size, size))
    return BlockCost(
        label=label,
        in_channels=in_channels,
        params=report.params,
        macs=report.macs,
        boundary_bytes=in_channels * size * size * BYTES_PER_FLOAT,
        peak_bytes=max(layer.activation_bytes for layer in report.layers),
    )


def block_pair(thin: int, expansion: int) -> dict[str, tuple[nn.Module, int]]:
    """The two blocks with the same pair of widths (thin C, wide t*C): (block, input channels)."""
    wide = thin * check_int("expansion", expansion)
    return {
        "classic (wide ends)": (ClassicBottleneck(wide, thin), wide),
        "inverted (thin ends)": (InvertedResidual(thin, thin, wide), thin),
    }


def plot_block_comparison(costs: Sequence[BlockCost]) -> Figure:
    """Bars: params, MACs and memory (boundary vs peak) of each block, relative to the first."""
    fig, axes = figure(1, 3, width=3.2, height=3.0)
    labels = [c.label.split(" ")[0] for c in costs]
    axes[0].bar(labels, [c.params / 1e3 for c in costs], color=["C0", "C1"])
    axes[0].set_ylabel("params (thousands)")
    axes[1].bar(labels, [c.macs / 1e6 for c in costs], color=["C0", "C1"])
    axes[1].set_ylabel("MACs (millions)")
    pos = np.arange(len(costs))
    axes[2].bar(pos - 0.2, [c.boundary_bytes / 1024 for c in costs], 0.4, label="kept for skip")
    axes[2].bar(pos + 0.2, [c.peak_bytes / 1024 for c in costs], 0.4, label="widest inside")
    axes[2].set_xticks(pos, labels)
    axes[2].set_ylabel("activation memory (KiB, float32)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def expansion_sweep(
    thin: int, size: int, expansions: Sequence[int] = EXPANSIONS
) -> list[BlockCost]:
    """``InvertedResidual(thin, thin, t * thin)`` for each t: params, MACs, memory."""
    return [
        block_costs(f"t={t}", InvertedResidual(thin, thin, t * thin), thin, size)
        for t in expansions
    ]


def plot_expansion_sweep(
    costs: Sequence[BlockCost], latency_ms: Sequence[float] | None = None
) -> Figure:
    """Params, MACs, memory and (optionally) measured latency against t, each relative to t=1."""
    ts = [int(c.label.split("=")[1]) for c in costs]
    fig, ax = figure(1, 1, width=6.0, height=3.6)
    base = costs[0]
    ax.plot(ts, [c.params / base.params for c in costs], "o-", label="params")
    ax.plot(ts, [c.macs / base.macs for c in costs], "s-", label="MACs")
    ax.plot(ts, [c.peak_bytes / base.peak_bytes for c in costs], "^-", label="widest activation")
    ax.plot(
        ts, [c.boundary_bytes / base.boundary_bytes for c in costs], "v--", label="kept for skip"
    )
    if latency_ms is not None:
        ax.plot(ts, [t / latency_ms[0] for t in latency_ms], "D-", label="measured latency (CPU)")
    ax.set_xlabel("expansion ratio t")
    ax.set_ylabel("relative to t = 1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- 3. MobileNetV2's table under two rounding rules ------------------------------------


def round_channels(channels: float, width_mult: float, rule: str = "reference") -> int:
    """Scale a channel count by the width multiplier.

    'reference': make_divisible(c * w, 8), nearest multiple of 8, never more than 10% down
    (torchvision, TF). 'seed': max(8, int(c * w)), truncation (the seed document's rule).
    """
    check_choice("rule", rule, ROUNDING_RULES)
    width_mult = check_multiplier("width_mult", width_mult)
    if rule == "reference":
        return make_divisible(channels * width_mult, 8)
    return max(8, int(channels * width_mult))


def _last_channels(width_mult: float, rule: str) -> int:
    """The 1x1 conv before the pool: reference keeps 1280 for w < 1; the seed shrinks it."""
    if rule == "reference":
        return make_divisible(1280 * max(1.0, width_mult), 8)
    return round_channels(1280, width_mult, "seed")


@dataclass(frozen=True)
class MobileNetV2Cost:
    """Params and MACs of MobileNetV2 at one width, rounding rule and expansion ratio."""

    width_mult: float
    rule: str
    expansion: int | None
    params: int
    macs: int
    stage_names: tuple[str, ...]  # stem, 7 table rows, head, classifier
    stage_params: tuple[int, ...]
    stage_macs: tuple[int, ...]
    channels: tuple[int, ...]  # stem width, each row's output width, last width


def mobilenet_v2_costs(
    width_mult: float = 1.0,
    rule: str = "reference",
    expansion: int | None = None,
    input_size: int = 224,
    num_classes: int = 1000,
) -> MobileNetV2Cost:
    """MobileNetV2 (arXiv 1801.04381 Table 2) counted by formula, layer by layer.

    Conv weights k^2 * C_in/g * C_out (``effnb.costs.conv2d_params``), BatchNorm 2*C, the
    classifier C*K + K. MACs = weights * H_out * W_out. ``expansion`` replaces t = 6 in every
    row that has it (the first row keeps t = 1). Equals ``profile(build_mobilenet_v2(...))``.
    """
    check_choice("rule", rule, ROUNDING_RULES)
    if expansion is not None:
        expansion = check_int("expansion", expansion)
    num_classes = check_int("num_classes", num_classes)
    names, params, macs = [], [], []
    stem_ch = round_channels(32, width_mult, rule)
    size = conv2d_output_size(input_size, 3, 2)
    names.append("stem")
    params.append(conv2d_params(3, stem_ch, 3) + 2 * stem_ch)
    macs.append(conv2d_macs(3, stem_ch, 3, size))
    channels = [stem_ch]
    in_ch = stem_ch
    for i, row in enumerate(MOBILENET_V2_TABLE):
        t = row.t if (expansion is None or row.t == 1) else expansion
        out_ch = round_channels(row.c, width_mult, rule)
        p = m = 0
        for j in range(row.n):
            stride = row.s if j == 0 else 1
            hidden = int(round(in_ch * t))
            out_size = conv2d_output_size(size, 3, stride)
            if hidden != in_ch:  # the 1x1 expansion (absent for t = 1)
                p += conv2d_params(in_ch, hidden, 1) + 2 * hidden
                m += conv2d_macs(in_ch, hidden, 1, size)
            p += conv2d_params(hidden, hidden, 3, groups=hidden) + 2 * hidden
            m += conv2d_macs(hidden, hidden, 3, out_size, groups=hidden)
            p += conv2d_params(hidden, out_ch, 1) + 2 * out_ch  # linear projection
            m += conv2d_macs(hidden, out_ch, 1, out_size)
            in_ch, size = out_ch, out_size
        names.append(f"row {i + 1} (t={t}, c={row.c})")
        params.append(p)
        macs.append(m)
        channels.append(out_ch)
    last = _last_channels(width_mult, rule)
    names += ["head 1x1", "classifier"]
    params += [conv2d_params(in_ch, last, 1) + 2 * last, linear_params(last, num_classes)]
    macs += [conv2d_macs(in_ch, last, 1, size), last * num_classes]
    channels.append(last)
    return MobileNetV2Cost(
        width_mult=width_mult,
        rule=rule,
        expansion=expansion,
        params=sum(params),
        macs=sum(macs),
        stage_names=tuple(names),
        stage_params=tuple(params),
        stage_macs=tuple(macs),
        channels=tuple(channels),
    )


def build_mobilenet_v2(
    width_mult: float = 1.0, rule: str = "reference", num_classes: int = 1000
) -> EfficientCNN:
    """MobileNetV2 built from effnb blocks under either rounding rule (to check the formula).

    With rule='reference' it is ``effnb.create_model('mobilenet_v2', width_mult=w)`` again;
    with rule='seed' it reproduces the seed's counts (1,221,768 params at width 0.5).
    """
    in_ch = round_channels(32, width_mult, rule)
    stem = ConvNormAct(3, in_ch, 3, 2, act_layer=nn.ReLU6)
    stages = []
    for row in MOBILENET_V2_TABLE:
        out_ch = round_channels(row.c, width_mult, rule)
        blocks = []
        for j in range(row.n):
            hidden = int(round(in_ch * row.t))
            stride = row.s if j == 0 else 1
            blocks.append(InvertedResidual(in_ch, out_ch, hidden, 3, stride, act_layer=nn.ReLU6))
            in_ch = out_ch
        stages.append(nn.Sequential(*blocks))
    last = _last_channels(width_mult, rule)
    head = ConvNormAct(in_ch, last, 1, act_layer=nn.ReLU6)
    classifier = ClassifierHead(last, num_classes, 0.2)
    return EfficientCNN(stem, stages, head, classifier, name=f"mobilenet_v2 ({rule} rounding)")


def mobilenet_v3_small_se_params(rule: str = "reference") -> dict[str, int]:
    """SE squeeze widths and params of MobileNetV3-Small's SE blocks under two rules.

    'reference': make_divisible(C / 4, 8) (torchvision, TF); 'seed': C // 4. Returns the
    total SE params and the per-row squeeze widths (as a string for printing).
    """
    check_choice("rule", rule, ROUNDING_RULES)
    total, widths = 0, []
    for row in MOBILENET_V3_SMALL_TABLE:
        if not row.se:
            continue
        sq = make_divisible(row.exp // 4, 8) if rule == "reference" else row.exp // 4
        total += 2 * row.exp * sq + sq + row.exp  # two 1x1 convs with bias
        widths.append(sq)
    return {"se_params": total, "squeeze_widths": widths}


# --- 4. Activations ---------------------------------------------------------------------


def plot_activations(lo: float = -6.0, hi: float = 6.0) -> Figure:
    """ReLU, ReLU6, swish (x * sigmoid(x)) and h-swish (x * ReLU6(x + 3) / 6), and their gap."""
    x = torch.linspace(lo, hi, 601)
    curves = {
        "ReLU": torch.relu(x),
        "ReLU6": nn.functional.relu6(x),
        "swish / SiLU": nn.functional.silu(x),
        "h-swish": nn.functional.hardswish(x),
    }
    fig, axes = figure(1, 2, width=4.0, height=3.2)
    for name, y in curves.items():
        axes[0].plot(x, y, label=name)
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("activation(x)")
    axes[0].legend(fontsize=8)
    axes[1].plot(x, curves["h-swish"] - curves["swish / SiLU"], color="C3")
    axes[1].set_xlabel("x")
    axes[1].set_ylabel("h-swish(x) - swish(x)")
    fig.tight_layout()
    return fig


# --- 5. The widget ----------------------------------------------------------------------


def explore_mobilenet_v2(width_mult: float = 1.0, expansion: int = 6) -> tuple[str, Figure]:
    """Widget: MobileNetV2 at width ``width_mult`` with expansion ``expansion`` in the t=6 rows.

    Text: params and MACs (224 px) under the reference and the seed's rounding. Figure:
    params and MACs per part of the network, both rules side by side.
    """
    ref = mobilenet_v2_costs(width_mult, "reference", expansion)
    seed = mobilenet_v2_costs(width_mult, "seed", expansion)
    text = (
        f"MobileNetV2, width {width_mult:.2f}, expansion t={expansion} (rows with t=6 in Table 2)\n"
        f"  reference rounding (make_divisible, last layer >= 1280): {ref.params:,} params, "
        f"{ref.macs / 1e6:.1f}M MACs at 224 px\n"
        f"  seed rounding (max(8, int(c*w)), last layer scaled):     {seed.params:,} params, "
        f"{seed.macs / 1e6:.1f}M MACs at 224 px\n"
        f"  channels (reference): {ref.channels}\n"
        f"  channels (seed):      {seed.channels}"
    )
    fig, axes = figure(1, 2, width=4.4, height=3.3)
    pos = np.arange(len(ref.stage_names))
    short = ["stem"] + [f"r{i}" for i in range(1, 8)] + ["head", "fc"]
    for ax, attr, unit, scale in [
        (axes[0], "stage_params", "params (thousands)", 1e3),
        (axes[1], "stage_macs", "MACs (millions, 224 px)", 1e6),
    ]:
        ax.bar(pos - 0.2, np.array(getattr(ref, attr)) / scale, 0.4, label="reference")
        ax.bar(pos + 0.2, np.array(getattr(seed, attr)) / scale, 0.4, label="seed rule")
        ax.set_xticks(pos, short, fontsize=7)
        ax.set_ylabel(unit)
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"width {width_mult:.2f}, t={expansion}: {ref.params / 1e6:.2f}M params")
    axes[1].set_title(f"{ref.macs / 1e6:.1f}M MACs (reference)")
    fig.tight_layout()
    return text, fig
