"""The GPU path's processes, on the CPU: the bare-loop comparison script run for real, the
H100 runbook (shellcheck, its dry run, and its batch search with a stand-in Python), and a
real torch.compile run (inductor compiles the step with the C++ compiler). The rest of the
GPU path, in-process: tests/unit/test_gpu_path.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from torch.nn.attention import SDPBackend

from bench.backends.cpu import CpuBackend
from bench.inputs import config
from bench.train import runner
from tests.conftest import ROOT


class OnlyKernel(CpuBackend):
    """The CPU backend with SDPA restricted to one kernel."""

    kernel: SDPBackend

    def sdpa_backends(self, precision):
        return (self.kernel,)


def _kernel_backend(kernel: SDPBackend) -> type[CpuBackend]:
    return type(f"Only{kernel.name.title()}", (OnlyKernel,), {"kernel": kernel})


def _cfg(**kw):
    return config.resolve("cpu", {"model": "tiny", "steps": 2, "warmup": 1, **kw})


def test_compiled_run_on_cpu_compiles_in_warmup_only(cache_dir):
    """One real torch.compile run: forward+loss and the (unfused) optimizer step compiled, the
    graphs counted in warm-up and none in the window, FlashAttention enforced as on cuda."""
    r = runner.measure(_cfg(compile=True, warmup=2, steps=2, precision="bf16"),
                       _kernel_backend(SDPBackend.FLASH_ATTENTION)()).to_json()
    assert r["compile"] == {"scope": "forward+loss", "optimizer_step": "compiled",
                            "backend": "inductor", "dynamic": False}
    c = r["compilation"]
    assert c["warmup_graphs"] >= 2 and c["warmup_compile_s"] > 0 and "Dynamo" in c["method"]
    assert r["compilation"]["timed_graphs"] == 0 and not any("compiled" in w for w in r["warnings"])
    assert r["attention"]["sdpa_backends"] == ["FLASH_ATTENTION"]
    assert r["loss_last"] < r["loss_first"]


# --- scripts/gpu ------------------------------------------------------------------------------

def _script(*args: str, cache_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "scripts/gpu/bare_loop.py", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def test_bare_loop_script_compares_harness_and_bare_on_cpu(cache_dir):
    proc = _script("--device", "cpu", "--model", "tiny", "--steps", "3", "--warmup", "1",
                   "--rounds", "2", "--json", cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    bare, harness = out["bare"], out["harness"]
    assert len(bare["per_round"]) == len(harness["per_round"]) == 2
    assert min(bare["per_round"] + harness["per_round"]) > 0
    assert out["ratio"] == pytest.approx(harness["tokens_per_s"]["median"]
                                         / bare["tokens_per_s"]["median"])
    assert out["peak"]["label"] == "measured" and bare["mfu"] > 0 and harness["mfu"] > 0
    # the same program: same settings, and the same loss after the same steps on the same data
    assert out["settings_differ"] == [] and bare["settings"] == harness["settings"]
    assert bare["loss_last"] == pytest.approx(harness["loss_last"], rel=1e-5)
    assert harness["step_time_method"] == "host-clock"
    assert "round 2/2" in proc.stderr


def test_h100_runbook_is_shellcheck_clean_and_prints_its_commands():
    script = ROOT / "scripts/gpu/run-h100.sh"
    shellcheck = ROOT / ".venv/bin/shellcheck"
    check = subprocess.run([str(shellcheck), "-s", "bash", str(script)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout
    proc = subprocess.run(["bash", str(script), "--dry-run", "--batches", "8 16"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    runs = [line for line in lines if " -m bench run " in line]
    assert [r.split("--batch ")[1].split()[0] for r in runs] == ["8", "16", "BEST", "BEST", "BEST"]
    # the fabric first, over every GPU of the machine
    [comm] = [i for i, line in enumerate(lines) if " -m bench comm --backend cuda --nproc GPUS "
              "--sizes 1K:1G" in line]
    assert comm < lines.index(runs[0])
    assert all("--model 1b --seq 2048 --precision bf16 --compile" in r for r in runs)
    assert any("bare_loop.py --device cuda" in line and "--json >" in line for line in lines)
    assert any("--sync-debug" in line for line in lines)
    assert any("sweep scripts/gpu/sweep-h100.toml" in line for line in lines)
    assert lines[-1].startswith("+ .venv/bin/python -m bench report --results results/h100/")


def test_h100_batch_search_ends_at_the_first_batch_that_does_not_fit(tmp_path):
    """The runbook for real, in a copy of the repository layout, with a stand-in for the Python
    it is given: batch 16 is refused by the memory plan (exit code 2, as ``trnbench run``
    refuses a run that does not fit), so 32 is never tried and the runbook goes on with 8."""
    script = tmp_path / "scripts/gpu/run-h100.sh"
    script.parent.mkdir(parents=True)
    script.write_text((ROOT / "scripts/gpu/run-h100.sh").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'name, memory.total'\n")
    py = bin_dir / "python"
    py.write_text(f"""#!/usr/bin/env bash
[ "$1" = -c ] && exec {sys.executable} "$@"
echo "$*" >> calls.log
case "$*" in
  *" run "*"--batch 16 "*) echo "trnbench: error: plan: needs 90.1 GiB per rank" >&2; exit 2 ;;
  *" run "*--json*) echo '{{"tokens_per_s": 1000.0}}' ;;
esac
""")
    for exe in (py, bin_dir / "nvidia-smi"):
        exe.chmod(0o755)
    proc = subprocess.run(["bash", str(script), "--python", str(py), "--batches", "8 16 32"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert "batch 16 refused (does not fit; nothing stored); search ends" in proc.stdout
    assert "one GPU: no fabric to measure" in proc.stdout  # the stand-in nvidia-smi: one line
    runs = [line for line in (tmp_path / "calls.log").read_text().splitlines()
            if line.startswith("-m bench run ")]
    assert [r.split("--batch ")[1].split()[0] for r in runs] == ["8", "16", "8", "8", "8"]
