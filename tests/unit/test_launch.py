"""The one launcher (bench.launch.launcher) of every child run, in this process: the torchrun
command, the flags a ``--nproc`` launcher hands its ranks, the failure message made from
torchrun's report, and the child's record found by its run id. Children that die or get a
signal, as real processes: tests/integration/test_launch_processes.py."""

from __future__ import annotations

import json

from bench import cli
from bench.launch import launcher
from bench.train import command as run_command
from tests.conftest import OK_CONFIG, read_jsonl


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
