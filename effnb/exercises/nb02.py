"""Checks for notebook 02 (squeeze-and-excitation)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from effnb.costs import se_params
from effnb.exercises import exercise, expect_function, expect_module_class, expect_number
from effnb.layers import SqueezeExcite, make_divisible


def _copy_by_order(dst: nn.Module, src: nn.Module) -> None:
    """Copy src's parameters into dst's in registration order; a Linear weight (C_sq, C)
    takes a 1x1 conv's (C_sq, C, 1, 1) values, so either form of the FCs is accepted."""
    d, s = list(dst.parameters()), list(src.parameters())
    if [p.numel() for p in d] != [p.numel() for p in s]:
        raise AssertionError(
            "your parameters do not line up with W1, b1, W2, b2 (in this order): "
            f"sizes {[p.numel() for p in d]}, expected {[p.numel() for p in s]}"
        )
    with torch.no_grad():
        for p, q in zip(d, s, strict=True):
            p.copy_(q.reshape(p.shape))


def _excite(ref: SqueezeExcite, z: torch.Tensor, gate) -> torch.Tensor:
    """ref's two layers on the pooled z, with another gate (for naming a wrong answer)."""
    return gate(ref.fc2(torch.relu(ref.fc1(z))))


@exercise(
    "2.1",
    hint="squeeze width channels // reduction; raise ValueError when it is below 1; "
    "mean over H and W, FC down, ReLU, FC up, sigmoid, multiply.",
)
def squeeze_excite_module(cls) -> str:
    expect_module_class(cls)
    gen = torch.Generator().manual_seed(2)
    for channels, reduction in ((24, 4), (40, 8)):  # squeeze 6 and 5: odd, asymmetric
        squeeze = channels // reduction
        mine = cls(channels, reduction)
        torch.manual_seed(0)
        ref = SqueezeExcite(channels, squeeze)
        n_mine = sum(p.numel() for p in mine.parameters())
        n_ref = sum(p.numel() for p in ref.parameters())
        if n_mine != n_ref:
            if n_mine == se_params(channels, channels * reduction):
                raise AssertionError(
                    f"MySE({channels}, {reduction}) has {n_mine} parameters: that is squeezing to "
                    "C*r channels, a hidden layer wider than C; the reduction ratio divides C"
                )
            if n_mine == se_params(channels, squeeze, bias=False):
                raise AssertionError(
                    f"MySE({channels}, {reduction}) has {n_mine} parameters: the two FC layers "
                    "have no biases; the reference implementations (and effnb) keep them"
                )
            raise AssertionError(
                f"MySE({channels}, {reduction}) should have {n_ref} parameters, yours has {n_mine}"
            )
        _copy_by_order(mine, ref)
        mine.eval(), ref.eval()
        x = 1.0 + torch.randn(2, channels, 5, 7, generator=gen)  # mean and max differ
        with torch.no_grad():
            got, want = mine(x), ref(x)
            if got.shape != want.shape:
                raise AssertionError(
                    f"output shape {tuple(got.shape)} for an input of {tuple(x.shape)}: SE returns "
                    "the input map scaled channel by channel, same shape as its input"
                )
            if torch.allclose(got, want, atol=1e-5):
                continue

            mean, peak = x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
            wrong = {
                "max pooling: the squeeze is the mean over H and W (global average pooling), "
                "not the maximum": x * _excite(ref, peak, torch.sigmoid),
                "gating with ReLU: the gate must squash each channel's weight into (0, 1); "
                "use a sigmoid": x * _excite(ref, mean, torch.relu),
                "no sigmoid: the gate must squash each channel's weight into (0, 1)": x
                * _excite(ref, mean, lambda t: t),
                "a hard-sigmoid gate: this exercise asks for the sigmoid": x
                * _excite(ref, mean, nn.functional.hardsigmoid),
            }
        for why, value in wrong.items():
            if torch.allclose(got, value, atol=1e-5):
                raise AssertionError(f"MySE({channels}, {reduction}) computes {why}")
        raise AssertionError(
            f"MySE({channels}, {reduction}) has the right parameters but different outputs on "
            "the same weights: check squeeze (mean), excite (FC, ReLU, FC, sigmoid), scale"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch warns about zero-element weights
            cls(8, 16)
    except ValueError:
        pass
    else:
        raise AssertionError(
            "MySE(8, 16) was built without complaint: 8 // 16 = 0, a zero-width hidden layer "
            "that gates every channel at 0.5; raise ValueError when the squeeze width is below 1"
        )
    return "same parameters and outputs as effnb's SqueezeExcite, and C < r is refused"


def _v3_squeeze(exp: int) -> int:
    return make_divisible(exp / 4, 8)


@exercise(
    "2.2",
    hint="for each row with se=True: C = row.exp, squeeze = make_divisible(C / 4, 8); add "
    "2 * C * squeeze weights and squeeze + C biases.",
)
def v3_se_params(fn) -> str:
    expect_function(fn, "a function table -> total SE params")
    from effnb.models import create_model
    from effnb.models.mobilenet import MOBILENET_V3_LARGE_TABLE, MOBILENET_V3_SMALL_TABLE

    tables = {
        "mobilenet_v3_large": MOBILENET_V3_LARGE_TABLE,
        "mobilenet_v3_small": MOBILENET_V3_SMALL_TABLE,
    }
    for name, table in tables.items():
        model = create_model(name)
        built = sum(
            p.numel()
            for m in model.modules()
            if isinstance(m, SqueezeExcite)
            for p in m.parameters()
        )
        se_rows = [row for row in table if row.se]
        expect_number(
            fn(table),
            built,
            what=f"the SE parameters of {name}",
            wrong={
                sum(se_params(r.exp, r.exp // 4) for r in se_rows): "the squeeze width is "
                "C // 4 not rounded to a multiple of 8",
                sum(se_params(r.exp, _v3_squeeze(r.exp), bias=False) for r in se_rows): "the "
                "biases of the two layers are left out",
                sum(se_params(r.exp, _v3_squeeze(r.exp)) for r in table): "rows without SE "
                "(se=False) are counted too",
                sum(se_params(r.exp, _v3_squeeze(r.out)) for r in se_rows): "the squeeze width "
                "comes from the block's output width; MobileNetV3 squeezes the expanded width",
            },
        )
    return "both tables give the SE parameters of the built models"


@exercise(
    "2.3",
    hint="EfficientNet's squeeze width comes from the block's input width, not the expanded "
    "one; count weights and biases.",
)
def b0_se_params(answer: object) -> None:
    expect_number(
        answer,
        se_params(672, 112 // 4),
        what="params of the SE in EfficientNet-B0's 112 -> 672 block",
        wrong={
            se_params(672, 672 // 4): "you squeezed the expanded width (672 / 4); EfficientNet "
            "squeezes a quarter of the block's input width",
            se_params(672, 112 // 4, bias=False): "you left out the biases of the two FC layers",
            se_params(672, 672 // 16): "you used a reduction ratio of 16 on the expanded width",
        },
    )
    return None
