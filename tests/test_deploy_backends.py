"""effnb.deploy's backends (torch, ONNX Runtime, OpenVINO) give the eager model's outputs on every
registered model, raise instead of falling back, and name a missing package.

Tolerance: rtol 1e-4 and atol 1e-5 x the largest |eager output|. Folding BatchNorm, channels-last
and a runtime's fused kernels reorder float32 sums, which moves each output by a few float32
roundings per layer (measured: below 1e-6 of the output's scale on every zoo model); a wrong
fold, a dropped layer or another branch moves it by 1e-2 or more. The absolute part scales with
the outputs because untrained logits are small (the classifier is initialised N(0, 0.01^2)).
"""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
from conftest import randomise_bn
from torch import nn

import effnb

dep = importlib.import_module("effnb.deploy")  # the module (effnb.deploy is the function)
REAL_EXPORT = dep.export_onnx  # one_export_per_model replaces it for the model grid
deploy, BackendError, BackendNotInstalledError = (
    dep.deploy,
    dep.BackendError,
    dep.BackendNotInstalledError,
)

RUNTIMES = [b for b in ("onnxruntime", "openvino") if dep.available_backends()[b] is not None]
needs_runtimes = pytest.mark.skipif(
    len(RUNTIMES) < 2, reason="pip install effnb[deploy] (onnxruntime and openvino) to run these"
)
# EfficientNet-B4 to B7 take seconds each to build and run: marked slow (-m "not slow" skips
# them; the full file covers every registered model).
HEAVY = {"efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7"}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in effnb.list_models()]
# ShuffleNetV2 and MobileNetV3 take 32 px (their total stride); non-square, batch 2
X = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
EXAMPLE = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def assert_equal_to_eager(out: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def zoo():
    """name -> (model with random BN statistics, its eager output on X), built once."""
    cache: dict[str, tuple[nn.Module, torch.Tensor]] = {}

    def get(name: str) -> tuple[nn.Module, torch.Tensor]:
        if name not in cache:
            cache.clear()  # one model at a time: B7 alone holds 260 MB
            torch.manual_seed(0)
            model = randomise_bn(effnb.create_model(name))
            with torch.inference_mode():
                cache[name] = (model, model(X))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def one_export_per_model():
    """ONNX Runtime and OpenVINO load the same export of a model: export it once per model.

    Only the export is shared (keyed by model name and example shape, over one module-scoped
    model per name); each backend still builds its own session and is checked against eager.
    """
    real = dep.export_onnx
    blobs: dict[tuple, bytes] = {}

    def export_once(net, example, *, exporter="legacy", dynamic=True):
        key = (getattr(net, "name", id(net)), tuple(example.shape), exporter, dynamic)
        if key not in blobs:
            blobs.clear()
            blobs[key] = real(net, example, exporter=exporter, dynamic=dynamic)
        return blobs[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dep, "export_onnx", export_once)
        yield blobs


@pytest.mark.parametrize("backend", dep.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_every_model_on_every_backend_equals_eager(name, backend, zoo, one_export_per_model):
    """Built and checked against eager on X (batch 2, 64 x 32), exported at X's shape."""
    if backend not in ("torch", *RUNTIMES):
        pytest.skip(f"{backend} is not installed (pip install effnb[deploy])")
    model, expected = zoo(name)
    deployed = deploy(model, backend=backend, threads=2, example_input=X)
    assert (deployed.backend, deployed.threads) == (backend, 2)
    assert deployed.folded == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    out = deployed(X)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert_equal_to_eager(out, expected)
    # the call ran the backend, not the eager copy: one runner (a shape-generic trace, or the
    # session exported at X's shape)
    (key, runner) = next(iter(deployed._runners.items()))
    assert len(deployed._runners) == 1 and (backend == "torch" or key == tuple(X.shape))
    kind = {"torch": torch.jit.ScriptModule, **dep._RUNNERS}[backend]
    assert isinstance(runner, kind)


# --- failures raise, never fall back -----------------------------------------------------------

SMALL = "mobilenet_v3_small_minimal"


@needs_runtimes
@pytest.mark.parametrize("backend", RUNTIMES)
def test_the_output_comes_from_the_runtime_and_a_failing_runtime_raises(backend, zoo):
    """One dynamic-shape session serves every shape, and is checked on each new one."""
    model, expected = zoo(SMALL)
    deployed = deploy(model, backend=backend, threads=1, example_input=X, shapes="dynamic")
    assert list(deployed._runners) == [None]
    assert_equal_to_eager(deployed(X), expected)
    real = deployed._runners[None]
    # a runtime that returns other numbers: on a checked shape they are what the call returns
    # (the runtime runs, not the eager copy) ...
    deployed._runners[None] = lambda x: real(x) * 1.5
    torch.testing.assert_close(deployed(X), 1.5 * expected)
    # ... and on a new shape the check against eager catches them
    with pytest.raises(
        BackendError, match=r"gives other outputs than the eager model.*\(1, 3, 32, 40\)"
    ):
        deployed(torch.randn(1, 3, 32, 40))

    def broken(x):
        raise RuntimeError("simulated runtime failure")

    deployed._runners[None] = broken
    with pytest.raises(BackendError, match="simulated runtime failure"):
        deployed(X)
    deployed._runners[None] = real  # nothing else changed: it works again
    assert_equal_to_eager(deployed(X), expected)


@needs_runtimes
@pytest.mark.parametrize("backend", RUNTIMES)
def test_static_shapes_export_once_per_shape_and_check_each(backend, zoo, monkeypatch):
    """shapes="static": a session per input shape, made on first sight and checked against
    eager; at most MAX_RUNNERS kept; a runtime giving other numbers on a new shape raises."""
    model, expected = zoo(SMALL)
    exported = []
    real_export = dep.export_onnx
    monkeypatch.setattr(
        dep,
        "export_onnx",
        lambda net, x, **kw: (
            exported.append((tuple(x.shape), kw["dynamic"])) or real_export(net, x, **kw)
        ),
    )
    monkeypatch.setattr(dep.DeployedModel, "MAX_RUNNERS", 2)
    deployed = deploy(model, backend=backend, threads=1, example_input=X)
    assert deployed.shapes == "static" and "shapes='static'" in repr(deployed)
    assert exported == [(tuple(X.shape), False)] and list(deployed._runners) == [tuple(X.shape)]
    other = torch.randn(1, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        other_expected = model(other)
    assert_equal_to_eager(deployed(other), other_expected)
    assert_equal_to_eager(deployed(X), expected)  # the first session is kept and reused
    assert exported == [(tuple(X.shape), False), ((1, 3, 32, 40), False)]
    assert list(deployed._runners) == [tuple(X.shape), (1, 3, 32, 40)]
    deployed(EXAMPLE)  # a third shape: the oldest session goes, with its check
    assert list(deployed._runners) == [(1, 3, 32, 40), tuple(EXAMPLE.shape)]
    assert {key for key, _ in deployed._verified} == set(deployed._runners)
    assert_equal_to_eager(deployed(X), expected)  # made and checked again
    assert len(exported) == 4 and list(deployed._runners)[-1] == tuple(X.shape)
    runner = dep._RUNNERS[backend]
    real_call = runner.__call__
    monkeypatch.setattr(runner, "__call__", lambda self, x: real_call(self, x) * 1.5)
    with pytest.raises(BackendError, match=r"gives other outputs.*\(1, 3, 64, 64\)"):
        deployed(torch.randn(1, 3, 64, 64))
    assert (1, 3, 64, 64) not in deployed._runners  # a failed session is not kept


def test_shapes_must_be_static_or_dynamic():
    with pytest.raises(
        ValueError, match=r"shapes must be one of \['static', 'dynamic'\], got 'fixed'"
    ):
        deploy(nn.Conv2d(3, 4, 1), backend="torch", shapes="fixed")


@needs_runtimes
@pytest.mark.parametrize("backend", RUNTIMES)
def test_wrong_outputs_or_a_failing_export_fail_deploy(backend, zoo, monkeypatch):
    model, _ = zoo(SMALL)
    runner = dep._RUNNERS[backend]
    real_call = runner.__call__
    monkeypatch.setattr(runner, "__call__", lambda self, x: real_call(self, x) + 0.01)
    with pytest.raises(BackendError, match="gives other outputs than the eager model"):
        deploy(model, backend=backend, example_input=EXAMPLE)
    monkeypatch.setattr(runner, "__call__", real_call)
    monkeypatch.setattr(dep, "export_onnx", REAL_EXPORT)  # no export shared from the grid

    def no_export(*args, **kwargs):
        raise RuntimeError("simulated exporter failure")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    with pytest.raises(BackendError, match="could not export.*simulated exporter failure"):
        deploy(model, backend=backend, example_input=EXAMPLE)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("missing", ["onnx", "runtime"])
def test_a_missing_package_is_named_with_the_pip_command(backend, missing, monkeypatch):
    package = backend if missing == "runtime" else missing
    monkeypatch.setitem(sys.modules, package, None)  # import package -> ModuleNotFoundError
    with pytest.raises(BackendNotInstalledError, match=rf"needs the package '{package}'") as info:
        deploy(nn.Conv2d(3, 4, 1), backend=backend, example_input=torch.randn(1, 3, 8, 8))
    assert isinstance(info.value, ImportError)
    assert "pip install effnb[deploy]" in str(info.value)
    versions = dep.available_backends()
    assert versions[backend] is None and versions["torch"] == torch.__version__


def test_available_backends_reports_versions():
    versions = effnb.deploy.available_backends()  # reachable through the function too
    assert set(versions) == {"torch", "onnxruntime", "openvino"}
    for backend in ("onnxruntime", "openvino"):
        try:
            expected = importlib.metadata.version(backend)
        except importlib.metadata.PackageNotFoundError:
            expected = None
        assert versions[backend] == expected


def test_a_wrong_backend_name_lists_the_choices():
    with pytest.raises(
        ValueError,
        match=r"backend must be one of \['torch', 'onnxruntime', 'openvino'\], got 'tensorrt'",
    ):
        deploy(nn.Conv2d(3, 4, 1), backend="tensorrt")


@needs_runtimes
def test_runtimes_refuse_other_dtypes_and_need_an_example_without_a_native_size():
    with pytest.raises(TypeError, match="runs float32 models; model is torch.float64"):
        deploy(nn.Conv2d(3, 4, 1).double(), backend="onnxruntime")
    with pytest.raises(ValueError, match="pass example_input"):
        deploy(nn.Conv2d(3, 4, 1), backend="openvino")


# --- threads and copies ------------------------------------------------------------------------


@needs_runtimes
def test_sessions_are_configured_for_the_thread_count(zoo):
    model, _ = zoo(SMALL)
    # 1 thread: OpenVINO caps the count at the cores it sees, and 1 differs from the default
    ort_model = deploy(model, backend="onnxruntime", threads=1, example_input=EXAMPLE)
    (ort_runner,) = ort_model._runners.values()
    options = ort_runner.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    ov_model = deploy(model, backend="openvino", threads=1, example_input=EXAMPLE)
    (ov_runner,) = ov_model._runners.values()
    compiled = ov_runner.compiled
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    assert "float32" in str(compiled.get_property("INFERENCE_PRECISION_HINT"))  # no bf16


def test_the_torch_backend_runs_with_its_threads_and_restores_the_callers():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return x * 2

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    deployed = deploy(Probe(), threads=other, jit=None)
    deployed(torch.randn(1, 3, 4, 4))
    assert seen == [other] and torch.get_num_threads() == before and deployed.threads == other


@needs_runtimes
@pytest.mark.parametrize("backend", RUNTIMES)
def test_inputs_are_not_written_and_outputs_are_the_callers(backend, zoo):
    model, expected = zoo(SMALL)
    deployed = deploy(model, backend=backend, example_input=EXAMPLE)
    x = X.clone()
    first = deployed(x)
    first.add_(100.0)  # the caller's tensor: writing it changes no later output
    assert torch.equal(x, X)
    assert_equal_to_eager(deployed(x), expected)


@needs_runtimes
def test_a_runtime_model_is_timed_by_the_harness(zoo):
    model, _ = zoo(SMALL)
    deployed = deploy(model, backend="onnxruntime", threads=1, example_input=EXAMPLE)
    run = effnb.compare_latency(
        {"eager": model, "onnxruntime": deployed},
        32,
        threads=1,
        rounds=2,
        min_run_time=0.01,
        warmup=1,
    )
    assert set(run.records) == {"eager", "onnxruntime"}
    assert run.records["onnxruntime"].median_ms > 0


@needs_runtimes
def test_the_dynamo_exporter_gives_the_same_outputs():
    """``exporter="dynamo"`` (torch.export + ONNX Script) on a small net, other shapes too."""
    torch.manual_seed(0)
    net = randomise_bn(
        nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    )
    x = torch.randn(1, 3, 16, 12)
    deployed = deploy(net, backend="onnxruntime", exporter="dynamo", example_input=x)
    assert deployed.exporter == "dynamo"
    for shape in ((1, 3, 16, 12), (3, 3, 10, 22)):
        y = torch.randn(*shape)
        with torch.inference_mode():
            assert_equal_to_eager(deployed(y), net(y))
