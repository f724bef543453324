"""effnb._checks at its boundaries: the value at a limit is accepted, the one just past it is
refused, and the whole message (argument, value, what is allowed) is asserted, so a changed
comparison, bound or word is caught. (scripts/mutants.py runs mutmut against these.)"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from effnb import _checks
from effnb._checks import (
    SizeLimitError,
    check_bool,
    check_bytes,
    check_choice,
    check_forward_fits,
    check_fraction,
    check_input_size,
    check_int,
    check_kernel,
    check_layer_params,
    check_module,
    check_multiplier,
    check_probability,
    check_real,
    check_seconds,
    check_threads,
    format_bytes,
    forward_peak_bytes,
    memory_limit,
    model_dtype,
)


def raises(exc, message):
    """pytest.raises matching the whole message."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# --- check_real ------------------------------------------------------------------------------


def test_real_inclusive_range_boundaries():
    assert check_real("x", 0, minimum=0, maximum=2) == 0.0
    assert check_real("x", 2, minimum=0, maximum=2) == 2.0
    assert type(check_real("x", 1, minimum=0, maximum=2)) is float
    with raises(ValueError, "x must be a finite number in [0, 2], got 2.5"):
        check_real("x", 2.5, minimum=0, maximum=2)
    with raises(ValueError, "x must be a finite number in [0, 2], got -0.5"):
        check_real("x", -0.5, minimum=0, maximum=2)


def test_real_exclusive_range_boundaries():
    kw = {"minimum": 0, "maximum": 2, "include_minimum": False, "include_maximum": False}
    assert check_real("x", 1e-9, **kw) == 1e-9 and check_real("x", 1.999, **kw) == 1.999
    with raises(ValueError, "x must be a finite number in (0, 2), got 0"):
        check_real("x", 0, **kw)
    with raises(ValueError, "x must be a finite number in (0, 2), got 2"):
        check_real("x", 2, **kw)
    with raises(ValueError, "x must be a finite number in (0, 2], got 0"):
        check_real("x", 0, minimum=0, maximum=2, include_minimum=False)
    with raises(ValueError, "x must be a finite number in [0, 2), got 2"):
        check_real("x", 2, minimum=0, maximum=2, include_maximum=False)


def test_real_one_sided_bounds():
    assert check_real("x", 3, minimum=3) == 3.0
    with raises(ValueError, "x must be a finite number >= 3, got 2.5"):
        check_real("x", 2.5, minimum=3)
    with raises(ValueError, "x must be a finite number > 3, got 3"):
        check_real("x", 3, minimum=3, include_minimum=False)
    assert check_real("x", 3.5, minimum=3, include_minimum=False) == 3.5
    assert check_real("x", 3, maximum=3) == 3.0
    with raises(ValueError, "x must be a finite number <= 3, got 3.5"):
        check_real("x", 3.5, maximum=3)
    with raises(ValueError, "x must be a finite number < 3, got 3"):
        check_real("x", 3, maximum=3, include_maximum=False)
    assert check_real("x", 2.5, maximum=3, include_maximum=False) == 2.5
    assert check_real("x", -1e300) == -1e300  # no bounds
    with raises(ValueError, "x must be a finite number, got nan"):
        check_real("x", float("nan"))
    with raises(ValueError, "x must be a finite number, got inf"):
        check_real("x", float("inf"))


def test_real_type_errors_describe_what_they_got():
    with raises(TypeError, "lr must be a finite number, got '1' (str)"):
        check_real("lr", "1")
    with raises(TypeError, "lr must be a finite number, got True (bool)"):
        check_real("lr", True)
    with raises(
        TypeError, "lr must be a finite number, got a tensor of shape (2,) and dtype torch.float32"
    ):
        check_real("lr", torch.zeros(2))
    with raises(ValueError, "lr must be a finite number, got an integer of 1329 bits"):
        check_real("lr", 10**400)
    with raises(
        TypeError, "lr must be a finite number, got a tensor of shape () and dtype torch.bool"
    ):
        check_real("lr", torch.tensor(True))  # a bool tensor is not unwrapped
    with pytest.raises(
        TypeError,
        match="^lr must be a finite number, got a tensor of shape .. and dtype torch.complex",
    ):
        check_real("lr", torch.tensor(1 + 2j))  # nor a complex one
    with pytest.raises(TypeError, match=r"^lr must be a finite number, got .*\(ndarray\)"):
        check_real("lr", np.array(True))  # a 0-d numpy bool stays an array
    with pytest.raises(TypeError, match="^lr must be a finite number, got"):
        check_real("lr", np.complex128(1))
    assert check_real("lr", np.array(0.25)) == 0.25 and check_real("lr", np.uint8(7)) == 7.0


# --- check_int -------------------------------------------------------------------------------


def test_int_boundaries_and_messages():
    assert check_int("n", 1) == 1  # the default minimum
    with raises(ValueError, "n must be an integer >= 1, got 0"):
        check_int("n", 0)
    assert check_int("n", 0, minimum=0) == 0
    with raises(ValueError, "n must be an integer >= 0, got -1"):
        check_int("n", -1, minimum=0)
    assert check_int("n", 5, maximum=5) == 5
    with raises(SizeLimitError, "n must be an integer <= 5, got 6"):
        check_int("n", 6, maximum=5)
    with raises(SizeLimitError, "n must be an integer <= 5 (five fingers), got 6"):
        check_int("n", 6, maximum=5, why="five fingers")
    with raises(TypeError, "n must be an integer >= 2, got 2.0 (float)"):
        check_int("n", 2.0, minimum=2)
    with raises(TypeError, "n must be an integer >= 1, got False (bool)"):
        check_int("n", False)
    got = check_int("n", np.int16(9))
    assert got == 9 and type(got) is int
    assert check_int("n", torch.tensor(4)) == 4
    with pytest.raises(TypeError, match=r"^n must be an integer >= 1, got tensor\(\[1, 2\]\)"):
        check_int("n", torch.tensor([1, 2]))


# --- check_bool, check_multiplier, check_probability, check_fraction, check_seconds ----------


def test_bool():
    assert check_bool("flag", True) is True and check_bool("flag", False) is False
    assert check_bool("flag", np.bool_(False)) is False
    with raises(TypeError, "flag must be True or False, got 0 (int)"):
        check_bool("flag", 0)
    with raises(TypeError, "flag must be True or False, got 'True' (str)"):
        check_bool("flag", "True")


def test_multiplier_boundaries():
    assert check_multiplier("w", 1e-9) == 1e-9
    assert check_multiplier("w", 4, maximum=4) == 4.0
    assert type(check_multiplier("w", 2)) is float
    with raises(ValueError, "w must be a positive number, got 0"):
        check_multiplier("w", 0)
    with raises(ValueError, "w must be a positive number, got inf"):
        check_multiplier("w", float("inf"))
    with raises(SizeLimitError, "w must be a positive number <= 4, got 4.5"):
        check_multiplier("w", 4.5, maximum=4)
    with raises(TypeError, "w must be a positive number, got '2' (str)"):
        check_multiplier("w", "2")
    assert check_multiplier("w", 1e6) == 1e6  # no maximum by default


def test_probability_and_fraction_boundaries():
    assert check_probability("p", 0) == 0.0 and type(check_probability("p", 0)) is float
    assert check_probability("p", 0.999) == 0.999
    with raises(ValueError, "p must be in [0, 1), got 1"):
        check_probability("p", 1)
    with raises(ValueError, "p must be in [0, 1), got -0.1"):
        check_probability("p", -0.1)
    with raises(ValueError, "p must be in [0, 1), got inf"):
        check_probability("p", float("inf"))
    with raises(TypeError, "p must be a number in [0, 1), got None (NoneType)"):
        check_probability("p", None)
    assert check_fraction("f", 0.001) == 0.001 and check_fraction("f", 0.999) == 0.999
    assert type(check_fraction("f", np.float32(0.5))) is float
    for bad in (0, 1, float("nan")):
        with raises(ValueError, f"f must be in (0, 1) (exclusive), got {bad}"):
            check_fraction("f", bad)
    with raises(TypeError, "f must be a number in (0, 1), got '0.5' (str)"):
        check_fraction("f", "0.5")


def test_seconds_boundaries():
    assert check_seconds("t", 600) == 600.0 and type(check_seconds("t", 1)) is float
    assert check_seconds("t", 1e-6) == 1e-6
    with raises(SizeLimitError, "t must be at most 600 seconds, got 600.5"):
        check_seconds("t", 600.5)
    assert check_seconds("t", 2.5, maximum=2.5) == 2.5
    with raises(SizeLimitError, "t must be at most 2.5 seconds, got 3"):
        check_seconds("t", 3, maximum=2.5)
    with raises(ValueError, "t must be a positive, finite number of seconds, got 0"):
        check_seconds("t", 0)
    with raises(ValueError, "t must be a positive, finite number of seconds, got inf"):
        check_seconds("t", float("inf"))
    with raises(TypeError, "t must be a positive number of seconds, got '1' (str)"):
        check_seconds("t", "1")


# --- kernel, choice, module ------------------------------------------------------------------


def test_kernel_boundaries():
    assert check_kernel("k", 1) == 1 and check_kernel("k", 1023) == 1023
    with raises(ValueError, "k must be an odd integer (1, 3, 5, 7, ...), got 4"):
        check_kernel("k", 4)
    with raises(ValueError, "k must be an integer >= 1, got 0"):
        check_kernel("k", 0)
    with raises(SizeLimitError, "k must be an integer <= 1023, got 1025"):
        check_kernel("k", 1025)


def test_choice_and_module():
    assert check_choice("m", "b", ("a", "b")) == "b"
    with raises(ValueError, "m must be one of ['a', 'b'], got 'c'"):
        check_choice("m", "c", ("a", "b"))
    with raises(ValueError, "m must be one of ['a'], got ['a']"):
        check_choice("m", ["a"], {"a"})  # unhashable against a set: not a crash
    conv = nn.Conv2d(1, 1, 1)
    assert check_module("model", conv) is conv
    with raises(TypeError, "model must be a torch.nn.Module, got int"):
        check_module("model", 3)


# --- the machine ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cpus, limit, text", [(3, 12, "3 CPUs"), (1, 4, "1 CPU"), (None, 4, "1 CPU")]
)
def test_threads_limit_and_message(monkeypatch, cpus, limit, text):
    monkeypatch.setattr(_checks.os, "cpu_count", lambda: cpus)
    assert _checks.max_threads() == limit
    assert check_threads("threads", limit) == limit and check_threads("threads", 1) == 1
    with raises(
        SizeLimitError,
        f"threads must be an integer <= {limit} (4 x the {text} of this machine), got {limit + 1}",
    ):
        check_threads("threads", limit + 1)
    with raises(ValueError, "threads must be an integer >= 1, got 0"):
        check_threads("threads", 0)


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (-2048, "-2.0 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**30, "3.0 GiB"),
        (7 * 2**40, "7.0 TiB"),
        (3 * 2**50, "3.0 PiB"),
        (2**60, "1024.0 PiB"),
    ],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_memory_limit_sources(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", "1e3")
    assert memory_limit() == 1000
    monkeypatch.setenv("EFFNB_MAX_BYTES", "1")
    assert memory_limit() == 1
    for bad in ("0", "-5"):
        monkeypatch.setenv("EFFNB_MAX_BYTES", bad)
        with raises(ValueError, f"EFFNB_MAX_BYTES must be a positive number of bytes, got '{bad}'"):
            memory_limit()
    monkeypatch.setenv("EFFNB_MAX_BYTES", "")  # empty: as if unset
    monkeypatch.setattr(_checks, "_physical_memory", lambda: 2 * 2**30)
    assert memory_limit() == 2**30  # half the machine
    monkeypatch.setattr(_checks, "_physical_memory", lambda: 64 * 2**30)
    assert memory_limit() == 4 * 2**30 == _checks.DEFAULT_MAX_BYTES
    monkeypatch.setattr(_checks, "_physical_memory", lambda: None)
    assert memory_limit() == _checks.DEFAULT_MAX_BYTES


def test_physical_memory(monkeypatch):
    sizes = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1000}
    monkeypatch.setattr(_checks.os, "sysconf", lambda key: sizes[key])
    assert _checks._physical_memory() == 4096 * 1000

    def unsupported(key):
        raise ValueError(key)

    monkeypatch.setattr(_checks.os, "sysconf", unsupported)
    assert _checks._physical_memory() is None


def test_check_bytes_boundary_and_message(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", "1000")
    check_bytes("x", 5, 1000, "a thing")  # exactly the limit
    with raises(
        SizeLimitError,
        "x=5 would need 1001 B for a thing, more than the limit of 1000 B ($EFFNB_MAX_BYTES)",
    ):
        check_bytes("x", 5, 1001, "a thing")
    check_bytes("x", 5, 2000, "a thing", limit=2000)
    with pytest.raises(SizeLimitError, match=r"^x='a' would need 2\.0 KiB .* limit of 1000 B"):
        check_bytes("x", "a", 2048, "a thing", limit=1000)
    monkeypatch.delenv("EFFNB_MAX_BYTES")
    monkeypatch.setattr(_checks, "_physical_memory", lambda: None)
    with raises(
        SizeLimitError,
        "y=1 would need 8.0 GiB for z, more than the limit of 4.0 GiB (the smaller of 4 GiB and "
        "half this machine's memory; set EFFNB_MAX_BYTES to change it)",
    ):
        check_bytes("y", 1, 8 * 2**30, "z")


def test_layer_params_boundary():
    check_layer_params("conv", _checks.MAX_LAYER_PARAMS)
    with raises(
        SizeLimitError,
        "conv would hold 16,777,217 weights (64.0 MiB as float32), more than the 16,777,216 one "
        "layer may have (6.5x the largest layer of any registered model): a width multiplier, "
        "channel count or class count is far too large. Build it under "
        "`with torch.device('meta')` to count it without allocating.",
    ):
        check_layer_params("conv", _checks.MAX_LAYER_PARAMS + 1)
    with torch.device("meta"):
        check_layer_params("conv", 10 * _checks.MAX_LAYER_PARAMS)  # nothing is allocated


# --- shapes ------------------------------------------------------------------------------------


def test_input_size_forms():
    assert check_input_size(7, 5) == (5, 7, 7)
    assert check_input_size((6, 9), 5) == (5, 6, 9)
    assert check_input_size((2, 6, 9), 5) == (2, 6, 9)
    assert check_input_size(torch.Size([4, 6, 9])) == (4, 6, 9)
    assert check_input_size([6, 9]) == (3, 6, 9)  # in_chans defaults to 3
    assert check_input_size(torch.tensor(5)) == (3, 5, 5)
    with raises(TypeError, "input_size must be an int or a (C, H, W) / (H, W) tuple, got True"):
        check_input_size(True)
    with raises(
        TypeError, "input_size must be an int or a (C, H, W) / (H, W) tuple, got b'12' (bytes)"
    ):
        check_input_size(b"12")
    with raises(
        ValueError, "input_size must be positive ints, (C, H, W), (H, W) or one int, got (3, 0, 4)"
    ):
        check_input_size((3, 0, 4))
    with raises(ValueError, "input_size must be an integer >= 1, got 0"):
        check_input_size(0)


def test_input_size_bytes_message(monkeypatch):
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(5 * 6 * 7 * 4 * 2))
    assert check_input_size((5, 6, 7), batch=2) == (5, 6, 7)  # exactly the limit
    with raises(
        SizeLimitError,
        "input_size=(5, 6, 7) would need 2.5 KiB for a batch of 3 inputs of shape (5, 6, 7), "
        "more than the limit of 1.6 KiB ($EFFNB_MAX_BYTES)",
    ):
        check_input_size((5, 6, 7), batch=3)
    monkeypatch.setenv("EFFNB_MAX_BYTES", "100")
    with raises(
        SizeLimitError,
        "input_size=4 would need 192 B for a batch of 1 input of shape (3, 4, 4), "
        "more than the limit of 100 B ($EFFNB_MAX_BYTES)",
    ):
        check_input_size(4)
    with pytest.raises(SizeLimitError, match="would need 384 B"):
        check_input_size(4, dtype=torch.float64)


def test_model_dtype_from_buffers_and_params():
    norm = nn.BatchNorm2d(3, affine=False).double()  # buffers only (and an int64 counter)
    assert model_dtype(norm) == torch.float64
    half = nn.Linear(2, 2).half()
    half.register_buffer("counter", torch.zeros(1, dtype=torch.float64))
    assert model_dtype(half) == torch.float16  # parameters outvote buffers
    assert model_dtype(nn.Sequential(nn.Identity())) == torch.get_default_dtype()


# --- forward passes ----------------------------------------------------------------------------


def test_forward_peak_bytes_counts_the_largest_input_plus_output():
    model = nn.Sequential(nn.Conv2d(3, 5, 1), nn.ReLU())
    # conv: 2*3*4*6 in + 2*5*4*6 out floats; ReLU: 2*5*4*6 in and out (the larger)
    assert forward_peak_bytes(model, (2, 3, 4, 6), torch.float32) == 2 * 240 * 4
    assert forward_peak_bytes(model.double(), (2, 3, 4, 6), torch.float64) == 2 * 240 * 8
    # an input of another dtype than the weights cannot run: no estimate
    assert forward_peak_bytes(model, (2, 3, 4, 6), torch.float32) is None
    wide = nn.Sequential(nn.Conv2d(3, 7, 1))  # the conv: 3 in + 7 out channels
    assert forward_peak_bytes(wide, (1, 3, 2, 5), torch.float32) == (3 + 7) * 10 * 4
    assert all(not m._forward_hooks for m in model.modules())
    assert model[0].weight.device.type == "cpu"  # the model itself is untouched


def test_forward_peak_bytes_of_wrappers():
    inner = nn.Sequential(nn.Conv2d(2, 4, 1))

    class Deployed(nn.Module):
        def shape_model(self):
            return inner

    assert forward_peak_bytes(Deployed(), (1, 2, 3, 3), torch.float32) == (2 + 4) * 9 * 4

    class Compiled(nn.Module):
        def __init__(self):
            super().__init__()
            self._orig_mod = inner

    assert forward_peak_bytes(Compiled(), (1, 2, 3, 3), torch.float32) == (2 + 4) * 9 * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated
        scripted = torch.jit.script(nn.Conv2d(2, 4, 1))
    assert forward_peak_bytes(scripted, (1, 2, 3, 3), torch.float32) is None

    class KeywordOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Twice()

        def forward(self, x):
            return self.inner(y=x)

    class Twice(nn.Module):
        def forward(self, y):
            return torch.cat([y, y])

    # the inner call has no positional tensor: only its output counts (2x the input)
    assert forward_peak_bytes(KeywordOnly(), (1, 2, 3, 3), torch.float32) == 18 * 4 + 36 * 4


def test_forward_fits_skips_small_inputs_and_meta_models(monkeypatch):
    shape = (1, 3, 4, 4)  # 48 floats: 192 B, x 256 = 49,152 B
    calls = []
    monkeypatch.setattr(_checks, "forward_peak_bytes", lambda *a: calls.append(a) or 10**12)
    model = nn.Conv2d(3, 3, 1)
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(192 * 256))
    check_forward_fits(model, shape, torch.float32, name="x", value=1)  # not counted
    assert calls == []
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(192 * 256 - 1))
    with raises(
        SizeLimitError,
        "x=1 would need 931.3 GiB for one layer's input and output in a forward pass of "
        "(1, 3, 4, 4), more than the limit of 48.0 KiB ($EFFNB_MAX_BYTES)",
    ):
        check_forward_fits(model, shape, torch.float32, name="x", value=1)
    assert len(calls) == 1
    with torch.device("meta"):
        meta = nn.Conv2d(3, 3, 1)
    check_forward_fits(meta, shape, torch.float32, name="x", value=1)  # allocates nothing
    assert len(calls) == 1
    monkeypatch.setattr(_checks, "forward_peak_bytes", lambda *a: None)
    check_forward_fits(model, shape, torch.float32, name="x", value=1)  # no estimate: go ahead
    monkeypatch.setenv("EFFNB_MAX_BYTES", str(96 * 256))
    monkeypatch.setattr(_checks, "forward_peak_bytes", lambda *a: calls.append(a) or 10**12)
    check_forward_fits(model, shape, torch.float16, name="x", value=1)  # 2 bytes an element
    assert len(calls) == 1


# --- seeds, callables, generators, arrays of numbers ------------------------------------------


def test_seed_range():
    from effnb._checks import MAX_SEED, check_seed

    assert check_seed("seed", 0) == 0 and check_seed("seed", MAX_SEED) == MAX_SEED
    with raises(ValueError, "seed must be an integer >= 0, got -1"):
        check_seed("seed", -1)
    with raises(
        SizeLimitError,
        f"seed must be an integer <= {MAX_SEED} (torch.manual_seed's range), got {MAX_SEED + 1}",
    ):
        check_seed("seed", MAX_SEED + 1)
    with torch.random.fork_rng():
        torch.manual_seed(MAX_SEED)  # the maximum really is accepted there
    np.random.default_rng(MAX_SEED)


def test_callable_and_generator():
    from effnb._checks import check_callable, check_generator

    assert check_callable("fn", len) is len and check_callable("fn", nn.ReLU) is nn.ReLU
    with raises(TypeError, "fn must be callable, got 3 (int)"):
        check_callable("fn", 3)
    rng = np.random.default_rng(0)
    assert check_generator("rng", rng) is rng
    with raises(
        TypeError,
        "rng must be a numpy.random.Generator (np.random.default_rng(seed)), got 0 (int)",
    ):
        check_generator("rng", 0)
    with pytest.raises(
        TypeError, match=r"^rng must be a numpy.random.Generator .*\(RandomState\)$"
    ):
        check_generator("rng", np.random.RandomState(0))


def test_finite_array_accepts_sequences_and_returns_float64():
    from effnb._checks import check_finite_array

    for values in (
        [1, 2, 3],
        (1.5, 2.0, 3.0),
        np.array([1, 2, 3], np.int32),
        torch.tensor([1.0, 2, 3]),
    ):
        out = check_finite_array("xs", values)
        assert out.dtype == np.float64 and out.ndim == 1 and len(out) == 3
    assert check_finite_array("xs", [0.0, -1.0]).tolist() == [0.0, -1.0]  # any sign by default
    assert check_finite_array("xs", [2.0], positive=True).tolist() == [2.0]
    assert check_finite_array("xs", [], min_length=0).tolist() == []
    assert check_finite_array("xs", [1, 2], length=2).tolist() == [1.0, 2.0]
    assert check_finite_array("xs", [1, 2], min_length=2).tolist() == [1.0, 2.0]


def test_finite_array_refusals_name_position_and_value():
    from effnb._checks import check_finite_array

    what = "a 1-D sequence of finite numbers"
    with raises(TypeError, f"xs must be {what}, got '12' (str)"):
        check_finite_array("xs", "12")
    with raises(TypeError, f"xs must be {what}, got 3 (int)"):
        check_finite_array("xs", 3)
    with raises(TypeError, f"xs must be {what}, got list [1, None]"):
        check_finite_array("xs", [1, None])
    with raises(TypeError, f"xs must be {what}, got list [True, False]"):
        check_finite_array("xs", [True, False])
    with raises(TypeError, f"xs must be {what} > 0, got list [1j]"):
        check_finite_array("xs", [1j], positive=True)
    with raises(ValueError, f"xs must be {what}, got an array of shape (1, 2)"):
        check_finite_array("xs", [[1, 2]])
    with raises(ValueError, "xs must have length 3, got length 2"):
        check_finite_array("xs", [1, 2], length=3)
    with raises(ValueError, "xs must have length >= 1, got length 0"):
        check_finite_array("xs", [])
    with raises(ValueError, "xs must have length >= 3, got length 2"):
        check_finite_array("xs", [1, 2], min_length=3)
    with raises(ValueError, f"xs must be {what}; xs[1] is nan (2 of 3 values are not)"):
        check_finite_array("xs", [1.0, float("nan"), float("inf")])
    with raises(ValueError, f"xs must be {what} > 0; xs[2] is 0.0 (2 of 4 values are not)"):
        check_finite_array("xs", [1.0, 2.0, 0.0, -3.0], positive=True)
    long = list(range(30)) + [None]
    with pytest.raises(TypeError) as err:
        check_finite_array("xs", long)
    shown = str(err.value).removeprefix(f"xs must be {what}, got list ")
    assert len(shown) == 80 and shown.endswith("...") and shown.startswith("[0, 1, 2")
    from effnb._checks import _short

    assert _short("x" * 80) == repr("x" * 80)[:77] + "..."
    assert _short("x" * 78) == repr("x" * 78)  # 80 characters with the quotes: kept whole
    assert _short([1, 2], limit=5) == "[1, 2]"[:2] + "..."


# --- what the first mutation run left alive (scripts/mutants.py) ---------------------------


def test_numbers_too_large_for_a_float_and_odd_numpy_objects():
    from fractions import Fraction

    with raises(ValueError, "x must be a finite number, got too large a number"):
        check_real("x", Fraction(10**400))  # a Real that is not an int
    with raises(TypeError, "x must be a finite number, got <ufunc 'add'> (ufunc)"):
        check_real("x", np.add)  # a numpy object without ndim
    with pytest.raises(
        TypeError, match=r"^n must be an integer >= 1, got array\(5, dtype=object\)"
    ):
        check_int("n", np.array(5, dtype=object))  # only integer and float arrays unwrap
    with raises(TypeError, "flag must be True or False, got np.int64(1) (int64)"):
        check_bool("flag", np.int64(1))  # numpy, but not numpy's bool


def test_forward_fits_counts_in_the_given_dtype(monkeypatch):
    model = nn.Conv2d(3, 4, 1).double()  # 3 x 8 x 8 in, 4 x 8 x 8 out: 3584 B in float64
    monkeypatch.setenv("EFFNB_MAX_BYTES", "3000")
    with pytest.raises(SizeLimitError, match=r"^x=1 would need 3\.5 KiB for one layer's"):
        check_forward_fits(model, (1, 3, 8, 8), torch.float64, name="x", value=1)
    monkeypatch.setenv("EFFNB_MAX_BYTES", "3584")
    check_forward_fits(model, (1, 3, 8, 8), torch.float64, name="x", value=1)  # exactly fits


def test_input_size_refuses_tensors_and_counts_float32_by_default(monkeypatch):
    with pytest.raises(TypeError, match=r"^input_size must be an int or a \(C, H, W\)"):
        check_input_size(torch.tensor([6, 9]))
    monkeypatch.setenv("EFFNB_MAX_BYTES", "192")  # 3 x 4 x 4 float32
    default = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert check_input_size(4) == (3, 4, 4)  # dtype=None means float32, whatever the default
    finally:
        torch.set_default_dtype(default)


def test_forward_peak_bytes_edge_cases():
    class Pair(nn.Module):
        def forward(self, x):
            return (x, x)

    assert forward_peak_bytes(Pair(), (1, 2, 3, 3), torch.float32) == 0  # no tensor output

    class Inner(nn.Module):
        def forward(self, y):
            return torch.cat([y, y, y, y])

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(y=x).sum()

    # Outer: 72 B in + 4 B out; inner (no positional input): 288 B out and nothing else
    assert forward_peak_bytes(Outer(), (1, 2, 3, 3), torch.float32) == 288


def test_memory_limit_is_an_int_and_mixed_dtypes_message(monkeypatch):
    monkeypatch.delenv("EFFNB_MAX_BYTES", raising=False)
    monkeypatch.setattr(_checks, "_physical_memory", lambda: 3 * 2**30 + 1)
    assert memory_limit() == (3 * 2**30) // 2 and type(memory_limit()) is int
    mixed = nn.Sequential(nn.Conv2d(1, 1, 1).half(), nn.Conv2d(1, 1, 1))
    with raises(
        TypeError,
        "model mixes floating dtypes ['float16', 'float32']: convert it to one, e.g. "
        "model.float() or model.half(), before profiling or timing it",
    ):
        model_dtype(mixed)
