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
from effnb.layers import ConvNormAct, InvertedResidual, make_divisible, scale_depth
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.models.registry import register_model


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


def efficientnet(
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    num_classes: int = 1000,
    dropout: float = 0.2,
    drop_path: float = 0.2,
    input_size: int = 224,
    norm_layer=EFFNET_NORM,
    name: str = "efficientnet",
    round_channels: Callable[[float], int] = make_divisible,
) -> EfficientCNN:
    """A generic EfficientNet on the B0 table, for any width and depth multiplier.

    Stochastic depth grows linearly over the blocks: block i of N drops with p * i / N.
    SE squeeze width = max(1, C_in // 4) of the block's input (torchvision, TF release).
    ``round_channels(c * width_mult)`` gives every scaled width (and the expanded width
    ``round_channels(C_in * expand)``); the default rounds to the nearest multiple of 8 as the
    release does. Another function (e.g. ``ceil`` to a multiple of 8) builds the network that
    rounding gives, for comparison; nothing module-level is swapped.
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

    def ch(c: float) -> int:
        return round_channels(c * width_mult)

    in_ch = ch(32)
    stem = ConvNormAct(3, in_ch, 3, 2, norm_layer=norm_layer, act_layer=nn.SiLU)
    total_blocks = sum(scale_depth(row.layers, depth_mult) for row in EFFICIENTNET_B0_TABLE)
    stages, block_id = [], 0
    for row in EFFICIENTNET_B0_TABLE:
        out_ch = ch(row.out)
        blocks = []
        for i in range(scale_depth(row.layers, depth_mult)):
            blocks.append(
                InvertedResidual(
                    in_ch,
                    out_ch,
                    round_channels(in_ch * row.expand),
                    row.kernel,
                    row.stride if i == 0 else 1,
                    se_channels=max(1, in_ch // 4),
                    norm_layer=norm_layer,
                    act_layer=nn.SiLU,
                    se_act_layer=nn.SiLU,
                    se_gate_layer=nn.Sigmoid,
                    drop_path=drop_path * block_id / total_blocks,
                )
            )
            in_ch = out_ch
            block_id += 1
        stages.append(nn.Sequential(*blocks))
    head = ConvNormAct(in_ch, 4 * in_ch, 1, norm_layer=norm_layer, act_layer=nn.SiLU)
    classifier = ClassifierHead(4 * in_ch, num_classes, dropout)
    return EfficientCNN(stem, stages, head, classifier, default_input_size=input_size, name=name)


_FACTS = {
    # variant: (params, MACs at native resolution, published top-1)
    "b0": (5_288_548, 385_814_752, 77.1),
    "b1": (7_794_184, 686_802_832, 79.1),
    "b2": (9_109_994, 993_561_872, 80.1),
    "b3": (12_233_232, 1_827_141_392, 81.6),
    "b4": (19_341_616, 4_393_771_024, 82.9),
    "b5": (30_389_784, 10_266_384_752, 83.6),
    "b6": (43_040_704, 19_067_593_536, 84.0),
    "b7": (66_347_960, 37_745_884_192, 84.3),
}


def _variant(key: str):
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


register_model(
    "efficientnet",
    efficientnet,
    input_size=224,
    family="efficientnet",
    paper="EfficientNet, arXiv 1905.11946",
)
for _key, (_params, _macs, _top1) in _FACTS.items():
    _cfg = EFFICIENTNET_VARIANTS[_key]
    register_model(
        f"efficientnet_{_key}",
        _variant(_key),
        input_size=_cfg.resolution,
        family="efficientnet",
        reference=f"torchvision efficientnet_{_key}",
        reference_params=_params,
        reference_macs=_macs,
        top1=_top1,
        paper="EfficientNet, arXiv 1905.11946 Table 2",
        extras={"width_mult": _cfg.width, "depth_mult": _cfg.depth, "dropout": _cfg.dropout},
    )
