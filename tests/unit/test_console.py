"""The run summary table renders every record the runner can produce, nulls included."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from bench.backends import selection
from bench.inputs import config
from bench.records.record import Record
from bench.report import console
from bench.train import runner


def _text(record: Record) -> str:
    out = Console(record=True, width=200, file=io.StringIO())
    out.print(console.summary_table(record, "r.jsonl"))
    return out.export_text()


def test_summary_with_unknown_chips_and_peak(cache_dir, tmp_path):
    cfg = config.resolve("cpu", {"model": "tiny", "steps": 2, "warmup": 1, "batch": 2,
                                 "seq": 16})
    record = runner.execute(cfg, selection.select("cpu"), tmp_path / "r.jsonl")
    text = _text(record)
    assert "(cpu), 1 chip" in text and "chip(s)" not in text
    assert "+ 1 warm-up step" in text and "1 warm-up steps" not in text
    reason = record.energy.reason
    if reason:  # no RAPL here: the reason is said once, in the energy row
        assert text.count(reason[:40]) == 1
    assert "step times vary" not in _text(replace(record, step_time=replace(record.step_time,
                                                                            cv=0.01)))
    noisy = _text(replace(record, step_time=replace(record.step_time, cv=0.25)))
    assert "step times vary: CV 25.0% over the timed window is above 5%" in noisy
    # a flag is said once, as a warning
    flagged = _text(replace(record, flags=["CPU peak moved"]))
    assert flagged.count("flagged: CPU peak moved") == 1
    # a Neuron device whose topology the runtime did not report: chips, per chip, MFU null
    text = _text(replace(record, device=replace(record.device, chips=None),
                         tokens_per_s_per_chip=None, mfu=None, peak=None))
    assert "chips unknown" in text and "n/a per chip" in text and "MFU" in text


def test_run_progress_on_a_terminal(cache_dir, tmp_path, monkeypatch):
    """On a terminal: the compiling phase, warm-up and timed bars with ETA and live tokens/s."""
    out = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=out, force_terminal=True, width=160))
    cfg = config.resolve("cpu", {"model": "tiny", "steps": 3, "warmup": 2, "batch": 2,
                                 "seq": 16})
    with console.run_progress(True, cfg.tokens_per_step) as progress:
        record = runner.execute(cfg, selection.select("cpu"), tmp_path / "r.jsonl", progress)
    text = out.getvalue()
    assert record.status == "ok"
    assert "compiling (first step)" in text and "warmup" in text and "3/3" in text
    assert "eta" in text and " tokens/s" in text
