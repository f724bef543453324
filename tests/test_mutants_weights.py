"""effnb.models.weights on a four-module model small enough to read every entry: the key map,
the 1x1 conv <-> linear reshape, each error message whole, the unwrapping of real checkpoint
files, and the synthetic weights entry by entry. (scripts/mutants.py runs mutmut on these.)"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from effnb.models import weights
from effnb.models.weights import (
    CheckpointMismatchError,
    load_reference_state_dict,
    read_checkpoint,
    reference_key_map,
    synthetic_state_dict,
)


class Tiny(nn.Module):
    """conv (4, 3, 3, 5) -> BN(4) -> a linear head (5 <- 4), stored as the reference's 1x1 conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, (3, 5), bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


REF_SHAPES = {
    "features.0.weight": (4, 3, 3, 5),
    "features.1.weight": (4,),
    "features.1.bias": (4,),
    "features.1.running_mean": (4,),
    "features.1.running_var": (4,),
    "features.1.num_batches_tracked": (),
    "head.weight": (5, 4, 1, 1),
    "head.bias": (5,),
}
EXPECTED_MAP = {
    "features.0.weight": "conv.weight",
    "features.1.weight": "bn.weight",
    "features.1.bias": "bn.bias",
    "features.1.running_mean": "bn.running_mean",
    "features.1.running_var": "bn.running_var",
    "features.1.num_batches_tracked": "bn.num_batches_tracked",
    "head.weight": "fc.weight",
    "head.bias": "fc.bias",
}


def test_key_map_pairs_every_entry_in_reference_order():
    mapping = reference_key_map(Tiny(), REF_SHAPES)
    assert mapping == EXPECTED_MAP and list(mapping) == list(REF_SHAPES)
    tensors = {k: torch.zeros(s) for k, s in REF_SHAPES.items()}
    assert reference_key_map(Tiny(), tensors) == EXPECTED_MAP
    sizes = {k: torch.Size(s) for k, s in REF_SHAPES.items()}
    assert reference_key_map(Tiny(), sizes) == EXPECTED_MAP


def test_load_copies_every_value_and_reshapes_the_head():
    state = synthetic_state_dict(REF_SHAPES, seed=3)
    state["features.1.num_batches_tracked"] = torch.tensor(7)
    model = Tiny()
    assert load_reference_state_dict(model, state) is model
    ours = model.state_dict()
    for ref_key, our_key in EXPECTED_MAP.items():
        assert torch.equal(ours[our_key], state[ref_key].reshape(ours[our_key].shape))
    assert ours["fc.weight"].shape == (5, 4)
    assert int(ours["bn.num_batches_tracked"]) == 7


def test_a_checkpoint_without_batch_counters_keeps_the_models():
    state = synthetic_state_dict(REF_SHAPES)
    del state["features.1.num_batches_tracked"]
    model = Tiny()
    model.bn.num_batches_tracked.fill_(11)
    mapping = reference_key_map(model, state)
    assert "bn.num_batches_tracked" not in mapping.values() and len(mapping) == 7
    load_reference_state_dict(model, state)
    assert int(model.bn.num_batches_tracked) == 11


def test_a_counter_the_model_lacks_is_unexpected():
    model = Tiny()
    model.bn.num_batches_tracked = None  # no counter in this model's state dict
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(model, REF_SHAPES)
    assert err.value.unexpected == ["features.1.num_batches_tracked"]
    assert err.value.missing == [] and err.value.mismatched == []
    assert str(err.value) == (
        "the checkpoint does not fit Tiny: 0 mismatched, 0 missing and 1 unexpected entries "
        "(the reference has 8 state-dict entries and Tiny has 7); they are not the same "
        "architecture\n  unexpected (in the checkpoint, not in Tiny) (1):\n"
        "    features.1.num_batches_tracked"
    )


def test_a_mismatched_shape_is_named_whole_and_the_model_untouched():
    shapes = dict(REF_SHAPES, **{"features.0.weight": (4, 3, 5, 3)})  # kernel transposed
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_reference_state_dict(model, synthetic_state_dict(shapes))
    assert err.value.mismatched == [
        ("features.0.weight", (4, 3, 5, 3), "conv.weight", (4, 3, 3, 5))
    ]
    assert str(err.value) == (
        "the checkpoint does not fit Tiny: 1 mismatched, 0 missing and 0 unexpected entries "
        "(the reference has 8 state-dict entries and Tiny has 8)\n  mismatched (1):\n"
        "    reference entry features.0.weight (4, 3, 5, 3) does not match effnb entry "
        "conv.weight (4, 3, 3, 5)"
    )
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_named_model_missing_module_and_listing_limit():
    model = Tiny()
    model.name = "tiny-net"
    shapes = {k: v for k, v in REF_SHAPES.items() if not k.startswith("features.1")}
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(model, shapes)
    text = str(err.value)
    assert text.startswith(
        "the checkpoint does not fit tiny-net: 0 mismatched, 5 missing and 0 unexpected entries "
        "(the reference has 3 state-dict entries and tiny-net has 8); they are not the same "
        "architecture\n  missing (in tiny-net, not in the checkpoint) (5):\n    bn.weight\n"
    )
    assert err.value.missing == [
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    many = [f"e{i}" for i in range(10)]
    assert weights._listing("t", many) == (
        "\n  t (10):\n    " + "\n    ".join(many[:8]) + "\n    ... and 2 more"
    )
    assert weights._listing("t", many[:8]) == "\n  t (8):\n    " + "\n    ".join(many[:8])


def test_shape_rules():
    fit = weights._shapes_fit
    assert fit((5, 4, 1, 1), (5, 4), "weight") and fit((5, 4), (5, 4, 1, 1), "weight")
    assert fit((4, 3, 3, 5), (4, 3, 3, 5), "weight")
    assert not fit((5, 4, 1, 1), (4, 5), "weight")  # transposed
    assert not fit((5, 4, 1, 1), (5, 4), "bias")  # only weights are reshaped
    assert not fit((5, 4, 1, 2), (5, 4), "weight")  # not a 1x1 kernel
    assert not fit((5, 4, 1, 1), (5, 4, 1), "weight")  # 4-D <-> 3-D is not the reshape
    assert not fit((5, 4, 1, 1, 1), (5, 4, 1, 1), "weight")
    assert weights._comparable("weight", (5, 4, 1, 1)) == (5, 4)
    assert weights._comparable("weight", (5, 4, 3, 1)) == (5, 4, 3, 1)
    assert weights._comparable("weight", (5, 4, 1)) == (5, 4, 1)
    assert weights._comparable("bias", (5, 4, 1, 1)) == (5, 4, 1, 1)
    assert weights._kind("a.b.weight") == "weight" and weights._path("a.b.weight") == "a.b"
    assert weights._kind("weight") == "weight" and weights._path("weight") == ""
    modules = weights._modules({"b.w": (1,), "a.w": (2,), "b.v": (3,)})
    assert [(m.path, m.entries) for m in modules] == [
        ("b", {"w": ("b.w", (1,)), "v": ("b.v", (3,))}),
        ("a", {"w": ("a.w", (2,))}),
    ]
    assert modules[0].role == ("v", "w")
    assert modules[0].signature == (("v", (3,)), ("w", (1,)))


def test_reference_shapes_are_checked():
    with pytest.raises(TypeError) as err:
        reference_key_map(Tiny(), [("a", (1,))])
    assert str(err.value) == (
        "reference_shapes must be a mapping of state-dict keys to shapes or tensors, got list"
    )
    with pytest.raises(TypeError, match=r"^reference state-dict keys must be strings, got 3$"):
        reference_key_map(Tiny(), {3: (1,)})
    with pytest.raises(
        TypeError,
        match=r"^reference entry 'a' must be a tensor or a shape \(a sequence of ints\), got str$",
    ):
        reference_key_map(Tiny(), {"a": "4"})
    with pytest.raises(ValueError, match=r"^shape of reference entry 'a' must be an integer >= 0"):
        reference_key_map(Tiny(), {"a": (4, -1)})
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got dict$"):
        reference_key_map({}, REF_SHAPES)
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got dict$"):
        load_reference_state_dict({}, REF_SHAPES)
    assert weights._as_shape("a", (0, 2)) == (0, 2)  # an empty dimension is a shape


# --- reading checkpoints -----------------------------------------------------------------------


def _state():
    return {"a.weight": torch.ones(2), "b.bias": torch.zeros(3)}


@pytest.mark.parametrize(
    "wrapped",
    [
        {"state_dict": _state()},
        {"model": _state()},
        {"module." + k: v for k, v in _state().items()},
        {"_orig_mod." + k: v for k, v in _state().items()},
        {"module._orig_mod." + k: v for k, v in _state().items()},
        {"model": {"module." + k: v for k, v in _state().items()}},
    ],
)
def test_wrappers_and_prefixes_are_removed(wrapped):
    state = read_checkpoint(wrapped)
    assert list(state) == ["a.weight", "b.bias"]
    assert torch.equal(state["b.bias"], torch.zeros(3))


def test_a_prefix_on_some_keys_only_is_kept_and_the_result_is_a_copy():
    state = {"module.a": torch.ones(1), "b": torch.ones(1)}
    assert list(read_checkpoint(state)) == ["module.a", "b"]
    out = read_checkpoint(state)
    out["c"] = torch.ones(1)
    assert "c" not in state
    # a key named "model" whose value is a tensor is an entry, not a wrapper
    assert list(read_checkpoint({"model": torch.ones(1)})) == ["model"]


def test_files_are_read_and_errors_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": _state()}, path)
    assert list(read_checkpoint(path)) == ["a.weight", "b.bias"]
    assert list(read_checkpoint(str(path))) == ["a.weight", "b.bias"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert list(read_checkpoint("~/ckpt.pth")) == ["a.weight", "b.bias"]
    with pytest.raises(FileNotFoundError) as err:
        read_checkpoint(tmp_path / "absent.pth")
    assert str(err.value) == f"checkpoint file {tmp_path / 'absent.pth'} does not exist"
    torch.save({"a": 1}, path)
    with pytest.raises(TypeError) as err:
        read_checkpoint(path)
    assert str(err.value) == f"state-dict entry 'a' in {path} must be a tensor, got int"
    torch.save({}, path)
    with pytest.raises(ValueError) as err:
        read_checkpoint(path)
    assert str(err.value) == f"the checkpoint in {path} holds no entries"
    torch.save([1, 2], path)
    with pytest.raises(TypeError) as err:
        read_checkpoint(path)
    assert str(err.value) == (
        "state_dict must be a mapping of names to tensors, a {'state_dict': ...} wrapper or a "
        f"file path, got list in {path}"
    )
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=rf"^cannot read checkpoint {re.escape(str(path))}: "):
        read_checkpoint(path)


def test_in_memory_errors():
    with pytest.raises(ValueError, match="^the checkpoint holds no entries$"):
        read_checkpoint({})
    with pytest.raises(TypeError, match="^state-dict keys must be strings, got 1$"):
        read_checkpoint({1: torch.ones(1)})
    with pytest.raises(TypeError, match="^state-dict entry 'a' must be a tensor, got list$"):
        read_checkpoint({"a": [1.0]})
    with pytest.raises(TypeError, match="a {'state_dict': ...} wrapper or a file path, got int$"):
        read_checkpoint(3)


def test_non_finite_entries_are_listed():
    state = synthetic_state_dict(REF_SHAPES)
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    state["head.bias"][1] = float("inf")
    model = Tiny()
    with pytest.raises(ValueError) as err:
        load_reference_state_dict(model, state)
    assert str(err.value) == (
        "the checkpoint holds NaN or infinite values in 2 entries: features.0.weight, head.bias"
    )
    nine = {f"m{i}.weight": torch.full((1,), float("nan")) for i in range(9)}
    monkey = nn.Module()
    for i in range(9):
        monkey.add_module(f"p{i}", nn.Module())
        monkey.get_submodule(f"p{i}").register_parameter("weight", nn.Parameter(torch.ones(1)))
    with pytest.raises(ValueError) as err:
        load_reference_state_dict(monkey, nine)
    names = ", ".join(f"m{i}.weight" for i in range(8))
    assert (
        str(err.value) == f"the checkpoint holds NaN or infinite values in 9 entries: {names} ..."
    )
    # empty and integer tensors are not checked (and load)
    empty = nn.Module()
    empty.register_buffer("idx", torch.zeros(0))
    empty.register_buffer("count", torch.tensor(5))
    load_reference_state_dict(empty, {"idx": torch.zeros(0), "count": torch.tensor(9)})
    assert int(empty.count) == 9


# --- synthetic weights ---------------------------------------------------------------------


def test_synthetic_weights_entry_by_entry():
    state = synthetic_state_dict(REF_SHAPES, seed=5)
    assert list(state) == list(REF_SHAPES)

    def gen(i):
        return torch.Generator().manual_seed(5 + i)

    expected = {
        "features.0.weight": torch.randn((4, 3, 3, 5), generator=gen(0)) / 45**0.5,
        "features.1.weight": 1.0 + 0.1 * torch.randn((4,), generator=gen(1)),
        "features.1.bias": 0.1 * torch.randn((4,), generator=gen(2)),
        "features.1.running_mean": 0.1 * torch.randn((4,), generator=gen(3)),
        "features.1.running_var": 0.5 + torch.rand((4,), generator=gen(4)),
        "features.1.num_batches_tracked": torch.zeros((), dtype=torch.long),
        "head.weight": torch.randn((5, 4, 1, 1), generator=gen(6)) / 4**0.5,
        "head.bias": 0.1 * torch.randn((5,), generator=gen(7)),
    }
    for key, value in expected.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key
    assert torch.equal(
        synthetic_state_dict(REF_SHAPES)["head.bias"],
        synthetic_state_dict(REF_SHAPES, 0)["head.bias"],
    )
    assert not torch.equal(synthetic_state_dict(REF_SHAPES, 1)["head.bias"], state["head.bias"])
    assert synthetic_state_dict({"x.weight": torch.zeros(2, 3)})["x.weight"].shape == (2, 3)
    assert synthetic_state_dict(REF_SHAPES, seed=0)  # seed 0 is allowed
    with pytest.raises(ValueError, match="^seed must be an integer >= 0, got -1$"):
        synthetic_state_dict(REF_SHAPES, seed=-1)


# --- what the first mutation run left alive (scripts/mutants.py) ---------------------------


def test_a_gap_inside_a_changed_stretch_is_named_not_shifted():
    # reference: a conv of another kernel shape, then an extra (weight, bias) module, then BN
    # and head; ours: conv, BN, fc. The conv pairs as a mismatch, the extra is unexpected.
    shapes = {"features.0.weight": (4, 3, 5, 3), "extra.weight": (2, 2), "extra.bias": (2,)}
    shapes |= {k: v for k, v in REF_SHAPES.items() if k != "features.0.weight"}
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(Tiny(), shapes)
    assert err.value.unexpected == ["extra.weight", "extra.bias"]
    assert err.value.missing == []
    assert [m[0] for m in err.value.mismatched] == ["features.0.weight"]


def test_a_module_only_we_have_inside_a_changed_stretch_is_missing():
    class Wider(nn.Module):
        """Tiny with one more module between the conv and the BatchNorm."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, (3, 5), bias=False)
            self.extra = nn.Linear(2, 2)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4, 5)

    shapes = dict(REF_SHAPES, **{"features.0.weight": (4, 3, 5, 3)})
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(Wider(), shapes)
    assert err.value.missing == ["extra.weight", "extra.bias"]
    assert err.value.unexpected == []
    assert [m[2] for m in err.value.mismatched] == ["conv.weight"]


def test_long_models_align_without_junk_heuristics():
    # difflib's autojunk treats an entry seen in > 1% of 200+ items as junk: 250 equal convs
    # would then not align around one extra reference module
    model = nn.Sequential(*[nn.Conv2d(2, 2, 1, bias=False) for _ in range(250)])
    shapes = {f"{i}.weight": (2, 2, 1, 1) for i in range(125)}
    shapes["extra.weight"] = (3, 2, 1, 1)
    shapes |= {f"{i}.weight": (2, 2, 1, 1) for i in range(125, 250)}
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(model, shapes)
    assert err.value.unexpected == ["extra.weight"]
    assert err.value.missing == [] and err.value.mismatched == []
    del shapes["extra.weight"]
    assert reference_key_map(model, shapes) == {k: k for k in shapes}


def test_an_unexpected_counter_listed_first_does_not_hide_the_rest():
    model = Tiny()
    model.bn.num_batches_tracked = None
    shapes = {"features.0.weight": (4, 3, 3, 5), "features.1.num_batches_tracked": ()}
    shapes |= {f"features.1.{k}": (5,) for k in ("weight", "bias", "running_mean", "running_var")}
    shapes |= {"head.weight": (5, 4, 1, 1), "head.bias": (5,)}
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(model, shapes)
    assert err.value.unexpected == ["features.1.num_batches_tracked"]
    assert [m[0] for m in err.value.mismatched] == [
        "features.1.weight",
        "features.1.bias",
        "features.1.running_mean",
        "features.1.running_var",
    ]


def test_files_are_loaded_on_the_cpu_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pth"
    torch.save(_state(), path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(weights.torch, "load", spy)
    read_checkpoint(path)
    assert calls == [{"map_location": "cpu", "weights_only": True}]


def test_exactly_eight_bad_entries_are_all_listed():
    eight = {f"m{i}.weight": torch.full((1,), float("nan")) for i in range(8)}
    model = nn.Module()
    for i in range(8):
        model.add_module(f"p{i}", nn.Module())
        model.get_submodule(f"p{i}").register_parameter("weight", nn.Parameter(torch.ones(1)))
    with pytest.raises(ValueError) as err:
        load_reference_state_dict(model, eight)
    names = ", ".join(f"m{i}.weight" for i in range(8))
    assert str(err.value) == f"the checkpoint holds NaN or infinite values in 8 entries: {names}"


def test_synthetic_linear_weights_and_bad_shapes():
    got = synthetic_state_dict({"fc.weight": (5, 4)}, seed=2)["fc.weight"]
    assert torch.equal(got, torch.randn((5, 4), generator=torch.Generator().manual_seed(2)) / 2)
    with pytest.raises(
        TypeError, match=r"^reference entry 'fc.weight' must be a tensor or a shape"
    ):
        synthetic_state_dict({"fc.weight": "5x4"})


def test_a_long_changed_stretch_pairs_by_role():
    # every conv differs in shape: one changed stretch of 250 modules of one role (and one extra
    # module of another role in the middle), which must pair one to one as mismatches around
    # the extra one (difflib's autojunk would unpair everything after it)
    model = nn.Sequential(*[nn.Conv2d(2, 2, 1, bias=False) for _ in range(250)])
    shapes = {f"{i}.weight": (2, 3, 1, 1) for i in range(125)}
    shapes |= {"extra.weight": (2, 2), "extra.bias": (2,)}
    shapes |= {f"{i}.weight": (2, 3, 1, 1) for i in range(125, 250)}
    with pytest.raises(CheckpointMismatchError) as err:
        reference_key_map(model, shapes)
    assert len(err.value.mismatched) == 250
    assert err.value.unexpected == ["extra.weight", "extra.bias"] and err.value.missing == []


def test_an_unreadable_file_names_the_error_type(tmp_path):
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception) as direct:
        torch.load(path, map_location="cpu", weights_only=True)
    with pytest.raises(ValueError) as err:
        read_checkpoint(path)
    assert str(err.value) == (
        f"cannot read checkpoint {path}: {type(direct.value).__name__}: {direct.value}"
    )
