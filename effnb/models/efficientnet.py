"""EfficientNet: one B0 table; B1..B7 are (width, depth, resolution, dropout) on the same builder.

B0 is arXiv 1905.11946 Table 1. Widths scale by make_divisible(c * w, 8) and stage depths by
ceil(n * d), as in the released TF code and torchvision; parameter counts match torchvision's
efficientnet_b0..b7 to the unit. The channel rounding is an argument (``round_channels``), so
notebook 05 builds the same networks under a tutorial's ``ceil`` rounding without patching
this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from effnb._checks import check_int, check_multiplier, check_probability
from effnb.layers import ConvNormAct, InvertedResidual, LayerFactory, make_divisible, scale_depth
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.models.registry import check_planned_bytes, register_model


@dataclass(frozen=True)
class MBConvRow:
    """A stage of the B0 table: expansion, kernel, stride, output channels, layers."""

    expand: int
    kernel: int
    stride: int
    out: int
    layers: int


# arXiv 1905.11946 Table 1 (stages 2-8; stage 1 is the 3x3/2 stem with 32 channels, stage 9
# the 1x1 conv to 1280 = 4 x 320, pooling and FC).
EFFICIENTNET_B0_TABLE: tuple[MBConvRow, ...] = (
    MBConvRow(1, 3, 1, 16, 1),
    MBConvRow(6, 3, 2, 24, 2),
    MBConvRow(6, 5, 2, 40, 2),
    MBConvRow(6, 3, 2, 80, 3),
    MBConvRow(6, 5, 1, 112, 3),
    MBConvRow(6, 5, 2, 192, 4),
    MBConvRow(6, 3, 1, 320, 1),
)


@dataclass(frozen=True)
class ScalingParams:
    """Compound-scaling coefficients of a released variant."""

    width: float
    depth: float
    resolution: int
    dropout: float


# The released configs (not the formula's alpha^phi etc.; notebook 05 shows where they differ).
EFFICIENTNET_VARIANTS: dict[str, ScalingParams] = {
    "b0": ScalingParams(1.0, 1.0, 224, 0.2),
    "b1": ScalingParams(1.0, 1.1, 240, 0.2),
    "b2": ScalingParams(1.1, 1.2, 260, 0.3),
    "b3": ScalingParams(1.2, 1.4, 300, 0.3),
    "b4": ScalingParams(1.4, 1.8, 380, 0.4),
    "b5": ScalingParams(1.6, 2.2, 456, 0.4),
    "b6": ScalingParams(1.8, 2.6, 528, 0.5),
    "b7": ScalingParams(2.0, 3.1, 600, 0.5),
}

# BatchNorm as each checkpoint was trained: torchvision trained B0-B4 in PyTorch with the
# default BatchNorm (eps 1e-5, momentum 0.1) and ported B5-B7 from TF (eps 1e-3, momentum
# 0.01), checked against torchvision 0.29. With the wrong eps, B0's logits move by ~1e-3.
EFFNET_NORM = nn.BatchNorm2d
EFFNET_NORM_TF = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


@dataclass(frozen=True)
class MBConvSpec:
    """One MBConv block of a scaled network, in channels: what ``InvertedResidual`` is given."""

    in_ch: int
    out_ch: int
    hidden: int
    kernel: int
    stride: int
    se: int


def mbconv_specs(
    width_mult: float,
    depth_mult: float,
    round_channels: Callable[[float], int] = make_divisible,
) -> tuple[int, list[list[MBConvSpec]]]:
    """(stem width, blocks per stage) of the B0 table scaled by (width_mult, depth_mult).

    Stage s keeps ceil(layers_s * depth_mult) blocks; a width c becomes round_channels(c * w),
    the expanded width round_channels(C_in * expand), the SE squeeze max(1, C_in // 4) of the
    block's input; only a stage's first block has its stride. The builder and
    ``efficientnet_param_count`` both read this, so the count is of the network built.
    """

    def ch(c: float) -> int:
        return round_channels(c * width_mult)

    stem_ch = in_ch = ch(32)
    stages = []
    for row in EFFICIENTNET_B0_TABLE:
        out_ch, blocks = ch(row.out), []
        for i in range(scale_depth(row.layers, depth_mult)):
            hidden = round_channels(in_ch * row.expand)
            stride = row.stride if i == 0 else 1
            blocks.append(MBConvSpec(in_ch, out_ch, hidden, row.kernel, stride, max(1, in_ch // 4)))
            in_ch = out_ch
        stages.append(blocks)
    return stem_ch, stages


def efficientnet_param_count(
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    num_classes: int = 1000,
    round_channels: Callable[[float], int] = make_divisible,
) -> int:
    """Parameters of ``efficientnet(width_mult, depth_mult, num_classes, round_channels=...)``
    with BatchNorm, from the config table, without building anything.

    Per block (C_in -> C_h -> C_out, k x k depthwise, squeeze C_s): the expansion C_in * C_h
    (absent when C_h == C_in), the depthwise k^2 * C_h, SE 2 * C_h * C_s + C_s + C_h, the
    projection C_h * C_out, and 2 per channel of each BatchNorm; then the 3x3 stem 27 * C_0,
    the 1x1 head C * 4C and the classifier 4C * K + K. B0: 5,288,548 (torchvision).
    ``create_model`` checks it against its memory bound before building (a depth of 100
    fails at once instead of after half a gigabyte).
    """
    stem_ch, stages = mbconv_specs(width_mult, depth_mult, round_channels)
    params = 27 * stem_ch + 2 * stem_ch
    for b in (block for stage in stages for block in stage):
        if b.hidden != b.in_ch:
            params += b.in_ch * b.hidden + 2 * b.hidden
        params += b.kernel * b.kernel * b.hidden + 2 * b.hidden
        params += 2 * b.hidden * b.se + b.se + b.hidden
        params += b.hidden * b.out_ch + 2 * b.out_ch
    last = stages[-1][-1].out_ch if stages[-1] else stem_ch
    return params + last * 4 * last + 2 * 4 * last + 4 * last * num_classes + num_classes


@register_model("efficientnet", family="efficientnet", paper="EfficientNet, arXiv 1905.11946")
def efficientnet(
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    num_classes: int = 1000,
    dropout: float = 0.2,
    drop_path: float = 0.2,
    input_size: int = 224,
    norm_layer: LayerFactory = EFFNET_NORM,
    name: str = "efficientnet",
    round_channels: Callable[[float], int] = make_divisible,
) -> EfficientCNN:
    """A generic EfficientNet on the B0 table, for any width and depth multiplier.

    Stochastic depth grows linearly over the blocks: block i of N drops with p * i / N.
    SE squeeze width = max(1, C_in // 4) of the block's input (torchvision, TF release).
    ``round_channels(c * width_mult)`` gives every scaled width (and the expanded width
    ``round_channels(C_in * expand)``); the default rounds to the nearest multiple of 8 as the
    release does. Another function (e.g. ``ceil`` to a multiple of 8) builds the network that
    rounding gives, for comparison; nothing module-level is swapped. Under ``create_model``,
    a config whose ``efficientnet_param_count`` exceeds the memory bound fails before building.
    """
    if not callable(round_channels):
        raise TypeError(
            f"round_channels must be a function float -> int, got {type(round_channels).__name__}"
        )
    width_mult = check_multiplier("width_mult", width_mult)
    depth_mult = check_multiplier("depth_mult", depth_mult)
    num_classes = check_int("num_classes", num_classes)
    drop_path = check_probability("drop_path", drop_path)
    input_size = check_int("input_size", input_size, minimum=32)
    check_planned_bytes(
        lambda: 4 * efficientnet_param_count(width_mult, depth_mult, num_classes, round_channels)
    )
    stem_ch, specs = mbconv_specs(width_mult, depth_mult, round_channels)
    stem = ConvNormAct(3, stem_ch, 3, 2, norm_layer=norm_layer, act_layer=nn.SiLU)
    total_blocks = sum(len(stage) for stage in specs)
    stages, block_id, in_ch = [], 0, stem_ch
    for stage in specs:
        blocks = []
        for b in stage:
            blocks.append(
                InvertedResidual(
                    b.in_ch,
                    b.out_ch,
                    b.hidden,
                    b.kernel,
                    b.stride,
                    se_channels=b.se,
                    norm_layer=norm_layer,
                    act_layer=nn.SiLU,
                    se_act_layer=nn.SiLU,
                    se_gate_layer=nn.Sigmoid,
                    drop_path=drop_path * block_id / total_blocks,
                )
            )
            in_ch = b.out_ch
            block_id += 1
        stages.append(nn.Sequential(*blocks))
    head = ConvNormAct(in_ch, 4 * in_ch, 1, norm_layer=norm_layer, act_layer=nn.SiLU)
    classifier = ClassifierHead(4 * in_ch, num_classes, dropout)
    return EfficientCNN(stem, stages, head, classifier, default_input_size=input_size, name=name)


@dataclass(frozen=True)
class EfficientNetRelease:
    """Reference facts of a released variant: torchvision's parameter count and conv + linear
    MACs at its native resolution, and the published top-1 (arXiv 1905.11946 Table 2)."""

    params: int
    macs: int
    top1: float


EFFICIENTNET_RELEASES: dict[str, EfficientNetRelease] = {
    "b0": EfficientNetRelease(params=5_288_548, macs=385_814_752, top1=77.1),
    "b1": EfficientNetRelease(params=7_794_184, macs=686_802_832, top1=79.1),
    "b2": EfficientNetRelease(params=9_109_994, macs=993_561_872, top1=80.1),
    "b3": EfficientNetRelease(params=12_233_232, macs=1_827_141_392, top1=81.6),
    "b4": EfficientNetRelease(params=19_341_616, macs=4_393_771_024, top1=82.9),
    "b5": EfficientNetRelease(params=30_389_784, macs=10_266_384_752, top1=83.6),
    "b6": EfficientNetRelease(params=43_040_704, macs=19_067_593_536, top1=84.0),
    "b7": EfficientNetRelease(params=66_347_960, macs=37_745_884_192, top1=84.3),
}


def _variant(key: str) -> Callable[..., EfficientCNN]:
    cfg = EFFICIENTNET_VARIANTS[key]
    norm = EFFNET_NORM_TF if key in ("b5", "b6", "b7") else EFFNET_NORM

    def build(
        num_classes: int = 1000,
        dropout: float = cfg.dropout,
        drop_path: float = 0.2,
        round_channels: Callable[[float], int] = make_divisible,
    ) -> EfficientCNN:
        return efficientnet(
            cfg.width,
            cfg.depth,
            num_classes,
            dropout,
            drop_path,
            cfg.resolution,
            norm,
            f"efficientnet_{key}",
            round_channels,
        )

    build.__doc__ = f"EfficientNet-{key.upper()}: width {cfg.width}, depth {cfg.depth}, {cfg.resolution} px, dropout {cfg.dropout}."
    return build


for _key, _release in EFFICIENTNET_RELEASES.items():
    _cfg = EFFICIENTNET_VARIANTS[_key]
    register_model(
        f"efficientnet_{_key}",
        family="efficientnet",
        input_size=_cfg.resolution,
        reference=f"torchvision efficientnet_{_key}",
        reference_params=_release.params,
        reference_macs=_release.macs,
        top1=_release.top1,
        paper="EfficientNet, arXiv 1905.11946 Table 2",
        extras={"width_mult": _cfg.width, "depth_mult": _cfg.depth, "dropout": _cfg.dropout},
    )(_variant(_key))
