"""Small offline datasets for the notebooks: scikit-learn's digits and a local CIFAR-10.

effnb never downloads anything. ``digits`` uses the 1,797 8x8 handwritten digits that ship
inside scikit-learn (UCI "Optical Recognition of Handwritten Digits", 10 classes), upsampled
so that the same small-input networks that take CIFAR's 32x32 images can train on them in
seconds on a CPU. ``cifar10`` reads the standard python-format CIFAR-10 folder if the
reader already has it on disk.

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

from effnb._checks import check_int

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


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1) (exclusive), got {value}")
    return float(value)


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``round(n_c * val_fraction)`` of every class ``c`` in val.

    Seeded with ``numpy.random.default_rng(seed)``, so the split is the same on every machine.
    Every class keeps at least one sample on each side.
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
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
    val_fraction = _check_fraction("val_fraction", val_fraction)
    seed = check_int("seed", seed, minimum=0)
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)  # (N, 8, 8)
    x = (x - DIGITS_MEAN) / DIGITS_STD
    x = _resize(x.unsqueeze(1), image_size)  # (N, 1, S, S)
    x = x.repeat(1, channels, 1, 1).contiguous()  # (N, C, S, S)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    tr, va = stratified_split(bunch.target, val_fraction, seed)
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va])


def _cifar_folder(root: str | os.PathLike) -> pathlib.Path:
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


def _load_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    if b"data" not in d or b"labels" not in d:
        raise ValueError(f"{path} is not a CIFAR-10 batch: no b'data' / b'labels' keys")
    data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, C, H, W)
    return data, np.asarray(d[b"labels"], dtype=np.int64)


def cifar10(
    root: str | os.PathLike, image_size: int = 32, val_fraction: float = 0.1, seed: int = 0
) -> tuple[TensorDataset, TensorDataset]:
    """CIFAR-10's 50,000 training images from a LOCAL folder, split into (train, val).

    ``root`` is the ``cifar-10-batches-py`` folder or its parent. The five training batches
    are loaded (``test_batch`` must exist too but is kept for a final test, not used here),
    scaled to [0, 1], normalised per channel with ``CIFAR10_MEAN`` / ``CIFAR10_STD``,
    resized bilinearly if ``image_size != 32`` and split stratified and seeded. Raises
    FileNotFoundError naming the folder and the expected files when they are not there.
    """
    image_size = check_int("image_size", image_size, minimum=8)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    seed = check_int("seed", seed, minimum=0)
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
