"""The result record, JSONL persistence and pandas loading (docs/methodology.md, "The record").

One JSON object per run, one line per object. An append is one ``write`` of one complete
line to a file opened with O_APPEND, under an exclusive ``flock``: concurrent writers
never interleave, and a reader never sees half a record from a live writer. A failed write
is rolled back, and an append after a partial line (a full disk, a truncated copy) starts a
new line. Readers skip a corrupt line with one warning line naming the file and line.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from bench.paths import writable_problem  # noqa: F401 - the store's writers check with it

SCHEMA_VERSION = 1
DEFAULT_PATH = Path("results/local.jsonl")
STATUSES = ("ok", "failed", "interrupted")


def default_path() -> Path:
    """``$TRNBENCH_RESULTS`` or ``results/local.jsonl`` (git-ignored) under the cwd."""
    return Path(os.environ.get("TRNBENCH_RESULTS", DEFAULT_PATH))


def new_run_id() -> str:
    """A fresh run id: 12 hex digits of a random UUID."""
    return uuid.uuid4().hex[:12]


def new_record(config: dict[str, Any], environment: dict[str, Any],
               tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A record with identity and context filled in; the runner adds status and metrics.
    ``tags`` are the user's labels (``--tag``; sweeps and scaling series use them too)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "ok",
        "error": None,
        "config": config,
        "environment": environment,
        "tags": dict(tags or {}),
    }


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


class StoreError(OSError):
    """A record could not be appended (full disk, I/O error); the file is as it was."""


def warn(message: str) -> None:
    """One warning line on stderr (never a Python warning with its source line)."""
    print(f"trnbench: warning: {message}", file=sys.stderr, flush=True)


def _lines(fd: int, size: int) -> int:
    """Lines of the first ``size`` bytes of ``fd`` (the line number of a partial last one)."""
    count, offset = 0, 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        count, offset = count + chunk.count(b"\n"), offset + len(chunk)
    return count + 1


def append(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Atomically append ``record`` as one line (one write under an exclusive lock).

    A file that does not end in a newline (a partial line: a full disk, a truncated copy)
    gets one first, so that the new record is a line of its own; the partial line stays
    for readers to skip, with one warning here. A write that fails partway is rolled back
    to the old size and raised as StoreError: nothing half-written stays."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record.get('status')!r}")
    line = (dumps(record) + "\n").encode()
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreError(f"cannot append to {p}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            warn(f"{p}:{_lines(fd, size)}: the file ends mid-line (a partial record); that "
                 "line is skipped and the new record starts a line of its own")
            line = b"\n" + line
        written = 0
        try:
            while written < len(line):
                written += os.write(fd, line[written:])
        except BaseException as e:  # a full disk, or a signal between two writes
            os.ftruncate(fd, size)
            if not isinstance(e, OSError):
                raise
            raise StoreError(f"cannot append to {p}: {e.strerror} (wrote {written} of "
                             f"{len(line)} bytes, rolled back; the file is as it was)") from None
    finally:
        os.close(fd)  # closing releases the lock


OBJECTS = ("config", "environment", "tags", "backend", "device", "model", "peak", "energy",
           "step_time", "memory", "compilation", "warmup", "moe")
NUMBERS = ("tokens_per_s_per_chip", "mfu", "window_s", "world_size", "loss_first",
           "loss_last")  # numbers or null


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def problem(record: dict[str, Any]) -> str | None:
    """Why a JSON object is not a record that reports can compute with (a hand-edited line,
    an older schema), or None when it is one."""
    if not isinstance(record.get("run_id"), str):
        return f"run_id must be a string, got {record.get('run_id')!r}"
    if record.get("status") not in STATUSES:
        return f"status must be one of {', '.join(STATUSES)}, got {record.get('status')!r}"
    bad = next((k for k in OBJECTS if record.get(k) is not None
                and not isinstance(record[k], dict)), None)
    if bad:
        return f"{bad} must be an object, got {record[bad]!r}"
    if not isinstance((record.get("config") or {}).get("model"), str):
        return "config.model is missing"
    if record["status"] != "ok":
        return None
    device = record.get("device") or {}
    if not all(isinstance(device.get(k), str) for k in ("name", "kind")):
        return "an ok record needs device.name and device.kind"
    if not _is_number(record.get("tokens_per_s")):
        return f"tokens_per_s must be a number, got {record.get('tokens_per_s')!r}"
    bad = next((k for k in NUMBERS if record.get(k) is not None
                and not _is_number(record[k])), None)
    if bad:
        return f"{bad} must be a number or null, got {record[bad]!r}"
    j = (record.get("energy") or {}).get("j_per_token")
    if j is not None and not _is_number(j):
        return f"energy.j_per_token must be a number or null, got {j!r}"
    return None


def iter_records(path: str | os.PathLike, check: bool = False) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file; a corrupt line is skipped with one warning line on stderr
    (``file:line: reason``); with ``check``, so is a record that ``problem`` rejects."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                why = "ends mid-line" if not line.endswith("\n") else str(e)
                warn(f"{path}:{lineno}: skipped corrupt record ({why})")
                continue
            why = problem(record) if check else None
            if why:
                name = record.get("run_id")
                name = f"record {name}" if isinstance(name, str) else "a record"
                warn(f"{path}:{lineno}: skipped {name}: {why}")
                continue
            yield record


def load(paths: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
         check: bool = False) -> pd.DataFrame:
    """Records of one or more JSONL files as a flat DataFrame (nested keys joined by '.');
    ``check``: see ``iter_records``.

    A file given twice is read once, and a run id read before (a copy of a file, a record
    ingested twice) counts once, with one warning per file that repeats some."""
    if paths is None:
        paths = [default_path()]
    elif isinstance(paths, str | os.PathLike):
        paths = [paths]
    rows, seen, files = [], set(), set()
    for p in paths:
        if Path(p).resolve() in files:
            continue
        files.add(Path(p).resolve())
        repeated = 0
        for record in iter_records(p, check):
            run_id = record.get("run_id")
            if run_id is not None and not isinstance(run_id, list | dict):
                if run_id in seen:
                    repeated += 1
                    continue
                seen.add(run_id)
            record["source_file"] = str(p)
            rows.append(record)
        if repeated:
            warn(f"{p}: {repeated} record(s) whose run id was read before, counted once")
    import pandas as pd  # loaded on use: `trnbench --help` and `run` do not need it

    return pd.json_normalize(rows, sep=".")
