"""ShuffleNetV2 as a config table and one builder.

arXiv 1807.11164 Table 5: a 3x3/2 conv (24) and 3x3/2 max pool, three stages of
ShuffleUnits repeated 4, 8, 4 times (the first of each with stride 2), a 1x1 conv, pool, FC.
Only the four published widths exist; any other width is an error, not a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from effnb._checks import check_int
from effnb.layers import ConvNormAct, ShuffleUnit
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.models.registry import register_model

STAGE_REPEATS: tuple[int, int, int] = (4, 8, 4)

# Table 5 output channels per width: stem, stage2, stage3, stage4, conv5.
STAGE_CHANNELS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}


def shufflenet_v2(
    width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.0
) -> EfficientCNN:
    """ShuffleNetV2 at one of the published widths 0.5, 1.0, 1.5, 2.0 (Table 5)."""
    if isinstance(width_mult, bool) or width_mult not in STAGE_CHANNELS:
        raise ValueError(
            f"width_mult must be one of the published ShuffleNetV2 widths {sorted(STAGE_CHANNELS)}, "
            f"got {width_mult!r} (Table 5 of arXiv 1807.11164 defines no other)"
        )
    num_classes = check_int("num_classes", num_classes)
    stem_ch, *stage_ch, last_ch = STAGE_CHANNELS[width_mult]
    stem = ConvNormAct(3, stem_ch, 3, 2)
    stem_pool = nn.MaxPool2d(3, 2, 1)
    stages, in_ch = [], stem_ch
    for repeats, out_ch in zip(STAGE_REPEATS, stage_ch, strict=True):
        units = [ShuffleUnit(in_ch, out_ch, 2)] + [
            ShuffleUnit(out_ch, out_ch, 1) for _ in range(repeats - 1)
        ]
        stages.append(nn.Sequential(*units))
        in_ch = out_ch
    head = ConvNormAct(in_ch, last_ch, 1)
    classifier = ClassifierHead(last_ch, num_classes, dropout)
    return EfficientCNN(
        stem,
        stages,
        head,
        classifier,
        stem_pool=stem_pool,
        name=f"shufflenet_v2_x{width_mult:.1f}".replace(".", "_"),
    )


@dataclass(frozen=True)
class ShuffleNetRelease:
    """A released width: its reference facts (torchvision's counts at 224 px; the paper's
    top-1 and ARM throughput, Table 5 of arXiv 1807.11164)."""

    width: float
    params: int
    macs: int
    top1: float
    arm_images_per_s: float


SHUFFLENET_V2_RELEASES: dict[str, ShuffleNetRelease] = {
    "shufflenet_v2_x0_5": ShuffleNetRelease(
        width=0.5, params=1_366_792, macs=40_476_448, top1=60.3, arm_images_per_s=57.0
    ),
    "shufflenet_v2_x1_0": ShuffleNetRelease(
        width=1.0, params=2_278_604, macs=144_907_992, top1=69.4, arm_images_per_s=24.4
    ),
    "shufflenet_v2_x1_5": ShuffleNetRelease(
        width=1.5, params=3_503_624, macs=295_759_392, top1=72.6, arm_images_per_s=11.8
    ),
    "shufflenet_v2_x2_0": ShuffleNetRelease(
        width=2.0, params=7_393_996, macs=583_253_464, top1=74.9, arm_images_per_s=6.7
    ),
}


def _variant(width: float) -> Callable[..., EfficientCNN]:
    def build(num_classes: int = 1000, dropout: float = 0.0) -> EfficientCNN:
        return shufflenet_v2(width, num_classes, dropout)

    build.__doc__ = f"ShuffleNetV2 {width}x (Table 5 of arXiv 1807.11164)."
    return build


for _name, _release in SHUFFLENET_V2_RELEASES.items():
    register_model(
        _name,
        family="shufflenet",
        reference=f"torchvision {_name}",
        reference_params=_release.params,
        reference_macs=_release.macs,
        top1=_release.top1,
        paper="ShuffleNetV2, arXiv 1807.11164",
        extras={
            "width_mult": _release.width,
            "published_latency": f"ARM: {_release.arm_images_per_s} images/s",
        },
    )(_variant(_release.width))
