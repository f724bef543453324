"""On-disk JSON caches that cannot poison a run.

Writes are atomic (a unique temporary file in the same folder, then ``os.replace``), so a
reader never sees half a file and two writers never collide. Every entry carries a schema
number and a copy of the key it was stored under; ``read_entry`` returns ``None`` (and warns,
naming the file) for a missing, truncated, hand-edited or mismatched entry, so the caller
recomputes it instead of serving it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["cache_dir", "key_digest", "read_entry", "write_entry"]

SCHEMA = 1


def cache_dir() -> pathlib.Path:
    """``$EFFNB_CACHE`` or ``~/.cache/effnb``: where measured tables and trainings are kept."""
    return pathlib.Path(os.environ.get("EFFNB_CACHE", "~/.cache/effnb")).expanduser()


def key_digest(key: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit name for a JSON-serialisable key."""
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_entry(path: pathlib.Path, key: Mapping[str, Any], value: Mapping[str, Any]) -> None:
    """Atomically write ``{"schema", "key", "value"}`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"schema": SCHEMA, "key": key, "value": value}, sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def read_entry(
    path: pathlib.Path,
    key: Mapping[str, Any],
    validate: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> dict[str, Any] | None:
    """The value stored at ``path`` for ``key``, or None if there is none to trust.

    ``validate(value)`` returns a reason string when the value is implausible (an accuracy
    of 7.5, a NaN); such an entry, a corrupt file and one stored under another key are
    reported with a warning naming ``path`` and ignored.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            reason = (
                f"schema {data.get('schema') if isinstance(data, dict) else None!r} is not {SCHEMA}"
            )
        elif json.loads(json.dumps(key, sort_keys=True)) != data.get("key"):
            reason = "it was stored under another key"
        else:
            reason = validate(data["value"]) if validate else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = f"it cannot be read ({type(exc).__name__}: {exc})"
    if reason:
        warnings.warn(f"ignoring cache entry {path}: {reason}; recomputing", stacklevel=2)
        return None
    return data["value"]
