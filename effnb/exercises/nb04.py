"""Checks for notebook 04 (ShuffleNetV2 and GhostNet)."""

from __future__ import annotations

import torch
from torch import nn

from effnb.costs import profile
from effnb.exercises import (
    build_module,
    exercise,
    expect_function,
    expect_module_class,
    expect_number,
)
from effnb.layers import GhostModule, channel_shuffle
from effnb.lessons import copy_weights


def _inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@exercise(
    "4.1",
    hint="view the C channels as (groups, C/groups), swap those two axes, flatten them back; "
    "write the shape after each line as a comment.",
)
def shuffle_function(fn) -> str:
    expect_function(fn)
    # (B, C, H, W) = (2, 12, 3, 5) with groups = 3: C/groups = 4 differs from groups, H from W.
    for shape, groups in [
        ((2, 12, 3, 5), 3),
        ((1, 8, 2, 3), 2),
        ((1, 8, 2, 3), 4),
        ((2, 6, 4, 1), 6),
    ]:
        x = _inputs(*shape)
        before = x.clone()
        try:
            got = fn(x, groups)
        except RuntimeError as exc:
            if "view" in str(exc) or "stride" in str(exc):
                raise AssertionError(
                    f"RuntimeError on a {tuple(shape)} input: {str(exc).rstrip('.')}. After a transpose the tensor "
                    "is no longer contiguous in memory, so .view cannot flatten it: use .reshape, "
                    "or .contiguous() before .view"
                ) from None
            raise
        if not torch.equal(x, before):
            raise AssertionError("your function changed its input in place; return a new tensor")
        if not isinstance(got, torch.Tensor):
            raise AssertionError(f"return a tensor, got {type(got).__name__}")
        if tuple(got.shape) != shape:
            swapped = (shape[0], shape[1], shape[3], shape[2])
            why = (
                ": H and W are swapped, so the transpose moved the spatial axes; it must swap "
                "the two channel axes (groups and C/groups)"
                if tuple(got.shape) == swapped
                else ""
            )
            raise AssertionError(f"output shape {tuple(got.shape)}, expected {shape}{why}")
        want = channel_shuffle(x, groups)
        if torch.equal(got, want):
            continue
        c = shape[1]
        if torch.equal(got, x) and groups not in (1, c):
            raise AssertionError(
                f"with {c} channels and groups={groups} the channel order is unchanged: reshaping "
                "to (B, groups, C/groups, H, W) and back moves nothing; the two channel axes must "
                "be swapped in between"
            )
        if torch.equal(got, channel_shuffle(x, c // groups)):
            raise AssertionError(
                f"with {c} channels and groups={groups} you interleaved the channels the other way "
                "round: reshaping to (B, C/groups, groups, H, W) first gives the inverse "
                "permutation (the shuffle with C/groups groups)"
            )
        labels = torch.arange(float(c)).view(1, c, 1, 1).expand(1, c, *shape[2:]).contiguous()
        try:
            order = [int(v) for v in fn(labels, groups)[0, :, 0, 0]]
        except Exception:  # noqa: BLE001 - only used to describe the wrong result
            order = None
        seen = f"; channel c (holding the value c) came out in the order {order}" if order else ""
        raise AssertionError(
            f"wrong permutation for {c} channels and groups={groups}{seen}. Position j * groups + i "
            "must hold the j-th channel of group i"
        )
    return "the same permutation as effnb.layers.channel_shuffle for groups 2, 3, 4 and 6"


def _build(cls: type, c_in: int, c_out: int, ratio: int, relu: bool) -> nn.Module:
    floor = c_out // ratio
    why = (
        f": floor({c_out}/{ratio}) = {floor} intrinsic channels leaves nothing to convolve"
        if floor == 0
        else ""
    )
    return build_module(cls, c_in, c_out, ratio=ratio, relu=relu, note=why)


@exercise(
    "4.2",
    hint="m = ceil(C_out / ratio) maps from a 1x1 conv + BatchNorm (+ ReLU), (ratio - 1) m more "
    "from a 3x3 depthwise conv + BatchNorm (+ ReLU) on them, concatenate, keep C_out channels.",
)
def ghost_module(cls) -> str:
    expect_module_class(cls)
    cases = [(16, 15, 2, True), (16, 17, 2, False), (8, 1, 2, True), (12, 16, 3, False)]
    cases.append((10, 20, 4, True))
    for c_in, c_out, ratio, relu in cases:
        call = f"{cls.__name__}({c_in}, {c_out}, ratio={ratio}, relu={relu})"
        mine = _build(cls, c_in, c_out, ratio, relu)
        ref = GhostModule(c_in, c_out, ratio=ratio, act_layer=nn.ReLU if relu else None)
        x = _inputs(2, c_in, 5, 7, seed=c_out)
        mine.eval(), ref.eval()
        with torch.no_grad():
            got = mine(x)
        if got.shape[1] != c_out:
            n = got.shape[1]
            if n == (c_out // ratio) * ratio and n < c_out:
                why = (
                    f": floor({c_out}/{ratio}) = {c_out // ratio} intrinsic maps; an odd width loses "
                    "a channel (floor instead of ceil)"
                )
            elif n > c_out:
                why = ": you took the ceiling but did not slice the concatenation to C_out"
            else:
                why = ""
            raise AssertionError(f"{call} returns {n} channels, expected {c_out}{why}")
        n_mine = sum(p.numel() for p in mine.parameters())
        n_ref = sum(p.numel() for p in ref.parameters())
        if n_mine != n_ref:
            m = -(-c_out // ratio)
            dense = c_in * m + 2 * m + 9 * m * (ratio - 1) * m + 2 * (ratio - 1) * m
            why = (
                ": the cheap operation must be depthwise (groups = the number of intrinsic maps)"
                if n_mine == dense
                else " (BatchNorm included; convs followed by BatchNorm take no bias)"
            )
            raise AssertionError(f"{call} should have {n_ref} parameters, yours has {n_mine}{why}")
        for mod in ref.modules():
            if isinstance(mod, nn.BatchNorm2d):  # not the identity, so its place shows
                nn.init.uniform_(mod.weight, 0.5, 1.5)
                nn.init.uniform_(mod.bias, -0.5, 0.5)
        try:
            copy_weights(mine, ref)
        except ValueError as exc:
            raise AssertionError(
                f"{call}: your layers differ from the reference's ({exc}); register the 1x1 conv "
                "and its BatchNorm first, then the cheap depthwise conv and its BatchNorm"
            ) from None
        with torch.no_grad():
            got, want = mine(x), ref(x)
        if torch.allclose(got, want, atol=1e-5):
            continue
        if not relu and got.min() >= 0 and want.min() < 0:
            raise AssertionError(
                f"{call}: no output is negative, so a ReLU is applied where relu=False asks for "
                "none; the second ghost module of a bottleneck must be linear (its projection)"
            )
        if relu and got.min() < 0:
            raise AssertionError(
                f"{call}: some outputs are negative, so a ReLU is missing after the primary conv "
                "or after the cheap operation"
            )
        raise AssertionError(
            f"{call}: same shapes and weights, different outputs: the cheap operation works on "
            "the intrinsic maps (not on the input), the intrinsic maps come first in the "
            "concatenation, and each conv is followed by BatchNorm then the activation"
        )
    return (
        "widths 15, 17, 1, 16 and 20 at ratios 2, 3 and 4: same params and outputs as GhostModule"
    )


@exercise(
    "4.3",
    hint="m = ceil(20 / 3) intrinsic maps, each pixel costing C_in MACs; 2m ghost maps, each pixel "
    "costing 9 MACs (one 3x3 filter each); times 14 x 14 pixels.",
)
def ghost_macs(answer) -> str:
    expected = profile(GhostModule(32, 20, ratio=3), (32, 14, 14)).macs
    hw = 14 * 14
    expect_number(
        answer,
        expected,
        what="conv MACs of GhostModule(32, 20, ratio=3) on 14x14",
        wrong={
            hw * (32 * 6 + 9 * 12): "you took floor(20/3) = 6 intrinsic maps (floor instead of "
            "ceil): the module keeps every output channel",
            2 * expected: "you counted FLOPs (a multiply and an add per MAC), not MACs",
            hw * 32 * 20: "you counted the ordinary 1x1 conv C_in C_out H W",
            hw * (32 * 7 + 9 * 13): "you charged the cheap operation only for the ghost maps kept "
            "after the slice; it computes them all and the slice drops one afterwards",
        },
    )
    return f"{expected:,} MACs against {hw * 32 * 20:,} for an ordinary 1x1 conv"
