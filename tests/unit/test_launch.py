"""The one launcher (bench.launch.launcher) of every child run, in this process: the torchrun
command, the flags a ``--nproc`` launcher hands its ranks, the failure message made from
torchrun's report, the child's record found by its run id, and the run id a child takes
from its launcher only. Children that die or get a signal, as real processes:
tests/integration/test_launch_processes.py."""

from __future__ import annotations

import json
import os

import pytest

from bench import cli
from bench.launch import child, launcher
from bench.train import command as run_command
from tests.conftest import OK_CONFIG, invoke, read_jsonl


def test_torchrun_command():
    cmd = launcher.Torchrun(8, 2, 1, "h:1").command(["--json"])
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=8"]
    assert "--rdzv-endpoint=h:1" in cmd and "--standalone" not in cmd
    assert not any(a.startswith("--node-rank") for a in cmd)  # c10d ignores it
    assert cmd[-4:] == ["-m", "bench", "run", "--json"]
    assert "--standalone" in launcher.Torchrun(2).command([])
    assert launcher.Torchrun(8, 2, 1, "h:1").world_size == 16
    # the node that ran global rank 0 stores the record, whatever its --node-rank says
    assert launcher.Torchrun(8, 2, 1, "h:1").stores_record({0, 1})
    assert not launcher.Torchrun(8, 2, 0, "h:1").stores_record({2, 3})
    # no worker started here: the node given --node-rank 0 (or none) stands in
    assert launcher.Torchrun(2).stores_record(set())
    assert not launcher.Torchrun(8, 2, 1, "h:1").stores_record(set())


def test_run_nproc_passes_its_run_flags_on(tmp_path):
    """The ranks' `bench run` flags resolve to the launcher's configuration, with its output,
    profiling, results and tags, and none of its launch or config-file flags."""
    (tmp_path / "run.toml").write_text('[run]\nmodel = "tiny"\nseq = 16\n')
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--config", str(tmp_path / "run.toml"), "--nproc", "2",
                              "--json", "--profile", "--profile-steps", "2", "--tag", "a=b",
                              "--batch", "2"])
    cfg, _ = run_command.resolve_run(args)
    argv = launcher._argv(cfg, tmp_path / "r.jsonl", {"a": "b"}, run_command._passed_flags(args))
    child = parser.parse_args(["run", *argv])
    assert run_command.resolve_run(child)[0] == cfg and child.config is None and child.nproc is None
    assert (child.json, child.no_projection, child.profile, child.profile_steps) == (
        True, False, True, 2)
    assert (child.results, child.tag) == (str(tmp_path / "r.jsonl"), ["a=b"])


def _failure(rank: int, code: int) -> str:
    return f"[{rank}]:\n  rank      : {rank} (local_rank: {rank})\n  exitcode  : {code} (pid: 9)\n"


def test_failure_message_names_the_cause():
    said = "trnbench: rank 0 failed: RuntimeError: Connection reset by peer\n"
    # rank 3 was killed from outside; rank 0 then lost its peer; rank 2 was stopped by torchrun
    report = (said + "Failures:\n" + _failure(2, -15) + _failure(3, -9)
              + "Root Cause (first observed failure):\n" + _failure(0, 1))
    assert launcher.failure_message(report, 1) == (
        "rank 3 failed: killed by SIGKILL; then rank 0: RuntimeError: Connection reset by peer "
        "(torchrun exit code 1)")
    # no signal: torchrun's root cause, with that rank's own line
    nan = ("trnbench: rank 1 failed: NonFiniteLoss: loss became nan at step 2\n"
           "Root Cause (first observed failure):\n" + _failure(1, 1))
    assert launcher.failure_message(nan, 1) == (
        "rank 1 failed: NonFiniteLoss: loss became nan at step 2 (torchrun exit code 1)")
    # a rank that said it failed and then aborted on its way out is not "killed"
    aborted = ("trnbench: rank 0 failed: NonFiniteLoss: loss became nan at step 2\n"
               + _failure(0, -6) + "Root Cause (first observed failure):\n" + _failure(0, -6))
    assert launcher.failure_message(aborted, 1).startswith("rank 0 failed: NonFiniteLoss")
    assert launcher.failure_message("", 1).startswith("a rank failed")


def test_an_unusable_record_of_the_child_is_found_and_not_stored_twice(tmp_path):
    """The launcher finds the child's record by its run id whatever it holds: a record that
    readers cannot use is reported as failed, and no stand-in is appended beside it."""
    results = tmp_path / "runs.jsonl"
    results.write_text(json.dumps({"schema_version": 2, "run_id": "abc", "status": "ok",
                                   "config": OK_CONFIG, "world_size": 0}) + "\n")
    found = launcher._find(results, "abc")
    assert (found.run_id, found.status) == ("abc", "failed")
    assert "its stored record is unusable: world_size must be" in found.error
    assert len(read_jsonl(results)) == 1


@pytest.mark.parametrize("value", ["../../evil", "x/y", "[bold]x[/]", "a" * 5000,
                                   "ABCDEF012345"])
def test_a_run_id_not_in_a_launchers_format_is_ignored(monkeypatch, capsys, value):
    monkeypatch.setenv(child.RUN_ID_ENV, value)
    monkeypatch.setenv(child.LAUNCHER_ENV, child.identity(os.getppid()))  # a real ancestor
    assert child.take_run_id() is None
    err = capsys.readouterr().err
    assert err.startswith("trnbench: warning: TRNBENCH_RUN_ID=") and len(err) < 300
    assert "ignored: not a run id a trnbench launcher makes" in err
    assert child.RUN_ID_ENV not in os.environ and child.LAUNCHER_ENV not in os.environ


@pytest.mark.parametrize("launcher_env", [None, "1:0", "999999999:1"])
def test_a_run_id_left_exported_is_ignored(monkeypatch, capsys, launcher_env):
    """No launcher, or one that is not an ancestor of this process (a dead one's pid, init)."""
    monkeypatch.setenv(child.RUN_ID_ENV, "0123456789ab")
    if launcher_env is None:
        monkeypatch.delenv(child.LAUNCHER_ENV, raising=False)
    else:
        monkeypatch.setenv(child.LAUNCHER_ENV, launcher_env)
    assert child.take_run_id() is None
    assert "ignored: no trnbench launcher above this process set it" in capsys.readouterr().err


def test_the_launchers_run_id_is_taken_once(monkeypatch, capsys):
    monkeypatch.setenv(child.RUN_ID_ENV, "0123456789ab")
    monkeypatch.setenv(child.LAUNCHER_ENV, child.identity(os.getppid()))
    assert child.take_run_id() == "0123456789ab"
    assert child.take_run_id() is None  # a process this one starts does not inherit it
    assert capsys.readouterr().err == ""


def test_runs_under_a_stale_run_id_get_fresh_ones(cache_dir, tmp_path):
    """TRNBENCH_RUN_ID left exported: each run stores its own id (readers would count runs
    sharing one once); a path in it no longer fails --profile's trace name."""
    results = tmp_path / "r.jsonl"
    args = ("run", "--backend", "cpu", "--model", "tiny", "--batch", "1", "--seq", "8",
            "--steps", "1", "--warmup", "0", "--results", str(results), "--json")
    for stale in ("0123456789ab", "../../evil"):
        proc = invoke(*args, *(("--profile", "--profile-steps", "1") if "/" in stale else ()),
                      cwd=tmp_path, env={child.RUN_ID_ENV: stale,
                                         "TRNBENCH_CACHE_DIR": str(cache_dir)})
        assert proc.returncode == 0, proc.stderr
        assert f"{child.RUN_ID_ENV}=" in proc.stderr and "ignored" in proc.stderr
    first, second = read_jsonl(results)
    assert first["status"] == second["status"] == "ok"
    assert len({first["run_id"], second["run_id"], "0123456789ab"}) == 3
    assert (tmp_path / f"r-{second['run_id']}.trace.json").is_file()
