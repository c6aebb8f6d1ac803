"""Runs through torchrun: 2 real gloo ranks on this CPU, DDP and FSDP2, their aggregation,
and the failure paths (a rank that raises, a rank that dies)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import distributed, launch
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
    expected_mfu = (record["model"]["flops_per_token"] * record["tokens_per_s"]
                    / (record["peak"]["value"] * 2))
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


@pytest.mark.slow  # real torchrun ranks; the launching trnbench runs in this process
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


def _find_worker(results: Path, rank: int) -> tuple[int, str] | None:
    """(pid, run id) of the torchrun worker of ``rank`` writing to ``results``."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(results).encode() not in cmdline or f"RANK={rank}".encode() not in env:
            continue
        for item in env:
            if item.startswith(f"{launch.RUN_ID_ENV}=".encode()):
                return int(proc.name), item.split(b"=", 1)[1].decode()
    return None


def test_a_rank_that_dies_ends_the_run_with_one_failed_record(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir)}
    cmd = [sys.executable, "-m", "bench", "run", "--model", "tiny", "--steps", "100000",
           "--warmup", "1", "--nproc", "2", "--results", str(results)]
    with subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        found, deadline = None, time.monotonic() + 120
        while found is None and time.monotonic() < deadline:
            time.sleep(0.5)
            found = _find_worker(results, 1)
        assert found, "rank 1 never started"
        pid, run_id = found
        time.sleep(3)  # let it train
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err[-2000:]
    [record] = read_jsonl(results)
    assert record["status"] == "failed" and record["run_id"] == run_id
    assert record["error"].startswith("rank 1 failed"), record["error"]


def test_multi_node_needs_a_rendezvous(cli):
    proc = cli("run", *TINY, "--nproc", "2", "--nnodes", "2")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--rdzv-endpoint: is required with --nnodes > 1" in proc.stderr


def test_launch_helpers():
    argv = ["--model", "tiny", "--nproc", "8", "--nnodes=2", "--node-rank", "1",
            "--rdzv-endpoint", "h:1", "--json"]
    assert launch.strip_launch_flags(argv) == ["--model", "tiny", "--json"]
    cmd = launch.torchrun_command(["--json"], 8, 2, 1, "h:1")
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=8"]
    assert "--rdzv-endpoint=h:1" in cmd and "--node-rank=1" in cmd and "--standalone" not in cmd
    assert cmd[-4:] == ["-m", "bench", "run", "--json"]
    assert "--standalone" in launch.torchrun_command([], 2)

def _failure(rank: int, code: int) -> str:
    return f"[{rank}]:\n  rank      : {rank} (local_rank: {rank})\n  exitcode  : {code} (pid: 9)\n"


def test_failure_message_names_the_cause():
    said = "trnbench: rank 0 failed: RuntimeError: Connection reset by peer\n"
    # rank 3 was killed from outside; rank 0 then lost its peer; rank 2 was stopped by torchrun
    report = (said + "Failures:\n" + _failure(2, -15) + _failure(3, -9)
              + "Root Cause (first observed failure):\n" + _failure(0, 1))
    assert launch.failure_message(report, 1) == (
        "rank 3 failed: killed by SIGKILL; then rank 0: RuntimeError: Connection reset by peer "
        "(torchrun exit code 1)")
    # no signal: torchrun's root cause, with that rank's own line
    nan = ("trnbench: rank 1 failed: NonFiniteLoss: loss became nan at step 2\n"
           "Root Cause (first observed failure):\n" + _failure(1, 1))
    assert launch.failure_message(nan, 1) == (
        "rank 1 failed: NonFiniteLoss: loss became nan at step 2 (torchrun exit code 1)")
    # a rank that said it failed and then aborted on its way out is not "killed"
    aborted = ("trnbench: rank 0 failed: NonFiniteLoss: loss became nan at step 2\n"
               + _failure(0, -6) + "Root Cause (first observed failure):\n" + _failure(0, -6))
    assert launch.failure_message(aborted, 1).startswith("rank 0 failed: NonFiniteLoss")
    assert launch.failure_message("", 1).startswith("a rank failed")


def test_context_from_torchrun_environment():
    assert distributed.from_env({}) is None
    ctx = distributed.from_env({"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1",
                                "LOCAL_WORLD_SIZE": "8", "GROUP_RANK": "1"})
    assert (ctx.rank, ctx.local_rank, ctx.node_rank, ctx.is_main) == (9, 1, 1, False)


def _rank(host: str, tokens: int, window: float, energy: dict | None) -> dict:
    return {"host": host, "tokens": tokens, "window_s": window, "tokens_per_s": tokens / window,
            "device": {"chips": 0.25}, "peak": {"value": 667e12}, "memory": {"peak_bytes": 7},
            "model": {"flops_per_token": 6e9, "hardware_flops_per_token": 8e9},
            "step_time": {"median_s": window / 10}, "step_times_s": [window / 10] * 10,
            "loss_first": 2.0, "loss_last": 1.0, "losses": [2.0, 1.0], "warnings": [],
            "energy": energy}


def _energy(method: str, devices: dict) -> dict:
    return {"method": method, "joules": sum(devices.values()), "device_joules": devices}


def test_aggregate_by_hand():
    # 4 ranks on 2 hosts; on each host two ranks share Neuron device 0 (one chip)
    per_rank = [
        _rank("a", 1000, 2.0, _energy("neuron-power-utilization", {"neuron0": 100.0})),
        _rank("a", 1000, 2.5, _energy("neuron-power-utilization", {"neuron0": 100.0})),
        _rank("b", 1000, 2.0, _energy("neuron-power-utilization", {"neuron0": 120.0})),
        _rank("b", 1000, 2.0, _energy("neuron-power-utilization", {"neuron0": 120.0})),
    ]
    out = distributed.aggregate(per_rank)
    assert (out["world_size"], out["nodes"], out["tokens"], out["window_s"]) == (4, 2, 4000, 2.5)
    assert out["tokens_per_s"] == 1600 and out["device"]["chips"] == 1.0
    assert out["tokens_per_s_per_chip"] == 1600
    assert out["mfu"] == pytest.approx(6e9 * 1600 / 667e12)
    assert out["hfu"] == pytest.approx(8e9 * 1600 / 667e12)  # with recomputation
    assert out["energy"]["joules"] == 220.0  # each host's chip once
    assert out["energy"]["j_per_token"] == 220.0 / 4000
    assert out["energy"]["avg_power_w"] == 220.0 / 2.5
    assert [r["rank"] for r in out["ranks"]] == [0, 1, 2, 3]


def test_aggregate_modelled_energy_sums_ranks_and_null_stays_null():
    modelled = [_rank("a", 10, 1.0, _energy("modelled", {"trn2": 5.0})) for _ in range(2)]
    assert distributed.aggregate(modelled)["energy"]["joules"] == 10.0
    null = {"method": "rapl", "joules": None, "reason": "no sensor", "device_joules": {}}
    mixed = [_rank("a", 10, 1.0, null), _rank("a", 10, 1.0, _energy("rapl", {"p0": 1.0}))]
    assert distributed.aggregate(mixed)["energy"]["joules"] is None
