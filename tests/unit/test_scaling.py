"""`trnbench scaling` in this process: the efficiency formula, bad input, and the projection
taking a given efficiency. A real weak-scaling series through torchrun (2 gloo ranks), its
records, failed points and the projection consuming it: tests/integration/test_scaling_series.py."""

from __future__ import annotations

import json

import pytest

from bench import cli
from bench.launch import scaling
from bench.records import metrics
from bench.records.record import Record
from tests.conftest import refused

TINY = ("--model", "tiny", "--backend", "cpu", "--batch", "2", "--seq", "16", "--steps", "3",
        "--warmup", "1")
RAINIER = ("--workload", "claude-3.5-sonnet", "--cluster", "rainier", "--node-mfu", "0.4")
PLAN = ("--tp", "16", "--pp", "1", "--dp", "2048", "--sharding", "fsdp")  # fits, DP > 1


def test_efficiency_formula():
    assert metrics.scaling_efficiency({1: 100.0, 2: 180.0, 4: 320.0}) == {
        1: 1.0, 2: 0.9, 4: 0.8}
    # no 1-rank point: relative to the smallest world size
    assert metrics.scaling_efficiency({4: 400.0, 8: 720.0}) == {4: 1.0, 8: 0.9}
    with pytest.raises(ValueError):
        metrics.scaling_efficiency({})
    base, points = scaling.summarize([
        Record.new({}, {}, run_id="a", world_size=2, status="failed", error="x"),
        Record.new({}, {}, run_id="b", world_size=4, tokens_per_s=400.0, mfu=0.1),
        Record.new({}, {}, run_id="c", world_size=8, tokens_per_s=720.0, mfu=None)])
    assert base == 4 and [p["efficiency"] for p in points] == [None, 1.0, 0.9]
    assert points[0]["tokens_per_s"] is None and points[2]["tokens_per_s_per_rank"] == 90.0


@pytest.mark.parametrize(("args", "field"), [
    (("--nproc", "0"), "--nproc"), (("--nproc", "a"), "--nproc"),
    (("--nproc", "4,2"), "--nproc"), (("--nproc", "1,1"), "--nproc"),
    (("--nproc", "1,2", "--batch", "0"), "--batch"), ((), "--nproc"),
    (("--nproc", "1,2", "--tag", "scaling=x"), "--tag"),
    (("--nproc", "1,2", "--series", "a b"), "--series"),
], ids=["zero", "letter", "descending", "repeated", "batch", "missing", "tag", "series"])
def test_bad_input_one_line_exit_2_nothing_written(capsys, tmp_path, args, field):
    results = tmp_path / "r.jsonl"
    assert field in refused(capsys, "scaling", *TINY, *args, "--results", str(results))
    assert not results.exists()


def _project(capsys, *args: str) -> dict:
    assert cli.main(["project", *RAINIER, *PLAN, *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_projection_takes_a_given_efficiency(capsys):
    modelled = _project(capsys)
    rest = modelled["plan"]["step"]["total_s"] - modelled["plan"]["step"]["dp_s"]
    d = _project(capsys, "--scaling-efficiency", "0.8")
    assert d["plan"]["step"]["dp_s"] == pytest.approx(rest * 0.25)
    assert d["efficiency"] == pytest.approx(modelled["plan"]["step"]["compute_s"] / rest * 0.8)
    assert d["days"] == pytest.approx(modelled["days"] * modelled["mfu_at_scale"]
                                      / d["mfu_at_scale"])
    row = next(r for r in d["inputs"] if r["name"] == "data-parallel scaling efficiency")
    assert row == {"name": "data-parallel scaling efficiency", "value": 0.8, "unit": "",
                   "label": "user", "source": "--scaling-efficiency"}
