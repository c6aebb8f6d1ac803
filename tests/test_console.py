"""The run summary table renders every record the runner can produce, nulls included."""

from __future__ import annotations

import io

from rich.console import Console

from bench import backends, config, console, runner


def _text(record: dict) -> str:
    out = Console(record=True, width=200, file=io.StringIO())
    out.print(console.summary_table(record, "r.jsonl"))
    return out.export_text()


def test_summary_with_unknown_chips_and_peak(cache_dir, tmp_path):
    cfg = config.resolve("cpu", {"model": "tiny", "steps": 2, "warmup": 1, "batch": 2,
                                 "seq": 16})
    record = runner.execute(cfg, backends.select("cpu"), tmp_path / "r.jsonl")
    assert "1 chip(s)" in _text(record)
    # a Neuron device whose topology the runtime did not report: chips, per chip, MFU null
    record["device"]["chips"] = None
    record.update(tokens_per_s_per_chip=None, mfu=None, peak=None)
    text = _text(record)
    assert "chips unknown" in text and "n/a per chip" in text and "MFU" in text
