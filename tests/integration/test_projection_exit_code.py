"""`trnbench project` as a real `python -m bench` subprocess: bad input exits 2 with one line
(the rest of `trnbench project`: tests/unit/test_projection.py)."""

from __future__ import annotations

import subprocess
import sys

RAINIER = ("--workload", "claude-3.5-sonnet", "--cluster", "rainier")


def test_subprocess_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "project", *RAINIER, "--mfu", "9"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "--mfu" in proc.stderr
