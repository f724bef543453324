"""effnb.deploy: a trace that would differ from eager raises (no fallback to eager), a bad call
changes nothing, deploying twice is quiet, and half/double models deploy in their dtype."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import effnb
from effnb.deploy import BackendError, DeployedModel, deploy


class DataDependent(nn.Module):
    """Control flow on the data: a trace freezes whichever branch its input took."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.a(x) if x.mean() > 0 else self.b(x)


class ShapeDependent(nn.Module):
    """Control flow on the shape: fine for the traced size, wrong for others."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y * 2 if x.shape[-1] > 8 else y


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def _traces(deployed: DeployedModel) -> dict:
    return dict(deployed._runners)


def test_data_dependent_control_flow_raises_instead_of_falling_back():
    model = DataDependent().eval()
    x = torch.rand(2, 3, 8, 8)  # mean > 0: traces branch a, wrong for -x
    with pytest.raises(BackendError, match=r"gives other outputs than the eager model.*jit=None"):
        deploy(model, example_input=x)
    deployed = deploy(model)  # no native size: traced on the first call
    for _ in range(2):  # a failed call changes nothing: the next one fails the same way
        with pytest.raises(BackendError, match="on the negated input"):
            deployed(x)
        assert deployed.jit == "freeze" and _traces(deployed) == {}
    eager = _quiet(deploy, model, jit=None)  # the explicit way to run such a model
    for inp in (x, -x):
        with torch.inference_mode():
            torch.testing.assert_close(_quiet(eager, inp), model(inp))


def test_shape_dependent_control_flow_gets_a_trace_for_that_shape():
    model = ShapeDependent().eval()
    small, large = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 16, 16)
    deployed = deploy(model, example_input=small)
    assert deployed.jit == "freeze"
    out = _quiet(deployed, large)  # the small trace is wrong here: traced again for this shape
    with torch.inference_mode():
        torch.testing.assert_close(out, model(large))
        torch.testing.assert_close(_quiet(deployed, small), model(small))
    keys = {key[2] for key in _traces(deployed)}
    assert keys == {None, (1, 3, 16, 16)}  # the generic trace and one for the large shape


def test_a_model_that_cannot_be_traced_raises():
    class TupleWithText(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return self.conv(x), "label"  # a trace outputs tensors only

    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(BackendError, match="cannot trace this model.*jit=None"):
        deploy(TupleWithText().eval(), example_input=x)
    out, label = _quiet(deploy, TupleWithText().eval(), jit=None)(x)
    assert label == "label" and out.shape == (1, 4, 4, 4)


def test_a_faithful_trace_is_kept_and_quiet():
    model = effnb.create_model("mobilenet_v3_small", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    deployed = _quiet(deploy, model)
    out = _quiet(deployed, x)
    assert deployed.jit == "freeze"
    assert all(isinstance(t, torch.jit.ScriptModule) for t in _traces(deployed).values())
    with torch.inference_mode():
        torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-4)


def test_a_bad_call_does_not_change_the_mode():
    model = effnb.create_model("mobilenet_v3_small", num_classes=10).eval()
    deployed = deploy(model, example_input=torch.randn(1, 3, 32, 32))
    traces = _traces(deployed)
    bad = [
        (torch.randn(1, 3, 8, 8), ValueError, "expects input of shape"),
        (torch.randn(1, 1, 32, 32), ValueError, "expects input of shape"),
        (torch.randn(1, 3, 32, 32, dtype=torch.float64), TypeError, "deployed in torch.float32"),
        ([1.0], TypeError, "takes a torch.Tensor, got list"),
    ]
    for x, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            deployed(x)
        assert deployed.jit == "freeze" and _traces(deployed) == traces
    _quiet(deployed, torch.randn(1, 3, 32, 32))
    assert _traces(deployed) == traces


def test_an_input_the_model_itself_rejects_keeps_the_trace_mode():
    """The trace fails on an input the eager model fails on too: that is the input's fault."""

    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            if x.shape[0] > 4:
                raise ValueError("Picky takes at most 4 samples")
            return self.conv(x)

    deployed = deploy(Picky().eval())
    with pytest.raises(ValueError, match="at most 4 samples"):
        deployed(torch.randn(5, 3, 4, 4))
    assert deployed.jit == "freeze" and _traces(deployed) == {}
    _quiet(deployed, torch.randn(2, 3, 4, 4))
    assert len(_traces(deployed)) == 1


def test_deploying_twice_is_quiet_and_equal():
    model = effnb.create_model("shufflenet_v2_x0_5", num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    once = _quiet(lambda: deploy(model, example_input=x))
    twice = _quiet(lambda: deploy(once, example_input=x))
    assert isinstance(twice.model, nn.Module) and not isinstance(twice.model, DeployedModel)
    assert (twice.folded, twice.replaced) == (once.folded, once.replaced)
    torch.testing.assert_close(_quiet(twice, x), _quiet(once, x), rtol=1e-5, atol=1e-5)
    eager = _quiet(lambda: deploy(once, jit=None))
    assert eager.jit is None
    torch.testing.assert_close(_quiet(eager, x), _quiet(once, x), rtol=1e-5, atol=1e-5)


def test_deployed_models_do_not_train():
    deployed = deploy(nn.Sequential(nn.Conv2d(3, 4, 1)))
    assert not deployed.training
    with pytest.raises(RuntimeError, match="only runs inference"):
        deployed.train()
    deployed.eval()  # allowed


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_half_and_double_models_deploy_in_their_dtype(dtype):
    model = effnb.create_model("mobilenet_v3_small", num_classes=10).eval().to(dtype)
    x = torch.randn(1, 3, 32, 32, dtype=dtype)
    deployed = deploy(model, jit=None)
    out = deployed(x)
    assert out.dtype == dtype
    with pytest.raises(TypeError, match=f"deployed in {dtype} but x is torch.float32"):
        deployed(x.float())
    report = effnb.profile(deployed, 32)
    assert report.dtype == str(dtype).removeprefix("torch.")


def test_converting_a_deployed_model_retraces_for_the_new_dtype():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).eval()
    deployed = deploy(model)
    deployed(torch.randn(1, 3, 4, 4))
    deployed.double()
    out = _quiet(deployed, torch.randn(1, 3, 4, 4, dtype=torch.float64))
    assert out.dtype == torch.float64


def test_mixed_dtype_model_and_bad_flags_are_refused():
    mixed = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1).half())
    with pytest.raises(TypeError, match="model mixes floating dtypes"):
        deploy(mixed)
    for flag in ("fold_bn", "channels_last", "replace_blocks", "compile"):
        with pytest.raises(TypeError, match=f"{flag} must be True or False"):
            deploy(nn.Conv2d(1, 1, 1), **{flag: "yes"})
    with pytest.raises(
        ValueError, match=r"exporter must be one of \['dynamo', 'legacy'\], got 'tf'"
    ):
        deploy(nn.Conv2d(1, 1, 1), exporter="tf")
    with pytest.raises(ValueError, match="threads must be an integer >= 1, got 0"):
        deploy(nn.Conv2d(1, 1, 1), threads=0)


def test_profile_of_a_deployed_model_counts_its_layers():
    """The trace runs no hooks: profile and estimate_peak_bytes use the eager copy."""
    from effnb.memory import estimate_peak_bytes

    model = effnb.create_model("mobilenet_v3_small", num_classes=10).eval()
    deployed = deploy(model, example_input=torch.randn(1, 3, 32, 32))
    assert effnb.profile(deployed, 32).macs == effnb.profile(model, 32).macs
    assert estimate_peak_bytes(deployed, torch.randn(1, 3, 32, 32)) > 0


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda bn: bn.running_var.fill_(-1.0),  # var + eps < 0: sqrt of a negative
        lambda bn: bn.running_mean.fill_(float("nan")),
        lambda bn: bn.weight.data.fill_(float("inf")),
    ],
)
def test_folding_refuses_statistics_that_would_write_nan(corrupt):
    from effnb.deploy import fuse_conv_bn

    conv, bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        corrupt(bn)
    with pytest.raises(ValueError, match=r"bn's statistics give no finite scale in channels \["):
        fuse_conv_bn(conv, bn)


def test_shuffle_concat_checks_its_inputs():
    from effnb.deploy import shuffle_concat

    with pytest.raises(ValueError, match=r"got \(1, 2, 4, 4\) and \(1, 3, 4, 4\)"):
        shuffle_concat(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(TypeError, match="two tensors"):
        shuffle_concat(torch.zeros(1, 2, 4, 4), None)


def test_block_replacements_are_for_the_torch_backend_unless_asked():
    model = effnb.create_model("shufflenet_v2_x0_5", small_input=True).eval()
    units = sum(type(m).__name__ == "ShuffleUnit" for m in model.modules())
    assert effnb.deploy(model, backend="torch", jit=None).replaced == units > 0
    assert effnb.deploy(model, backend="onnxruntime").replaced == 0
    asked = effnb.deploy(model, backend="onnxruntime", replace_blocks=True)
    assert asked.replaced == units
    with pytest.raises(TypeError, match="replace_blocks"):
        effnb.deploy(model, backend="openvino", replace_blocks="yes")
