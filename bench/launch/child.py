"""The two ends of the launcher's hand-over to a child run (``bench.launch.launcher``).

The launcher names itself (``LAUNCHER_ENV``: its pid and start time), the run id it chose
(``RUN_ID_ENV``) and, under torchrun, a directory where each worker of its node leaves its
global rank (``RANKS_ENV``). The child (``trnbench run``, or each torchrun worker) takes them
out of its environment at start (``take``): the run id only when the launcher it names is one
of its own ancestors, so that an id left exported in a shell is never reused; each worker
announces its rank, which tells every node's launcher whether the job's rank 0 (the one
that stores the record) ran on its node. The launcher's children die with it:
``die_with_parent`` is their ``preexec_fn`` (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import signal
import sys
from pathlib import Path

from bench.records.store import warn

RUN_ID_ENV = "TRNBENCH_RUN_ID"
LAUNCHER_ENV = "TRNBENCH_LAUNCHER"  # "PID:START": the launcher that chose the run id
RANKS_ENV = "TRNBENCH_RANKS_DIR"  # torchrun: each worker of this node touches <dir>/<rank>
RUN_ID = re.compile(r"[0-9a-f]{12}")  # bench.records.record.new_run_id
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name), None where unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def identity(pid: int) -> str | None:
    """``PID:START``: a process named so that a later one reusing its pid is not it (its
    start time in clock ticks since boot, /proc/PID/stat field 22); None off Linux."""
    stat = _stat(pid)
    return f"{pid}:{stat[19]}" if stat else None


def _ancestors() -> list[str] | None:
    """The identities of this process's ancestors, parent first; None off Linux."""
    if _stat(os.getpid()) is None:
        return None
    found, pid = [], os.getppid()
    while pid > 1:
        stat = _stat(pid)
        if stat is None:
            break
        found.append(f"{pid}:{stat[19]}")
        pid = int(stat[1])
    return found


def take_run_id() -> str | None:
    """The run id this process's launcher chose, removed from the environment (a process
    this one starts does not inherit it); None without a launcher. An id that no launcher
    above this process set (``export TRNBENCH_RUN_ID=...`` left in a shell would make every
    run reuse it) or that is not a launcher's 12 hex digits is ignored with one warning."""
    run_id = os.environ.pop(RUN_ID_ENV, None)
    launcher = os.environ.pop(LAUNCHER_ENV, None)
    if run_id is None:
        return None
    shown = run_id if len(run_id) <= 40 else run_id[:40] + "..."
    if not RUN_ID.fullmatch(run_id):
        warn(f"{RUN_ID_ENV}={shown!r} ignored: not a run id a trnbench launcher makes (12 "
             "hex digits); this run gets a fresh one")
        return None
    ancestors = _ancestors()
    if launcher is None or (ancestors is not None and launcher not in ancestors):
        warn(f"{RUN_ID_ENV}={shown} ignored: no trnbench launcher above this process set it "
             "(left exported in a shell?); this run gets a fresh id")
        return None
    return run_id


def announce_rank(rank: int) -> None:
    """Tell this node's launcher that global rank ``rank`` runs here (torchrun workers)."""
    where = os.environ.pop(RANKS_ENV, None)
    if where:
        with contextlib.suppress(OSError):
            Path(where, str(rank)).touch()


def ranks_announced(where: Path) -> set[int]:
    """The global ranks the workers of this node announced (``announce_rank``)."""
    with contextlib.suppress(OSError):
        return {int(p.name) for p in where.iterdir() if p.name.isdigit()}
    return set()


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) \
    if sys.platform.startswith("linux") else None


def die_with_parent(parent: int) -> None:
    """``preexec_fn`` of a child: SIGTERM when its launcher ``parent`` dies (SIGKILL, SIGHUP
    of a closed terminal), so that no torchrun or worker outlives it and stores a record
    after it has gone; at once if the launcher died before this took effect. Linux only
    (elsewhere the child is on its own, as before)."""
    if _libc is None:
        return
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
