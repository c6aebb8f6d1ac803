"""`trnbench comm` through real torchrun ranks on gloo: 2 and 4 ranks against hand
arithmetic, a rank that dies and a peer that stops answering (the verb in this process,
``invoke``; its ranks real processes). The parts that start no process:
tests/unit/test_comm.py."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from bench.records import bandwidth
from tests.conftest import invoke, read_jsonl
from tests.integration.test_launch_processes import WATCH_S, _child, _when_started

FACTORS = {2: {"all_reduce": 1.0, "all_gather": 0.5},  # 2(n-1)/n and (n-1)/n by hand
           4: {"all_reduce": 1.5, "all_gather": 0.75, "reduce_scatter": 0.75,
               "all_to_all": 0.75, "send_recv": 1.0}}


def _comm(cache_dir: Path, cwd: Path, *args: str):
    return invoke("comm", *args, cwd=cwd, env={"TRNBENCH_CACHE_DIR": str(cache_dir)})


def _check_points(record: dict, ranks: int) -> None:
    """Every point's figures against hand arithmetic: the slowest rank's time, S / t, the
    factor of the op for ``ranks``, a check with no wrong element."""
    for p in record["comm"]["points"]:
        assert len(p["rank_time_us"]) == ranks and p["time_us"] == max(p["rank_time_us"])
        algbw = p["size_bytes"] / (p["time_us"] / 1e6) / 1e9
        assert p["algbw_gbs"] == pytest.approx(algbw)
        assert p["busbw_gbs"] == pytest.approx(algbw * FACTORS[ranks][p["op"]]) and \
            p["busbw_gbs"] > 0
        assert p["wrong"] == 0


def test_two_gloo_ranks_store_busbw_in_under_a_minute(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    started = time.monotonic()
    proc = _comm(cache_dir, tmp_path, "--nproc", "2", "--ops", "all_reduce,all_gather",
                 "--sizes", "1K:4M", "--results", str(results))
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    [record] = read_jsonl(results)
    assert record["status"] == "ok" and record["config"]["kind"] == "comm"
    assert record["backend"]["dist_backend"] == "gloo" and record["world_size"] == 2
    comm = record["comm"]
    assert (comm["tool"], comm["ranks"], comm["nodes"], comm["one_node"]) == ("trnbench", 2, 1,
                                                                             True)
    assert [(p["op"], p["size_bytes"]) for p in comm["points"]] == [
        (op, 2**k) for op in ("all_reduce", "all_gather") for k in range(10, 23)]
    _check_points(record, 2)
    assert seconds < 60, f"took {seconds:.1f} s"


def test_four_gloo_ranks_every_op(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    proc = _comm(cache_dir, tmp_path, "--nproc", "4", "--sizes", "64:256", "--dtype", "bf16",
                 "--warmup", "1", "--iters", "3", "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [record] = read_jsonl(results)
    assert record["comm"]["ops"] == list(bandwidth.OPS) and record["comm"]["dtype"] == "bf16"
    _check_points(record, 4)
    # S of 64 B in bf16: 32 elements; each of 4 ranks sends 8 in all-gather
    first = {p["op"]: p for p in record["comm"]["points"] if p["size_bytes"] == 64}
    assert {op: p["count"] for op, p in first.items()} == dict.fromkeys(bandwidth.OPS, 32)


def _no_process_left(results: Path) -> bool:
    """No process (torchrun, a rank) names ``results`` on its command line any more."""
    for proc in Path("/proc").iterdir():
        try:
            if str(results).encode() in (proc / "cmdline").read_bytes():
                return False
        except OSError:
            continue
    return True


def test_a_rank_that_dies_leaves_a_failed_record_and_no_process(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    with _when_started(results, 1, lambda pid: os.kill(pid, signal.SIGKILL)) as killed:
        proc = _comm(cache_dir, tmp_path, "--results", str(results))
    assert proc.returncode == 1, proc.stderr[-3000:]
    [record] = read_jsonl(results)
    assert killed == [record["run_id"]]
    assert record["status"] == "failed" and record["config"]["kind"] == "comm"
    assert record["error"] == "rank 1 failed: killed by SIGKILL (torchrun exit code 1)"
    assert proc.stderr.endswith(f"trnbench: comm failed: {record['error']} (stored in "
                                f"{results})\n")
    assert _no_process_left(results)


def test_a_peer_that_stops_answering_times_the_run_out(cache_dir, tmp_path):
    """Rank 1 is stopped (SIGSTOP) as it starts; rank 0 gives up after --dist-timeout, and
    rank 1 is let go again once rank 0 is gone, to take torchrun's SIGTERM."""
    results = tmp_path / "r.jsonl"

    def stop_then_continue(pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + WATCH_S
        seen = False
        while time.monotonic() < deadline:  # polls a condition: rank 0 came and went
            alive = _child(results, 0) is not None
            if seen and not alive:
                break
            seen = seen or alive
            time.sleep(0.05)
        os.kill(pid, signal.SIGCONT)

    with _when_started(results, 1, lambda pid: threading.Thread(
            target=stop_then_continue, args=(pid,), daemon=True).start()):
        proc = _comm(cache_dir, tmp_path, "--dist-timeout", "3", "--results", str(results))
    assert proc.returncode == 1, proc.stderr[-3000:]
    [record] = read_jsonl(results)
    assert record["status"] == "failed"
    # in the process group's set-up (DistStoreError) or, stopped later, in a collective
    assert re.match(r"rank 0 failed: \w+: .*(timeout after|[Tt]imed out waiting) 3000ms",
                    record["error"]), record["error"]
    assert _no_process_left(results)
