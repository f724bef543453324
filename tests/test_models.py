"""Every model against its reference: parameter counts to the unit, checkpoint key mapping,
logits under the same weights, output shapes, and clear errors for bad arguments."""

from __future__ import annotations

import functools
import math

import pytest
import torch

import effnb
from effnb.models.weights import load_reference_state_dict, reference_key_map, synthetic_state_dict
from tests.conftest import REFERENCE_NAMES, load_reference

NAMED_MODELS = [n for n in effnb.list_models() if n != "efficientnet"]


@functools.cache
def default_model(name: str) -> torch.nn.Module:
    """One instance per name for the tests that only read a model (B7 takes seconds to build)."""
    return effnb.create_model(name).eval()


def test_every_registered_model_has_a_reference_fixture():
    assert sorted(NAMED_MODELS) == REFERENCE_NAMES
    assert len(NAMED_MODELS) == 19


@pytest.mark.parametrize("name", NAMED_MODELS)
def test_param_count_matches_reference_to_the_unit(name):
    params = sum(p.numel() for p in default_model(name).parameters())
    assert params == load_reference(name)["params"] == effnb.model_info(name).reference_params


@pytest.mark.parametrize("name", NAMED_MODELS)
def test_reference_checkpoint_keys_map_onto_ours(name):
    ref = load_reference(name)
    model = default_model(name)
    mapping = reference_key_map(model, ref["state_dict"])
    assert list(mapping) == list(ref["state_dict"])  # every reference key, in order
    ours = model.state_dict()
    for ref_key, our_key in mapping.items():
        assert ref_key.rsplit(".", 1)[1] == our_key.rsplit(".", 1)[1]
        assert math.prod(ref["state_dict"][ref_key]) == ours[our_key].numel()


@pytest.mark.parametrize("name", NAMED_MODELS)
def test_reference_weights_give_reference_logits(name):
    """Weights laid out as the reference's checkpoint load into our model and give the
    reference's logits (recorded from torchvision/timm with the same synthetic weights)."""
    ref = load_reference(name)
    model = default_model(name)
    load_reference_state_dict(model, synthetic_state_dict(ref["state_dict"]))
    x = torch.randn(ref["logit_input"], generator=torch.Generator().manual_seed(1234))
    with torch.inference_mode():
        logits = model(x)
    expected = torch.tensor(ref["logits"])
    torch.testing.assert_close(logits[:, : expected.shape[1]], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        logits.norm(dim=1), torch.tensor(ref["logits_norm"]), rtol=1e-4, atol=1e-5
    )


def test_mapping_rejects_a_different_architecture():
    ref = load_reference("mobilenet_v2")
    with pytest.raises(ValueError, match="not the same architecture"):
        reference_key_map(effnb.create_model("mobilenet_v3_small"), ref["state_dict"])
    shapes = dict(ref["state_dict"])
    first = next(iter(shapes))
    shapes[first] = [16, 3, 3, 3]  # wrong stem width
    with pytest.raises(ValueError, match="does not match"):
        reference_key_map(effnb.create_model("mobilenet_v2"), shapes)


@pytest.mark.parametrize(
    "name",
    [n for n in NAMED_MODELS if n not in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7")],
)
def test_output_shape_with_custom_classes(name):
    """B5-B7 share B0's code path; their counts and logits are checked above."""
    model = effnb.create_model(name, num_classes=10).eval()
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize(
    "name", ["mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5", "ghostnet"]
)
def test_native_resolution_forward(name):
    model = effnb.create_model(name).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize(
    "width, params",
    [(0.5, 1_968_680), (0.75, 2_636_424), (1.0, 3_504_872), (1.4, 6_108_776)],
)
def test_mobilenet_v2_width_multipliers(width, params):
    """make_divisible rounding and a last layer fixed at 1280 below width 1 (SEED_ERRATA.md)."""
    model = effnb.create_model("mobilenet_v2", width_mult=width)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.head.conv.out_channels == (1280 if width <= 1 else 1792)


def test_efficientnet_variants_carry_native_resolution_and_dropout():
    expected = {
        0: (224, 0.2),
        1: (240, 0.2),
        2: (260, 0.3),
        3: (300, 0.3),
        4: (380, 0.4),
        5: (456, 0.4),
    }
    for i, (res, dropout) in expected.items():
        name = f"efficientnet_b{i}"
        model = effnb.create_model(name)
        assert effnb.model_info(name).input_size == res == model.default_input_size
        assert model.classifier.dropout.p == dropout


def test_generic_efficientnet_equals_b0_and_scales():
    b0 = effnb.create_model("efficientnet_b0")
    generic = effnb.create_model("efficientnet", width_mult=1.0, depth_mult=1.0)
    assert [p.shape for p in generic.parameters()] == [p.shape for p in b0.parameters()]
    b2_like = effnb.create_model("efficientnet", width_mult=1.1, depth_mult=1.2)
    assert sum(p.numel() for p in b2_like.parameters()) == 9_109_994


def test_efficientnet_stochastic_depth_ramps_linearly():
    """Block i of N drops its residual branch with probability 0.2 * i / N (torchvision)."""
    model = effnb.create_model("efficientnet_b0")
    blocks = [m for m in model.modules() if isinstance(m, effnb.layers.InvertedResidual)]
    assert len(blocks) == 16
    for i, block in enumerate(blocks):
        if block.has_skip:
            assert block.drop_path.p == pytest.approx(0.2 * i / 16)


def test_small_input_variant_keeps_params_and_halves_total_stride():
    base = effnb.create_model("mobilenet_v2", num_classes=10)
    small = effnb.create_model("mobilenet_v2", num_classes=10, small_input=True)
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in base.parameters())
    assert (base.total_stride, small.total_stride) == (32, 16)
    assert small.eval()(torch.zeros(1, 3, 16, 16)).shape == (1, 10)
    shuffle = effnb.create_model("shufflenet_v2_x0_5", small_input=True)
    assert shuffle.total_stride == 8


# --- bad input ---------------------------------------------------------------------------


def test_unknown_model_name_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown model name 'mobilenet_v4'.*mobilenet_v2"):
        effnb.create_model("mobilenet_v4")
    with pytest.raises(TypeError, match="model name must be a string"):
        effnb.create_model(3)


def test_unexpected_argument_is_named():
    with pytest.raises(TypeError, match=r"\['depth_mult'\]"):
        effnb.create_model("mobilenet_v2", depth_mult=2.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "ghostnet"])
def test_width_multiplier_must_be_positive(name, bad):
    with pytest.raises(ValueError, match=f"width_mult must be a positive number, got {bad}"):
        effnb.create_model(name, width_mult=bad)


@pytest.mark.parametrize("bad", ["1.0", None, True])
def test_width_multiplier_must_be_a_number(bad):
    with pytest.raises(TypeError, match="width_mult must be a positive number"):
        effnb.create_model("mobilenet_v2", width_mult=bad)


def test_depth_multiplier_checked():
    with pytest.raises(ValueError, match="depth_mult must be a positive number, got 0"):
        effnb.create_model("efficientnet", depth_mult=0)


def test_shufflenet_rejects_unpublished_width():
    with pytest.raises(
        ValueError, match=r"width_mult must be one of .*\[0.5, 1.0, 1.5, 2.0\].*got 0.75"
    ):
        effnb.models.shufflenet.shufflenet_v2(0.75)


def test_num_classes_checked():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1, got 0"):
        effnb.create_model("mobilenet_v2", num_classes=0)


@pytest.mark.parametrize(
    "shape, what",
    [
        ((1, 3, 16, 16), r"H, W >= 32"),
        ((1, 1, 224, 224), r"\(batch, 3, H, W\)"),
        ((3, 224, 224), r"got \(3, 224, 224\)"),
    ],
)
def test_input_shape_errors_say_what_is_expected(shape, what):
    model = effnb.create_model("mobilenet_v3_small").eval()
    with pytest.raises(ValueError, match=what):
        model(torch.zeros(shape))
