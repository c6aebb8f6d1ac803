"""Records that are valid JSON but not what a reader expects (a hand-edited line, an older
schema, a number stored as a string): report, compare and project --from-results skip them
with one warning line each, or render n/a with the reason; never a traceback. And several
results files: compare reads them all, report takes them positionally, a run counts once."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench import cli
from bench.records import store
from bench.records.record import Record
from tests.conftest import bench_json

GOOD = {"schema_version": 1, "time": "2026-01-01T00:00:00+00:00", "status": "ok",
        "error": None, "config": {"model": "tiny", "seq": 32, "precision": "fp32", "batch": 2,
                                  "backend": "cpu"},
        "environment": {"host": "h"}, "tags": {}, "device": {"kind": "cpu", "name": "cpu"},
        "tokens_per_s": 100.0, "tokens_per_s_per_chip": 100.0, "mfu": 0.1,
        "peak": {"precision": "fp32", "value": 1e9}, "model": {"flops_per_token": 1e6},
        "energy": None}
ODD = [  # (record, the reason a reader gives, or None: readable, rendered with n/a)
    ({**GOOD, "run_id": "nochip", "tokens_per_s_per_chip": None, "mfu": None,
      "peak": {"precision": "fp32"},
      "device": {"kind": "cpu", "name": "cpu-b"}}, None),
    ({**GOOD, "run_id": "nodevice", "device": None}, "device is missing or null"),
    ({**GOOD, "run_id": "text", "tokens_per_s": "123"}, "tokens_per_s must be a number >= 0"),
    ({**GOOD, "run_id": "textmfu", "mfu": "0.5"}, "mfu must be a number >= 0 or null"),
    ({"schema_version": 1, "run_id": "old", "status": "ok", "config": "tiny"},
     "config must be an object"),
    ({"schema_version": 2, "status": "failed"}, "run_id is missing or null"),
    ({**GOOD, "run_id": "strdevice", "device": "cpu"}, "device must be an object"),
    ({**GOOD, "run_id": "badj", "energy": {"method": "rapl", "j_per_token": "1"}},
     "energy.j_per_token"),
    ({**GOOD, "run_id": "badrank", "ranks": [{"rank": 0, "step_time": 5}]},
     "ranks[0].step_time must be an object"),
    ({**GOOD, "run_id": "noranks", "world_size": 0}, "world_size must be an integer >= 1"),
    # nested fields, checked against their parts' annotations and rules
    ({**GOOD, "run_id": "formula", "config": {**GOOD["config"], "batch": "=1+1"}},
     "config.batch must be an integer >= 1 and <= 2147483647, got '=1+1'"),
    ({**GOOD, "run_id": "peaktext", "peak": {"value": "fast"}}, "peak.value must be a number"),
    ({**GOOD, "run_id": "steptext", "step_times_s": ["a"]}, "step_times_s[0] must be a number"),
    ({**GOOD, "run_id": "inttime", "time": 1}, "time must be a string"),
    ({**GOOD, "run_id": "huge", "tokens_per_s": 1e308}, "tokens_per_s must be a finite number "
                                                         "below 2^63"),
    ({**GOOD, "run_id": "noseq", "config": {k: v for k, v in GOOD["config"].items()
                                            if k != "seq"}}, "config.seq is missing"),
    ({**GOOD, "run_id": "manyranks", "world_size": 1e30}, "world_size must be an integer"),
    ({**GOOD, "run_id": "v99", "schema_version": 99}, "schema_version must be one of 2"),
    ({**GOOD, "run_id": "v2text", "schema_version": "2"}, "schema_version must be an integer"),
    ({**GOOD, "run_id": "negj", "energy": {"method": "rapl", "joules": -5.0}},
     "energy.joules must be a number >= 0"),
]
DEEP = "[" * 100_000 + "]" * 100_000  # json.loads: RecursionError


@pytest.fixture
def odd(tmp_path, monkeypatch):
    path = tmp_path / "odd.jsonl"
    lines = [json.dumps({**GOOD, "run_id": "good"})] + [json.dumps(r) for r, _ in ODD]
    path.write_text("\n".join([*lines, DEEP]) + "\n")
    monkeypatch.chdir(tmp_path)
    return path


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _expect_warnings(err: str, path) -> list[str]:
    lines = [x for x in err.splitlines() if "skipped" in x]
    expected = [(i + 2, why) for i, (_, why) in enumerate(ODD) if why]
    expected.append((len(ODD) + 2, "corrupt record (nested too deeply)"))
    assert len(lines) == len(expected), err
    for line, (n, why) in zip(lines, expected, strict=True):
        assert line.startswith(f"trnbench: warning: {path.name}:{n}: skipped ") and why in line
    assert "Traceback" not in err
    return lines


def test_report_skips_or_renders_n_a(odd, capsys):
    code, out, err = _main(capsys, "report", odd.name, "--out", "rep")
    assert code == 0, err
    _expect_warnings(err, odd)
    md = (odd.parent / "rep" / "report.md").read_text()
    # tokens/s per chip and MFU: n/a, the reason once as a footnote
    assert "] no peak FLOP/s known for cpu-b in fp32" in md


def test_compare_skips_odd_records(odd, capsys):
    code, out, err = _main(capsys, "compare", "--results", odd.name, "--baseline", "good",
                           "--target", "nochip", "--json")
    assert code == 0, err
    _expect_warnings(err, odd)
    per_chip = json.loads(out)["ratios"][0]
    assert per_chip["ratio"] is None and "tokens/s per chip is null" in per_chip["reason"]


@pytest.mark.parametrize(("run_id", "message"), [("text", "no run 'text'"),
                                                 ("nochip", "has no MFU")])
def test_project_from_results_names_the_problem(odd, capsys, run_id, message):
    code, _, err = _main(capsys, "project", "--workload", "claude-2", "--cluster", "rainier",
                         "--from-results", odd.name, "--run-id", run_id)
    assert code == 2
    _expect_warnings(err, odd)
    assert err.splitlines()[-1].startswith("trnbench: error: --run-id: ") and message in err


def test_project_from_results_takes_the_last_readable_run(odd, capsys):
    code, out, err = _main(capsys, "project", "--workload", "claude-2", "--cluster", "rainier",
                           "--from-results", odd.name, "--json")
    assert code == 0, err
    assert "run good: tiny on cpu" in out


def _record(run_id: str, device: str, tps: float) -> Record:
    return Record.from_json({**GOOD, "run_id": run_id, "device": {"kind": device, "name": device},
                             "tokens_per_s_per_chip": tps})


def test_compare_reads_every_results_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store.append("a.jsonl", _record("base", "cpu", 100.0))
    store.append("b.jsonl", _record("targ", "cpu", 250.0))
    code, out, err = _main(capsys, "compare", "--results", "a.jsonl", "--results", "b.jsonl",
                           "--baseline", "base", "--target", "targ", "--json")
    assert code == 0, err
    assert json.loads(out)["ratios"][0]["ratio"] == pytest.approx(2.5)


def test_report_counts_a_run_once_when_a_file_is_given_twice(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store.append("a.jsonl", _record("one", "cpu", 100.0))
    code, out, err = _main(capsys, "report", "a.jsonl", "--results", "a.jsonl", "--out", "r")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "r" / "report.csv")["run_ids"].tolist() == ["one"]


def test_ingest_twice_stores_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.json").write_text(bench_json())
    assert _main(capsys, "ingest", "b.json", "--results", "r.jsonl")[0] == 0
    code, out, err = _main(capsys, "ingest", "b.json", "--results", "r.jsonl")
    assert code == 0, err
    assert "ingested 0 benchmark(s)" in out and "skipped 1 already stored" in out
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1
