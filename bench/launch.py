"""`trnbench run --nproc N`: start the run through torchrun (``torch.distributed.run``).

The launcher is torchrun itself, never a home-made one: this module builds its command
line, runs it, and makes sure a run that fails leaves exactly one record. Workers write
their record from rank 0 under a run id chosen here (``TRNBENCH_RUN_ID``). When a rank
dies or raises before rank 0 could write, torchrun stops the others (``--max-restarts=0``)
and exits non-zero; this launcher then stores the run as failed, naming the rank that
torchrun reports as the root cause.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import environment, store

LAUNCH_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint")
RUN_ID_ENV = "TRNBENCH_RUN_ID"


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


def failed_rank(torchrun_output: str) -> str | None:
    """The root-cause rank of torchrun's failure report (``rank : 1 (local_rank: 1)``)."""
    cause = torchrun_output.rsplit("Root Cause", 1)[-1]
    match = re.search(r"rank\s*:\s*(\d+)", cause)
    return match.group(1) if match else None


def _stored(results: Path, run_id: str) -> bool:
    if not results.exists():
        return False
    return any(r.get("run_id") == run_id for r in store.iter_records(results))


def run(config: dict[str, Any], inner: list[str], results: Path, nproc: int, nnodes: int,
        node_rank: int | None, rdzv_endpoint: str | None, tags: dict[str, str]) -> int:
    """Run torchrun, streaming its output; store a failed record if no rank could."""
    record = store.new_record(config, environment.capture(), tags)
    cmd = torchrun_command(inner, nproc, nnodes, node_rank, rdzv_endpoint)
    env = {**os.environ, RUN_ID_ENV: record["run_id"]}
    print(f"launching: {' '.join(cmd)}", file=sys.stderr)
    tail: collections.deque[str] = collections.deque(maxlen=400)
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
    rc = proc.returncode
    leader = node_rank in (None, 0)
    if rc != 0 and leader and not _stored(results, record["run_id"]):
        rank = failed_rank("".join(tail))
        who = f"rank {rank}" if rank is not None else "a rank"
        record.update(status="failed", world_size=nproc * nnodes,
                      error=f"{who} failed (torchrun exit code {rc}); see its output above")
        store.append(results, record)
        print(f"trnbench: run failed: {record['error']} (stored in {results})", file=sys.stderr)
    return 1 if rc else 0
