"""Runs through torchrun: 2 real gloo ranks on this CPU, DDP and FSDP2, their aggregation,
and a rank that raises (a rank that dies: test_launch_processes.py; the rank context read
from torchrun's environment: tests/unit/test_distributed_context.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import read_jsonl

TINY = ("--model", "tiny", "--batch", "4", "--seq", "32", "--warmup", "2", "--steps", "4")


def _check_aggregate(record: dict) -> None:
    ranks = record["ranks"]
    assert record["world_size"] == 2 and len(ranks) == 2 and record["nodes"] == 1
    assert record["tokens"] == sum(r["tokens"] for r in ranks) == 2 * 4 * 32 * 4
    slowest = max(r["window_s"] for r in ranks)
    assert record["window_s"] == slowest
    assert record["tokens_per_s"] == pytest.approx(record["tokens"] / slowest)
    assert record["tokens_per_s"] <= sum(r["tokens_per_s"] for r in ranks) + 1e-6
    assert record["device"]["chips"] == 1  # two ranks on one CPU: one chip
    assert record["tokens_per_s_per_chip"] == record["tokens_per_s"]
    # one peak for the host (its GEMM rate with all its CPUs), not one per rank
    assert "all CPUs" in record["peak"]["source"]
    expected_mfu = (record["model"]["flops_per_token"] * record["tokens_per_s"]
                    / record["peak"]["value"])
    assert record["mfu"] == pytest.approx(expected_mfu)
    assert ranks[0]["loss_first"] != ranks[1]["loss_first"]  # each rank has its own data


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_gloo_ranks_write_one_aggregated_record(cli, tmp_path, parallel):
    results = tmp_path / "r.jsonl"
    proc = cli("run", *TINY, "--nproc", "2", "--parallel", parallel, "--json",
               "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_jsonl(results)
    assert len(records) == 1
    record = records[0]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == record
    assert record["status"] == "ok" and record["config"]["parallel"] == parallel
    assert record["backend"]["dist_backend"] == "gloo"
    _check_aggregate(record)


# real torchrun ranks; the launching trnbench runs in this process
def test_a_rank_that_raises_fails_the_run(cli_main, tmp_path):
    results = tmp_path / "r.jsonl"
    proc = cli_main("run", *TINY, "--nproc", "2", "--lr", "1e6", "--results", str(results))
    assert proc.returncode == 1
    [record] = read_jsonl(results)
    assert record["status"] == "failed" and record["world_size"] == 2
    assert re.match(r"rank [01] failed: NonFiniteLoss: loss became", record["error"])


def test_torchrun_started_by_hand_rank_0_stores_the_failure(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "bench", "run", *TINY, "--lr", "1e6", "--results", str(results)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    [record] = read_jsonl(results)
    assert record["status"] == "failed" and record["world_size"] == 2
    assert record["error"].startswith("rank 0 failed: NonFiniteLoss"), record["error"]


def test_multi_node_needs_a_rendezvous(cli):
    proc = cli("run", *TINY, "--nproc", "2", "--nnodes", "2")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--rdzv-endpoint: is required with --nnodes > 1" in proc.stderr
