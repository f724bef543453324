"""effnb.data: digits shapes, normalisation and split; CIFAR-10 from a fake local folder."""

import pickle

import numpy as np
import pytest
import torch

from effnb.data import CIFAR10_FILES, DIGITS_MEAN, DIGITS_STD, cifar10, digits, stratified_split


def test_digits_shapes_dtypes_and_split_sizes():
    train, val = digits(image_size=16, channels=3, val_fraction=0.2, seed=0)
    x, y = train.tensors
    assert x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert len(train) + len(val) == 1797
    # stratified: round(n_c * 0.2) per class
    counts = np.bincount(val.tensors[1].numpy(), minlength=10)
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target, minlength=10)
    assert counts.tolist() == [round(n * 0.2) for n in per_class]
    # channels are copies of one grey image
    assert torch.equal(x[:, 0], x[:, 2])


def test_digits_normalisation_constants_match_the_data():
    from sklearn.datasets import load_digits

    raw = load_digits().images / 16.0
    assert DIGITS_MEAN == pytest.approx(raw.mean(), abs=1e-4)
    assert DIGITS_STD == pytest.approx(raw.std(), abs=1e-4)
    train, val = digits(image_size=8, channels=1)
    allx = torch.cat([train.tensors[0], val.tensors[0]])
    assert allx.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert allx.std().item() == pytest.approx(1.0, abs=1e-3)


def test_digits_split_is_seeded():
    a, _ = digits(image_size=8, seed=1)
    b, _ = digits(image_size=8, seed=1)
    c, _ = digits(image_size=8, seed=2)
    assert torch.equal(a.tensors[1], b.tensors[1]) and torch.equal(a.tensors[0], b.tensors[0])
    assert not torch.equal(a.tensors[0], c.tensors[0])


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"image_size": 4}, ValueError),
        ({"channels": 0}, ValueError),
        ({"val_fraction": 0.0}, ValueError),
        ({"val_fraction": 1.5}, ValueError),
        ({"seed": -1}, ValueError),
        ({"image_size": 16.0}, TypeError),
    ],
)
def test_digits_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        digits(**kwargs)


def test_stratified_split_keeps_one_sample_each_side():
    labels = np.array([0, 0, 1, 1, 1, 1])
    tr, va = stratified_split(labels, 0.01, seed=0)
    assert sorted(labels[va].tolist()) == [0, 1]
    assert len(tr) + len(va) == 6 and not set(tr) & set(va)


def _write_fake_cifar(folder, per_batch=20):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in CIFAR10_FILES:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    return rng


@pytest.mark.parametrize("point_at_parent", [True, False])
def test_cifar10_from_fake_folder(tmp_path, point_at_parent):
    folder = tmp_path / "cifar-10-batches-py"
    _write_fake_cifar(folder)
    root = tmp_path if point_at_parent else folder
    train, val = cifar10(root, val_fraction=0.1)
    assert len(train) + len(val) == 100  # five training batches of 20; test_batch unused
    assert len(val) == 10  # one of each class's 10 images
    assert train.tensors[0].shape[1:] == (3, 32, 32)
    assert train.tensors[1].dtype == torch.int64
    # channel 0 of pixel (0, 0) of every image, normalised with the published statistics
    raw = []
    for name in CIFAR10_FILES[:5]:
        with open(folder / name, "rb") as f:
            raw.extend((pickle.load(f)[b"data"][:, 0] / 255.0).tolist())
    got = torch.cat([train.tensors[0], val.tensors[0]])[:, 0, 0, 0]
    expected = (torch.tensor(raw) - 0.4914) / 0.2470
    assert torch.allclose(got.sort().values, expected.float().sort().values, atol=1e-5)


def test_cifar10_resize(tmp_path):
    _write_fake_cifar(tmp_path / "cifar-10-batches-py")
    train, _ = cifar10(tmp_path, image_size=16)
    assert train.tensors[0].shape[1:] == (3, 16, 16)


def test_cifar10_missing_folder_says_no_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        cifar10(tmp_path / "nowhere")
    msg = str(info.value)
    assert "cifar-10-batches-py" in msg and "data_batch_1" in msg and "test_batch" in msg
    assert "never downloads" in msg


def test_cifar10_missing_file_is_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_fake_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing: data_batch_3"):
        cifar10(tmp_path)
