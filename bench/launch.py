"""`trnbench run --nproc N`: start the run through torchrun (``torch.distributed.run``).

The launcher is torchrun itself, never a home-made one: this module builds its command
line, runs it, and makes sure a run that fails leaves exactly one record. Workers write
their record from rank 0 under a run id chosen here (``TRNBENCH_RUN_ID``). When a rank
dies or raises before rank 0 could write, torchrun stops the others (``--max-restarts=0``)
and exits non-zero; this launcher then stores the run as failed, naming the rank that
caused it and its error (``failure_message``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench import environment, store
from bench.record import Record

LAUNCH_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint")
RUN_ID_ENV = "TRNBENCH_RUN_ID"
KILL_AFTER_S = 60.0  # after a forwarded signal: torchrun's own 30 s for its workers, and more
RANK_ERROR_PREFIX = "trnbench: rank "  # a failing worker's line: "trnbench: rank 3 failed: ..."


def strip_launch_flags(argv: list[str]) -> list[str]:
    """``argv`` without the launcher's own flags (``--flag VALUE`` and ``--flag=VALUE``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def torchrun_command(inner: list[str], nproc: int, nnodes: int = 1, node_rank: int | None = None,
                     rdzv_endpoint: str | None = None) -> list[str]:
    """``python -m torch.distributed.run ... -m bench run INNER`` for this node."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           "--max-restarts=0"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
        if node_rank is not None:
            cmd.append(f"--node-rank={node_rank}")
    return [*cmd, "-m", "bench", "run", *inner]


def failure_message(torchrun_output: str, exit_code: int) -> str:
    """Which rank failed and why, from torchrun's failure report and the workers' lines.

    A rank killed by a signal other than torchrun's own SIGTERM before it said it failed is
    the cause (the peers that then lost it fail in their collectives); otherwise torchrun's
    root cause (its first observed failure). The rank's own line (``RANK_ERROR_PREFIX``)
    gives the error.
    """
    exits = {int(r): int(code) for r, code in re.findall(
        r"rank\s*:\s*(\d+)\s*\(local_rank[^\n]*\n\s*exitcode\s*:\s*(-?\d+)", torchrun_output)}
    said = {int(r): msg for r, msg in re.findall(
        rf"^{re.escape(RANK_ERROR_PREFIX)}(\d+) failed: (.*)$", torchrun_output, re.M)}
    killed = [r for r, code in exits.items()  # died by a signal before saying it failed
              if code < 0 and -code != signal.SIGTERM and r not in said]
    root = re.search(r"rank\s*:\s*(\d+)", torchrun_output.rsplit("Root Cause", 1)[-1])
    rank = min(killed) if killed else int(root.group(1)) if root else None
    if rank is None:
        return f"a rank failed (torchrun exit code {exit_code}); see its output above"
    if rank in killed:
        why = f"killed by {signal.Signals(-exits[rank]).name}"
        others = "; ".join(f"then rank {r}: {m}" for r, m in sorted(said.items()) if r != rank)
        why += f"; {others}" if others else ""
    else:
        why = said.get(rank, f"exit code {exits.get(rank, '?')}; see its output above")
    return f"rank {rank} failed: {why} (torchrun exit code {exit_code})"


def _stored(results: Path, run_id: str) -> bool:
    if not results.exists():
        return False
    return any(r.get("run_id") == run_id for r in store.iter_records(results))


class _Forward:
    """While torchrun runs: the first SIGINT or SIGTERM to this launcher goes to torchrun's
    process group (torchrun passes it to its workers and waits up to 30 s for them before
    SIGKILL); if it is still running ``KILL_AFTER_S`` later, its group is killed."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.signum = proc, None
        self.timer: threading.Timer | None = None

    def __enter__(self) -> _Forward:
        self.previous = {s: signal.signal(s, self.handle) for s in (signal.SIGINT,
                                                                    signal.SIGTERM)}
        return self

    def handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:  # torchrun stops its workers once; a second signal
            return  # would cut that short and orphan them (the timer ends a hang)
        self.signum = signum
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)
        self.timer = threading.Timer(KILL_AFTER_S, self.kill)
        self.timer.daemon = True
        self.timer.start()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def __exit__(self, *exc: object) -> None:
        if self.timer:
            self.timer.cancel()
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def run(config: dict[str, Any], inner: list[str], results: Path, nproc: int, nnodes: int,
        node_rank: int | None, rdzv_endpoint: str | None, tags: dict[str, str]) -> int:
    """Run torchrun, streaming its output; store a failed record if no rank could, or an
    interrupted one (naming the signal) if SIGINT or SIGTERM stopped it before rank 0 could
    store its own. Exit code 128 + the signal number then."""
    record = Record.new(config, environment.capture(), tags)
    cmd = torchrun_command(inner, nproc, nnodes, node_rank, rdzv_endpoint)
    env = {**os.environ, RUN_ID_ENV: record.run_id}
    print(f"launching: {' '.join(cmd)}", file=sys.stderr)
    tail: collections.deque[str] = collections.deque(maxlen=400)  # holds torchrun's report
    rank_lines: list[str] = []  # every failing rank's own line, however long the output
    # its own session: a terminal's Ctrl-C reaches torchrun once, through _Forward
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc, _Forward(proc) as forward:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
            if line.startswith(RANK_ERROR_PREFIX):
                rank_lines.append(line)
        proc.wait()
    rc = proc.returncode
    leader = node_rank in (None, 0)
    if forward.signum is not None:
        name = signal.Signals(forward.signum).name
        if leader and not _stored(results, record.run_id):
            store.append(results, record.failed(f"interrupted by {name}", "interrupted",
                                                world_size=nproc * nnodes))
        print(f"trnbench: interrupted by {name} (stored in {results})", file=sys.stderr)
        return 128 + forward.signum
    if rc != 0 and leader and not _stored(results, record.run_id):
        record = record.failed(failure_message("".join(rank_lines + list(tail)), rc),
                               world_size=nproc * nnodes)
        store.append(results, record)
        print(f"trnbench: run failed: {record.error} (stored in {results})", file=sys.stderr)
    return 1 if rc else 0
