"""The `trnbench` command as real subprocesses, the way a user starts them: a run through
``python -m bench`` (the ``cli`` fixture), and the console script. The verbs in-process:
tests/unit/test_cli.py; bad input from a fresh interpreter: test_bad_input_entry_point.py."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import read_jsonl

TINY = ("--model", "tiny", "--batch", "4", "--seq", "32", "--warmup", "2", "--steps", "4")


def test_run_json_prints_and_stores_one_record(cli, tmp_path):
    results = tmp_path / "runs.jsonl"
    proc = cli("run", *TINY, "--backend", "cpu", "--json", "--results", str(results),
               "--tag", "sweep=s1", "--tag", "note=a=b")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert read_jsonl(results) == [record]
    assert record["tags"] == {"sweep": "s1", "note": "a=b"}
    assert record["status"] == "ok" and record["error"] is None
    assert record["schema_version"] == 2
    assert record["world_size"] == 1
    assert record["config"]["model"] == "tiny" and record["config"]["steps"] == 4
    assert record["tokens"] == 4 * 32 * 4
    assert record["tokens_per_s"] == pytest.approx(record["tokens"] / record["window_s"])
    assert 0 < record["mfu"] < 1
    assert record["peak"]["label"] == "measured" and record["peak"]["precision"] == "fp32"
    assert record["model"]["flops_formula"] == "6N+12LHQT"
    assert len(record["step_times_s"]) == 4 and record["step_time"]["method"] == "host-clock"
    assert math.isfinite(record["loss_first"]) and math.isfinite(record["loss_last"])
    assert record["warmup"]["first_step_s"] > 0
    assert record["memory"]["peak_bytes"] > 0
    env = record["environment"]
    assert env["host"] and env["torch"] == torch.__version__ and "git_commit" in env


def test_console_script_is_the_same_command(tmp_path):
    exe = shutil.which("trnbench", path=str(Path(sys.executable).parent))
    assert exe, "the trnbench console script is installed next to the interpreter"
    proc = subprocess.run([exe, "models", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["name"] == "tiny"
