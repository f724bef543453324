"""effnb.train: determinism, learning on digits, config validation, evaluate."""

import dataclasses

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from effnb.data import digits
from effnb.train import EpochStats, TrainConfig, TrainResult, evaluate, train


def _tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


@pytest.fixture(scope="module")
def small_digits():
    return digits(image_size=8, channels=1)


def test_same_seed_same_history(small_digits):
    tr, va = small_digits
    cfg = TrainConfig(epochs=2, progress=False, threads=1)
    a = train(_tiny_net(), tr, va, cfg)
    b = train(_tiny_net(), tr, va, cfg)
    strip = [(h.train_loss, h.train_acc, h.val_loss, h.val_acc) for h in a.history]
    assert strip == [(h.train_loss, h.train_acc, h.val_loss, h.val_acc) for h in b.history]
    c = train(_tiny_net(), tr, va, cfg, seed=1)
    assert c.history[0].train_loss != a.history[0].train_loss


def test_tiny_model_learns_digits(small_digits):
    tr, va = small_digits
    model = _tiny_net()
    result = train(model, tr, va, epochs=3, lr=0.1, progress=False, threads=1)
    assert isinstance(result, TrainResult) and len(result.history) == 3
    assert all(isinstance(h, EpochStats) for h in result.history)
    assert [h.epoch for h in result.history] == [1, 2, 3]
    assert result.final_val_acc > 0.5  # chance is 0.1
    assert result.best_val_acc == max(h.val_acc for h in result.history)
    assert result.params == sum(p.numel() for p in model.parameters())
    # evaluate agrees with the last epoch's validation numbers and restores the mode
    model.train()
    loss, acc = evaluate(model, va)
    assert acc == pytest.approx(result.final_val_acc)
    assert loss == pytest.approx(result.history[-1].val_loss, rel=1e-5)
    assert model.training


def test_evaluate_counts_correct_predictions():
    x = torch.zeros(4, 3)
    y = torch.tensor([0, 1, 2, 0])

    class Fixed(nn.Module):
        def forward(self, inp):
            return torch.tensor([[5.0, 0, 0]]).expand(inp.shape[0], 3)  # always class 0

    loss, acc = evaluate(Fixed(), TensorDataset(x, y), batch_size=3)
    assert acc == pytest.approx(0.5)
    expected = torch.nn.functional.cross_entropy(Fixed()(x), y).item()
    assert loss == pytest.approx(expected)


@pytest.mark.parametrize(
    "field, value, exc",
    [
        ("epochs", 0, ValueError),
        ("batch_size", 0, ValueError),
        ("lr", 0.0, ValueError),
        ("lr", float("nan"), ValueError),
        ("momentum", 1.0, ValueError),
        ("weight_decay", -1e-4, ValueError),
        ("label_smoothing", 1.0, ValueError),
        ("seed", -1, ValueError),
        ("threads", 0, ValueError),
        ("epochs", 2.5, TypeError),
        ("progress", "yes", TypeError),
        ("device", "tpu", (ValueError, RuntimeError)),
    ],
)
def test_bad_config_values_raise(field, value, exc):
    with pytest.raises(exc):
        TrainConfig(**{field: value})


def test_unknown_override_lists_fields(small_digits):
    tr, va = small_digits
    with pytest.raises(TypeError, match="epochs"):
        train(_tiny_net(), tr, va, epoch=3)
    with pytest.raises(ValueError, match="epochs"):
        train(_tiny_net(), tr, va, epochs=0)
    with pytest.raises(TypeError, match="config"):
        train(_tiny_net(), tr, va, {"epochs": 1})
    with pytest.raises(TypeError, match="train_set"):
        train(_tiny_net(), [1, 2], va)


def test_config_is_frozen_and_defaults():
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum) == (10, 64, 0.05, 0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3


def test_train_restores_global_state(small_digits):
    tr, va = small_digits
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    train(_tiny_net(), tr, va, epochs=1, threads=1, progress=False)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
