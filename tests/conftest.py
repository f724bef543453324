"""Shared fixtures: the reference facts recorded from torchvision/timm (tests/fixtures/reference)."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

REFERENCE_DIR = pathlib.Path(__file__).parent / "fixtures" / "reference"
REFERENCE_NAMES = sorted(p.stem for p in REFERENCE_DIR.glob("*.json"))


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests are small; two threads keep them from fighting over a 2-core CI machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(old, 2))
    yield
    torch.set_num_threads(old)


def load_reference(name: str) -> dict:
    return json.loads((REFERENCE_DIR / f"{name}.json").read_text())


# Modules that execute notebooks, build and serve the course site, drive a browser or export
# every zoo model to every runtime: `make test` runs them, `make check` (-m "not slow") does not.
SLOW_MODULES = {
    "test_book",
    "test_browser",
    "test_deploy_backends",
    "test_exercises",
    "test_nas_dask",
    "test_nas_optuna",
    "test_wheel",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
