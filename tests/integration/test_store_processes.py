"""The JSONL store under real processes: writers in four processes at once never interleave
their records, and a full disk (a mounted 64 KiB tmpfs) keeps every stored record (the rest of
the store: tests/unit/test_store.py)."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess

import pytest

from bench.records import store
from bench.records.record import Record


def _record(i: int, pad: int = 0, **fields) -> Record:
    return Record.new({"model": "tiny", "i": i}, {"host": "h"}, tokens_per_s=float(i),
                      extra={"blob": "x" * pad}, **fields)


def _writer(path: str, worker: int, n: int) -> None:
    for i in range(n):
        store.append(path, _record(worker * 1000 + i, pad=70_000))  # > PIPE_BUF, > 64 KiB


def test_concurrent_writers_never_interleave(tmp_path):
    path = tmp_path / "runs.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 100
    seen = sorted(json.loads(line)["config"]["i"] for line in lines)
    assert seen == sorted(w * 1000 + i for w in range(4) for i in range(25))


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs (needs the right to mount: root in its own mount namespace)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full_keeps_every_stored_record(tiny_fs):
    path = tiny_fs / "runs.jsonl"
    stored = 0
    with pytest.raises(store.StoreError, match="No space left on device"):
        while True:
            store.append(path, _record(stored, pad=3000))
            stored += 1
    assert stored > 5
    assert path.read_bytes().endswith(b"\n")
    assert [r["config"]["i"] for r in store.iter_records(path)] == list(range(stored))
