"""The memory model under TP 2 with sequence and loss parallelism: two real torchrun ranks
on gloo count the bytes their forward saves for backward (saved_tensors_hooks count each
rank's storages exactly; the profiler's allocator peak is not used here, as gloo's threads
free buffers the main thread allocated and its per-thread reporter misses those frees)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_tp2_saved_bytes_match_the_plan_on_each_rank(tmp_path):
    out = tmp_path / "saved"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(ROOT / "tests" / "integration" / "memory_tp_ranks.py"), str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        rows = json.loads(Path(f"{out}.{rank}.json").read_text())
        assert len(rows) == 12  # tiny and 125m x fp32, bf16 x none, selective, full
        for row in rows:
            assert row["tp"] == 2
            planned = row["planned"]["activations"] + row["planned"]["logits"]
            assert planned == pytest.approx(row["saved"], rel=0.10), row
            assert row["planned"]["autocast"] == pytest.approx(row["autocast"], rel=0.10,
                                                               abs=1), row
