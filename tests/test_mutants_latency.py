"""Tests that kill the mutants of effnb/nas/latency.py that the other tests let live (issue 16;
scripts/mutants.py runs mutmut against these).

Nothing is timed: measurements come from scripted ``measure`` functions, and ``SampleTimer``
runs against a fake clock and a fake ``torch.utils.benchmark.Timer``."""

from __future__ import annotations

import json
import math
import re
import types

import numpy as np
import pytest
import torch
from torch import nn

from effnb import _cache
from effnb._checks import SizeLimitError
from effnb.nas import latency as L
from effnb.nas.space import SearchSpace, StageSkeleton

TINY = SearchSpace(kernels=(3,), expansions=(1, 6), se_ratios=(0.0,), layers=(1, 2))


def raises(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# --- interleaving and speed normalisation -----------------------------------------------------


def _pieces(n=3):
    return {f"p{i}": (nn.Identity(), (i + 1, 4, 5)) for i in range(n)}


def test_measure_interleaved_orders_and_values():
    pieces = _pieces(3)
    index = {id(m): i for i, (m, _) in enumerate(pieces.values())}
    seen = []

    def measure(module, shape):
        i = index[id(module)]
        seen.append((i, shape))
        return 10.0 * (i + 1) + len(seen)  # depends on the piece and on the call's position

    per_round = L.measure_interleaved(pieces, rounds=4, measure=measure, seed=5)
    rng = np.random.default_rng(5)
    order = [list(rng.permutation(3)) for _ in range(4)]
    assert [i for i, _ in seen] == [i for o in order for i in o]
    assert all(shape == (i + 1, 4, 5) for i, shape in seen)
    want = np.zeros((4, 3))
    k = 0
    for r, o in enumerate(order):
        for i in o:
            k += 1
            want[r, i] = 10.0 * (i + 1) + k
    assert per_round.tolist() == want.tolist()
    default = L.measure_interleaved(pieces, measure=lambda m, s: 1.0)
    assert default.shape == (30, 3)


def test_measure_interleaved_default_seed_and_progress(monkeypatch):
    calls = []
    seen = []

    def measure(module, shape):
        seen.append(shape[0])
        return 1.0

    class Bar:
        def __init__(self, it, desc):
            calls.append(desc)
            self.it = it

        def __iter__(self):
            return iter(self.it)

    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    L.measure_interleaved(_pieces(3), rounds=2, measure=measure, progress=True)
    assert calls == ["3 pieces x 2 rounds"]
    rng = np.random.default_rng(0)
    assert seen == [int(i) + 1 for _ in range(2) for i in rng.permutation(3)]


def test_measure_interleaved_messages():
    ok = lambda m, s: 1.0  # noqa: E731
    with raises(
        ValueError, "pieces must be a non-empty mapping of key -> (module, (C, H, W)), got {}"
    ):
        L.measure_interleaved({}, measure=ok)
    with raises(
        ValueError, "pieces must be a non-empty mapping of key -> (module, (C, H, W)), got []"
    ):
        L.measure_interleaved([], measure=ok)
    long = "x" * 300
    with pytest.raises(ValueError) as info:
        L.measure_interleaved(long, measure=ok)
    assert len(str(info.value)) == 200
    with raises(TypeError, "pieces['a'] must be a (module, (C, H, W)) pair, got [1, 2]"):
        L.measure_interleaved({"a": [1, 2]}, measure=ok)
    with raises(TypeError, "pieces['a'] must be a (module, (C, H, W)) pair, got (1, 2, 3)"):
        L.measure_interleaved({"a": (1, 2, 3)}, measure=ok)
    with pytest.raises(TypeError, match=r"^pieces\['a'\]\[0\] must be a torch.nn.Module"):
        L.measure_interleaved({"a": ("m", (1, 2, 3))}, measure=ok)
    with raises(ValueError, "pieces['a'][1] must be a (C, H, W) shape, got (1, 2)"):
        L.measure_interleaved({"a": (nn.Identity(), (1, 2))}, measure=ok)
    with raises(ValueError, "pieces['a'][1] must be a (C, H, W) shape, got 3"):
        L.measure_interleaved({"a": (nn.Identity(), 3)}, measure=ok)
    with pytest.raises(ValueError, match=r"^pieces\['a'\]\[1\]\[2\] must be an integer"):
        L.measure_interleaved({"a": (nn.Identity(), (1, 2, 0))}, measure=ok)
    big = L.MAX_INPUT_SIZE * 64
    L.measure_interleaved({"a": (nn.Identity(), (1, 1, big))}, rounds=1, measure=ok)
    with pytest.raises(ValueError, match=r"^pieces\['a'\]\[1\]\[2\] must be an integer"):
        L.measure_interleaved({"a": (nn.Identity(), (1, 1, big + 1))}, measure=ok)
    with pytest.raises(TypeError, match="^measure must be"):
        L.measure_interleaved(_pieces(1), measure=3)
    with pytest.raises(ValueError, match=r"^measure\(pieces\['p0'\]\) in round 0 must be"):
        L.measure_interleaved(_pieces(1), measure=lambda m, s: 0.0)
    with pytest.raises(ValueError, match="^rounds must be"):
        L.measure_interleaved(_pieces(1), rounds=L.MAX_ROUNDS + 1, measure=ok)
    assert L.measure_interleaved(_pieces(1), rounds=L.MAX_ROUNDS, measure=ok).shape == (1000, 1)


def test_round_speed_exact():
    per = np.array([[1.0, 4.0, 9.0], [2.0, 2.0, 3.0], [4.0, 8.0, 6.0], [1.0, 3.0, 12.0]])
    # per-piece medians: 1.5, 3.5, 7.5
    ratios = per / np.array([1.5, 3.5, 7.5])
    assert L.round_speed(per).tolist() == np.median(ratios, axis=1).tolist()
    assert L.round_speed(per, [0, 2]).tolist() == np.median(ratios[:, [0, 2]], axis=1).tolist()
    assert L.speed_normalised(per).tolist() == (per / np.median(ratios, axis=1)[:, None]).tolist()
    sub = per[:, 1:] / np.median(per[:, 1:], axis=0)
    assert (
        L.speed_normalised(per, slice(1, 3)).tolist()
        == (per / np.median(sub, axis=1)[:, None]).tolist()
    )
    assert L.round_speed([[2.0, 3.0]]).tolist() == [1.0]


def test_rounds_array_messages():
    with raises(ValueError, "per_round must be (rounds >= 1, pieces >= 1), got shape (3,)"):
        L.round_speed(np.ones(3))
    with raises(ValueError, "per_round must be (rounds >= 1, pieces >= 1), got shape (2, 0)"):
        L.round_speed(np.ones((2, 0)))
    with raises(ValueError, "per_round must be (rounds >= 1, pieces >= 1), got shape (0, 2)"):
        L.speed_normalised(np.ones((0, 2)))
    with raises(ValueError, "per_round must be (rounds >= 2, pieces >= 1), got shape (1, 2)"):
        L.measurement_halves(np.ones((1, 2)))
    with raises(ValueError, "per_round must hold finite milliseconds > 0; per_round[1, 0] is 0.0"):
        L.round_speed([[1.0, 2.0], [0.0, 1.0]])
    with raises(ValueError, "per_round must hold finite milliseconds > 0; per_round[0, 1] is nan"):
        L.round_speed([[1.0, float("nan")]])
    with raises(ValueError, "per_round must hold finite milliseconds > 0; per_round[0, 0] is -1.0"):
        L.round_speed([[-1.0, 1.0]])
    with raises(TypeError, "per_round must be a (rounds, pieces) array of milliseconds, got str"):
        L.round_speed("ab")
    with raises(TypeError, "per_round must be a (rounds, pieces) array of milliseconds, got list"):
        L.round_speed([[1.0, "x"]])


def test_measurement_halves_and_repeatability():
    four = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [5.0, 50.0], [4.0, 45.0]])
    first, second = L.measurement_halves(four)
    assert first.tolist() == [3.0, 30.0] and second.tolist() == [3.5, 35.0]
    three = np.array([[1.0, 2.0], [1.05, 3.0], [9.0, 9.0]])
    first, second = L.measurement_halves(three)
    assert first.tolist() == [1.0, 2.0] and second.tolist() == [1.05, 3.0]
    assert L.repeatability(three) == 0.5
    assert L.repeatability(three, tol=0.5) == 1.0
    assert L.repeatability(np.array([[1.0], [1.2]]), tol=0.2) == 1.0
    with pytest.raises(ValueError, match="^tol must be"):
        L.repeatability(three, tol=-0.1)


def test_within_share_and_messages():
    assert L.within_share([1.05, 2.0, 3.0, 0.5], [1.0, 2.0, 2.0, 1.0]) == 0.5
    assert L.within_share([1.25], [1.0], tol=0.25) == 1.0  # the bound is included
    assert L.within_share([0.75], [1.0], tol=0.25) == 1.0
    assert L.within_share([1.25], [1.0]) == 0.0  # default 10%
    assert L.within_share([1.0], [1.0], tol=0.0) == 1.0
    assert L.within_share([21.0], [2.0], tol=L.MAX_TOL) == 1.0
    with raises(ValueError, "tol must be a finite number in [0.0, 10.0], got 10.5"):
        L.within_share([1.0], [1.0], tol=10.5)
    with pytest.raises(ValueError, match="^reference"):
        L.within_share([1.0], [0.0])
    with pytest.raises(ValueError, match="^reference"):
        L.within_share([1.0, 2.0], [1.0])
    assert L.within_share([-1.0], [1.0], tol=2.0) == 1.0  # predictions may be any finite number


def test_ranks_and_spearman():
    assert L._ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert L._ranks(np.array([2.0, 2.0, 1.0])).tolist() == [2.5, 2.5, 1.0]
    assert L._ranks(np.array([5.0])).tolist() == [1.0]
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    y = [2.0, 1.0, 4.0, 3.0, 5.0]
    # no ties: 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 * 4 / 120
    assert L.spearman(x, y) == pytest.approx(0.8)
    assert L.spearman(x, [5.0, 4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    ties = L.spearman([1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([1, 3, 2, 4.0])
    assert ties == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    assert math.isnan(L.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(L.spearman([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match="^x"):
        L.spearman([1.0], [1.0])
    with pytest.raises(ValueError, match="^y"):
        L.spearman([1.0, 2.0], [1.0])


# --- validation and the bootstrap -------------------------------------------------------------


def test_validate_and_summary():
    archs = [TINY.sample(np.random.default_rng(i)) for i in range(3)]
    preds = {archs[0]: 1.05, archs[1]: 3.0, archs[2]: 2.5}
    if len(preds) < 3:
        pytest.skip("need three distinct archs")
    report = L.validate(lambda a: preds[a], archs, [1.0, 2.0, 4.0])
    assert report.predicted_ms == (1.05, 3.0, 2.5) and report.measured_ms == (1.0, 2.0, 4.0)
    assert report.within_10 == pytest.approx(1 / 3)
    assert report.spearman_rho == pytest.approx(0.5)
    assert report.mean_abs_pct_error == pytest.approx(100 * (0.05 + 0.5 + 0.375) / 3)
    assert report.summary() == (
        "3 held-out networks: 33% within +-10%, Spearman rho 0.500, mean |error| 30.8%"
    )
    with raises(
        ValueError, "validate needs one measurement per arch: 3 archs, measured_ms has length 2"
    ):
        L.validate(lambda a: 1.0, archs, [1.0, 2.0])
    with raises(TypeError, "archs must be a sequence of Architecture, got Architecture"):
        L.validate(lambda a: 1.0, archs[0], [1.0, 2.0])
    with raises(TypeError, "archs must be a sequence of Architecture, got str"):
        L.validate(lambda a: 1.0, "ab", [1.0, 2.0])
    with raises(TypeError, "archs must be a sequence of Architecture, got set"):
        L.validate(lambda a: 1.0, set(archs), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^the predictions predictor\(archs\[i\]\)"):
        L.validate(lambda a: 0.0, archs, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="^measured_ms"):
        L.validate(lambda a: 1.0, archs[:1], [1.0])
    with pytest.raises(TypeError, match="^predictor must be"):
        L.validate(3, archs, [1.0, 2.0, 3.0])


def _bootstrap_by_hand(metric, meas, a, b, confidence, n_boot, seed):
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(len(meas), size=len(meas))
        d = metric(a[i], meas[i]) - metric(b[i], meas[i])
        if np.isfinite(d):
            diffs.append(d)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(lo), float(metric(a, meas) - metric(b, meas)), float(hi)


def test_bootstrap_difference_matches_a_hand_computation():
    meas = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    a = np.array([1.1, 1.9, 3.3, 3.8, 5.6, 6.1])
    b = np.array([2.0, 1.0, 3.0, 6.0, 4.0, 9.0])
    got = L.bootstrap_difference(L.within_share, meas, a, b, confidence=0.8, n_boot=50, seed=3)
    assert got == _bootstrap_by_hand(L.within_share, meas, a, b, 0.8, 50, 3)
    got = L.bootstrap_difference(L.spearman, meas, a, b, n_boot=40)
    assert got == _bootstrap_by_hand(L.spearman, meas, a, b, 0.95, 40, 0)
    default = L.bootstrap_difference(L.within_share, meas, a, b)
    assert default == _bootstrap_by_hand(L.within_share, meas, a, b, 0.95, 2000, 0)


def test_bootstrap_difference_messages():
    meas, a = [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]
    with raises(
        ValueError,
        "metric gave no finite difference on any of the 7 resamples (are the predictions "
        "constant?)",
    ):
        L.bootstrap_difference(lambda p, m: math.nan, meas, a, a, n_boot=7)
    with pytest.raises(ValueError, match="^measured"):
        L.bootstrap_difference(L.spearman, [1.0, 2.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="^predicted_b"):
        L.bootstrap_difference(L.spearman, meas, a, [1.0, 2.0])
    with pytest.raises(ValueError, match="^n_boot"):
        L.bootstrap_difference(L.spearman, meas, a, a, n_boot=L.MAX_BOOT + 1)
    with pytest.raises(ValueError, match="^confidence"):
        L.bootstrap_difference(L.spearman, meas, a, a, confidence=1.5)
    with pytest.raises(TypeError, match="^metric must be"):
        L.bootstrap_difference(3, meas, a, a)


# --- the table, its keys, its checks -----------------------------------------------------------


def _value(**over):
    value = {
        "meta": {"rounds": 2, "threads": 1},
        "entries": {"a": 1.0, "b": 2.5},
        "networks": {"net:x": 4.0},
        "rounds": {"a": [1.0, 1.0], "b": [2.0, 3.0], "net:x": [4.0, 4.0]},
    }
    value.update(over)
    return value


def test_table_problem_messages():
    key = {"rounds": 2, "threads": 1}
    P = L._table_problem
    assert P(_value(), key) is None
    assert P(_value(), key, ["a", "b"], ["net:x"]) is None
    assert P([1], key) == "its value is a list, not a table"
    v = _value()
    del v["entries"], v["rounds"]
    assert P(v, key) == "it has no entries, rounds"
    assert P(_value(networks=[]), key) == (
        "its meta, entries, networks and rounds are not all mappings"
    )
    assert P(_value(), {"rounds": 2, "threads": 2}) == "its meta has threads=1 where its key has 2"
    assert P(_value(), {"cpu": "x"}) == "its meta has cpu=None where its key has 'x'"
    assert P(_value(entries={"a": 1.0, "b": 0}), key) == (
        "entries['b'] = 0 is not a finite number of milliseconds > 0"
    )
    assert P(_value(networks={"net:x": True}), key) == (
        "networks['net:x'] = True is not a finite number of milliseconds > 0"
    )
    assert P(_value(), key, ["a", "b", "c", "d"]) == (
        "entries lacks 2 of the 4 expected keys, e.g. 'c'"
    )
    assert P(_value(), key, ["a"]) == "entries has 1 unexpected keys, e.g. 'b'"
    assert P(_value(), key, None, []) == "networks has 1 unexpected keys, e.g. 'net:x'"
    assert P(_value(), key, ["a", "b"], ["net:x", "net:y"]) == (
        "networks lacks 1 of the 2 expected keys, e.g. 'net:y'"
    )
    r = _value()["rounds"]
    assert P(_value(rounds={**r, "c": [1.0, 1.0]}), key) == (
        "its rounds do not cover exactly its entries and networks"
    )
    assert P(_value(rounds={**r, "b": (2.0, 3.0)}), key) == (
        "rounds['b'] is not a list of finite milliseconds > 0"
    )
    assert P(_value(rounds={**r, "b": [2.0, math.inf]}), key) == (
        "rounds['b'] is not a list of finite milliseconds > 0"
    )
    assert P(_value(rounds={**r, "b": [2.0]}), key) == "rounds['b'] has 1 rounds, its meta says 2"
    nometa = _value(meta={})
    assert P(nometa, {}) is None  # without a rounds count, any length goes


def test_positive_ms():
    assert L._positive_ms(1) and L._positive_ms(0.5)
    assert not L._positive_ms(0) and not L._positive_ms(-1.0)
    assert not L._positive_ms(math.inf) and not L._positive_ms(math.nan)
    assert not L._positive_ms(True) and not L._positive_ms("1")


def test_table_accessors_and_key():
    t = L.LatencyTable(
        entries={"a": 1.0, "b": 2.0},
        meta={"rounds": 2, "seconds": 3.1, "round_speed": [1.0, 1.0], "cpu": "c"},
        networks={"net:x": 5.0},
        rounds={"a": [1.0, 1.0], "b": [2.0, 2.0], "net:x": [4.0, 6.0]},
    )
    assert len(t) == 2 and t["b"] == 2.0
    with raises(KeyError, "\"no latency measured for 'z'; the table has 2 entries\""):
        t["z"]
    assert t.key() == {"rounds": 2, "cpu": "c"}
    assert L.network_key("A") == "net:A"
    assert L._stem_key(12) == "stem@12" and L._head_key(7) == "head@7"


def test_network_ms_and_rounds():
    rng = np.random.default_rng(0)
    a, b = TINY.sample(rng), TINY.sample(rng)
    while b == a:
        b = TINY.sample(rng)
    t = L.LatencyTable(
        entries={},
        networks={L.network_key(a): 5.0, L.network_key(b): 7.0},
        rounds={L.network_key(a): [4.0, 6.0, 5.0], L.network_key(b): [7.0, 8.0, 6.0]},
    )
    assert t.network_ms([b, a]).tolist() == [7.0, 5.0]
    assert t.network_rounds([b, a]).tolist() == [[7.0, 4.0], [8.0, 6.0], [6.0, 5.0]]
    empty = L.LatencyTable(entries={})
    msg = (
        f"2 network(s) were not measured with this table, e.g. {L.network_key(a)!r}; "
        "pass them as build_latency_table(..., networks=...)"
    )
    with pytest.raises(KeyError) as info:
        empty.network_rounds([a, b])
    assert info.value.args == (msg,)


def test_save_and_load_messages(tmp_path, monkeypatch):
    t = L.LatencyTable(**{k: v for k, v in _value().items()})
    path = tmp_path / "t.json"
    t.save(path)
    data = json.loads(path.read_text())
    assert data["schema"] == _cache.SCHEMA and data["key"] == {"rounds": 2, "threads": 1}
    loaded = L.LatencyTable.load(str(path), expect={"threads": 1})
    assert loaded == t and isinstance(loaded.entries["a"], float)
    with raises(
        ValueError,
        f"the latency table {path} cannot be used: it was measured with threads=1, not the expected 2",
    ):
        L.LatencyTable.load(path, expect={"threads": 2, "rounds": 2})
    with raises(TypeError, "expect must be a mapping, got list"):
        L.LatencyTable.load(path, expect=[1])
    bad = L.LatencyTable(entries={"a": -1.0}, meta={}, rounds={"a": [1.0]})
    with raises(
        ValueError,
        f"cannot save the latency table to {path}: entries['a'] = -1.0 is not a finite number "
        "of milliseconds > 0",
    ):
        bad.save(path)
    odd = L.LatencyTable(entries={"a": 1.0}, meta={"x": object()}, rounds={"a": [1.0]})
    with pytest.raises(
        TypeError,
        match=f"^cannot save the latency table to {re.escape(str(path))}: its meta or entries are not JSON",
    ):
        odd.save(path)
    with pytest.raises(
        OSError,
        match=f"^cannot save the latency table to {re.escape(str(tmp_path / 'no' / 'x' / 't.json'))}: .",
    ):
        blocker = tmp_path / "no"
        blocker.write_text("a file, not a folder")
        t.save(blocker / "x" / "t.json")
    with raises(FileNotFoundError, f"no latency table at {tmp_path / 'missing.json'}"):
        L.LatencyTable.load(tmp_path / "missing.json")
    for text, why in [
        ("[1]", "it holds a list, not a table"),
        ('{"schema": 99}', f"schema 99 is not {_cache.SCHEMA}"),
        (json.dumps({"schema": _cache.SCHEMA, "key": 1}), "it has no key"),
        (
            json.dumps({"schema": _cache.SCHEMA, "key": {}, "value": 3}),
            "its value is a int, not a table",
        ),
    ]:
        path.write_text(text)
        with raises(ValueError, f"the latency table {path} cannot be used: {why}"):
            L.LatencyTable.load(path)
    path.write_text("{trunc")
    with pytest.raises(
        ValueError,
        match=f"^the latency table {re.escape(str(path))} cannot be read \\(JSONDecodeError: .*\\); delete it or measure it again$",
    ):
        L.LatencyTable.load(path)


def test_save_passes_other_warnings_on(tmp_path, monkeypatch):
    def write(path, key, value):
        import warnings

        warnings.warn("something else", UserWarning, stacklevel=1)
        return True

    monkeypatch.setattr(L._cache, "write_entry", write)
    with pytest.warns(UserWarning, match="^something else$"):
        L.LatencyTable(**_value()).save(tmp_path / "t.json")


def test_cpu_model(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nmodel name\t: Fancy CPU @ 3GHz : x \nmodel name : second\n")
    real = L.pathlib.Path
    fake = types.SimpleNamespace(Path=lambda p: real(info) if p == "/proc/cpuinfo" else real(p))
    monkeypatch.setattr(L, "pathlib", fake)
    assert L.cpu_model() == "Fancy CPU @ 3GHz : x"
    info.write_text("processor : 0\n")
    monkeypatch.setattr(L.platform, "processor", lambda: "proc")
    assert L.cpu_model() == "proc"
    monkeypatch.setattr(L.platform, "processor", lambda: "")
    monkeypatch.setattr(L.platform, "machine", lambda: "mach")
    assert L.cpu_model() == "mach"
    monkeypatch.setattr(L.platform, "machine", lambda: "")
    assert L.cpu_model() == "unknown"
    monkeypatch.setattr(L, "pathlib", types.SimpleNamespace(Path=lambda p: tmp_path / "nothing"))
    monkeypatch.setattr(L.platform, "processor", lambda: "proc")
    assert L.cpu_model() == "proc"


# --- pieces and tables built with a scripted measure -------------------------------------------


def test_final_size_and_pieces():
    space = SearchSpace(
        kernels=(3,),
        expansions=(1,),
        se_ratios=(0.0,),
        layers=(1,),
        skeleton=(StageSkeleton(8, 2), StageSkeleton(12, 1), StageSkeleton(16, 2)),
        stem_channels=4,
        head_channels=20,
        in_chans=2,
    )
    assert L._final_size(space, 13) == 4  # 13 -> 7 -> 7 -> 4
    pieces = L._table_pieces(space, 13)
    keys = list(pieces)
    assert keys[0] == "stem@13" and keys[-1] == "head@13"
    assert pieces["stem@13"][1] == (2, 13, 13)
    assert pieces["head@13"][1] == (16, 4, 4)
    assert keys[1:-1] == [s.key for s in space.all_block_specs(13)]
    for spec in space.all_block_specs(13):
        assert pieces[spec.key][1] == (spec.in_channels, spec.size, spec.size)
    head = pieces["head@13"][0]
    assert head(torch.zeros(1, 16, 4, 4)).shape == (1, 10)


def _keyed_measure(scale=None):
    """ms = 1 + (index of the piece in first-seen order), times scale[round] if given."""
    ids: dict[int, int] = {}
    calls = []

    def measure(module, shape):
        i = ids.setdefault(id(module), len(ids))
        calls.append(i)
        r = (len(calls) - 1) // measure.n if scale else 0
        return (1.0 + i) * (scale[r] if scale else 1.0)

    measure.n = 0
    return measure, ids, calls


def test_build_latency_table_meta_entries_and_rounds(monkeypatch):
    monkeypatch.setattr(L, "cpu_model", lambda: "CPU-X")
    rng = np.random.default_rng(0)
    arch = TINY.sample(rng)
    n = len(TINY.all_block_specs(12)) + 2
    measure, ids, _ = _keyed_measure([1.0, 2.0, 1.0])
    measure.n = n + 1
    table = L.build_latency_table(
        TINY,
        12,
        networks=[arch, arch],
        measure=measure,
        rounds=3,
        seed=4,
        threads=2,
        sample_ms=2.5,
    )
    meta = dict(table.meta)
    assert isinstance(meta.pop("seconds"), float)
    assert meta.pop("round_speed") == [1.0, 2.0, 1.0]
    assert meta == {
        "device": "cpu",
        "torch": torch.__version__,
        "threads": 2,
        "cpu": "CPU-X",
        "input_size": 12,
        "rounds": 3,
        "sample_ms": 2.5,
        "seed": 4,
        "space": repr(TINY),
        "networks": [L.network_key(arch), L.network_key(arch)],
        "source": L._table_source(),
    }
    assert list(table.entries)[0] == "stem@12" and list(table.entries)[-1] == "head@12"
    assert len(table.entries) == n and list(table.networks) == [L.network_key(arch)]
    assert set(table.rounds) == set(table.entries) | set(table.networks)
    assert all(len(v) == 3 for v in table.rounds.values())
    # a piece's value does not depend on the round once the round's speed is divided out
    for k, v in table.rounds.items():
        assert v[0] == v[1] == v[2]
        assert (table.entries | table.networks)[k] == v[0]
    assert all(isinstance(v, float) for v in table.entries.values())


def test_build_latency_table_round_speed_from_blocks_only():
    rng = np.random.default_rng(1)
    arch = TINY.sample(rng)
    n = len(TINY.all_block_specs(12)) + 2
    state = {"calls": 0}
    net_id = {}

    def measure(module, shape):
        state["calls"] += 1
        r = (state["calls"] - 1) // (n + 1)
        if isinstance(module, L.nn.Module) and hasattr(module, "stages"):
            net_id[id(module)] = True
            return [100.0, 1.0, 50.0][r]  # a wild network must not move the round factors
        return 2.0

    table = L.build_latency_table(TINY, 12, networks=[arch], measure=measure, rounds=3)
    assert table.meta["round_speed"] == [1.0, 1.0, 1.0]
    assert table.networks[L.network_key(arch)] == 50.0


def test_build_latency_table_limits(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    n = len(TINY.all_block_specs(12)) + 2
    # measure=None: the planned hours are checked before anything is measured
    rounds = 1000
    sample_ms = 4.0 * 3.6e6 / (rounds * n)
    with pytest.raises(SizeLimitError) as info:
        L.build_latency_table(TINY, 12, rounds=rounds, sample_ms=sample_ms * 1.01)
    assert str(info.value) == (
        f"rounds=1000 x {n} pieces x sample_ms={sample_ms * 1.01:g} would take "
        f"{rounds * n * sample_ms * 1.01 / 3.6e6:.1f} hours of samples, more than 4: fewer "
        "rounds or shorter samples"
    )
    measured = []
    monkeypatch.setattr(
        L,
        "default_measure",
        lambda threads, sample_ms: measured.append((threads, sample_ms)) or (lambda m, s: 1.0),
    )
    table = L.build_latency_table(TINY, 12, rounds=1, sample_ms=2.0, threads=1)
    assert measured == [(1, 2.0)]
    assert L.build_latency_table(TINY, 12, rounds=1, sample_ms=2.0, threads=1) == table
    assert measured == [(1, 2.0)]  # the second came from the cache
    files = list(tmp_path.rglob("nas-latency-table-*.json"))
    assert len(files) == 1
    L.build_latency_table(TINY, 12, rounds=1, sample_ms=2.0, threads=1, use_cache=False)
    assert len(measured) == 2
    # a custom measure is not limited by the planned hours (and not cached)
    custom, _, _ = _keyed_measure()
    L.build_latency_table(TINY, 12, rounds=2, sample_ms=L.MAX_SAMPLE_MS, measure=custom)
    assert len(list(tmp_path.rglob("nas-latency-table-*.json"))) == 1
    with pytest.raises(ValueError, match="^input_size must be"):
        L.build_latency_table(TINY, L.MAX_INPUT_SIZE + 1, measure=custom)
    with pytest.raises(TypeError, match="^space must be a SearchSpace, got str$"):
        L.build_latency_table("s", 12, measure=custom)
    with pytest.raises(TypeError, match="^networks must be a sequence of Architecture, got str$"):
        L.build_latency_table(TINY, 12, networks="ab", measure=custom)
    with pytest.raises(TypeError, match="^measure must be"):
        L.build_latency_table(TINY, 12, measure=3)


def test_build_latency_table_hours_boundary(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    monkeypatch.setattr(L, "default_measure", lambda threads, sample_ms: lambda m, s: 1.0)
    monkeypatch.setattr(L, "measure_interleaved", lambda pieces, **kw: np.ones((1, len(pieces))))
    n = len(TINY.all_block_specs(12)) + 2
    monkeypatch.setattr(L, "MAX_TABLE_HOURS", 2 * n * 1.5 / 3.6e6)
    L.build_latency_table(TINY, 12, rounds=2, sample_ms=1.5, use_cache=False)  # exactly at it
    with pytest.raises(SizeLimitError):
        L.build_latency_table(TINY, 12, rounds=2, sample_ms=1.5000001, use_cache=False)


def test_build_latency_table_default_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    seen = {}

    def interleaved(pieces, *, rounds, measure, seed, progress):
        seen.update(rounds=rounds, seed=seed, progress=progress, measure=measure)
        return np.ones((rounds, len(pieces)))

    made = []
    monkeypatch.setattr(L, "measure_interleaved", interleaved)
    monkeypatch.setattr(
        L, "default_measure", lambda threads, sample_ms: made.append((threads, sample_ms)) or "M"
    )
    table = L.build_latency_table(TINY, 12)
    assert seen == {"rounds": 30, "seed": 0, "progress": False, "measure": "M"}
    assert made == [(1, 3.0)]
    assert table.meta["threads"] == 1 and table.meta["sample_ms"] == 3.0
    L.build_latency_table(TINY, 12, progress=True, use_cache=False, seed=2, rounds=3)
    assert seen["progress"] is True and seen["seed"] == 2 and seen["rounds"] == 3


def test_measure_networks(monkeypatch):
    archs = list(TINY.baselines().values())
    seen = {}
    real = L.measure_interleaved

    def spy(pieces, *, rounds, measure, seed):
        seen.update(keys=list(pieces), shapes=[s for _, s in pieces.values()], seed=seed)
        assert all(not m.training for m, _ in pieces.values())
        return real(pieces, rounds=rounds, measure=measure, seed=seed)

    monkeypatch.setattr(L, "measure_interleaved", spy)
    measure, ids, _ = _keyed_measure([1.0, 2.0, 4.0, 1.0])
    measure.n = len(archs)
    med, per = L.measure_networks(TINY, archs, 12, measure=measure, rounds=4, seed=7)
    assert seen["keys"] == [str(i) for i in range(len(archs))] and seen["seed"] == 7
    assert seen["shapes"] == [(3, 12, 12)] * len(archs)
    assert per.shape == (4, len(archs))
    assert per.tolist() == [per[0].tolist()] * 4  # the speed factors divide out
    assert med.tolist() == per[0].tolist()
    made = []
    monkeypatch.setattr(
        L,
        "default_measure",
        lambda threads, sample_ms: made.append((threads, sample_ms)) or (lambda m, s: 1.0),
    )
    med, per = L.measure_networks(TINY, archs, 12, threads=2, sample_ms=1.5)
    assert made == [(2, 1.5)] and per.shape == (30, len(archs)) and seen["seed"] == 0
    with raises(ValueError, "archs must hold at least one Architecture, got none"):
        L.measure_networks(TINY, [], 12)
    with pytest.raises(ValueError, match="^input_size must be"):
        L.measure_networks(TINY, archs, L.MAX_INPUT_SIZE + 1)
    with pytest.raises(ValueError, match="^rounds must be"):
        L.measure_networks(TINY, archs, 12, rounds=0)


# --- the predictor ----------------------------------------------------------------------------


def _hand_table(space, size, values):
    keys = [f"stem@{size}", *(s.key for s in space.all_block_specs(size)), f"head@{size}"]
    return L.LatencyTable(entries={k: v for k, v in zip(keys, values, strict=True)})


def test_predictor_block_sum_predict_and_fit():
    keys = TINY.all_block_specs(12)
    values = [0.5, *(1.0 + 0.25 * i for i in range(len(keys))), 3.0]
    table = _hand_table(TINY, 12, values)
    pred = L.LatencyPredictor(TINY, table, 12, scale=2.0, overhead_ms=0.75)
    rng = np.random.default_rng(0)
    archs = []
    while len(archs) < 4:
        a = TINY.sample(rng)
        if a not in archs:
            archs.append(a)
    by_key = dict(zip([s.key for s in keys], values[1:-1], strict=True))
    sums = [0.5 + 3.0 + sum(by_key[s.key] for s in TINY.block_specs(a, 12)) for a in archs]
    assert [pred.block_sum(a) for a in archs] == pytest.approx(sums)
    assert pred.predict(archs[0]) == pytest.approx(2.0 * sums[0] + 0.75)
    assert pred(archs[1]) == pytest.approx(2.0 * sums[1] + 0.75)
    y = [1.5 * s + 0.25 for s in sums]
    fitted = pred.fit(archs, y)
    assert fitted.scale == pytest.approx(1.5) and fitted.overhead_ms == pytest.approx(0.25)
    one = pred.fit(archs[:1], [10.0])
    assert one.scale == 1.0 and one.overhead_ms == pytest.approx(10.0 - sums[0])
    same = pred.fit([archs[0], archs[0]], [10.0, 12.0])
    assert same.scale == 1.0 and same.overhead_ms == pytest.approx(11.0 - sums[0])
    with raises(ValueError, "measured_ms must have length >= 1, got length 0"):
        pred.fit([], [])  # (so fit's own "no architecture" check is never reached)
    with raises(TypeError, "table must be a LatencyTable, got dict"):
        L.LatencyPredictor(TINY, {}, 12)
    with raises(TypeError, "space must be a SearchSpace, got NoneType"):
        L.LatencyPredictor(None, table, 12)
    with pytest.raises(ValueError, match="^scale must be"):
        L.LatencyPredictor(TINY, table, 12, scale=math.nan)
    with pytest.raises(ValueError, match="^overhead_ms must be"):
        L.LatencyPredictor(TINY, table, 12, overhead_ms=math.inf)
    with pytest.raises(ValueError, match="^input_size must be"):
        L.LatencyPredictor(TINY, table, L.MAX_INPUT_SIZE + 1)
    p = L.LatencyPredictor(TINY, table, np.int64(12), scale=np.float64(2.0))
    assert type(p.input_size) is int and type(p.scale) is float
    assert L.LatencyPredictor(TINY, table, 12).predict(archs[0]) == pytest.approx(sums[0])


# --- SampleTimer against a fake clock ----------------------------------------------------------


class _Timed:
    def __init__(self, number):
        self.mean = 0.004 * number


class FakeBenchTimer:
    made: list = []

    def __init__(self, stmt, globals, num_threads):
        self.step, self.num_threads, self.numbers = globals["step"], num_threads, []
        FakeBenchTimer.made.append(self)

    def timeit(self, number):
        self.numbers.append(number)
        return _Timed(number)


def test_sample_timer_calibration(monkeypatch):
    clock = iter([10.0, 10.0005])  # two calls take 0.5 ms: 0.25 ms per call
    monkeypatch.setattr(L.time, "perf_counter", lambda: next(clock))
    FakeBenchTimer.made = []
    monkeypatch.setattr(L.benchmark, "Timer", FakeBenchTimer)
    calls, threads = [], []

    class M(nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape))
            threads.append(torch.get_num_threads())
            return x

    before = torch.get_num_threads()
    timer = L.SampleTimer(threads=2, sample_ms=3.0, warmup=5)
    m = M().train()
    assert timer(m, (3, 4, 5)) == pytest.approx(0.004 * 12 * 1e3)
    assert calls == [(1, 3, 4, 5)] * 7 and threads == [2] * 7  # 5 warm-up + 2 calibration
    assert torch.get_num_threads() == before and not m.training
    (t,) = FakeBenchTimer.made
    assert t.num_threads == 2 and t.numbers == [12]  # round(3 ms / 0.25 ms)
    timer(m, (3, 4, 5))
    assert len(FakeBenchTimer.made) == 1 and t.numbers == [12, 12] and len(calls) == 7
    assert timer._prepared[id(m)][0] is m and timer._prepared[id(m)][2] == 12


def test_sample_timer_defaults_and_slow_modules(monkeypatch):
    clock = iter([0.0, 1.0])  # 0.5 s per call: at least one call per sample
    monkeypatch.setattr(L.time, "perf_counter", lambda: next(clock))
    FakeBenchTimer.made = []
    monkeypatch.setattr(L.benchmark, "Timer", FakeBenchTimer)
    count = []
    timer = L.default_measure()
    assert (timer.threads, timer.sample_ms, timer.warmup) == (1, 3.0, 3)
    timer(nn.Sequential(nn.Flatten()), (1, 2, 2))
    assert FakeBenchTimer.made[0].numbers == [1] and FakeBenchTimer.made[0].num_threads == 1
    del count
    custom = L.default_measure(threads=2, sample_ms=5.0, warmup=0)
    assert (custom.threads, custom.sample_ms, custom.warmup) == (2, 5.0, 0)
    with raises(ValueError, "sample_ms must be a finite number in (0.0, 1000.0], got 1001"):
        L.SampleTimer(sample_ms=1001)
    assert L.SampleTimer(sample_ms=1000).sample_ms == 1000.0
    with pytest.raises(ValueError, match="^warmup must be"):
        L.SampleTimer(warmup=L.MAX_WARMUP + 1)
    assert L.SampleTimer(warmup=L.MAX_WARMUP).warmup == L.MAX_WARMUP
    with pytest.raises(ValueError, match="^threads must be"):
        L.SampleTimer(threads=0)


def test_sample_timer_restores_threads_on_error(monkeypatch):
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        L.SampleTimer(threads=2, warmup=1)(Boom(), (1, 2, 2))
    assert torch.get_num_threads() == before


# --- survivors of the first mutation run ------------------------------------------------------


def test_table_source_digests_every_module_that_builds_or_times_a_piece(monkeypatch):
    from effnb import bench, layers
    from effnb.models import net
    from effnb.nas import space

    monkeypatch.setattr(L, "source_digest", lambda *objs: objs)
    assert L._table_source() == (layers, net, space, bench, L)


def test_argument_names_and_the_order_of_checks(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    ok = lambda m, s: 1.0  # noqa: E731
    archs = [TINY.sample(np.random.default_rng(0))]
    big = L.MAX_INPUT_SIZE + 1
    # every limit is checked at entry, before the next argument
    with raises(ValueError, f"input_size must be an integer <= {L.MAX_INPUT_SIZE}, got {big}"):
        L.build_latency_table(TINY, big, rounds=0, measure=ok)
    with raises(ValueError, "rounds must be an integer <= 1000, got 1001"):
        L.build_latency_table(TINY, 12, rounds=1001, seed=-1, measure=ok)
    with raises(ValueError, "rounds must be an integer <= 1000, got 1001"):
        L.measure_networks(TINY, archs, 12, rounds=1001, seed=-1, measure=ok)
    with raises(ValueError, "tol must be a finite number in [0.0, 10.0], got -1"):
        L.repeatability("not rounds", tol=-1)
    with raises(ValueError, "tol must be a finite number in [0.0, 10.0], got 11"):
        L.repeatability("not rounds", tol=11)
    for call, message in [
        (lambda: L.build_latency_table(TINY, 12, threads=0, measure=ok), "threads must be"),
        (lambda: L.build_latency_table(TINY, 12, rounds=0, measure=ok), "rounds must be"),
        (lambda: L.build_latency_table(TINY, 12, seed=-1, measure=ok), "seed must be"),
        (lambda: L.build_latency_table(TINY, 12, use_cache=1, measure=ok), "use_cache must be"),
        (lambda: L.build_latency_table(TINY, 12, progress=1, measure=ok), "progress must be"),
        (lambda: L.measure_interleaved(_pieces(1), seed=-1, measure=ok), "seed must be"),
        (lambda: L.measure_interleaved(_pieces(1), progress=1, measure=ok), "progress must be"),
        (lambda: L.measure_networks(TINY, "ab", 12, measure=ok), "archs must be a sequence"),
        (lambda: L.measure_networks(TINY, archs, 12, threads=0, measure=ok), "threads must be"),
        (lambda: L.measure_networks(TINY, archs, 12, seed=-1, measure=ok), "seed must be"),
        (
            lambda: L.bootstrap_difference(L.spearman, [1, 2, 3], [1, 2, 3], [1, 2, 3], seed=-1),
            "seed must be",
        ),
        (
            lambda: L.bootstrap_difference(L.spearman, [1, 2, 3], [1, 2], [1, 2, 3]),
            "predicted_a must have length 3, got length 2",
        ),
        (
            lambda: L.bootstrap_difference(L.spearman, [1, 2, 0], [1, 2, 3], [1, 2, 3]),
            "measured must be a 1-D sequence of finite numbers > 0; measured[2] is 0.0",
        ),
        (lambda: L.within_share(["a"], [1.0]), "predicted must be"),
        (lambda: L.within_share([1.0], ["a"]), "reference must be"),
    ]:
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        assert str(info.value).startswith(message), (message, str(info.value))


def test_predictor_fit_names_archs_and_fits_two_networks():
    table = _hand_table(
        TINY, 12, [0.5, *(1.0 + 0.25 * i for i in range(len(TINY.all_block_specs(12)))), 3.0]
    )
    pred = L.LatencyPredictor(TINY, table, 12, overhead_ms=np.float64(0.5))
    assert type(pred.overhead_ms) is float
    with raises(TypeError, "archs must be a sequence of Architecture, got str"):
        pred.fit("ab", [1.0, 2.0])
    rng = np.random.default_rng(3)
    a = TINY.sample(rng)
    b = next(
        x for x in iter(lambda: TINY.sample(rng), None) if pred.block_sum(x) != pred.block_sum(a)
    )
    sa, sb = pred.block_sum(a), pred.block_sum(b)
    fitted = pred.fit([a, b], [2 * sa + 1, 2 * sb + 1])
    assert fitted.scale == pytest.approx(2.0) and fitted.overhead_ms == pytest.approx(1.0)


def test_measurement_halves_with_exactly_four_rounds_and_every_other_round():
    four = np.array([[1.0], [2.0], [3.0], [10.0]])
    first, second = L.measurement_halves(four)
    assert first.tolist() == [2.0] and second.tolist() == [6.0]
    six = np.array([[1.0], [5.0], [2.0], [6.0], [9.0], [7.0]])
    first, second = L.measurement_halves(six)
    assert first.tolist() == [2.0] and second.tolist() == [6.0]  # rows 0, 2, 4 and 1, 3, 5


def test_spearman_of_two_values_and_no_warning_for_constants():
    assert L.spearman([1.0, 2.0], [3.0, 5.0]) == 1.0  # denominator 0.5
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(L.spearman([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))


def test_bootstrap_difference_default_resamples():
    meas = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    a = np.array([1.1, 2.5, 2.9, 4.2, 5.6, 5.9, 7.7])
    b = np.array([2.0, 1.0, 3.0, 6.0, 4.0, 9.0, 5.0])
    assert L.bootstrap_difference(L.spearman, meas, a, b) == _bootstrap_by_hand(
        L.spearman, meas, a, b, 0.95, 2000, 0
    )


def test_sample_timer_default_settings_and_plain_input(monkeypatch):
    assert (L.SampleTimer().threads, L.SampleTimer().sample_ms, L.SampleTimer().warmup) == (
        1,
        3.0,
        3,
    )
    clock = iter([0.0, 0.0005])  # 0.25 ms per call
    monkeypatch.setattr(L.time, "perf_counter", lambda: next(clock))
    FakeBenchTimer.made = []
    monkeypatch.setattr(L.benchmark, "Timer", FakeBenchTimer)
    inputs = []

    class M(nn.Module):
        def forward(self, x):
            inputs.append(x)
            return x

    L.SampleTimer(sample_ms=500.0, warmup=0)(M(), (3, 4, 5))
    assert FakeBenchTimer.made[0].numbers == [2000]  # 500 ms / 0.25 ms
    assert all(x.is_contiguous() for x in inputs)
    assert not inputs[0].is_contiguous(memory_format=torch.channels_last)


def test_measure_defaults_are_made_when_not_given(monkeypatch):
    made = []

    def default(threads=1, sample_ms=3.0):
        made.append((threads, sample_ms))
        return lambda m, s: 2.0

    monkeypatch.setattr(L, "default_measure", default)
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *a, **k: pytest.fail("no progress bar asked"))
    assert L.measure_interleaved(_pieces(2), rounds=2).tolist() == [[2.0, 2.0]] * 2
    archs = list(TINY.baselines().values())
    L.measure_networks(TINY, archs, 12, rounds=1)
    assert made == [(1, 3.0), (1, 3.0)]


def test_build_latency_table_speed_from_blocks_and_rounding(monkeypatch):
    arch = TINY.sample(np.random.default_rng(1))
    captured = {}
    real = L.measure_interleaved

    def spy(pieces, **kw):
        captured["raw"] = real(pieces, **kw)
        captured["keys"] = list(pieces)
        return captured["raw"]

    rng = np.random.default_rng(9)
    monkeypatch.setattr(L, "measure_interleaved", spy)
    clock = iter([100.0, 102.34])
    monkeypatch.setattr(L.time, "perf_counter", lambda: next(clock))
    table = L.build_latency_table(
        TINY, 12, networks=[arch], rounds=5, measure=lambda m, s: float(rng.uniform(1, 3))
    )
    raw, keys = captured["raw"], captured["keys"]
    n = len(keys) - 1
    blocks = raw[:, :n]
    speed = np.median(blocks / np.median(blocks, axis=0), axis=1)
    assert table.meta["round_speed"] == [round(float(f), 4) for f in speed]
    assert table.meta["seconds"] == 2.3
    norm = raw / speed[:, None]
    assert table.entries == {
        k: float(v) for k, v in zip(keys[:n], np.median(norm, axis=0)[:n], strict=True)
    }
    assert table.networks == {keys[n]: float(np.median(norm[:, n]))}


def test_a_custom_measure_is_never_written(monkeypatch, tmp_path):
    import warnings

    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.build_latency_table(TINY, 12, rounds=1, measure=lambda m, s: 1.0)
    assert not list(tmp_path.rglob("*.json"))


def test_cached_table_with_networks_is_served_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    made = []
    monkeypatch.setattr(
        L, "default_measure", lambda threads, sample_ms: made.append(1) or (lambda m, s: 1.5)
    )
    rng = np.random.default_rng(2)
    archs = [TINY.sample(rng), TINY.sample(rng)]
    first = L.build_latency_table(TINY, 12, networks=archs, rounds=1)
    assert L.build_latency_table(TINY, 12, networks=archs, rounds=1) == first and len(made) == 1
    (path,) = tmp_path.rglob("nas-latency-table-*.json")
    data = json.loads(path.read_text())
    lost = L.network_key(archs[1])
    del data["value"]["networks"][lost], data["value"]["rounds"][lost]
    path.write_text(json.dumps(data))
    with pytest.warns(_cache.CacheWarning, match="networks lacks 1 of the 2 expected keys"):
        again = L.build_latency_table(TINY, 12, networks=archs, rounds=1)
    assert len(made) == 2 and again.networks == first.networks


def test_planned_hours_count_the_networks(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    arch = TINY.sample(np.random.default_rng(0))
    n = len(TINY.all_block_specs(12)) + 2
    with pytest.raises(SizeLimitError, match=f"^rounds=1000 x {n + 1} pieces x sample_ms=1000 "):
        L.build_latency_table(TINY, 12, networks=[arch], rounds=1000, sample_ms=1000.0)
    monkeypatch.setattr(L, "MAX_TABLE_HOURS", (n + 0.5) * 2 * 1.0 / 3.6e6)
    monkeypatch.setattr(L, "default_measure", lambda threads, sample_ms: lambda m, s: 1.0)
    L.build_latency_table(TINY, 12, rounds=2, sample_ms=1.0, use_cache=False)  # n pieces fit
    with pytest.raises(SizeLimitError):  # n + 1 pieces do not
        L.build_latency_table(TINY, 12, networks=[arch], rounds=2, sample_ms=1.0, use_cache=False)


def test_save_reports_why_it_could_not_write_and_passes_other_warnings_on(tmp_path, monkeypatch):
    blocker = tmp_path / "no"
    blocker.write_text("a file, not a folder")
    path = blocker / "x" / "t.json"
    table = L.LatencyTable(entries={"a": 1.0}, meta={}, rounds={"a": [1.0]})
    with raises(
        OSError,
        f"cannot save the latency table to {path}: could not write cache entry {path}: [Errno 20] "
        f"Not a directory: '{path.parent}'; the result is kept but not cached",
    ):
        table.save(path)

    def write(path, key, value):
        import warnings

        warnings.warn("first", _cache.CacheWarning, stacklevel=1)
        warnings.warn("second", _cache.CacheWarning, stacklevel=1)
        warnings.warn("other", FutureWarning, stacklevel=1)
        return False

    monkeypatch.setattr(L._cache, "write_entry", write)
    with (
        pytest.warns(FutureWarning, match="^other$"),
        raises(OSError, f"cannot save the latency table to {tmp_path / 't.json'}: first; second"),
    ):
        table.save(tmp_path / "t.json")


def test_save_leaves_other_warnings_to_the_callers_filters(tmp_path, monkeypatch):
    import warnings

    done = []

    def write(path, key, value):
        warnings.warn("other", FutureWarning, stacklevel=1)
        done.append(path)
        return True

    monkeypatch.setattr(L._cache, "write_entry", write)
    table = L.LatencyTable(entries={"a": 1.0}, meta={}, rounds={"a": [1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with pytest.raises(FutureWarning, match="^other$"):
            table.save(tmp_path / "t.json")
    assert done == []  # the caller's "error" filter stopped the writer where it warned


def test_bootstrap_default_resamples_with_a_continuous_metric():
    meas = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    a = np.array([1.1, 2.5, 2.9, 4.2, 5.6, 5.9, 7.7])
    b = np.array([2.0, 1.0, 3.0, 6.0, 4.0, 9.0, 5.0])

    def mean_error(p, m):
        return float(np.mean(np.abs(p - m)))

    assert L.bootstrap_difference(mean_error, meas, a, b) == _bootstrap_by_hand(
        mean_error, meas, a, b, 0.95, 2000, 0
    )
    with raises(ValueError, "n_boot must be an integer <= 100000, got 100001"):
        L.bootstrap_difference(mean_error, meas, a, b, n_boot=100_001, seed=-1)
