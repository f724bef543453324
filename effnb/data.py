"""Small offline datasets for the notebooks: scikit-learn's digits and a local CIFAR-10.

effnb never downloads anything. ``digits`` uses the 1,797 8x8 handwritten digits that ship
inside scikit-learn (UCI "Optical Recognition of Handwritten Digits", 10 classes), upsampled
so that the same small-input networks that take CIFAR's 32x32 images can train on them in
seconds on a CPU. ``cifar10`` reads the standard python-format CIFAR-10 folder if the
reader already has it on disk.

The python-format CIFAR-10 batches are **pickle** files. Unpickling can run code, so load
only files you trust (the official ``cifar-10-python.tar.gz``, checked against its published
MD5 ``c58f30108f718f92721af3b95e74349a``). effnb's reader is restricted to what those files
hold (numpy arrays, lists, bytes) and refuses any other pickled object; every batch is
checked (shape, label count, labels 0-9) and an error names the file.

Both return ``(train, val)`` pairs of ``torch.utils.data.TensorDataset`` holding float32
images ``(N, C, H, W)`` and int64 labels ``(N,)``. Notebooks 05 and 06 train on them.
"""

from __future__ import annotations

import os
import pathlib
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from effnb._checks import (
    check_bytes,
    check_fraction,
    check_instance,
    check_int,
    check_seed,
)

__all__ = [
    "CIFAR10_FILES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "cifar10",
    "digits",
    "stratified_split",
]

# Mean and std of the 8x8 digits after scaling the 0..16 grey levels to [0, 1], over all
# 1,797 images and 64 pixels (computed once from sklearn.datasets.load_digits; a test checks).
DIGITS_MEAN = 0.30526
DIGITS_STD = 0.37605

# Per-channel mean and std of the CIFAR-10 training set in [0, 1] (the values used by most
# CIFAR training scripts; they are statistics of the data, not of any model).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR10_CLASSES = 10
DIGITS_COUNT = 1797
CIFAR10_TRAIN_COUNT = 50_000


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``round(n_c * val_fraction)`` of every class ``c`` in val.

    Seeded with ``numpy.random.default_rng(seed)``, so the split is the same on every machine.
    Every class keeps at least one sample on each side, so every class needs two samples.
    """
    val_fraction = check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    classes, counts = np.unique(labels, return_counts=True)
    lonely = classes[counts < 2].tolist()
    if lonely:
        raise ValueError(
            f"labels has classes with a single sample ({lonely[:10]}): a stratified split "
            "needs at least two per class, one on each side"
        )
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = min(max(1, round(len(idx) * val_fraction)), len(idx) - 1)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def _resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    if images.shape[-1] == image_size and images.shape[-2] == image_size:
        return images
    return F.interpolate(
        images, size=(image_size, image_size), mode="bilinear", align_corners=False
    )


def digits(
    image_size: int = 32, channels: int = 3, val_fraction: float = 0.2, seed: int = 0
) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's bundled 8x8 digits as (train, val) TensorDatasets, no download.

    Pixels 0..16 are scaled to [0, 1], normalised with ``(x - DIGITS_MEAN) / DIGITS_STD``,
    upsampled bilinearly to ``image_size`` x ``image_size`` and repeated to ``channels``
    (3 so that ImageNet-shaped stems take them unchanged). The split is stratified and
    seeded (``stratified_split``): 1,797 images, 10 classes, about 180 per class.
    """
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    image_size = check_int("image_size", image_size, minimum=8)
    channels = check_int("channels", channels)
    val_fraction = check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    _check_dataset_bytes(DIGITS_COUNT, channels, image_size, "digits")
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)  # (N, 8, 8)
    x = (x - DIGITS_MEAN) / DIGITS_STD
    x = _resize(x.unsqueeze(1), image_size)  # (N, 1, S, S)
    x = x.repeat(1, channels, 1, 1).contiguous()  # (N, C, S, S)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    tr, va = stratified_split(bunch.target, val_fraction, seed)
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va])


def _check_dataset_bytes(count: int, channels: int, image_size: int, what: str) -> None:
    """The float32 images (plus the resize's copy) must fit before anything is computed."""
    nbytes = 2 * count * channels * image_size * image_size * 4
    check_bytes(
        "image_size",
        image_size,
        nbytes,
        f"{count:,} {what} images of {channels}x{image_size}x{image_size} float32 "
        "(and the resized copy)",
    )


def _cifar_folder(root: str | os.PathLike) -> pathlib.Path:
    check_instance("root", root, (str, os.PathLike), "a path (str or os.PathLike)")
    root = pathlib.Path(root).expanduser()
    candidates = [root, root / CIFAR10_FOLDER]
    for folder in candidates:
        if folder.is_dir() and all((folder / f).is_file() for f in CIFAR10_FILES):
            return folder
    folder = root if root.name == CIFAR10_FOLDER else root / CIFAR10_FOLDER
    missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    raise FileNotFoundError(
        f"CIFAR-10 not found: expected the python-format folder {folder} (or {root} itself) "
        f"with files {', '.join(CIFAR10_FILES)}; missing: {', '.join(missing)}. effnb never "
        "downloads data: fetch cifar-10-python.tar.gz yourself and unpack it there."
    )


# What the official batches are made of; any other pickled global is refused.
_CIFAR_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and bytes; refuses every other class or function
    (the reason a pickle can run code). Not a sandbox: still load only trusted files."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: a CIFAR-10 batch holds only numpy "
                "arrays, lists and bytes"
            )
        return super().find_class(module, name)


def _entry(d: dict, key: str):
    return d[key.encode()] if key.encode() in d else d.get(key)


def _load_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one batch, checked; errors name ``path``."""
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{path} is not a readable CIFAR-10 batch (truncated or not the python-format "
            f"pickle): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(d, dict) or _entry(d, "data") is None or _entry(d, "labels") is None:
        raise ValueError(f"{path} is not a CIFAR-10 batch: no b'data' / b'labels' keys")
    try:
        raw = np.asarray(_entry(d, "data"))
        labels = np.asarray(_entry(d, "labels"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: data or labels are not arrays ({exc})") from exc
    pixels = 3 * 32 * 32
    if raw.ndim != 2 or raw.shape[1] != pixels:
        raise ValueError(
            f"{path}: data must be (N, {pixels}) (N images of 3x32x32), got shape {raw.shape}"
        )
    if raw.dtype.kind not in "iu" or (raw.size and (raw.min() < 0 or raw.max() > 255)):
        raise ValueError(f"{path}: data must be 0..255 integers, got dtype {raw.dtype}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: labels must be a list of integers, got shape {labels.shape} "
            f"and dtype {labels.dtype}"
        )
    if len(labels) != len(raw):
        raise ValueError(
            f"{path}: {len(labels)} labels for {len(raw)} images; a batch has one label per image"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= CIFAR10_CLASSES):
        bad = sorted(set(labels[(labels < 0) | (labels >= CIFAR10_CLASSES)].tolist()))
        raise ValueError(f"{path}: labels must be 0..{CIFAR10_CLASSES - 1}, found {bad[:10]}")
    data = raw.astype(np.uint8).reshape(-1, 3, 32, 32)  # (N, C, H, W)
    return data, labels.astype(np.int64)


def cifar10(
    root: str | os.PathLike, image_size: int = 32, val_fraction: float = 0.1, seed: int = 0
) -> tuple[TensorDataset, TensorDataset]:
    """CIFAR-10's 50,000 training images from a LOCAL folder, split into (train, val).

    ``root`` is the ``cifar-10-batches-py`` folder or its parent. The five training batches
    are loaded (``test_batch`` must exist too but is kept for a final test, not used here),
    scaled to [0, 1], normalised per channel with ``CIFAR10_MEAN`` / ``CIFAR10_STD``,
    resized bilinearly if ``image_size != 32`` and split stratified and seeded. Raises
    FileNotFoundError naming the folder and the expected files when they are not there, and
    ValueError naming the file for a truncated batch, one whose label and image counts
    differ, or labels outside 0-9. The files are pickles: load only trusted ones (see the
    module docstring).
    """
    image_size = check_int("image_size", image_size, minimum=8)
    val_fraction = check_fraction("val_fraction", val_fraction)
    seed = check_seed("seed", seed)
    _check_dataset_bytes(CIFAR10_TRAIN_COUNT, 3, image_size, "CIFAR-10")
    folder = _cifar_folder(root)
    parts = [_load_batch(folder / f) for f in CIFAR10_FILES[:5]]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    x = torch.from_numpy(data).float().div_(255.0)  # (N, 3, 32, 32)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x = _resize((x - mean) / std, image_size).contiguous()
    y = torch.from_numpy(labels)
    tr, va = stratified_split(labels, val_fraction, seed)
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va])
