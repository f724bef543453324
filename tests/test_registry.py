"""The model registry: one decorator with named reference facts, and every registered name and
fact exactly as before the decorator replaced per-call and positional-tuple registration
(``tests/fixtures/registry.json``, dumped from the registry before that change)."""

from __future__ import annotations

import inspect
import json
import math
import pathlib

import pytest
import torch
from torch import nn

import effnb
from effnb.models import registry
from effnb.models.efficientnet import (
    EFFICIENTNET_VARIANTS,
    efficientnet,
    efficientnet_param_count,
    mbconv_specs,
)
from effnb.models.registry import register_model

FIXTURE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "registry.json").read_text())
FIELDS = ("input_size", "family", "reference", "reference_params", "reference_macs", "top1")


def test_names_in_the_course_order():
    assert effnb.list_models() == list(FIXTURE)
    assert effnb.list_models("shufflenet") == [n for n in FIXTURE if n.startswith("shufflenet")]


@pytest.mark.parametrize("name", list(FIXTURE))
def test_every_fact_unchanged(name):
    info = effnb.model_info(name)
    want = FIXTURE[name]
    for key in (*FIELDS, "paper", "extras"):
        assert getattr(info, key) == want[key], key
    assert sorted(inspect.signature(info.builder).parameters) == want["builder_args"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test vanish with it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_decorator_registers_named_facts_and_returns_the_builder(scratch_registry):
    @register_model(
        "tiny_test_net",
        family="test",
        input_size=96,
        reference="none",
        reference_params=17,
        reference_macs=1234,
        top1=12.5,
        paper="nowhere",
        extras={"note": "x"},
    )
    def tiny(num_classes: int = 3) -> nn.Module:
        return nn.Linear(2, num_classes)

    assert inspect.isfunction(tiny) and tiny.__name__ == "tiny"  # returned unchanged
    info = effnb.model_info("tiny_test_net")
    assert (info.builder, info.input_size, info.family) == (tiny, 96, "test")
    assert (info.reference_params, info.reference_macs, info.top1) == (17, 1234, 12.5)
    assert (info.paper, info.extras) == ("nowhere", {"note": "x"})
    assert effnb.list_models()[-1] == "tiny_test_net"
    assert effnb.create_model("tiny_test_net", num_classes=5).out_features == 5


def test_defaults_and_errors(scratch_registry):
    register_model("plain_test_net", family="test")(lambda: nn.Identity())
    info = effnb.model_info("plain_test_net")
    assert (info.input_size, info.reference_params, info.top1, info.extras) == (224, None, None, {})
    with pytest.raises(ValueError, match="'plain_test_net' is already registered"):
        register_model("plain_test_net", family="test")(lambda: nn.Identity())
    with pytest.raises(ValueError, match="'mobilenet_v2' is already registered"):
        register_model("mobilenet_v2", family="mobilenet")(lambda: nn.Identity())
    with pytest.raises(TypeError, match="family of 'x' must be a non-empty string"):
        register_model("x", family="")
    with pytest.raises(ValueError, match="input_size"):
        register_model("x", family="test", input_size=0)


@pytest.mark.parametrize(
    "width, depth, classes, rounding",
    [
        (1.0, 1.0, 1000, None),
        (1.3, 0.7, 17, None),
        (0.55, 1.9, 3, lambda c: 8 * math.ceil(c / 8)),  # the tutorials' ceil rounding
    ],
)
def test_param_count_from_the_table_is_the_built_networks(width, depth, classes, rounding):
    kwargs = {} if rounding is None else {"round_channels": rounding}
    with torch.device("meta"):
        model = efficientnet(width, depth, classes, **kwargs)
    built = sum(p.numel() for p in model.parameters())
    assert efficientnet_param_count(width, depth, classes, **kwargs) == built


def test_param_count_of_the_released_variants():
    b2 = EFFICIENTNET_VARIANTS["b2"]
    assert efficientnet_param_count() == 5_288_548  # torchvision efficientnet_b0
    assert efficientnet_param_count(b2.width, b2.depth) == 9_109_994  # efficientnet_b2


def test_specs_scale_depth_and_width():
    stem, stages = mbconv_specs(1.0, 1.5)
    assert stem == 32
    assert [len(s) for s in stages] == [2, 3, 3, 5, 5, 6, 2]  # ceil(n * 1.5) of 1,2,2,3,3,4,1
    first = stages[1][0]
    assert (first.in_ch, first.out_ch, first.hidden, first.stride, first.se) == (16, 24, 96, 2, 4)
    assert stages[1][1].stride == 1
