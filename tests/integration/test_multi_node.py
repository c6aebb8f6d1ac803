"""One 2-node torchrun job as its two nodes' launchers run it, both on this host: one
`trnbench run --nproc 1 --nnodes 2 --node-rank R --rdzv-endpoint HOST:PORT` per node.
torchrun's c10d rendezvous numbers the nodes in the order they join, not by --node-rank, so
either launcher may end up with the job's rank 0, which stores the record: whichever it is,
the job stores exactly one ok record and both launchers exit 0 (issue 26, item 1). The
Slurm batch script's 2-node job: tests/integration/test_slurm.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import read_jsonl

TINY = ("--backend", "cpu", "--model", "tiny", "--batch", "2", "--seq", "16", "--steps", "3",
        "--warmup", "1")
JOIN_S = 60.0  # for the first launcher's torchrun to open the rendezvous
ELSEWHERE = "rank 0 ran on another node"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("first", [0, 1], ids=["node-rank-0-first", "node-rank-1-first"])
def test_two_launchers_of_one_job_store_one_ok_record(cache_dir, tmp_path, first):
    results, port = tmp_path / "r.jsonl", _free_port()
    env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}

    def launch(node_rank: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "bench", "run", *TINY, "--nproc", "1", "--nnodes", "2",
             "--node-rank", str(node_rank), "--rdzv-endpoint", f"127.0.0.1:{port}",
             "--results", str(results), "--json"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = {first: launch(first)}
    deadline = time.monotonic() + JOIN_S
    while not _listening(port):  # the first node has joined: it gets c10d's node rank 0
        assert procs[first].poll() is None and time.monotonic() < deadline, \
            procs[first].communicate()
        time.sleep(0.1)
    procs[1 - first] = launch(1 - first)
    outputs = {r: p.communicate(timeout=300) for r, p in procs.items()}
    for r, p in procs.items():
        assert p.returncode == 0, outputs[r][1][-3000:]
    [record] = read_jsonl(results)
    assert record["status"] == "ok" and record["world_size"] == 2, record.get("error")
    assert [r["rank"] for r in record["ranks"]] == [0, 1]
    # the launcher whose node joined first held rank 0 and stored the record; the other
    # says so and stores nothing
    assert ELSEWHERE not in outputs[first][1]
    assert ELSEWHERE in outputs[1 - first][1]
    assert outputs[first][0].strip() and not outputs[1 - first][0].strip()
