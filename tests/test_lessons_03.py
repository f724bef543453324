"""effnb.lessons.inverted (notebook 03's plotting and widget glue) and the checks of
effnb.exercises.nb03, on inputs asymmetric enough to tell a right result from a wrong one."""

from __future__ import annotations

import math
import pathlib
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from effnb import layers, profile  # noqa: E402
from effnb.exercises import check  # noqa: E402
from effnb.exercises.solutions import parse  # noqa: E402
from effnb.layers import ConvNormAct, SqueezeExcite  # noqa: E402
from effnb.lessons import inverted as L  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _small_net(width_mult: float, expansion: int, last: int = 40) -> nn.Module:
    """stem 3 -> c, two blocks (the second with SE), head c -> last, classifier last -> 7."""
    c = max(4, int(8 * width_mult))
    return nn.Sequential(
        OrderedDict(
            stem=ConvNormAct(3, c, 3, 2),
            blocks=nn.Sequential(
                layers.InvertedResidual(c, c + 2, c * expansion),
                layers.InvertedResidual(c + 2, c + 2, (c + 2) * expansion, se_channels=3),
            ),
            head=ConvNormAct(c + 2, last, 1),
            classifier=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(last, 7)),
        )
    )


def test_part_costs_groups_layers_by_named_part() -> None:
    net = _small_net(1.0, 3)
    parts = L.part_costs(profile(net, (3, 32, 32)))
    assert list(parts) == ["stem", "blocks.0", "blocks.1", "head", "classifier"]
    for name, part in parts.items():
        module = net.get_submodule(name)
        assert part["params"] == sum(p.numel() for p in module.parameters()), name
    # output channels come from the last conv/linear of each part, never from the SE convs
    assert [p["channels"] for p in parts.values()] == [8, 10, 10, 40, 7]
    assert parts["stem"]["macs"] == 3 * 3 * 3 * 8 * 16 * 16
    assert parts["classifier"]["macs"] == 40 * 7


def test_explore_mobilenet_v2_text_and_bars() -> None:
    text, fig = L.explore_mobilenet_v2(
        lambda w, t: _small_net(w, t), lambda w, t: _small_net(w, t, last=20), 0.5, 2
    )
    ref, tut = _small_net(0.5, 2), _small_net(0.5, 2, last=20)
    n_ref, n_tut = (sum(p.numel() for p in m.parameters()) for m in (ref, tut))
    assert f"{n_ref:,} params" in text and f"{n_tut:,} params" in text
    assert "output channels, reference: [4, 6, 6, 40]" in text
    assert "output channels, tutorial:  [4, 6, 6, 20]" in text
    params_ax, macs_ax = fig.axes
    heights = [bar.get_height() for bar in params_ax.patches]
    assert len(heights) == 2 * 5
    assert sum(heights[:5]) == pytest.approx(n_ref / 1e3)
    assert sum(heights[5:]) == pytest.approx(n_tut / 1e3)
    assert params_ax.get_yscale() == "log" and macs_ax.get_yscale() == "linear"
    text2, fig2 = L.explore_mobilenet_v2(
        lambda w, t: _small_net(w, t), lambda w, t: _small_net(w, t, last=20), 1.0, 2
    )
    assert text2 != text
    plt.close(fig)
    plt.close(fig2)


def test_plot_relu_manifolds_panels_and_curves() -> None:
    x = np.stack([np.linspace(0, 1, 50), np.linspace(0, 2, 50)], axis=1)
    pictures = {
        n: {"pinv": x * 0.5, "linear": x, "pinv_error": 0.5, "linear_error": 0.01 * n}
        for n in (2, 30)
    }
    table = {2: {"pinv_error": 0.8, "linear_error": 0.7, "recoverable": 0.25}}
    table[30] = {"pinv_error": 0.3, "linear_error": 0.001, "recoverable": 0.99}
    fig = L.plot_relu_manifolds(x, pictures, table)
    axes = fig.axes
    assert len(axes) == 2 * 3
    assert "n=30: linear decoder\nerror 0.300" in [ax.get_title() for ax in axes]
    curves = {line.get_label(): line.get_ydata() for line in axes[3].get_lines()}
    assert list(curves["not recoverable"]) == pytest.approx([0.75, 0.01])
    assert list(curves["linear-decoder error"]) == pytest.approx([0.7, 0.001])
    plt.close(fig)


def test_plot_block_comparison_bars() -> None:
    rows = [
        {"label": "a", "params": 3000, "macs": 5e6, "skip_bytes": 4096, "widest_bytes": 8192},
        {"label": "b", "params": 1000, "macs": 2e6, "skip_bytes": 1024, "widest_bytes": 8192},
    ]
    fig = L.plot_block_comparison(rows)
    params, macs, memory = fig.axes
    assert [p.get_height() for p in params.patches] == [3.0, 1.0]
    assert [p.get_height() for p in macs.patches] == [5.0, 2.0]
    assert [p.get_height() for p in memory.patches] == [4.0, 1.0, 8.0, 8.0]
    plt.close(fig)


def test_plot_expansion_sweep_draws_the_interval() -> None:
    fig = L.plot_expansion_sweep(
        (1, 2, 6), {"MACs": [1, 3.5, 10.7]}, [(1, 1, 1), (1.2, 1.4, 1.9), (math.nan, 2.5, math.nan)]
    )
    ax = fig.axes[0]
    ys = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert ys["MACs"] == [1, 3.5, 10.7]
    assert [c.get_label() for c in ax.containers] == ["measured time (median, 95% CI)"]
    segments = ax.containers[0].lines[2][0].get_segments()
    assert segments[1][:, 1].tolist() == pytest.approx([1.2, 1.9])
    plt.close(fig)


def test_plot_projection_runs_dots_and_error_bars() -> None:
    runs = {
        "linear": {"acc": [90.0, 92.0, 94.0], "loss": [0.1, 0.2, 0.3]},
        "ReLU6": {"acc": [80.0, 81.0, 85.0], "loss": [0.5, 0.5, 0.8]},
    }
    fig = L.plot_projection_runs(runs)
    acc_ax, loss_ax = fig.axes
    assert acc_ax.get_ylabel() == "acc" and loss_ax.get_ylabel() == "loss"
    dots = [line for line in acc_ax.get_lines() if line.get_marker() == "o"]
    assert [list(d.get_ydata()) for d in dots] == [[90.0, 92.0, 94.0], [80.0, 81.0, 85.0]]
    bars = acc_ax.containers
    assert bars[1].lines[0].get_ydata()[0] == pytest.approx(82.0)
    top = bars[1].lines[2][0].get_segments()[0][:, 1]
    assert top.tolist() == pytest.approx([82.0 - math.sqrt(7), 82.0 + math.sqrt(7)])
    plt.close(fig)


def test_plot_activations_no_curve_hidden() -> None:
    fig = L.plot_activations()
    relu_ax, swish_ax, gap_ax = fig.axes
    relu, relu6 = relu_ax.get_lines()
    assert relu.get_linestyle() != relu6.get_linestyle()
    assert relu.get_linewidth() > relu6.get_linewidth()  # the wide one underneath stays visible
    x = torch.as_tensor(relu.get_xdata())
    assert np.allclose(relu6.get_ydata(), torch.nn.functional.relu6(x))
    assert max(relu.get_ydata()) == pytest.approx(8.0) and max(relu6.get_ydata()) == 6.0
    gap = gap_ax.get_lines()[0].get_ydata()
    assert max(abs(gap)) == pytest.approx(0.1424, abs=1e-3)
    plt.close(fig)


# --- the exercise checks, run outside the notebook ------------------------------------------


def _answers():
    return parse(ROOT / "solutions" / "03_inverted_residuals.py")


def _run(source: str):
    namespace = {
        "math": math,
        "torch": torch,
        "nn": nn,
        "ConvNormAct": ConvNormAct,
        "SqueezeExcite": SqueezeExcite,
    }
    exec(source, namespace)
    return namespace.get("make_divisible") or namespace["MyMBConv"]


@pytest.mark.parametrize("ex_id", ["3.1", "3.2"])
def test_solution_passes_and_wrong_answers_name_their_mistake(ex_id, capsys) -> None:
    answers = _answers()[ex_id]
    check(ex_id, _run(answers.solution))
    assert f"Exercise {ex_id}: correct" in capsys.readouterr().out
    for phrase, source in answers.wrong:
        with pytest.raises(AssertionError) as err:
            check(ex_id, _run(source))
        assert phrase.lower() in str(err.value).lower()


def test_make_divisible_check_rejects_effnb_copy_and_floats(capsys) -> None:
    with pytest.raises(AssertionError, match="write yours"):
        check("3.1", layers.make_divisible)
    with pytest.raises(AssertionError, match="return an int"):
        check("3.1", lambda v, d=8, m=None: float(layers.make_divisible(v, d, m)))
    with pytest.raises(AssertionError, match="floor"):
        check("3.1", lambda v, d=8, m=None: max(m or d, int(v // d) * d))
    check("3.1", lambda v, d=8, m=None: layers.make_divisible(v, d, m))
    assert "Exercise 3.1: correct" in capsys.readouterr().out


def test_mbconv_check_rejects_effnb_block_and_whole_batch_drop(capsys) -> None:
    with pytest.raises(AssertionError, match="write yours"):
        check("3.2", layers.InvertedResidual)
    source = _answers()["3.2"].solution.replace(
        "torch.rand(x.shape[0], 1, 1, 1) >= self.p", "torch.rand(1) >= self.p"
    )
    with pytest.raises(AssertionError, match="per sample"):
        check("3.2", _run(source))
    check("3.2", ...)
    assert "Exercise 3.2: not attempted yet" in capsys.readouterr().out
