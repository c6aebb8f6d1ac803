"""The verbs that do not train start without torch: `--help` of every verb, `models`,
`project`, `report` and `compare` (start-up times: scripts/startup_bench.py), in a fresh
interpreter. The CLI's backend names, which it keeps so as not to import the backends, match
their registry: tests/unit/test_startup_names.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "cpu" / "2026-11-25.jsonl"

# in a fresh interpreter: each command through bench.cli.main, then which heavy modules loaded
PROBE = """
import contextlib, io, json, sys
from bench import cli
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    assert code in (0, None), (argv, code)
print(json.dumps(sorted(m for m in ("torch", "models.llama", "bench.train.runner",
                                      "bench.backends.selection", "bench.backends.base")
                        if m in sys.modules)))
"""


def test_non_run_verbs_import_no_torch(tmp_path):
    verbs = ("project", "report", "compare", "models", "ingest", "sweep", "scaling", "env",
             "run")
    commands = [["--help"], *([v, "--help"] for v in verbs), ["models"],
                ["project", "--workload", "claude-3.5-sonnet", "--cluster", "rainier",
                 "--node-mfu", "0.4"],
                ["report", "--results", str(RESULTS), "--out", str(tmp_path / "report")],
                ["compare", "--results", str(RESULTS), "--baseline", "config.model=tiny,"
                 "world_size=1,tags.sweep=cpu-baseline", "--target", "config.model=tiny,"
                 "world_size=2", "--allow-mismatch", "--json"]]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert (tmp_path / "report" / "report.md").exists()
