"""Values computed by effnb.lessons.zoo (notebook 07); no timings asserted."""

from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from effnb.lessons import zoo  # noqa: E402

# --- scaling ------------------------------------------------------------------------------


REFERENCE_PARAMS = {
    "b0": 5_288_548,
    "b1": 7_794_184,
    "b2": 9_109_994,
    "b3": 12_233_232,
    "b4": 19_341_616,
    "b5": 30_389_784,
    "b6": 43_040_704,
    "b7": 66_347_960,
}


CEIL_PARAMS = {"b2": 9_530_928, "b4": 19_380_088, "b5": 31_396_920, "b6": 44_456_204}


def test_zoo_models_exclude_generic():
    names = zoo.zoo_models()
    assert "efficientnet" not in names and len(names) == 17


@pytest.mark.parametrize("name", ["mobilenet_v2", "ghostnet", "efficientnet_b7"])
def test_count_costs_three_ways(name):
    c = zoo.count_costs(name)
    assert c.params_match and c.macs_match
    assert c.thop_macs > c.macs
    if name == "mobilenet_v2":
        assert c.thop_macs == 327_550_720  # REFERENCE.md: thop 327.5M vs 300.8M
    # thop's buffers were removed from the cached meta model
    assert not [n for n, _ in zoo.meta_model(name).named_buffers() if "total_" in n]


def test_pixel_latency_parsing():
    assert zoo.pixel_latency_ms("mobilenet_v3_large", 3) == 44.0
    assert zoo.pixel_latency_ms("mobilenet_v3_small", 3) == 14.4
    assert zoo.pixel_latency_ms("mobilenet_v3_large", 1) == 51.0
    assert zoo.pixel_latency_ms("mobilenet_v2", 1) == 75.0
    assert zoo.pixel_latency_ms("mobilenet_v2", 3) is None
    assert zoo.pixel_latency_ms("ghostnet", 3) is None
    assert zoo.PUBLISHED_PIXEL3_MS == {
        n: zoo.pixel_latency_ms(n, 3) for n in ("mobilenet_v3_large", "mobilenet_v3_small")
    }


def test_parse_and_agree():
    assert zoo._parse_quantity("4.2B") == pytest.approx(4.2e9)
    assert zoo._parse_quantity("77.3%") == 77.3
    assert zoo._parse_quantity("166ms") == 166.0
    assert zoo._agrees("5.3M", 5_288_548)
    assert not zoo._agrees("3.4M", 3_504_872)
    assert not zoo._agrees("25M", 25_557_032)


@pytest.fixture(scope="module")
def seed_costs():
    names = {r.model for r in zoo.SEED_000_TABLE + zoo.SEED_004_TABLE} - {"resnet50"}
    return zoo.zoo_costs(sorted(names))


def test_seed_000_report(seed_costs):
    text = zoo.seed_000_report(seed_costs)
    assert "top-1 77.3% in the seed; the paper says 77.1%" in text
    assert text.count("the column holds MACs") == 4
    assert "25,557,032" in text and "4.09G" in text
    with_ms = zoo.seed_000_report(seed_costs, {"mobilenet_v2": 12.5})
    assert "12.5" in with_ms and "CPU ms (ours)" in with_ms


def test_seed_004_report(seed_costs):
    text = zoo.seed_004_report(seed_costs)
    assert "MobileNetV3-L: seed 27ms, published 44 ms" in text
    assert "MobileNetV3-S: seed 15ms, published 14.4 ms" in text
    assert text.count("none published") == 7


def test_zoo_view_changes_with_resolution(seed_costs):
    t1, f1 = zoo.zoo_view(160, "mobilenet_v2", seed_costs)
    t2, f2 = zoo.zoo_view(224, "mobilenet_v2", seed_costs, {"mobilenet_v2": 10.0})
    plt.close(f1)
    plt.close(f2)
    assert "154.1M MACs" in t1 and "300.8M MACs" in t2
    assert "latency estimate: 10.0 ms" in t2
    with pytest.raises(ValueError, match="model must be one of"):
        zoo.zoo_view(224, "resnet50", seed_costs)


def test_meta_model_has_no_storage():
    model = zoo.meta_model("mobilenet_v3_small")
    assert next(model.parameters()).device == torch.device("meta")
