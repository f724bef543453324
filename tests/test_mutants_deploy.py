"""BatchNorm folding (effnb.deploy.fuse_conv_bn, fold_batchnorm) on a grouped, strided, dilated,
non-square conv with distinct statistics in every channel: the fused conv must equal bn(conv(x))
and keep every attribute of the conv; each refusal names what is wrong. (scripts/mutants.py
runs mutmut against these.)"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from effnb.deploy import fold_batchnorm, fuse_conv_bn
from effnb.layers import ConvNormAct


def raises(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def _bn(channels: int, seed: int = 0, **kwargs) -> nn.BatchNorm2d:
    gen = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, eps=0.01, **kwargs)
    bn.running_mean.copy_(torch.randn(channels, generator=gen))
    bn.running_var.copy_(torch.rand(channels, generator=gen) + 0.1)
    if bn.weight is not None:
        bn.weight.data.copy_(torch.randn(channels, generator=gen))
        bn.bias.data.copy_(torch.randn(channels, generator=gen))
    return bn.eval()


def _conv(bias: bool = True, padding_mode: str = "zeros", dtype=torch.float32) -> nn.Conv2d:
    torch.manual_seed(1)
    return nn.Conv2d(
        6, 9, (3, 5), (2, 1), (1, 2), (1, 2), groups=3, bias=bias, padding_mode=padding_mode
    ).to(dtype)


X = torch.randn(2, 6, 9, 11, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("bias", [True, False])
def test_fused_conv_equals_bn_of_conv(bias):
    conv, bn = _conv(bias), _bn(9)
    fused = fuse_conv_bn(conv, bn)
    assert torch.allclose(fused(X), bn(conv(X)), atol=1e-5)
    assert (fused.in_channels, fused.out_channels, fused.kernel_size) == (6, 9, (3, 5))
    assert fused.stride == (2, 1) and fused.padding == (1, 2) and fused.dilation == (1, 2)
    assert fused.groups == 3 and fused.padding_mode == "zeros" and fused.bias is not None
    scale = bn.weight / torch.sqrt(bn.running_var + 0.01)
    assert torch.allclose(fused.weight, conv.weight * scale[:, None, None, None])
    b = conv.bias if bias else torch.zeros(9)
    assert torch.allclose(fused.bias, (b - bn.running_mean) * scale + bn.bias)
    assert not fused.weight.requires_grad or fused.weight.grad_fn is None


def test_without_affine_parameters_and_other_padding_and_dtype():
    conv, bn = _conv(padding_mode="reflect", dtype=torch.float64), _bn(9, affine=False).double()
    fused = fuse_conv_bn(conv, bn)
    assert fused.padding_mode == "reflect" and fused.weight.dtype == torch.float64
    x = X.double()
    assert torch.allclose(fused(x), bn(conv(x)), atol=1e-10)
    scale = 1 / torch.sqrt(bn.running_var + 0.01)
    assert torch.allclose(fused.bias, (conv.bias - bn.running_mean) * scale)


def test_refusals_name_the_problem():
    conv = _conv()
    with raises(TypeError, "conv must be an nn.Conv2d, got Linear"):
        fuse_conv_bn(nn.Linear(2, 2), _bn(9))
    with raises(TypeError, "bn must be an nn.BatchNorm2d, got BatchNorm1d"):
        fuse_conv_bn(conv, nn.BatchNorm1d(9))
    with raises(ValueError, "bn.num_features=8 does not match conv.out_channels=9"):
        fuse_conv_bn(conv, _bn(8))
    with raises(
        ValueError,
        "bn has no running statistics (track_running_stats=False): it normalises with batch "
        "statistics even in eval mode and cannot be folded into a convolution",
    ):
        fuse_conv_bn(conv, nn.BatchNorm2d(9, track_running_stats=False))


@pytest.mark.parametrize(
    "field, value",
    [("running_var", -1.0), ("running_mean", float("nan")), ("bias", float("inf"))],
)
def test_non_finite_statistics_are_refused(field, value):
    bn = _bn(9)
    getattr(bn, field).data[4] = value
    bn.running_var.data[7] = -0.01  # + eps = 0: an infinite scale
    message = (
        "bn's statistics give no finite scale in channels [4, 7] (running_var + eps <= 0, or "
        "NaN/inf in the running statistics or affine parameters): folding would write NaN into "
        "the conv's weights"
    )
    with raises(ValueError, message):
        fuse_conv_bn(_conv(), bn)


def test_only_the_first_ten_bad_channels_are_listed():
    bn = _bn(12)
    bn.running_var.data[:] = -1.0
    conv = nn.Conv2d(3, 12, 1)
    with pytest.raises(ValueError, match=r"in channels \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] \("):
        fuse_conv_bn(conv, bn)


def test_fold_batchnorm_in_blocks_and_sequentials():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = ConvNormAct(6, 9, 3, groups=3, act_layer="relu")
            self.seq = nn.Sequential(
                nn.Conv2d(9, 5, 1), _bn(5, seed=3), nn.ReLU(), nn.Conv2d(5, 4, 1)
            )
            self.lone_bn = nn.Sequential(nn.ReLU(), _bn(4, seed=4))  # follows no conv
            self.plain = ConvNormAct(4, 4, 1, norm_layer=None)  # nothing to fold

        def forward(self, x):
            return self.plain(self.lone_bn(self.seq(self.block(x))))

    net = Net()
    net.block.bn = _bn(9, seed=5)
    net.eval()
    want = net(X)
    assert fold_batchnorm(net) == 2
    assert type(net.block.bn) is nn.Identity and type(net.seq[1]) is nn.Identity
    assert type(net.lone_bn[1]) is nn.BatchNorm2d and type(net.seq[3]) is nn.Conv2d
    assert net.block.conv.groups == 3 and net.block.conv.bias is not None
    assert torch.allclose(net(X), want, atol=1e-5)
    assert fold_batchnorm(net) == 0  # nothing left
    with raises(TypeError, "module must be a torch.nn.Module, got str"):
        fold_batchnorm("net")


def test_fold_batchnorm_pairs_only_adjacent_conv_then_bn():
    seq = nn.Sequential(_bn(3), nn.Conv2d(3, 3, 1), nn.ReLU(), _bn(3, seed=1), nn.Conv2d(3, 3, 1))
    assert fold_batchnorm(seq) == 0
    two = nn.Sequential(nn.Conv2d(3, 4, 1), _bn(4), nn.Conv2d(4, 2, 1), _bn(2, seed=1))
    x = X[:, :3]
    want = two(x)
    assert fold_batchnorm(two) == 2
    assert [type(m) for m in two] == [nn.Conv2d, nn.Identity, nn.Conv2d, nn.Identity]
    assert torch.allclose(two(x), want, atol=1e-5)
    block = ConvNormAct(3, 4, 1)
    block.bn = nn.GroupNorm(2, 4)
    assert fold_batchnorm(block) == 0


def test_the_fused_conv_lives_where_the_conv_lives():
    conv, bn = _conv(), _bn(9)
    with torch.device("meta"):  # a default device elsewhere must not move the result
        fused = fuse_conv_bn(conv, bn)
    assert fused.weight.device.type == "cpu" and fused.bias.device.type == "cpu"
    assert torch.allclose(fused(X), bn(conv(X)), atol=1e-5)


def test_one_missing_running_statistic_is_refused():
    bn = _bn(9)
    bn.running_var = None
    with pytest.raises(ValueError, match=r"^bn has no running statistics"):
        fuse_conv_bn(_conv(), bn)
