"""The JSONL store: atomic appends under concurrency, corrupt-line handling, pandas loading."""

from __future__ import annotations

import json
import multiprocessing as mp
import warnings

import pytest

from bench import store


def _record(i: int, pad: int = 0) -> dict:
    record = store.new_record({"model": "tiny", "i": i}, {"host": "h"})
    record.update(tokens_per_s=float(i), mfu=None, blob="x" * pad)
    return record


def _writer(path: str, worker: int, n: int) -> None:
    for i in range(n):
        store.append(path, _record(worker * 1000 + i, pad=70_000))  # > PIPE_BUF, > 64 KiB


def test_round_trip_and_flat_dataframe(tmp_path):
    path = tmp_path / "sub" / "runs.jsonl"
    for i in range(3):
        store.append(path, _record(i))
    df = store.load(path)
    assert list(df["config.i"]) == [0, 1, 2]
    assert {"run_id", "schema_version", "environment.host", "tokens_per_s", "source_file"} <= \
        set(df.columns)
    assert df["run_id"].is_unique


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


def test_corrupt_line_is_skipped_with_file_and_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    store.append(path, _record(0))
    with open(path, "a") as f:
        f.write('{"truncated": \n')
        f.write("[1, 2]\n")
    store.append(path, _record(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = store.load(path)
    assert list(df["config.i"]) == [0, 3]
    messages = [str(w.message) for w in caught]
    assert any(f"{path}:2: skipped corrupt record" in m for m in messages)
    assert any(f"{path}:3: skipped corrupt record" in m for m in messages)


def test_non_finite_numbers_become_null(tmp_path):
    path = tmp_path / "runs.jsonl"
    record = _record(0)
    record.update(loss_last=float("nan"), window_s=float("inf"))
    store.append(path, record)
    stored = json.loads(path.read_text())
    assert stored["loss_last"] is None and stored["window_s"] is None


def test_status_must_be_known(tmp_path):
    record = _record(0)
    record["status"] = "great"
    with pytest.raises(ValueError, match="status must be one of"):
        store.append(tmp_path / "r.jsonl", record)
    assert not (tmp_path / "r.jsonl").exists()


def test_writable_problem(tmp_path):
    assert store.writable_problem(tmp_path / "new" / "deeper" / "r.jsonl") is None
    assert "is a directory" in store.writable_problem(tmp_path)
    (tmp_path / "file").write_text("")
    assert "not a directory" in store.writable_problem(tmp_path / "file" / "r.jsonl")
