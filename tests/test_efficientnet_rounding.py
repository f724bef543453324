"""EfficientNet's channel rounding is an argument of the builder, not a module-level name.

Notebook 05 builds the released B0..B7 and the ones a tutorial's ``ceil`` rounding gives; both
go through ``efficientnet(..., round_channels=...)``, and nothing in effnb is patched.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import effnb
import effnb.models.efficientnet as effnet
from effnb.layers import make_divisible
from effnb.models.efficientnet import EFFICIENTNET_VARIANTS, efficientnet

RELEASED = {
    "b0": 5_288_548,
    "b1": 7_794_184,
    "b2": 9_109_994,
    "b3": 12_233_232,
    "b4": 19_341_616,
    "b5": 30_389_784,
    "b6": 43_040_704,
    "b7": 66_347_960,
}
# ceil(c * w / 8) * 8: B0, B1, B3 and B7 round every stage alike
CEIL = {**RELEASED, "b2": 9_530_928, "b4": 19_380_088, "b5": 31_396_920, "b6": 44_456_204}


def ceil_to_8(c: float) -> int:
    return max(8, math.ceil(c / 8) * 8)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(name: str, **kwargs):
    with torch.device("meta"):
        return effnb.create_model(name, **kwargs)


def test_default_rounding_is_make_divisible():
    default = inspect.signature(efficientnet).parameters["round_channels"].default
    assert default is make_divisible


@pytest.mark.parametrize("key", list(RELEASED))
def test_released_and_ceil_counts(key):
    assert n_params(meta(f"efficientnet_{key}")) == RELEASED[key]
    assert n_params(meta(f"efficientnet_{key}", round_channels=make_divisible)) == RELEASED[key]
    assert n_params(meta(f"efficientnet_{key}", round_channels=ceil_to_8)) == CEIL[key]


def test_generic_builder_takes_the_rounding_and_leaves_no_trace():
    cfg = EFFICIENTNET_VARIANTS["b2"]
    with torch.device("meta"):
        ceil = efficientnet(cfg.width, cfg.depth, round_channels=ceil_to_8)
        after = efficientnet(cfg.width, cfg.depth)
    assert n_params(ceil) == 9_530_928
    assert n_params(after) == 9_109_994  # the ceil build changed nothing module-level
    assert effnet.make_divisible is make_divisible
    stem = ceil.stem.conv.out_channels, after.stem.conv.out_channels
    assert stem == (40, 32)  # 32 x 1.1 = 35.2: ceil -> 40, nearest -> 32


def test_rounding_sees_every_scaled_width():
    seen: list[float] = []

    def record(c: float) -> int:
        seen.append(round(c, 6))
        return make_divisible(c)

    with torch.device("meta"):
        model = efficientnet(1.1, 1.0, round_channels=record)
    assert n_params(model) == n_params(meta("efficientnet", width_mult=1.1))
    for c in (32, 16, 24, 40, 80, 112, 192, 320):  # stem and the seven stage widths, times 1.1
        assert round(c * 1.1, 6) in seen
    assert 16 * 6 in seen  # stage 3's first block expands its 16 input channels 6 times


def test_rounding_must_be_callable():
    with pytest.raises(TypeError, match="round_channels"):
        efficientnet(round_channels=8)


def test_default_weights_and_outputs_unchanged_by_explicit_rounding():
    torch.manual_seed(0)
    a = efficientnet(1.0, 1.0, num_classes=10).eval()
    torch.manual_seed(0)
    b = efficientnet(1.0, 1.0, num_classes=10, round_channels=make_divisible).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
