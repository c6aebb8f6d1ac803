"""JSONL persistence of records (bench.records.record) and pandas loading (docs/methodology.md,
"The record").

One JSON object per run, one line per object. An append is one ``write`` of one complete
line to a file opened with O_APPEND, under an exclusive ``flock``: concurrent writers
never interleave, and a reader never sees half a record from a live writer. A failed write
is rolled back, and an append after a partial line (a full disk, a truncated copy) starts a
new line. Readers skip a corrupt line with one warning line naming the file and line.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from bench.inputs.paths import (
    env_path,
    writable_problem,  # noqa: F401 - the store's writers check with it
)
from bench.records import record as rec
from bench.records.record import Record, upgrade

DEFAULT_PATH = Path("results/local.jsonl")


def default_path() -> Path:
    """``$TRNBENCH_RESULTS`` or ``results/local.jsonl`` (git-ignored) under the cwd; set but
    empty is a ConfigError."""
    return env_path("TRNBENCH_RESULTS", DEFAULT_PATH)


def dumps(record: Record) -> str:
    """One record as a single JSON line (schema version 2; no NaN)."""
    return json.dumps(record.to_json(), allow_nan=False)


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


def append(path: str | os.PathLike, record: Record) -> Record:
    """Atomically append ``record`` as one line (one write under an exclusive lock), checked
    with the readers' own rules first (``Record.checked``: an impossible figure stores the run
    as failed with the reason, an implausible one flags it); returns the record as stored.

    A file that does not end in a newline (a partial line: a full disk, a truncated copy)
    gets one first, so that the new record is a line of its own; the partial line stays
    for readers to skip, with one warning here. A write that fails partway is rolled back
    to the old size and raised as StoreError: nothing half-written stays. RecordError (a
    ValueError) when even the record's identity is unusable: nothing is written."""
    record = record.checked()
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
    return record


def iter_records(path: str | os.PathLike, check: bool = False) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file as JSON objects of schema version 2 (a version-1 line
    upgraded: ``record.upgrade``); a corrupt line is skipped with one warning line on stderr
    (``file:line: reason``); with ``check``, so is a record that ``record.check`` rejects,
    and the flags of its implausible figures are added to its ``flags``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, RecursionError) as e:
                why = ("ends mid-line" if not line.endswith("\n") else
                       "nested too deeply" if isinstance(e, RecursionError) else str(e))
                warn(f"{path}:{lineno}: skipped corrupt record ({why})")
                continue
            record = upgrade(record)
            why, flags = rec.check(record) if check else (None, [])
            if why:
                name = record.get("run_id")
                name = f"record {name}" if isinstance(name, str) else "a record"
                warn(f"{path}:{lineno}: skipped {name}: {why}")
                continue
            if flags:
                record["flags"] = [*(record.get("flags") or []),
                                   *(f for f in flags if f not in (record.get("flags") or []))]
            yield record


def read(path: str | os.PathLike) -> Iterator[Record]:
    """The usable records of one JSONL file as Records (any other line skipped with one
    warning line, as ``iter_records`` with ``check``)."""
    for data in iter_records(path, check=True):
        yield Record.from_json(data)


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
