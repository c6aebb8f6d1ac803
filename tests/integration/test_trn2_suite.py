"""The Trainium2 runbook end to end, on stand-ins: scripts/trn2/run-node.sh run for real (in a
copy of the repository layout, so nothing is written into the checkout) with a stand-in
``neuron-ls`` on PATH and a stand-in ``torch_neuronx`` on the path of every process it starts
(tests/stand_ins: ``torch.neuron`` of the torch.cuda shape, an eager mode that compiles each
ATen call into a NEFF of the real cache directory the script sets). A suite of the shape of
scripts/suite.toml with the tiny model: its chip case planned, its batch search ended by the
memory plan, 3 repeats, its multi-node case printed as a Slurm command; then the report, the
tarball and the copy-back command. Each run is a real training run in its own process. The
real suite's plan and the suite logic in one process: tests/unit/test_suite.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

from tests.conftest import ROOT, read_jsonl
from tests.device_fakes import TRN2_LNC2, fake_neuron_ls

SUITE = """\
[suite]
name = "stand-in"
repeats = 3

[defaults]
precision = "fp32"
steps = 3
warmup = 2
energy = "none"

[[case]]
name = "chip-tiny"
scope = "chip"
model = "tiny"
seq = 64
batch = [2, 100000]   # the plan refuses 100000 x 64 tokens in 24 GiB

[[case]]
name = "nodes-tiny"
scope = "nodes"
nnodes = 2
model = "tiny"
seq = 64
batch = 2
"""


def test_trn2_runbook_runs_the_suite_through_report_and_tarball(tmp_path, cache_dir):
    script = tmp_path / "scripts/trn2/run-node.sh"
    script.parent.mkdir(parents=True)
    shutil.copy(ROOT / "scripts/trn2/run-node.sh", script)
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    bin_dir = fake_neuron_ls(tmp_path / "bin", TRN2_LNC2, "new")
    neff = tmp_path / "nvme"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests/stand_ins"), str(ROOT)]),
           "TRNBENCH_CACHE_DIR": str(cache_dir), "COLUMNS": "200"}
    for var in ("NEURON_LOGICAL_NC_CONFIG", "TRNBENCH_RANK_MEMORY_GIB", "TRNBENCH_RESULTS"):
        env.pop(var, None)
    proc = subprocess.run(["bash", str(script), "--python", sys.executable, "--suite", str(suite),
                           "--cache-dir", str(neff), "--nproc-per-node", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (stem,) = [p.with_suffix("") for p in (tmp_path / "results/trn2").glob("*.tar.gz")]
    stem = stem.with_suffix("")  # DATE.tar -> DATE
    date = stem.name

    # the checks ran: neuron-ls as a table, and as JSON for the plan's memory
    assert "NEURON DEVICE" in proc.stdout
    assert "memory per rank 24.0 GiB (neuron-ls: 96 GiB per device / 4 NeuronCores at LNC=2)" \
        in proc.stderr

    # the suite: one cold search run, the plan's refusal, 3 warm repeats at its batch
    records = read_jsonl(stem.with_suffix(".jsonl"))
    assert [(r["status"], r["tags"]["phase"], r["config"]["batch"]) for r in records] == [
        ("ok", "search", 2), ("ok", "repeat", 2), ("ok", "repeat", 2), ("ok", "repeat", 2)]
    assert all(r["device"]["kind"] == "trn2" and r["backend"]["name"] == "neuron"
               and r["tags"]["case"] == "chip-tiny" for r in records)
    caches = [r["compile_cache"] for r in records]
    assert [c["first_step"] for c in caches] == ["cold", "warm", "warm", "warm"]
    assert all(c["dir"] == str(neff / "neff") and c["timed_graphs"] == 0 for c in caches)
    assert caches[1]["hits"] > 0 and caches[1]["misses"] == 0
    assert all(r["cpu_fallbacks"]["warmup"] == r["cpu_fallbacks"]["timed"] == 0 for r in records)
    versions = records[0]["device"]["versions"]
    assert versions["lnc_setting"] == "NEURON_LOGICAL_NC_CONFIG=2"
    assert versions["neff_cache"] == str(neff / "neff")

    summary = json.loads((stem.parent / f"{date}-suite.json").read_text())
    chip, nodes = summary["cases"]
    assert [s["status"] for s in chip["search"]] == ["ok", "refused"]
    assert chip["best_batch"] == 2 and [r["status"] for r in chip["repeats"]] == ["ok"] * 3
    assert chip["search"][0]["first_step"] == "cold"
    assert nodes["reason"] == "2 nodes: run on the cluster" and nodes["search"] == []
    assert "sbatch --nodes=2 scripts/slurm/trn2.sbatch" in proc.stderr.replace("\n", "")

    # the report of the day, the tarball of it all, the copy-back and publish commands
    assert (stem / "report.md").is_file()
    with tarfile.open(stem.parent / f"{date}.tar.gz") as tar:
        names = set(tar.getnames())
    assert {f"{date}.jsonl", f"{date}-suite.json", f"{date}/report.md"} <= names
    assert f"results/trn2/{date}.tar.gz results/trn2/" in proc.stdout
    assert "trnbench compare --results results/h100/DAY.jsonl" in proc.stdout
