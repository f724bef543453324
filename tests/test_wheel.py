"""effnb installed from its wheel, not the checkout: builds a model and saves figures where
``effnb.plots.figures_dir`` says, never inside site-packages.

The wheel is built offline from a copy of the sources (nothing is written into the checkout),
installed without dependencies into a fresh venv, and that venv reaches torch, matplotlib and
the rest through a ``.pth`` line naming this environment's site-packages, added *after* the
install so that pip never sees the editable effnb. Every subprocess has a timeout.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
MOBILENET_V3_SMALL_PARAMS = 2_542_856  # torchvision mobilenet_v3_small

PROBE = textwrap.dedent(
    """
    import json, os, pathlib, sys
    import effnb
    from effnb.plots import figure, show_figure

    model = effnb.create_model("mobilenet_v3_small")
    fig, ax = figure()
    ax.plot([0, 1], [1, 0])
    rel = show_figure(fig, "99-wheel-check")
    print(json.dumps({
        "effnb": effnb.__file__,
        "params": sum(p.numel() for p in model.parameters()),
        "returned": str(rel),
        "cwd": os.getcwd(),
    }))
    """
)


def _run(args: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{args[:4]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _files(folder: pathlib.Path) -> set[pathlib.Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    """(python of a fresh venv with effnb installed from its wheel, that venv's site-packages)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-CONTENT.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "effnb", src / "effnb", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", str(src), "-w", str(dist)],
        timeout=300,
    )
    (wheel,) = dist.glob("effnb-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--no-index", "--quiet", str(wheel)],
        timeout=300,
    )
    site = pathlib.Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            timeout=60,
        ).stdout.strip()
    )
    assert (site / "effnb" / "__init__.py").is_file()  # a copy, not an editable link
    # torch & co. from this environment, after the venv's own site-packages (a path line, not
    # a site dir, so the editable install's .pth finder in it is never run)
    (site / "zz_effnb_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


def _probe(python: pathlib.Path, cwd: pathlib.Path, tmp: pathlib.Path, **env: str) -> dict:
    import json

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EFFNB_"))}
    clean |= {"PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": str(tmp / "mpl"), "MPLBACKEND": "Agg"}
    proc = _run([str(python), "-c", PROBE], timeout=300, cwd=cwd, env=clean | env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _course(folder: pathlib.Path) -> pathlib.Path:
    (folder / "notebooks").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "effnb"\nversion = "0.1.0"\n')
    return folder


def test_installed_wheel_imports_from_site_packages_and_builds_a_model(wheel_venv, tmp_path):
    python, site = wheel_venv
    before = _files(site)
    out = _probe(python, tmp_path, tmp_path)
    assert pathlib.Path(out["effnb"]).resolve() == (site / "effnb" / "__init__.py").resolve()
    assert not pathlib.Path(out["effnb"]).resolve().is_relative_to(ROOT)
    assert out["params"] == MOBILENET_V3_SMALL_PARAMS
    # outside any course project: ./figures of the working directory
    assert out["returned"] == "figures/99-wheel-check.png"
    assert (tmp_path / "figures" / "99-wheel-check.png").stat().st_size > 1000
    assert _files(site) == before, "the installed effnb wrote into site-packages"


def test_figures_go_to_the_course_project_of_the_working_directory(wheel_venv, tmp_path):
    python, site = wheel_venv
    before = _files(site)
    course = _course(tmp_path / "course")
    _probe(python, course / "notebooks", tmp_path)
    assert (course / "figures" / "99-wheel-check.png").stat().st_size > 1000
    assert not (course / "notebooks" / "figures").exists()
    assert _files(site) == before


def test_figures_go_to_effnb_figures_when_set(wheel_venv, tmp_path):
    python, site = wheel_venv
    before = _files(site)
    course = _course(tmp_path / "course")
    scratch = tmp_path / "elsewhere" / "figs"
    _probe(python, course / "notebooks", tmp_path, EFFNB_FIGURES=str(scratch))
    assert (scratch / "99-wheel-check.png").stat().st_size > 1000
    assert not (course / "figures").exists()
    assert _files(site) == before


def test_the_wheel_carries_both_licences():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE", "LICENSE-CONTENT.md"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in (ROOT / "LICENSE-CONTENT.md").read_text()
