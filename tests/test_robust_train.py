"""effnb.train against divergence, bad labels, absurd configs and a poisoned cache: a
non-finite loss stops the run naming epoch and step; a bad cache entry is never served."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from effnb._cache import CacheWarning
from effnb._checks import SizeLimitError
from effnb.train import NonFiniteLossError, TrainConfig, evaluate, train, train_cached


def _net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 10))


def _data(n: int = 64, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 4, 4, generator=g), torch.arange(n) % 10)


FAST = {"epochs": 2, "batch_size": 16, "progress": False, "threads": 1}


class _BlowsUp(nn.Module):
    """Returns NaN logits from the ``at``-th training call on (a run that diverges)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 10)
        self.at, self.calls = at, 0

    def forward(self, x):
        logits = self.fc(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls >= self.at:
                return logits * float("nan")
        return logits


def test_nan_loss_stops_training_naming_epoch_and_step():
    model = _BlowsUp(at=6)  # 4 steps per epoch: the 6th call is epoch 2, step 2
    with pytest.raises(
        NonFiniteLossError, match=r"the loss is nan at epoch 2, step 2 of 4"
    ) as info:
        train(model, _data(), _data(32, 1), **FAST)
    assert (info.value.epoch, info.value.step) == (2, 2)
    assert "the run diverged: lower lr" in str(info.value)
    assert isinstance(info.value, FloatingPointError)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN update applied


def test_non_finite_inputs_are_blamed_on_the_data():
    data = _data()
    data.tensors[0][20, 0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteLossError, match="this batch's inputs hold NaN or infinity"):
        train(_net(), data, _data(32, 1), **FAST)


def test_labels_outside_the_models_classes_name_the_dataset():
    bad = TensorDataset(torch.randn(64, 1, 4, 4), torch.arange(64) % 12)  # labels up to 11
    with pytest.raises(
        ValueError, match=r"train_set has labels in \[\d+, 11\] but the model has 10 classes"
    ):
        train(_net(), bad, _data(32, 1), **FAST)
    with pytest.raises(ValueError, match=r"dataset has labels in \[-1, 9\]"):
        evaluate(_net(), TensorDataset(torch.randn(4, 1, 4, 4), torch.tensor([0, -1, 9, 3])))


@pytest.mark.parametrize(
    "field, value, exc, msg",
    [
        ("epochs", 10**9, SizeLimitError, "epochs must be an integer <= 10000"),
        ("lr", 1e6, ValueError, r"lr must be a finite number in \(0.0, 10.0\]"),
        ("lr", float("inf"), ValueError, "lr must be a finite number"),
        ("lr", "0.1", TypeError, "lr must be a finite number"),
        ("momentum", float("nan"), ValueError, r"momentum must be in \[0, 1\), got nan"),
        ("weight_decay", 5.0, ValueError, r"weight_decay must be a finite number in \[0.0, 1.0\]"),
        ("label_smoothing", -0.1, ValueError, "label_smoothing must be in"),
        ("seed", 2**64, SizeLimitError, "seed must be an integer <="),
        ("threads", 10**4, SizeLimitError, r"threads must be an integer <= \d+ \(4 x the"),
        ("batch_size", np.float64(64), TypeError, "batch_size must be an integer"),
        ("progress", 1, TypeError, "progress must be True or False"),
        ("device", 0, TypeError, "device must be a string"),
    ],
)
def test_absurd_configs_are_refused_naming_the_field(field, value, exc, msg):
    with pytest.raises(exc, match=msg):
        TrainConfig(**{field: value})


def test_numpy_and_tensor_values_are_stored_as_python_numbers():
    cfg = TrainConfig(lr=np.float32(0.1), epochs=np.int64(3), momentum=torch.tensor(0.5))
    assert (type(cfg.lr), type(cfg.epochs), type(cfg.momentum)) == (float, int, float)
    assert cfg.epochs == 3 and cfg.lr == pytest.approx(0.1)
    json.dumps(cfg.__dict__)  # serialisable into a cache key


# --- train_cached ---------------------------------------------------------------------------


def _cached(**kwargs):
    return train_cached(_net, _data(), _data(32, 1), key={"net": "linear"}, **FAST, **kwargs)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    first = _cached()
    (path,) = (tmp_path / "train").glob("*.json")
    return path, first


def _edit(path, **value_changes):
    data = json.loads(path.read_text())
    data["value"].update(value_changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (lambda p: p.write_text(p.read_text()[:100]), "it cannot be read"),
        (lambda p: _edit(p, final_val_acc=7.5), "final_val_acc=7.5 is not an accuracy"),
        (lambda p: _edit(p, best_val_acc=float("nan")), "best_val_acc=nan is not an accuracy"),
        (lambda p: _edit(p, history=[]), "it holds no history"),
        (lambda p: _edit(p, history=[{"epoch": 1}]), "history entry 1 does not have the fields"),
        (lambda p: _edit(p, params=-1), "params=-1 is not a number >= 0"),
        (
            lambda p: p.write_text(
                json.dumps(
                    json.loads(p.read_text())
                    | {"key": json.loads(p.read_text())["key"] | {"torch": "1.0"}}
                )
            ),
            "it was stored under another key",
        ),
    ],
)
def test_a_poisoned_training_cache_is_named_retrained_and_rewritten(cache, corrupt, reason):
    path, first = cache
    assert _cached() == first  # served from the cache
    corrupt(path)
    with pytest.warns(CacheWarning) as record:
        again = _cached()
    assert str(path) in str(record[0].message) and reason in str(record[0].message)
    assert _numbers(again) == _numbers(first)  # retrained: same numbers, new wall times
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert _cached() == again  # the rewritten entry is served again


def _numbers(result) -> list[tuple]:
    return [(h.train_loss, h.train_acc, h.val_loss, h.val_acc) for h in result.history]


def test_diverging_runs_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    with pytest.raises(NonFiniteLossError):
        train_cached(lambda: _BlowsUp(at=2), _data(), _data(32, 1), key={"net": "blows up"}, **FAST)
    assert not list(tmp_path.rglob("*.json"))


def test_train_cached_checks_its_arguments():
    with pytest.raises(TypeError, match="build must be a function returning a fresh model"):
        train_cached(_net(), _data(), _data(), key={})
    with pytest.raises(TypeError, match="key must be a mapping"):
        train_cached(_net, _data(), _data(), key="linear")
    with pytest.raises(TypeError, match="use_cache must be True or False"):
        train_cached(_net, _data(), _data(), key={}, use_cache="no")
    with pytest.raises(TypeError, match="val_set must be a torch Dataset"):
        train_cached(_net, _data(), [1], key={})
