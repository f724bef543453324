"""Turn an effnb model into its inference version: BatchNorm folded, channels-last, no autograd.

``deploy(model)`` returns a new module (the original is untouched) that computes the same
function faster on a CPU:

1. **BatchNorm folding.** In eval mode BatchNorm is a per-channel affine map,
   y = gamma * (z - mean) / sqrt(var + eps) + beta, applied to a convolution's output
   z = W * x + b. Both are linear, so they compose into one convolution (Ioffe & Szegedy,
   arXiv 1502.03167, section 3.2 note that the normalisation is a fixed linear transform at
   inference; the folding is the standard deployment step, e.g. ``torch.nn.utils.fusion``)::

       s  = gamma / sqrt(var + eps)          (one scale per output channel)
       W' = W * s                            (each output filter scaled)
       b' = (b - mean) * s + beta            (b = 0 when the conv had no bias)

   One kernel launch and one pass over memory per layer disappear.
2. **Channels-last** (NHWC) weights and input. oneDNN's depthwise and 1x1 kernels on x86
   are written for NHWC; NCHW inputs get reordered inside every convolution.
3. **Deploy-time block replacements** that compute the same numbers with fewer memory moves
   (no change to ``effnb.layers``): ShuffleNetV2's concatenate-then-shuffle becomes one
   ``torch.stack`` in NHWC order (``shuffle_concat``).
4. A forward that runs under ``torch.inference_mode`` (no autograd bookkeeping) and converts
   the input to channels-last.
5. Optionally ``torch.compile`` (off by default: see ``benchmarks/README.md`` for what it
   costs and gains here).

``benchmarks/speed.py`` measures each step against torchvision/timm.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from effnb._checks import check_bool, check_module, model_dtype
from effnb.layers import ConvNormAct, ShuffleUnit, SqueezeExcite

__all__ = [
    "DeployedModel",
    "deploy",
    "fold_batchnorm",
    "fuse_conv_bn",
    "shuffle_concat",
]


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d computing ``bn(conv(x))`` with BatchNorm's running statistics.

    s = gamma / sqrt(running_var + eps); W' = W * s (per output channel);
    b' = (b - running_mean) * s + beta, with b = 0 when ``conv`` has no bias.
    (Inference-mode BatchNorm is affine, Ioffe & Szegedy, arXiv 1502.03167, section 3.2.)
    Without affine parameters gamma = 1 and beta = 0.
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"bn must be an nn.BatchNorm2d, got {type(bn).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "bn has no running statistics (track_running_stats=False): it normalises with "
            "batch statistics even in eval mode and cannot be folded into a convolution"
        )
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"bn.num_features={bn.num_features} does not match conv.out_channels={conv.out_channels}"
        )
    with torch.no_grad():
        w = conv.weight.detach()
        mean, var = bn.running_mean.detach(), bn.running_var.detach()
        gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(mean)
        beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(mean)
        b = conv.bias.detach() if conv.bias is not None else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + bn.eps)  # (C_out,)
        bad = (~torch.isfinite(scale) | ~torch.isfinite(mean) | ~torch.isfinite(beta)).nonzero()
        if bad.numel():
            raise ValueError(
                f"bn's statistics give no finite scale in channels {bad.flatten()[:10].tolist()} "
                "(running_var + eps <= 0, or NaN/inf in the running statistics or affine "
                "parameters): folding would write NaN into the conv's weights"
            )
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            bias=True,
            padding_mode=conv.padding_mode,
            device=w.device,
            dtype=w.dtype,
        )
        fused.weight.copy_(w * scale.reshape(-1, 1, 1, 1))  # (C_out, C_in/g, k, k)
        fused.bias.copy_((b - mean) * scale + beta)
    return fused


def _conv_bn_pairs(module: nn.Module) -> Iterator[tuple[nn.Module, str, str]]:
    """(parent, conv_name, bn_name) for every Conv2d directly followed by a BatchNorm2d.

    ConvNormAct's ``conv``/``bn``, and consecutive children of an ``nn.Sequential``
    (for modules assembled by hand from torch layers).
    """
    for parent in module.modules():
        if isinstance(parent, ConvNormAct):
            if isinstance(parent.conv, nn.Conv2d) and isinstance(parent.bn, nn.BatchNorm2d):
                yield parent, "conv", "bn"
        elif isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            for a, b in zip(names, names[1:], strict=False):
                if isinstance(parent._modules[a], nn.Conv2d) and isinstance(
                    parent._modules[b], nn.BatchNorm2d
                ):
                    yield parent, a, b


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every BatchNorm2d that follows a Conv2d into it, in place; return how many.

    Each folded ``bn`` becomes ``nn.Identity`` and its conv gets the fused weight and bias
    of ``fuse_conv_bn``. Only valid for inference: the running statistics are frozen in.
    """
    check_module("module", module)
    pairs = list(_conv_bn_pairs(module))
    for parent, conv_name, bn_name in pairs:
        conv, bn = parent._modules[conv_name], parent._modules[bn_name]
        parent._modules[conv_name] = fuse_conv_bn(conv, bn)
        parent._modules[bn_name] = nn.Identity()
    return len(pairs)


def shuffle_concat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``channel_shuffle(torch.cat((a, b), 1), 2)`` in one copy, laid out channels-last.

    After the shuffle, output channel 2j + i is channel j of input i (i = 0 for ``a``,
    1 for ``b``): in NHWC that is stacking the two C/2-vectors of every pixel along a
    new last axis. One write of the output instead of a concatenation followed by a
    ``.contiguous()`` transpose (which also returns NCHW, so the next conv reorders again).
    """
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        raise TypeError("shuffle_concat takes two tensors")
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(
            f"shuffle_concat needs two (B, C/2, H, W) tensors of one shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    batch, half, height, width = a.shape
    a_nhwc = a.permute(0, 2, 3, 1)  # (B, H, W, C/2), a view when a is channels-last
    b_nhwc = b.permute(0, 2, 3, 1)
    out = torch.stack((a_nhwc, b_nhwc), dim=4)  # (B, H, W, C/2, 2)
    out = out.view(batch, height, width, 2 * half)  # (B, H, W, C): channel 2j + i
    return out.permute(0, 3, 1, 2)  # (B, C, H, W) with channels-last strides


class _DeployShuffleUnit(nn.Module):
    """ShuffleUnit with its concat + shuffle done by ``shuffle_concat`` (same outputs)."""

    def __init__(self, unit: ShuffleUnit) -> None:
        super().__init__()
        self.stride = unit.stride
        self.branch1 = unit.branch1
        self.branch2 = unit.branch2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)  # two (B, C/2, H, W) halves
            return shuffle_concat(x1, self.branch2(x2))
        return shuffle_concat(self.branch1(x), self.branch2(x))


class _DeploySqueezeExcite(nn.Module):
    """SqueezeExcite with the squeeze as ``adaptive_avg_pool2d`` (a channels-last kernel)."""

    def __init__(self, se: SqueezeExcite) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2, self.gate = se.fc1, se.act, se.fc2, se.gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * s


_REPLACEMENTS: dict[type[nn.Module], type[nn.Module]] = {
    ShuffleUnit: _DeployShuffleUnit,
    SqueezeExcite: _DeploySqueezeExcite,
}


def _replace_blocks(module: nn.Module) -> int:
    """Swap every block that has a deploy-time version (exact type match); return how many."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            new_type = _REPLACEMENTS.get(type(child))
            if new_type is not None:
                parent._modules[name] = new_type(child)
                count += 1
    return count


_JIT_CHOICES = (None, "freeze", "optimize")


def _freeze(net: nn.Module, example: torch.Tensor, mode: str) -> torch.jit.ScriptModule:
    """Trace ``net`` on ``example`` and freeze it (weights become constants).

    ``torch.jit.freeze`` folds constants and runs the whole graph in the TorchScript
    interpreter (no Python per module). ``"optimize"`` adds
    ``torch.jit.optimize_for_inference``, which on CPU converts convolutions to oneDNN with
    weights packed once. TorchScript is deprecated in favour of ``torch.compile`` from torch
    2.10; its warnings are silenced here because it is still the fastest CPU path we measured.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning (input check), DeprecationWarning
        with torch.inference_mode():
            traced = torch.jit.trace(net, example, check_trace=False)
            frozen = torch.jit.freeze(traced.eval())
            if mode == "optimize":
                frozen = torch.jit.optimize_for_inference(frozen)
    return frozen


class DeployedModel(nn.Module):
    """Wraps an inference-ready network: input to channels-last, forward in inference mode.

    ``model`` is the transformed eager copy (inspect it, profile it: it keeps the effnb
    block names). When ``jit`` is set, the forward runs a TorchScript version of it, traced
    on the first input; with ``compile`` a ``torch.compile`` version. ``folded`` and
    ``replaced`` count the BatchNorms folded and the blocks swapped.

    A trace records one path through the code, so a model whose control flow depends on the
    data (``if x.mean() > 0``) or on the shape would be traced wrong without a word. The
    first time the wrapper sees an input shape it compares the trace with the eager copy on
    ``VERIFY_INPUTS`` inputs (the input, its negation and a seeded random one); if they differ
    it warns once and runs the eager copy from then on. A call that fails (a wrong shape or
    dtype) raises the eager model's error and changes nothing; only a model that runs
    eagerly but cannot be traced falls back to eager for good. Deployed models are for
    inference: ``train()`` raises.
    """

    VERIFY_INPUTS = 3

    def __init__(
        self,
        model: nn.Module,
        *,
        channels_last: bool,
        jit: str | None = None,
        compile: bool = False,
        folded: int = 0,
        replaced: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.jit = jit
        self.folded = folded
        self.replaced = replaced
        # Kept out of the module registry so parameters are not listed twice.
        object.__setattr__(self, "_fast", torch.compile(model) if compile else None)
        object.__setattr__(self, "_trace_key", None)  # (dtype, device) the trace was made for
        object.__setattr__(self, "_verified", set())  # input shapes the trace was checked on
        object.__setattr__(self, "_dtype", None)  # model_dtype(model), cached until .to()
        self.compiled = compile
        self.in_chans = getattr(model, "in_chans", 3)
        self.default_input_size = getattr(model, "default_input_size", None)
        self.name = getattr(model, "name", type(model).__name__)
        self.training = False

    def train(self, mode: bool = True) -> DeployedModel:
        """Only ``eval()`` (``train(False)``) is allowed: BatchNorm is folded and autograd off."""
        if mode:
            raise RuntimeError(
                f"a DeployedModel ({self.name}) only runs inference: its BatchNorms are folded "
                "and its forward runs without autograd. Train the original model and deploy it "
                "again."
            )
        return super().train(False)

    def _apply(self, fn, recurse: bool = True):
        object.__setattr__(self, "_dtype", None)  # .to() / .half() / .double() may change it
        return super()._apply(fn, recurse)

    def shape_model(self) -> nn.Module:
        """The eager copy, which computes the same shapes (for hooks and meta-device counts;
        a traced graph runs no module hooks)."""
        return self.model

    def check_input(self, x: torch.Tensor) -> None:
        """The wrapped model's input check (a traced graph would skip it), and the dtype."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.name} takes a torch.Tensor, got {type(x).__name__}")
        check = getattr(self.model, "check_input", None)
        if check is not None:
            check(x)
        if self._dtype is None:
            object.__setattr__(self, "_dtype", model_dtype(self.model))
        dtype = self._dtype
        if x.is_floating_point() and x.dtype != dtype:
            raise TypeError(
                f"{self.name} was deployed in {dtype} but x is {x.dtype}: pass x.to({dtype}) "
                "(or deploy a converted model)"
            )

    def _trace(self, x: torch.Tensor) -> None:
        """Make the trace for ``x``'s dtype and device; on failure decide whose fault it is."""
        key = (x.dtype, x.device)
        if self._fast is not None and self._trace_key == key:
            return
        try:
            fast = _freeze(self.model, x, self.jit)
        except Exception as exc:  # noqa: BLE001 - TorchScript is deprecated: stay correct
            self.model(x)  # a bad input raises its own error here and changes nothing
            warnings.warn(
                f"{self.name}: jit={self.jit!r} cannot trace this model "
                f"({type(exc).__name__}: {exc}); running the eager copy from now on",
                stacklevel=5,  # _trace <- forward <- _call_impl <- __call__ <- the caller
            )
            self.jit = None
            return
        object.__setattr__(self, "_fast", fast)
        object.__setattr__(self, "_trace_key", key)
        object.__setattr__(self, "_verified", set())

    def _verify(self, x: torch.Tensor) -> bool:
        """Does the trace give the eager outputs on ``x`` and on other inputs of its shape?"""
        g = torch.Generator(device=x.device).manual_seed(0)
        probes = [x, -x, torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)]
        for probe in probes[: self.VERIFY_INPUTS]:
            if self.channels_last and probe.ndim == 4:
                probe = probe.contiguous(memory_format=torch.channels_last)
            eager, traced = self.model(probe), self._fast(probe)
            if not _outputs_agree(eager, traced):
                return False
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        with torch.inference_mode():
            if self.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.compiled:
                return self._fast(x)
            if self.jit is None:
                return self.model(x)
            self._trace(x)
            if self.jit is None:  # the model cannot be traced: eager from now on
                return self.model(x)
            shape = tuple(x.shape)
            if shape not in self._verified:
                if not self._verify(x):
                    warnings.warn(
                        f"{self.name}: the jit={self.jit!r} trace gives other outputs than the "
                        f"eager model on inputs of shape {shape} (control flow that depends on "
                        "the data or the shape is frozen into a trace); running the eager copy "
                        "from now on",
                        stacklevel=4,  # forward <- _call_impl <- __call__ <- the caller
                    )
                    self.jit = None
                    object.__setattr__(self, "_fast", None)
                    return self.model(x)
                self._verified.add(shape)
            return self._fast(x)

    def extra_repr(self) -> str:
        return (
            f"channels_last={self.channels_last}, jit={self.jit!r}, compile={self.compiled}, "
            f"folded={self.folded}, replaced={self.replaced}"
        )


def _outputs_agree(eager, traced) -> bool:
    """Same structure, shapes and values within float rounding (folding reorders sums)."""
    a, _ = tree_flatten(eager)
    b, _ = tree_flatten(traced)
    if len(a) != len(b):
        return False
    for u, v in zip(a, b, strict=True):
        if isinstance(u, torch.Tensor) != isinstance(v, torch.Tensor):
            return False
        if not isinstance(u, torch.Tensor):
            if u != v:
                return False
            continue
        if u.shape != v.shape or u.dtype != v.dtype:
            return False
        if u.is_floating_point():
            u, v = u.double(), v.double()
            scale = max(1.0, float(u.abs().max())) if u.numel() else 1.0
            if not torch.allclose(u, v, rtol=1e-3, atol=1e-4 * scale, equal_nan=True):
                return False
        elif not torch.equal(u, v):
            return False
    return True


def deploy(
    model: nn.Module,
    *,
    fold_bn: bool = True,
    channels_last: bool = True,
    replace_blocks: bool = True,
    jit: str | None = "freeze",
    compile: bool = False,
    example_input: torch.Tensor | None = None,
) -> DeployedModel:
    """The inference version of ``model``: a deep copy in eval mode, BN folded, channels-last.

    * ``fold_bn``: fold every BatchNorm2d into the Conv2d before it (``fuse_conv_bn``:
      W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta).
    * ``channels_last``: weights and input in NHWC memory order.
    * ``replace_blocks``: swap ShuffleUnit and SqueezeExcite for versions with fewer memory
      moves (same outputs within float tolerance).
    * ``jit``: ``"freeze"`` (default) runs a frozen TorchScript trace, made on the first
      call (or on ``example_input`` now); ``"optimize"`` also applies
      ``torch.jit.optimize_for_inference`` (faster for MobileNetV1, slower for SE models);
      ``None`` stays eager. The trace is shape-generic: other batch sizes and resolutions
      give the same outputs as eager.
    * ``compile``: run ``torch.compile`` instead of ``jit`` (needs a C++ compiler; minutes
      of compilation on a 2-core CPU, see ``benchmarks/README.md``).

    Outputs equal ``model.eval()(x)`` within float rounding; the trace is checked against
    the eager copy for every new input shape (see ``DeployedModel``). The original is not
    modified. A half or double model is deployed in its dtype and takes inputs of that dtype.
    Deploying a ``DeployedModel`` again re-deploys its eager copy with the new options.
    """
    check_module("model", model)
    for name, flag in (
        ("fold_bn", fold_bn),
        ("channels_last", channels_last),
        ("replace_blocks", replace_blocks),
        ("compile", compile),
    ):
        check_bool(name, flag)
    if jit not in _JIT_CHOICES:
        raise ValueError(f"jit must be one of {list(_JIT_CHOICES)}, got {jit!r}")
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise TypeError(
            f"example_input must be a torch.Tensor or None, got {type(example_input).__name__}"
        )
    done_folded = done_replaced = 0
    if isinstance(model, DeployedModel):  # already transformed: start from its eager copy
        done_folded, done_replaced = model.folded, model.replaced
        model = model.model
    model_dtype(model)  # one floating dtype, or a clear error
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    folded = done_folded + (fold_batchnorm(net) if fold_bn else 0)
    replaced = done_replaced + (_replace_blocks(net) if replace_blocks else 0)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    deployed = DeployedModel(
        net,
        channels_last=channels_last,
        jit=None if compile else jit,
        compile=compile,
        folded=folded,
        replaced=replaced,
    )
    if example_input is not None:
        deployed(example_input)  # traces / compiles now rather than on the first real call
    return deployed
