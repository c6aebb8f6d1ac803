"""Throughput, MFU and step-time statistics: pure functions, the one place they are computed.

Definitions: docs/methodology.md, "Statistics of steps, repeats and series"."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass


def step_stats(times: Sequence[float]) -> dict[str, float]:
    """Statistics of per-step times in seconds (at least one): ``n``, ``median_s``, ``p90_s``,
    ``min_s``, ``max_s``, ``mean_s`` and ``cv``, the fields of the record's ``StepTime``
    (bench.records.record.StepTime.of)."""
    if not times:
        raise ValueError("step_stats needs at least one step time")
    ordered = sorted(times)
    mean = statistics.fmean(ordered)
    return {
        "n": len(ordered),
        "median_s": statistics.median(ordered),
        "p90_s": percentile(ordered, 0.9),
        "min_s": ordered[0],
        "max_s": ordered[-1],
        "mean_s": mean,
        "cv": statistics.pstdev(ordered) / mean if mean > 0 else 0.0,
    }


CV_FLAG = 0.05
"""Coefficient of variation over repeats above which a figure is flagged (5%)."""

MIN_REPEATS = 3
"""Runs of one configuration below which no interval is given and a table warns: with 2 runs
t(0.975, 1) = 12.7 gives an interval wider than any spread they show (docs/methodology.md)."""


@dataclass(frozen=True)
class RepeatStats:
    n: int
    median: float
    olympic_mean: float
    min: float
    max: float
    cv: float
    flagged: bool  # cv > the threshold it was computed with

    def as_dict(self) -> dict:
        return asdict(self)


def repeat_stats(values: Sequence[float], cv_flag: float = CV_FLAG) -> RepeatStats:
    """Statistics of one figure over repeated runs of one configuration (at least one)."""
    if not values:
        raise ValueError("repeat_stats needs at least one value")
    ordered = sorted(values)
    mean = statistics.fmean(ordered)
    cv = statistics.pstdev(ordered) / mean if mean else 0.0
    return RepeatStats(
        n=len(ordered),
        median=statistics.median(ordered),
        olympic_mean=statistics.fmean(ordered[1:-1]) if len(ordered) >= 3 else mean,
        min=ordered[0],
        max=ordered[-1],
        cv=cv,
        flagged=cv > cv_flag,
    )


# two-sided 95% quantiles t(0.975, df) of Student's t for df = 1..30 (any statistics table,
# e.g. NIST/SEMATECH e-Handbook of Statistical Methods, section 1.3.6.7.2)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
CI_METHOD = "95% t-interval of the mean over repeats: mean +- t(0.975, n-1) x s / sqrt(n)"


def t975(df: int) -> float:
    """t(0.975, df); beyond the table the Cornish-Fisher expansion about z = 1.95996
    (Abramowitz & Stegun 26.7.5), within 1e-3 of the exact quantile for df > 30."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci95(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t-interval (low, high) of the mean of ``values``; None below ``MIN_REPEATS``."""
    if len(values) < MIN_REPEATS:
        return None
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean - half, mean + half


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, linear between closest ranks (numpy's default)."""
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def tokens_per_second(tokens: int, seconds: float) -> float:
    return tokens / seconds


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops_per_chip: float | None,
        chips: float) -> float | None:
    """Model FLOPs utilisation; None when the peak is unknown (never a guessed peak)."""
    if peak_flops_per_chip is None or peak_flops_per_chip <= 0 or chips <= 0:
        return None
    return flops_per_token * tokens_per_s / (peak_flops_per_chip * chips)


def scaling_efficiency(tokens_per_s: Mapping[int, float]) -> dict[int, float]:
    """Scaling efficiency of each world size of a weak-scaling series (batch per rank fixed).

    ``tokens_per_s`` maps world size N to the global tokens/s T_N of its measured run;
    E(N) = (T_N / N) / (T_b / b), b = min(N) the baseline (E(b) = 1). With a 1-rank point
    this is tokens/s per rank against one rank; 1 is perfect scaling, below 1 the share of
    per-rank throughput lost to communication and synchronisation.
    """
    if not tokens_per_s:
        raise ValueError("scaling_efficiency needs at least one measured world size")
    if any(n < 1 for n in tokens_per_s):
        raise ValueError(f"world sizes must be >= 1, got {sorted(tokens_per_s)}")
    base = min(tokens_per_s)
    per_rank = tokens_per_s[base] / base
    return {n: t / n / per_rank for n, t in sorted(tokens_per_s.items())}
