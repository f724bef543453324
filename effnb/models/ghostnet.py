"""GhostNet as a config table and one builder (arXiv 1911.11907, Table 1; timm ``ghostnet_100``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effnb._checks import check_int, check_multiplier
from effnb.layers import ConvNormAct, GhostBottleneck, make_divisible
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.models.registry import register_model


@dataclass(frozen=True)
class GhostRow:
    """A G-bneck row: depthwise kernel, expansion (hidden) size, output channels, SE ratio, stride."""

    kernel: int
    exp: int
    out: int
    se_ratio: float
    stride: int


# arXiv 1911.11907 Table 1, grouped into stages as timm groups them.
GHOSTNET_STAGES: tuple[tuple[GhostRow, ...], ...] = (
    (GhostRow(3, 16, 16, 0, 1),),
    (GhostRow(3, 48, 24, 0, 2),),
    (GhostRow(3, 72, 24, 0, 1),),
    (GhostRow(5, 72, 40, 0.25, 2),),
    (GhostRow(5, 120, 40, 0.25, 1),),
    (GhostRow(3, 240, 80, 0, 2),),
    (
        GhostRow(3, 200, 80, 0, 1),
        GhostRow(3, 184, 80, 0, 1),
        GhostRow(3, 184, 80, 0, 1),
        GhostRow(3, 480, 112, 0.25, 1),
        GhostRow(3, 672, 112, 0.25, 1),
    ),
    (GhostRow(5, 672, 160, 0.25, 2),),
    (
        GhostRow(5, 960, 160, 0, 1),
        GhostRow(5, 960, 160, 0.25, 1),
        GhostRow(5, 960, 160, 0, 1),
        GhostRow(5, 960, 160, 0.25, 1),
    ),
)


@register_model(
    "ghostnet",
    family="ghostnet",
    reference="timm ghostnet_100",
    reference_params=5_182_508,
    reference_macs=141_150_512,
    top1=73.9,
    paper="GhostNet, arXiv 1911.11907",
)
def ghostnet(
    width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
) -> EfficientCNN:
    """GhostNet. Widths round to multiples of 4; SE squeeze = make_divisible(C_hidden / 4, 4).

    Params at width 1.0: 5,182,508 (timm ``ghostnet_100``), 141.2M MACs at 224.
    """
    width_mult = check_multiplier("width_mult", width_mult)
    num_classes = check_int("num_classes", num_classes)

    def ch(c: float) -> int:
        return make_divisible(c * width_mult, 4)

    in_ch = ch(16)
    stem = ConvNormAct(3, in_ch, 3, 2)
    stages = []
    for rows in GHOSTNET_STAGES:
        blocks = []
        for row in rows:
            hidden, out_ch = ch(row.exp), ch(row.out)
            se_ch = make_divisible(hidden * row.se_ratio, 4) if row.se_ratio else 0
            blocks.append(GhostBottleneck(in_ch, hidden, out_ch, row.kernel, row.stride, se_ch))
            in_ch = out_ch
        stages.append(nn.Sequential(*blocks))
    head_ch = ch(960)
    head = ConvNormAct(in_ch, head_ch, 1)
    # The 1280-unit layer after pooling is fixed, whatever the width (as in the paper's code).
    classifier = ClassifierHead(
        head_ch, num_classes, dropout, hidden_features=1280, hidden_act=nn.ReLU
    )
    return EfficientCNN(stem, stages, head, classifier, name="ghostnet")
