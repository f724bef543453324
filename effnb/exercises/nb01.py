"""Checks for notebook 01 (depthwise-separable convolutions)."""

from __future__ import annotations

import math

import torch
from torch import nn

from effnb.costs import profile, reduction_factor
from effnb.exercises import (
    build_module,
    exercise,
    expect_function,
    expect_module_class,
    expect_number,
)
from effnb.layers import ConvNormAct, depthwise, make_divisible
from effnb.lessons import copy_weights
from effnb.models import create_model
from effnb.models.mobilenet import MOBILENET_V1_STAGES


@exercise("1.1", hint="divide the standard conv's weights k^2 C_in C_out by the separable block's.")
def reduction_5x5(answer: object) -> None:
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


# --- 1.2: a depthwise-separable block with a depth multiplier ----------------------------


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _multiplier_case(cls, c_in: int, c_out: int, k: int, stride: int, m: int) -> int:
    """Check one configuration against conv(groups=C_in, C_in -> m C_in) -> 1x1 conv."""
    args = (c_in, c_out, k, stride, m)
    mine = build_module(cls, *args)
    ref = nn.Sequential(depthwise(c_in, k, stride, multiplier=m), ConvNormAct(m * c_in, c_out, 1))
    n_mine, n_ref = _n_params(mine), _n_params(ref)
    bn = 2 * (m * c_in + c_out)
    if n_mine != n_ref:
        if n_mine == k * k * c_in * m * c_in + m * c_in * c_out + bn:
            raise AssertionError(
                f"{cls.__name__}{args}: {n_mine} parameters, the k x k conv mixes channels: it "
                "should filter each input channel on its own (think about groups)"
            )
        if n_mine == k * k * c_in + c_in * c_out + 2 * (c_in + c_out):
            raise AssertionError(
                f"{cls.__name__}{args}: {n_mine} parameters, as if the depth multiplier were 1: "
                f"the depthwise conv should make {m} filters per input channel"
            )
        raise AssertionError(
            f"{cls.__name__}{args} should have {n_ref} parameters (BatchNorm included), "
            f"yours has {n_mine}"
        )
    strided = [
        c
        for c in mine.modules()
        if isinstance(c, nn.Conv2d) and c.kernel_size == (1, 1) and c.stride != (1, 1)
    ]
    if stride > 1 and strided:
        raise AssertionError(
            "the 1 x 1 conv has the stride: it would drop pixels before looking at them; the "
            "stride belongs to the depthwise k x k conv"
        )
    try:
        copy_weights(mine, ref)
    except ValueError as exc:
        raise AssertionError(
            f"your layers differ from conv -> BatchNorm -> conv -> BatchNorm in shape or in the "
            f"order they are created (create them in the order they run): {exc}"
        ) from None
    x = torch.randn(2, c_in, 9, 11, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref.train()(x)  # move BatchNorm's running statistics away from 0 and 1
        copy_weights(mine, ref)
        mine.eval(), ref.eval()
        try:
            got = mine(x)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise AssertionError(
                f"calling your module on a {tuple(x.shape)} input raised {exc!r}"
            ) from None
        want = ref(x)
    if got.shape != want.shape:
        raise AssertionError(
            f"{cls.__name__}{args} on a {tuple(x.shape)} input gave shape {tuple(got.shape)}, "
            f"expected {tuple(want.shape)}"
        )
    if not torch.allclose(got, want, atol=1e-5):
        raise AssertionError(
            "same shapes and weights, different outputs: each conv is followed by its BatchNorm, "
            "then ReLU"
        )
    return n_mine


@exercise(
    "1.2",
    hint="the depthwise conv maps C_in to m * C_in channels and still uses groups = C_in; the "
    "pointwise conv then mixes all m * C_in of them. BatchNorm and ReLU after each conv.",
)
def depth_multiplier_block(cls) -> str:
    expect_module_class(cls)
    n = _multiplier_case(cls, 6, 10, 3, 2, 3)  # asymmetric on purpose
    _multiplier_case(cls, 4, 7, 5, 1, 2)
    return f"{n} parameters at (6, 10, 3, 2, 3) and the same outputs as the reference"


# --- 1.3: MobileNetV1's MACs from its table -----------------------------------------------


def _v1_macs(alpha: float, resolution: int, *, floor_halving: bool = False, fc: bool = True) -> int:
    """Misconception variants: feature maps halved with // (floor), classifier left out."""
    ch = lambda c: make_divisible(c * alpha, 8)  # noqa: E731
    size = resolution // 2 if floor_halving else (resolution - 1) // 2 + 1
    c_in, total = ch(32), 9 * 3 * ch(32) * size * size
    for row in (row for stage in MOBILENET_V1_STAGES for row in stage):
        if row.stride == 2:
            size = size // 2 if floor_halving else (size - 1) // 2 + 1
        total += (9 * c_in + c_in * ch(row.out_channels)) * size * size
        c_in = ch(row.out_channels)
    return total + (c_in * 1000 if fc else 0)


@exercise(
    "1.3",
    hint="walk the table: the stem conv, then for each block k^2 C_in + C_in C_out MACs per "
    "output pixel at that block's output size, then the 1000-way FC layer. A 3x3 conv with "
    "stride s and padding 1 gives floor((H + 2 - 3) / s) + 1 rows.",
)
def mobilenet_v1_macs(fn) -> str:
    expect_function(fn)
    for alpha, res in ((1.0, 224), (0.75, 200), (0.25, 130)):
        want = profile(create_model("mobilenet_v1", width_mult=alpha), res).macs
        try:
            got = fn(alpha, res)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise AssertionError(f"mobilenet_v1_macs({alpha}, {res}) raised {exc!r}") from None
        wrong = {
            2.0 * want: "you counted FLOPs (2 per multiply-accumulate); the table asks for MACs",
            float(
                _v1_macs(alpha, res, fc=False)
            ): "the classifier (the 1000-way linear layer) is left out",
            float(_v1_macs(alpha, res, floor_halving=True)): (
                "feature maps are halved with floor division: at an odd size a stride-2 3x3 conv "
                "with padding 1 keeps the extra row, ceil(H / 2)"
            ),
        }
        wrong.pop(float(want), None)  # at even sizes floor and ceil agree: not a mistake there
        expect_number(
            got, want, what=f"mobilenet_v1_macs({alpha}, {res})", abs_tol=0.5, wrong=wrong
        )
        if not math.isclose(float(got), round(float(got))):
            raise AssertionError(f"MACs are a whole number, got {got!r}")
    return "equal to effnb.costs.profile at (1.0, 224), (0.75, 200) and (0.25, 130)"
