"""Pure metric functions against hand-computed values."""

from __future__ import annotations

import statistics

import pytest

from bench import metrics


def test_step_stats_hand_computed():
    s = metrics.step_stats([0.4, 0.1, 0.2, 0.3, 0.5])
    assert (s.n, s.min_s, s.max_s, s.median_s) == (5, 0.1, 0.5, 0.3)
    assert s.p90_s == pytest.approx(0.46)  # linear between 0.4 (rank 3) and 0.5 (rank 4)
    assert s.mean_s == pytest.approx(0.3)
    assert s.cv == pytest.approx(statistics.pstdev([0.1, 0.2, 0.3, 0.4, 0.5]) / 0.3)


def test_single_step_and_empty():
    s = metrics.step_stats([0.25])
    assert (s.median_s, s.p90_s, s.cv) == (0.25, 0.25, 0.0)
    with pytest.raises(ValueError):
        metrics.step_stats([])


def test_mfu_formula_and_unknown_peak():
    # 1e9 FLOP/token x 1e5 tokens/s on 2 chips of 1e14 FLOP/s = 50 %
    assert metrics.mfu(1e9, 1e5, 1e14, 2) == pytest.approx(0.5)
    assert metrics.mfu(1e9, 1e5, None, 2) is None
    assert metrics.tokens_per_second(1000, 4.0) == 250
