"""The JSONL store: atomic appends, corrupt-line handling, pandas loading (appends from several
processes at once, and on a full disk: tests/integration/test_store_processes.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import uuid
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.records import store
from bench.records.record import Device, Energy, Model, Peak, Record, RecordError
from tests.conftest import OK_CONFIG


def _record(i: int, pad: int = 0, **fields) -> Record:
    return Record.new({**OK_CONFIG, "i": i}, {"host": "h"}, tokens_per_s=float(i),
                      device=Device(name="cpu", kind="cpu"), extra={"blob": "x" * pad},
                      **fields)


def test_round_trip_and_flat_dataframe(tmp_path):
    path = tmp_path / "sub" / "runs.jsonl"
    for i in range(3):
        store.append(path, _record(i))
    df = store.load(path)
    assert list(df["config.i"]) == [0, 1, 2]
    assert {"run_id", "schema_version", "environment.host", "tokens_per_s", "source_file"} <= \
        set(df.columns)
    assert df["run_id"].is_unique


def test_corrupt_line_is_skipped_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    store.append(path, _record(0))
    with open(path, "a") as f:
        f.write('{"truncated": \n')
        f.write("[1, 2]\n")
    store.append(path, _record(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would fail the test
        df = store.load(path)
    assert list(df["config.i"]) == [0, 3]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"trnbench: warning: {path}:2: skipped corrupt record (Expecting value: "
                   "line 2 column 1 (char 15))",
                   f"trnbench: warning: {path}:3: skipped corrupt record (not a JSON object)"]


def test_non_finite_numbers_become_null(tmp_path):
    path = tmp_path / "runs.jsonl"
    store.append(path, _record(0, loss_last=float("nan"), window_s=float("inf")))
    stored = json.loads(path.read_text())
    assert stored["loss_last"] is None and stored["window_s"] is None


def test_status_must_be_known(tmp_path):
    record = _record(0, status="great")
    with pytest.raises(ValueError, match="status must be one of"):
        store.append(tmp_path / "r.jsonl", record)
    assert not (tmp_path / "r.jsonl").exists()


def test_an_impossible_figure_is_stored_as_a_failed_run_with_the_reason(tmp_path, capsys):
    """A sensor fault's negative energy: the writer applies the readers' rules, so the run is
    stored as failed (its figures dropped) instead of as ok and then skipped by every
    reader."""
    path = tmp_path / "r.jsonl"
    stored = store.append(path, _record(1, energy=Energy(method="rapl", joules=-5.0)))
    assert stored.status == "failed" and stored.tokens_per_s is None
    assert stored.error == ("an impossible figure: energy.joules must be a number >= 0 or "
                            "null, got -5.0")
    [line] = store.iter_records(path, check=True)
    assert line["status"] == "failed" and line["error"] == stored.error
    assert capsys.readouterr().err == ""


def test_implausible_figures_are_stored_and_flagged(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    record = _record(1, mfu=7.5, peak=Peak(value=1e9), model=Model(flops_per_token=1e6),
                     energy=Energy.of(10, method="rapl", joules=1.6e10, interval_s=1.0))
    stored = store.append(path, record)
    assert stored.status == "ok" and stored.mfu == 7.5
    assert [f.split(" ")[0] for f in stored.flags] == ["mfu", "energy.avg_power_w"]
    assert "mfu 7.5 is above 1: the peak is below what the run reached" in stored.flags[0]
    assert "1.6e+10 W is above 2000 W per chip" in stored.flags[1]
    [back] = store.read(path)
    assert back.flags == stored.flags and capsys.readouterr().err == ""


def test_a_record_without_a_usable_identity_is_refused(tmp_path):
    with pytest.raises(RecordError, match="run_id must match"):
        store.append(tmp_path / "r.jsonl", replace(_record(0), run_id="../../evil"))
    assert not (tmp_path / "r.jsonl").exists()


def test_writable_problem(tmp_path):
    assert store.writable_problem(tmp_path / "new" / "deeper" / "r.jsonl") is None
    assert "is a directory" in store.writable_problem(tmp_path)
    (tmp_path / "file").write_text("")
    assert "not a directory" in store.writable_problem(tmp_path / "file" / "r.jsonl")
    # a folder no file can be made in: named, not the probe's temporary file
    assert store.writable_problem(Path("/proc/x/r.jsonl")) == (
        "/proc/x/r.jsonl is not writable: no file can be made in /proc (No such file or "
        "directory)")


def test_append_after_a_partial_line_starts_a_new_line(tmp_path, capsys):
    """A file ending mid-line (a full disk, a truncated copy): the next record is a line of
    its own, and the partial one is reported once by the writer and once by a reader."""
    path = tmp_path / "runs.jsonl"
    store.append(path, _record(0))
    with open(path, "a") as f:
        f.write(store.dumps(_record(1))[:40])
    store.append(path, _record(2))
    store.append(path, _record(3))
    assert [r["config"]["i"] for r in store.iter_records(path)] == [0, 2, 3]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"trnbench: warning: {path}:2: the file ends mid-line")
    assert err[1].startswith(f"trnbench: warning: {path}:2: skipped corrupt record")


@contextlib.contextmanager
def _file_size_limit(limit: int):
    """RLIMIT_FSIZE: a write past ``limit`` bytes is cut short, the next one fails (EFBIG),
    as on a full disk (SIGXFSZ ignored so that the write fails instead of the process)."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


def test_short_write_is_rolled_back(tmp_path):
    path = tmp_path / "runs.jsonl"
    store.append(path, _record(0))
    before = path.read_bytes()
    with _file_size_limit(len(before) + 100), pytest.raises(store.StoreError,
                                                            match="rolled back"):
        store.append(path, _record(1, pad=1000))
    assert path.read_bytes() == before
    store.append(path, _record(2))
    assert [r["config"]["i"] for r in store.iter_records(path)] == [0, 2]


def test_a_file_given_twice_counts_each_run_once(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for i in range(2):
        store.append(a, _record(i))
    b.write_bytes(a.read_bytes())
    store.append(b, _record(2))
    df = store.load([a, a, b])
    assert list(df["config.i"]) == [0, 1, 2]
    assert capsys.readouterr().err == (f"trnbench: warning: {b}: 2 record(s) whose run id was "
                                       "read before, counted once\n")


OPS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(0, 300)),
    st.tuples(st.just("partial"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
), max_size=12)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_appends_partial_writes_and_truncations_lose_no_complete_record(tmp_path, ops):
    """Model: a record survives unless a truncation cut into its JSON text; after any
    sequence the reader returns exactly the surviving records, in order."""
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    alive: list[tuple[str, int]] = []  # (run id, offset where its JSON text ends)
    for op, arg in ops:
        size = path.stat().st_size if path.exists() else 0
        if op == "append":
            record = _record(len(alive), pad=arg)
            store.append(path, record)
            alive.append((record.run_id, path.stat().st_size - 1))
        elif op == "partial":  # a writer that died mid-append (it began on a new line)
            text = store.dumps(_record(-1)).encode()
            with open(path, "a+b") as f:
                f.seek(max(size - 1, 0))
                newline = b"\n" if size and f.read(1) != b"\n" else b""
                f.write(newline + text[:int(arg * len(text))])
        elif path.exists():
            cut = int(arg * size)
            os.truncate(path, cut)
            alive = [(rid, end) for rid, end in alive if end <= cut]
    with contextlib.redirect_stderr(io.StringIO()):
        read = [r["run_id"] for r in store.iter_records(path)] if path.exists() else []
    assert read == [rid for rid, _ in alive]
