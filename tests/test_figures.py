"""``figures/NN-*.png`` are the images their stored notebooks show, byte for byte.

``effnb.plots.show_figure`` saves a figure and displays the saved file, so one run of
``make run-notebooks`` writes both; a figure from another run fails here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIGURES = sorted((ROOT / "figures").glob("[0-9][0-9]-*.png"))


def _shown(notebook: pathlib.Path) -> set[str]:
    hashes = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                hashes.add(hashlib.sha256(base64.b64decode(png)).hexdigest())
    return hashes


@pytest.mark.parametrize("figure", FIGURES, ids=lambda p: p.name)
def test_figure_is_the_image_its_notebook_shows(figure):
    number = figure.name[:2]
    notebooks = list((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    assert len(notebooks) == 1, f"no notebook {number}_*.ipynb for {figure.name}"
    digest = hashlib.sha256(figure.read_bytes()).hexdigest()
    assert digest in _shown(notebooks[0]), (
        f"{figure.name} is not an image stored in {notebooks[0].name}: "
        "regenerate both with `make run-notebooks`"
    )


def test_every_saved_name_has_a_file():
    """Each show_figure/save_figure name in a notebook exists in figures/ (no orphan code)."""
    import re

    missing = []
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        source = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
        for name in re.findall(r"(?:show|save)_figure\([^\"']*[\"'](\d\d-[a-z0-9-]+)[\"']", source):
            if not (ROOT / "figures" / f"{name}.png").is_file():
                missing.append(name)
    assert not missing, f"figures named in notebooks but missing from figures/: {missing}"
