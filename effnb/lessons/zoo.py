"""Notebook 07 (the model zoo, measured): its two figures and its widget.

The counting, the timing and the corrected tables are on the notebook page; these functions
only draw. They take plain mappings keyed by model name (MACs are conv + linear
multiply-accumulates), so any name works, registered or not (ResNet-50 is built on the page).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from matplotlib.transforms import Bbox
from torch import nn

from effnb.costs import profile
from effnb.models import create_model, list_models, model_info
from effnb.plots import figure, plain_log

__all__ = ["meta_model", "plot_accuracy_vs_macs", "plot_latency_vs_macs", "zoo_view"]

FAMILY_COLORS = dict(mobilenet="tab:blue", shufflenet="tab:orange", ghostnet="tab:green")
FAMILY_COLORS["efficientnet"] = "tab:red"


def _color(name: str) -> str:
    """The family's colour; gray for a model outside the registry (ResNet-50)."""
    if name not in list_models():
        return "tab:gray"
    return FAMILY_COLORS.get(model_info(name).family, "tab:gray")


def _legend(ax, extra: Mapping[str, dict] | None = None) -> None:
    """One legend entry per family (and per marker style in ``extra``), nothing invisible."""
    for family, color in FAMILY_COLORS.items():
        ax.scatter([], [], color=color, s=25, label=family)
    for label, style in (extra or {}).items():
        ax.scatter([], [], label=label, **style)
    ax.legend(loc="upper left", fontsize=8)


def short_name(name: str) -> str:
    """A plot label: 'mobilenet_v3_large_minimal' -> 'MNv3-L min', 'efficientnet_b3' -> 'B3'."""
    if name.startswith("mobilenet_"):
        rest = name.removeprefix("mobilenet_").replace("_large", "-L").replace("_small", "-S")
        return "MN" + rest.replace("_minimal", " min")
    if name.startswith("shufflenet_v2_x"):
        return "SNv2 " + name.removeprefix("shufflenet_v2_x").replace("_", ".")
    if name.startswith("efficientnet_"):
        return name.removeprefix("efficientnet_").upper()
    return {"ghostnet": "GhostNet", "resnet50": "ResNet-50"}.get(name, name)


# Label offsets (points) tried in order until a label overlaps no marker, label or legend.
_OFFSETS = [(5, 2), (5, -10), (-5, 2), (-5, -10), (5, 11), (5, -19), (-5, 11), (-5, -19)]


def _place_labels(
    ax: Axes, anchors: Mapping[str, tuple], markers: list, lines: Sequence = ()
) -> None:
    """Label each anchor (data coords) at the first offset that overlaps nothing (display
    boxes of ``markers``, the legend, labels placed so far); failing that, nothing but
    ``lines`` (thin connectors may be crossed); failing that, at the first offset."""
    ax.figure.canvas.draw()  # extents below use the renderer of this draw
    legend = ax.get_legend()
    taken = [*markers] + ([legend.get_window_extent()] if legend is not None else [])
    frame = ax.get_window_extent()
    for label, xy in anchors.items():
        tries = [(dxy, [*taken, *lines]) for dxy in _OFFSETS] + [(d, taken) for d in _OFFSETS]
        for i, ((dx, dy), avoid) in enumerate([*tries, (_OFFSETS[0], [])]):
            text = ax.annotate(label, xy, xytext=(dx, dy), textcoords="offset points",
                               ha="left" if dx > 0 else "right", fontsize=7)  # fmt: skip
            box = text.get_window_extent()
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1
            if (inside and not box.count_overlaps(avoid)) or i == len(tries):
                break
            text.remove()
        taken.append(box)


def _box(ax, x: float, y0: float, y1: float | None = None, pad: float = 5.0) -> Bbox:
    """Display-space box around the marker at (x, y0), or the segment (x, y0)-(x, y1)."""
    pts = ax.transData.transform([(x, y0), (x, y0 if y1 is None else y1)])
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    return Bbox.from_extents(lo[0], lo[1], hi[0], hi[1])


@functools.lru_cache(maxsize=64)
def meta_model(name: str) -> nn.Module:
    """``create_model(name)`` on the meta device (shapes, no weights), cached for the widget."""
    with torch.device("meta"):
        return create_model(name).eval()


def plot_latency_vs_macs(
    macs: Mapping[str, int],
    eager_ms: Mapping[str, float],
    deployed_ms: Mapping[str, float] | None = None,
    where: str = "cpu",
) -> Figure:
    """Measured latency (log) against MACs (log): eager dots, deployed rings, joined per model."""
    fig, ax = figure(width=7.5, height=5.0)
    for name, ms in eager_ms.items():
        x, color = macs[name] / 1e6, _color(name)
        ax.scatter(x, ms, color=color, s=40, zorder=3)
        if deployed_ms is not None and name in deployed_ms:
            ax.plot([x, x], [ms, deployed_ms[name]], color=color, lw=1, alpha=0.6, zorder=2)
            ax.scatter(x, deployed_ms[name], facecolor="white", edgecolor=color, s=40, zorder=3)
    plain_log(ax)
    styles = {"eager (filled)": {"color": "black", "s": 25}}
    if deployed_ms is not None:
        styles["deployed (ring)"] = {"facecolor": "white", "edgecolor": "black", "s": 25}
    _legend(ax, styles)
    ax.set_xlabel("conv + linear MACs (millions, log scale)")
    ax.set_ylabel(f"median latency, batch 1, {where} (ms, log scale)")
    ax.set_title("Measured latency against MACs")
    points = {n: (macs[n] / 1e6, ms) for n, ms in eager_ms.items()}
    markers = [_box(ax, x, y) for x, y in points.values()]
    lines = []
    for n, (x, y) in points.items():
        if deployed_ms is not None and n in deployed_ms:
            markers.append(_box(ax, x, deployed_ms[n]))
            lines.append(_box(ax, x, y, deployed_ms[n], pad=1.0))
    _place_labels(ax, {short_name(n): xy for n, xy in points.items()}, markers, lines)
    return fig


def plot_accuracy_vs_macs(macs: Mapping[str, int], top1: Mapping[str, float]) -> Figure:
    """Published ImageNet top-1 (%) against counted MACs (log): quoted, not trained here."""
    fig, ax = figure(width=7.5, height=5.0)
    for name, acc in top1.items():
        ax.scatter(macs[name] / 1e6, acc, color=_color(name), s=30)
    plain_log(ax, "x")
    _legend(ax)
    ax.set_xlabel("conv + linear MACs at native resolution (millions, log scale)")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("Accuracy (quoted from each paper) against MACs (counted)")
    points = {short_name(n): (macs[n] / 1e6, acc) for n, acc in top1.items()}
    _place_labels(ax, points, [_box(ax, x, y) for x, y in points.values()])
    return fig


def zoo_view(
    resolution: int,
    model: str,
    macs: Mapping[str, int],
    params: Mapping[str, int],
    latency_ms: Mapping[str, float] | None = None,
) -> tuple[str, Figure]:
    """The widget: ``model`` at ``resolution`` px, a star on the zoo's params-vs-MACs chart.

    MACs are counted on a meta-device copy; the latency estimate scales the measurement at
    the native resolution by the MAC ratio (crude: MACs are not latency, but within one
    network and a modest change of resolution they are a first guess).
    """
    if model not in list_models():
        raise ValueError(f"model must be a registered name, got {model!r}")
    native = model_info(model).input_size
    report = profile(meta_model(model), resolution)
    ratio = report.macs / profile(meta_model(model), native).macs
    text = (
        f"{model} at {resolution}x{resolution} px: {report.params:,} params, "
        f"{report.macs / 1e6:,.1f}M MACs = {ratio:.2f}x its MACs at {native} px"
    )
    if latency_ms is not None and model in latency_ms:
        text += (
            f"\nlatency estimate {latency_ms[model] * ratio:.1f} ms "
            f"(measured {latency_ms[model]:.1f} ms at {native} px, scaled by MACs)"
        )
    fig, ax = figure(width=6.4, height=4.2)
    for name in macs:
        ax.scatter(macs[name] / 1e6, params[name] / 1e6, color=_color(name), s=20, alpha=0.6)
    star = (report.macs / 1e6, report.params / 1e6)
    ax.scatter(*star, color="black", s=180, marker="*")
    left = star[0] > 3e3  # keep the label inside the axes
    ax.annotate(f"{model} @ {resolution} px", star, xytext=(-8 if left else 8, -14),
                textcoords="offset points", ha="right" if left else "left")  # fmt: skip
    plain_log(ax)
    ax.xaxis.set_minor_formatter(NullFormatter())  # 2x / 5x labels would collide up to 1e5
    _legend(ax)
    ax.set_xlim(20, 1e5)
    ax.set_xlabel("conv + linear MACs (millions, log scale)")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("The zoo at native resolution; the star: your choice")
    return text, fig
