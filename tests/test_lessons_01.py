"""effnb.lessons.depthwise (notebook 01's plots and widget) and the helper behind check 1.3."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from effnb.costs import profile, reduction_factor
from effnb.exercises.nb01 import _v1_macs
from effnb.lessons import depthwise
from effnb.models import create_model
from effnb.roofline import Peaks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """A few small forward passes: one thread avoids fighting over shared cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
    plt.close("all")


def test_reduction_view_text_and_mark_follow_c_out():
    text, fig = depthwise.reduction_view(256, 3)
    assert text.startswith("C_out = 256, k = 3: reduction 256 * 9 / (9 + 256) = 8.694x")
    assert "(96.6% of the k^2 = 9 limit)" in text
    text2, fig2 = depthwise.reduction_view(264, 5)
    assert f"= {reduction_factor(264, 5):.3f}x" in text2 and "k^2 = 25 limit" in text2
    labels = [t.get_text() for t in fig2.axes[0].get_legend().get_texts()]
    assert labels[-1] == f"{reduction_factor(264, 5):.2f}x at C_out = 264, k = 5"
    ((x, y),) = fig2.axes[0].lines[-1].get_xydata()
    assert (x, y) == (264, pytest.approx(reduction_factor(264, 5)))
    with pytest.raises(ValueError, match="kernel_size"):
        depthwise.reduction_view(256, 4)


def test_plot_width_resolution_draws_one_line_per_alpha_and_the_paper():
    macs = {(a, r): int(a * a * r * r * 10) for a in (1.0, 0.5) for r in (128, 224)}
    fig = depthwise.plot_width_resolution(macs, {(1.0, 224): 0.5, (0.5, 224): 0.1})
    lines = fig.axes[0].lines
    assert [ln.get_label() for ln in lines] == ["alpha = 1.0", "alpha = 0.5", "paper"]
    assert list(lines[1].get_ydata()) == [0.5 * 0.5 * 128 * 128 * 10 / 1e6, 0.5 * 0.5 * 224 * 224 * 10 / 1e6]  # fmt: skip
    assert list(lines[2].get_xdata()) == [224, 224]


def test_plot_roofline_draws_the_min_of_both_roofs_and_labels_shares():
    pk = Peaks("cpu", 1, 40e9, 0.0, 10e9, 0.0, 1024, 2**28)
    points = {"cpu": {"depthwise": (1.0, 2.5e9), "standard": (100.0, 30e9)}}
    fig = depthwise.plot_roofline({"cpu": pk}, points)
    ax = fig.axes[0]
    roof = next(ln for ln in ax.lines if ln.get_label() == "attainable (roofs)")
    x, y = roof.get_xdata(), roof.get_ydata()
    assert y.max() == pytest.approx(40.0)  # GMAC/s
    low = x < 4.0  # left of the ridge the memory roof: I x 10 GB/s
    assert y[low] == pytest.approx(x[low] * 10.0)
    texts = {t.get_text() for t in ax.texts}
    assert {"25%", "75%"} <= texts  # 2.5 of a 10 GMAC/s roof, 30 of 40
    assert "bandwidth roof 10.0 GB/s" in texts
    assert "compute roof 40.0 GMAC/s" in [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize(("alpha", "res"), [(1.0, 224), (0.75, 200), (0.25, 130), (0.5, 97)])
def test_check_1_3_reference_formula_equals_profile(alpha, res):
    assert _v1_macs(alpha, res) == profile(create_model("mobilenet_v1", width_mult=alpha), res).macs
    assert (
        _v1_macs(alpha, res, fc=False)
        == _v1_macs(alpha, res)
        - create_model("mobilenet_v1", width_mult=alpha).classifier.fc.weight.numel()
    )


def test_check_1_3_floor_variant_differs_only_at_odd_sizes():
    assert _v1_macs(1.0, 224, floor_halving=True) == _v1_macs(1.0, 224)
    assert _v1_macs(0.75, 200, floor_halving=True) < _v1_macs(0.75, 200)
