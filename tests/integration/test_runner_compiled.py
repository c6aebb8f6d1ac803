"""The runner with a compiled step: torch.compile's inductor generates C++ for the CPU and
builds it with the system compiler, as processes (the runner without compiling:
tests/unit/test_runner.py)."""

from __future__ import annotations

from bench.backends.cpu import CpuBackend
from bench.inputs import config
from bench.train import runner


def _cfg(**kw):
    base = {"model": "tiny", "steps": 30, "warmup": 3}
    return config.resolve("cpu", {**base, **kw})


def test_compiled_step_trains(cache_dir):
    result = runner.measure(_cfg(steps=3, warmup=2, compile=True, seq=32, batch=4),
                            CpuBackend()).to_json()
    assert result["loss_last"] < result["loss_first"]
    assert result["warmup"]["first_step_s"] > result["step_time"]["median_s"]
