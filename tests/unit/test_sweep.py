"""`trnbench sweep` in this process: resume's choice of stored records, a dry run, the run flags
of a point, and malformed sweep files. Real sweeps of the tiny model on the CPU, every run a
real subprocess: tests/integration/test_sweep_runs.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.backends import environment
from bench.cli import build_parser
from bench.inputs import config
from bench.launch import sweep
from bench.records import store
from bench.records.record import Device, Record
from tests.conftest import OK_CONFIG, write_sweep


def test_resume_counts_a_line_copied_twice_once(tmp_path, cache_dir):
    env = environment.capture()
    record = Record.new(OK_CONFIG, env, world_size=1, tokens_per_s=1.0,
                        device=Device(name="cpu", kind="cpu"))
    path = tmp_path / "r.jsonl"
    path.write_text((store.dumps(record) + "\n") * 2)
    [(key, runs)] = sweep.stored_ok(path, env).items()
    assert runs == [Record.from_json(record.to_json())]


def test_resume_ignores_records_of_another_environment(tmp_path, cache_dir):
    env = environment.capture()
    record = Record.new(OK_CONFIG, env, world_size=1, tokens_per_s=1.0,
                        device=Device(name="cpu", kind="cpu"))  # an ok record readers use
    other = replace(record, environment={**env, "host": "elsewhere"})
    ranks = replace(record, world_size=2)
    path = tmp_path / "r.jsonl"
    path.write_text("".join(store.dumps(r) + "\n" for r in (record, other, ranks)))
    stored = Record.from_json(record.to_json())
    key = tuple(sorted(OK_CONFIG.items()))
    assert dict(sweep.stored_ok(path, env)) == {key: [stored]}
    assert dict(sweep.stored_ok(path, {**env, "git_commit": "another"})) == {key: [stored]}


def test_dry_run_prints_resolved_points_and_runs_nothing(run_sweep, tmp_path):
    path = write_sweep(tmp_path, 'model = "tiny"\nbackend = ["auto", "cpu"]\nprecision = ["fp32", '
                           '"bf16"]\n')
    code, out, err = run_sweep(str(path), "--dry-run")
    assert code == 0, err
    # auto resolves to cpu: duplicates dropped; 3 repeats by default (metrics.MIN_REPEATS)
    assert "2 point(s) x 3 repeat(s)" in out
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert len(rows) == 2 and "fp32" in rows[0] and "bf16" in rows[1]
    assert "│     8 │  64 │" in rows[0]  # the tiny model's own batch and seq
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


def test_run_flags_resolve_to_the_point(tmp_path):
    path = write_sweep(tmp_path, 'model = "tiny"\nbackend = "cpu"\ncompile = true\nlr = 1\n'
                                 'seed = 3\nenergy = "none"\nseq = 48\n')
    (point,) = sweep.load(path).points
    assert point.config.lr == 1.0 and isinstance(point.config.lr, float)
    args = build_parser().parse_args(["run", *config.to_argv(point.config)])
    for field, value in point.config.as_dict().items():
        assert getattr(args, field) == value, field


MALFORMED = [
    ('model = "tiny"\nbatch = [2,\n', 4, "batch", "malformed TOML"),
    ('model = tiny\nseq = 16\n', 3, "model", "malformed TOML: Invalid value (at line 3"),
    ('model = "tiny"\nbatchsize = 2\n', 4, "batchsize", "unknown field; accepted: model, "),
    ('model = "tiny"\n\n# comment\nbatch = [2, 0]\n', 6, "batch",
     "must be an integer >= 1 and <= 2147483647, got 0"),
    ('model = ["tiny", "nope"]\n', 3, "model", "unknown model 'nope'; accepted: tiny, "),
    ('model = "tiny"\nseq = [16, 4096]\n', 4, "seq", "above the maximum of tiny"),
    ('backend = "tpu"\n', 3, "backend", "unknown backend 'tpu'; accepted: auto"),
    ('repeats = 0\n', 3, "repeats", "must be an integer >= 1"),
    ('model = []\n', 3, "model", "an empty list gives no points"),
    ('[extra]\nx = 1\n', 3, "extra", "a sweep file holds one [sweep] table"),
]


@pytest.mark.parametrize(("body", "line", "field", "message"), MALFORMED)
def test_malformed_file_is_one_line_with_file_line_and_field(run_sweep, tmp_path, capsys, body,
                                                           line, field, message):
    path = write_sweep(tmp_path, body, "bad.toml")
    with pytest.raises(SystemExit) as exit_:
        run_sweep(str(path))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"trnbench: error: {path}:{line}: {field}: "), err
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]  # nothing written
