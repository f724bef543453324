"""effnb.data against broken and hostile files: every bad CIFAR-10 batch raises an error
naming the file; the restricted unpickler refuses anything but arrays; sizes fail fast."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from effnb._checks import SizeLimitError
from effnb.data import CIFAR10_FILES, cifar10, digits, stratified_split


def _batch(n: int = 20, labels=None, data=None) -> dict:
    rng = np.random.default_rng(0)
    return {
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8) if data is None else data,
        b"labels": [i % 10 for i in range(n)] if labels is None else labels,
        b"batch_label": b"fake",
    }


def _folder(tmp_path, broken: dict | bytes | None = None, name: str = "data_batch_2"):
    """A fake CIFAR-10 folder whose ``name`` holds ``broken`` (a dict to pickle, or raw bytes)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in CIFAR10_FILES:
        with open(folder / f, "wb") as fh:
            pickle.dump(_batch(), fh, protocol=2)
    if broken is not None:
        path = folder / name
        if isinstance(broken, bytes):
            path.write_bytes(broken)
        else:
            with open(path, "wb") as fh:
                pickle.dump(broken, fh)
    return folder


def test_the_fake_folder_loads_with_every_pickle_protocol(tmp_path):
    folder = _folder(tmp_path)
    for protocol in (2, 4, 5):
        with open(folder / "data_batch_1", "wb") as fh:
            pickle.dump(_batch(), fh, protocol=protocol)
        train, val = cifar10(tmp_path)
        assert len(train) + len(val) == 100


@pytest.mark.parametrize(
    "broken, msg",
    [
        (_batch(labels=[0] * 19), "19 labels for 20 images"),
        (_batch(labels=[i % 11 for i in range(20)]), r"labels must be 0..9, found \[10\]"),
        (_batch(labels=[-1] + [0] * 19), r"labels must be 0..9, found \[-1\]"),
        (_batch(labels=[0.5] * 20), "labels must be a list of integers"),
        (_batch(data=np.zeros((20, 3000), np.uint8)), r"data must be \(N, 3072\)"),
        (_batch(data=np.full((20, 3072), 300, np.int64)), "data must be 0..255 integers"),
        (_batch(data=np.zeros((20, 3072), np.float32)), "data must be 0..255 integers"),
        ({b"labels": [1]}, "is not a CIFAR-10 batch: no b'data' / b'labels' keys"),
        ([1, 2, 3], "is not a CIFAR-10 batch"),
    ],
)
def test_bad_batches_raise_naming_the_file(tmp_path, broken, msg):
    folder = _folder(tmp_path, broken)
    with pytest.raises(ValueError, match=msg) as info:
        cifar10(tmp_path)
    assert str(folder / "data_batch_2") in str(info.value)


def test_truncated_and_garbage_files_name_the_file(tmp_path):
    good = pickle.dumps(_batch(), protocol=2)
    for i, content in enumerate((good[: len(good) // 2], b"", b"not a pickle at all")):
        (tmp_path / str(i)).mkdir()
        folder = _folder(tmp_path / str(i), content, name="data_batch_4")
        with pytest.raises(ValueError, match="is not a readable CIFAR-10 batch") as info:
            cifar10(folder)
        assert str(folder / "data_batch_4") in str(info.value)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    folder = _folder(tmp_path, _batch() | {b"extra": _Exploit()}, name="data_batch_1")
    with pytest.raises(ValueError, match=r"refusing to unpickle (posix|os)\.system") as info:
        cifar10(folder)
    assert str(folder / "data_batch_1") in str(info.value)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"image_size": 100_000}, SizeLimitError, r"image_size=100000 would need .* for 1,797"),
        ({"image_size": 4096, "channels": 3}, SizeLimitError, "image_size=4096"),
        ({"val_fraction": float("nan")}, ValueError, r"val_fraction must be in \(0, 1\)"),
        ({"val_fraction": "0.2"}, TypeError, "val_fraction must be a number in"),
        ({"seed": 2**64}, SizeLimitError, "seed must be an integer <="),
        ({"channels": 2.0}, TypeError, "channels must be an integer"),
    ],
)
def test_digits_arguments_fail_fast(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        digits(**kwargs)


def test_digits_accepts_numpy_numbers():
    train, val = digits(image_size=np.int64(8), channels=np.int32(1), val_fraction=np.float32(0.2))
    assert train.tensors[0].shape[1:] == (1, 8, 8) and len(train) + len(val) == 1797


def test_cifar10_arguments(tmp_path):
    with pytest.raises(TypeError, match="root must be a path"):
        cifar10(None)
    with pytest.raises(SizeLimitError, match="image_size=100000"):
        cifar10(tmp_path, image_size=100_000)


@pytest.mark.parametrize(
    "labels, exc, msg",
    [
        (np.array([0, 0, 1]), ValueError, r"classes with a single sample \(\[1\]\)"),
        (np.array([]), ValueError, "labels must be a non-empty 1-D array"),
        (np.zeros((2, 2), int), ValueError, r"non-empty 1-D array, got shape \(2, 2\)"),
        (np.array([0.0, 0.0, 1.0, 1.0]), TypeError, "labels must be integers, got dtype float64"),
    ],
)
def test_stratified_split_checks_its_labels(labels, exc, msg):
    with pytest.raises(exc, match=msg):
        stratified_split(labels, 0.5)


def test_stratified_split_seed_is_checked():
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        stratified_split(np.array([0, 0, 1, 1]), 0.5, seed=-1)


def test_seed_range_is_torch_manual_seeds():
    """One seed check for data and training (effnb._checks.check_seed): [0, 2**63 - 1]."""
    train_idx, val_idx = stratified_split(np.array([0, 0, 1, 1, 1]), 0.4, seed=2**63 - 1)
    assert len(train_idx) + len(val_idx) == 5
    with pytest.raises(ValueError, match=r"<= 9223372036854775807 \(torch.manual_seed's range\)"):
        stratified_split(np.array([0, 0, 1, 1]), 0.5, seed=2**63)
