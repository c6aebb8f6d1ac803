"""Node-scale parallelism as real processes: the 70B Slurm job's dry run, and real gloo runs
through torchrun (TP with sequence parallelism, FSDP2 with bf16 parameters, HSDP 2 x 2,
activation checkpointing) whose losses match a one-process run of the same global batch. The
layouts and the memory plan, in this process: tests/unit/test_parallel.py.

Tolerances on the per-step losses of a few steps of ``tiny`` (about 6.3 nats) against the
one-process run: fp32 1e-5 (TP, loss parallelism and sharding change only the order of
reductions; measured differences were at most 4.8e-7), bf16 with FSDP2 bf16 parameters
against one process under autocast 2e-3 (bf16 rounding of weights and activations;
measured differences were at most 1.4e-4).
"""

from __future__ import annotations

import subprocess

import pytest

from bench.backends import selection
from bench.train import runner
from tests.conftest import ROOT, read_jsonl

TOL = {"fp32": 1e-5, "bf16": 2e-3}
STEPS = ("--model", "tiny", "--seq", "32", "--warmup", "1", "--steps", "2")


def test_the_70b_slurm_run_dry_run():
    env = {"SLURM_JOB_NODELIST": "trn[1-4]", "SLURM_NNODES": "4", "DRY_RUN": "1",
           "TRNBENCH_ARGS": "--config scripts/trn2/llama3-70b.toml"}
    proc = subprocess.run(["bash", "scripts/slurm/trn2.sbatch"], cwd=ROOT, text=True,
                          capture_output=True, env={**__import__("os").environ, **env},
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    run = proc.stdout.splitlines()[-1]
    assert "run --nproc 64 --nnodes 4" in run and run.endswith(
        "--config scripts/trn2/llama3-70b.toml")


@pytest.fixture(scope="module")
def one_process(cache_dir):
    """Losses of one process on the global batch (4 sequences), fp32 and bf16 (autocast)."""
    out = {}
    for precision in ("fp32", "bf16"):
        cfg, chosen = selection.resolve_run("cpu", {
            "model": "tiny", "seq": 32, "warmup": 1, "steps": 2, "batch": 4,
            "precision": precision})
        record = runner.execute(cfg, chosen, None).to_json()
        assert record["status"] == "ok", record.get("error")
        out[precision] = record["losses"]
    return out


@pytest.mark.parametrize(("flags", "world", "tp", "dp", "precision"), [
    (("--nproc", "2", "--tp", "2", "--ac", "full", "--batch", "4"), 2, 2, 1, "fp32"),
    (("--nproc", "4", "--tp", "2", "--parallel", "fsdp", "--param-dtype", "bf16",
      "--precision", "bf16", "--ac", "selective", "--batch", "2"), 4, 2, 2, "bf16"),
    (("--nproc", "4", "--parallel", "hsdp", "--dp-shard", "2", "--batch", "1"),
     4, 1, 4, "fp32"),
], ids=["tp2", "tp2-fsdp-bf16", "hsdp-2x2"])
# real torchrun ranks; the launching trnbench runs in this process
def test_parallel_runs_match_one_process(cli_main, tmp_path, one_process, flags, world, tp,
                                         dp, precision):
    results = tmp_path / "r.jsonl"
    proc = cli_main("run", *STEPS, *flags, "--json", "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [r] = read_jsonl(results)
    assert r["status"] == "ok" and r["world_size"] == world
    par = r["parallelism"]
    assert (par["tp"], par["dp"], par["sequence_parallel"], par["loss_parallel"]) == (
        tp, dp, tp > 1, tp > 1)
    # tokens counted once per TP group: the global batch of 4 sequences per step
    per_rank = [x["tokens"] for x in r["ranks"]]
    assert r["tokens"] == sum(per_rank) // tp == 4 * 32 * 2
    assert r["tokens_per_s"] == pytest.approx(r["tokens"] / r["window_s"])
    if dp == 1:  # one TP group: the global rate is rank 0's window rate, not twice it
        assert r["tokens"] == per_rank[0]
        assert r["tokens_per_s"] <= r["ranks"][0]["tokens_per_s"] * (1 + 1e-9)
    # one peak for the host, its GEMM rate with all its CPUs, not one per rank
    assert r["device"]["chips"] == 1 and "all CPUs" in r["peak"]["source"]
    assert r["mfu"] == pytest.approx(r["model"]["flops_per_token"] * r["tokens_per_s"]
                                     / r["peak"]["value"])
    assert r["losses"] == pytest.approx(one_process[precision], abs=TOL[precision])
    assert r["memory"]["peak_bytes"] > 0 and r["memory"]["predicted_peak_bytes"] > 0
    ac = r["ac"]["blocks"]
    assert (r["hfu"] > r["mfu"]) == (ac > 0)
    if "--param-dtype" in flags:
        assert r["precision"]["mode"].startswith("FSDP2 mixed precision: bf16 parameters")
        assert r["precision"]["compute_param_dtype"] == "bfloat16"
        assert r["precision"]["optimizer_state_dtypes"] == ["float32"]
