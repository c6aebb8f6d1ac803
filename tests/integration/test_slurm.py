"""The Slurm batch scripts on a real two-node Slurm, both nodes on this host
(scripts/slurm/local-cluster.sh).

`sbatch scripts/slurm/gpu.sbatch` runs 2 gloo ranks of the tiny model on this CPU, on one
node or one per node; the launch body it execs (launch.sh) is the one trn2.sbatch execs too,
whose Neuron/EFA lines test_scripts.py checks in dry run. The cluster starts once per
session, only when these tests run, and stops afterwards. A machine that cannot host Slurm
(not root, no apt-get, the install fails: the script's exit status 77) skips them with the
script's reason; any other failure to start is an error.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_jsonl

CLUSTER = ROOT / "scripts" / "slurm" / "local-cluster.sh"
CANNOT_HOST_SLURM = 77
JOB_TIMEOUT_S = 240
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Slurm:
    env: dict[str, str]  # SLURM_CONF names this cluster's configuration

    def sbatch(self, script: str, out_dir: Path, job_env: dict[str, str], nodes: int = 1
               ) -> tuple[int, Path]:
        """Submit ``script`` on ``nodes`` nodes from the repository root (the batch scripts
        run paths relative to it); returns the job id and its log file."""
        log = out_dir / "job.out"
        proc = subprocess.run(
            ["sbatch", "--parsable", "--export=ALL", f"--output={log}", f"--nodes={nodes}",
             f"--time={JOB_TIMEOUT_S // 60 + 1}", f"scripts/slurm/{script}"],
            cwd=ROOT, env={**self.env, **job_env}, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.strip().split(";")[0]), log

    def wait(self, job_id: int, log: Path) -> dict[str, str]:
        """The job's ``scontrol show job`` fields once it has ended (bounded wait)."""
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while True:
            proc = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)],
                                  env=self.env, capture_output=True, text=True, timeout=30)
            fields = dict(re.findall(r"(\w+)=(\S*)", proc.stdout))
            if "JobState" not in fields:
                pytest.fail(f"scontrol show job {job_id}: {proc.stderr.strip()}")
            if fields["JobState"] not in ACTIVE:
                return fields
            if time.monotonic() > deadline:
                subprocess.run(["scancel", str(job_id)], env=self.env, timeout=30)
                tail = log.read_text()[-3000:] if log.exists() else "(no log)"
                pytest.fail(f"job {job_id} still {fields['JobState']} after "
                            f"{JOB_TIMEOUT_S} s; log:\n{tail}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory, cache_dir) -> Slurm:
    state = tmp_path_factory.mktemp("slurm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(SLURM_CONF=str(state / "slurm.conf"), SLURMCTLD_PORT=str(_free_port()),
               SLURMD_PORTS=f"{_free_port()},{_free_port()}",
               TRNBENCH_CACHE_DIR=str(cache_dir))

    def cluster(verb: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(CLUSTER), verb, str(state)], env=env,
                              capture_output=True, text=True, timeout=600)

    try:
        start = cluster("start")
        if start.returncode == CANNOT_HOST_SLURM:
            pytest.skip(start.stderr.strip().splitlines()[-1])
        assert start.returncode == 0, f"the local Slurm did not start:\n{start.stderr[-3000:]}"
        yield Slurm(env)
    finally:
        stop = cluster("stop")
        assert stop.returncode == 0, f"the local Slurm did not stop:\n{stop.stderr[-3000:]}"


def _job_env(results: Path, *args: str, per_node: int = 2) -> dict[str, str]:
    """What gpu.sbatch reads: ``per_node`` ranks per node, `trnbench run` arguments."""
    return {"NPROC_PER_NODE": str(per_node), "RDZV_PORT": str(_free_port()),
            "TRNBENCH": str(Path(sys.executable).with_name("trnbench")),
            "TRNBENCH_ARGS": " ".join([*args, "--results", str(results)])}


TINY = ("--backend", "cpu", "--model", "tiny", "--batch", "2", "--seq", "16", "--steps", "3",
        "--warmup", "1")


def test_gpu_sbatch_runs_two_gloo_ranks(slurm, tmp_path):
    results = tmp_path / "r.jsonl"
    job_env = _job_env(results, *TINY)
    job_id, log = slurm.sbatch("gpu.sbatch", tmp_path, job_env)
    job = slurm.wait(job_id, log)
    text = log.read_text()
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), text[-3000:]
    # launch.sh found the rendezvous host in the job's node list, at its NodeAddr
    assert f"--rdzv-endpoint=127.0.0.1:{job_env['RDZV_PORT']}" in text
    [record] = read_jsonl(results)
    assert record["status"] == "ok" and record["world_size"] == 2 and record["nodes"] == 1
    assert record["backend"]["dist_backend"] == "gloo"
    ranks = record["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["tokens"] == 2 * 16 * 3 and r["tokens_per_s"] > 0 for r in ranks)
    assert record["tokens"] == sum(r["tokens"] for r in ranks)
    assert record["tokens_per_s"] == pytest.approx(
        record["tokens"] / max(r["window_s"] for r in ranks))


def test_a_two_node_job_stores_one_ok_record(slurm, tmp_path):
    """One launcher per node (srun), each with its own node's --node-rank; whichever node
    torchrun's rendezvous gives rank 0 stores the one record, and every task exits 0."""
    results = tmp_path / "r.jsonl"
    job_id, log = slurm.sbatch("gpu.sbatch", tmp_path, _job_env(results, *TINY, per_node=1),
                               nodes=2)
    job = slurm.wait(job_id, log)
    text = log.read_text()
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), text[-3000:]
    assert job["NumNodes"] == "2"
    [record] = read_jsonl(results)
    assert record["status"] == "ok" and record["world_size"] == 2, record.get("error")
    assert [r["rank"] for r in record["ranks"]] == [0, 1]
    assert text.count("rank 0 ran on another node") == 1  # the other node's launcher


def test_a_job_with_a_bad_model_fails_with_one_line(slurm, tmp_path):
    results = tmp_path / "r.jsonl"
    job_id, log = slurm.sbatch("gpu.sbatch", tmp_path,
                               _job_env(results, "--backend", "cpu", "--model", "nope"))
    job = slurm.wait(job_id, log)
    text = log.read_text()
    assert (job["JobState"], job["ExitCode"]) == ("FAILED", "2:0"), text[-3000:]
    errors = [ln for ln in text.splitlines() if ln.startswith("trnbench:")]
    assert len(errors) == 1, text[-3000:]
    assert errors[0].startswith("trnbench: error: --model: unknown model 'nope'; accepted: tiny, ")
    assert not results.exists()  # bad input: nothing written


def test_a_job_whose_rank_raises_fails_with_one_failed_record(slurm, tmp_path):
    results = tmp_path / "r.jsonl"
    job_id, log = slurm.sbatch("gpu.sbatch", tmp_path, _job_env(results, *TINY, "--lr", "1e6"))
    job = slurm.wait(job_id, log)
    text = log.read_text()
    assert (job["JobState"], job["ExitCode"]) == ("FAILED", "1:0"), text[-3000:]
    [record] = read_jsonl(results)
    assert record["status"] == "failed" and record["world_size"] == 2
    assert "NonFiniteLoss" in record["error"] and record["error"] in text
