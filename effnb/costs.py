"""The cost model: parameters, MACs and activation memory, from the formulas the course teaches.

Units, named everywhere: a MAC is one multiply-accumulate; FLOPs = 2 x MACs. The "FLOPs"
columns of the MobileNet/EfficientNet papers are MACs (MobileNetV2: 300M MACs).

Convention: ``macs`` counts convolutions and linear layers only (no BatchNorm, activations,
pooling or elementwise ops), which is exactly what ``torch.utils.flop_counter.FlopCounterMode``
counts (its total / 2). ``thop`` (the MIT package) differs in known ways: it ignores conv
bias, adds 4 x numel for each affine BatchNorm and (H*W + 1) x numel for adaptive average
pooling, counts zero for activations, and never sees functional ops (the SE multiply,
residual adds, concatenation, channel shuffle). ``tests/test_costs.py`` checks all three.

``profile(model, input_size)`` runs one forward pass with hooks to learn each layer's
input and output shape, then applies the per-layer formulas below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from effnb._checks import (
    check_bool,
    check_forward_fits,
    check_input_size,
    check_int,
    check_kernel,
    check_module,
    model_dtype,
)

__all__ = [
    "CostReport",
    "LayerCost",
    "conv2d_macs",
    "conv2d_output_size",
    "conv2d_params",
    "depthwise_separable_macs",
    "depthwise_separable_params",
    "linear_macs",
    "linear_params",
    "profile",
    "reduction_factor",
    "se_macs",
    "se_params",
]


# --- per-layer formulas -----------------------------------------------------------------


def conv2d_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int | None = None, dilation: int = 1
) -> int:
    """H_out = floor((H + 2p - d(k - 1) - 1) / s) + 1, with 'same' padding p = (k - 1) // 2 * d by default.

    A kernel that does not fit in the padded input (H_out < 1) is an error, as in PyTorch.
    """
    size, kernel_size = check_int("size", size), check_int("kernel_size", kernel_size)
    stride, dilation = check_int("stride", stride), check_int("dilation", dilation)
    if padding is None:
        padding = (kernel_size - 1) // 2 * dilation
    padding = check_int("padding", padding, minimum=0)
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"a kernel_size={kernel_size} (dilation={dilation}) window does not fit in size={size} "
            f"with padding={padding}: the output would be {out} pixels"
        )
    return out


def conv2d_params(
    c_in: int, c_out: int, kernel_size: int, groups: int = 1, bias: bool = False
) -> int:
    """Params of a k x k conv: k^2 * (C_in / g) * C_out (+ C_out for the bias)."""
    c_in, c_out, groups = (
        check_int("c_in", c_in),
        check_int("c_out", c_out),
        check_int("groups", groups),
    )
    kernel_size = check_int("kernel_size", kernel_size)
    check_bool("bias", bias)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    return kernel_size * kernel_size * (c_in // groups) * c_out + (c_out if bias else 0)


def conv2d_macs(
    c_in: int, c_out: int, kernel_size: int, h_out: int, w_out: int | None = None, groups: int = 1
) -> int:
    """MACs of a k x k conv: k^2 * (C_in / g) * C_out * H_out * W_out (bias adds are not MACs)."""
    h_out = check_int("h_out", h_out)
    w_out = h_out if w_out is None else check_int("w_out", w_out)
    return conv2d_params(c_in, c_out, kernel_size, groups) * h_out * w_out


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Params of a linear layer: in * out (+ out for the bias)."""
    in_features, out_features = (
        check_int("in_features", in_features),
        check_int("out_features", out_features),
    )
    check_bool("bias", bias)
    return in_features * out_features + (out_features if bias else 0)


def linear_macs(in_features: int, out_features: int, batch: int = 1) -> int:
    """MACs of a linear layer: in * out per sample."""
    in_features, out_features = (
        check_int("in_features", in_features),
        check_int("out_features", out_features),
    )
    batch = check_int("batch", batch)
    return in_features * out_features * batch


def depthwise_separable_params(c_in: int, c_out: int, kernel_size: int = 3) -> int:
    """Weights of depthwise k x k + pointwise 1 x 1: k^2 * C_in + C_in * C_out (MobileNets eq. 2's cost)."""
    c_in, c_out = check_int("c_in", c_in), check_int("c_out", c_out)
    kernel_size = check_int("kernel_size", kernel_size)
    return kernel_size * kernel_size * c_in + c_in * c_out


def depthwise_separable_macs(
    c_in: int, c_out: int, kernel_size: int, h_out: int, w_out: int | None = None
) -> int:
    """MACs of depthwise + pointwise: (k^2 * C_in + C_in * C_out) * H_out * W_out (MobileNets eq. 5)."""
    h_out = check_int("h_out", h_out)
    w_out = h_out if w_out is None else check_int("w_out", w_out)
    return depthwise_separable_params(c_in, c_out, kernel_size) * h_out * w_out


def reduction_factor(c_out: int, kernel_size: int = 3) -> float:
    """Standard / depthwise-separable cost: C_out * k^2 / (k^2 + C_out), for params and MACs alike.

    It approaches k^2 only as C_out grows: 8.69x for k = 3, C_out = 256 (MobileNets, arXiv
    1704.04861, eq. 5 inverted). Biases and BatchNorm are left out of both sides.
    """
    check_kernel("kernel_size", kernel_size)
    c_out = check_int("c_out", c_out)
    k2 = kernel_size * kernel_size
    return c_out * k2 / (k2 + c_out)


def se_params(channels: int, squeeze_channels: int, bias: bool = True) -> int:
    """Params of squeeze-excitation: 2 * C * C_sq (+ C_sq + C biases). With C_sq = C / r: 2C^2/r."""
    channels = check_int("channels", channels)
    squeeze_channels = check_int("squeeze_channels", squeeze_channels, minimum=0)
    check_bool("bias", bias)
    return 2 * channels * squeeze_channels + ((squeeze_channels + channels) if bias else 0)


def se_macs(channels: int, squeeze_channels: int) -> int:
    """MACs of squeeze-excitation's two FC layers on the pooled vector: 2 * C * C_sq per sample.

    The pooling (H*W adds per channel) and the gating multiply (C*H*W) are not MACs in the
    conv+linear convention; they cost memory traffic, which is why SE shows up in latency.
    """
    channels = check_int("channels", channels)
    squeeze_channels = check_int("squeeze_channels", squeeze_channels, minimum=0)
    return 2 * channels * squeeze_channels


# --- whole-model profile ----------------------------------------------------------------


@dataclass(frozen=True)
class LayerCost:
    """The cost of one leaf module in one forward pass (batch of 1 unless profiled otherwise)."""

    name: str
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    activation_bytes: int  # new storage for the output; 0 if in place or passed through

    @property
    def flops(self) -> int:
        """FLOPs = 2 x MACs (one multiply and one add per MAC)."""
        return 2 * self.macs


@dataclass(frozen=True)
class CostReport:
    """Per-layer costs of a model at one input size, with totals."""

    model: str
    input_shape: tuple[int, ...]  # (B, C, H, W)
    layers: tuple[LayerCost, ...]
    count_bn: bool = False
    dtype: str = "float32"  # of the model and the profiled input; sets the bytes per element

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        """Conv + linear MACs (plus 1 per element of each BatchNorm if profiled with count_bn)."""
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        """2 x MACs."""
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        """Sum of every layer's output: what training keeps for the backward pass (roughly)."""
        return sum(layer.activation_bytes for layer in self.layers)

    @property
    def peak_activation_bytes(self) -> int:
        """A lower bound on inference memory: the largest (input + output) of any one layer."""
        element = torch.empty((), dtype=getattr(torch, self.dtype)).element_size()
        return max(
            (
                _bytes_of(layer.input_shape, element) + layer.activation_bytes
                for layer in self.layers
            ),
            default=0,
        )

    def by_type(self) -> dict[str, dict[str, int]]:
        """Params and MACs summed per layer type (e.g. depthwise vs pointwise convs)."""
        out: dict[str, dict[str, int]] = {}
        for layer in self.layers:
            row = out.setdefault(layer.type, {"count": 0, "params": 0, "macs": 0})
            row["count"] += 1
            row["params"] += layer.params
            row["macs"] += layer.macs
        return out

    def table(self, types: Sequence[str] | None = None, max_rows: int | None = None) -> str:
        """The per-layer table as text; ``types`` filters rows (e.g. ['Conv2d', 'Linear'])."""
        if max_rows is not None:
            max_rows = check_int("max_rows", max_rows, minimum=0)
        if isinstance(types, str):
            types = [types]
        rows = [layer for layer in self.layers if types is None or layer.type in types]
        head = f"{'layer':44s} {'type':14s} {'output':>18s} {'params':>11s} {'MACs':>14s} {'act. KiB':>9s}"
        lines = [head, "-" * len(head)]
        for layer in rows[:max_rows]:
            shape = "x".join(map(str, layer.output_shape))
            lines.append(
                f"{layer.name[-44:]:44s} {layer.type:14s} {shape:>18s} {layer.params:>11,} {layer.macs:>14,} "
                f"{layer.activation_bytes / 1024:>9.1f}"
            )
        if max_rows is not None and len(rows) > max_rows:
            lines.append(f"... {len(rows) - max_rows} more rows")
        lines.append("-" * len(head))
        lines.append(
            f"{'total':44s} {'':14s} {'':>18s} {self.params:>11,} {self.macs:>14,} {self.activation_bytes / 1024:>9.1f}"
        )
        lines.append(
            f"MACs = multiply-accumulates (conv + linear); FLOPs = 2 x MACs = {self.flops:,}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return (
            f"{self.model} @ {shape}: {self.params:,} params, {self.macs / 1e6:,.1f}M MACs "
            f"({self.flops / 1e6:,.1f}M FLOPs), {self.activation_bytes / 2**20:.1f} MiB of activations"
        )


def _bytes_of(shape: tuple[int, ...], element_size: int = 4) -> int:
    n = 1
    for s in shape:
        n *= s
    return n * element_size


def _same_storage(inp: torch.Tensor | None, out: torch.Tensor) -> bool:
    """True when a layer wrote in place or passed its input through (no new activation memory)."""
    return inp is not None and inp.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()


def _layer_macs(
    module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor, count_bn: bool
) -> int:
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        per_output = k_h * k_w * (module.in_channels // module.groups)
        return per_output * out.numel()  # = k^2 * C_in/g * C_out * H_out * W_out * B
    if isinstance(module, nn.Linear):
        return module.in_features * out.numel()  # = in * out * B
    if count_bn and isinstance(module, nn.modules.batchnorm._BatchNorm):
        return out.numel()  # one multiply-add per element (y = a * x + b once folded)
    return 0


def _resolve_input(
    model: nn.Module, input_size, batch: int, dtype: torch.dtype = torch.float32
) -> tuple[int, ...]:
    in_chans = getattr(model, "in_chans", 3)
    if input_size is None:
        input_size = getattr(model, "default_input_size", None)
        if input_size is None:
            raise ValueError(
                f"input_size is required for a {type(model).__name__}: give (C, H, W) or an int"
            )
    batch = check_int("batch", batch)
    shape = (batch, *check_input_size(input_size, in_chans, batch=batch, dtype=dtype))
    check_forward_fits(model, shape, dtype, name="input_size", value=input_size)
    return shape


def profile(
    model: nn.Module, input_size=None, *, batch: int = 1, count_bn: bool = False
) -> CostReport:
    """Per-layer params, MACs and activation memory of ``model`` for one input of ``input_size``.

    ``input_size``: an int (square, model's channels), (H, W) or (C, H, W); default: the
    model's native size. ``count_bn=True`` adds one MAC per BatchNorm output element.
    Parameters of modules that the forward pass never calls are still listed (with an
    empty output shape), so ``report.params == sum(p.numel() for p in model.parameters())``.
    The input has the model's dtype, so a half or double model is profiled in its own
    precision (activation bytes count its element size). An input whose forward pass would
    not fit in ``effnb._checks.memory_limit()`` fails before anything is allocated.
    """
    check_module("model", model)
    check_bool("count_bn", count_bn)
    label = getattr(model, "name", "") or type(model).__name__
    shape_model = getattr(model, "shape_model", None)
    if callable(shape_model):  # a DeployedModel: its trace runs no hooks, its eager copy does
        model = shape_model()
    dtype = model_dtype(model)
    shape = _resolve_input(model, input_size, batch, dtype)
    names = {module: name for name, module in model.named_modules()}
    rows: list[LayerCost] = []
    seen: set[nn.Module] = set()

    def hook(module: nn.Module, args, out) -> None:
        inp = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if not isinstance(out, torch.Tensor):
            return
        params = 0 if module in seen else sum(p.numel() for p in module.parameters(recurse=False))
        seen.add(module)
        rows.append(
            LayerCost(
                name=names.get(module, type(module).__name__) or type(module).__name__,
                type=type(module).__name__,
                input_shape=tuple(inp.shape) if inp is not None else (),
                output_shape=tuple(out.shape),
                params=params,
                macs=_layer_macs(module, inp, out, count_bn),
                activation_bytes=0 if _same_storage(inp, out) else out.numel() * out.element_size(),
            )
        )

    leaves = [
        m for m in model.modules() if not list(m.children()) and not isinstance(m, nn.Identity)
    ]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        model.eval()
        with torch.no_grad():
            model(torch.zeros(shape, device=device, dtype=dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    for module in leaves:
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own and module not in seen:
            rows.append(
                LayerCost(names[module], type(module).__name__ + " (not called)", (), (), own, 0, 0)
            )
    return CostReport(
        model=label,
        input_shape=shape,
        layers=tuple(rows),
        count_bn=count_bn,
        dtype=str(dtype).removeprefix("torch."),
    )
