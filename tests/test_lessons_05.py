"""Values computed by effnb.lessons.scaling (notebook 05); no timings asserted."""

from __future__ import annotations

import math

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import effnb.models.efficientnet as effnet  # noqa: E402
from effnb.layers import make_divisible  # noqa: E402
from effnb.lessons import scaling as S  # noqa: E402

# --- scaling ------------------------------------------------------------------------------


def test_flops_factor_is_1_920():
    assert S.flops_factor() == pytest.approx(1.92027, abs=1e-5)
    assert round(S.flops_factor(), 3) == 1.920
    assert S.flops_factor(2.0, 1.0, 1.0) == 2.0


@pytest.mark.parametrize(
    ("phi", "depth", "width", "resolution"),
    [
        (0, 1.0, 1.0, 224.0),
        (1, 1.2, 1.1, 257.6),
        (4, 2.0736, 1.4641, 391.77),
        (7, 3.583, 1.949, 595.8),
    ],
)
def test_formula_config(phi, depth, width, resolution):
    f = S.formula_config(phi)
    assert f.depth == pytest.approx(depth, abs=1e-3)
    assert f.width == pytest.approx(width, abs=1e-3)
    assert f.resolution == pytest.approx(resolution, abs=0.05)


def test_formula_config_rejects_negative_phi():
    with pytest.raises(ValueError, match="phi"):
        S.formula_config(-1)


def test_seed_table_mixes_formula_and_release():
    lines = S.seed_table_report().splitlines()[2:]
    b1, b4, b7 = lines[1].split(), lines[2].split(), lines[3].split()
    assert b1[2] == "formula" and b1[4] == "formula" and b1[6] == "released"
    assert b4[2] == "formula" and b4[4] == "formula" and b4[6] == "released"
    assert b7[2] == b7[4] == b7[6] == "released"


def test_ceil_to_multiple():
    assert S.ceil_to_multiple(17.6) == 24
    assert S.ceil_to_multiple(16.0) == 16
    assert S.ceil_to_multiple(0.5) == 8
    assert make_divisible(17.6) == 16  # the reference rounds to nearest


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


@pytest.mark.parametrize("key", list(REFERENCE_PARAMS))
def test_variant_params_reference_and_ceil(key):
    assert S.variant_params(key) == REFERENCE_PARAMS[key]
    expected_ceil = CEIL_PARAMS.get(key, REFERENCE_PARAMS[key])  # b0/b1/b3/b7 round alike
    assert S.variant_params(key, S.ceil_to_multiple) == expected_ceil


def test_channel_rounding_restores_the_builder():
    original = effnet.make_divisible
    with pytest.raises(RuntimeError), S.channel_rounding(S.ceil_to_multiple):
        assert effnet.make_divisible is S.ceil_to_multiple
        raise RuntimeError("leave the block with an error")
    assert effnet.make_divisible is original
    with pytest.raises(TypeError, match="round_fn"):
        with S.channel_rounding(8):
            pass


def test_b2_macs_under_ceil_rounding():
    from effnb.costs import profile

    assert profile(S.meta_variant("b2"), 260).macs == 993_561_872
    assert round(profile(S.meta_variant("b2", S.ceil_to_multiple), 260).macs / 1e5) == 11_653


@pytest.fixture(scope="module")
def costs():
    return S.variant_costs()


def test_variant_costs_match_reference(costs):
    macs = {"b0": 385_814_752, "b2": 993_561_872, "b4": 4_393_771_024, "b7": 37_745_884_192}
    for key, value in macs.items():
        assert costs[key].macs == value
    assert {k: c.params for k, c in costs.items()} == REFERENCE_PARAMS
    assert [c.dropout for c in costs.values()] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]
    assert [c.top1 for c in costs.values()] == [77.1, 79.1, 80.1, 81.6, 82.9, 83.6, 84.0, 84.3]


def test_macs_grow_as_d_w2_r2(costs):
    x = [S.compound_factor(c.width, c.depth, c.resolution) for c in costs.values()]
    slope, _ = S.fit_power_law(x, [c.macs for c in costs.values()])
    assert slope == pytest.approx(0.969, abs=0.002)
    assert S.compound_factor(2.0, 3.1, 600) == pytest.approx(3.1 * 4 * (600 / 224) ** 2)


def test_fit_power_law_recovers_exponent():
    slope, intercept = S.fit_power_law([1, 2, 4, 8], [3, 12, 48, 192])
    assert slope == pytest.approx(2.0)
    assert math.exp(intercept) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        S.fit_power_law([1], [1])


def test_scaled_model_view_counts_b0(costs):
    assert S.scaled_costs(1.0, 1.0, 224) == (5_288_548, 385_814_752)
    text, fig = S.scaled_model_view(1.0, 1.0, 224, costs)
    plt.close(fig)
    assert "5.29M params" in text and "0.386G MACs" in text and "B0" in text
    assert "latency" not in text
    text2, fig2 = S.scaled_model_view(1.5, 1.0, 224, costs, ms_per_gmac=100.0)
    plt.close(fig2)
    assert text2 != text and "latency estimate" in text2


def test_experiment_arms_are_about_4x_the_base():
    base = S.Arm("base", 0.25, 0.25, 16)
    arms = S.experiment_arms(base)
    assert [a.name for a in arms] == ["width", "depth", "resolution", "compound"]
    assert arms[3] == S.Arm("compound", 0.317, 0.394, 23)
    base_macs = S.arm_costs(base)[1]
    assert base_macs == 500_352
    for arm in arms:
        assert 3.5 < S.arm_costs(arm)[1] / base_macs < 4.5
    model = S.arm_model(arms[0])
    assert model.total_stride == 16 and model.classifier.fc.out_features == 10
