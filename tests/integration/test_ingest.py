"""pytest-benchmark integration end to end: `pytest --benchmark-json` on tests/benchmarks as a
real subprocess (tiny models on the CPU), then `trnbench ingest` of its JSON into records."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.records import store
from tests.conftest import ROOT

BATCH, SEQ, ROUNDS, STEPS_PER_ROUND, WARMUP = 2, 16, 3, 2, 1  # tests/benchmarks' settings


def _outside_xdist() -> dict[str, str]:
    """This environment less an xdist worker's variables, with which pytest-benchmark would
    take the inner run for a worker and time nothing."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}


@pytest.fixture(scope="module")
def bench_json(cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ingest") / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/benchmarks", f"--benchmark-json={out}",
         "--trnbench-backend", "cpu", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, env={**_outside_xdist(), "TRNBENCH_CACHE_DIR": str(cache_dir)},
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_extra_info_holds_the_figures_and_their_methods(bench_json):
    benches = json.loads(bench_json.read_text())["benchmarks"]
    assert sorted(b["name"] for b in benches) == ["test_train_step[moe-tiny]",
                                                   "test_train_step[tiny]"]
    for b in benches:
        info = b["extra_info"]
        assert info["tokens_per_s"] > 0 and "pedantic rounds" in info["tokens_per_s_method"]
        assert 0 < info["mfu"] < 1 and info["mfu_peak"]["label"] == "measured"
        assert info["energy_method"] == "rapl"  # the CPU's meter; null where RAPL is unreadable
        assert (info["j_per_token"] is None) == (info["energy_reason"] is not None)
        assert b["stats"]["rounds"] == ROUNDS


def test_ingest_stores_one_record_per_benchmark(cli, bench_json, tmp_path):
    results = tmp_path / "r.jsonl"
    proc = cli("ingest", str(bench_json), "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    assert "ingested 2 benchmark(s)" in proc.stdout
    data = json.loads(bench_json.read_text())
    df = store.load(results)
    assert len(df) == 2 and set(df["config.model"]) == {"tiny", "moe-tiny"}
    assert set(df["tags.source"]) == {"pytest-benchmark"} and set(df["status"]) == {"ok"}
    records = {r["config"]["model"]: r for r in store.iter_records(results)}
    for model, r in records.items():
        bench = next(b for b in data["benchmarks"] if b["name"].endswith(f"[{model}]"))
        pb = r["pytest_benchmark"]
        assert r["time"][:19] == data["datetime"][:19] and r["schema_version"] == 2
        assert (pb["fullname"], pb["rounds"], pb["steps_per_round"]) == (
            bench["fullname"], ROUNDS, STEPS_PER_ROUND)
        assert pb["round_times_s"] == bench["stats"]["data"]  # pytest-benchmark's own timings
        assert r["tokens"] == BATCH * SEQ * ROUNDS * STEPS_PER_ROUND
        assert r["config"]["steps"] == ROUNDS * STEPS_PER_ROUND
        assert r["tokens_per_s"] == pytest.approx(r["tokens"] / bench["stats"]["total"])
        assert r["step_times_s"] == pytest.approx([t / STEPS_PER_ROUND
                                                    for t in pb["round_times_s"]])
        assert r["mfu"] == pytest.approx(r["model"]["flops_per_token"] * r["tokens_per_s"]
                                         / r["peak"]["value"])
        assert r["backend"]["name"] == "cpu" and r["device"]["kind"] == "cpu"
        assert r["optimizer"]["name"] == "AdamW"  # the runner's execution blocks, as in `run`
        assert len(r["losses"]) == WARMUP + ROUNDS * STEPS_PER_ROUND
        assert all(math.isfinite(v) for v in r["losses"])
        assert r["environment"]["torch"] and "git_commit" in r["environment"]
        e = r["energy"]
        assert e["method"] == "rapl"
        assert e["reason"] if e["joules"] is None else \
            e["j_per_token"] == pytest.approx(e["joules"] / r["tokens"])
    assert "moe" in records["moe-tiny"] and "moe" not in records["tiny"]


def _broken(data: dict, how: str) -> dict:
    d = copy.deepcopy(data)
    second = d["benchmarks"][1]["extra_info"]  # the first is fine: nothing may be appended
    if how == "no-trnbench":
        del second["trnbench"]
    elif how == "no-field":
        del second["trnbench"]["fields"]["tokens_per_s"]
    elif how == "bad-config":
        second["trnbench"]["config"]["model"] = "nope"
    elif how == "bad-time":
        d["datetime"] = "yesterday"
    return d


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"benchmarks": {}}', "no 'benchmarks' list"),
    ('{"benchmarks": [], "datetime": "2026-01-01T00:00:00+00:00"}', "holds no benchmarks"),
    ("no-trnbench", "has no trnbench extra_info"),
    ("no-field", "missing fields.tokens_per_s"),
    ("bad-config", "unknown model 'nope'"),
    ("bad-time", "datetime"),
])
def test_malformed_input_is_one_line_and_writes_nothing(capsys, bench_json, tmp_path, content,
                                                        message):
    bad = tmp_path / "bad.json"
    if content in ("no-trnbench", "no-field", "bad-config", "bad-time"):
        content = json.dumps(_broken(json.loads(bench_json.read_text()), content))
    bad.write_text(content)
    results = tmp_path / "r.jsonl"
    with pytest.raises(SystemExit) as e:
        main(["ingest", str(bad), "--results", str(results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1
    assert str(bad) in err[0] and message in err[0]
    assert not results.exists()


def test_unwritable_results_and_missing_file(capsys, bench_json, tmp_path):
    for args, field in (([str(bench_json), "--results", "/proc/trnbench/r.jsonl"], "--results"),
                        ([str(tmp_path / "none.json"), "--results", str(tmp_path / "r")],
                         "no such file")):
        with pytest.raises(SystemExit) as e:
            main(["ingest", *args])
        assert e.value.code == 2 and field in capsys.readouterr().err
