"""The run summary table renders every record the runner can produce, nulls included."""

from __future__ import annotations

import io
import statistics
from dataclasses import replace

import pytest
from rich.console import Console

from bench.backends import selection
from bench.backends.base import HostClockTimer
from bench.backends.cpu import CpuBackend
from bench.inputs import config
from bench.records.record import Record
from bench.report import console
from bench.train import runner
from tests.conftest import read_jsonl


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
    # a flag is said once, as a warning
    flagged = _text(replace(record, flags=["CPU peak moved"]))
    assert flagged.count("flagged: CPU peak moved") == 1
    # a Neuron device whose topology the runtime did not report: chips, per chip, MFU null
    text = _text(replace(record, device=replace(record.device, chips=None),
                         tokens_per_s_per_chip=None, mfu=None, peak=None))
    assert "chips unknown" in text and "n/a per chip" in text and "MFU" in text


class FixedTimer(HostClockTimer):
    """The host clock's timer with given per-step times (a noisy or a steady window)."""

    times: list[float] = []

    def step_times(self) -> list[float]:
        return list(self.times)


@pytest.mark.parametrize(("times", "warned"), [([0.01, 0.01, 0.02], True),
                                               ([0.01, 0.0102, 0.0099], False)])
def test_step_time_cv_warning_is_stored_in_the_record(cache_dir, tmp_path, monkeypatch, times,
                                                      warned):
    """A timed window whose step times vary by more than metrics.CV_FLAG: the warning is in
    the stored record (what report and compare read), and the summary says it once."""
    monkeypatch.setattr(FixedTimer, "times", times)
    monkeypatch.setattr(CpuBackend, "step_timer", lambda self, steps: FixedTimer(steps))
    cfg = config.resolve("cpu", {"model": "tiny", "steps": 3, "warmup": 1, "batch": 2,
                                 "seq": 16})
    runner.execute(cfg, selection.select("cpu"), tmp_path / "r.jsonl")
    stored = Record.from_json(read_jsonl(tmp_path / "r.jsonl")[0])
    cv = statistics.pstdev(times) / statistics.fmean(times)
    assert stored.step_time.cv == pytest.approx(cv)
    note = f"step times vary: CV {cv:.1%} over the timed window is above 5%"
    assert any(w.startswith(note) for w in stored.warnings) is warned
    assert _text(stored).count("step times vary") == warned


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
