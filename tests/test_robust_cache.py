"""effnb._cache: concurrent writers and readers in real processes never see half a file;
corrupt or mismatched entries are reported with their path and recomputed, never served."""

from __future__ import annotations

import json
import multiprocessing
import pathlib
import warnings

import pytest

from effnb._cache import CacheWarning, key_digest, read_entry, write_entry

KEY = {"model": "mobilenet_v2", "torch": "2.13.0", "input_size": 224}
PAYLOAD = "x" * 20_000  # large enough that a non-atomic write would be seen half-done


def _writer(path: str, writer: int, count: int) -> None:
    for i in range(count):
        write_entry(pathlib.Path(path), KEY, {"writer": writer, "i": i, "payload": PAYLOAD})


def _reader(path: str, stop, results) -> None:
    """Read until every writer is done (and at least 50 times), so reads overlap the writes."""
    problems, seen, reads = [], 0, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        while reads < 50 or not stop.is_set():
            reads += 1
            value = read_entry(pathlib.Path(path), KEY)
            if value is not None:
                seen += 1
                if value.get("payload") != PAYLOAD:
                    problems.append(f"bad value {sorted(value)}")
    problems.extend(str(w.message) for w in caught)
    results.put((seen, problems))


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def test_concurrent_writers_and_readers_in_processes(tmp_path):
    path = tmp_path / "table.json"
    ctx = _context()
    results, stop = ctx.Queue(), ctx.Event()
    writers = [ctx.Process(target=_writer, args=(str(path), w, 150)) for w in range(3)]
    readers = [ctx.Process(target=_reader, args=(str(path), stop, results)) for _ in range(2)]
    for p in writers + readers:
        p.start()
    for p in writers:
        p.join(timeout=300)
        assert p.exitcode == 0
    stop.set()
    outcomes = [results.get(timeout=300) for _ in readers]
    for p in readers:
        p.join(timeout=300)
        assert p.exitcode == 0
    assert [problems for _, problems in outcomes] == [[], []]  # never a truncated entry
    assert all(seen > 0 for seen, _ in outcomes)
    final = read_entry(path, KEY)
    assert final is not None and final["i"] == 149  # the last complete write of some writer
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]  # no temporary files left


def _entry(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (lambda p: p.write_text(p.read_text()[:40]), "it cannot be read"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "it cannot be read"),
        (lambda p: p.write_text("[1, 2, 3]"), "it holds a list, not an entry"),
        (lambda p: p.write_text(json.dumps(_entry(p) | {"schema": 0})), "schema 0 is not 1"),
        (
            lambda p: p.write_text(
                json.dumps({k: v for k, v in _entry(p).items() if k != "value"})
            ),
            "it has no value",
        ),
        (
            lambda p: p.write_text(json.dumps(_entry(p) | {"key": KEY | {"torch": "1.13"}})),
            "it was stored under another key",
        ),
        (
            lambda p: p.write_text(json.dumps(_entry(p) | {"value": {"acc": 7.5}})),
            "acc=7.5 is not in [0, 1]",
        ),
        (
            lambda p: p.write_text(json.dumps(_entry(p) | {"value": {"acc": "high"}})),
            "its value cannot be checked (TypeError",
        ),
    ],
)
def test_corrupt_entries_are_named_and_ignored(tmp_path, corrupt, reason):
    def validate(value):
        return None if 0 <= value["acc"] <= 1 else f"acc={value['acc']} is not in [0, 1]"

    path = tmp_path / f"{key_digest(KEY)}.json"
    assert write_entry(path, KEY, {"acc": 0.75}) is True
    assert read_entry(path, KEY, validate) == {"acc": 0.75}
    corrupt(path)
    with pytest.warns(CacheWarning) as record:
        assert read_entry(path, KEY, validate) is None
    message = str(record[0].message)
    assert str(path) in message and reason in message and "recomputing" in message
    assert write_entry(path, KEY, {"acc": 0.5})  # the recomputed value replaces it
    assert read_entry(path, KEY, validate) == {"acc": 0.5}


def test_non_finite_values_are_not_cached(tmp_path):
    path = tmp_path / "e.json"
    with pytest.warns(CacheWarning, match=f"not caching {path}: the value is not finite"):
        assert write_entry(path, KEY, {"acc": float("nan")}) is False
    assert not path.exists()


def test_a_failed_write_warns_and_is_not_fatal(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    path = blocker / "e.json"  # its parent is a file: mkdir fails
    with pytest.warns(CacheWarning, match=f"could not write cache entry {path}"):
        assert write_entry(path, KEY, {"acc": 0.5}) is False


def test_unserialisable_values_are_a_programming_error(tmp_path):
    with pytest.raises(TypeError):
        write_entry(tmp_path / "e.json", KEY, {"acc": object()})
    with pytest.raises(TypeError, match="a cache key must be a mapping"):
        key_digest(["not", "a", "mapping"])
