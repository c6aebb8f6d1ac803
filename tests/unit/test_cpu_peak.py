"""The CPU peak measured in the run's own process around its window; flags; chips on a CPU."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pandas as pd
import pytest
import torch

from bench.backends import gemm_peak
from bench.backends.cpu import CpuBackend
from bench.inputs import config
from bench.records.record import Record
from bench.report import rows
from bench.train import runner
from tests.conftest import OK_CONFIG, invoke, read_jsonl


def _cfg() -> config.RunConfig:
    return config.RunConfig(model="tiny", batch=2, seq=16, steps=2, warmup=1, backend="cpu",
                            precision="fp32")


def _stub_measure(monkeypatch, tmp_path, rates: list[float]) -> list[float]:
    """gemm_peak.measure returning ``rates`` in turn: the host cache's first fill, then the
    measurements before and after the window (a CPU loaded by other work in between)."""
    monkeypatch.setenv("TRNBENCH_CACHE_DIR", str(tmp_path))
    left = list(rates)
    monkeypatch.setattr(gemm_peak, "measure", lambda precision, n=gemm_peak.GEMM_N: left.pop(0))
    return left


def test_a_loaded_cpu_during_the_peak_measurement_is_flagged(monkeypatch, tmp_path):
    left = _stub_measure(monkeypatch, tmp_path, [50e9, 100e9, 20e9])
    fields = runner.measure(_cfg(), CpuBackend()).to_json()
    assert not left  # measured right before and right after the window
    window = fields["peak"]["window"]
    assert (window["before"], window["after"]) == (100e9, 20e9)
    assert window["spread"] == pytest.approx(0.8)
    assert fields["peak"]["value"] == 100e9 and fields["peak"]["label"] == "measured"
    assert len(fields["flags"]) == 1 and "80% apart" in fields["flags"][0]
    row = rows.row("r1", rows.normalise(pd.json_normalize([fields])), 0.05)
    assert row["flagged"] and "80% apart" in row["flag_reason"]


def test_an_mfu_above_1_is_flagged(monkeypatch, tmp_path):
    _stub_measure(monkeypatch, tmp_path, [1e6, 1e6, 1e6])
    fields = runner.measure(_cfg(), CpuBackend()).checked().to_json()  # as stored
    assert fields["mfu"] > 1 and fields["peak"]["window"]["spread"] == 0
    assert [f.split()[0] for f in fields["flags"]] == ["mfu", "hfu"]  # HFU >= MFU
    assert all("is above 1: the peak is below what the run reached" in f
               for f in fields["flags"])


def test_the_host_cache_is_only_a_lower_bound(monkeypatch, tmp_path):
    _stub_measure(monkeypatch, tmp_path, [30e9])
    assert gemm_peak.measured_peak("fp32").value == 30e9
    assert gemm_peak.measured_peak("fp32", fresh=20e9).value == 30e9  # a slow one: no lower
    assert gemm_peak.measured_peak("fp32", fresh=90e9).value == 90e9  # a fresh one raises it
    peak, window, flag = gemm_peak.around_window("fp32", 60e9, 62e9)
    assert peak.value == 90e9 and window["host_lower_bound"] == 90e9 and flag is None


def test_ranks_on_one_cpu_are_one_chip():
    """Two ranks on one host: one chip, whose per-chip throughput is the whole CPU's."""
    rank = Record.new(OK_CONFIG, {"host": "h"}).with_json({
        "device": {"name": "cpu", "kind": "cpu", "chips": 1}, "tokens": 100,
        "window_s": 1.0, "tokens_per_s": 100.0, "peak": {"value": 1e9},
        "model": {"flops_per_token": 1e6, "hardware_flops_per_token": 1e6},
        "memory": {"peak_bytes": 1},
        "step_time": {}, "step_times_s": [], "loss_first": 1.0, "loss_last": 0.5,
        "losses": [1.0, 0.5], "energy": None, "warnings": [], "flags": []})
    out = Record.aggregate([rank, rank])
    assert out.device.chips == 1 and out.tokens_per_s_per_chip == 200
    assert out.mfu == pytest.approx(200 * 1e6 / 2e9)
    two_hosts = Record.aggregate([rank, replace(rank, environment={"host": "g"})])
    assert two_hosts.device.chips == 2


def test_ranks_on_one_cpu_divide_by_one_host_peak():
    """A multi-rank CPU run: MFU against the host's GEMM rate with all its CPUs, measured by
    each host's local rank 0 (peak.window.host), not every rank's one-thread rate (issue 23:
    4 ranks x a one-thread peak put a 2-core host's MFU at half its value)."""
    rank = Record.new(OK_CONFIG, {"host": "h"}).with_json({
        "device": {"name": "cpu", "kind": "cpu", "chips": 1}, "tokens": 100,
        "window_s": 1.0, "tokens_per_s": 100.0,
        "peak": {"value": 1e9, "precision": "fp32", "window": {"host": None}},
        "model": {"flops_per_token": 1e6, "hardware_flops_per_token": 1e6},
        "memory": {"peak_bytes": 1},
        "step_time": {}, "step_times_s": [], "loss_first": 1.0, "loss_last": 0.5,
        "losses": [1.0, 0.5], "energy": None, "warnings": [], "flags": []})
    first = replace(rank, peak=replace(rank.peak, window={"host": 1.5e9}))
    out = Record.aggregate([first, rank, rank, rank])
    assert out.device.chips == 1 and out.peak.value == 1.5e9
    assert out.mfu == pytest.approx(400 * 1e6 / 1.5e9)  # not / (4 x 1e9)
    assert "all CPUs" in out.peak.source
    other = replace(first, environment={"host": "g"}, peak=replace(rank.peak,
                                                                   window={"host": 2.5e9}))
    two = Record.aggregate([first, rank, other, replace(rank, environment={"host": "g"})])
    assert two.device.chips == 2 and two.mfu == pytest.approx(400 * 1e6 / 4e9)
    assert Record.aggregate([rank, rank]).mfu == pytest.approx(200 * 1e6 / 2e9)  # no host rate


def test_host_peak_uses_every_cpu_and_restores_the_threads(monkeypatch, tmp_path):
    """All the host's CPUs, raised to the host's highest rate with as many threads (a busy
    host measures low, as a single-process run's peak is raised)."""
    monkeypatch.setenv("TRNBENCH_CACHE_DIR", str(tmp_path))
    seen, rates = [], [3e9, 1e9]
    monkeypatch.setattr(gemm_peak, "measure", lambda precision: seen.append(
        torch.get_num_threads()) or rates.pop(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert gemm_peak.host_peak("fp32") == 3e9
        assert gemm_peak.host_peak("fp32") == 3e9  # 1e9 now: the host did 3e9 before
        assert seen == [len(os.sched_getaffinity(0))] * 2 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


CORRUPT = {  # what a cache file may hold: each is ignored with one warning
    "a list": "[1, 2]", "a string": '"fast"', "not JSON": "{", "no flops": None,
    "flops 1e300": 1e300, "flops text": "9e10", "flops negative": -1.0, "flops NaN": "NaN"}


@pytest.mark.parametrize("case", [*CORRUPT, "a FIFO"])
def test_an_odd_cpu_peak_cache_is_ignored_with_one_warning(monkeypatch, tmp_path, capsys, case):
    left = _stub_measure(monkeypatch, tmp_path, [40e9])
    path = gemm_peak.cache_path()
    if case == "a FIFO":
        os.mkfifo(path)  # reading it would block forever
    elif case in ("a list", "a string", "not JSON"):
        path.write_text(CORRUPT[case])
    else:  # this host's entry is odd
        entry = {} if CORRUPT[case] is None else {"flops": CORRUPT[case]}
        text = json.dumps({gemm_peak._cache_key("fp32"): entry})
        path.write_text(text.replace('"NaN"', "NaN") if case == "flops NaN" else text)
    peak = gemm_peak.measured_peak("fp32")
    assert peak.value == 40e9 and not left  # measured afresh, as with no cache
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"trnbench: warning: CPU peak cache {path} "
                                                "ignored: ")
    if case != "a FIFO":  # rewritten with the fresh rate (a FIFO is left as it is)
        assert gemm_peak.measured_peak("fp32").value == 40e9 and not capsys.readouterr().err


def test_a_run_with_a_corrupt_cpu_peak_cache_is_ok(cache_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cpu_peak.json").write_text("[]")
    proc = invoke("run", "--backend", "cpu", "--model", "tiny", "--batch", "1", "--seq", "8",
                  "--steps", "1", "--warmup", "0", "--results", str(tmp_path / "r.jsonl"),
                  cwd=tmp_path, env={"TRNBENCH_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    [record] = read_jsonl(tmp_path / "r.jsonl")
    assert record["status"] == "ok" and 1e8 < record["peak"]["value"] < 1e16
