"""The block vocabulary every effnb model is built from.

One set of blocks serves MobileNetV1/V2/V3, ShuffleNetV2, GhostNet and EfficientNet:

* ``ConvNormAct``: conv -> BatchNorm -> activation, padding from the kernel size;
  ``depthwise`` builds its depthwise form (``groups=channels``).
* ``DepthwiseSeparableConv``: depthwise k x k then pointwise 1 x 1 (MobileNetV1, notebook 01).
* ``SqueezeExcite``: channel gating with an explicit squeeze width (notebook 02).
* ``InvertedResidual``: MBConv, expand -> depthwise -> SE -> linear project (notebook 03).
* ``GhostModule`` / ``GhostBottleneck``: half the channels from cheap depthwise ops (notebook 04).
* ``channel_shuffle`` / ``ShuffleUnit``: ShuffleNetV2's split-transform-concat-shuffle (notebook 04).

Every block names its submodules and its ``forward`` reads straight down them, so hooks,
the cost model (``effnb.costs``) and BatchNorm folding (``effnb.deploy``) find layers by name.
Bad arguments raise ``ValueError``/``TypeError`` when the block is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from effnb._checks import (
    check_bool,
    check_int,
    check_kernel,
    check_layer_params,
    check_multiplier,
    check_probability,
    check_real,
)

LayerFactory = Callable[..., nn.Module]

__all__ = [
    "ACTIVATIONS",
    "ConvNormAct",
    "DepthwiseSeparableConv",
    "DropPath",
    "GhostBottleneck",
    "GhostModule",
    "InvertedResidual",
    "ShuffleUnit",
    "SqueezeExcite",
    "channel_shuffle",
    "depthwise",
    "get_act_layer",
    "make_divisible",
    "scale_depth",
]

# Activation names used in the config tables, resolved to classes in one place.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


def get_act_layer(act: str | LayerFactory | None) -> LayerFactory | None:
    """Resolve an activation given by name ('relu', 'hswish', ...), class, or None."""
    if act is None or callable(act):
        return act
    if isinstance(act, str) and act in ACTIVATIONS:
        return ACTIVATIONS[act]
    raise ValueError(
        f"act_layer must be one of {sorted(ACTIVATIONS)}, a callable or None, got {act!r}"
    )


def _create_act(act_layer: str | LayerFactory | None) -> nn.Module:
    """Instantiate an activation, in place where the class allows it (saves one tensor)."""
    layer = get_act_layer(act_layer)
    if layer is None:
        return nn.Identity()
    try:
        return layer(inplace=True)
    except TypeError:
        return layer()


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10%.

    new = max(min_value, floor(value + divisor / 2) // divisor * divisor); if new < 0.9 * value,
    add one divisor. This is the rounding of the TensorFlow MobileNet/EfficientNet releases
    (torchvision's ``_make_divisible``). Rounding up with ``ceil`` instead makes
    EfficientNet-B2 9,530,928 parameters rather than 9,109,994 (see notebook 05).
    """
    value = check_real("value", value, minimum=0.0)
    divisor = check_int("divisor", divisor)
    min_value = divisor if min_value is None else check_int("min_value", min_value)
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def scale_depth(num_layers: int, depth_mult: float) -> int:
    """Layers in a stage after depth scaling: ceil(n * d) (EfficientNet, arXiv 1905.11946)."""
    num_layers = check_int("num_layers", num_layers, minimum=0)
    depth_mult = check_multiplier("depth_mult", depth_mult)
    return int(math.ceil(num_layers * depth_mult))


class ConvNormAct(nn.Sequential):
    """Conv2d -> norm -> activation, with 'same' padding (k - 1) // 2 * dilation.

    The conv has a bias only when there is no norm layer (BatchNorm's shift makes it
    redundant). Params = k*k*C_in*C_out/groups (+ C_out bias) + 2*C_out for BatchNorm.

    An ``nn.Sequential`` of ``conv``, ``bn`` and, when there is an activation, ``act`` (like
    torchvision's ``Conv2dNormActivation``: ``act_layer=None`` leaves no ``act`` child, where an
    ``nn.Identity`` would cost a module call per forward). Its forward runs them in order
    without the attribute lookups of a hand-written forward: a few microseconds per block that
    add up to several percent of a small network's eager time (``benchmarks/eager_parity.py``).
    """

    conv: nn.Conv2d
    bn: nn.Module

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU,
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        kernel_size = check_kernel("kernel_size", kernel_size)
        stride = check_int("stride", stride)
        groups = check_int("groups", groups)
        dilation = check_int("dilation", dilation)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )
        if norm_layer is not None and not callable(norm_layer):
            raise TypeError(
                f"norm_layer must be a callable (e.g. nn.BatchNorm2d) or None, got {norm_layer!r}"
            )
        check_layer_params(
            f"ConvNormAct(in_channels={in_channels}, out_channels={out_channels}, "
            f"kernel_size={kernel_size}, groups={groups})",
            kernel_size * kernel_size * (in_channels // groups) * out_channels,
        )
        padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        check_bool("bias", bias)
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias
        )
        self.bn = norm_layer(out_channels) if norm_layer is not None else nn.Identity()
        act = _create_act(act_layer)
        if not isinstance(act, nn.Identity):
            self.act = act


def depthwise(
    channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    *,
    multiplier: int = 1,
    norm_layer: LayerFactory | None = nn.BatchNorm2d,
    act_layer: str | LayerFactory | None = nn.ReLU,
) -> ConvNormAct:
    """A depthwise k x k ``ConvNormAct``: one group per input channel (``groups=channels``).

    Each of the C channels is convolved with its own ``multiplier`` filters, giving
    C * multiplier outputs; params = k*k*C*multiplier (+ BatchNorm), MACs per output pixel
    k*k per output channel (MobileNets, arXiv 1704.04861, section 3.1; the "depth
    multiplier" of Keras' DepthwiseConv2D). GhostNet's cheap operation is a depthwise conv
    with multiplier s - 1.
    """
    multiplier = check_int("multiplier", multiplier)  # channels: ConvNormAct checks in_channels
    return ConvNormAct(
        channels,
        channels * multiplier,
        kernel_size,
        stride,
        groups=channels,
        norm_layer=norm_layer,
        act_layer=act_layer,
    )


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise k x k conv (one filter per channel) then a pointwise 1 x 1 conv.

    Params (weights only) = k*k*C_in + C_in*C_out, against k*k*C_in*C_out for a standard
    conv: a reduction of C_out*k^2 / (k^2 + C_out), 8.69x for k = 3, C_out = 256
    (MobileNets, arXiv 1704.04861, section 3.1; notebook 01). MobileNetV1 uses activations
    after both convs; ShuffleNetV2's downsampling branch only after the pointwise one.
    An ``nn.Sequential`` of ``conv_dw`` then ``conv_pw``, like ``ConvNormAct``.
    """

    conv_dw: ConvNormAct
    conv_pw: ConvNormAct

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU,
        dw_act: bool = True,
        pw_act: bool = True,
    ) -> None:
        super().__init__()
        check_bool("dw_act", dw_act)
        check_bool("pw_act", pw_act)
        self.conv_dw = depthwise(
            in_channels,
            kernel_size,
            stride,
            norm_layer=norm_layer,
            act_layer=act_layer if dw_act else None,
        )
        self.conv_pw = ConvNormAct(
            in_channels,
            out_channels,
            1,
            norm_layer=norm_layer,
            act_layer=act_layer if pw_act else None,
        )


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., arXiv 1709.01507), with 1 x 1 convs as the FCs.

    In the paper's symbols: z = mean over H, W of U (squeeze, C values);
    s = gate(W2 * act(W1 * z + b1) + b2) with W1: C -> C/r and W2: C/r -> C (excite);
    output = s_c * U_c. ``squeeze_channels`` is C/r given explicitly, because each family
    rounds it its own way (MobileNetV3: make_divisible(C/4, 8); EfficientNet: C_in/4 of the
    block's input; GhostNet: make_divisible(C/4, 4)). Params = 2*C*C_sq + C_sq + C.
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        act_layer: str | LayerFactory | None = nn.ReLU,
        gate_layer: str | LayerFactory = nn.Sigmoid,
    ) -> None:
        super().__init__()
        channels = check_int("channels", channels)
        if (
            isinstance(squeeze_channels, int)
            and not isinstance(squeeze_channels, bool)
            and squeeze_channels < 1
        ):
            raise ValueError(
                f"squeeze_channels must be >= 1 (the SE hidden layer needs at least one unit), "
                f"got {squeeze_channels} for channels={channels}"
            )
        squeeze_channels = check_int("squeeze_channels", squeeze_channels)
        check_layer_params(
            f"SqueezeExcite(channels={channels}, squeeze_channels={squeeze_channels})",
            channels * squeeze_channels,
        )
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1, bias=True)
        self.act = _create_act(act_layer)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1, bias=True)
        self.gate = _create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * s


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a residual branch per sample with probability p.

    Surviving samples are scaled by 1 / (1 - p) so the expectation is unchanged
    (Huang et al., arXiv 1603.09382; EfficientNet ramps p from 0 to 0.2 over the blocks).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_probability("drop_path", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expand -> k x k depthwise -> optional SE -> linear 1x1 project (+ skip).

    MobileNetV2 (arXiv 1801.04381) put the residual between the thin ends and removed the
    activation after the projection (a ReLU in a low-dimensional space destroys
    information; notebook 03). MobileNetV3 added SE and h-swish; EfficientNet uses SiLU,
    SE and stochastic depth. The expansion conv exists only when
    ``hidden_channels != in_channels`` (expansion ratio 1 skips it), exactly as in every
    reference implementation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        se_channels: int = 0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU6,
        se_act_layer: str | LayerFactory | None = nn.ReLU,
        se_gate_layer: str | LayerFactory = nn.Sigmoid,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        hidden_channels = check_int("hidden_channels", hidden_channels)
        stride = check_int("stride", stride)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        se_channels = check_int("se_channels", se_channels, minimum=0)
        drop_path = check_probability("drop_path", drop_path)
        self.conv_pw: nn.Module  # the 1x1 expansion, or nothing at expansion ratio 1
        if hidden_channels != in_channels:
            self.conv_pw = ConvNormAct(
                in_channels, hidden_channels, 1, norm_layer=norm_layer, act_layer=act_layer
            )
        else:
            self.conv_pw = nn.Identity()
        self.conv_dw = depthwise(
            hidden_channels, kernel_size, stride, norm_layer=norm_layer, act_layer=act_layer
        )
        self.se: nn.Module
        if se_channels:
            self.se = SqueezeExcite(hidden_channels, se_channels, se_act_layer, se_gate_layer)
        else:
            self.se = nn.Identity()
        self.conv_pwl = ConvNormAct(
            hidden_channels, out_channels, 1, norm_layer=norm_layer, act_layer=None
        )
        self.has_skip = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path) if self.has_skip else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_pw(x)
        x = self.conv_dw(x)
        se = self.se
        if not isinstance(se, nn.Identity):  # no SE: skip the placeholder's call (~1.5 us)
            x = se(x)
        x = self.conv_pwl(x)
        if self.has_skip:
            if self.training:  # DropPath is the identity in eval mode: no call to make
                x = self.drop_path(x)
            x = x + shortcut
        return x


class GhostModule(nn.Module):
    """A primary conv makes ceil(C_out / ratio) channels; cheap depthwise ops make the rest.

    GhostNet (arXiv 1911.11907): C_init = ceil(C_out / s) intrinsic maps from a
    k x k conv, then (s - 1) * C_init 'ghost' maps from a d x d depthwise conv on them; the
    concatenation is sliced to exactly C_out channels, so any width (15, 17, 1) works.
    Params ~ C_in*C_init*k^2 + (s-1)*C_init*d^2, about s times fewer than one conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        ratio: int = 2,
        dw_size: int = 3,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        out_channels = check_int("out_channels", out_channels)
        ratio = check_int("ratio", ratio, minimum=2)
        self.out_channels = out_channels
        init_channels = math.ceil(out_channels / ratio)
        self.primary_conv = ConvNormAct(
            in_channels,
            init_channels,
            kernel_size,
            stride,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        self.cheap_operation = depthwise(
            init_channels,
            dw_size,
            multiplier=ratio - 1,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        return torch.cat([x1, x2], dim=1)[:, : self.out_channels]  # (B, C_out, H, W)


class GhostBottleneck(nn.Module):
    """GhostNet's bottleneck: ghost (ReLU) -> [depthwise stride 2] -> [SE] -> ghost (linear).

    The second ghost module has no activation, like MobileNetV2's linear projection. The
    shortcut is the identity when shapes match, else a depthwise-separable conv with
    BatchNorm and no activation (timm ``ghostnet_100``).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        se_channels: int = 0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        stride = check_int("stride", stride)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        se_channels = check_int("se_channels", se_channels, minimum=0)
        self.ghost1 = GhostModule(
            in_channels, hidden_channels, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv_dw: nn.Module
        if stride > 1:
            self.conv_dw = depthwise(
                hidden_channels, kernel_size, stride, norm_layer=norm_layer, act_layer=None
            )
        else:
            self.conv_dw = nn.Identity()
        self.se: nn.Module
        if se_channels:
            self.se = SqueezeExcite(hidden_channels, se_channels, nn.ReLU, nn.Hardsigmoid)
        else:
            self.se = nn.Identity()
        self.ghost2 = GhostModule(
            hidden_channels, out_channels, norm_layer=norm_layer, act_layer=None
        )
        self.has_identity_shortcut = in_channels == out_channels and stride == 1
        self.shortcut: nn.Module
        if self.has_identity_shortcut:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = DepthwiseSeparableConv(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                norm_layer=norm_layer,
                dw_act=False,
                pw_act=False,
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        x = self.ghost1(x)
        x = self.conv_dw(x)
        x = self.se(x)
        x = self.ghost2(x)
        return x + shortcut


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave channels across ``groups`` (ShuffleNet, arXiv 1707.01083).

    (B, C, H, W) -> (B, g, C/g, H, W) -> transpose -> (B, C/g, g, H, W) -> (B, C, H, W):
    channel j of group i moves to position j * g + i, so the next grouped op sees
    channels from every group. It moves memory and does no arithmetic (0 MACs).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            f"channel_shuffle needs a (B, C, H, W) tensor, got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    groups = check_int("groups", groups)
    if x.shape[1] % groups:
        raise ValueError(f"channels={x.shape[1]} must be divisible by groups={groups}")
    return _shuffle(x, groups)


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``channel_shuffle`` without its checks, for ``ShuffleUnit``, whose constructor has
    already made sure the channels split evenly (the checks cost ~4 us a call, ~0.5% of
    ShuffleNetV2's eager time)."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width)  # (B, g, C/g, H, W)
    x = x.transpose(1, 2).contiguous()  # (B, C/g, g, H, W)
    return x.view(batch, channels, height, width)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (arXiv 1807.11164, Fig. 3c/d).

    stride 1: split channels in half, keep one half, transform the other with
    1x1 -> 3x3 depthwise -> 1x1, concatenate, shuffle. stride 2: both branches see the
    whole input and each produces half the output, doubling the width while halving H, W.
    Output channels must be even, and a stride-1 unit needs in_channels == out_channels.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: str | LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        stride = check_int("stride", stride)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if out_channels % 2:
            raise ValueError(
                f"out_channels must be even: the unit concatenates two halves, got {out_channels}"
            )
        branch_channels = out_channels // 2
        if stride == 1 and in_channels != out_channels:
            raise ValueError(
                f"a stride-1 ShuffleUnit splits its input in two halves of out_channels // 2, so it "
                f"needs in_channels == out_channels; got in_channels={in_channels}, out_channels={out_channels}"
            )
        self.stride = stride
        self.branch1: nn.Module
        if stride == 2:
            self.branch1 = DepthwiseSeparableConv(
                in_channels,
                branch_channels,
                3,
                stride,
                norm_layer=norm_layer,
                act_layer=act_layer,
                dw_act=False,
            )
        else:
            self.branch1 = nn.Identity()
        branch2_in = in_channels if stride == 2 else branch_channels
        self.branch2 = nn.Sequential()
        self.branch2.add_module(
            "conv_pw",
            ConvNormAct(branch2_in, branch_channels, 1, norm_layer=norm_layer, act_layer=act_layer),
        )
        self.branch2.add_module(
            "conv_dw",
            depthwise(branch_channels, 3, stride, norm_layer=norm_layer, act_layer=None),
        )
        self.branch2.add_module(
            "conv_pwl",
            ConvNormAct(
                branch_channels, branch_channels, 1, norm_layer=norm_layer, act_layer=act_layer
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)  # two (B, C/2, H, W) halves
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return _shuffle(out, 2)
