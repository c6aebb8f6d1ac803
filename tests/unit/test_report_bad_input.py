"""`trnbench report`'s bad input: exit 2, one line naming the field, nothing written (the
report of real records: tests/integration/test_report.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import invoke


def report(records: Path | None, out: Path, *flags: str, cwd: Path | None = None
           ) -> subprocess.CompletedProcess:
    """``trnbench report`` in-process (``invoke``) in ``cwd`` (default: beside ``out``)."""
    args = ("--results", str(records)) if records else ()
    return invoke("report", *args, "--out", str(out), *flags, cwd=cwd or out.parent)


def _one_line_exit_2(proc: subprocess.CompletedProcess, field: str, out: Path) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and field in lines[0], proc.stderr
    assert not out.exists()


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    _one_line_exit_2(report(tmp_path / "absent.jsonl", out), "--results", out)
    (tmp_path / "empty.jsonl").write_text("\n")
    proc = report(tmp_path / "empty.jsonl", out)
    _one_line_exit_2(proc, "--results", out)
    assert "no records" in proc.stderr
    default = report(None, out, cwd=tmp_path)  # results/local.jsonl
    _one_line_exit_2(default, "results/local.jsonl", out)
    (tmp_path / "file").write_text("x")
    _one_line_exit_2(report(tmp_path / "empty.jsonl", tmp_path / "file"), "--out",
                     tmp_path / "nothing")
    _one_line_exit_2(report(tmp_path / "empty.jsonl", out, "--cv-threshold", "-1"),
                     "--cv-threshold", out)
