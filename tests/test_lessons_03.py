"""Values computed by effnb.lessons.inverted (notebook 03); no timings asserted."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from effnb import create_model, profile  # noqa: E402
from effnb.layers import InvertedResidual  # noqa: E402
from effnb.lessons import inverted as L  # noqa: E402

# --- notebook 03 --------------------------------------------------------------------------


def test_spiral_shape_and_ends() -> None:
    x = L.spiral(400)
    assert x.shape == (400, 2)
    assert x[0].tolist() == [0.0, 0.0]
    assert x[-1] == pytest.approx([1.0, 0.0], abs=1e-12)


def test_relu_manifold_loses_information_only_in_few_dimensions() -> None:
    low, high = L.relu_manifold(2, seed=0), L.relu_manifold(30, seed=0)
    assert low.linear_error > 0.3
    assert high.linear_error < 0.01
    # every point but the spiral's centre (x = 0) keeps two independent active rows at n = 30
    assert high.invertible_fraction == pytest.approx(399 / 400)
    assert low.invertible_fraction < 0.5
    table = L.relu_manifold_table((2, 30), seeds=range(3))
    assert [r["dim"] for r in table] == [2, 30]
    assert table[0]["linear_error"] > table[1]["linear_error"]


def test_classic_bottleneck_params_and_named_parts() -> None:
    block = L.ClassicBottleneck(192, 32)
    # 192*32 + 2*32, 9*32*32 + 2*32, 32*192 + 2*192 (conv weights + BatchNorm)
    assert sum(p.numel() for p in block.parameters()) == 6208 + 9280 + 6528
    assert [n for n, _ in block.named_children()] == [
        "conv_reduce",
        "conv_3x3",
        "conv_expand",
        "act",
    ]
    assert block.has_skip
    bare = L.ClassicBottleneck(16, 4, norm_layer=None, act_layer=None, skip=False).eval()
    assert not bare.has_skip
    assert bare(torch.randn(1, 16, 5, 5)).shape == (1, 16, 5, 5)


def test_block_costs_memory_kept_for_the_skip() -> None:
    costs = {label: L.block_costs(label, b, c, 28) for label, (b, c) in L.block_pair(32, 6).items()}
    classic, inverted = costs.values()
    assert classic.boundary_bytes == 192 * 28 * 28 * 4
    assert inverted.boundary_bytes == 32 * 28 * 28 * 4
    assert classic.params == 22_016 and inverted.params == 14_848
    assert inverted.macs == 28 * 28 * (32 * 192 + 9 * 192 + 192 * 32)
    assert classic.peak_bytes == inverted.peak_bytes == 192 * 28 * 28 * 4


def test_expansion_sweep_is_linear_in_t() -> None:
    sweep = L.expansion_sweep(32, 28, (1, 2, 6))
    assert [c.label for c in sweep] == ["t=1", "t=2", "t=6"]
    assert {c.boundary_bytes for c in sweep} == {32 * 28 * 28 * 4}
    assert sweep[2].macs == profile(InvertedResidual(32, 32, 192), (32, 28, 28)).macs


@pytest.mark.parametrize(
    ("width", "reference", "seed"),
    [
        (0.5, 1_968_680, 1_221_768),
        (0.75, 2_636_424, 2_230_528),
        (1.0, 3_504_872, 3_504_872),
        (1.4, 6_108_776, 6_082_580),
    ],
)
def test_mobilenet_v2_rounding_rules(width: float, reference: int, seed: int) -> None:
    assert L.mobilenet_v2_costs(width, "reference").params == reference
    assert L.mobilenet_v2_costs(width, "seed").params == seed


def test_mobilenet_v2_formula_equals_built_models() -> None:
    ref = L.mobilenet_v2_costs(1.0)
    assert ref.macs == 300_774_272
    rep = profile(L.build_mobilenet_v2(0.5, "seed"))
    seed = L.mobilenet_v2_costs(0.5, "seed")
    assert (rep.params, rep.macs) == (seed.params, seed.macs)
    ours = profile(create_model("mobilenet_v2", width_mult=0.75))
    assert (ours.params, ours.macs) == (
        L.mobilenet_v2_costs(0.75).params,
        L.mobilenet_v2_costs(0.75).macs,
    )
    assert seed.channels == (16, 8, 12, 16, 32, 48, 80, 160, 640)
    assert L.mobilenet_v2_costs(0.5).channels[-1] == 1280
    # expansion override keeps the first row at t = 1 and changes the others
    t4 = L.mobilenet_v2_costs(1.0, expansion=4)
    assert t4.stage_params[1] == ref.stage_params[1]
    assert t4.params < ref.params


def test_round_channels_and_errors() -> None:
    assert L.round_channels(24, 0.5, "reference") == 16
    assert L.round_channels(24, 0.5, "seed") == 12
    assert L.round_channels(24, 1.4, "seed") == 33
    with pytest.raises(ValueError, match="rule"):
        L.round_channels(24, 0.5, "ceil")
    with pytest.raises(ValueError, match="rule"):
        L.mobilenet_v2_costs(1.0, "nearest")


def test_mobilenet_v3_small_se_rounding_explains_seed_count() -> None:
    ref, seed = L.mobilenet_v3_small_se_params("reference"), L.mobilenet_v3_small_se_params("seed")
    assert ref["squeeze_widths"][:5] == [8, 24, 64, 64, 32]
    assert seed["squeeze_widths"][:5] == [4, 24, 60, 60, 30]
    assert 2_542_856 - (ref["se_params"] - seed["se_params"]) == 2_537_238


def test_explore_mobilenet_v2_text_and_figure() -> None:
    text, fig = L.explore_mobilenet_v2(0.5, 6)
    assert "1,968,680" in text and "1,221,768" in text
    text2, fig2 = L.explore_mobilenet_v2(0.75, 6)
    assert text2 != text
    plt.close(fig)
    plt.close(fig2)
