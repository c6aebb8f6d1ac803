"""`trnbench scaling`: a real weak-scaling series through torchrun (2 gloo ranks), its
efficiency from the records, failed points, a series name already taken, and the projection
consuming it (the formula and bad input, in this process: tests/unit/test_scaling.py)."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace

import pytest
from rich.console import Console

from bench import cli
from bench.launch import scaling
from bench.records import store
from bench.records.record import Record
from tests.conftest import invoke, read_jsonl, refused

TINY = ("--model", "tiny", "--backend", "cpu", "--batch", "2", "--seq", "16", "--steps", "3",
        "--warmup", "1")
RAINIER = ("--workload", "claude-3.5-sonnet", "--cluster", "rainier", "--node-mfu", "0.4")
PLAN = ("--tp", "16", "--pp", "1", "--dp", "2048", "--sharding", "fsdp")  # fits, DP > 1


def _scaling(cache_dir, cwd, *args: str) -> subprocess.CompletedProcess:
    """``trnbench scaling`` in-process; its points are real processes (run, torchrun)."""
    return invoke("scaling", *args, cwd=cwd,
                  env={"TRNBENCH_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": None})


@pytest.fixture(scope="module")
def series(cache_dir, tmp_path_factory):
    """One real series, nproc 1 then 2: (its JSON summary, its results file)."""
    tmp = tmp_path_factory.mktemp("series")
    results = tmp / "r.jsonl"
    proc = _scaling(cache_dir, tmp, *TINY, "--nproc", "1,2", "--json", "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), results


def test_series_records_and_efficiency(series):
    summary, results = series
    records = read_jsonl(results)
    assert [r["world_size"] for r in records] == [1, 2]
    assert all(r["status"] == "ok" and r["tags"] == {"scaling": summary["series"]}
               for r in records)
    one, two = records
    # weak scaling: the batch is per rank, so 2 ranks process twice the tokens
    assert one["config"]["batch"] == two["config"]["batch"] == summary["batch_per_rank"] == 2
    assert two["tokens"] == 2 * one["tokens"] == 2 * 2 * 16 * 3
    assert summary["baseline_nproc"] == 1 and summary["model"] == "tiny"
    p1, p2 = summary["points"]
    assert (p1["nproc"], p2["nproc"]) == (1, 2)
    assert (p1["run_id"], p2["run_id"]) == (one["run_id"], two["run_id"])
    assert p1["efficiency"] == 1.0
    assert p2["efficiency"] == pytest.approx((two["tokens_per_s"] / 2) / one["tokens_per_s"])
    assert p2["tokens_per_s"] == two["tokens_per_s"]
    assert p2["tokens_per_s_per_rank"] == pytest.approx(two["tokens_per_s"] / 2)
    assert p2["mfu"] == two["mfu"] and p2["status"] == "ok" and p2["error"] is None
    # cpu: one thread per rank at every point, so 1 rank does not get all the cores
    assert any("OMP_NUM_THREADS=1" in n for n in summary["notes"])
    assert one["device"]["versions"]["threads"] == two["device"]["versions"]["threads"] == "1"
    # the table shows the same figures, and what the efficiency is against
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(scaling.table(summary))
    text = console.export_text()
    assert "efficiency vs 1 rank" in text and "batch 2 per rank" in text
    assert f"{p2['efficiency']:.1%}" in text and f"{two['tokens_per_s']:,.1f}" in text


def test_failed_points_are_shown_and_the_series_goes_on(cache_dir, tmp_path):
    results = tmp_path / "r.jsonl"
    proc = _scaling(cache_dir, tmp_path, *TINY, "--nproc", "1,2", "--lr", "1e6",
                    "--series", "diverges", "--results", str(results))
    assert proc.returncode == 1
    records = read_jsonl(results)
    assert [(r["world_size"], r["status"]) for r in records] == [(1, "failed"), (2, "failed")]
    assert all(r["tags"] == {"scaling": "diverges"} and "NonFiniteLoss" in r["error"]
               for r in records)
    rows = [line for line in proc.stdout.splitlines() if "failed: rank" in line]
    assert len(rows) == 2 and "n/a" in rows[0]
    assert "nproc 1, 2 failed" in proc.stderr


def test_an_existing_series_name_is_refused(capsys, series):
    summary, results = series
    before = results.read_text()
    err = refused(capsys, "scaling", *TINY, "--nproc", "1,2", "--series", summary["series"],
                  "--results", str(results))
    assert "--series" in err and "already has records" in err
    assert results.read_text() == before


def _project(capsys, *args: str) -> dict:
    assert cli.main(["project", *RAINIER, *PLAN, *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_projection_takes_the_measured_efficiency(capsys, series):
    summary, results = series
    one, two = read_jsonl(results)
    measured = (two["tokens_per_s"] / 2) / one["tokens_per_s"]
    modelled = _project(capsys)["plan"]["step"]
    rest = modelled["total_s"] - modelled["dp_s"]  # compute, TP, PP, bubble: still modelled
    assert modelled["dp_s"] > 0

    # a CPU series carried to Trainium2 only when asked, and then as an assumption
    d = _project(capsys, "--scaling-from", str(results), "--allow-other-device")
    row = next(r for r in d["inputs"] if r["name"] == "data-parallel scaling efficiency")
    assert row["value"] == pytest.approx(measured) and row["label"] == "assumption"
    assert summary["series"] in row["source"] and str(results) in row["source"]
    assert one["run_id"] in row["source"] and two["run_id"] in row["source"]
    e = min(measured, 1.0)  # a measured efficiency above 1 is taken as 1 (no DP overhead)
    step = d["plan"]["step"]
    assert step["total_s"] == pytest.approx(rest / e)
    assert step["dp_s"] == pytest.approx(rest * (1 - e) / e, abs=1e-12)
    assert d["mfu_at_scale"] == pytest.approx(0.4 * modelled["compute_s"] / (rest / e))
    assert any("assumption scaling efficiency" in n for n in d["notes"])
    assert any("--allow-other-device" in n for n in d["notes"])


def test_projection_refuses_what_it_cannot_use(capsys, series, tmp_path):
    _, results = series
    lone = tmp_path / "lone.jsonl"
    first = Record.from_json(read_jsonl(results)[0])
    store.append(lone, first)  # the series' 1-rank record alone
    plain = tmp_path / "plain.jsonl"
    store.append(plain, replace(first, tags={}))
    base = ("--workload", "claude-3.5-sonnet", "--cluster", "rainier")
    cases = [
        ((*base, "--mfu", "0.4", "--scaling-efficiency", "0.9"), "--scaling-efficiency"),
        ((*base, "--mfu", "0.4", "--scaling-from", str(results)), "--scaling-from"),
        ((*RAINIER, "--scaling-efficiency", "1.5"), "--scaling-efficiency"),
        ((*RAINIER, "--series", "x"), "--series"),
        ((*RAINIER, "--scaling-from", str(results), "--series", "nope"), "--series"),
        ((*RAINIER, "--scaling-from", str(lone)), "1 ok run"),
        ((*RAINIER, "--scaling-from", str(plain)), "no scaling series"),
        ((*RAINIER, "--scaling-from", str(tmp_path / "none.jsonl")), "no such file"),
        ((*RAINIER, "--scaling-efficiency", "0.9", "--dp-overlap", "0.5"), "--dp-overlap"),
        ((*RAINIER, "--scaling-from", str(results)), "not on the projected AWS Trainium2"),
        ((*RAINIER, "--allow-other-device"), "--allow-other-device"),
    ]
    for args, expected in cases:
        assert expected in refused(capsys, "project", *args), args
