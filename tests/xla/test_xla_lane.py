"""The legacy Neuron code path (torch-xla lazy tensors) on XLA:CPU, as CI runs it.

Runs in .venv-xla (torch 2.9.0 + torch-xla 2.9.0, PJRT_DEVICE=CPU): the same backend
class as neuron-xla, minus the Neuron runtime.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("PJRT_DEVICE", "CPU")

from bench.backends.cpu import CpuBackend  # noqa: E402
from bench.backends.xla import XlaBackend  # noqa: E402
from bench.inputs import config  # noqa: E402
from bench.train import runner
from bench.train.data import SyntheticBatches  # noqa: E402

LOSS_ATOL = 5e-5
"""fp32 losses of XLA:CPU vs eager CPU over 11 steps, same seed, same weights (built on the
host), same data: XLA fuses and reorders float ops, so they agree to a few 1e-6 (3.3e-6
seen), not bitwise; 5e-5 absolute on losses near 6 allows that and nothing more."""


def _cfg(**kw):
    return config.resolve("xla", {"model": "tiny", "steps": 8, "warmup": 3, **kw})


def test_cli_run_compiles_nothing_in_the_timed_window(cli, tmp_path):
    results = tmp_path / "r.jsonl"
    proc = cli("run", "--backend", "xla", "--model", "tiny", "--steps", "10", "--warmup", "3",
               "--json", "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["status"] == "ok" and record["backend"]["name"] == "xla"
    assert record["compilation"]["timed_graphs"] == 0
    compilation = record["compilation"]
    assert compilation["warmup_graphs"] >= 1 and compilation["warmup_compile_s"] > 0
    assert record["step_time"]["method"] == "window-average"
    assert record["device"]["versions"]["torch-xla"].startswith("2.")
    assert record["loss_last"] < record["loss_first"]
    assert not record["warnings"]


def test_losses_match_eager_cpu_in_fp32(cache_dir):
    cfg = _cfg(precision="fp32")
    on_xla = runner.measure(cfg, XlaBackend()).to_json()["losses"]
    on_cpu = runner.measure(cfg, CpuBackend()).to_json()["losses"]
    assert len(on_xla) == len(on_cpu) == 11
    assert on_xla == pytest.approx(on_cpu, abs=LOSS_ATOL)


class ShrinkingBatches(SyntheticBatches):
    """Data whose sequence length changes inside the timed window (step 5 on)."""

    def __getitem__(self, step):
        inputs, targets = super().__getitem__(step)
        if step >= 5:
            return inputs[:, :-8], targets[:, :-8]
        return inputs, targets


def test_shape_change_between_steps_is_caught_and_reported(cache_dir, monkeypatch):
    monkeypatch.setattr(runner, "SyntheticBatches", ShrinkingBatches)
    result = runner.measure(_cfg(), XlaBackend()).to_json()
    assert result["compilation"]["timed_graphs"] >= 1
    assert any("timed window compiled" in w for w in result["warnings"])


def test_bf16_autocast_trains(cache_dir):
    result = runner.measure(_cfg(precision="bf16", steps=10), XlaBackend()).to_json()
    assert result["compilation"]["timed_graphs"] == 0
    assert result["loss_last"] < result["loss_first"]
    assert torch.isfinite(torch.tensor(result["losses"])).all()


def test_two_ranks_are_refused_with_the_reason(cli, tmp_path):
    """XLA:CPU has no collectives across processes (pytorch/xla issues #5005, #9089): two
    torchrun ranks end as one failed record that says so, instead of hanging."""
    results = tmp_path / "r.jsonl"
    proc = cli("run", "--backend", "xla", "--model", "tiny", "--batch", "2", "--seq", "16",
               "--steps", "2", "--warmup", "1", "--nproc", "2", "--results", str(results))
    assert proc.returncode == 1
    [record] = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["status"] == "failed" and record["world_size"] == 2
    assert "does not run several processes here" in record["error"]
