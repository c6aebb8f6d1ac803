"""The `trnbench` command end to end, as a user runs it (real training). The verbs run
in-process (``cli_main`` fixture, ``bench.cli.main``); a run and the console script as real
subprocesses, the way a user starts them: tests/integration/test_cli_processes.py."""

from __future__ import annotations

import json
import re

import pytest
import torch

from bench.backends import gemm_peak
from tests.conftest import read_jsonl

TINY = ("--model", "tiny", "--batch", "4", "--seq", "32", "--warmup", "2", "--steps", "4")


def test_run_summary_table_and_progress(cli_main, tmp_path):
    proc = cli_main("run", *TINY, "--results", str(tmp_path / "r.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "auto chose cpu" in proc.stderr
    for label in ("tokens/s", "MFU", "step time", "peak memory", "loss"):
        assert label in proc.stdout
    # stderr is a pipe: no progress bar, one line for the finished run
    assert re.search(r"^run [0-9a-f]{12} ok: tiny, [\d,]+ tokens/s over 4 timed steps in "
                     r"[\d.]+ s$", proc.stderr, re.M), proc.stderr
    assert "━" not in proc.stderr


def test_bf16_run(cli_main, tmp_path):
    proc = cli_main("run", *TINY, "--precision", "bf16", "--json", "--results", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert "autocast bf16" in record["precision"]["mode"]
    assert record["loss_last"] < record["loss_first"]
    if gemm_peak.has_matrix_units("bf16"):  # AVX512-BF16 or AMX: a measured bf16 GEMM peak
        assert record["peak"]["precision"] == "bf16" and 0 < record["mfu"] < 1
    else:  # torch's bf16 fallback GEMM has no peak to divide by: MFU null, and said so
        assert record["peak"] is None and record["mfu"] is None
        assert any("in bf16; MFU is null" in w for w in record["warnings"])


def test_config_file_and_flag_precedence(cli_main, tmp_path):
    (tmp_path / "run.toml").write_text('[run]\nmodel = "tiny"\nsteps = 3\nwarmup = 1\nseq = 16\n')
    proc = cli_main("run", "--config", "run.toml", "--steps", "2", "--json", "--results", "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)["config"]
    assert (cfg["model"], cfg["steps"], cfg["warmup"], cfg["seq"]) == ("tiny", 2, 1, 16)
    assert cfg["batch"] == 8  # the model's own default when nothing sets it


BAD_INPUTS = [
    (["--model", "nope"], "--model", "tiny, 125m"),
    (["--backend", "nope"], "--backend", "auto"),
    (["--batch", "0"], "--batch", ">= 1"),
    (["--seq", "0"], "--seq", ">= 1"),
    (["--steps", "0"], "--steps", ">= 1"),
    (["--steps", "x"], "--steps", "int"),
    (["--seq", "4096"], "--seq", "maximum"),
    (["--precision", "fp64"], "--precision", "fp32"),
    (["--results", "/proc/trnbench/r.jsonl"], "--results", "not writable"),
    (["--config", "missing.toml"], "--config", "no such file"),
    (["--config", "bad.toml"], "--config", "line 2"),
    (["--config", "unknown.toml"], "--config", "accepted"),
    (["--precompile", "--backend", "cpu"], "--precompile", "neuron-xla only"),
    (["--tag", "no-value"], "--tag", "KEY=VALUE"),
]


@pytest.mark.parametrize(("args", "field", "accepted"), BAD_INPUTS,
                         ids=[" ".join(a) for a, _, _ in BAD_INPUTS])
def test_bad_input_one_line_exit_2_nothing_written(cli_main, tmp_path, args, field, accepted):
    (tmp_path / "bad.toml").write_text('[run]\nmodel = "tiny\n')
    (tmp_path / "unknown.toml").write_text('[run]\nmodell = "tiny"\n')
    proc = cli_main("run", "--model", "tiny", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trnbench: error:") and field in lines[0] and accepted in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this case needs a machine without CUDA")
def test_unavailable_backend_is_bad_input(cli_main, tmp_path):
    proc = cli_main("run", "--model", "tiny", "--backend", "cuda")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "--backend: cuda is not available here" in proc.stderr and "available: auto, cpu" in \
        proc.stderr


def test_failed_run_is_stored_and_earlier_records_kept(cli_main, tmp_path):
    results = tmp_path / "runs.jsonl"
    assert cli_main("run", *TINY, "--results", str(results), "--json").returncode == 0
    before = results.read_text()
    proc = cli_main("run", *TINY, "--lr", "1e6", "--results", str(results), "--json")
    assert proc.returncode == 1
    assert "run failed: NonFiniteLoss" in proc.stderr
    text = results.read_text()
    assert text.startswith(before)
    records = read_jsonl(results)
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert records[1]["error"].startswith("NonFiniteLoss: loss became nan")
    assert records[1]["config"]["lr"] == 1e6


def test_models_json(cli_main):
    proc = cli_main("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["llama3-8b"]["params"] == 8_030_261_248
    assert rows["llama3-405b"]["params"] == 405_853_388_800
    assert all(r["flops_per_token"] > 6 * r["active_params"] * 0.5 for r in rows.values())


def test_models_and_env_tables(cli_main):
    models = cli_main("models")
    assert models.returncode == 0 and "llama3-70b" in models.stdout
    env = cli_main("env", "--json")
    assert env.returncode == 0, env.stderr
    info = json.loads(env.stdout)
    probes = {p["name"]: p for p in info["backends"]}
    assert probes["cpu"]["available"] and info["environment"]["torch"] == torch.__version__
