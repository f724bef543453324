"""MobileNetV1, V2 and V3 as config tables, one builder each.

Each table mirrors the paper's table, row for row. Widths are scaled with
``make_divisible(c * width_mult, 8)``; parameter counts match the references to the
unit (timm ``mobilenetv1_100``, torchvision ``mobilenet_v2`` and ``mobilenet_v3_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from torch import nn

from effnb._checks import check_int, check_multiplier
from effnb.layers import ConvNormAct, DepthwiseSeparableConv, InvertedResidual, make_divisible
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.models.registry import register_model

# --- MobileNetV1 ------------------------------------------------------------------------


@dataclass(frozen=True)
class DSConvRow:
    """One row of MobileNetV1's body: a depthwise-separable conv."""

    out_channels: int
    stride: int


# arXiv 1704.04861 Table 1, after the 3x3/2 stem conv with 32 filters. Grouped into the
# five stages that end at each stride, as timm groups them.
MOBILENET_V1_STAGES: tuple[tuple[DSConvRow, ...], ...] = (
    (DSConvRow(64, 1),),
    (DSConvRow(128, 2), DSConvRow(128, 1)),
    (DSConvRow(256, 2), DSConvRow(256, 1)),
    (DSConvRow(512, 2),) + (DSConvRow(512, 1),) * 5,
    (DSConvRow(1024, 2), DSConvRow(1024, 1)),
)


def mobilenet_v1(
    width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.0
) -> EfficientCNN:
    """MobileNetV1 with width multiplier alpha (the resolution multiplier rho is the input size).

    Params at alpha = 1.0: 4,231,976 (timm ``mobilenetv1_100``); MACs at 224: 568.7M.
    """
    width_mult = check_multiplier("width_mult", width_mult)
    num_classes = check_int("num_classes", num_classes)
    ch = partial(_scale, width_mult=width_mult)
    stem = ConvNormAct(3, ch(32), 3, 2, act_layer=nn.ReLU6)
    stages, in_ch = [], ch(32)
    for rows in MOBILENET_V1_STAGES:
        blocks = []
        for row in rows:
            blocks.append(
                DepthwiseSeparableConv(
                    in_ch, ch(row.out_channels), 3, row.stride, act_layer=nn.ReLU6
                )
            )
            in_ch = ch(row.out_channels)
        stages.append(nn.Sequential(*blocks))
    classifier = ClassifierHead(in_ch, num_classes, dropout)
    return EfficientCNN(stem, stages, nn.Identity(), classifier, name="mobilenet_v1")


def _scale(channels: int, width_mult: float) -> int:
    return make_divisible(channels * width_mult, 8)


# --- MobileNetV2 ------------------------------------------------------------------------


@dataclass(frozen=True)
class BottleneckRow:
    """A row of MobileNetV2's table: expansion t, output channels c, repeats n, stride s."""

    t: int
    c: int
    n: int
    s: int


# arXiv 1801.04381 Table 2 (after the 3x3/2 conv with 32 filters; before the 1x1 conv to 1280).
MOBILENET_V2_TABLE: tuple[BottleneckRow, ...] = (
    BottleneckRow(1, 16, 1, 1),
    BottleneckRow(6, 24, 2, 2),
    BottleneckRow(6, 32, 3, 2),
    BottleneckRow(6, 64, 4, 2),
    BottleneckRow(6, 96, 3, 1),
    BottleneckRow(6, 160, 3, 2),
    BottleneckRow(6, 320, 1, 1),
)


def mobilenet_v2(
    width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
) -> EfficientCNN:
    """MobileNetV2. Hidden width = round(C_in * t); the last conv keeps 1280 channels when
    width_mult < 1 (the paper: 'we do not apply the width multiplier to the last layer').

    Params at width 1.0: 3,504,872 (torchvision); 1,968,680 at 0.5; 6,108,776 at 1.4.
    """
    width_mult = check_multiplier("width_mult", width_mult)
    num_classes = check_int("num_classes", num_classes)
    in_ch = _scale(32, width_mult)
    last_ch = make_divisible(1280 * max(1.0, width_mult), 8)
    stem = ConvNormAct(3, in_ch, 3, 2, act_layer=nn.ReLU6)
    stages = []
    for row in MOBILENET_V2_TABLE:
        out_ch = _scale(row.c, width_mult)
        blocks = []
        for i in range(row.n):
            stride = row.s if i == 0 else 1
            hidden = int(round(in_ch * row.t))
            blocks.append(InvertedResidual(in_ch, out_ch, hidden, 3, stride, act_layer=nn.ReLU6))
            in_ch = out_ch
        stages.append(nn.Sequential(*blocks))
    head = ConvNormAct(in_ch, last_ch, 1, act_layer=nn.ReLU6)
    classifier = ClassifierHead(last_ch, num_classes, dropout)
    return EfficientCNN(stem, stages, head, classifier, name="mobilenet_v2")


# --- MobileNetV3 ------------------------------------------------------------------------


@dataclass(frozen=True)
class BneckRow:
    """A row of MobileNetV3's tables: kernel, expansion size, output channels, SE, activation, stride."""

    kernel: int
    exp: int
    out: int
    se: bool
    act: str  # "relu" (RE in the paper) or "hswish" (HS)
    stride: int


# arXiv 1905.02244 Table 1 (MobileNetV3-Large), bneck rows in order.
MOBILENET_V3_LARGE_TABLE: tuple[BneckRow, ...] = (
    BneckRow(3, 16, 16, False, "relu", 1),
    BneckRow(3, 64, 24, False, "relu", 2),
    BneckRow(3, 72, 24, False, "relu", 1),
    BneckRow(5, 72, 40, True, "relu", 2),
    BneckRow(5, 120, 40, True, "relu", 1),
    BneckRow(5, 120, 40, True, "relu", 1),
    BneckRow(3, 240, 80, False, "hswish", 2),
    BneckRow(3, 200, 80, False, "hswish", 1),
    BneckRow(3, 184, 80, False, "hswish", 1),
    BneckRow(3, 184, 80, False, "hswish", 1),
    BneckRow(3, 480, 112, True, "hswish", 1),
    BneckRow(3, 672, 112, True, "hswish", 1),
    BneckRow(5, 672, 160, True, "hswish", 2),
    BneckRow(5, 960, 160, True, "hswish", 1),
    BneckRow(5, 960, 160, True, "hswish", 1),
)

# arXiv 1905.02244 Table 2 (MobileNetV3-Small), bneck rows in order.
MOBILENET_V3_SMALL_TABLE: tuple[BneckRow, ...] = (
    BneckRow(3, 16, 16, True, "relu", 2),
    BneckRow(3, 72, 24, False, "relu", 2),
    BneckRow(3, 88, 24, False, "relu", 1),
    BneckRow(5, 96, 40, True, "hswish", 2),
    BneckRow(5, 240, 40, True, "hswish", 1),
    BneckRow(5, 240, 40, True, "hswish", 1),
    BneckRow(5, 120, 48, True, "hswish", 1),
    BneckRow(5, 144, 48, True, "hswish", 1),
    BneckRow(5, 288, 96, True, "hswish", 2),
    BneckRow(5, 576, 96, True, "hswish", 1),
    BneckRow(5, 576, 96, True, "hswish", 1),
)

# MobileNetV3 uses BatchNorm with eps 1e-3 and momentum 0.01 (the TF release; torchvision).
V3_NORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


def _mobilenet_v3(
    table: tuple[BneckRow, ...],
    last_channels: int,
    name: str,
    width_mult: float,
    num_classes: int,
    dropout: float,
) -> EfficientCNN:
    width_mult = check_multiplier("width_mult", width_mult)
    num_classes = check_int("num_classes", num_classes)
    in_ch = _scale(16, width_mult)
    stem = ConvNormAct(3, in_ch, 3, 2, norm_layer=V3_NORM, act_layer=nn.Hardswish)
    blocks = []
    for row in table:
        hidden, out_ch = _scale(row.exp, width_mult), _scale(row.out, width_mult)
        se_ch = make_divisible(hidden // 4, 8) if row.se else 0  # squeeze width C/4, rounded to 8
        blocks.append(
            InvertedResidual(
                in_ch,
                out_ch,
                hidden,
                row.kernel,
                row.stride,
                se_channels=se_ch,
                norm_layer=V3_NORM,
                act_layer=row.act,
                se_act_layer=nn.ReLU,
                se_gate_layer=nn.Hardsigmoid,
            )
        )
        in_ch = out_ch
    head_ch = 6 * in_ch
    head = ConvNormAct(in_ch, head_ch, 1, norm_layer=V3_NORM, act_layer=nn.Hardswish)
    classifier = ClassifierHead(
        head_ch,
        num_classes,
        dropout,
        hidden_features=_scale(last_channels, width_mult),
        hidden_act=nn.Hardswish,
    )
    return EfficientCNN(stem, [nn.Sequential(*blocks)], head, classifier, name=name)


def mobilenet_v3_large(
    width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
) -> EfficientCNN:
    """MobileNetV3-Large: 5,483,032 params at width 1.0 (torchvision), 216.6M MACs at 224."""
    return _mobilenet_v3(
        MOBILENET_V3_LARGE_TABLE, 1280, "mobilenet_v3_large", width_mult, num_classes, dropout
    )


def mobilenet_v3_small(
    width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
) -> EfficientCNN:
    """MobileNetV3-Small: 2,542,856 params at width 1.0 (torchvision), 56.5M MACs at 224."""
    return _mobilenet_v3(
        MOBILENET_V3_SMALL_TABLE, 1024, "mobilenet_v3_small", width_mult, num_classes, dropout
    )


register_model(
    "mobilenet_v1",
    mobilenet_v1,
    input_size=224,
    family="mobilenet",
    reference="timm mobilenetv1_100",
    reference_params=4_231_976,
    reference_macs=568_740_352,
    top1=70.6,
    paper="MobileNets, arXiv 1704.04861",
)
register_model(
    "mobilenet_v2",
    mobilenet_v2,
    input_size=224,
    family="mobilenet",
    reference="torchvision mobilenet_v2",
    reference_params=3_504_872,
    reference_macs=300_774_272,
    top1=72.0,
    paper="MobileNetV2, arXiv 1801.04381",
    extras={"published_latency": "Pixel 1: 75 ms (paper)"},
)
register_model(
    "mobilenet_v3_large",
    mobilenet_v3_large,
    input_size=224,
    family="mobilenet",
    reference="torchvision mobilenet_v3_large",
    reference_params=5_483_032,
    reference_macs=216_589_760,
    top1=75.2,
    paper="MobileNetV3, arXiv 1905.02244 Table 3",
    extras={"published_latency": "Pixel 1/2/3: 51 / 61 / 44 ms"},
)
register_model(
    "mobilenet_v3_small",
    mobilenet_v3_small,
    input_size=224,
    family="mobilenet",
    reference="torchvision mobilenet_v3_small",
    reference_params=2_542_856,
    reference_macs=56_510_400,
    top1=67.4,
    paper="MobileNetV3, arXiv 1905.02244 Table 3",
    extras={"published_latency": "Pixel 1/2/3: 15.8 / 19.4 / 14.4 ms"},
)
