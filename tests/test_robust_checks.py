"""effnb._checks: one helper per kind of check, each naming the argument, the value and the
limit; numpy scalars and 0-d tensors accepted where a number is (issue 13)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from effnb import _checks
from effnb._checks import (
    SizeLimitError,
    check_bool,
    check_choice,
    check_forward_fits,
    check_fraction,
    check_input_size,
    check_int,
    check_multiplier,
    check_probability,
    check_real,
    check_seconds,
    check_threads,
    memory_limit,
    model_dtype,
)

# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0.5, 1, np.float32(0.5), np.float64(0.5), np.int64(1), torch.tensor(0.5)]
)
def test_real_accepts_python_numpy_and_0d_tensors(value):
    got = check_real("lr", value, minimum=0.0, maximum=1.0)
    assert isinstance(got, float) and got == pytest.approx(float(value))


@pytest.mark.parametrize(
    "value, exc",
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (-float("inf"), ValueError),
        (np.float64("nan"), ValueError),
        (10**400, ValueError),  # an int beyond any float
        (torch.tensor(float("nan")), ValueError),
        (-0.1, ValueError),
        (1.5, ValueError),
        ("0.5", TypeError),
        (None, TypeError),
        (True, TypeError),
        (1 + 0j, TypeError),
        ([0.5], TypeError),
        (np.array([0.5, 0.5]), TypeError),
        (torch.tensor([0.5, 0.5]), TypeError),
    ],
)
def test_real_rejects_non_finite_out_of_range_and_non_numbers(value, exc):
    with pytest.raises(exc, match=r"^lr must be"):
        check_real("lr", value, minimum=0.0, maximum=1.0)


def test_real_exclusive_bounds_are_named():
    with pytest.raises(ValueError, match=r"confidence must be a finite number in \(0.0, 1.0\)"):
        check_real(
            "confidence",
            1.0,
            minimum=0.0,
            maximum=1.0,
            include_minimum=False,
            include_maximum=False,
        )


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), torch.tensor(3), np.array(3)])
def test_int_accepts_integer_types(value):
    assert check_int("batch", value) == 3 and type(check_int("batch", value)) is int


@pytest.mark.parametrize(
    "value, exc, msg",
    [
        (0, ValueError, "batch must be an integer >= 1, got 0"),
        (2.0, TypeError, r"batch must be an integer >= 1, got 2.0 \(float\)"),
        (np.float64(2), TypeError, "batch must be an integer"),
        (torch.tensor(2.0), TypeError, "batch must be an integer"),
        (True, TypeError, "batch must be an integer"),
        ("2", TypeError, "batch must be an integer"),
        (10**6, SizeLimitError, r"batch must be an integer <= 1000 \(a test limit\), got 1000000"),
    ],
)
def test_int_errors_name_argument_value_and_limit(value, exc, msg):
    with pytest.raises(exc, match=msg):
        check_int("batch", value, maximum=1000, why="a test limit")


def test_size_limit_error_is_a_value_error():
    assert issubclass(SizeLimitError, ValueError)


def test_multiplier_probability_fraction_seconds_bool_choice():
    assert check_multiplier("width_mult", np.float32(0.5)) == 0.5
    with pytest.raises(ValueError, match="width_mult must be a positive number, got nan"):
        check_multiplier("width_mult", float("nan"))
    with pytest.raises(SizeLimitError, match=r"width_mult must be a positive number <= 4"):
        check_multiplier("width_mult", 5, maximum=4)
    with pytest.raises(ValueError, match=r"drop_path must be in \[0, 1\), got nan"):
        check_probability("drop_path", float("nan"))
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\) \(exclusive\), got 1"):
        check_fraction("val_fraction", 1)
    for bad in (float("nan"), float("inf"), 0, -1):
        with pytest.raises(ValueError, match="min_run_time must be a positive, finite number"):
            check_seconds("min_run_time", bad)
    with pytest.raises(SizeLimitError, match="min_run_time must be at most 600 seconds"):
        check_seconds("min_run_time", 1e9)
    assert check_bool("flag", np.bool_(True)) is True
    with pytest.raises(TypeError, match="flag must be True or False, got 1"):
        check_bool("flag", 1)
    with pytest.raises(ValueError, match=r"method must be one of \['a'\], got \[1\]"):
        check_choice("method", [1], ("a",))


# --- the machine -----------------------------------------------------------------------------


def test_threads_bounded_by_a_multiple_of_the_cpus():
    limit = _checks.max_threads()
    assert limit == 4 * (os.cpu_count() or 1)
    assert check_threads("threads", limit) == limit
    with pytest.raises(SizeLimitError, match=rf"threads must be an integer <= {limit} \(4 x the"):
        check_threads("threads", limit + 1)
    with pytest.raises(ValueError, match="threads must be an integer >= 1, got 0"):
        check_threads("threads", 0)


def test_memory_limit_from_environment(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", "1000")
    assert memory_limit() == 1000
    monkeypatch.setenv("EFFNB_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="EFFNB_MAX_BYTES must be a number of bytes, got 'lots'"):
        memory_limit()
    monkeypatch.delenv("EFFNB_MAX_BYTES")
    assert 0 < memory_limit() <= _checks.DEFAULT_MAX_BYTES


@pytest.mark.parametrize(
    "size, exc",
    [
        ((3, -1, 8), ValueError),
        ((3, 2.5, 8), ValueError),
        ((), ValueError),
        ("224", TypeError),
        (None, TypeError),
        (True, TypeError),
        ((3, 100_000, 100_000), SizeLimitError),
    ],
)
def test_input_size_errors_name_input_size(size, exc):
    with pytest.raises(exc, match="input_size"):
        check_input_size(size)


def test_input_size_accepts_numpy_and_counts_batch_and_dtype(monkeypatch):
    assert check_input_size(np.int64(8)) == (3, 8, 8)
    assert check_input_size(np.array([16, 8])) == (3, 16, 8)
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(3 * 8 * 8 * 4 * 2))
    check_input_size(8, batch=2)  # exactly the limit
    with pytest.raises(SizeLimitError, match=r"input_size=8 would need .* for a batch of 3"):
        check_input_size(8, batch=3)
    check_input_size(8, batch=4, dtype=torch.float16)  # half the bytes per element
    with pytest.raises(SizeLimitError, match="EFFNB_MAX_BYTES"):
        check_input_size(8, batch=3, dtype=torch.float64)


def test_forward_fits_counts_activations_on_meta(monkeypatch):
    """An input that fits, whose first layer's output would not, fails before any allocation."""
    model = nn.Sequential(nn.Conv2d(3, 512, 1), nn.ReLU())
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(2**20))  # 1 MiB
    shape = (1, 3, 16, 16)  # ReLU: 512 KiB in + 512 KiB out, the limit
    check_forward_fits(model, shape, torch.float32, name="input_size", value=16)
    with pytest.raises(SizeLimitError, match=r"input_size=32 would need 4\.0 MiB"):
        check_forward_fits(model, (1, 3, 32, 32), torch.float32, name="input_size", value=32)
    # a model that cannot run on meta tensors gets no estimate (its real call reports itself)

    class DataDependent(nn.Module):
        def forward(self, x):
            return x if x.sum().item() > 0 else -x

    check_forward_fits(DataDependent(), (1, 3, 64, 64), torch.float32, name="x", value=1)


def test_model_dtype():
    assert model_dtype(nn.Conv2d(1, 1, 1)) == torch.float32
    assert model_dtype(nn.Conv2d(1, 1, 1).half()) == torch.float16
    assert model_dtype(nn.ReLU()) == torch.get_default_dtype()
    mixed = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1).double())
    with pytest.raises(TypeError, match=r"model mixes floating dtypes \['float32', 'float64'\]"):
        model_dtype(mixed)
    counted = nn.Conv2d(1, 1, 1)
    counted.register_buffer("total_ops", torch.zeros(1, dtype=torch.float64))  # thop's counter
    assert model_dtype(counted) == torch.float32


@pytest.mark.parametrize("size", [(8,), (1, 2, 3, 4), ()])
def test_input_size_of_the_wrong_rank_is_refused_at_entry(size):
    from effnb._checks import check_input_size

    with pytest.raises(ValueError, match=r"input_size must be positive ints, \(C, H, W\)"):
        check_input_size(size)
