"""Training-step benchmarks, timed by pytest-benchmark through the trnbench plugin's fixture
``train_step_benchmark`` (bench/pytest_plugin.py)::

    pytest --benchmark-json=out.json tests/benchmarks    # --trnbench-backend cuda, neuron, ...
    trnbench ingest out.json                              # one record per benchmark

Sizes are those of the test models, so the whole file runs in seconds on a CPU; each round is
two training steps, after one warm-up step outside the timing.
"""

from __future__ import annotations

import pytest

BATCH, SEQ, ROUNDS, STEPS_PER_ROUND = 2, 16, 3, 2


@pytest.mark.parametrize("model", ["tiny", "moe-tiny"])
def test_train_step(train_step_benchmark, model):
    info = train_step_benchmark(model, batch=BATCH, seq=SEQ, warmup=1, rounds=ROUNDS,
                                steps_per_round=STEPS_PER_ROUND)
    if info is not None:  # None under --benchmark-disable: nothing was timed
        assert info["trnbench"]["fields"]["tokens"] == BATCH * SEQ * ROUNDS * STEPS_PER_ROUND
