"""Pure metric functions against hand-computed values."""

from __future__ import annotations

import statistics

import pytest

from bench.records import metrics


def test_step_stats_hand_computed():
    s = metrics.step_stats([0.4, 0.1, 0.2, 0.3, 0.5])
    assert (s["n"], s["min_s"], s["max_s"], s["median_s"]) == (5, 0.1, 0.5, 0.3)
    assert s["p90_s"] == pytest.approx(0.46)  # linear between 0.4 (rank 3) and 0.5 (rank 4)
    assert s["mean_s"] == pytest.approx(0.3)
    assert s["cv"] == pytest.approx(statistics.pstdev([0.1, 0.2, 0.3, 0.4, 0.5]) / 0.3)


def test_single_step_and_empty():
    s = metrics.step_stats([0.25])
    assert (s["median_s"], s["p90_s"], s["cv"]) == (0.25, 0.25, 0.0)
    with pytest.raises(ValueError):
        metrics.step_stats([])


def test_mfu_formula_and_unknown_peak():
    # 1e9 FLOP/token x 1e5 tokens/s on 2 chips of 1e14 FLOP/s = 50 %
    assert metrics.mfu(1e9, 1e5, 1e14, 2) == pytest.approx(0.5)
    assert metrics.mfu(1e9, 1e5, None, 2) is None
    assert metrics.tokens_per_second(1000, 4.0) == 250


def test_repeat_stats_olympic_mean_and_flag():
    r = metrics.repeat_stats([10.0, 1.0, 12.0, 11.0, 30.0])
    assert (r.n, r.median, r.min, r.max) == (5, 11.0, 1.0, 30.0)
    assert r.olympic_mean == pytest.approx(11.0)  # 1 and 30 dropped: mean of 10, 11, 12
    assert r.cv == pytest.approx(statistics.pstdev([1, 10, 11, 12, 30]) / 12.8)
    assert r.flagged
    steady = metrics.repeat_stats([100.0, 101.0])
    assert steady.olympic_mean == 100.5 and not steady.flagged  # below 3 runs: plain mean
    assert metrics.repeat_stats([1.0, 1.1], cv_flag=0.01).flagged
    with pytest.raises(ValueError):
        metrics.repeat_stats([])
