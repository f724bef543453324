"""Values computed by effnb.lessons.shuffle_ghost (notebook 04); no timings asserted."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from effnb import profile  # noqa: E402
from effnb.layers import GhostModule  # noqa: E402
from effnb.lessons import shuffle_ghost as S  # noqa: E402

# --- notebook 03 --------------------------------------------------------------------------


def test_shuffle_order() -> None:
    assert S.shuffle_order(8, 2) == [0, 4, 1, 5, 2, 6, 3, 7]
    assert S.shuffle_order(8, 4) == [0, 2, 4, 6, 1, 3, 5, 7]
    assert S.shuffle_order(12, 3)[5] == 9


def test_memory_access_cost() -> None:
    assert S.memory_access_cost(28, 28, 128, 128) == 784 * 256 + 128 * 128
    assert S.memory_access_cost(28, 28, 256, 256, groups=4) == 784 * 512 + 256 * 256 // 4
    # G1: at (nearly) equal MACs, equal widths move the fewest values
    costs = [S.memory_access_cost(28, 28, c1, c2) for c1, c2 in S.G1_PAIRS]
    assert costs == sorted(costs)


def test_guideline_models_hold_macs_nearly_constant() -> None:
    for name, models in S.guideline_models().items():
        rows = S.guideline_rows(name, models)
        base = rows[0].macs
        assert all(abs(r.macs - base) / base < 0.05 for r in rows), name
        assert all(r.median_ms is None for r in rows)
    g4 = S.guideline_rows("G4", S.guideline_models()["G4"])
    assert len({r.macs for r in g4}) == 1


def test_fragmented_block_shapes_and_errors() -> None:
    par = S.Fragmented(128, 4, "parallel").eval()
    assert par(torch.randn(1, 128, 4, 4)).shape == (1, 128, 4, 4)
    ser = S.Fragmented(128, 2, "series")
    assert ser.in_channels == 91  # round(128 / sqrt(2))
    with pytest.raises(ValueError, match="divisible"):
        S.Fragmented(128, 3, "parallel")
    with pytest.raises(ValueError, match="mode"):
        S.Fragmented(128, 2, "diagonal")


def test_ghost_costs_match_profile() -> None:
    for c_in, c_out, s in [(64, 64, 2), (64, 64, 3), (16, 15, 2), (32, 24, 3)]:
        g = S.ghost_costs(c_in, c_out, s, size=14)
        convs = [
            x
            for x in profile(GhostModule(c_in, c_out, ratio=s), (c_in, 14, 14)).layers
            if x.type == "Conv2d"
        ]
        assert [x.params for x in convs] == [g.primary_params, g.cheap_params]
        assert sum(x.macs for x in convs) == g.macs
    g = S.ghost_costs(64, 64, 2)
    assert (g.primary_params, g.cheap_params, g.ordinary_params) == (2048, 288, 4096)
    assert g.macs_saving == pytest.approx(4096 / 2336)
    assert S.ghost_costs(16, 15).init_channels == 8


def test_seed_ghost_width() -> None:
    assert [S.seed_ghost_width(c) for c in (15, 17, 1, 16)] == [14, 16, 0, 16]


def test_widgets_text_changes_with_first_slider() -> None:
    a, fa = S.explore_ghost(2, 64)
    b, fb = S.explore_ghost(3, 64)
    assert "1.75x fewer" in a and "2.27x fewer" in b
    c, fc = S.explore_groups(4)
    assert "c=256" in c and "12,845,056 MACs" in c
    for fig in (fa, fb, fc):
        plt.close(fig)
