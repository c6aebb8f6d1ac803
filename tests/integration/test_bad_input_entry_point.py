"""Bad input on the real command: a few cases of tests/unit/test_bad_input.py (which runs every
verb's bad input in-process) from a fresh interpreter, ``python -m bench``: exit 2, one line
on stderr naming the field, and the results file byte for byte as it was."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.records import store
from bench.records.record import Device, Record
from tests.conftest import OK_CONFIG, ROOT

# the files of tests/unit/test_bad_input.py that these cases read
FILES = {
    "s-timeout-inf.toml": b"[sweep]\nmodel = \"tiny\"\ntimeout_s = inf\n",
    "p-nan.toml": b"[prices.\"trn2.48xlarge\"]\nusd_per_hour = nan\ndate = \"2026-01-01\"\n",
}
CMP = ["compare", "--baseline", "device=cpu", "--target", "device=cpu"]


@pytest.fixture
def workdir(tmp_path, monkeypatch, cache_dir):
    """A working directory with the cases' files and a results file holding one record (the
    default results file, $TRNBENCH_RESULTS)."""
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    os.mkfifo(tmp_path / "fifo")
    results = tmp_path / "results.jsonl"
    store.append(results, Record.new(OK_CONFIG, {"host": "h"}, tokens_per_s=1.0,
                                     device=Device(kind="cpu", name="cpu"),
                                     tokens_per_s_per_chip=1.0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRNBENCH_RESULTS", str(results))
    return results


@pytest.mark.parametrize(("argv", "field"), [
    (["run", "--lr", "inf"], "--lr"),
    (["sweep", "s-timeout-inf.toml"], "timeout_s"),
    (["report", "fifo"], "--results"),
    ([*CMP, "--prices", "p-nan.toml"], "usd_per_hour"),
])
def test_entry_point(workdir, argv, field):
    """The real command: the same one line and exit 2 from a fresh interpreter."""
    before = workdir.read_bytes()
    done = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and field in done.stderr, done.stderr
    assert workdir.read_bytes() == before
