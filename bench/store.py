"""The result record, JSONL persistence and pandas loading (docs/methodology.md, "The record").

One JSON object per run, one line per object. An append is one ``write`` of one complete
line to a file opened with O_APPEND, under an exclusive ``flock``: concurrent writers
never interleave, and a reader never sees half a record from a live writer. Readers skip
a corrupt line with a warning that names the file and line number.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1
DEFAULT_PATH = Path("results/local.jsonl")
STATUSES = ("ok", "failed", "interrupted")


def default_path() -> Path:
    """``$TRNBENCH_RESULTS`` or ``results/local.jsonl`` (git-ignored) under the cwd."""
    return Path(os.environ.get("TRNBENCH_RESULTS", DEFAULT_PATH))


def new_record(config: dict[str, Any], environment: dict[str, Any],
               tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A record with identity and context filled in; the runner adds status and metrics.
    ``tags`` are the user's labels (``--tag``; sweeps and scaling series use them too)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex[:12],
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "ok",
        "error": None,
        "config": config,
        "environment": environment,
        "tags": dict(tags or {}),
    }


def writable_problem(path: Path) -> str | None:
    """Why records could not be appended to ``path``, or None if they can.

    Probes for real (root passes every ``os.access`` check): opens an existing file for
    appending, or creates and removes a temporary file in the nearest existing ancestor.
    Leaves nothing behind.
    """
    try:
        if path.exists():
            if path.is_dir():
                return f"{path} is a directory"
            with open(path, "ab"):
                return None
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            return f"{parent} is not a directory"
        with tempfile.TemporaryFile(dir=parent):
            return None
    except OSError as e:
        return f"{e.filename or path} is not writable ({e.strerror})"


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON-serialisable in a record: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(record: dict[str, Any]) -> str:
    """One record as a single JSON line (no NaN; keys in insertion order)."""
    return json.dumps(_finite(record), default=_json_default, allow_nan=False)


def append(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Atomically append ``record`` as one line (one write under an exclusive lock)."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record.get('status')!r}")
    line = (dumps(record) + "\n").encode()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {p}: {written} of {len(line)} bytes")
    finally:
        os.close(fd)  # closing releases the lock


def iter_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file; corrupt lines are skipped with a warning (file:line)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                warnings.warn(f"{path}:{lineno}: skipped corrupt record ({e})", stacklevel=2)
                continue
            yield record


def load(paths: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> pd.DataFrame:
    """Records of one or more JSONL files as a flat DataFrame (nested keys joined by '.')."""
    if paths is None:
        paths = [default_path()]
    elif isinstance(paths, str | os.PathLike):
        paths = [paths]
    rows = []
    for p in paths:
        for record in iter_records(p):
            record["source_file"] = str(p)
            rows.append(record)
    return pd.json_normalize(rows, sep=".")
