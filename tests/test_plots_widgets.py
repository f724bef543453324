"""Figure saving and the widget wrapper: moving a control calls the plain function again."""

from __future__ import annotations

import pathlib

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from effnb import plots  # noqa: E402
from effnb.widgets import explorer, float_slider, int_slider, select  # noqa: E402


def test_save_figure_names_and_returns_a_portable_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNB_FIGURES", str(tmp_path / "figures"))
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


ROOT = pathlib.Path(__file__).resolve().parent.parent


def _project(folder: pathlib.Path, name: str) -> pathlib.Path:
    (folder / "notebooks").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
    return folder


def test_figures_dir_is_the_environment_variable_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNB_FIGURES", str(tmp_path / "scratch"))
    assert plots.figures_dir(ROOT / "notebooks") == tmp_path / "scratch"
    assert plots.FIGURES_DIR == tmp_path / "scratch"  # the old name reads the same, now


def test_figures_dir_is_the_figures_folder_of_the_course_project(tmp_path, monkeypatch):
    monkeypatch.delenv("EFFNB_FIGURES", raising=False)
    course = _project(tmp_path / "course", "effnb")
    deep = course / "notebooks" / "sub"
    deep.mkdir()
    assert plots.figures_dir(course / "notebooks") == course.resolve() / "figures"
    assert plots.figures_dir(deep) == course.resolve() / "figures"  # the nearest project up
    assert plots.figures_dir(ROOT / "notebooks") == ROOT / "figures"  # this checkout


def test_figures_dir_ignores_other_projects_and_falls_back_to_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("EFFNB_FIGURES", raising=False)
    other = _project(tmp_path / "other", "not-effnb")
    assert plots.figures_dir(other / "notebooks") == (other / "notebooks").resolve() / "figures"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "pyproject.toml").write_text("[project\nname = effnb")
    assert plots.figures_dir(tmp_path / "broken") == (tmp_path / "broken").resolve() / "figures"


def test_save_figure_writes_where_figures_dir_says_at_save_time(tmp_path, monkeypatch):
    monkeypatch.delenv("EFFNB_FIGURES", raising=False)
    course = _project(tmp_path / "course", "effnb")
    monkeypatch.chdir(course / "notebooks")
    fig, ax = plots.figure()
    ax.plot([0, 2], [1, 0])
    assert str(plots.show_figure(fig, "05-where")) == "figures/05-where.png"
    assert (course / "figures" / "05-where.png").is_file()
    assert not (course / "notebooks" / "figures").exists()


def test_figures_never_go_inside_the_package(monkeypatch):
    monkeypatch.setenv("EFFNB_FIGURES", str(pathlib.Path(plots.__file__).parent / "figures"))
    with pytest.raises(ValueError, match="inside the installed effnb package"):
        plots.figures_dir()
