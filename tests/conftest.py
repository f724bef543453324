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


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial running statistics and affine parameters, so folding has work to do."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model.eval()


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


# The heaviest unit tests (each over a second or two on 2 cores, measured with --durations):
# every zoo model built, traced or checked against its published rows. `make test` runs them;
# leaving them out keeps `make check` under a minute.
SLOW_TESTS = {
    "test_deploy::test_deployed_model_matches_eager",
    "test_deploy::test_trace_is_shape_generic_and_options_agree",
    "test_efficientnet_rounding::test_released_and_ceil_counts",
    "test_lessons_07::test_solutions_pass_and_wrong_answers_name_their_mistake",
    "test_lessons_07::test_zoo_view_counts_at_the_chosen_resolution",
    "test_models::test_output_shape_with_custom_classes",
    "test_models::test_param_count_matches_reference_to_the_unit",
    "test_models::test_reference_weights_give_reference_logits",
    "test_published_tables::test_published_row",
    "test_published_tables::test_published_width_equals_timm",
    "test_robust_deploy::test_block_replacements_are_for_the_torch_backend_unless_asked",
    "test_robust_deploy::test_deploying_twice_is_quiet_and_equal",
    "test_robust_nas::test_a_broken_pool_stops_the_search_but_keeps_what_finished",
    "test_robust_nas::test_latency_is_never_measured_while_evaluations_run",
    "test_robust_nas::test_worker_failures_are_kept_with_their_traceback_and_the_rest_is_returned",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = f"{item.path.stem}::{getattr(item, 'originalname', item.name)}"
        if item.path.stem in SLOW_MODULES or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
