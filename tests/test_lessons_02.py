"""Values computed by effnb.lessons.squeeze_excite (notebook 02); no timings asserted."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn

import effnb
from effnb.costs import se_params
from effnb.layers import ConvNormAct, DepthwiseSeparableConv, make_divisible
from effnb.lessons import squeeze_excite as se

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _one_thread():
    """One forward pass per test, no speed needed: one thread avoids fighting over shared cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --- counting (notebook 00) ------------------------------------------------------------


@pytest.mark.parametrize(("channels", "r"), [(64, 4), (240, 16), (960, 4)])
def test_se_param_rows(channels, r):
    row = se.se_param_rows(channels, r)
    assert row["formula_no_bias"] == row["counted_weights"] == 2 * channels * channels // r
    assert (
        row["formula_with_bias"]
        == row["counted_all"]
        == 2 * channels**2 // r + channels // r + channels
    )


def test_seed_se_gate_is_one_half_everywhere():
    gate = se.seed_se_gate(8, 16)
    assert gate.shape == (4, 8)
    assert torch.all(gate == 0.5)
    assert not torch.all(se.seed_se_gate(32, 16) == 0.5)


def test_se_sweep_values():
    rows = se.se_sweep((2, 4, 8, 16, 32), size=28)
    base = rows[0]
    assert base["params"] == 26_240 and base["macs"] == 19_756_800
    by_r = {row["r"]: row for row in rows[1:]}
    for r, row in by_r.items():
        squeeze = 240 // r
        assert row["params"] - base["params"] == se_params(240, squeeze)
        assert row["macs"] - base["macs"] == 2 * 240 * squeeze
    assert by_r[2]["macs_overhead_pct"] < 0.3


def test_gate_curves():
    sig, hsig = se.gate_curves([-3.0, 0.0, 3.0])
    assert list(hsig) == [0.0, 0.5, 1.0]
    assert sig[1] == 0.5


def test_se_widths_mobilenet_v3_large():
    widths = se.se_widths(effnb.create_model("mobilenet_v3_large"))
    assert [w.squeeze for w in widths] == [24, 32, 32, 120, 168, 168, 240, 240]
    assert all(w.squeeze == make_divisible(w.channels / 4, 8) for w in widths)


def test_se_widths_efficientnet_b0_use_block_input():
    widths = se.se_widths(effnb.create_model("efficientnet_b0"))
    assert len(widths) == 16
    assert all(w.squeeze == max(1, w.block_in // 4) for w in widths)
    assert (widths[1].block_in, widths[1].channels, widths[1].squeeze) == (16, 96, 4)


def test_se_widths_ghostnet():
    widths = se.se_widths(effnb.create_model("ghostnet"))
    assert widths[0].channels == 72 and widths[0].squeeze == 20
    assert all(w.squeeze == make_divisible(w.channels / 4, 4) for w in widths)


def test_mobilenet_v3_small_unrounded_is_the_seed_count():
    model, changes = se.mobilenet_v3_small_unrounded()
    assert sum(p.numel() for p in model.parameters()) == 2_537_238
    changed = [(c, a, b) for c, a, b in changes if a != b]
    assert changed == [(16, 8, 4), (240, 64, 60), (240, 64, 60), (120, 32, 30), (144, 40, 36)]
    assert sum(se_params(c, a) - se_params(c, b) for c, a, b in changes) == 2_542_856 - 2_537_238
    x = torch.zeros(1, 3, 64, 64)
    assert model.eval()(x).shape == (1, 1000)


def test_se_cost_view():
    text, fig = se.se_cost_view(240, 4)
    assert "squeeze 60" in text and f"{se_params(240, 60):,}" in text
    text2, fig2 = se.se_cost_view(248, 4)
    assert text2 != text
    text3, fig3 = se.se_cost_view(8, 16)
    assert "zero-width" in text3
    for f in (fig, fig2, fig3):
        matplotlib.pyplot.close(f)


def test_se_block_shapes():
    block = se.se_block(4)
    assert block.se.fc1.out_channels == 60
    assert isinstance(se.se_block(None).se, nn.Identity)
    assert isinstance(DepthwiseSeparableConv(8, 8).conv_dw, ConvNormAct)


def test_ratio_iqr_of_paired_rounds():
    from effnb.bench import Comparison

    cmp = Comparison(
        records={}, rounds={"a": (2.0, 4.0, 6.0, 8.0, 10.0), "b": (1.0, 2.0, 3.0, 4.0, 5.0)}
    )
    assert se.ratio_iqr(cmp, "a", "b") == 0.0  # drift cancels in the paired ratio
    cmp2 = Comparison(records={}, rounds={"a": (1.0, 2.0, 3.0, 4.0), "b": (1.0, 1.0, 1.0, 1.0)})
    assert se.ratio_iqr(cmp2, "a", "b") == pytest.approx(2.5)
