"""The mixture-of-experts model on the lazy-tensor path (XLA:CPU, as CI runs the Neuron XLA
lane): static-shape routing traces to one graph per step whatever the tokens route to."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PJRT_DEVICE", "CPU")

from bench.backends.cpu import CpuBackend  # noqa: E402
from bench.backends.xla import XlaBackend  # noqa: E402
from bench.inputs import config  # noqa: E402
from bench.train import runner


def test_moe_tiny_compiles_nothing_in_the_window_and_routes_as_on_cpu(cache_dir):
    cfg = config.resolve("xla", {"model": "moe-tiny", "steps": 6, "warmup": 3,
                                 "precision": "fp32"})
    on_xla = runner.measure(cfg, XlaBackend()).to_json()
    on_cpu = runner.measure(cfg, CpuBackend()).to_json()
    assert on_xla["compilation"]["timed_graphs"] == 0 and not on_xla["warnings"]
    assert on_xla["loss_last"] < on_xla["loss_first"]
    # the same routing decisions (top-k, cumsum ranks, drops) as eager CPU, and losses to the
    # dense lane's tolerance (2.9e-6 seen over these 9 steps)
    assert on_xla["moe"]["dropped_fraction"] == pytest.approx(
        on_cpu["moe"]["dropped_fraction"], abs=1e-7)
    assert on_xla["losses"] == pytest.approx(on_cpu["losses"], abs=5e-5)
    assert on_xla["moe"]["aux_loss"] == pytest.approx(on_cpu["moe"]["aux_loss"], abs=1e-5)
