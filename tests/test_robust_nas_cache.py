"""The latency-table cache cannot poison a run: every kind of bad file (truncated, not JSON,
another schema, mismatched meta, non-finite entries, missing keys) is reported with its path and
measured again by ``build_latency_table``, and refused by ``LatencyTable.load`` with an error
naming the path; concurrent writers and readers in real processes never see half a file."""

from __future__ import annotations

import json
import math
import multiprocessing
import pathlib
import warnings

import pytest

import effnb.nas.latency as latency
from effnb._cache import CacheWarning
from effnb.nas import LatencyTable, SearchSpace, build_latency_table

TINY = SearchSpace(kernels=(3, 5), expansions=(1, 6), se_ratios=(0.0,), layers=(1, 2))
KW = {"rounds": 3, "sample_ms": 0.5}


def _params_ms(module, shape):
    """A deterministic stand-in for SampleTimer: 1 ms per 10,000 weights, plus 0.01 ms."""
    return sum(p.numel() for p in module.parameters()) / 1e4 + 0.01


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder and a default measure that counts its samples."""
    monkeypatch.setenv("EFFNB_CACHE", str(tmp_path))
    calls = []

    def default_measure(threads=1, sample_ms=3.0, warmup=3):
        def measure(module, shape):
            calls.append(shape)
            return _params_ms(module, shape)

        return measure

    monkeypatch.setattr(latency, "default_measure", default_measure)
    return tmp_path, calls


def _build(**kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = build_latency_table(TINY, 8, **{**KW, **kw})
    return table, [w for w in caught if issubclass(w.category, CacheWarning)]


def _only_file(folder: pathlib.Path) -> pathlib.Path:
    (path,) = folder.glob("nas-latency-table-*.json")
    return path


def test_a_table_is_measured_once_then_served(cache):
    folder, calls = cache
    first, caught = _build()
    n = len(calls)
    assert n == 3 * len(first) and caught == []
    again, caught = _build()
    assert again == first and len(calls) == n and caught == []  # served, nothing measured
    data = json.loads(_only_file(folder).read_text())
    assert data["schema"] == 1 and data["key"] == first.key()
    assert data["key"]["torch"] == first.meta["torch"] and "seconds" not in data["key"]


def _edit(path: pathlib.Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _first_block(data):
    return next(k for k in data["value"]["entries"] if k.startswith("ir_"))


CORRUPTIONS = {
    # category: (how the file is damaged, what the warning and the error say)
    "truncated": (lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]), "cannot be read"),
    "empty": (lambda p: p.write_text(""), "cannot be read"),
    "not JSON": (lambda p: p.write_text("latency table, see notebook 06"), "cannot be read"),
    "not UTF-8": (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "cannot be read"),
    "a list": (lambda p: p.write_text("[1, 2, 3]"), "list"),
    "older schema": (lambda p: _edit(p, lambda d: d.update(schema=0)), "schema 0"),
    "pre-cache format": (
        lambda p: p.write_text(json.dumps(json.loads(p.read_text())["value"])),
        "schema None",
    ),
    "other torch in key and meta": (
        lambda p: _edit(
            p, lambda d: (d["key"].update(torch="1.0.0"), d["value"]["meta"].update(torch="1.0.0"))
        ),
        "another key",
    ),
    "other cpu in meta only": (
        lambda p: _edit(p, lambda d: d["value"]["meta"].update(cpu="Pentium II")),
        "cpu='Pentium II'",
    ),
    "other threads in meta only": (
        lambda p: _edit(p, lambda d: d["value"]["meta"].update(threads=8)),
        "threads=8",
    ),
    "NaN entry": (
        lambda p: _edit(p, lambda d: d["value"]["entries"].update({_first_block(d): math.nan})),
        "nan is not a finite number",
    ),
    "infinite entry": (
        lambda p: _edit(p, lambda d: d["value"]["entries"].update({_first_block(d): math.inf})),
        "inf is not a finite number",
    ),
    "negative entry": (
        lambda p: _edit(p, lambda d: d["value"]["entries"].update({_first_block(d): -0.2})),
        "-0.2 is not a finite number",
    ),
    "text entry": (
        lambda p: _edit(p, lambda d: d["value"]["entries"].update({_first_block(d): "fast"})),
        "'fast' is not a finite number",
    ),
    "NaN round": (
        lambda p: _edit(p, lambda d: d["value"]["rounds"][_first_block(d)].__setitem__(1, math.nan)),
        "is not a list of finite milliseconds",
    ),
    "missing block": (
        lambda p: _edit(p, lambda d: d["value"]["entries"].pop(_first_block(d))),
        "entries lacks 1 of the",
    ),
    "missing field": (lambda p: _edit(p, lambda d: d["value"].pop("rounds")), "has no rounds"),
    "missing value": (lambda p: _edit(p, lambda d: d.pop("value")), "no value"),
    "short rounds": (
        lambda p: _edit(p, lambda d: d["value"]["rounds"][_first_block(d)].pop()),
        "has 2 rounds, its meta says 3",
    ),
}  # fmt: skip


@pytest.mark.parametrize("category", list(CORRUPTIONS))
def test_a_bad_cached_table_is_reported_and_measured_again(cache, category):
    folder, calls = cache
    good, _ = _build()
    path = _only_file(folder)
    damage, reason = CORRUPTIONS[category]
    damage(path)
    n = len(calls)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        LatencyTable.load(path, expect=good.key())  # what this machine and run expect
    assert str(path) in str(info.value)
    again, caught = _build()
    assert len(calls) == n + 3 * len(good)  # measured afresh, not served
    assert again.entries == good.entries and again.rounds == good.rounds
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "recomputing" in message
    assert reason in message, message
    # the file was written again and is served without a word
    third, caught = _build()
    assert third == again and caught == [] and len(calls) == n + 3 * len(good)
    assert LatencyTable.load(path) == again


def test_a_table_with_an_unexpected_block_is_not_served(cache):
    folder, calls = cache
    _build()
    path = _only_file(folder)

    def add(d):
        d["value"]["entries"]["ir_999"] = 1.0
        d["value"]["rounds"]["ir_999"] = [1.0, 1.0, 1.0]

    _edit(path, add)
    LatencyTable.load(path)  # a consistent file on its own ...
    _, caught = _build()  # ... but not the table this space needs
    assert "unexpected keys, e.g. 'ir_999'" in str(caught[0].message)
    assert str(path) in str(caught[0].message)


def test_a_table_without_a_network_it_should_have_is_not_served(cache):
    folder, calls = cache
    arch = TINY.baselines()["mobilenet_v2_like"]
    _build(networks=[arch])
    path = _only_file(folder)
    _edit(path, lambda d: d["value"]["networks"].clear())
    _, caught = _build(networks=[arch])
    assert "networks lacks 1" in str(caught[0].message) or "rounds do not cover" in str(
        caught[0].message
    )


def test_load_checks_the_meta_the_caller_expects(cache, tmp_path):
    table, _ = _build()
    path = tmp_path / "saved" / "table.json"
    table.save(path)
    assert LatencyTable.load(path, expect={"input_size": 8, "threads": 1}) == table
    for field, value in [("torch", "0.0.1"), ("cpu", "another CPU"), ("threads", 4),
                         ("input_size", 32), ("space", "SearchSpace()")]:  # fmt: skip
        with pytest.raises(ValueError, match=field) as info:
            LatencyTable.load(path, expect={field: value})
        assert str(path) in str(info.value) and repr(value) in str(info.value)
    with pytest.raises(FileNotFoundError, match="no latency table"):
        LatencyTable.load(tmp_path / "missing.json")


def test_save_errors_name_the_path(tmp_path):
    ok = LatencyTable(entries={"stem@8": 0.5}, meta={"torch": "x"}, rounds={"stem@8": [0.5]})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the failure is an exception, not a warning
        with pytest.raises(OSError, match=str(blocker / "t.json")):
            ok.save(blocker / "t.json")  # its folder is a file
    bad_meta = LatencyTable(
        entries={"stem@8": 0.5}, meta={"when": object()}, rounds={"stem@8": [0.5]}
    )
    with pytest.raises(TypeError, match=str(tmp_path / "m.json")):
        bad_meta.save(tmp_path / "m.json")
    negative = LatencyTable(entries={"stem@8": -0.5}, rounds={"stem@8": [0.5]})
    with pytest.raises(ValueError, match="stem@8"):
        negative.save(tmp_path / "n.json")
    ok.save(tmp_path / "ok.json")
    assert LatencyTable.load(tmp_path / "ok.json") == ok
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_cache_write_is_not_fatal(cache, monkeypatch):
    folder, _ = cache
    monkeypatch.setenv("EFFNB_CACHE", str(folder / "a-file"))
    (folder / "a-file").write_text("")
    table, caught = _build()
    assert len(table) > 0
    assert len(caught) == 1 and "could not write" in str(caught[0].message)


# --- concurrent writers and readers, in real processes ---------------------------------------


def _table(writer: int) -> LatencyTable:
    """A large table (so that a non-atomic write would be seen half-done) tagged by writer."""
    keys = [f"ir_{i}_@8" for i in range(400)]
    entries = {k: 0.001 * (i + 1) + writer for i, k in enumerate(keys)}
    return LatencyTable(
        entries=entries,
        meta={"torch": "test", "writer": writer},
        rounds={k: [v, v] for k, v in entries.items()},
    )


def _writer(path: str, writer: int, count: int) -> None:
    table = _table(writer)
    for _ in range(count):
        table.save(path)


def _reader(path: str, stop, results) -> None:
    """Load until every writer is done (and at least 50 times); report what went wrong."""
    problems, loads = [], 0
    tables = {w: _table(w) for w in range(3)}
    while loads < 50 or not stop.is_set():
        loads += 1
        try:
            table = LatencyTable.load(path)
        except FileNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001 - reported to the test
            problems.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        if table != tables.get(table.meta.get("writer")):
            problems.append(f"a table no writer wrote: {sorted(table.meta.items())}")
    results.put((loads, problems))


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def test_concurrent_savers_and_loaders_never_see_half_a_table(tmp_path):
    path = tmp_path / "nas-latency-table.json"
    ctx = _context()
    results, stop = ctx.Queue(), ctx.Event()
    writers = [ctx.Process(target=_writer, args=(str(path), w, 60)) for w in range(3)]
    readers = [ctx.Process(target=_reader, args=(str(path), stop, results)) for _ in range(2)]
    try:
        for p in writers + readers:
            p.start()
        for p in writers:
            p.join(timeout=240)
            assert p.exitcode == 0
        stop.set()
        outcomes = [results.get(timeout=240) for _ in readers]
        for p in readers:
            p.join(timeout=240)
            assert p.exitcode == 0
    finally:
        for p in writers + readers:
            if p.is_alive():
                p.kill()
    for loads, problems in outcomes:
        assert loads >= 50
        assert problems == []
    assert LatencyTable.load(path).meta["writer"] in (0, 1, 2)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
