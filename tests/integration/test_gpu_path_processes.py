"""The GPU path's processes, on the CPU: the bare-loop comparison script run for real, the
H100 runbook (its dry run, and its use of the suite with a stand-in Python), and a
real torch.compile run (inductor compiles the step with the C++ compiler). The rest of the
GPU path, in-process: tests/unit/test_gpu_path.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from torch.nn.attention import SDPBackend

from bench.train import runner
from tests.conftest import ROOT
from tests.device_fakes import kernel_backend, tiny_cfg


def test_compiled_run_on_cpu_compiles_in_warmup_only(cache_dir):
    """One real torch.compile run: forward+loss and the (unfused) optimizer step compiled, the
    graphs counted in warm-up and none in the window, FlashAttention enforced as on cuda."""
    r = runner.measure(tiny_cfg(compile=True, warmup=2, steps=2, precision="bf16"),
                       kernel_backend(SDPBackend.FLASH_ATTENTION)()).to_json()
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


def test_h100_runbook_prints_its_commands():
    """(shellcheck of every script: tests/integration/test_scripts.py)"""
    script = ROOT / "scripts/gpu/run-h100.sh"
    proc = subprocess.run(["bash", str(script), "--dry-run", "--python", sys.executable],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": os.path.dirname(sys.executable)
                               + os.pathsep + "/usr/bin:/bin"})  # no nvidia-smi: 8 GPUs
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    [suite] = [i for i, line in enumerate(lines)
               if " -m bench suite scripts/suite.toml --hardware h100 --nproc-per-node 8 " in line
               and "--summary results/h100/" in line]
    # the fabric first, over every GPU of the machine
    [comm] = [i for i, line in enumerate(lines)
              if " -m bench comm --backend cuda --nproc 8 --sizes 1K:1G" in line]
    assert comm < suite
    runs = [line for line in lines if " -m bench run " in line and "--model 1b" in line]
    assert [r.split("--batch ")[1].split()[0] for r in runs] == ["1", "2", "4", "BEST"]
    assert all("--seq 2048 --steps 30 --warmup 10 --precision bf16 --compile" in r for r in runs)
    assert any("bare_loop.py --device cuda --model MODEL --seq SEQ --batch BEST" in line
               and "--json >" in line for line in lines)
    assert any("--sync-debug" in line for line in lines)
    assert any("sweep scripts/gpu/sweep-h100.toml" in line for line in lines)
    assert lines[-1].startswith(f"+ {sys.executable} -m bench report --results results/h100/")


def test_h100_runbook_takes_the_bare_loop_batch_from_the_suite(tmp_path):
    """The runbook for real, in a copy of the repository layout, with a stand-in for the Python
    it is given: the suite (stood in) writes its summary, whose chip case's best batch, model
    and sequence the bare-loop comparison then uses; a failed suite run still reaches the
    report, and the exit code says it failed."""
    script = tmp_path / "scripts/gpu/run-h100.sh"
    script.parent.mkdir(parents=True)
    script.write_text((ROOT / "scripts/gpu/run-h100.sh").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3'\n")
    summary = {"cases": [{"scope": "chip", "best_batch": 8,
                          "config": {"model": "1b", "seq": 2048}}]}
    py = bin_dir / "python"
    py.write_text(f"""#!/usr/bin/env bash
[ "$1" = -c ] && exec {sys.executable} "$@"
echo "$*" >> calls.log
case "$*" in
  *" suite "*) summary=$(echo "$*" | sed 's/.*--summary \\([^ ]*\\).*/\\1/')
               echo '{json.dumps(summary)}' > "$summary"; exit 1 ;;
esac
""")
    for exe in (py, bin_dir / "nvidia-smi"):
        exe.chmod(0o755)
    proc = subprocess.run(["bash", str(script), "--python", str(py)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 1, proc.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert any(c.startswith("-m bench suite scripts/suite.toml --hardware h100 "
                            "--nproc-per-node 1 ") for c in calls)
    bare = [c for c in calls if "bare_loop.py" in c]
    assert bare and all("--model 1b --seq 2048 --batch 8 " in c for c in bare)
    assert calls[-1].startswith("-m bench report --results results/h100/")
    assert "one GPU: no fabric to measure" in proc.stdout  # the stand-in nvidia-smi: one line
