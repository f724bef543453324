"""The checkpoint loader matches by structure and checks every shape: a scrambled checkpoint
raises naming its entries, the model is untouched, and the loader takes what real
checkpoints look like (a path, a wrapper, a DataParallel prefix)."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from torch import nn

import effnb
from effnb.models.weights import (
    CheckpointMismatchError,
    load_reference_state_dict,
    reference_key_map,
    synthetic_state_dict,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "reference"


@pytest.fixture(scope="module")
def v3():
    """timm's mobilenetv3_small_100 layout: its conv_head is the one documented reshape."""
    ref = json.loads((FIXTURES / "variants" / "mobilenet_v3_small_100.json").read_text())
    model = effnb.create_model(ref["effnb"]["model"], **ref["effnb"]["kwargs"]).eval()
    return model, synthetic_state_dict(ref["state_dict"])


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_untouched(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def _expect_mismatch(model, state, *names: str) -> CheckpointMismatchError:
    before = _snapshot(model)
    with pytest.raises(CheckpointMismatchError) as info:
        load_reference_state_dict(model, state)
    for name in names:
        assert name in str(info.value)
    _assert_untouched(model, before)
    return info.value


def test_the_documented_reshape_loads(v3):
    model, state = v3
    assert state["conv_head.weight"].shape == (1024, 576, 1, 1)
    load_reference_state_dict(model, state)
    head = dict(model.named_parameters())[reference_key_map(model, state)["conv_head.weight"]]
    assert head.shape == (1024, 576)
    assert torch.equal(head, state["conv_head.weight"].reshape(1024, 576))


def test_transposed_classifier_raises_and_names_both_entries(v3):
    model, state = v3
    bad = dict(state)
    bad["classifier.weight"] = state["classifier.weight"].t().contiguous()  # (1024, 1000)
    err = _expect_mismatch(
        model, bad, "reference entry classifier.weight (1024, 1000) does not match", "(1000, 1024)"
    )
    assert err.mismatched == [
        ("classifier.weight", (1024, 1000), "classifier.fc.weight", (1000, 1024))
    ]
    assert not err.missing and not err.unexpected


def test_same_numel_conv_of_another_shape_raises(v3):
    model, state = v3
    key = next(k for k, v in state.items() if v.ndim == 4 and v.shape[2:] == (3, 3))
    w = state[key]
    bad = dict(state)
    bad[key] = w.reshape(w.shape[0], w.shape[1], 1, -1)  # (C, 1, 1, 9): same numel
    _expect_mismatch(model, bad, key, "does not match")


def test_reshape_is_only_1x1_conv_to_linear(v3):
    model, state = v3
    bad = dict(state)
    bad["conv_head.weight"] = state["conv_head.weight"].reshape(1024, 576, 1)  # 3-D
    _expect_mismatch(model, bad, "conv_head.weight")
    bad["conv_head.weight"] = state["conv_head.weight"].reshape(1024, 1, 576, 1)  # not 1x1
    _expect_mismatch(model, bad, "conv_head.weight")


def test_missing_and_unexpected_entries_are_named(v3):
    model, state = v3
    dropped = {k: v for k, v in state.items() if not k.startswith("blocks.5.")}
    err = _expect_mismatch(model, dropped, "missing", "not the same architecture")
    assert err.missing and not err.unexpected
    extra = dict(state) | {
        "aux_head.weight": torch.zeros(10, 1024),
        "aux_head.bias": torch.zeros(10),
    }
    err = _expect_mismatch(model, extra, "unexpected", "aux_head.weight", "aux_head.bias")
    assert err.unexpected == ["aux_head.weight", "aux_head.bias"] and not err.missing


def test_another_architecture_lists_every_category(v3):
    model, _ = v3
    ref = json.loads((FIXTURES / "mobilenet_v2.json").read_text())
    err = _expect_mismatch(
        model, synthetic_state_dict(ref["state_dict"]), "not the same architecture"
    )
    assert err.missing and err.unexpected
    assert "... and" in str(err)  # long lists are cut, with the count


def test_a_path_a_wrapper_and_a_dataparallel_prefix_load(v3, tmp_path):
    model, state = v3
    expected = _snapshot(load_reference_state_dict(model, state))
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 90}
    path = tmp_path / "ckpt.pth"
    torch.save(wrapped, path)
    for source in (path, str(path), wrapped, {"model": state}):
        fresh = effnb.create_model("mobilenet_v3_small", num_classes=1000)
        load_reference_state_dict(fresh, source)
        got = fresh.state_dict()
        assert all(torch.equal(got[k], v) for k, v in expected.items())


def test_old_checkpoints_without_batch_counters_load(v3):
    model, state = v3
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    load_reference_state_dict(model, old)
    assert list(reference_key_map(model, old)) == list(old)


@pytest.mark.parametrize(
    "source, exc, msg",
    [
        ("missing.pth", FileNotFoundError, "checkpoint file .*missing.pth does not exist"),
        ([1, 2], TypeError, "state_dict must be a mapping .* got list"),
        ({"a.weight": [1.0]}, TypeError, r"state-dict entry 'a.weight' must be a tensor, got list"),
        ({}, ValueError, "holds no entries"),
    ],
)
def test_bad_sources_are_named(v3, tmp_path, monkeypatch, source, exc, msg):
    monkeypatch.chdir(tmp_path)
    model, _ = v3
    with pytest.raises(exc, match=msg):
        load_reference_state_dict(model, source)


def test_truncated_file_is_named_and_model_untouched(v3, tmp_path):
    model, state = v3
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[:1000])
    before = _snapshot(model)
    with pytest.raises(ValueError, match=f"cannot read checkpoint {path}"):
        load_reference_state_dict(model, path)
    _assert_untouched(model, before)


def test_non_finite_weights_are_refused(v3):
    model, state = v3
    bad = dict(state)
    bad["classifier.bias"] = state["classifier.bias"].clone()
    bad["classifier.bias"][3] = float("nan")
    before = _snapshot(model)
    with pytest.raises(ValueError, match="NaN or infinite values in 1 entries: classifier.bias"):
        load_reference_state_dict(model, bad)
    _assert_untouched(model, before)


def test_reference_shapes_are_checked():
    model = nn.Linear(2, 3)
    assert reference_key_map(model, {"fc.weight": torch.Size([3, 2]), "fc.bias": (3,)}) == {
        "fc.weight": "weight",
        "fc.bias": "bias",
    }
    with pytest.raises(TypeError, match="reference entry 'fc.weight' must be a tensor or a shape"):
        reference_key_map(model, {"fc.weight": "3x2", "fc.bias": (3,)})
    with pytest.raises(ValueError, match="shape of reference entry 'fc.bias'"):
        reference_key_map(model, {"fc.weight": (3, 2), "fc.bias": (-3,)})
    with pytest.raises(TypeError, match="reference_shapes must be a mapping"):
        reference_key_map(model, [(3, 2)])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        reference_key_map("resnet", {})
