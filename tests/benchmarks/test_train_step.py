"""Training-step benchmarks, timed by pytest-benchmark through the trnbench plugin's fixture
``train_step_benchmark`` (bench/records/pytest_plugin.py)::

    pytest --benchmark-json=out.json tests/benchmarks    # --trnbench-backend cuda, neuron, ...
    trnbench ingest out.json                              # one record per benchmark

Sizes are those of the test models, so the whole file runs in seconds on a CPU; each round is
two training steps, after one warm-up step outside the timing. Each benchmark checks the figures
it reports against pytest-benchmark's own statistics:

    tokens/s = tokens per round / mean round time      (within 1 %)
    MFU      = FLOPs/token x tokens/s / (stated peak x chips), in (0, 1]
    losses finite, and the last below the first (the steps really train)
"""

from __future__ import annotations

import math

import pytest

BATCH, SEQ, ROUNDS, STEPS_PER_ROUND = 2, 16, 3, 2


@pytest.mark.parametrize("model", ["tiny", "moe-tiny"])
def test_train_step(train_step_benchmark, benchmark, model):
    info = train_step_benchmark(model, batch=BATCH, seq=SEQ, warmup=1, rounds=ROUNDS,
                                steps_per_round=STEPS_PER_ROUND, lr=1e-3)
    if info is None:  # --benchmark-disable: one untimed call, no figures to check
        assert benchmark.disabled
        return
    stats = benchmark.stats.stats
    assert stats.rounds == ROUNDS
    tokens_per_round = BATCH * SEQ * STEPS_PER_ROUND
    assert info["tokens_per_s"] == pytest.approx(tokens_per_round / stats.mean, rel=0.01)
    fields = info["trnbench"]["fields"]
    assert fields["tokens"] == tokens_per_round * ROUNDS
    peak = info["mfu_peak"]
    assert peak["value"] > 0 and peak["label"] and peak["source"]  # a stated peak
    assert 0 < info["mfu"] <= 1
    assert info["mfu"] == pytest.approx(fields["model"]["flops_per_token"] * info["tokens_per_s"]
                                        / (peak["value"] * fields["device"]["chips"]))
    losses = fields["losses"]
    assert len(losses) == 1 + ROUNDS * STEPS_PER_ROUND
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
