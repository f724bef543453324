"""Checks for notebook 07 (the model zoo, measured)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from effnb.exercises import exercise, expect_function, expect_number


def _bn_case(conv: nn.Conv2d, seed: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """``conv`` with random weights and a BatchNorm whose statistics are far from (0, 1).

    Variances as small as eps make forgetting eps visible; gammas of both signs and means
    away from 0 make every term of the fold count.
    """
    g = torch.Generator().manual_seed(seed)
    c = conv.out_channels
    bn = nn.BatchNorm2d(c, eps=1e-3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
        if conv.bias is not None:
            conv.bias.copy_(torch.randn(c, generator=g))
        bn.weight.copy_(torch.rand(c, generator=g) * 2 - 0.5)  # gamma in [-0.5, 1.5)
        bn.bias.copy_(torch.randn(c, generator=g) * 0.5)
        mean, var = _running_stats(bn)
        mean.copy_(torch.randn(c, generator=g) * 2)
        var.copy_(torch.rand(c, generator=g) * 0.05 + 1e-3)
    return conv.eval(), bn.eval()


def _running_stats(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(running_mean, running_var): the statistics a fold uses (present: track_running_stats)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("folding needs a BatchNorm with running statistics")
    return bn.running_mean, bn.running_var


def _variants(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of the right fold and of the usual wrong ones."""
    w, (mean, var) = conv.weight.detach(), _running_stats(bn)
    gamma, beta = bn.weight.detach(), bn.bias.detach()
    b = conv.bias.detach() if conv.bias is not None else torch.zeros_like(mean)

    def fold(scale: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return w * scale.reshape(-1, 1, 1, 1), bias

    s = gamma / torch.sqrt(var + bn.eps)
    s_no_eps = gamma / torch.sqrt(var)
    s_var_as_std = gamma / (var + bn.eps)
    return {
        "right": fold(s, (b - mean) * s + beta),
        "no eps": fold(s_no_eps, (b - mean) * s_no_eps + beta),
        "var as std": fold(s_var_as_std, (b - mean) * s_var_as_std + beta),
        "mean not scaled": fold(s, b - mean + beta),
        "mean dropped": fold(s, b * s + beta),
        "conv bias dropped": fold(s, -mean * s + beta),
    }


_WHY = {
    "no eps": "you left eps out of sqrt(running_var + eps): BatchNorm divides by "
    "sqrt(var + eps), and with variances near eps (as here) the difference is large",
    "var as std": "you divided by running_var + eps itself: running_var holds a variance, "
    "so the standard deviation BatchNorm divides by is its square root (of var + eps)",
    "mean not scaled": "the mean (and the conv's bias) must be scaled by s too: BatchNorm "
    "computes gamma * (z - mean) / sqrt(var + eps) + beta, so the shift is (b - mean) * s + beta",
    "mean dropped": "the running mean is missing from your bias: BatchNorm subtracts it "
    "before scaling",
    "conv bias dropped": "the conv's own bias b passes through BatchNorm too (this conv has "
    "one): it belongs inside (b - mean) * s",
}


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def _check_fold(fn, conv: nn.Conv2d, bn: nn.BatchNorm2d, what: str) -> None:
    x = torch.randn(2, conv.in_channels, 9, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = bn(conv(x))
    variants = _variants(conv, bn)
    got = fn(copy.deepcopy(conv), copy.deepcopy(bn))
    if not isinstance(got, nn.Conv2d):
        raise AssertionError(f"fold should return an nn.Conv2d, got {type(got).__name__}")
    w_right, b_right = variants["right"]
    if got.weight.shape != w_right.shape:
        raise AssertionError(
            f"{what}: your weight has shape {tuple(got.weight.shape)}, expected "
            f"{tuple(w_right.shape)}: the folded conv keeps the original's shape (groups included)"
        )
    w = got.weight.detach()
    if not _close(w, w_right):
        for name in ("no eps", "var as std"):
            if _close(w, variants[name][0]):
                raise AssertionError(f"{what}: weights off; {_WHY[name]}")
        if _close(w, conv.weight.detach()):
            raise AssertionError(f"{what}: the weights were not scaled; each output filter gets s")
        raise AssertionError(
            f"{what}: the folded weights are wrong: each output channel's filter is the "
            "original filter times that channel's scale s"
        )
    if got.bias is None:
        raise AssertionError(
            f"{what}: your conv has no bias, but BatchNorm's shift has to go somewhere: "
            "the folded conv needs bias=True"
        )
    b = got.bias.detach()
    if not _close(b, b_right):
        for name in ("mean not scaled", "mean dropped", "conv bias dropped"):
            if _close(b, variants[name][1]):
                raise AssertionError(f"{what}: bias off; {_WHY[name]}")
        raise AssertionError(f"{what}: right weights, wrong bias")
    got.eval()
    with torch.no_grad():
        out = got(x)
    if out.shape != want.shape or not torch.allclose(out, want, rtol=1e-4, atol=1e-4):
        raise AssertionError(
            f"{what}: right weight and bias, but the output differs from bn(conv(x)) "
            f"(shape {tuple(out.shape)} vs {tuple(want.shape)}): carry over the conv's stride, "
            "padding, dilation and groups"
        )


@exercise(
    "7.1",
    hint="s = gamma / sqrt(running_var + eps) per output channel; scale each output filter by "
    "s, and build a new conv with the same geometry and a bias that absorbs BatchNorm's shift.",
)
def fold_conv_bn(fn) -> str:
    expect_function(fn, "the function fold(conv, bn)")
    # A dense conv with a rectangular kernel and stride, no bias (ConvNormAct's layout) ...
    conv, bn = _bn_case(nn.Conv2d(6, 10, (3, 5), stride=2, padding=(1, 2), bias=False), seed=0)
    _check_fold(fn, conv, bn, "conv 6->10, kernel 3x5, stride 2, bias=False")
    # ... and a depthwise conv that has a bias of its own.
    conv, bn = _bn_case(nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=True), seed=1)
    _check_fold(fn, conv, bn, "depthwise conv 8->8, kernel 5, bias=True")
    return "same outputs as bn(conv(x)) on a dense and a depthwise conv"


def _mobilenet_v2_counts(size: int) -> tuple[int, int]:
    """(conv+linear MACs by effnb.profile, thop's MACs) of MobileNetV2 at ``size`` px."""
    import thop  # noqa: PLC0415  (test dependency; only needed to name a wrong answer)

    from effnb.costs import profile
    from effnb.models import create_model

    with torch.device("meta"):
        model = create_model("mobilenet_v2").eval()
    macs = profile(model, size).macs
    clone = copy.deepcopy(model)  # thop leaves total_ops buffers in every module
    x = torch.zeros(1, 3, size, size, device="meta")
    thop_macs, _ = thop.profile(clone, inputs=(x,), verbose=False)
    return macs, int(thop_macs)


@exercise(
    "7.2",
    hint="count MobileNetV2 at 160 px with effnb.profile (conv + linear MACs), then convert "
    "the unit: one multiply-accumulate is a multiply and an add.",
)
def mobilenet_v2_flops_160(answer) -> str:
    macs, thop_macs = _mobilenet_v2_counts(160)
    macs_224, _ = _mobilenet_v2_counts(224)
    expect_number(
        answer,
        2 * macs,
        what="FLOPs of MobileNetV2's conv and linear layers at 160 px",
        rel=1e-6,
        wrong={
            macs: "you gave MACs, not FLOPs: one multiply-accumulate counts as two FLOPs",
            thop_macs: "you took thop's number: it is in MACs, not FLOPs, and it adds "
            "BatchNorm (about 4 per element) and pooling to the conv + linear count",
            2 * thop_macs: "you doubled thop's number: right unit, but thop's count includes "
            "BatchNorm and pooling, which the conv + linear FLOPs leave out",
            2 * macs_224: "you counted at 224 px; the question is about 160 px",
            macs_224: "you gave MACs (not FLOPs) at 224 px (not 160 px)",
        },
    )
    return f"{macs / thop_macs:.3f} of thop's count is conv + linear; FLOPs are twice the MACs"
