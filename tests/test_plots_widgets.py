"""Figure saving and the widget wrapper: moving a control calls the plain function again."""

from __future__ import annotations

import os
import pathlib

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from effnb import plots  # noqa: E402
from effnb.widgets import explorer, float_slider, int_slider, select  # noqa: E402


def test_save_figure_names_and_returns_a_portable_path(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "FIGURES_DIR", tmp_path / "figures")
    fig, ax = plots.figure()
    ax.plot([0, 1], [0, 1])
    path = plots.save_figure(fig, "01-reduction-factor")
    assert str(path) == "figures/01-reduction-factor.png"
    assert (tmp_path / "figures" / "01-reduction-factor.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="figure name must look like 'NN-some-name'"):
        plots.save_figure(fig, "reduction")


def test_explorer_calls_the_plain_function_on_every_change():
    calls = []

    def fn(n: int, scale: float, mode: str):
        calls.append((n, scale, mode))
        return f"n = {n}", None

    ui = explorer(
        fn, n=int_slider(2, 1, 10), scale=float_slider(1.0, 0.5, 2.0), mode=select(["a", "b"])
    )
    assert isinstance(ui, widgets.VBox) and len(ui.children) == 4
    assert calls == [(2, 1.0, "a")]
    ui.children[0].value = 5
    assert calls[-1] == (5, 1.0, "a")
    assert ui.children[0].description == "n" and ui.children[0].continuous_update is False


def test_explorer_rejects_non_widgets():
    with pytest.raises(TypeError, match="control 'n' must be an ipywidgets value widget, got int"):
        explorer(lambda n: ("", None), n=3)


def test_figures_dir_defaults_to_the_repo_figures_folder():
    assert plots.DEFAULT_FIGURES_DIR == pathlib.Path(__file__).resolve().parent.parent / "figures"
    expected = os.environ.get("EFFNB_FIGURES", plots.DEFAULT_FIGURES_DIR)
    assert plots.FIGURES_DIR == pathlib.Path(expected)
