"""`trnbench sweep`: real sweeps of the tiny model on the CPU, every run a real subprocess.

The sweep itself runs in-process through ``cli.main`` (its runs are `python -m bench run`
subprocesses all the same); one test runs the whole command as a subprocess. What needs no
run: tests/unit/test_sweep.py.
"""

from __future__ import annotations

import statistics

from bench.backends import environment
from bench.launch import sweep
from bench.records.record import Record
from tests.conftest import read_jsonl, write_sweep

TINY = 'model = "tiny"\nbackend = "cpu"\nbatch = 2\nsteps = 2\nwarmup = 1\n'


def test_grid_runs_every_repeat_tagged_and_resume_runs_only_the_missing(run_sweep, tmp_path):
    path = write_sweep(tmp_path, TINY + 'seq = [16, 32]\nrepeats = 2\nname = "grid"\n')
    code, out, err = run_sweep(str(path))
    assert code == 0, err
    results = tmp_path / "runs.jsonl"
    records = read_jsonl(results)
    assert [r["status"] for r in records] == ["ok"] * 4
    assert [(r["tags"]["point"], r["tags"]["repeat"]) for r in records] == [
        ("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert {(r["tags"]["sweep"], r["tags"]["sweep_file"]) for r in records} == {("grid",
                                                                                str(path))}
    assert len({r["tags"]["sweep_id"] for r in records}) == 1
    assert len({r["run_id"] for r in records}) == 4
    points = sweep.load(path).points
    for r in records:  # the run resolved exactly the sweep's configuration
        assert r["config"] == points[int(r["tags"]["point"])].config.as_dict()
    assert [r["config"]["seq"] for r in records] == [16, 16, 32, 32]
    # stderr is not a terminal: no bar, one line per finished run
    assert "4/4" not in err and sum("ok" in ln and "tokens/s" in ln
                                    for ln in err.splitlines() if ln.startswith("point ")) == 4
    for point in (0, 1):
        tps = [r["tokens_per_s"] for r in records if r["tags"]["point"] == str(point)]
        row = next(line for line in out.splitlines() if line.startswith(f"│ {point} "))
        assert "2/2 ok" in row and f"{statistics.median(tps):,.1f}" in row

    # the sweep was cut off before its last run: --resume runs that one only
    results.write_text("".join(line + "\n" for line in results.read_text().splitlines()[:3]))
    code, out, err = run_sweep(str(path), "--resume")
    assert code == 0, err
    assert "--resume: 3 of 4 run(s) already stored" in err
    resumed = read_jsonl(results)
    assert len(resumed) == 4 and resumed[:3] == records[:3]
    last = resumed[3]
    assert last["status"] == "ok" and last["config"] == records[3]["config"]
    assert (last["tags"]["point"], last["tags"]["repeat"]) == ("1", "1")
    assert last["tags"]["sweep_id"] != records[0]["tags"]["sweep_id"]

    code, out, err = run_sweep(str(path), "--resume")
    assert code == 0 and "4 of 4 run(s) already stored" in err and "0 to run" in err
    assert read_jsonl(results) == resumed


def test_failing_point_is_recorded_and_the_sweep_goes_on(run_sweep, tmp_path):
    path = write_sweep(tmp_path, TINY + "seq = 16\nlr = [1e6, 3e-4]\nrepeats = 1\n")
    code, out, err = run_sweep(str(path))
    assert code == 1
    failed, ok = read_jsonl(tmp_path / "runs.jsonl")
    assert failed["status"] == "failed" and failed["tags"]["point"] == "0"
    assert failed["error"].startswith("NonFiniteLoss") and failed["config"]["lr"] == 1e6
    assert ok["status"] == "ok" and ok["tags"]["point"] == "1" and ok["config"]["lr"] == 3e-4
    assert "NonFiniteLoss" in err and "0/1 ok" in out and "1/1 ok" in out
    # --resume counts ok records only: the failed point runs again, the ok one does not
    loaded = sweep.load(path)
    tasks, done = sweep.plan(loaded, sweep.stored_ok(loaded.results, environment.capture()))
    assert [(t.point.index, t.repeat) for t in tasks] == [(0, 0)]
    assert done == {0: [], 1: [Record.from_json(ok)]}


def test_a_run_that_dies_without_a_record_is_stored_failed_by_the_sweep(run_sweep, tmp_path):
    path = write_sweep(tmp_path, TINY + "seq = [16, 32]\ntimeout_s = 0.5\nrepeats = 1\n")
    code, out, err = run_sweep(str(path))
    assert code == 1
    records = read_jsonl(tmp_path / "runs.jsonl")
    assert [r["tags"]["point"] for r in records] == ["0", "1"]  # the sweep went on
    for r in records:
        assert r["status"] == "failed" and "timeout_s of 0.5 s" in r["error"]
        assert r["backend"]["name"] == "cpu" and r["environment"]["host"]


def test_malformed_file_from_the_command_line(cli, tmp_path):
    (tmp_path / "bad.toml").write_text('[sweep]\nmodel = "tiny"\nbatch = 0\n')
    proc = cli("sweep", "bad.toml")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("trnbench: error: bad.toml:3: batch: must be an integer >= 1 and "
                           "<= 2147483647, got 0\n")
    assert not (tmp_path / "results").exists()


def test_markup_in_the_name_and_results_is_printed_as_text(run_sweep, tmp_path):
    """Rich markup in user text (a sweep name "[/]", a results path) is escaped before it
    is rendered: the sweep ends with its summary, not MarkupError after its records."""
    path = tmp_path / "grid.toml"
    path.write_text('[sweep]\nname = "[/]"\nresults = "r[/b].jsonl"\nrepeats = 1\n' + TINY
                    + "seq = 16\n")
    code, out, err = run_sweep(str(path))
    assert code == 0, err
    [record] = read_jsonl(tmp_path / "r[/b].jsonl")
    assert record["status"] == "ok" and record["tags"]["sweep"] == "[/]"
    assert "sweep [/]: r[/b].jsonl" in out and "records in r[/b].jsonl" in err
