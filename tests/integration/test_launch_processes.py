"""The one launcher (bench.launch.launcher) of every child run. ``trnbench run --nproc``, a sweep's
runs and a scaling series' points go through it: a child that dies without storing a record
(SIGKILL, as the OOM killer sends) leaves the same stand-in record from each, and a signal to
the verb reaches the child once. The verbs run in-process (``invoke``); their children are
real processes (``bench run``, torchrun and its workers). The launcher's parts that start no
process: tests/unit/test_launch.py."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.inputs import config
from bench.launch import launcher
from tests.conftest import invoke, read_jsonl

CONFIG = {"model": "tiny", "backend": "cpu", "batch": 2, "seq": 16, "steps": 100000,
          "warmup": 1}
FLAGS = tuple(arg for k, v in CONFIG.items() for arg in (f"--{k}", str(v)))
WATCH_S = 120.0  # for the child to appear


def _child(results: Path, rank: int | None) -> tuple[int, str] | None:
    """(pid, run id) of the launcher's child writing to ``results``: the worker of ``rank``
    under torchrun, else the `bench run` process itself."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(results).encode() not in argv or b"torch.distributed.run" in argv:
            continue
        ranks = [item for item in env if item.startswith(b"RANK=")]
        if ranks != ([f"RANK={rank}".encode()] if rank is not None else []):
            continue
        for item in env:
            if item.startswith(f"{launcher.RUN_ID_ENV}=".encode()):
                return int(proc.name), item.split(b"=", 1)[1].decode()
    return None


@contextlib.contextmanager
def _when_started(results: Path, rank: int | None, act: Callable[[int], None]
                  ) -> Iterator[list[str]]:
    """Watch for the child (``_child``) in a thread and ``act(pid)`` once it exists; yields
    the run ids acted on (empty when it never appeared)."""
    found: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + WATCH_S
        while not stop.wait(0.05) and time.monotonic() < deadline:  # polls a condition
            child = _child(results, rank)
            if child:
                act(child[0])
                found.append(child[1])
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join()


def _sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def _verbs(tmp_path: Path) -> dict[str, tuple[tuple[str, ...], int | None]]:
    """Each verb that launches: its arguments, less ``--results``, and the rank of the child
    to act on (None: the single process)."""
    grid = tmp_path / "grid.toml"
    grid.write_text("[sweep]\nrepeats = 1\n" + "".join(
        f"{k} = {v!r}\n".replace("'", '"') for k, v in CONFIG.items()))
    return {
        "run": (("run", *FLAGS, "--nproc", "2", "--tag", "k=v"), 1),
        "sweep": (("sweep", str(grid)), None),
        "scaling": (("scaling", *FLAGS, "--nproc", "1", "--series", "s"), 0),
    }


def _invoke(cache_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return invoke(*args, cwd=cwd, env={"TRNBENCH_CACHE_DIR": str(cache_dir)})


def test_a_child_that_dies_leaves_the_same_stand_in_from_every_verb(cache_dir, tmp_path):
    records = {}
    for name, (args, rank) in _verbs(tmp_path).items():
        results = tmp_path / f"{name}.jsonl"
        with _when_started(results, rank, _sigkill) as killed:
            proc = _invoke(cache_dir, tmp_path, *args, "--results", str(results))
        assert proc.returncode == 1, proc.stderr[-3000:]
        [record] = read_jsonl(results)
        assert killed == [record["run_id"]]  # stored under the run id the child was given
        records[name] = record
    run, sweep, scaling = records.values()
    assert {frozenset(r) for r in records.values()} == {frozenset(run)}  # one shape
    cfg = config.resolve("cpu", CONFIG).as_dict()
    for r in records.values():
        assert r["status"] == "failed" and r["config"] == cfg
        assert r["backend"]["name"] == "cpu" and r["environment"]["host"]
    assert (run["world_size"], sweep["world_size"], scaling["world_size"]) == (2, 1, 1)
    assert run["tags"] == {"k": "v"} and scaling["tags"] == {"scaling": "s"}
    assert sweep["tags"]["sweep"] == "grid" and sweep["tags"]["point"] == "0"
    # the best error each had: torchrun's failing rank, or the signal
    assert run["error"] == "rank 1 failed: killed by SIGKILL (torchrun exit code 1)"
    assert scaling["error"] == "rank 0 failed: killed by SIGKILL (torchrun exit code 1)"
    assert sweep["error"].startswith("run subprocess killed by SIGKILL (the kernel's OOM")


def test_sigint_to_a_sweep_reaches_its_run_once_and_stops_the_sweep(cache_dir, tmp_path):
    (args, _), results = _verbs(tmp_path)["sweep"], tmp_path / "sweep.jsonl"
    with _when_started(results, None, lambda pid: os.kill(os.getpid(), signal.SIGINT)) as hit:
        proc = _invoke(cache_dir, tmp_path, *args, "--results", str(results))
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "trnbench: interrupted by SIGINT" in proc.stderr
    [record] = read_jsonl(results)
    assert record["run_id"] == hit[0] and record["status"] == "interrupted"
    assert record["error"] == "interrupted by SIGINT"
    assert _child(results, None) is None  # nothing left running


def _failure(rank: int, code: int) -> str:
    return f"[{rank}]:\n  rank      : {rank} (local_rank: {rank})\n  exitcode  : {code} (pid: 9)\n"


def test_death_names_the_signal_or_the_rank():
    proc = subprocess.run([sys.executable, "-c", "import os, signal; "
                           "os.kill(os.getpid(), signal.SIGKILL)"], capture_output=True)
    assert proc.returncode == -9
    assert "killed by SIGKILL (the kernel's OOM killer" in launcher._death(proc.returncode, "")
    assert launcher._death(3, "a\nlast words\n").endswith("exited with code 3 without storing a "
                                                        "record; stderr: a | last words")
    assert launcher._death(-9, "", torchrun=True).startswith("torchrun killed by SIGKILL")
    assert launcher._death(1, "Root Cause\n" + _failure(1, 1), torchrun=True) == (
        "rank 1 failed: exit code 1; see its output above (torchrun exit code 1)")


# a stand-in for torchrun whose shutdown hangs: it ignores SIGINT and has started a worker in
# a session of its own (as torchrun starts each of its workers), which sleeps
_HANGING_LAUNCHER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          start_new_session=True)
print(worker.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    """The process has ended (no /proc entry, or a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_second_signal_kills_the_child_and_every_process_it_started_at_once():
    with launcher._Forward() as forward, subprocess.Popen(
            [sys.executable, "-c", _HANGING_LAUNCHER], stdout=subprocess.PIPE, text=True,
            start_new_session=True) as proc:
        forward.attach(proc)
        worker = int(proc.stdout.readline())
        os.kill(os.getpid(), signal.SIGINT)  # forwarded, and ignored by the child
        assert proc.poll() is None and not _gone(worker)
        os.kill(os.getpid(), signal.SIGINT)  # the second: everything is killed now
        assert proc.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.05)  # polls a condition: the orphaned worker's end
    assert _gone(worker)
    assert forward.signum == signal.SIGINT


def _launch(cache_dir: Path, tmp_path: Path, results: Path) -> tuple[subprocess.Popen, list[int]]:
    """`trnbench run --nproc 2` as a process of its own (the launcher), once rank 0 has said
    which backend it runs on (after that, a worker writes nothing until its record: a launcher
    gone by then leaves it running) and both workers run; returns it and the pids below it
    (torchrun and the workers)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *FLAGS, "--nproc", "2", "--results", str(results)],
        cwd=tmp_path, env={**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # ends at EOF should the launcher end early
        if line.startswith("cpu as asked"):
            break
    deadline = time.monotonic() + WATCH_S
    while not (_child(results, 0) and _child(results, 1)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.1)  # polls a condition: both workers started
    return proc, launcher._descendants(proc.pid)


def _survivors(pids: list[int], within_s: float) -> list[int]:
    """Those of ``pids`` still running ``within_s`` seconds from now, then SIGKILLed (a
    failing test leaves nothing behind)."""
    deadline = time.monotonic() + within_s
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)  # polls a condition: every process has ended
    alive = [p for p in pids if not _gone(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


def test_torchrun_and_its_workers_die_with_a_killed_launcher(cache_dir, tmp_path):
    """SIGKILL of `run --nproc 2` itself: the kernel's SIGTERM (parent-death signal) stops
    torchrun, which stops its workers; nothing runs on, and no record appears after the
    command has gone (issue 26 item 7)."""
    results = tmp_path / "r.jsonl"
    proc, below = _launch(cache_dir, tmp_path, results)
    assert len(below) >= 3  # torchrun and two workers
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert not _survivors(below, 40)
    assert not results.exists() or all(r["status"] != "ok" for r in read_jsonl(results))


def test_sighup_to_the_launcher_is_handled_like_sigterm(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    proc, below = _launch(cache_dir, tmp_path, results)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)  # from after the backend line
    assert proc.returncode == 128 + signal.SIGHUP, err[-3000:]
    assert err.rstrip().endswith("trnbench: interrupted by SIGHUP")
    assert "Traceback" not in err  # torchrun's own, of the forwarded signal: not echoed
    [record] = read_jsonl(results)
    assert (record["status"], record["error"]) == ("interrupted", "interrupted by SIGHUP")
    assert not _survivors(below, 40)
