"""SIGTERM and SIGINT: a run stores one ``interrupted`` record naming the signal and exits
128 + the signal number; a ``--nproc`` launcher forwards the signal to torchrun and leaves no
process behind. Real processes, real signals; waits on conditions (the process tree, CPU
time), never on fixed sleeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import read_jsonl

LONG_RUN = ["run", "--model", "tiny", "--backend", "cpu", "--warmup", "1", "--steps",
            "1000000", "--batch", "2", "--seq", "32"]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # a poll interval, not a wait for an outcome
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on


def _cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0  # utime + stime


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _workers(launcher: int) -> set[int]:
    """The launcher's grandchildren (torchrun's workers) that run `bench run`."""
    children = _descendants(launcher)
    grand = set().union(*(_descendants(c) for c in children)) if children else set()
    out = set()
    for pid in grand:
        try:
            if b"bench\0run" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.add(pid)
        except OSError:
            continue
    return out


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (f := _stat(p)) and f[0] != "Z"}


def _start(tmp_path: Path, cache_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_to_a_run_stores_interrupted_and_exits_143(tmp_path, cache_dir):
    results = tmp_path / "r.jsonl"
    proc = _start(tmp_path, cache_dir, *LONG_RUN, "--results", str(results))
    # the backend line comes just before the run starts; then it trains (CPU time grows)
    line = _wait(proc.stderr.readline, 120, "the backend line")
    assert "cpu" in line.lower()
    start = _cpu_ticks(proc.pid)
    _wait(lambda: _cpu_ticks(proc.pid) > start + 30, 120, "training to use CPU time")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    [record] = read_jsonl(results)
    assert record["status"] == "interrupted"
    assert record["error"] == "interrupted by SIGTERM"
    assert "trnbench: interrupted by SIGTERM" in err and "Traceback" not in err


def test_sigint_to_a_launcher_stops_torchrun_and_its_workers(tmp_path, cache_dir):
    results = tmp_path / "r.jsonl"
    proc = _start(tmp_path, cache_dir, *LONG_RUN, "--nproc", "2", "--results", str(results))
    _wait(lambda: len(_workers(proc.pid)) == 2, 120, "torchrun's two workers")
    tree = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    _wait(lambda: not _alive(tree), 10, f"no orphan of the launcher (left: {_alive(tree)})")
    [record] = read_jsonl(results)
    assert record["status"] == "interrupted"
    assert record["error"] == "interrupted by SIGINT"
    # torchrun's own traceback of the forwarded signal is not echoed (issue 26 item 12)
    assert "trnbench: interrupted by SIGINT" in err and "Traceback" not in err
