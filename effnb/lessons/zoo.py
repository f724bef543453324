"""Notebook 07 (the model zoo, measured): counts, seed tables and plots behind it.

Every registered model (except the generic ``efficientnet`` builder) is counted three ways
(effnb's ``profile``, ``torch.utils.flop_counter.FlopCounterMode`` / 2 and ``thop``), all in
MACs, and set beside the reference counts and the published top-1 (with the paper). Counting
needs shapes, not numbers, so the models are built on PyTorch's ``meta`` device: a forward
pass there allocates nothing and takes no arithmetic, which makes EfficientNet-B7 at 600 px
as cheap to count as MobileNetV3-Small.

The two comparison tables of the course's source material are kept here as data
(``SEED_000_TABLE``, ``SEED_004_TABLE``) so the notebook can print what is wrong with them
next to the measured numbers (see /work/shared/SEED_ERRATA.md).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effnb.costs import profile
from effnb.lessons import counting
from effnb.models import create_model, list_models, model_info
from effnb.plots import figure, plain_log

__all__ = [
    "PUBLISHED_PIXEL3_MS",
    "RESNET50",
    "REFERENCE_CPU_EAGER_MS",
    "SEED_000_TABLE",
    "SEED_004_TABLE",
    "SeedRow",
    "ZooCosts",
    "count_costs",
    "format_costs_table",
    "meta_model",
    "pixel_latency_ms",
    "plot_accuracy_vs_macs",
    "plot_latency_vs_macs",
    "seed_000_report",
    "seed_004_report",
    "thop_macs",
    "zoo_costs",
    "zoo_models",
    "zoo_view",
]

# --- facts quoted from elsewhere (REFERENCE.md), with where they come from ----------------

# ResNet-50 is not an effnb model; its counts are torchvision 0.29.1's resnet50, measured
# with sum(p.numel()) and FlopCounterMode / 2 at 224 px (REFERENCE.md, "Reference
# implementations, measured").
RESNET50 = {
    "params": 25_557_032,
    "macs": 4_089_184_256,
    "source": "torchvision 0.29.1 resnet50, measured (REFERENCE.md)",
}

# Published Pixel 3 latencies: MobileNetV3 paper, arXiv 1905.02244 Table 3 (final version),
# single large core. No other model in the zoo has a published Pixel 3 figure in our sources.
PUBLISHED_PIXEL3_MS = {"mobilenet_v3_large": 44.0, "mobilenet_v3_small": 14.4}
PIXEL3_SOURCE = "MobileNetV3, arXiv 1905.02244 Table 3"

# CPU latencies measured for REFERENCE.md on another 2-core x86 machine (torch 2.14, batch 1,
# 224 px, eager, torch.utils.benchmark median) for models we cannot run here (ResNet-50).
REFERENCE_CPU_EAGER_MS = {
    "resnet50": 155.9,
    "mobilenet_v2": 38.4,
    "mobilenet_v3_large": 33.2,
    "mobilenet_v3_small": 16.0,
    "shufflenet_v2_x1_0": 32.9,
    "efficientnet_b0": 50.3,
    "ghostnet": 44.1,
    "mobilenet_v1": 28.9,
}


@dataclass(frozen=True)
class SeedRow:
    """One row of a seed document's comparison table, as printed there (strings kept)."""

    model: str  # effnb name, or "resnet50" (not in effnb)
    label: str  # as the seed writes it
    params: str
    top1: str
    flops: str  # the seed's "FLOPs" column: in fact MACs
    latency: str


# Seed 000, "Comparison" table: Params, Top-1, "FLOPs", and a latency column of "x faster"
# with no device, no measurement and no source.
SEED_000_TABLE: tuple[SeedRow, ...] = (
    SeedRow("resnet50", "ResNet-50", "25M", "76.0%", "4B", "1x"),
    SeedRow("mobilenet_v2", "MobileNetV2", "3.4M", "72.0%", "300M", "6x faster"),
    SeedRow("mobilenet_v3_large", "MobileNetV3", "5.4M", "75.2%", "219M", "7x faster"),
    SeedRow("efficientnet_b0", "EfficientNet-B0", "5.3M", "77.3%", "390M", "5x faster"),
)

# Seed 004, "Model Comparison": the latency column says "Latency on mobile device (Pixel 3)"
# and cites nothing.
SEED_004_TABLE: tuple[SeedRow, ...] = (
    SeedRow("mobilenet_v1", "MobileNetV1", "4.2M", "70.6%", "569M", "33ms"),
    SeedRow("mobilenet_v2", "MobileNetV2", "3.4M", "72.0%", "300M", "29ms"),
    SeedRow("mobilenet_v3_small", "MobileNetV3-S", "2.5M", "67.4%", "56M", "15ms"),
    SeedRow("mobilenet_v3_large", "MobileNetV3-L", "5.4M", "75.2%", "219M", "27ms"),
    SeedRow("shufflenet_v2_x1_0", "ShuffleNetV2", "2.3M", "69.4%", "146M", "20ms"),
    SeedRow("efficientnet_b0", "EfficientNet-B0", "5.3M", "77.1%", "390M", "35ms"),
    SeedRow("efficientnet_b1", "EfficientNet-B1", "7.8M", "79.1%", "700M", "52ms"),
    SeedRow("efficientnet_b4", "EfficientNet-B4", "19M", "82.9%", "4.2B", "166ms"),
    SeedRow("ghostnet", "GhostNet", "5.2M", "73.9%", "141M", "25ms"),
)


def _parse_quantity(text: str) -> float:
    """'5.3M' -> 5.3e6, '4.2B' -> 4.2e9, '77.3%' -> 77.3, '35ms' -> 35.0."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(M|B|G|%|ms|x.*)?\s*", text)
    if m is None:
        raise ValueError(f"cannot parse quantity {text!r}")
    scale = {"M": 1e6, "B": 1e9, "G": 1e9}.get(m.group(2) or "", 1.0)
    return float(m.group(1)) * scale


def _agrees(seed_text: str, value: float) -> bool:
    """Does ``value`` round to the seed's figure at the seed's precision? ('3.4M', 3_504_872: no)."""
    number = re.match(r"\s*([0-9.]+)", seed_text).group(1)
    decimals = len(number.split(".")[1]) if "." in number else 0
    scale = _parse_quantity(seed_text) / float(number)
    return round(value / scale, decimals) == float(number)


def pixel_latency_ms(name: str, phone: int) -> float | None:
    """Published Pixel ``phone`` latency (ms) of ``name`` from ``model_info(name).extras``.

    Parses e.g. 'Pixel 1/2/3: 51 / 61 / 44 ms' (MobileNetV3) or 'Pixel 1: 75 ms (paper)'
    (MobileNetV2); None when the registry quotes no figure for that phone.
    """
    text = model_info(name).extras.get("published_latency", "")
    m = re.match(r"Pixel ([\d/]+): ([\d.\s/]+) ms", text)
    if m is None:
        return None
    phones = [int(p) for p in m.group(1).split("/")]
    values = [float(v) for v in m.group(2).split("/")]
    return values[phones.index(phone)] if phone in phones else None


# --- counting -----------------------------------------------------------------------------


def zoo_models() -> list[str]:
    """Every registered model with a fixed architecture (the generic 'efficientnet' left out)."""
    return [n for n in list_models() if n != "efficientnet"]


@functools.lru_cache(maxsize=64)
def meta_model(name: str) -> nn.Module:
    """``create_model(name)`` built on the meta device, in eval mode: shapes, no numbers.

    Cached, so the notebook's widget can re-profile a model at another resolution quickly.
    Never run a meta model on real data; it has no weights.
    """
    with torch.device("meta"):
        return create_model(name).eval()


def thop_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """What ``thop.profile`` (the MIT package, 0.1.1) returns for a (1, C, H, W) input: MACs,
    BatchNorm included (``effnb.lessons.counting.thop_macs``, which leaves the model as it was)."""
    return counting.thop_macs(model, tuple(input_shape[1:]))[0]


@dataclass(frozen=True)
class ZooCosts:
    """One model's counts (ours, FlopCounterMode, thop; all MACs) and its quoted facts."""

    name: str
    input_size: int
    params: int
    macs: int  # effnb.profile: conv + linear MACs
    flop_counter_macs: int  # FlopCounterMode total / 2
    thop_macs: int  # thop: conv + linear + BatchNorm + adaptive pooling
    reference_params: int | None
    reference_macs: int | None
    top1: float | None
    paper: str
    published_latency: str

    @property
    def params_match(self) -> bool:
        return self.params == self.reference_params

    @property
    def macs_match(self) -> bool:
        return self.macs == self.reference_macs == self.flop_counter_macs


def count_costs(name: str, input_size: int | None = None) -> ZooCosts:
    """Count ``name`` at ``input_size`` (default: its native resolution) three ways, on meta.

    ``effnb.profile`` runs inside ``FlopCounterMode``, so both counters see the same forward
    pass; thop then runs its own (it needs its own hooks).
    """
    info = model_info(name)
    size = info.input_size if input_size is None else input_size
    model = meta_model(name)
    with FlopCounterMode(display=False) as counter:
        report = profile(model, size)
    return ZooCosts(
        name=name,
        input_size=size,
        params=report.params,
        macs=report.macs,
        flop_counter_macs=counter.get_total_flops() // 2,
        thop_macs=thop_macs(model, (1, 3, size, size)),
        reference_params=info.reference_params,
        reference_macs=info.reference_macs,
        top1=info.top1,
        paper=info.paper,
        published_latency=info.extras.get("published_latency", ""),
    )


def zoo_costs(names: Sequence[str] | None = None) -> dict[str, ZooCosts]:
    """``count_costs`` of every zoo model (or of ``names``), in the registry's order."""
    return {n: count_costs(n) for n in (zoo_models() if names is None else names)}


def format_costs_table(costs: Mapping[str, ZooCosts]) -> str:
    """Params and the three MAC counts side by side, with the reference match."""
    head = (
        f"{'model':20s} {'px':>4s} {'params':>11s} {'ref match':>9s} {'MACs (ours)':>15s} "
        f"{'FlopCounter/2':>15s} {'thop MACs':>15s} {'thop/ours':>9s}"
    )
    lines = [head, "-" * len(head)]
    for c in costs.values():
        lines.append(
            f"{c.name:20s} {c.input_size:>4d} {c.params:>11,} {str(c.params_match):>9s} "
            f"{c.macs:>15,} {c.flop_counter_macs:>15,} {c.thop_macs:>15,} "
            f"{c.thop_macs / c.macs:>9.3f}"
        )
    return "\n".join(lines)


# --- the seed tables, checked ---------------------------------------------------------------


def _fmt_params(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def _fmt_macs(n: float) -> str:
    return f"{n / 1e9:.2f}G" if n >= 1e9 else f"{n / 1e6:.1f}M"


def seed_000_report(
    costs: Mapping[str, ZooCosts], cpu_ms: Mapping[str, float] | None = None
) -> str:
    """What is wrong with seed 000's table, then the corrected table.

    ``cpu_ms``: our measured CPU latency (ms) per effnb model name, or None to leave the
    column out (the notebook's checked cell prints the deterministic part only).
    """
    notes = []
    for row in SEED_000_TABLE:
        if row.model == "resnet50":
            params, macs, top1 = RESNET50["params"], RESNET50["macs"], None
        else:
            c = costs[row.model]
            params, macs, top1 = c.params, c.macs, c.top1
        seed_flops = _parse_quantity(row.flops)
        notes.append(
            f"{row.label}: 'FLOPs' {row.flops} is {seed_flops / macs:.2f}x our conv+linear MACs "
            f"({_fmt_macs(macs)}), {seed_flops / (2 * macs):.2f}x our FLOPs: the column holds MACs."
        )
        seed_top1 = _parse_quantity(row.top1)
        if top1 is not None and not math.isclose(seed_top1, top1):
            notes.append(
                f"{row.label}: top-1 {row.top1} in the seed; the paper says {top1}% "
                f"({costs[row.model].paper})."
            )
        if not _agrees(row.params, params):
            notes.append(
                f"{row.label}: params {row.params} in the seed; the network counts {params:,} "
                f"({_fmt_params(params)})."
            )
    notes.append(
        "Latency column ('6x faster', ...): no device, no batch size, no measurement, no source."
    )
    head = f"{'model':16s} {'params':>9s} {'MACs':>8s} {'top-1 %':>8s}  {'top-1 source':38s}"
    if cpu_ms is not None:
        head += f" {'CPU ms (ours)':>13s}"
    lines = [*notes, "", head, "-" * len(head)]
    for row in SEED_000_TABLE:
        if row.model == "resnet50":
            line = (
                f"{row.label:16s} {_fmt_params(RESNET50['params']):>9s} "
                f"{_fmt_macs(RESNET50['macs']):>8s} {'-':>8s}  {'not in our sources':38s}"
            )
            ms = "not in effnb"
        else:
            c = costs[row.model]
            line = (
                f"{row.label:16s} {_fmt_params(c.params):>9s} {_fmt_macs(c.macs):>8s} "
                f"{c.top1:>8.1f}  {c.paper:38s}"
            )
            ms = f"{cpu_ms[row.model]:.1f}" if cpu_ms is not None and row.model in cpu_ms else "-"
        lines.append(line + (f" {ms:>13s}" if cpu_ms is not None else ""))
    lines.append(
        f"ResNet-50 counts: {RESNET50['source']}. MACs = conv + linear multiply-accumulates."
    )
    return "\n".join(lines)


def seed_004_report(
    costs: Mapping[str, ZooCosts], cpu_ms: Mapping[str, float] | None = None
) -> str:
    """Seed 004's table beside measured counts, published top-1 and published Pixel latency."""
    head = (
        f"{'model':16s} {'seed ms':>8s} {'Pixel 3 ms (published)':>23s} {'params':>9s} "
        f"{'MACs':>8s} {'top-1 %':>8s}"
    )
    if cpu_ms is not None:
        head += f" {'CPU ms (ours)':>13s}"
    lines = [head, "-" * len(head)]
    mismatches = []
    for row in SEED_004_TABLE:
        c = costs[row.model]
        pub = pixel_latency_ms(row.model, 3)
        pub_text = f"{pub:g}" if pub is not None else "none published"
        if pub is not None and not math.isclose(_parse_quantity(row.latency), pub):
            mismatches.append(f"{row.label}: seed {row.latency}, published {pub:g} ms")
        line = (
            f"{row.label:16s} {row.latency:>8s} {pub_text:>23s} {_fmt_params(c.params):>9s} "
            f"{_fmt_macs(c.macs):>8s} {c.top1:>8.1f}"
        )
        if cpu_ms is not None:
            ms = f"{cpu_ms[row.model]:.1f}" if row.model in cpu_ms else "-"
            line += f" {ms:>13s}"
        lines.append(line)
    lines.append(f"Published Pixel 3 latency: {PIXEL3_SOURCE} (single large core).")
    lines.append("Seed vs published: " + "; ".join(mismatches) + ".")
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------

_FAMILY_COLORS = {
    "mobilenet": "tab:blue",
    "shufflenet": "tab:orange",
    "ghostnet": "tab:green",
    "efficientnet": "tab:red",
}


def _color(name: str) -> str:
    return _FAMILY_COLORS.get(model_info(name).family, "tab:gray")


def _short(name: str) -> str:
    return name.replace("efficientnet_", "").upper() if name.startswith("efficientnet_") else name


def _family_legend(ax) -> None:
    for family, color in _FAMILY_COLORS.items():
        ax.scatter([], [], color=color, s=20, label=family)
    ax.legend(loc="upper left", fontsize=8)


def plot_latency_vs_macs(
    costs: Mapping[str, ZooCosts], latency_ms: Mapping[str, float], device: str = "cpu"
) -> Figure:
    """Measured latency (ms, log) against conv+linear MACs (log), one point per model."""
    fig, ax = figure()
    for name, ms in latency_ms.items():
        c = costs[name]
        ax.scatter(c.macs / 1e6, ms, color=_color(name), s=40)
        ax.annotate(name, (c.macs / 1e6, ms), fontsize=8, xytext=(4, 3), textcoords="offset points")
    plain_log(ax)
    _family_legend(ax)
    ax.set_xlabel("conv + linear MACs (millions, log scale)")
    ax.set_ylabel(f"median latency, batch 1, {device} (ms, log scale)")
    ax.set_title("Latency is not proportional to MACs")
    return fig


def plot_accuracy_vs_macs(costs: Mapping[str, ZooCosts], highlight: str | None = None) -> Figure:
    """Published ImageNet top-1 (%) against our measured MACs (log); quoted, not trained here."""
    fig, ax = figure()
    for name, c in costs.items():
        if c.top1 is None:
            continue
        big = name == highlight
        ax.scatter(
            c.macs / 1e6,
            c.top1,
            color=_color(name),
            s=120 if big else 30,
            marker="*" if big else "o",
        )
        ax.annotate(
            name, (c.macs / 1e6, c.top1), fontsize=7, xytext=(3, 2), textcoords="offset points"
        )
    plain_log(ax, "x")
    _family_legend(ax)
    ax.set_xlabel("conv + linear MACs at native resolution (millions, log scale)")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("Accuracy vs MACs (top-1 quoted from each paper)")
    return fig


def zoo_view(
    resolution: int,
    model: str,
    costs: Mapping[str, ZooCosts],
    latency_ms: Mapping[str, float] | None = None,
) -> tuple[str, Figure]:
    """The widget's view: ``model`` at ``resolution`` px on the params-vs-MACs chart of the zoo.

    MACs are counted (``profile`` on a meta-device model); the latency estimate, when
    ``latency_ms`` holds a measurement at the native size, scales it by the MAC ratio, which
    is crude (MACs are not latency) but free.
    """
    if model not in costs:
        raise ValueError(f"model must be one of {list(costs)}, got {model!r}")
    report = profile(meta_model(model), resolution)
    native = costs[model]
    ratio = report.macs / native.macs
    text = (
        f"{model} at {resolution}x{resolution} px: {report.params:,} params, "
        f"{report.macs / 1e6:,.1f}M MACs = {ratio:.2f}x its cost at {native.input_size} px"
    )
    if latency_ms is not None and model in latency_ms:
        text += (
            f"\nlatency estimate: {latency_ms[model] * ratio:.1f} ms "
            f"(measured {latency_ms[model]:.1f} ms at {native.input_size} px, scaled by MACs)"
        )
    fig, ax = figure(width=6.0, height=4.0)
    for name, c in costs.items():
        ax.scatter(c.macs / 1e6, c.params / 1e6, color=_color(name), s=20, alpha=0.5)
    ax.scatter(native.macs / 1e6, native.params / 1e6, color="black", s=30, marker="o")
    ax.scatter(report.macs / 1e6, report.params / 1e6, color="black", s=180, marker="*")
    ax.annotate(
        f"{model} @ {resolution}px",
        (report.macs / 1e6, report.params / 1e6),
        xytext=(6, 6),
        textcoords="offset points",
    )
    plain_log(ax)
    _family_legend(ax)
    ax.set_xlim(5, 1e5)
    ax.set_xlabel("conv + linear MACs (millions, log scale)")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("The zoo at native resolution; the star: your choice")
    return text, fig
