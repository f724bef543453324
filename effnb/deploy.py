"""Turn an effnb model into its inference version, run by PyTorch or by a CPU runtime.

``deploy(model, backend=...)`` returns a ``DeployedModel`` (an ``nn.Module``; the original is
untouched) that computes the same function faster on a CPU. Every backend starts from the same
eager copy:

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

Then the backend runs it:

* ``"torch"``: the folded copy under ``torch.inference_mode``, as a frozen TorchScript trace
  (``jit="freeze"``, the default), eagerly (``jit=None``) or through ``torch.compile``
  (``compile=True``). TorchScript is deprecated; the trace stays the default because it
  had the lowest medians of PyTorch's own paths in the earlier exploratory run (1 thread, 5
  rounds: 0.53-0.77x the reference eager time against 0.67-0.85x for the folded eager copy;
  ``benchmarks/README.md``). ``benchmarks/deploy.py`` also times ``torch.export``'s program,
  an FX graph run op by op from Python (its run here, on a heavily loaded machine, resolved no
  difference between the three). ``torch.compile`` needs a C++ compiler and took minutes
  per model on a 2-core CPU.
* ``"onnxruntime"`` and ``"openvino"``: the folded copy exported with ``torch.onnx.export``
  (in memory, nothing written to disk) for the input's shape (``shapes="static"``, the
  default: one export and session per input shape) or with a dynamic batch, height and width
  (``shapes="dynamic"``: one session for every shape), run by an ONNX Runtime session or an
  OpenVINO compiled model configured for ``threads`` threads. A static export lets the
  runtime fold every shape computation into constants: ShuffleNetV2's channel shuffle
  exports as 954 ONNX nodes with dynamic axes and 426 without, the same graph
  ``torch.onnx.export`` gives for torchvision's model at a fixed size (``benchmarks/deploy.py``
  times both).
  Install them with ``pip install effnb[deploy]``; ``available_backends()`` says which are here.

No backend falls back to another: a backend that cannot export or run the model, or whose
outputs differ from the eager copy's, raises ``BackendError`` (see ``DeployedModel``).
``benchmarks/deploy.py`` times every backend against the runtimes used directly.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from effnb._checks import check_bool, check_choice, check_module, check_threads, model_dtype
from effnb.layers import ConvNormAct, ShuffleUnit, SqueezeExcite

__all__ = [
    "BACKENDS",
    "BackendError",
    "BackendNotInstalledError",
    "DeployedModel",
    "available_backends",
    "deploy",
    "export_onnx",
    "fold_batchnorm",
    "fuse_conv_bn",
    "outputs_agree",
    "shuffle_concat",
]

BACKENDS = ("torch", "onnxruntime", "openvino")
# The packages each backend imports, in import order (the exporter's first).
_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": (),
    "onnxruntime": ("onnx", "onnxscript", "onnxruntime"),
    "openvino": ("onnx", "onnxscript", "openvino"),
}
INSTALL_HINT = "pip install effnb[deploy]"


class BackendNotInstalledError(ImportError):
    """A deployment backend's package is not installed; the message names it and the pip command."""


class BackendError(RuntimeError):
    """A backend could not export or run the model, or gave other outputs than eager."""


def _import_backend(backend: str) -> dict[str, Any]:
    """Import ``backend``'s packages: {package name: module}, or BackendNotInstalledError."""
    modules = {}
    for package in _PACKAGES[backend]:
        try:
            modules[package] = importlib.import_module(package)
        except ImportError as exc:
            raise BackendNotInstalledError(
                f"backend={backend!r} needs the package {package!r}, which is not installed "
                f"here ({type(exc).__name__}: {exc}): {INSTALL_HINT} (or pip install {package})"
            ) from exc
    return modules


def available_backends() -> dict[str, str | None]:
    """Each backend of ``deploy`` -> the installed version of its runtime, None when missing.

    ``"torch"`` is always there; ``"onnxruntime"`` and ``"openvino"`` also need ``onnx`` and
    ``onnxscript`` (the exporter) and count as missing without them.
    """
    versions: dict[str, str | None] = {}
    for backend in BACKENDS:
        runtime = backend
        try:
            _import_backend(backend)
            versions[backend] = importlib.metadata.version(runtime)
        except (BackendNotInstalledError, importlib.metadata.PackageNotFoundError):
            versions[backend] = None
    return versions


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
            cast(tuple[int, int], conv.kernel_size),  # Conv2d stores pairs; typed tuple[int, ...]
            cast(tuple[int, int], conv.stride),
            cast(str | tuple[int, int], conv.padding),
            cast(tuple[int, int], conv.dilation),
            conv.groups,
            bias=True,
            padding_mode=conv.padding_mode,
            device=w.device,
            dtype=w.dtype,
        )
        assert fused.bias is not None  # built with bias=True
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
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)  # _conv_bn_pairs
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
            new_type = None if child is None else _REPLACEMENTS.get(type(child))
            if new_type is not None:
                parent._modules[name] = new_type(child)
                count += 1
    return count


_JIT_CHOICES = (None, "freeze", "optimize")
_EXPORTERS = ("dynamo", "legacy")
SHAPES = ("static", "dynamic")  # the ONNX export: fixed at each input's shape, or dynamic axes
ONNX_OPSET = 18  # ONNX Runtime >= 1.14 and OpenVINO >= 2023.0 implement it


def _freeze(net: nn.Module, example: torch.Tensor, mode: str) -> torch.jit.ScriptModule:
    """Trace ``net`` on ``example`` and freeze it (weights become constants).

    ``torch.jit.freeze`` folds constants and runs the whole graph in the TorchScript
    interpreter (no Python per module). ``"optimize"`` adds
    ``torch.jit.optimize_for_inference``, which on CPU converts convolutions to oneDNN with
    weights packed once. TorchScript is deprecated (torch >= 2.10 warns); its warnings are
    silenced here because it is still the fastest of PyTorch's CPU paths we measured
    (``benchmarks/README.md``), and the trace is checked against eager before it is used.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning (input check), DeprecationWarning
        with torch.inference_mode():
            traced = torch.jit.trace(net, example, check_trace=False)
            frozen = torch.jit.freeze(traced.eval())
            if mode == "optimize":
                frozen = torch.jit.optimize_for_inference(frozen)
    return frozen


def _export_input(example: torch.Tensor) -> torch.Tensor:
    """The input the ONNX export traces with: batch 2 and unequal, odd height and width.

    ``torch.export`` specialises a dimension that is 0 or 1 (batch 1) and gives equal sizes one
    symbol (a square input would tie height to width), so the example is made asymmetric; at
    least 65 px keeps every feature map of a stride-32 network above 1 x 1 (the same reason).
    """
    if example.ndim != 4:
        return torch.cat((example, example)) if example.shape[0] == 1 else example
    height = max(int(example.shape[2]), 65) | 1
    width = max(int(example.shape[3]), 65) | 1
    width += 2 if width == height else 0
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, example.shape[1], height, width, generator=g, dtype=example.dtype)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (torchvision-op registration notes, deprecation warnings).

    Errors still propagate; only log records below ERROR and warnings are dropped.
    """
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(
    net: nn.Module, example: torch.Tensor, *, exporter: str = "legacy", dynamic: bool = True
) -> bytes:
    """``net`` (eval mode, float32) as a serialised ONNX model, in memory.

    ``dynamic=True``: batch, H and W are dynamic axes (traced on ``_export_input(example)``);
    ``False``: every dimension is fixed at ``example``'s shape, so shape arithmetic becomes
    constants the runtime folds. ``exporter="dynamo"`` is ``torch.onnx.export(...,
    dynamo=True)`` (``torch.export`` then ONNX Script; PyTorch's recommended exporter, needs
    ``onnxscript``); ``"legacy"`` is the TorchScript-based exporter (deprecated, about 10x
    faster to export here). Raises ``BackendError`` when the export fails.
    """
    check_choice("exporter", exporter, _EXPORTERS)
    check_bool("dynamic", dynamic)
    x = _export_input(example) if dynamic else example
    spatial = x.ndim == 4
    try:
        with _quiet_exporter(), torch.no_grad():
            if exporter == "dynamo":
                dyn = torch.export.Dim.DYNAMIC
                dims = {0: dyn, 2: dyn, 3: dyn} if spatial else {0: dyn}
                program = torch.onnx.export(
                    net,
                    (x,),
                    dynamo=True,
                    dynamic_shapes=(dims,) if dynamic else None,
                    opset_version=ONNX_OPSET,
                )
                if program is None:  # pragma: no cover - only with f=... given
                    raise BackendError("torch.onnx.export returned no program")
                return program.model_proto.SerializeToString()
            buffer = io.BytesIO()
            names = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
            torch.onnx.export(
                net,
                (x,),
                buffer,  # type: ignore[arg-type]  # the legacy exporter writes to any binary file
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": names, "output": {0: "batch"}} if dynamic else None,
                opset_version=ONNX_OPSET,
            )
            return buffer.getvalue()
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter failure is the backend's failure
        raise BackendError(
            f"torch.onnx.export (exporter={exporter!r}) could not export "
            f"{getattr(net, 'name', type(net).__name__)}: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from exc


def _to_numpy(x: torch.Tensor) -> Any:
    """A C-contiguous float32 CPU array with ``x``'s values (a view when ``x`` already is one)."""
    return x.detach().contiguous().numpy()


class _OrtRunner:
    """An ONNX Runtime session: ``threads`` intra-op threads (not spinning between runs), one
    inter-op thread, sequential execution, all graph optimisations; input and output copied,
    never shared."""

    def __init__(self, blob: bytes, threads: int, modules: dict[str, Any]) -> None:
        ort = modules["onnxruntime"]
        if hasattr(ort, "disable_telemetry_events"):
            ort.disable_telemetry_events()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # ONNX Runtime's pool threads spin after each run by default: in an interleaved
        # comparison they would take the cores from whatever runs next, so they sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        (out, *_) = self.session.run(None, {self.input_name: _to_numpy(x)})
        with torch.inference_mode(False):  # a normal tensor the caller may write to
            return torch.from_numpy(out)  # a fresh array per run: the caller owns it


class _OpenVINORunner:
    """An OpenVINO model compiled for the CPU: ``threads`` inference threads, the latency hint,
    float32 arithmetic (no automatic bf16), one infer request; outputs copied out."""

    def __init__(self, blob: bytes, threads: int, modules: dict[str, Any]) -> None:
        ov = modules["openvino"]
        core = ov.Core()
        model = core.read_model(model=blob)
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        result = self.request.infer({0: _to_numpy(x)}, share_inputs=True, share_outputs=False)
        with torch.inference_mode(False):  # a normal tensor the caller may write to
            return torch.from_numpy(result[0])  # share_outputs=False: a copy the caller owns


_RUNNERS: dict[str, type[_OrtRunner] | type[_OpenVINORunner]] = {
    "onnxruntime": _OrtRunner,
    "openvino": _OpenVINORunner,
}


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run PyTorch with ``threads`` intra-op threads, restoring the caller's count after."""
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if before != threads:
            torch.set_num_threads(before)


class DeployedModel(nn.Module):
    """An inference-ready network run by one backend; takes and returns torch tensors.

    ``model`` is the transformed eager copy (inspect it, profile it: it keeps the effnb
    block names); ``backend`` says what runs the forward: ``"torch"`` (``jit``: a frozen
    TorchScript trace, or ``None`` for the eager copy; ``compiled``: ``torch.compile``),
    ``"onnxruntime"`` or ``"openvino"`` (an ONNX export of ``model``: one per input shape with
    ``shapes="static"``, at most ``MAX_RUNNERS`` kept, the least recently made dropped first; one
    for every shape with ``"dynamic"``). ``threads`` is the thread count every call runs with
    (PyTorch's is set for the call and restored; a runtime session has its own pool of that
    size). ``folded`` and ``replaced`` count the BatchNorms
    folded and the blocks swapped.

    **Checked against eager.** A trace or an export records one path through the code, so a
    model whose control flow depends on the data (``if x.mean() > 0``) or on the shape would
    be wrong without a word. The first time the model sees an input shape, the backend's
    outputs are compared with the eager copy's on ``VERIFY_INPUTS`` inputs of that shape (the
    input, its negation and a seeded random one), within rtol 1e-3 and atol 1e-4 x the largest
    eager output (``outputs_agree``). The torch trace is re-made once for a shape it fails on;
    then, as for the runtimes, a mismatch raises ``BackendError``. Nothing falls back to eager.

    **Calls.** A bad input raises the eager model's error (or a ``TypeError`` for the dtype)
    and changes nothing; a backend that fails on an input the eager model accepts raises
    ``BackendError`` and also changes nothing. Inputs are read, never written or kept. The
    ONNX backends take float32 CPU tensors and return a new float32 tensor the caller owns and
    may write to (copied out of the runtime's buffers, not an inference-mode tensor); the torch
    backend returns an inference-mode tensor (clone it to write to it).
    Deployed models are for inference: ``train()`` raises.
    """

    VERIFY_INPUTS = 3
    # Traces or sessions kept (each session holds its own copy of the weights); the oldest
    # is dropped, and made and checked again if its shape comes back.
    MAX_RUNNERS = 8
    # Set with object.__setattr__ (outside nn.Module's registry); declared for the type checker.
    _compiled: Callable[[torch.Tensor], Any] | None
    _backend_modules: dict[str, Any]
    _runners: dict[Any, Callable[[torch.Tensor], Any]]
    _verified: set[tuple[Any, tuple[int, ...]]]
    _dtype: torch.dtype | None

    def __init__(
        self,
        model: nn.Module,
        *,
        backend: str = "torch",
        threads: int,
        channels_last: bool,
        jit: str | None = None,
        compile: bool = False,
        exporter: str | None = None,
        shapes: str | None = None,
        folded: int = 0,
        replaced: int = 0,
        backend_modules: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.backend = backend
        self.threads = threads
        self.channels_last = channels_last
        self.jit = jit
        self.exporter = exporter
        self.shapes = shapes
        self.folded = folded
        self.replaced = replaced
        self.compiled = compile
        # Kept out of the module registry so parameters are not listed twice; a compiled or
        # exported graph is no nn.Module that .eval()/.to() could walk.
        object.__setattr__(self, "_compiled", torch.compile(model) if compile else None)
        # backend runners: torch traces keyed by (dtype, device, shape or None = any shape);
        # ONNX runtime sessions keyed by input shape (static) or None (dynamic: any shape)
        object.__setattr__(self, "_runners", {})
        object.__setattr__(self, "_backend_modules", backend_modules or {})
        object.__setattr__(self, "_verified", set())  # (runner key, input shape) pairs checked
        object.__setattr__(self, "_dtype", None)  # model_dtype(model), cached until .to()
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

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> DeployedModel:
        object.__setattr__(self, "_dtype", None)  # .to() / .half() / .double() may change it
        return super()._apply(fn, recurse)

    def shape_model(self) -> nn.Module:
        """The eager copy, which computes the same shapes (for hooks and meta-device counts;
        a traced graph or a runtime session runs no module hooks)."""
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
        if self.backend != "torch":
            if dtype != torch.float32:
                raise TypeError(
                    f"{self.name} runs on {self.backend}, which was exported in float32, but "
                    f"its eager copy is now {dtype}: deploy the converted model again"
                )
            if x.device.type != "cpu":
                raise ValueError(
                    f"{self.name} runs on {self.backend} on the CPU; x is on {x.device}: "
                    "pass x.cpu()"
                )

    # --- the runner for an input ---------------------------------------------------------

    def _runner_key(self, x: torch.Tensor, shape_specific: bool = False) -> Any:
        if self.backend != "torch":
            return tuple(x.shape) if self.shapes == "static" else None
        return (x.dtype, x.device, tuple(x.shape) if shape_specific else None)

    def _make_runner(self, x: torch.Tensor, key: Any) -> Callable[[torch.Tensor], Any]:
        """The torch trace, or the runtime session, for ``x`` (``key`` None: any shape)."""
        if self.backend == "torch":
            return self._make_trace(x)
        blob = export_onnx(self.model, x, exporter=self.exporter or "legacy", dynamic=key is None)
        try:
            return _RUNNERS[self.backend](blob, self.threads, self._backend_modules)
        except Exception as exc:  # noqa: BLE001 - any runtime failure is the backend's
            raise BackendError(
                f"{self.backend} could not load the ONNX export of {self.name}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _keep(self, key: Any, run: Callable[[torch.Tensor], Any]) -> None:
        """Store a new runner; beyond ``MAX_RUNNERS``, forget the oldest and its checks."""
        while len(self._runners) >= self.MAX_RUNNERS:
            oldest = next(iter(self._runners))
            del self._runners[oldest]
            object.__setattr__(self, "_verified", {v for v in self._verified if v[0] != oldest})
        self._runners[key] = run

    def _make_trace(self, x: torch.Tensor) -> Callable[[torch.Tensor], Any]:
        """Trace for ``x``; when tracing fails, say whose fault it is (the input's or TorchScript's)."""
        assert self.jit is not None
        try:
            return _freeze(self.model, x, self.jit)
        except Exception as exc:  # noqa: BLE001 - decided below: the input's fault or the trace's
            self.model(x)  # a bad input raises its own error here and changes nothing
            raise BackendError(
                f"{self.name}: jit={self.jit!r} cannot trace this model ({type(exc).__name__}: "
                f"{exc}); deploy it with jit=None to run the eager copy"
            ) from exc

    def _verify(self, run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> str | None:
        """None if ``run`` gives the eager outputs on ``x`` and other inputs of its shape, else
        a description of the first difference."""
        g = torch.Generator(device=x.device).manual_seed(0)
        probes = [x, -x, torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)]
        for i, probe in enumerate(probes[: self.VERIFY_INPUTS]):
            if self.channels_last and probe.ndim == 4:
                probe = probe.contiguous(memory_format=torch.channels_last)
            eager, fast = self.model(probe), run(probe)
            why = outputs_agree(eager, fast)
            if why is not None:
                which = ("the input", "the negated input", "a random input of its shape")[i]
                return f"on {which}: {why}"
        return None

    def _run_checked(self, x: torch.Tensor) -> Any:
        """The backend's output for ``x``, checked against eager for each new input shape."""
        shape = tuple(x.shape)
        for shape_specific in (False, True):
            key = self._runner_key(x, shape_specific)
            specific = self._runner_key(x, True)
            run = self._runners.get(specific)
            if run is None:
                run = self._runners.get(key)
            fresh = run is None
            if run is None:
                run = self._make_runner(x, key)
            if (key, shape) in self._verified or (specific, shape) in self._verified:
                return self._call(run, x)
            try:
                why = self._verify(run, x)
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - the backend failed on an input eager took
                self.model(x)  # a bad input raises its own error here
                raise BackendError(
                    f"{self.name}: backend {self.backend!r} failed on an input of shape {shape} "
                    f"that the eager model accepts ({type(exc).__name__}: {exc})"
                ) from exc
            if why is None:
                if fresh:
                    self._keep(key, run)
                self._verified.add((key, shape))
                return self._call(run, x)
            if self.backend != "torch" or shape_specific:
                raise BackendError(
                    f"{self.name}: backend {self.backend!r}"
                    + (f" (jit={self.jit!r})" if self.backend == "torch" else "")
                    + f" gives other outputs than the eager model for inputs of shape {shape} "
                    f"{why} (control flow that depends on the data or the shape is frozen into "
                    "a trace or an export)"
                    + (
                        "; deploy with jit=None to run the eager copy"
                        if self.backend == "torch"
                        else ""
                    )
                )
            # the shape-generic trace does not serve this shape: trace once for it
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
        try:
            return run(x)
        except Exception as exc:  # noqa: BLE001 - a verified backend failing is its failure
            raise BackendError(
                f"{self.name}: backend {self.backend!r} failed on an input of shape "
                f"{tuple(x.shape)} ({type(exc).__name__}: {exc})"
            ) from exc

    def forward(self, x: torch.Tensor) -> Any:
        self.check_input(x)
        with torch.inference_mode(), _torch_threads(self.threads):
            if self.channels_last and x.ndim == 4 and self.backend == "torch":
                x = x.contiguous(memory_format=torch.channels_last)
            if self._compiled is not None:
                return self._compiled(x)
            if self.backend == "torch" and self.jit is None:
                return self.model(x)
            return self._run_checked(x)

    def extra_repr(self) -> str:
        what = (
            f"jit={self.jit!r}, compile={self.compiled}"
            if self.backend == "torch"
            else f"exporter={self.exporter!r}, shapes={self.shapes!r}"
        )
        return (
            f"backend={self.backend!r}, threads={self.threads}, {what}, "
            f"channels_last={self.channels_last}, folded={self.folded}, replaced={self.replaced}"
        )


def outputs_agree(
    eager: Any, other: Any, rtol: float = 1e-3, atol_scale: float = 1e-4
) -> str | None:
    """None when ``other`` equals ``eager`` within float rounding, else what differs.

    Same structure, shapes and dtypes; floating values within ``rtol`` and an absolute
    tolerance of ``atol_scale`` x the largest |eager| value. Folding, channels-last and a
    runtime's fused kernels reorder float32 sums: relative errors of 1e-6 per layer that
    accumulate over ~50 layers, far below 1e-3 (measured: < 1e-5 on every zoo model). The
    absolute part is relative to the output's scale (not 1), so an untrained network whose
    logits are 1e-9 is checked as strictly as a trained one.
    """
    a, _ = tree_flatten(eager)
    b, _ = tree_flatten(other)
    if len(a) != len(b):
        return f"{len(b)} outputs instead of {len(a)}"
    for u, v in zip(a, b, strict=True):
        if isinstance(u, torch.Tensor) != isinstance(v, torch.Tensor):
            return f"a {type(v).__name__} where eager gives a {type(u).__name__}"
        if not isinstance(u, torch.Tensor):
            if u != v:
                return f"{v!r} instead of {u!r}"
            continue
        if u.shape != v.shape or u.dtype != v.dtype:
            return f"shape {tuple(v.shape)} {v.dtype} instead of {tuple(u.shape)} {u.dtype}"
        if u.is_floating_point():
            u, v = u.double(), v.double().to(u.device)
            scale = float(u.abs().max()) if u.numel() else 0.0
            if not torch.allclose(u, v, rtol=rtol, atol=atol_scale * scale, equal_nan=True):
                diff = float((u - v).abs().max())
                return f"largest difference {diff:.3g} (largest |eager output| {scale:.3g})"
        elif not torch.equal(u, v.to(u.device)):
            return "integer outputs differ"
    return None


def _default_example(model: nn.Module) -> torch.Tensor | None:
    """(1, in_chans, S, S) at the model's native size S, or None if it declares none."""
    size = getattr(model, "default_input_size", None)
    if not isinstance(size, int):
        return None
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, getattr(model, "in_chans", 3), size, size, generator=g)


def deploy(
    model: nn.Module,
    *,
    backend: str = "torch",
    threads: int | None = None,
    fold_bn: bool = True,
    channels_last: bool = True,
    replace_blocks: bool | None = None,
    example_input: torch.Tensor | None = None,
    jit: str | None = "freeze",
    compile: bool = False,
    exporter: str = "legacy",
    shapes: str = "static",
) -> DeployedModel:
    """The inference version of ``model`` run by ``backend``; outputs equal ``model.eval()(x)``.

    A deep copy in eval mode is transformed (the original is not modified):

    * ``fold_bn``: fold every BatchNorm2d into the Conv2d before it (``fuse_conv_bn``:
      W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta).
    * ``channels_last``: weights and input in NHWC memory order (torch backend's input;
      the ONNX runtimes choose their own layouts).
    * ``replace_blocks``: swap ShuffleUnit and SqueezeExcite for versions with fewer memory
      moves in PyTorch (same outputs within float tolerance). ``None`` (default): on for the
      torch backend, off for the runtimes — the NHWC shuffle exports as extra transposes that
      ONNX Runtime and OpenVINO keep (ShuffleNetV2 x1.0, 2 threads, 224 px, idle, one
      interleaved run: ONNX Runtime 5.25 ms without vs 5.88 with, OpenVINO 5.66 vs 8.82).

    and run by ``backend`` (one of ``BACKENDS``; ``available_backends()`` says which are
    installed):

    * ``"torch"``: ``jit="freeze"`` (default) a frozen TorchScript trace, ``"optimize"`` with
      ``torch.jit.optimize_for_inference`` too, ``None`` the eager copy; ``compile=True`` runs
      ``torch.compile`` instead (needs a C++ compiler; minutes per model on a 2-core CPU).
      The trace is made on ``example_input`` now, or on the first call without one.
    * ``"onnxruntime"``, ``"openvino"``: the copy exported to ONNX in memory
      (``export_onnx``; ``exporter="legacy"``, the TorchScript-based exporter, is the default
      because ``"dynamo"`` took 30-70 s per model here against 3-6 s, with the same outputs).
      ``shapes="static"`` (default) exports for each input shape the first time it is seen
      (a few seconds), so the runtime folds all shape arithmetic into constants, as it does
      for a model exported by hand at a fixed size; ``"dynamic"`` exports once with dynamic
      batch, height and width and serves every shape from one session, slower where the
      graph computes shapes (ShuffleNetV2's channel shuffle). Float32 only, CPU only.

    ``threads`` (default ``torch.get_num_threads()`` now) is the thread count every call runs
    with. ``example_input`` (default: one random image at the model's ``default_input_size``)
    is what the backend is built and checked on now: outputs equal the eager copy's on it, its
    negation and a random input of its shape, and again for every new input shape later
    (``DeployedModel``); a difference, an export error or a runtime error raises
    ``BackendError``, never a fallback to eager. A missing package raises
    ``BackendNotInstalledError`` (an ImportError) naming it and ``pip install effnb[deploy]``.
    A half or double model is deployed in its dtype by the torch backend (the others refuse it).
    Deploying a ``DeployedModel`` again re-deploys its eager copy with the new options.
    """
    check_module("model", model)
    check_choice("backend", backend, BACKENDS)
    for name, flag in (
        ("fold_bn", fold_bn),
        ("channels_last", channels_last),
        ("compile", compile),
    ):
        check_bool(name, flag)
    if replace_blocks is None:
        replace_blocks = backend == "torch"
    check_bool("replace_blocks", replace_blocks)
    check_choice("jit", jit, _JIT_CHOICES)
    check_choice("exporter", exporter, _EXPORTERS)
    check_choice("shapes", shapes, SHAPES)
    threads = check_threads("threads", torch.get_num_threads() if threads is None else threads)
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise TypeError(
            f"example_input must be a torch.Tensor or None, got {type(example_input).__name__}"
        )
    modules = _import_backend(backend)  # a missing package fails before any work
    done_folded = done_replaced = 0
    if isinstance(model, DeployedModel):  # already transformed: start from its eager copy
        done_folded, done_replaced = model.folded, model.replaced
        model = model.model
    dtype = model_dtype(model)  # one floating dtype, or a clear error
    if backend != "torch" and dtype != torch.float32:
        raise TypeError(
            f"backend={backend!r} runs float32 models; model is {dtype}: deploy model.float(), "
            "or use backend='torch'"
        )
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    folded = done_folded + (fold_batchnorm(net) if fold_bn else 0)
    replaced = done_replaced + (_replace_blocks(net) if replace_blocks else 0)
    if channels_last:
        # Module.to takes memory_format (4-D weights to NHWC); torch's stubs omit it
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    example = example_input if example_input is not None else _default_example(net)
    deployed = DeployedModel(
        net,
        backend=backend,
        threads=threads,
        channels_last=channels_last,
        jit=(None if compile else jit) if backend == "torch" else None,
        compile=compile and backend == "torch",
        exporter=exporter if backend != "torch" else None,
        shapes=shapes if backend != "torch" else None,
        folded=folded,
        replaced=replaced,
        backend_modules=modules,
    )
    if backend != "torch" and example is None:
        raise ValueError(
            f"backend={backend!r} exports the model on an example input: pass "
            f"example_input (the model has no default_input_size)"
        )
    if example is not None and (backend != "torch" or jit is not None or compile):
        deployed(example)  # builds the trace / compiles, and checks against eager, now
    return deployed


# ``effnb.deploy`` is this function (effnb/__init__.py imports it over the module's name), so
# ``effnb.deploy.available_backends()`` reads the attribute set here.
deploy.available_backends = available_backends  # type: ignore[attr-defined]  # see above
