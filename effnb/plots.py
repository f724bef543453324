"""One figure style for the course, and ``save_figure`` into ``figures/NN-name.png``."""

from __future__ import annotations

import math
import os
import pathlib
import re

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

__all__ = ["FIGURES_DIR", "figure", "plain_log", "save_figure", "show_figure", "use_style"]

DEFAULT_FIGURES_DIR = pathlib.Path(__file__).resolve().parent.parent / "figures"
# EFFNB_FIGURES redirects figures (the test run uses a scratch folder, so it never rewrites figures/).
FIGURES_DIR = pathlib.Path(os.environ.get("EFFNB_FIGURES", DEFAULT_FIGURES_DIR))
_NAME = re.compile(r"^\d\d-[a-z0-9][a-z0-9-]*$")

STYLE = {
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


def figure(nrows: int = 1, ncols: int = 1, width: float = 6.4, height: float = 4.0, **kwargs):
    """``plt.subplots`` in the course style: returns (fig, ax or axes)."""
    use_style()
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def save_figure(fig, name: str) -> pathlib.PurePosixPath:
    """Save ``fig`` as ``figures/<name>.png``; ``name`` is 'NN-topic', NN the notebook number.

    Returns the path relative to the project ('figures/NN-topic.png'), the same on every machine.
    """
    if not _NAME.match(name):
        raise ValueError(
            f"figure name must look like 'NN-some-name' (notebook number first), got {name!r}"
        )
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return pathlib.PurePosixPath(FIGURES_DIR.name, path.name)


def show_figure(fig, name: str) -> pathlib.PurePosixPath:
    """Save ``fig`` as ``figures/<name>.png`` and show **that file** in the notebook.

    The notebook displays the saved PNG's bytes (not a second rendering), so the image stored
    in the notebook and the one in ``figures/`` are the same file; ``tests/test_figures.py``
    checks it. The figure is closed afterwards. Returns the path, as ``save_figure`` does.
    """
    import matplotlib.pyplot as plt

    rel = save_figure(fig, name)
    data = (FIGURES_DIR / f"{name}.png").read_bytes()
    plt.close(fig)
    try:
        from IPython.display import Image, display
    except ImportError:  # outside IPython there is nothing to show
        return rel
    display(Image(data=data, format="png"))
    return rel


def plain_log(ax, axes: str = "xy") -> None:
    """Log scale on ``axes`` with plain tick labels (30, 100, 300 rather than 3 x 10^1)."""

    def minor(v: float, _) -> str:  # label the 2x and 5x minor ticks only
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
        return f"{v:g}" if mantissa in (2, 5) else ""

    for a in axes:
        getattr(ax, f"set_{a}scale")("log")
        getattr(ax, f"{a}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        getattr(ax, f"{a}axis").set_minor_formatter(FuncFormatter(minor))
