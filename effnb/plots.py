"""One figure style for the course, and ``save_figure`` into ``figures/NN-name.png``.

Where figures go is decided at each save (``figures_dir``): ``$EFFNB_FIGURES`` if set, else the
``figures/`` folder of the effnb project the notebook runs in, found from the working
directory, else ``./figures``; never inside the installed package.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
import tomllib
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # matplotlib >= 3.8's names of the rc settings

__all__ = ["figure", "figures_dir", "plain_log", "save_figure", "show_figure", "use_style"]

PROJECT_NAME = "effnb"  # the [project] name in the course's pyproject.toml
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_NAME = re.compile(r"^\d\d-[a-z0-9][a-z0-9-]*$")


def _is_course_project(folder: pathlib.Path) -> bool:
    """True if ``folder`` holds a pyproject.toml whose [project] name is ``PROJECT_NAME``."""
    try:
        with open(folder / "pyproject.toml", "rb") as f:
            return tomllib.load(f).get("project", {}).get("name") == PROJECT_NAME
    except (OSError, tomllib.TOMLDecodeError):
        return False


def figures_dir(cwd: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """The folder ``save_figure`` writes to, resolved now (not at import):

    1. ``$EFFNB_FIGURES`` when set (the tests point it at a scratch folder);
    2. else ``<project>/figures``, ``<project>`` the nearest of ``cwd`` (default: the working
       directory) and its parents holding a ``pyproject.toml`` with ``name = "effnb"``: a
       notebook runs in ``notebooks/``, so its figures land in the project's ``figures/``,
       whether effnb is installed editable or from a wheel;
    3. else ``<cwd>/figures``.

    A folder inside the installed ``effnb`` package is refused (ValueError): figures belong to
    the project, not to site-packages.
    """
    env = os.environ.get("EFFNB_FIGURES")
    if env:
        folder = pathlib.Path(env).expanduser()
    else:
        start = pathlib.Path.cwd() if cwd is None else pathlib.Path(cwd)
        start = start.resolve()
        project = next((d for d in (start, *start.parents) if _is_course_project(d)), None)
        folder = (project or start) / "figures"
    if folder.resolve().is_relative_to(_PACKAGE_DIR):
        raise ValueError(
            f"figures would be written inside the installed effnb package ({folder}); run from "
            "the course folder or set EFFNB_FIGURES to a folder of your own"
        )
    return folder


def __getattr__(name: str) -> Any:
    """``FIGURES_DIR``: ``figures_dir()`` at the moment it is read (kept for older callers)."""
    if name == "FIGURES_DIR":
        return figures_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


STYLE: dict[RcKeyType, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
}


def use_style() -> None:
    """Apply the course style globally (a context manager would close inline figures early)."""
    plt.rcParams.update(STYLE)


def figure(
    nrows: int = 1, ncols: int = 1, width: float = 6.4, height: float = 4.0, **kwargs: Any
) -> tuple[Figure, Any]:
    """``plt.subplots`` in the course style: returns (fig, ax or axes)."""
    use_style()
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def save_figure(fig: Figure, name: str) -> pathlib.PurePosixPath:
    """Save ``fig`` as ``<figures_dir()>/<name>.png``; ``name`` is 'NN-topic', NN the notebook
    number. Returns 'figures/NN-topic.png' (folder name and file), the same on every machine.
    """
    path = _figure_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return pathlib.PurePosixPath(path.parent.name, path.name)


def _figure_path(name: str) -> pathlib.Path:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"figure name must look like 'NN-some-name' (notebook number first), got {name!r}"
        )
    return figures_dir() / f"{name}.png"


def show_figure(fig: Figure, name: str) -> pathlib.PurePosixPath:
    """Save ``fig`` as ``figures/<name>.png`` and show **that file** in the notebook.

    The notebook displays the saved PNG's bytes (not a second rendering), so the image stored
    in the notebook and the one in ``figures/`` are the same file; ``tests/test_figures.py``
    checks it. The figure is closed afterwards. Returns the path, as ``save_figure`` does.
    """
    path = _figure_path(name)
    rel = save_figure(fig, name)
    data = path.read_bytes()
    plt.close(fig)
    try:
        from IPython.display import Image, display
    except ImportError:  # outside IPython there is nothing to show
        return rel
    display(Image(data=data, format="png"))
    return rel


def plain_log(ax: Axes, axes: str = "xy") -> None:
    """Log scale on ``axes`` with plain tick labels (30, 100, 300 rather than 3 x 10^1)."""

    def minor(v: float, _: Any) -> str:  # label the 2x and 5x minor ticks only
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
        return f"{v:g}" if mantissa in (2, 5) else ""

    for a in axes:
        getattr(ax, f"set_{a}scale")("log")
        getattr(ax, f"{a}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        getattr(ax, f"{a}axis").set_minor_formatter(FuncFormatter(minor))
