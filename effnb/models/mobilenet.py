"""MobileNetV1, V2 and V3 as config tables, one builder each.

Each table mirrors the paper's table, row for row. Widths are scaled with
``make_divisible(c * width_mult, 8)``; parameter counts match the references to the
unit (timm ``mobilenetv1_100``, torchvision ``mobilenet_v2`` and ``mobilenet_v3_*``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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


@register_model(
    "mobilenet_v1",
    family="mobilenet",
    reference="timm mobilenetv1_100",
    reference_params=4_231_976,
    reference_macs=568_740_352,
    top1=70.6,
    paper="MobileNets, arXiv 1704.04861",
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


@register_model(
    "mobilenet_v2",
    family="mobilenet",
    reference="torchvision mobilenet_v2",
    reference_params=3_504_872,
    reference_macs=300_774_272,
    top1=72.0,
    paper="MobileNetV2, arXiv 1801.04381",
    extras={"published_latency": "Pixel 1: 75 ms (paper)"},
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

V3_STEM = 16  # stem output channels (both tables' first row)
V3_LARGE_HEAD = (960, 1280)  # 1x1 conv after the last bneck, then the pooled hidden layer
V3_SMALL_HEAD = (576, 1024)
V3_TABLES: dict[str, tuple[tuple[BneckRow, ...], tuple[int, int]]] = {
    "large": (MOBILENET_V3_LARGE_TABLE, V3_LARGE_HEAD),
    "small": (MOBILENET_V3_SMALL_TABLE, V3_SMALL_HEAD),
}
_MINIMAL_RELEASE = "MobileNetV3 release table (tensorflow/models slim/nets/mobilenet README)"


def _minimal(row: BneckRow) -> BneckRow:
    """The authors' "minimalistic" row: no SE, no hard-swish, 3x3 depthwise only.

    Released beside the paper (tensorflow/models, research/slim/nets/mobilenet/README.md):
    same per-layer widths, none of the advanced blocks; "less efficient on CPU, much more
    performant on GPU/DSP". Notebook 07 measures the CPU half of that claim.
    """
    return replace(row, kernel=3, se=False, act="relu")


def _mobilenet_v3(
    table: tuple[BneckRow, ...],
    head: tuple[int, int],
    name: str,
    width_mult: float,
    num_classes: int,
    dropout: float,
    bn_eps: float = 1e-3,
    minimal: bool = False,
) -> EfficientCNN:
    """MobileNetV3 at any width, as the authors' code builds it (and timm's ``mobilenetv3_*``).

    With c' = make_divisible(c * width_mult, 8):
    - every bneck's output is c'(out); its expansion is make_divisible(c_in' * exp / c_in),
      the paper's expansion *ratio* applied to the rounded input width (the table's exp
      size divided by the row's unscaled input);
    - the squeeze width is make_divisible(expansion / 4, 8);
    - the stem stays at 16 channels below width 0.75; the 1x1 head conv is c'(960) or
      c'(576), and the pooled hidden layer keeps 1280 / 1024 units at every width.
    torchvision's ``width_mult`` differs at widths other than 1 (it also scales the hidden
    layer and the expansion sizes): at 0.75 it gives V3-Large 3.38M params where the paper
    (arXiv 1905.02244, Table 3) and this builder give 4.0M (tests/test_published_tables.py).
    ``bn_eps``: 1e-3 as in the authors' TF release and torchvision; timm's PyTorch-trained
    ``mobilenetv3_*`` checkpoints were trained with 1e-5.
    """
    width_mult = check_multiplier("width_mult", width_mult)
    bn_eps = check_multiplier("bn_eps", bn_eps)
    norm = partial(nn.BatchNorm2d, eps=bn_eps, momentum=0.01)
    num_classes = check_int("num_classes", num_classes)
    if minimal:
        table = tuple(_minimal(row) for row in table)
    act = nn.ReLU if minimal else nn.Hardswish
    in_ch = V3_STEM if width_mult < 0.75 else _scale(V3_STEM, width_mult)
    stem = ConvNormAct(3, in_ch, 3, 2, norm_layer=norm, act_layer=act)
    blocks = []
    unscaled_in = V3_STEM
    for row in table:
        out_ch = _scale(row.out, width_mult)
        hidden = make_divisible(in_ch * row.exp / unscaled_in, 8)
        se_ch = make_divisible(hidden / 4, 8) if row.se else 0
        blocks.append(
            InvertedResidual(
                in_ch,
                out_ch,
                hidden,
                row.kernel,
                row.stride,
                se_channels=se_ch,
                norm_layer=norm,
                act_layer=row.act,
                se_act_layer=nn.ReLU,
                se_gate_layer=nn.Hardsigmoid,
            )
        )
        in_ch, unscaled_in = out_ch, row.out
    head_ch, hidden_units = _scale(head[0], width_mult), head[1]
    head_conv = ConvNormAct(in_ch, head_ch, 1, norm_layer=norm, act_layer=act)
    classifier = ClassifierHead(
        head_ch, num_classes, dropout, hidden_features=hidden_units, hidden_act=act
    )
    return EfficientCNN(stem, [nn.Sequential(*blocks)], head_conv, classifier, name=name)


def _v3_variant(size: str, minimal: bool, doc: str) -> Callable[..., EfficientCNN]:
    """The builder of one MobileNetV3 table ("large" or "small"), minimalistic or not."""
    table, head = V3_TABLES[size]
    name = f"mobilenet_v3_{size}" + ("_minimal" if minimal else "")

    def build(
        width_mult: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.2,
        bn_eps: float = 1e-3,
    ) -> EfficientCNN:
        return _mobilenet_v3(table, head, name, width_mult, num_classes, dropout, bn_eps, minimal)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


mobilenet_v3_large = register_model(
    "mobilenet_v3_large",
    family="mobilenet",
    reference="torchvision mobilenet_v3_large",
    reference_params=5_483_032,
    reference_macs=216_589_760,
    top1=75.2,
    paper="MobileNetV3, arXiv 1905.02244 Table 3",
    extras={"published_latency": "Pixel 1/2/3: 51 / 61 / 44 ms"},
)(
    _v3_variant(
        "large",
        False,
        "MobileNetV3-Large: 5,483,032 params, 216.6M MACs at 224 px (width 1.0); 3,993,528 at 0.75.",
    )
)
mobilenet_v3_small = register_model(
    "mobilenet_v3_small",
    family="mobilenet",
    reference="torchvision mobilenet_v3_small",
    reference_params=2_542_856,
    reference_macs=56_510_400,
    top1=67.4,
    paper="MobileNetV3, arXiv 1905.02244 Table 3",
    extras={"published_latency": "Pixel 1/2/3: 15.8 / 19.4 / 14.4 ms"},
)(
    _v3_variant(
        "small",
        False,
        "MobileNetV3-Small: 2,542,856 params, 56.5M MACs at 224 px (width 1.0); 2,041,872 at 0.75.",
    )
)
# The minimalistic variants' facts are the authors' release table (tensorflow/models,
# research/slim/nets/mobilenet/README.md, "Minimalistic checkpoints"); the reference counts are
# timm's ports of those checkpoints.
mobilenet_v3_large_minimal = register_model(
    "mobilenet_v3_large_minimal",
    family="mobilenet",
    reference="timm tf_mobilenetv3_large_minimal_100",
    reference_params=3_924_288,
    reference_macs=209_136_704,
    top1=72.3,
    paper=_MINIMAL_RELEASE,
    extras={"published_latency": "Pixel 1/2/3: 44.1 / 51 / 35 ms"},
)(
    _v3_variant(
        "large",
        True,
        "MobileNetV3-Large minimalistic: the Large table with 3x3 kernels, no SE, ReLU only.",
    )
)
mobilenet_v3_small_minimal = register_model(
    "mobilenet_v3_small_minimal",
    family="mobilenet",
    reference="timm tf_mobilenetv3_small_minimal_100",
    reference_params=2_044_736,
    reference_macs=52_288_448,
    top1=61.9,
    paper=_MINIMAL_RELEASE,
    extras={"published_latency": "Pixel 1/2/3: 12.2 / 15.1 / 11 ms"},
)(
    _v3_variant(
        "small",
        True,
        "MobileNetV3-Small minimalistic: the Small table with 3x3 kernels, no SE, ReLU only.",
    )
)
