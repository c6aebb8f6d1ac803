"""`trnbench compare --out DIR` on two stored sets of the measured CPU sweep (1 rank with 2
threads against 2 ranks with 1 thread each): compare.md/.csv/.html and compare.png, the
speedup column in the report's number formats, and a warning for every configuration field
that differs. In-process through the CLI's entry point."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.cli import main
from bench.report import cells
from tests.conftest import ROOT, parse_tables

RESULTS = ROOT / "results" / "cpu" / "2026-11-25.jsonl"
BASE = "model=tiny,world_size=1,tags.sweep=cpu-baseline"  # 3 runs, 2 threads
TARGET = "model=tiny,world_size=2"  # 1 run, 2 ranks of 1 thread


def test_compare_writes_md_csv_html_with_speedups_and_warnings(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--results", str(RESULTS), "--baseline", BASE, "--target", TARGET,
                 "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    # 1 rank of batch 2 against 2 ranks of batch 2: no loss curves to pair, so no loss.png
    assert {p.name for p in out.iterdir()} == {"compare.md", "compare.csv", "compare.html",
                                               "compare.png"}
    warnings = result["warnings"]
    assert "threads per process differs (device.versions.threads): baseline 2, target 1" in \
        warnings
    assert "world size differs (world_size): baseline 1, target 2" in warnings
    assert f"{TARGET!r}: 1 run, fewer than 3: too few to publish (repeat the configuration at " \
           "least 3 times)" in warnings
    loss = [w for w in warnings if w.startswith("loss curves")]
    assert loss == ["loss curves not compared: no runs of the two sides share model, seq, "
                    "global batch, lr, seed, data (global batch 2 against 4): their loss curves "
                    "are not comparable"]
    assert result["losses"]["pairs"] == []
    assert not any("nodes" in w or "batch" in w or "torch" in w
                   for w in warnings if w not in loss)  # equal

    csv = pd.read_csv(out / "compare.csv")
    per_chip = csv.set_index("figure").loc["per chip"]
    assert per_chip["speedup"] == pytest.approx(per_chip["target"] / per_chip["baseline"])
    md = (out / "compare.md").read_text()
    headers, aligns, rows = parse_tables(md)[1]
    assert headers[4] == "speedup (target / baseline)" and aligns[2:5] == ["right"] * 3
    row = dict(zip(headers, rows[0], strict=True))
    assert row["baseline"] == cells.count(per_chip["baseline"])
    assert row["speedup (target / baseline)"] == cells.num(per_chip["speedup"]) == "0.436"
    assert all(w in md for w in warnings) and "n/a [1]" in md
    page = (out / "compare.html").read_text()
    assert 'class="num"' in page and "data:image/png;base64," in page and "http" not in page
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG")
