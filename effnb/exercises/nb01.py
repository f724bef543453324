"""Checks for notebook 01 (depthwise-separable convolutions)."""

from __future__ import annotations

import torch
from torch import nn

from effnb.costs import reduction_factor
from effnb.exercises import exercise, expect_number
from effnb.layers import DepthwiseSeparableConv
from effnb.lessons import copy_weights


@exercise("1.1", hint="divide the standard conv's weights k^2 C_in C_out by the separable block's.")
def reduction_5x5(answer) -> str:
    expect_number(
        answer,
        reduction_factor(64, 5),
        what="the reduction factor at k = 5, C_out = 64",
        rel=1e-3,
        wrong={
            25.0: "you took the k^2 limit, which only holds as C_out grows without bound",
            64.0: "you divided by k^2 only: the pointwise conv's C_in C_out weights are missing",
        },
    )
    return None


@exercise(
    "1.2",
    hint="two ConvNormAct-style stages: a k x k conv with groups=in_channels, then a 1 x 1 conv; "
    "BatchNorm and ReLU after each.",
)
def separable_module(cls) -> str:
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise AssertionError(f"hand in the class itself (an nn.Module subclass), got {cls!r}")
    c_in, c_out, k, stride = 6, 10, 3, 2  # asymmetric on purpose
    mine, ref = cls(c_in, c_out, k, stride), DepthwiseSeparableConv(c_in, c_out, k, stride)
    n_mine = sum(p.numel() for p in mine.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    if n_mine != n_ref:
        standard = k * k * c_in * c_in + 2 * c_in + c_in * c_out + 2 * c_out
        if n_mine in (standard, standard + c_in + c_out):
            raise AssertionError(
                f"{n_mine} parameters: the k x k conv mixes channels; set groups to the number "
                "of input channels so each channel gets its own filter"
            )
        raise AssertionError(
            f"DepthwiseSeparable({c_in}, {c_out}, {k}, {stride}) should have "
            f"{n_ref} parameters (BatchNorm included), yours has {n_mine}"
        )
    try:
        copy_weights(mine, ref)
    except ValueError as exc:
        raise AssertionError(f"your layers differ from the reference's in shape: {exc}") from None
    x = torch.randn(2, c_in, 9, 11, generator=torch.Generator().manual_seed(0))
    mine.eval(), ref.eval()
    with torch.no_grad():
        got, want = mine(x), ref(x)
    if got.shape != want.shape:
        raise AssertionError(
            f"output shape {tuple(got.shape)}, expected {tuple(want.shape)}: the stride belongs "
            "to the depthwise conv, with padding (k - 1) // 2"
        )
    if not torch.allclose(got, want, atol=1e-5):
        raise AssertionError(
            "same shapes and weights, different outputs: check the order conv -> BatchNorm -> "
            "ReLU in both stages"
        )
    return f"{n_mine} parameters and the same outputs as effnb.layers.DepthwiseSeparableConv"
