"""effnb.costs on inputs asymmetric enough to tell a right formula from a wrong one.

Every size, channel count, kernel side and group count below is distinct from the others
(4 -> 6 channels in 2 groups, a 3 x 5 kernel, stride (1, 2), a 7 x 9 input, batch 3), so a
swapped H/W, a dropped group division or a missing batch factor changes the number. Checks are
tested at their boundary: the value at the limit is accepted, the one past it is rejected with
a message that names the argument. (scripts/mutants.py runs mutmut against these.)
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effnb import costs
from effnb._checks import SizeLimitError
from effnb.costs import CostReport, LayerCost


def _torch_out(size, k, stride, padding, dilation):
    conv = nn.Conv2d(1, 1, k, stride, padding, dilation, bias=False)
    return conv(torch.zeros(1, 1, size, size)).shape[-1]


# --- conv2d_output_size --------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, k, stride, padding, dilation",
    [(17, 5, 2, None, 2), (17, 5, 3, 1, 1), (10, 3, 1, None, 3), (9, 7, 2, 0, 1), (3, 3, 1, 0, 1)],
)
def test_conv2d_output_size_matches_pytorch(size, k, stride, padding, dilation):
    pad = (k - 1) // 2 * dilation if padding is None else padding
    expected = _torch_out(size, k, stride, pad, dilation)
    assert costs.conv2d_output_size(size, k, stride, padding, dilation) == expected


def test_conv2d_output_size_defaults_and_boundary():
    assert costs.conv2d_output_size(17, 5) == 17  # stride 1, same padding 2, dilation 1
    assert costs.conv2d_output_size(17, 5, 2) == 9
    assert costs.conv2d_output_size(17, 5, 1, None, 2) == 17  # padding 4 keeps the size
    assert costs.conv2d_output_size(3, 3, padding=0) == 1  # the window just fits
    with pytest.raises(ValueError) as err:
        costs.conv2d_output_size(2, 3, padding=0)  # one pixel short
    assert str(err.value) == (
        "a kernel_size=3 (dilation=1) window does not fit in size=2 with padding=0: "
        "the output would be 0 pixels"
    )
    assert costs.conv2d_output_size(5, 3, padding=0, dilation=2) == 1
    with pytest.raises(ValueError, match="kernel_size=3 \\(dilation=2\\) window .* size=4"):
        costs.conv2d_output_size(4, 3, padding=0, dilation=2)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"size": 0}, ValueError, "size must be an integer >= 1, got 0"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be an integer >= 1, got 0"),
        ({"stride": 0}, ValueError, "stride must be an integer >= 1, got 0"),
        ({"dilation": 0}, ValueError, "dilation must be an integer >= 1, got 0"),
        ({"padding": -1}, ValueError, "padding must be an integer >= 0, got -1"),
        ({"size": 2.0}, TypeError, "size must be an integer"),
    ],
)
def test_conv2d_output_size_names_the_argument(kwargs, exc, msg):
    args = {"size": 9, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 1} | kwargs
    with pytest.raises(exc, match=msg):
        costs.conv2d_output_size(**args)


def test_conv2d_output_size_accepts_zero_padding_and_returns_ints():
    out = costs.conv2d_output_size(9, 3, 2, 0, 1)
    assert out == 4 and type(out) is int


# --- conv2d_params / conv2d_macs -----------------------------------------------------------


def test_conv2d_params_grouped_with_bias_equals_pytorch():
    conv = nn.Conv2d(6, 12, 5, groups=3, bias=True)
    assert costs.conv2d_params(6, 12, 5, 3, True) == sum(p.numel() for p in conv.parameters())
    assert costs.conv2d_params(6, 12, 5, groups=3) == 25 * 2 * 12  # bias defaults to False
    assert costs.conv2d_params(6, 12, 5) == 25 * 6 * 12  # groups defaults to 1
    assert costs.conv2d_params(6, 6, 3, groups=6, bias=True) == 9 * 6 + 6  # depthwise


@pytest.mark.parametrize("c_in, c_out", [(6, 8), (8, 6)])
def test_conv2d_params_groups_must_divide_both_channel_counts(c_in, c_out):
    with pytest.raises(ValueError) as err:
        costs.conv2d_params(c_in, c_out, 3, groups=3)
    assert str(err.value) == f"groups=3 must divide c_in={c_in} and c_out={c_out}"


@pytest.mark.parametrize(
    "args, msg",
    [
        ((0, 4, 3), "c_in must be an integer >= 1, got 0"),
        ((4, 0, 3), "c_out must be an integer >= 1, got 0"),
        ((4, 4, 0), "kernel_size must be an integer >= 1, got 0"),
        ((4, 4, 3, 0), "groups must be an integer >= 1, got 0"),
    ],
)
def test_conv2d_params_names_the_argument(args, msg):
    with pytest.raises(ValueError, match=msg):
        costs.conv2d_params(*args)
    assert costs.conv2d_params(1, 1, 1, 1) == 1  # every minimum is accepted


def test_conv2d_params_bias_must_be_bool():
    with pytest.raises(TypeError, match="bias must be True or False, got 1"):
        costs.conv2d_params(4, 4, 3, 1, 1)


def test_conv2d_macs_non_square_output_and_groups():
    # 3 x 3 grouped conv, 6 -> 12 channels in 3 groups, on a 5 x 7 output
    assert costs.conv2d_macs(6, 12, 3, 5, 7, groups=3) == 9 * 2 * 12 * 5 * 7
    assert costs.conv2d_macs(6, 12, 3, 5) == 9 * 6 * 12 * 5 * 5  # w_out defaults to h_out
    conv = nn.Conv2d(6, 12, 3, padding=1, groups=3, bias=True)
    report = costs.profile(conv, (6, 5, 7))
    assert costs.conv2d_macs(6, 12, 3, 5, 7, 3) == report.macs  # the bias adds no MACs
    with pytest.raises(ValueError, match="w_out must be an integer >= 1, got 0"):
        costs.conv2d_macs(6, 12, 3, 5, 0)
    with pytest.raises(ValueError, match="h_out must be an integer >= 1, got 0"):
        costs.conv2d_macs(6, 12, 3, 0, 5)


# --- linear, depthwise separable, SE, reduction factor -------------------------------------


def test_linear_params_and_macs():
    assert costs.linear_params(3, 5) == 3 * 5 + 5  # bias defaults to True
    assert costs.linear_params(3, 5, bias=False) == 15
    assert costs.linear_params(3, 5, True) == sum(p.numel() for p in nn.Linear(3, 5).parameters())
    assert costs.linear_macs(3, 5) == 15
    assert costs.linear_macs(3, 5, batch=7) == 105
    for call, msg in [
        (lambda: costs.linear_params(0, 5), "in_features must be an integer >= 1, got 0"),
        (lambda: costs.linear_params(3, 0), "out_features must be an integer >= 1, got 0"),
        (lambda: costs.linear_macs(0, 5), "in_features must be an integer >= 1, got 0"),
        (lambda: costs.linear_macs(3, 0), "out_features must be an integer >= 1, got 0"),
        (lambda: costs.linear_macs(3, 5, 0), "batch must be an integer >= 1, got 0"),
    ]:
        with pytest.raises(ValueError, match=msg):
            call()
    with pytest.raises(TypeError, match="bias must be True or False"):
        costs.linear_params(3, 5, bias="no")
    assert costs.linear_params(1, 1) == 2 and costs.linear_macs(1, 1, 1) == 1


def test_depthwise_separable_params_and_macs():
    assert costs.depthwise_separable_params(6, 10, 5) == 25 * 6 + 6 * 10
    assert costs.depthwise_separable_params(6, 10) == 9 * 6 + 6 * 10  # kernel 3 by default
    assert costs.depthwise_separable_macs(6, 10, 5, 4, 7) == (25 * 6 + 60) * 4 * 7
    assert costs.depthwise_separable_macs(6, 10, 5, 4) == (25 * 6 + 60) * 16
    for call, msg in [
        (lambda: costs.depthwise_separable_params(0, 10), "c_in must be an integer >= 1"),
        (lambda: costs.depthwise_separable_params(6, 0), "c_out must be an integer >= 1"),
        (lambda: costs.depthwise_separable_params(6, 10, 0), "kernel_size must be an integer"),
        (lambda: costs.depthwise_separable_macs(6, 10, 3, 0), "h_out must be an integer >= 1"),
        (lambda: costs.depthwise_separable_macs(6, 10, 3, 4, 0), "w_out must be an integer"),
    ]:
        with pytest.raises(ValueError, match=msg):
            call()


def test_se_params_and_macs():
    assert costs.se_params(12, 5) == 2 * 12 * 5 + 5 + 12
    assert costs.se_params(12, 5, bias=False) == 120
    assert costs.se_params(12, 0) == 12  # no squeeze channels: only the expand bias
    assert costs.se_macs(12, 5) == 120
    assert costs.se_macs(12, 0) == 0
    with pytest.raises(ValueError, match="channels must be an integer >= 1, got 0"):
        costs.se_params(0, 5)
    with pytest.raises(ValueError, match="channels must be an integer >= 1, got 0"):
        costs.se_macs(0, 5)
    with pytest.raises(ValueError, match="squeeze_channels must be an integer >= 0, got -1"):
        costs.se_params(12, -1)
    with pytest.raises(TypeError, match="bias must be True or False"):
        costs.se_params(12, 5, bias=None)


def test_reduction_factor_values_and_checks():
    assert costs.reduction_factor(10, 5) == pytest.approx(10 * 25 / 35)
    assert costs.reduction_factor(10) == pytest.approx(10 * 9 / 19)  # kernel 3 by default
    assert costs.reduction_factor(1, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="kernel_size must be an odd integer"):
        costs.reduction_factor(10, 2)
    with pytest.raises(ValueError, match="c_out must be an integer >= 1, got 0"):
        costs.reduction_factor(0, 3)


# --- profile on a small asymmetric model --------------------------------------------------


class Toy(nn.Module):
    """4 -> 6 channels, a 3 x 5 grouped conv with stride (1, 2), BN, in-place ReLU, pool, FC."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, (3, 5), stride=(1, 2), padding=(1, 2), groups=2, bias=True)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)
        self.unused = nn.Linear(2, 3)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


F32 = 4
CONV_OUT = 3 * 6 * 7 * 5  # batch 3, 6 channels, 7 x 5 (H: (7+2-3)+1, W: (9+4-5)//2+1)


def test_profile_counts_each_layer_of_an_asymmetric_model():
    model = Toy().train()
    report = costs.profile(model, (4, 7, 9), batch=3)
    assert report.input_shape == (3, 4, 7, 9)
    assert report.model == "Toy" and report.dtype == "float32" and report.count_bn is False
    rows = {layer.name: layer for layer in report.layers}
    assert list(rows) == ["conv", "bn", "relu", "pool", "fc", "unused"]
    conv = rows["conv"]
    assert conv.type == "Conv2d"
    assert conv.input_shape == (3, 4, 7, 9) and conv.output_shape == (3, 6, 7, 5)
    assert conv.params == 6 * 2 * 15 + 6
    assert conv.macs == 3 * 5 * (4 // 2) * CONV_OUT
    assert conv.activation_bytes == CONV_OUT * F32
    assert conv.flops == 2 * conv.macs
    assert rows["bn"].macs == 0 and rows["bn"].params == 12
    assert rows["relu"].activation_bytes == 0  # in place
    assert rows["pool"].output_shape == (3, 6, 1, 1) and rows["pool"].macs == 0
    assert rows["fc"].macs == 6 * 3 * 5 and rows["fc"].params == 35
    assert rows["fc"].activation_bytes == 15 * F32
    unused = rows["unused"]
    assert unused.type == "Linear (not called)" and unused.params == 9 and unused.macs == 0
    assert unused.input_shape == () == unused.output_shape and unused.activation_bytes == 0
    assert report.params == sum(p.numel() for p in model.parameters()) == 186 + 12 + 35 + 9
    assert report.macs == 3 * 5 * 2 * CONV_OUT + 90
    assert report.flops == 2 * report.macs
    assert report.activation_bytes == (2 * CONV_OUT + 18 + 15) * F32
    # the conv: its input (3*4*7*9) and its output are both alive
    assert report.peak_activation_bytes == (3 * 4 * 7 * 9 + CONV_OUT) * F32
    assert model.training  # restored after the eval-mode forward
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed
    assert torch.equal(model.bn.running_mean, torch.zeros(6))  # profiled in eval mode


def test_profile_count_bn_and_dtype():
    report = costs.profile(Toy(), (4, 7, 9), batch=3, count_bn=True)
    assert report.count_bn is True
    assert report.macs == 3 * 5 * 2 * CONV_OUT + 90 + CONV_OUT
    assert [layer.macs for layer in report.layers if layer.type == "BatchNorm2d"] == [CONV_OUT]
    double = costs.profile(Toy().double(), (4, 7, 9), batch=3)
    assert double.dtype == "float64"
    assert double.peak_activation_bytes == (3 * 4 * 7 * 9 + CONV_OUT) * 8
    assert double.activation_bytes == (2 * CONV_OUT + 18 + 15) * 8


def test_profile_restores_eval_mode_too():
    model = Toy().eval()
    costs.profile(model, (4, 7, 9))
    assert not model.training


def test_a_module_called_twice_counts_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)

        def forward(self, x):
            return self.conv(self.conv(x))

    report = costs.profile(Twice(), (3, 5, 6))
    assert [layer.params for layer in report.layers] == [81, 0]
    assert [layer.macs for layer in report.layers] == [81 * 30, 81 * 30]


def test_profile_names_labels_and_input_resolution():
    leaf = costs.profile(nn.Conv2d(3, 2, 1), 6)
    assert leaf.layers[0].name == "Conv2d"  # the root module has no name of its own
    assert leaf.input_shape == (1, 3, 6, 6)  # in_chans defaults to 3 ...

    class Named(nn.Module):
        in_chans = 5
        default_input_size = (5, 4, 7)
        name = "toy-net"

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(5, 2, 1)

        def forward(self, x):
            return self.conv(x)

    assert costs.profile(Named(), 6).input_shape == (1, 5, 6, 6)  # ... or the model's in_chans
    assert costs.profile(Named(), (3, 4)).input_shape == (1, 5, 3, 4)
    report = costs.profile(Named())
    assert report.input_shape == (1, 5, 4, 7) and report.model == "toy-net"
    with pytest.raises(ValueError) as err:
        costs.profile(nn.Conv2d(3, 3, 1))
    assert str(err.value) == "input_size is required for a Conv2d: give (C, H, W) or an int"
    with pytest.raises(TypeError, match="count_bn must be True or False"):
        costs.profile(Named(), count_bn=1)


def test_profile_of_a_deployed_wrapper_uses_its_shape_model():
    inner = Toy()

    class Deployed(nn.Module):
        name = "deployed-toy"

        def __init__(self):
            super().__init__()

        def shape_model(self):
            return inner

        def forward(self, x):  # a trace would run no hooks
            raise AssertionError("profile must run the eager copy")

    report = costs.profile(Deployed(), (4, 7, 9), batch=3)
    assert report.model == "deployed-toy"
    assert report.macs == 3 * 5 * 2 * CONV_OUT + 90


def test_non_tensor_inputs_and_outputs():
    class Pair(nn.Module):
        def forward(self, x):
            return (x, x)

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, *, x=None):  # called with a keyword: no positional tensor
            return x * self.w

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair, self.scale = Pair(), Scale()

        def forward(self, x):
            a, _ = self.pair(x)
            return self.scale(x=a)

    report = costs.profile(Net(), (3, 2, 5))
    assert [(layer.name, layer.input_shape) for layer in report.layers] == [("scale", ())]
    assert report.layers[0].activation_bytes == 30 * F32  # no input: new storage


# --- the report ---------------------------------------------------------------------------


def _report() -> CostReport:
    layers = (
        LayerCost("a.conv", "Conv2d", (1, 2, 4, 4), (1, 3, 4, 4), 54, 864, 192),
        LayerCost("a.bn", "BatchNorm2d", (1, 3, 4, 4), (1, 3, 4, 4), 6, 0, 192),
        LayerCost("b.conv", "Conv2d", (1, 3, 4, 4), (1, 5, 2, 2), 135, 540, 80),
        LayerCost("fc", "Linear", (1, 5), (1, 7), 42, 35, 28),
    )
    return CostReport("toy", (1, 2, 4, 4), layers)


def test_report_totals_and_by_type():
    report = _report()
    assert (report.params, report.macs, report.flops) == (237, 1439, 2878)
    assert report.activation_bytes == 492
    assert report.peak_activation_bytes == 48 * 4 + 192  # a.bn: 48 elements in, 192 B out
    assert report.by_type() == {
        "Conv2d": {"count": 2, "params": 189, "macs": 1404},
        "BatchNorm2d": {"count": 1, "params": 6, "macs": 0},
        "Linear": {"count": 1, "params": 42, "macs": 35},
    }
    assert CostReport("empty", (1,), ()).peak_activation_bytes == 0
    half = CostReport("toy", (1, 2, 4, 4), report.layers, dtype="float16")
    assert half.peak_activation_bytes == 48 * 2 + 192


def test_report_table_text():
    report = _report()
    lines = report.table().splitlines()
    head = (
        f"{'layer':44s} {'type':14s} {'output':>18s} {'params':>11s} {'MACs':>14s} {'act. KiB':>9s}"
    )
    assert lines[0] == head and lines[1] == "-" * len(head) == lines[-3]
    assert (
        lines[2]
        == f"{'a.conv':44s} {'Conv2d':14s} {'1x3x4x4':>18s} {54:>11,} {864:>14,} {0.1875:>9.1f}"
    )
    assert len(lines) == 4 + 4 + 1
    assert (
        lines[-2] == f"{'total':44s} {'':14s} {'':>18s} {237:>11,} {1439:>14,} {492 / 1024:>9.1f}"
    )
    assert lines[-1] == "MACs = multiply-accumulates (conv + linear); FLOPs = 2 x MACs = 2,878"
    convs = report.table("Conv2d").splitlines()
    assert [line.split()[0] for line in convs[2:4]] == ["a.conv", "b.conv"] and len(convs) == 7
    assert len(report.table(["Linear", "BatchNorm2d"]).splitlines()) == 7
    short = report.table(max_rows=1).splitlines()
    assert short[2].startswith("a.conv") and short[3] == "... 3 more rows" and len(short) == 7
    assert report.table(max_rows=0).splitlines()[2] == "... 4 more rows"
    assert "more rows" not in report.table(max_rows=4)
    long_name = LayerCost("x" * 50 + "tail", "Linear", (1,), (1, 2), 1, 1, 1)
    row = CostReport("t", (1,), (long_name,)).table().splitlines()[2]
    assert row.startswith("x" * 40 + "tail ")  # the last 44 characters of a long name


def test_report_str():
    report = costs.profile(nn.Conv2d(3, 64, 3, bias=False), (3, 100, 100))
    assert str(report) == (
        "Conv2d @ 1x3x100x100: 1,728 params, 16.6M MACs (33.2M FLOPs), 2.3 MiB of activations"
    )


# --- what the first mutation run left alive (scripts/mutants.py) ---------------------------


def test_counts_are_ints():
    assert type(costs.conv2d_params(6, 12, 3, 3)) is int
    report = costs.profile(Toy(), (4, 7, 9), batch=3)
    assert all(type(layer.macs) is int for layer in report.layers)
    assert costs._bytes_of((2, 3, 5)) == 120  # float32 by default
    assert costs._bytes_of((2, 3, 5), 2) == 60


def test_a_model_on_the_meta_device_is_profiled_there():
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    report = costs.profile(model, (3, 8, 8))
    assert report.macs == 4 * 27 * 6 * 6 and report.params == 4 * 27 + 4


def test_input_checks_use_the_models_dtype_and_the_batch(monkeypatch):
    # the input: 3 x 8 x 8 = 192 elements a sample
    monkeypatch.setenv("EFFNB_MAX_BYTES", "1100")
    costs.profile(nn.Conv2d(3, 1, 1), (3, 8, 8))  # 768 B of float32 input (+ 256 out) fits
    with pytest.raises(SizeLimitError, match=r"^input_size=\(3, 8, 8\) would need 1\.5 KiB"):
        costs.profile(nn.Conv2d(3, 1, 1).double(), (3, 8, 8))  # 1536 B of float64
    with pytest.raises(SizeLimitError, match=r"^input_size=\(3, 8, 8\) would need 1\.5 KiB"):
        costs.profile(nn.Conv2d(3, 1, 1), (3, 8, 8), batch=2)


def test_forward_check_uses_the_models_dtype(monkeypatch):
    # Conv2d(3, 4, 1) on 3 x 8 x 8: input + output = 7 x 64 elements, 1792 B in float32
    monkeypatch.setenv("EFFNB_MAX_BYTES", "3000")
    assert costs.profile(nn.Conv2d(3, 4, 1), (3, 8, 8)).macs == 3 * 4 * 64
    with pytest.raises(SizeLimitError, match=r"would need 3\.5 KiB for one layer's input"):
        costs.profile(nn.Conv2d(3, 4, 1).double(), (3, 8, 8))


def test_str_and_table_rounding_boundaries():
    def report(macs: int, act: int) -> CostReport:
        return CostReport("m", (1, 3, 4, 4), (LayerCost("c", "Conv2d", (1,), (1,), 1, macs, act),))

    # 16.65001M MACs and 10292 B = 10.05 KiB: one decimal tells 1e6 from 1e6 + 1, 1024 from 1025
    r = report(16_650_010, 10_292)
    assert "16.7M MACs (33.3M FLOPs)" in str(r)
    assert str(report(8_325_005, 0)).endswith("8.3M MACs (16.7M FLOPs), 0.0 MiB of activations")
    lines = r.table().splitlines()
    assert lines[2].endswith("    10.1") and lines[-2].endswith("    10.1")
    assert str(report(1, 3 * 2**20 + 2**19)).endswith("3.5 MiB of activations")


def test_a_model_without_parameters_runs_on_the_cpu():
    report = costs.profile(nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1)), (3, 4, 5))
    assert report.params == 0 and report.macs == 0
    assert [layer.type for layer in report.layers] == ["ReLU", "AdaptiveAvgPool2d"]
    assert report.layers[1].output_shape == (1, 3, 1, 1)


def test_the_input_is_made_on_the_models_device():
    model = Toy()
    expected = costs.profile(model, (4, 7, 9), batch=3)
    with torch.device("meta"):  # another default device must not move the profiled input
        report = costs.profile(model, (4, 7, 9), batch=3)
    assert report.activation_bytes == expected.activation_bytes == (2 * CONV_OUT + 18 + 15) * F32
