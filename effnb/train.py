"""A small, seeded training loop: SGD with momentum, cosine learning rate, cross-entropy.

Notebooks 05 (training the families on digits) and 06 (NAS: accuracy of each candidate)
train through ``train``; it is deliberately plain so the notebooks can show it with
``inspect.getsource``. What it guarantees:

- Determinism on CPU: ``torch.manual_seed(config.seed)``, a seeded ``torch.Generator`` for
  the shuffling, ``torch.use_deterministic_algorithms(True, warn_only=True)`` while it runs
  and a fixed thread count, so two runs with the same seed and the same initial weights
  give the same history to the last bit on the same machine. (Seed the model's
  initialisation yourself: ``torch.manual_seed(0)`` before ``create_model``.)
- The learning rate follows a cosine from ``lr`` to 0 over all steps (Loshchilov & Hutter,
  SGDR, arXiv 1608.03983, without restarts): lr_t = lr * (1 + cos(pi * t / T)) / 2.
- Weight decay applies to conv and linear weights only, not to BatchNorm or biases (decaying
  a BN scale only fights the normalisation; standard in the MobileNet/EfficientNet recipes).
- A loss that becomes NaN or infinite stops the run with ``NonFiniteLossError`` naming the
  epoch and step, before that step's update; labels outside the model's classes are an
  error naming the dataset, not a garbage loss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from effnb._checks import (
    check_bool,
    check_instance,
    check_int,
    check_module,
    check_probability,
    check_real,
    check_seed,
    check_threads,
)
from effnb.bench import resolve_device

__all__ = [
    "EpochStats",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "train",
    "train_cached",
]

MAX_EPOCHS = 10_000
MAX_LR = 10.0  # SGD above this diverges on anything the course trains


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; ``epoch`` and ``step`` (1-based) say where."""

    def __init__(self, message: str, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field is checked at construction."""

    epochs: int = 10  # digits saturates in a handful of epochs; 10 leaves margin for tiny nets
    batch_size: int = 64  # ~22 steps per epoch on 1,437 digits: enough updates, fast on CPU
    lr: float = 0.05  # the usual SGD lr of 0.1 per 256 images scaled up for short runs with BN
    momentum: float = 0.9  # the standard SGD momentum of the ResNet/MobileNet recipes
    weight_decay: float = 5e-4  # common CIFAR-scale value; small data overfits without it
    label_smoothing: float = 0.0  # off by default: digits is easy and smoothing blurs val loss
    seed: int = 0  # seeds shuffling, dropout and drop-path: same seed -> same history
    device: str = "cpu"  # CPU-first; "cuda" when effnb.bench.available_devices() lists it
    threads: int | None = None  # None keeps torch.get_num_threads(); fixed counts reproduce
    progress: bool = True  # a tqdm bar per run; turn off inside searches and tests

    def __post_init__(self) -> None:
        # Checked; a numpy scalar or 0-d tensor is stored as the Python number it holds,
        # so configs compare, hash and serialise into cache keys alike.
        checked = {
            "epochs": check_int("epochs", self.epochs, maximum=MAX_EPOCHS),
            "batch_size": check_int("batch_size", self.batch_size),
            "seed": check_seed("seed", self.seed),
            "lr": check_real("lr", self.lr, minimum=0.0, maximum=MAX_LR, include_minimum=False),
            "momentum": check_probability("momentum", self.momentum),
            "weight_decay": check_real("weight_decay", self.weight_decay, minimum=0.0, maximum=1.0),
            "label_smoothing": check_probability("label_smoothing", self.label_smoothing),
            "threads": None if self.threads is None else check_threads("threads", self.threads),
            "progress": check_bool("progress", self.progress),
        }
        for name, value in checked.items():
            if type(getattr(self, name)) not in (int, float, bool, type(None)):
                object.__setattr__(self, name, value)  # numpy scalar or tensor -> Python
        check_instance("device", self.device, str, "a string such as 'cpu' or 'cuda'")
        resolve_device(self.device)  # raises on an unknown or absent device

    def replace(self, **overrides) -> TrainConfig:
        """A copy with some fields changed; unknown names raise TypeError listing the fields."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s) {unknown}; the fields are {fields}")
        return dataclasses.replace(self, **overrides)


@dataclass(frozen=True)
class EpochStats:
    """Mean training loss/accuracy over the epoch's batches, then a full validation pass."""

    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float  # wall time of the epoch (training + validation)


@dataclass(frozen=True)
class TrainResult:
    history: tuple[EpochStats, ...]
    final_val_acc: float
    best_val_acc: float
    seconds: float  # wall time of the whole run
    params: int  # trainable + frozen parameters of the model


def _check_dataset(name: str, dataset: Any) -> int:
    """The number of samples of ``dataset``, a non-empty torch Dataset with a length."""
    check_instance(name, dataset, Dataset, "a torch Dataset")
    size = len(dataset)
    if size == 0:
        raise ValueError(f"{name} is empty")
    return size


def _config(config: TrainConfig | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` (default ``TrainConfig()``) with ``overrides`` applied, each checked."""
    if config is None:
        config = TrainConfig()
    check_instance("config", config, TrainConfig, "a TrainConfig or None")
    return config.replace(**overrides)


def _batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader that indexes the dataset with whole index lists (one gather per batch).

    TensorDataset accepts a list of indices, so this skips per-sample collation, which costs
    more than the forward pass for 8x8-pixel digits.
    """
    sized = cast(Sized, dataset)  # _check_dataset took its len() before any call here
    sampler: Sampler[int] = (
        RandomSampler(sized, generator=generator) if shuffle else SequentialSampler(sized)
    )
    batches = BatchSampler(sampler, batch_size, drop_last=drop_last)
    if isinstance(dataset, torch.utils.data.TensorDataset):
        return DataLoader(dataset, sampler=batches, batch_size=None)
    return DataLoader(dataset, batch_sampler=batches)


def evaluate(
    model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str = "cpu"
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy in [0, 1]) of ``model`` on ``dataset`` in eval mode.

    The model's train/eval mode is restored afterwards.
    """
    check_module("model", model)
    _check_dataset("dataset", dataset)
    batch_size = check_int("batch_size", batch_size)
    dev = resolve_device(device)
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError("model is a TorchScript module; evaluate the eager model instead")
    was_training = model.training
    model.to(dev).eval()
    total_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in _batches(dataset, batch_size, shuffle=False):
            x, y = x.to(dev), y.to(dev)
            logits = model(x)  # (B, num_classes)
            _check_labels("dataset", y, logits)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += y.numel()
    model.train(was_training)
    return total_loss / n, correct / n


def _check_labels(name: str, y: torch.Tensor, logits: torch.Tensor) -> None:
    """Integer labels must index the model's classes (cross_entropy would fail deep inside,
    or on some backends read out of bounds)."""
    if y.is_floating_point() or y.ndim != 1:
        return  # class probabilities: cross_entropy checks their shape itself
    if logits.ndim != 2:
        raise ValueError(
            f"the model must return (batch, num_classes) logits, got shape {tuple(logits.shape)}"
        )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= logits.shape[1]:
        raise ValueError(
            f"{name} has labels in [{lo}, {hi}] but the model has {logits.shape[1]} classes "
            f"(labels must be 0..{logits.shape[1] - 1})"
        )


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    config: TrainConfig | None = None,
    **overrides,
) -> TrainResult:
    """Train ``model`` in place with SGD + momentum and a cosine schedule; return the history.

    ``overrides`` are TrainConfig fields (``train(m, tr, va, epochs=3, progress=False)``);
    an unknown name raises TypeError listing the fields. The last, incomplete training batch
    is dropped (BatchNorm cannot normalise a batch of one). After each epoch the whole
    ``val_set`` is evaluated with ``evaluate``. A NaN or infinite loss raises
    ``NonFiniteLossError`` (epoch and step in the message) before that step's update.
    """
    check_module("model", model)
    n_train = _check_dataset("train_set", train_set)
    _check_dataset("val_set", val_set)
    config = _config(config, overrides)
    if n_train < config.batch_size:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the training set ({n_train})"
        )
    from tqdm.auto import tqdm

    dev = resolve_device(config.device)
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        loader = _batches(train_set, config.batch_size, True, generator=gen, drop_last=True)
        model.to(dev)
        opt = torch.optim.SGD(
            _param_groups(model, config.weight_decay),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=False,
        )
        total_steps = config.epochs * len(loader)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
        history: list[EpochStats] = []
        start = time.perf_counter()
        bar = tqdm(range(1, config.epochs + 1), desc="train", disable=not config.progress)
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            loss_sum, correct, n = 0.0, 0, 0
            for step, (x, y) in enumerate(loader, start=1):
                x, y = x.to(dev), y.to(dev)
                logits = model(x)  # (B, num_classes)
                _check_labels("train_set", y, logits)
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise _diverged(loss_value, x, epoch, step, len(loader), sched)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss_value * y.numel()
                correct += (logits.argmax(1) == y).sum().item()
                n += y.numel()
            val_loss, val_acc = evaluate(model, val_set, device=config.device)
            stats = EpochStats(
                epoch=epoch,
                train_loss=loss_sum / n,
                train_acc=correct / n,
                val_loss=val_loss,
                val_acc=val_acc,
                seconds=time.perf_counter() - t0,
            )
            history.append(stats)
            bar.set_postfix(loss=f"{stats.train_loss:.3f}", val_acc=f"{val_acc:.3f}")
        bar.close()
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.set_num_threads(old_threads)
    return TrainResult(
        history=tuple(history),
        final_val_acc=history[-1].val_acc,
        best_val_acc=max(h.val_acc for h in history),
        seconds=time.perf_counter() - start,
        params=sum(p.numel() for p in model.parameters()),
    )


def _diverged(loss: float, x: torch.Tensor, epoch: int, step: int, steps: int, sched):
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        cause = "this batch's inputs hold NaN or infinity: check train_set"
    else:
        cause = "the run diverged: lower lr, or check the data and the model's initialisation"
    return NonFiniteLossError(
        f"training stopped: the loss is {loss} at epoch {epoch}, step {step} of {steps} "
        f"(lr {sched.get_last_lr()[0]:.3g}); {cause}. The model keeps the weights of the "
        "step before.",
        epoch,
        step,
    )


def _fingerprint(dataset: Dataset) -> str:
    """sha256 of a TensorDataset's tensors (dtype, shape and bytes), for cache keys."""
    h = hashlib.sha256()
    tensors = getattr(dataset, "tensors", None)
    if tensors is None:
        raise TypeError("train_cached needs TensorDatasets (their bytes key the cache)")
    for t in tensors:
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _is_number(v: Any) -> TypeGuard[float]:
    """A finite int or float (not a bool): what a cached number must be."""
    return isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v)


def _check_cached(value: Mapping[str, Any]) -> str | None:
    """Why a cached TrainResult cannot be trusted (None if it can): every accuracy in
    [0, 1], every loss and time a finite number >= 0, the history one entry per epoch."""
    for name in ("final_val_acc", "best_val_acc"):
        v = value.get(name)
        if not _is_number(v) or not 0 <= v <= 1:
            return f"{name}={v!r} is not an accuracy in [0, 1]"
    for name in ("seconds", "params"):
        if not _is_number(value.get(name)) or value[name] < 0:
            return f"{name}={value.get(name)!r} is not a number >= 0"
    history = value.get("history")
    if not isinstance(history, list | tuple) or not history:
        return "it holds no history"
    fields = [f.name for f in dataclasses.fields(EpochStats)]
    for i, h in enumerate(history, start=1):
        if not isinstance(h, dict) or sorted(h) != sorted(fields):
            return f"history entry {i} does not have the fields {fields}"
        if h["epoch"] != i or not all(_is_number(h[f]) and h[f] >= 0 for f in fields):
            return f"history entry {i} holds {h!r}"
        if not (h["train_acc"] <= 1 and h["val_acc"] <= 1):
            return f"history entry {i} has an accuracy above 1"
    if value["final_val_acc"] != history[-1]["val_acc"]:
        return "final_val_acc is not the last epoch's val_acc"
    return None


def train_cached(
    build: Callable[[], nn.Module],
    train_set: Dataset,
    val_set: Dataset,
    config: TrainConfig | None = None,
    *,
    key: Mapping[str, Any],
    use_cache: bool = True,
    **overrides,
) -> TrainResult:
    """``train(build(), ...)`` with ``torch.manual_seed(config.seed)`` before ``build()``, cached.

    The seed fixes both the initial weights and the shuffling, so a seed is a whole
    repetition of the experiment. The cache (``effnb._cache.cache_dir()/train/``) is keyed
    by ``key`` (describe the architecture there), the config, the data's bytes, the initial
    weights, the source of ``train`` and the torch version; an entry that fails to read or
    holds an implausible value is re-trained, never served.
    """
    from effnb import _cache

    if isinstance(build, nn.Module) or not callable(build):
        raise TypeError(
            "build must be a function returning a fresh model (e.g. lambda: create_model(...)), "
            f"got {type(build).__name__}"
        )
    check_instance("key", key, Mapping, "a mapping describing the model")
    check_bool("use_cache", use_cache)
    config = _config(config, overrides)
    _check_dataset("train_set", train_set)
    _check_dataset("val_set", val_set)
    torch.manual_seed(config.seed)
    model = build()
    check_module("build()", model)
    full_key = {
        "key": json.loads(json.dumps(key, sort_keys=True, default=str)),
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"},
        "train_set": _fingerprint(train_set),
        "val_set": _fingerprint(val_set),
        "init": _cache.state_digest(model.state_dict()),
        "code": _cache.source_digest(train),
        "torch": torch.__version__,
    }
    path = _cache.cache_dir() / "train" / f"{_cache.key_digest(full_key)}.json"
    if use_cache:
        value = _cache.read_entry(path, full_key, _check_cached)
        if value is not None:
            return TrainResult(
                history=tuple(EpochStats(**h) for h in value["history"]),
                final_val_acc=value["final_val_acc"],
                best_val_acc=value["best_val_acc"],
                seconds=value["seconds"],
                params=value["params"],
            )
    result = train(model, train_set, val_set, config)
    value = dataclasses.asdict(result)
    if use_cache and _check_cached(value) is None:
        _cache.write_entry(path, full_key, value)
    return result
