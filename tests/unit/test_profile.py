"""`trnbench run --profile`: a torch.profiler Chrome trace of steps after the timed window,
beside the results file and named in the record (a real tiny CPU run, in-process)."""

from __future__ import annotations

import json

from bench.cli import main
from bench.train import profile
from tests.conftest import read_jsonl

TINY = ["run", "--model", "tiny", "--batch", "2", "--seq", "16", "--steps", "3", "--warmup",
        "1", "--backend", "cpu", "--json"]


def test_profile_traces_steps_after_the_window(tmp_path, capsys):
    results = tmp_path / "runs.jsonl"
    assert main([*TINY, "--results", str(results), "--profile", "--profile-steps", "2"]) == 0
    record = read_jsonl(results)[0]
    block = record["profile"]
    assert block["steps"] == 2 and block["after_window"] is True and block["error"] is None
    assert block["method"].startswith("torch.profiler") and "memory: yes" in block["method"]
    path = tmp_path / f"runs-{record['run_id']}.trace.json"
    assert block["trace"] == str(path)
    events = json.loads(path.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    # the step's matmuls (attention projections, MLP, head) forward and backward
    assert {"aten::mm", "aten::addmm", "aten::matmul", "aten::linear"} & names
    assert sum(e.get("name") in ("aten::mm", "aten::addmm") for e in events) >= 2 * 8
    # the window was not profiled: 3 timed steps, the record's figures as in any run
    assert len(record["step_times_s"]) == 3 and record["status"] == "ok"


def test_profile_steps_must_be_positive(tmp_path, capsys):
    code = None
    try:
        code = main([*TINY, "--results", str(tmp_path / "r.jsonl"), "--profile",
                     "--profile-steps", "0"])
    except SystemExit as e:
        code = e.code
    assert code == 2 and "--profile-steps: must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_neuron_inspect_variables_profile_the_first_step_after_the_window(tmp_path):
    env = profile.neuron_env(tmp_path / "runs.jsonl", "abc123", warmup=5, steps=20)
    assert env["NEURON_RT_INSPECT_ENABLE"] == "1"
    assert env["NEURON_RT_INSPECT_DEVICE_PROFILE_NUM_WARMUP"] == "25"  # skip warm-up + window
    assert env["NEURON_RT_INSPECT_SYSTEM_PROFILE"] == "0"  # nothing captured in the window
    assert env["NEURON_RT_INSPECT_OUTPUT_DIR"] == str(tmp_path / "runs-abc123.neuron-inspect")
