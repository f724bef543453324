"""Checks for notebook 03 (inverted residuals and linear bottlenecks)."""

from __future__ import annotations

import math

import torch
from torch import nn

from effnb import layers
from effnb.exercises import build_module, exercise, expect_function, expect_module_class
from effnb.lessons import copy_weights

# --- 3.1: make_divisible ------------------------------------------------------------------

# (args, expected). Chosen so that ceil, floor, nearest-without-the-10%-rule, Python's round()
# (halves to even) and the tutorial's max(8, int(c)) each fail somewhere, with a reason.
_ROUNDING_CASES: tuple[tuple[tuple, int], ...] = (
    ((16 * 0.35,), 8),  # 5.6: below one divisor
    ((24 * 0.5,), 16),  # 12: a half rounds up
    ((17,), 16),  # nearest is below: ceil gives 24
    ((22,), 24),  # nearest is above: floor gives 16
    ((24 * 1.4,), 32),  # 33.6: ceil gives 40
    ((32 * 1.4,), 48),  # 44.8: floor gives 40
    ((11,), 16),  # nearest is 8, 27% below 11: one divisor more
    ((19,), 24),  # nearest is 16, 16% below
    ((27,), 32),  # nearest is 24, 11% below
    ((52,), 56),  # a half: Python's round() would go to the even 48
    ((1280 * 1.4,), 1792),
    ((37.5, 4), 36),  # another divisor
    ((9, 4), 12),  # nearest is 8, 11% below
    ((3, 8, 4), 4),  # min_value below the divisor
    ((2,), 8),  # min_value defaults to the divisor
)


def _ceil(value, divisor=8, min_value=None):
    return max(min_value or divisor, math.ceil(value / divisor) * divisor)


def _floor(value, divisor=8, min_value=None):
    return max(min_value or divisor, int(value // divisor) * divisor)


def _nearest_no_rule(value, divisor=8, min_value=None):
    return max(min_value or divisor, int(value + divisor / 2) // divisor * divisor)


def _banker(value, divisor=8, min_value=None):
    new = max(min_value or divisor, round(value / divisor) * divisor)
    return new + divisor if new < 0.9 * value else new


def _tutorial(value, divisor=8, min_value=None):
    return max(divisor, int(value))


_MISCONCEPTIONS = (
    (
        _tutorial,
        "you truncated to an integer (max(8, int(c)), a common tutorial rule): the result "
        "must be a multiple of the divisor",
    ),
    (
        _ceil,
        "you rounded up (ceil): the reference rounds to the NEAREST multiple, which is often "
        "below the value",
    ),
    (
        _floor,
        "you rounded down (floor / truncation): the reference rounds to the nearest multiple, "
        "and never goes more than 10% below the value",
    ),
    (
        _nearest_no_rule,
        "you rounded to the nearest multiple but forgot the 10% rule: when the nearest "
        "multiple is more than 10% below the value, add one divisor",
    ),
    (
        _banker,
        "Python's round() sends halves to the even multiple; the reference rounds a half up",
    ),
)


def _show(args: tuple) -> str:
    return f"make_divisible({', '.join(map(repr, args))})"


def _call(fn, args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except TypeError as exc:
        raise AssertionError(
            f"{_show(args)} raised TypeError: {exc}. The signature is "
            "make_divisible(value, divisor=8, min_value=None)"
        ) from None


@exercise(
    "3.1",
    hint="take the nearest multiple of divisor (a half rounds up), at least min_value "
    "(default: divisor); if that is below 90% of value, add one divisor.",
)
def make_divisible_function(fn) -> str:
    expect_function(fn)
    if fn is layers.make_divisible:
        raise AssertionError("that is effnb's own make_divisible: write yours")
    got = [_call(fn, args) for args, _ in _ROUNDING_CASES]
    wrong = [
        (args, want, g)
        for (args, want), g in zip(_ROUNDING_CASES, got, strict=True)
        if isinstance(g, bool) or not isinstance(g, int | float) or g != want
    ]
    if wrong:
        args, want, g = wrong[0]
        # the misconception that explains every value, else the one that explains the first
        for whole in (True, False):
            for wrong_fn, why in _MISCONCEPTIONS:
                cases = _ROUNDING_CASES if whole else ((args, want),)
                values = got if whole else [g]
                if all(v == wrong_fn(*a) for (a, _), v in zip(cases, values, strict=True)):
                    raise AssertionError(f"{_show(args)} should be {want}, got {g!r}: {why}")
        raise AssertionError(f"{_show(args)} should be {want}, got {g!r}")
    for (args, _), g in zip(_ROUNDING_CASES, got, strict=True):
        if not isinstance(g, int):
            raise AssertionError(
                f"{_show(args)} returned {g!r}, a {type(g).__name__}: return an int "
                "(a channel count), e.g. with int(...)"
            )
    return f"{len(_ROUNDING_CASES)} values, where ceil, floor and the 10% rule would differ"


# --- 3.2: MBConv with SE and stochastic depth --------------------------------------------

_SIGNATURE = (
    "MyMBConv(in_channels, out_channels, expand_ratio, kernel_size, stride, se_channels, drop_path)"
)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _reference(c_in, c_out, e, k, s, se, p) -> layers.InvertedResidual:
    torch.manual_seed(0)
    ref = layers.InvertedResidual(c_in, c_out, c_in * e, k, s, se_channels=se, drop_path=p)
    gen = torch.Generator().manual_seed(1)
    for m in ref.modules():  # move BatchNorm off the identity, so a misplaced one shows
        if isinstance(m, nn.BatchNorm2d):
            mean, var = m.running_mean, m.running_var
            if mean is None or var is None:  # effnb's blocks always track statistics
                raise AssertionError(f"{m} has no running statistics to move")
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                mean.copy_(torch.rand(mean.shape, generator=gen) - 0.5)
                var.copy_(torch.rand(var.shape, generator=gen) + 0.5)
    return ref


def _branch(ref: layers.InvertedResidual, x: torch.Tensor) -> torch.Tensor:
    return ref.conv_pwl(ref.se(ref.conv_dw(ref.conv_pw(x))))


def _build(cls: type, args: tuple) -> nn.Module:
    return build_module(cls, *args, note=f". The arguments are {_SIGNATURE}")


def _forward(mine: nn.Module, x: torch.Tensor, call: str, has_skip: bool) -> torch.Tensor:
    try:
        return mine(x)
    except NotImplementedError:
        raise
    except RuntimeError as exc:
        if not has_skip and "size of tensor" in str(exc):
            raise AssertionError(
                f"{call} failed with {exc}: you added the skip although the input and output "
                "shapes differ (stride 2 or C_in != C_out); the residual add exists only when "
                "stride == 1 and in_channels == out_channels"
            ) from None
        raise AssertionError(f"{call} raised RuntimeError: {exc}") from None


def _eval_case(cls, args) -> None:
    c_in, c_out, e, k, s, se, p = args
    call = f"{cls.__name__}{args}"
    mine, ref = _build(cls, args), _reference(*args)
    n_mine, n_ref = _n_params(mine), _n_params(ref)
    if n_mine != n_ref:
        expand = c_in * c_in * e + 2 * c_in * e
        if e == 1 and n_mine == n_ref + expand:
            why = ": with expand_ratio 1 there is nothing to expand; skip the 1x1 expansion conv"
        elif se and n_mine == n_ref - 2 * c_in * e * se - se - c_in * e:
            why = ": the SE block is missing"
        else:
            why = (
                " (expansion 1x1 with BatchNorm, depthwise k x k with BatchNorm, SE on the "
                "expanded width, projection 1x1 with BatchNorm)"
            )
        raise AssertionError(f"{call} has {n_mine} parameters, expected {n_ref}{why}")
    try:
        copy_weights(mine, ref)
    except ValueError as exc:
        raise AssertionError(
            f"{call}: your layers differ from the reference's in order or shape ({exc}); register "
            "them in the order expansion, depthwise, SE, projection"
        ) from None
    mine.eval(), ref.eval()
    x = _inputs(2, c_in, 9, 11)
    with torch.no_grad():
        got = _forward(mine, x, call, ref.has_skip)
        want = ref(x)
        branch = _branch(ref, x)
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(
            f"{call} on a {tuple(x.shape)} input gave shape {tuple(got.shape)}, expected "
            f"{tuple(want.shape)}: the stride belongs to the depthwise conv, padding (k - 1) // 2"
        )
    if torch.allclose(got, want, atol=1e-5):
        return
    shortcut = x if ref.has_skip else 0.0
    for act in (nn.functional.relu6, nn.functional.relu):
        if torch.allclose(got, act(branch) + shortcut, atol=1e-5):
            raise AssertionError(
                f"{call}: your block puts a ReLU on the projection. The projection back to the "
                "thin width must stay linear: a ReLU in so few dimensions destroys information "
                "(section 1)"
            )
    if ref.has_skip and torch.allclose(got, branch, atol=1e-5):
        raise AssertionError(
            f"{call}: the skip is missing. With stride 1 and in_channels == out_channels the "
            "block must add its input to the projection's output"
        )
    if ref.has_skip and p and bool(((got - x).flatten(1).abs().amax(1) < 1e-6).any()):
        raise AssertionError(
            f"{call}: in eval mode your block dropped a sample's branch; stochastic depth is a "
            "training-time regulariser and must be off in eval mode"
        )
    if ref.has_skip and p and torch.allclose(got, branch / (1 - p) + x, atol=1e-5):
        raise AssertionError(
            f"{call}: in eval mode your block scales the branch by 1/(1-p); stochastic depth is "
            "a training-time regulariser and must leave the eval-mode block unchanged"
        )
    raise AssertionError(
        f"{call}: same weights, different outputs. Check the order expansion -> depthwise -> "
        "SE -> projection and which convs are followed by ReLU6"
    )


def _drop_path_case(cls) -> None:
    """Training mode, p = 0.5, a block with a skip: each sample keeps x + branch / (1 - p) or x."""
    args = (8, 8, 6, 3, 1, 6, 0.5)
    call = f"{cls.__name__}{args}"
    p = args[-1]
    mine, ref = _build(cls, args), _reference(*args)
    copy_weights(mine, ref)
    mine.train(), ref.train()
    x = _inputs(64, 8, 5, 5, seed=2)
    torch.manual_seed(3)
    with torch.no_grad():
        got = _forward(mine, x, call, True)
        branch = _branch(ref, x)  # training-mode BatchNorm: the same batch statistics as yours
    delta = (got - x).flatten(1)  # (B, C*H*W): what the block added to each sample
    branch = branch.flatten(1)
    kept = torch.isclose(delta, branch / (1 - p), atol=1e-4).all(1)
    unscaled = torch.isclose(delta, branch, atol=1e-4).all(1)
    dropped = torch.isclose(delta, torch.zeros_like(delta), atol=1e-6).all(1)
    n = x.shape[0]
    if bool(unscaled.all()):
        raise AssertionError(
            f"{call} in training mode never dropped a sample's branch: stochastic depth with "
            f"drop_path={p} should drop each sample's residual branch with probability {p}"
        )
    for together, what in ((dropped, "dropped"), (kept, "kept")):
        if bool(together.all()):
            raise AssertionError(
                f"{call}: all {n} samples were {what} together. Draw the Bernoulli mask per "
                "sample, shape (B, 1, 1, 1), not once for the whole batch"
            )
    if bool((got.flatten(1).abs() < 1e-6).all(1).any()):
        raise AssertionError(
            f"{call}: some samples came out as all zeros: you dropped the shortcut too. "
            "Stochastic depth drops only the residual branch; the input always passes"
        )
    if bool((unscaled | dropped).all()):
        raise AssertionError(
            f"{call}: the kept branches are not rescaled. Multiply them by 1/(1-p) so the "
            "expected output is the same as in eval mode"
        )
    if not bool((kept | dropped).all()):
        raise AssertionError(
            f"{call} in training mode: each sample's output should be either x + branch/(1-p) "
            "or x alone; yours is neither for some samples (is the mask one value per sample, "
            "shape (B, 1, 1, 1)?)"
        )
    n_dropped = int(dropped.sum())
    if not 0.2 * n <= n_dropped <= 0.8 * n:
        raise AssertionError(
            f"{call}: {n_dropped} of {n} samples dropped with p = {p}: drop each with "
            "probability p (keep with 1 - p)"
        )
    # a block without a skip has no residual branch to drop: training output as the reference's
    args = (6, 10, 4, 3, 1, 8, 0.5)
    mine, ref = _build(cls, args), _reference(*args)
    copy_weights(mine, ref)
    mine.train(), ref.train()
    x = _inputs(16, 6, 5, 5, seed=4)
    with torch.no_grad():
        got, want = _forward(mine, x, f"{cls.__name__}{args}", False), ref(x)
    if not torch.allclose(got, want, atol=1e-5):
        raise AssertionError(
            f"{cls.__name__}{args} in training mode: a block without a skip must not drop "
            "anything; stochastic depth applies only to a residual branch"
        )


@exercise(
    "3.2",
    hint="start from the page's InvertedResidual; put SqueezeExcite(hidden, se_channels) between "
    "the depthwise conv and the projection, and drop each sample's residual branch in training.",
)
def mbconv_module(cls) -> str:
    expect_module_class(cls)
    if issubclass(cls, layers.InvertedResidual):
        raise AssertionError("that is effnb's own InvertedResidual: write yours")
    cases = [
        (6, 10, 4, 3, 1, 8, 0.0),  # C_in != C_out: no skip; SE on the 24 expanded channels
        (8, 8, 3, 5, 2, 4, 0.0),  # stride 2: no skip although the channels match
        (8, 8, 6, 3, 1, 6, 0.5),  # the skip, with stochastic depth (off in eval mode)
        (8, 8, 1, 3, 1, 0, 0.0),  # expand_ratio 1: no expansion conv, no SE
    ]
    for args in cases:
        _eval_case(cls, args)
    _drop_path_case(cls)
    return (
        "same parameters and eval-mode outputs as effnb.layers.InvertedResidual on 4 shapes, "
        "and per-sample stochastic depth in training"
    )
