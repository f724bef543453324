"""ShuffleNetV2 as a config table and one builder.

arXiv 1807.11164 Table 5: a 3x3/2 conv (24) and 3x3/2 max pool, three stages of
ShuffleUnits repeated 4, 8, 4 times (the first of each with stride 2), a 1x1 conv, pool, FC.
Only the four published widths exist; any other width is an error, not a guess.
"""

from __future__ import annotations

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


_FACTS = {
    # name: (width, params, MACs, top-1, ARM images/s)
    "shufflenet_v2_x0_5": (0.5, 1_366_792, 40_476_448, 60.3, 57.0),
    "shufflenet_v2_x1_0": (1.0, 2_278_604, 144_907_992, 69.4, 24.4),
    "shufflenet_v2_x1_5": (1.5, 3_503_624, 295_759_392, 72.6, 11.8),
    "shufflenet_v2_x2_0": (2.0, 7_393_996, 583_253_464, 74.9, 6.7),
}


def _variant(width: float):
    def build(num_classes: int = 1000, dropout: float = 0.0) -> EfficientCNN:
        return shufflenet_v2(width, num_classes, dropout)

    build.__doc__ = f"ShuffleNetV2 {width}x (Table 5 of arXiv 1807.11164)."
    return build


for _name, (_w, _params, _macs, _top1, _ips) in _FACTS.items():
    register_model(
        _name,
        _variant(_w),
        input_size=224,
        family="shufflenet",
        reference=f"torchvision {_name}",
        reference_params=_params,
        reference_macs=_macs,
        top1=_top1,
        paper="ShuffleNetV2, arXiv 1807.11164",
        extras={"width_mult": _w, "published_latency": f"ARM: {_ips} images/s"},
    )
