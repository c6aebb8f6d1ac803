"""The runner in-process: real training on the CPU, data, peak caching, unknown peaks (a step
compiled by inductor: tests/integration/test_runner_compiled.py)."""

from __future__ import annotations

import json

import pytest
import torch

from bench.backends import gemm_peak, selection
from bench.backends.cpu import CpuBackend
from bench.inputs import config
from bench.train import runner
from bench.train.data import NOISE, SyntheticBatches, bigram_sequences


def _cfg(**kw):
    base = {"model": "tiny", "steps": 30, "warmup": 3}
    return config.resolve("cpu", {**base, **kw})


def test_tiny_model_learns_the_synthetic_data(cache_dir):
    result = runner.measure(_cfg(), CpuBackend()).to_json()
    assert result["loss_last"] < result["loss_first"] - 1.0
    assert result["step_time"]["n"] == 30 and len(result["step_times_s"]) == 30
    assert sum(result["step_times_s"]) <= result["window_s"]


def test_bigram_data_is_seeded_and_learnable():
    a = bigram_sequences(16, 50, 97, seed=1)
    assert torch.equal(a, bigram_sequences(16, 50, 97, seed=1))
    assert not torch.equal(a, bigram_sequences(16, 50, 97, seed=2))
    # the most frequent successor of each token explains ~(1 - NOISE) of transitions
    pairs = torch.stack([a[:, :-1].flatten(), a[:, 1:].flatten()], 1)
    counts = torch.zeros(97, 97)
    counts.index_put_((pairs[:, 0], pairs[:, 1]), torch.ones(len(pairs)), accumulate=True)
    explained = counts.max(1).values.sum() / counts.sum()
    assert explained > 1 - NOISE - 0.05


def test_batches_are_shifted_views_of_one_stream():
    data = SyntheticBatches(2, 8, 50, seed=0, device=torch.device("cpu"), pool=3)
    inputs, targets = data[4]
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert data[1] is data[4]


class UnknownChipBackend(CpuBackend):
    """A device that is not in the hardware table: it reports no peak."""

    def peak_flops(self, precision):
        return None


def test_unknown_peak_gives_null_mfu_and_a_warning():
    result = runner.measure(_cfg(steps=2, warmup=1), UnknownChipBackend()).to_json()
    assert result["mfu"] is None and result["peak"] is None
    assert any("MFU is null" in w for w in result["warnings"])


def test_cpu_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TRNBENCH_CACHE_DIR", str(tmp_path))
    first = gemm_peak.measured_peak("fp32")
    assert first.label == "measured" and first.value > 1e8
    assert "torch.matmul" in first.source

    def must_not_measure(*a, **k):
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(gemm_peak, "measure", must_not_measure)
    assert gemm_peak.measured_peak("fp32").value == first.value
    cached = json.loads((tmp_path / "cpu_peak.json").read_text())
    assert len(cached) == 1 and next(iter(cached)).endswith("|fp32")


def test_auto_prefers_cuda_then_cpu_and_says_why():
    chosen = selection.select("auto")
    if torch.cuda.is_available():
        assert chosen.backend.name == "cuda"
    else:
        assert chosen.backend.name == "cpu"
        assert chosen.reason.startswith("auto chose cpu")
        assert "skipped neuron (" in chosen.reason and "cuda (" in chosen.reason


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precisions_train(precision, cache_dir):
    result = runner.measure(_cfg(precision=precision, steps=10), CpuBackend()).to_json()
    assert result["loss_last"] < result["loss_first"]
