"""The one launcher of child runs: ``trnbench run --nproc``, and every point of ``trnbench
sweep`` and ``trnbench scaling`` (``run``); the ranks of ``trnbench comm`` (``launch``, the
same with another verb).

A child is ``python -m bench run <config.to_argv(cfg)> ...`` (one process) or, given a
``Torchrun``, ``python -m torch.distributed.run ... -m bench run ...``: torchrun itself,
never a home-made multi-process launcher. It runs under a run id chosen here
(``TRNBENCH_RUN_ID``, which its record takes, checked at the other end:
``bench.launch.child``), and its record is read back from the results file by that id. In a
multi-node job every node's launcher chooses its own id, and the record is stored by the
job's global rank 0, on whichever node torchrun's c10d rendezvous put it (rendezvous order,
not ``--node-rank``): each worker announces its rank to its node's launcher, and only the
launcher of rank 0's node reads the record back or stands in for it
(``Torchrun.stores_record``). A child that stored none (a rank died, the OOM killer's
SIGKILL, a timeout, a signal before it could store) leaves exactly one record in its place
(``_stand_in``): failed, with the best error there is (under torchrun the rank that caused
it and its own error line, ``failure_message``; otherwise the exit code or signal and the
tail of stderr, ``_death``), or interrupted.

Signals (``_Forward``): the child runs in its own session, so a terminal's Ctrl-C reaches it
once, through here. The first SIGINT, SIGTERM or SIGHUP this process gets goes to the
child's process group (torchrun's own traceback of it is no longer echoed); the child
stores its interrupted record (torchrun passes the signal to its workers and waits up to
30 s for them); a child still running ``KILL_AFTER_S`` later has its group
killed, with every process it started (``_kill_tree``: torchrun starts each worker in a
session of its own, so killing torchrun's group alone would orphan them). A second signal
does that kill at once (the way out of a shutdown that hangs). The launcher then raises
``errors.Interrupted``, which the CLI ends with exit 128 + the signal number. Should the
launcher itself die (SIGKILL), its child gets SIGTERM from the kernel
(``child.die_with_parent``) and stops its workers: nothing outlives the launcher.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bench.inputs import config
from bench.inputs.errors import Interrupted
from bench.launch import child
from bench.records import store
from bench.records.record import Record, RecordError, new_run_id

if TYPE_CHECKING:
    from bench.backends.selection import Selection

RUN_ID_ENV = child.RUN_ID_ENV
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # forwarded to the child
KILL_AFTER_S = 60.0  # after a forwarded signal: torchrun's own 30 s for its workers, and more
RANK_ERROR_PREFIX = "trnbench: rank "  # a failing worker's line: "trnbench: rank 3 failed: ..."


def say_rank_failed(rank: int, error: str) -> None:
    """A failing worker's line on stderr, in one write: the launcher reads it to name the rank."""
    sys.stderr.write(f"{RANK_ERROR_PREFIX}{rank} failed: {error}\n")
    sys.stderr.flush()
TAIL_LINES = 400  # of a child's stderr, kept: holds torchrun's failure report


@dataclass(frozen=True)
class Torchrun:
    """This node's part of a torchrun launch: ``nproc`` ranks here, of ``nnodes`` nodes that
    meet at ``rdzv_endpoint`` (c10d rendezvous); ``node_rank`` names the node that stands in
    for the job's record when no worker started anywhere (``stores_record``)."""

    nproc: int
    nnodes: int = 1
    node_rank: int | None = None
    rdzv_endpoint: str | None = None

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    def stores_record(self, ranks_here: set[int]) -> bool:
        """Whether this node's launcher reads the job's record back (or stands in for it):
        the node whose workers included global rank 0, which stores it (c10d numbers the
        nodes in the order they join, whatever ``--node-rank`` says); where no worker
        started here (a rendezvous that never formed), the node given ``--node-rank 0`` (or
        none). The others store and read nothing."""
        if ranks_here:
            return 0 in ranks_here
        return self.node_rank in (None, 0)

    def command(self, inner: Sequence[str], verb: str = "run") -> list[str]:
        """``python -m torch.distributed.run ... -m bench VERB INNER`` for this node."""
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={self.nproc}",
               "--max-restarts=0"]
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            cmd.append("--standalone")
        else:
            # no --node-rank: c10d ignores it (with a warning), numbering nodes as they join
            cmd += [f"--nnodes={self.nnodes}", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint={self.rdzv_endpoint}"]
        return [*cmd, "-m", "bench", verb, *inner]


@dataclass(frozen=True)
class Outcome:
    """A finished child: the record stored under its run id (its own or the stand-in; None
    where nothing is stored here: another node's launcher, or no results file), its exit
    code, and the last ``TAIL_LINES`` lines of its stderr."""

    record: Record | None
    returncode: int
    stderr: str


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


def _death(returncode: int, stderr: str, torchrun: bool = False) -> str:
    """Why a child ended without storing a record: under torchrun that exited with an error,
    the failing rank (``failure_message``); otherwise its signal or exit code and the last
    lines of its stderr."""
    if torchrun and returncode > 0:
        return failure_message(stderr, returncode)
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        how = f"killed by {sig}" + (" (the kernel's OOM killer sends SIGKILL)"
                                    if sig == "SIGKILL" else "")
    else:
        how = f"exited with code {returncode}"
    tail = " | ".join([line for line in stderr.splitlines() if line.strip()][-3:])[-500:]
    who = "torchrun" if torchrun else "run subprocess"
    return f"{who} {how} without storing a record" + (f"; stderr: {tail}" if tail else "")


def _stand_in(cfg: dict[str, Any], selection: Selection, tags: dict[str, str], run_id: str,
              started: str, status: str, error: str, world_size: int) -> Record:
    """The record stored in place of the one a child did not store: its configuration,
    backend, tags, run id and start time, ``status`` (failed or interrupted) and ``error``."""
    from bench.backends import environment  # torch: only when a child failed

    return Record.start(cfg, selection, environment.capture(), tags, run_id=run_id,
                        time=started).failed(error, status, world_size=world_size)


def _find(results: Path, run_id: str) -> Record | None:
    """The record stored under ``run_id`` in ``results``: found by its id whatever it holds
    (the child's own record, never a second one beside it), read as a Record when it is
    usable (``record.problem``), else a failed one saying why, in its place."""
    if not results.exists():
        return None
    data = next((d for d in store.iter_records(results) if d.get("run_id") == run_id), None)
    if data is None:
        return None
    try:
        return Record.from_json(data)
    except RecordError as e:
        return Record.new(data.get("config") if isinstance(data.get("config"), dict) else {},
                          {}, run_id=run_id).failed(f"its stored record is unusable: {e}")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from Linux's ``/proc/PID/task/TID/children``."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                queue += children
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL the process group of ``pid`` and every descendant (each worker torchrun
    starts leads a session of its own)."""
    for target in [*_descendants(pid), pid]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _Forward:
    """While a child runs: the first SIGINT or SIGTERM to this process goes to the child's
    process group (``signum`` remembers it), and ``KILL_AFTER_S`` later a child still
    running is killed with all its descendants; a second signal kills them at once. ``stop``
    does the same for a timeout. A signal that comes before the child has started goes to
    it when it has."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.stderr: _Stderr | None = None
        self.signum: int | None = None
        self.timer: threading.Timer | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Forward:
        if threading.current_thread() is threading.main_thread():  # else: none to handle
            self.previous = {s: signal.signal(s, self.handle) for s in SIGNALS}
        return self

    def attach(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        if self.signum is not None:
            self.stop(self.signum)

    def handle(self, signum: int, frame: object) -> None:
        if self.stderr is not None:  # torchrun's own traceback of the signal: not echoed
            self.stderr.echo = False
        if self.signum is not None:  # the second signal: no more waiting
            if self.proc is not None:
                print("trnbench: second signal: killing the run and every process it "
                      "started", file=sys.stderr, flush=True)
                self.kill()
            return
        self.signum = signum
        if self.proc is not None:
            self.stop(signum)

    def stop(self, signum: int) -> None:
        """``signum`` to the child's group, and ``kill`` ``KILL_AFTER_S`` later."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)
        if self.timer is None:
            self.timer = threading.Timer(KILL_AFTER_S, self.kill)
            self.timer.daemon = True
            self.timer.start()

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:  # never a reaped pid: the system may have reused it
            _kill_tree(self.proc.pid)

    def __exit__(self, *exc: object) -> None:
        if self.timer:
            self.timer.cancel()
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class _Stderr:
    """A child's stderr, read in a thread: echoed to ours when ``echo``; its last
    ``TAIL_LINES`` lines kept, and every failing rank's line however long the output."""

    def __init__(self, stream: IO[bytes], echo: bool):
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.rank_lines: list[str] = []
        self.echo = echo  # turned off when a signal came (``_Forward.handle``)
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        # a carriage return ends a line and stays in it: a progress bar redraws in place
        for line in io.TextIOWrapper(stream, errors="replace", newline=""):
            if self.echo:
                sys.stderr.write(line)
                sys.stderr.flush()
            self.tail.append(line)
            if line.startswith(RANK_ERROR_PREFIX):
                self.rank_lines.append(line)

    def text(self) -> str:
        self.thread.join(KILL_AFTER_S)  # EOF; a bound, should an orphan hold the pipe
        return "".join(self.tail)


def _argv(cfg: config.RunConfig, results: Path | None, tags: dict[str, str],
          flags: Iterable[str]) -> list[str]:
    """The child's ``bench run`` arguments: the configuration, ``flags``, results and tags."""
    argv = [*config.to_argv(cfg), *flags]
    if results is not None:
        argv += ["--results", str(results)]
    for key, value in tags.items():
        argv += ["--tag", f"{key}={value}"]
    return argv


def command(cfg: config.RunConfig, results: Path | None, tags: dict[str, str],
            torchrun: Torchrun | None = None, flags: Sequence[str] = ()) -> list[str]:
    """The child's command line: ``python -m bench run`` or torchrun of ``cfg`` (every field
    given), ``flags``, the results file and the tags."""
    inner = _argv(cfg, results, tags, flags)
    return torchrun.command(inner, "run") if torchrun else [sys.executable, "-m", "bench", "run",
                                                           *inner]


def run(cfg: config.RunConfig, selection: Selection, results: Path | None,
        tags: dict[str, str], *, torchrun: Torchrun | None = None,
        timeout_s: float | None = None, flags: Sequence[str] = (),
        env: dict[str, str] | None = None, stream: bool = False) -> Outcome:
    """Run ``cfg`` in a child and return the record stored under its run id.

    ``torchrun``: through torchrun (else one process); ``timeout_s``: a child still running
    then is stopped (SIGKILL; torchrun gets SIGTERM to stop its workers) and stored as
    failed; ``flags``: more ``bench run`` flags (``--profile``...); ``env``: additions to
    the child's environment; ``stream``: the child's stdout and stderr go to ours (else its
    stdout is dropped, ``--json`` keeps it short, and its stderr is only kept).
    ``results`` None: the child stores no record (graph extraction under
    neuron_parallel_compile) and none is read back or stored here.

    Raises ``errors.Interrupted`` after the child has ended when SIGINT, SIGTERM or SIGHUP
    came (its interrupted record stored)."""
    inner = _argv(cfg, results, tags, [*flags, *(() if stream else ("--json",))])
    return launch("run", inner, cfg.as_dict(), selection, results, tags, torchrun=torchrun,
                  timeout_s=timeout_s, env=env, stream=stream)


def launch(verb: str, inner: Sequence[str], cfg: dict[str, Any], selection: Selection,
           results: Path | None, tags: dict[str, str], *, torchrun: Torchrun | None = None,
           timeout_s: float | None = None, env: dict[str, str] | None = None,
           stream: bool = False) -> Outcome:
    """``run`` for any verb that stores one record per child (``run``, ``comm``): the child
    is ``bench VERB INNER``; ``cfg`` is the configuration its stand-in record holds."""
    run_id = new_run_id()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cmd = (torchrun.command(inner, verb) if torchrun
           else [sys.executable, "-m", "bench", verb, *inner])
    if stream:
        print(f"launching: {shlex.join(cmd)}", file=sys.stderr)
    timed_out = False
    ranks = Path(tempfile.mkdtemp(prefix="trnbench-ranks-")) if torchrun else None
    handover = {RUN_ID_ENV: run_id, child.LAUNCHER_ENV: child.identity(os.getpid()) or "",
                **({child.RANKS_ENV: str(ranks)} if ranks else {})}
    try:
        with _Forward() as forward, subprocess.Popen(
                cmd, env={**os.environ, **(env or {}), **handover},
                stdout=None if stream else subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=functools.partial(child.die_with_parent, os.getpid())) as proc:
            forward.attach(proc)
            assert proc.stderr is not None
            stderr = forward.stderr = _Stderr(proc.stderr, echo=stream)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                if torchrun:
                    forward.stop(signal.SIGTERM)  # torchrun stops its workers; kill() if not
                else:
                    forward.kill()
                proc.wait()
            tail = stderr.text()
        here = child.ranks_announced(ranks) if ranks else set()
    finally:
        if ranks:
            shutil.rmtree(ranks, ignore_errors=True)
    record = None
    if results is not None and (torchrun is None or torchrun.stores_record(here)):
        record = _find(results, run_id)
        if record is None:
            if forward.signum is not None:
                why = "interrupted", f"interrupted by {signal.Signals(forward.signum).name}"
            elif timed_out:
                why = "failed", (f"killed after its timeout_s of {timeout_s:g} s without "
                                 "storing a record")
            else:
                why = "failed", _death(proc.returncode, "".join(stderr.rank_lines) + tail,
                                       torchrun is not None)
            record = _stand_in(cfg, selection, tags, run_id, started, *why,
                               torchrun.world_size if torchrun else 1)
            store.append(results, record)
    if forward.signum is not None:
        raise Interrupted(forward.signum)
    return Outcome(record, proc.returncode, tail)
