"""On-disk JSON caches that cannot poison a run.

Writes are atomic (a unique temporary file in the same folder, flushed to disk, then
``os.replace``), so a reader never sees half a file and two writers never collide: the last
complete write wins. Every entry carries a schema number and a copy of the key it was stored
under; ``read_entry`` returns ``None`` (and warns with ``CacheWarning``, naming the file) for
a truncated, hand-edited, mismatched or implausible entry, so the caller recomputes it and
writes it again instead of serving it. Nothing about a cache entry is ever fatal: a failed
write warns and the caller keeps its result.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pathlib
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "SCHEMA",
    "CacheWarning",
    "cache_dir",
    "key_digest",
    "read_entry",
    "source_digest",
    "state_digest",
    "write_entry",
]

SCHEMA = 1


class CacheWarning(UserWarning):
    """A cache entry was ignored (and will be recomputed) or could not be written."""


def cache_dir() -> pathlib.Path:
    """``$EFFNB_CACHE`` or ``~/.cache/effnb``: where measured tables and trainings are kept."""
    return pathlib.Path(os.environ.get("EFFNB_CACHE", "~/.cache/effnb")).expanduser()


def _canonical(key: Any) -> str:
    """The key as one JSON string (sorted keys): what names and identifies an entry."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def key_digest(key: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit name for a JSON-serialisable key."""
    if not isinstance(key, Mapping):
        raise TypeError(f"a cache key must be a mapping, got {type(key).__name__}")
    return hashlib.sha256(_canonical(key).encode()).hexdigest()[:16]


def source_digest(*objects: Any) -> str:
    """sha256 (16 hex digits) of the source code of modules, classes or functions.

    Part of the cache keys of trainings, the latency table and the NAS evaluations: editing the
    code that produced a result changes the key, so a stale result is not served.
    """
    h = hashlib.sha256()
    for obj in objects:
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:16]


def state_digest(state: Mapping[str, Any]) -> str:
    """sha256 (16 hex digits) of a state dict's names and tensor bytes (a model's initial weights)."""
    h = hashlib.sha256()
    for name, t in state.items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def write_entry(path: pathlib.Path, key: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    """Atomically write ``{"schema", "key", "value"}`` to ``path``; True if it was written.

    A value holding NaN or infinity is not written (it would be refused on reading) and a
    write that fails (read-only folder, full disk) is not fatal: both warn and return False.
    A key or value that is not JSON (a tensor, an object) is a programming error: TypeError.
    """
    path = pathlib.Path(path)
    try:
        payload = json.dumps(
            {"schema": SCHEMA, "key": key, "value": value}, sort_keys=True, allow_nan=False
        )
    except ValueError as exc:  # NaN / infinity
        warnings.warn(
            f"not caching {path}: the value is not finite ({exc})", CacheWarning, stacklevel=2
        )
        return False
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is readable like any file
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            pathlib.Path(tmp).unlink(missing_ok=True)
        warnings.warn(
            f"could not write cache entry {path}: {exc}; the result is kept but not cached",
            CacheWarning,
            stacklevel=2,
        )
        return False
    except BaseException:
        if tmp is not None:
            pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _reason(
    data: Any, key: Mapping[str, Any], validate: Callable[[Mapping[str, Any]], str | None] | None
) -> str | None:
    if not isinstance(data, dict):
        return f"it holds a {type(data).__name__}, not an entry"
    if data.get("schema") != SCHEMA:
        return f"schema {data.get('schema')!r} is not {SCHEMA}"
    if "value" not in data or not isinstance(data["value"], dict):
        return "it has no value"
    try:
        same_key = _canonical(key) == _canonical(data.get("key"))
    except (TypeError, ValueError):
        same_key = False
    if not same_key:
        return "it was stored under another key"
    if validate is None:
        return None
    try:
        return validate(data["value"])
    except Exception as exc:  # noqa: BLE001 - a malformed value must not crash its reader
        return f"its value cannot be checked ({type(exc).__name__}: {exc})"


def read_entry(
    path: pathlib.Path,
    key: Mapping[str, Any],
    validate: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> dict[str, Any] | None:
    """The value stored at ``path`` for ``key``, or None if there is none to trust.

    ``validate(value)`` returns a reason string when the value is implausible (an accuracy
    of 7.5, a NaN); such an entry, a corrupt file and one stored under another key (another
    torch version, say) are reported with a ``CacheWarning`` naming ``path`` and ignored. A
    ``validate`` that raises on a malformed value counts as a reason too.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    reason: str | None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = f"it cannot be read ({type(exc).__name__}: {exc})"
    else:
        reason = _reason(data, key, validate)
    if reason:
        warnings.warn(
            f"ignoring cache entry {path}: {reason}; recomputing", CacheWarning, stacklevel=2
        )
        return None
    return data["value"]
