"""The CPU's peak: a square-GEMM rate measured in the run's own process around its window.

No vendor publishes a usable dense peak for an arbitrary host CPU running PyTorch, so
MFU on the CPU divides by what ``torch.matmul`` itself reaches here:

    rate = 2 n^3 / t_best   (one n x n x n GEMM, best of repeated timings)

A run measures it right before and right after its timed window (``WindowPeak``) and
uses the higher; both and their spread (high - low) / high are stored, and the run is
flagged when they are more than SPREAD_FLAG apart (the CPU was busy with something else)
or when its MFU comes out above 1. The figure is labelled ``measured`` and its source names
the method and host. Across runs, the highest rate seen per host, CPU, threads, torch and
dtype is kept in ``$TRNBENCH_CACHE_DIR/cpu_peak.json`` (default ``~/.cache/trnbench``) only as
a lower bound of the peak: a fresh measurement raises it, a slow one cannot lower it. The
cache is only a hint: a file that is not a regular one (never opened: a FIFO would block),
not JSON, not an object, or an entry that is not a finite rate up to MAX_CPU_FLOPS is
ignored with one warning, and the run measures as if there were none.

bf16 has a peak only on a CPU with bf16 matrix instructions (AVX512-BF16 or AMX). Elsewhere
torch's bf16 GEMM is a fallback whose rate depends on the shape (on a 2-core AMD EPYC with
AVX2: 3.1 GFLOP/s at n = 128, 1.0 at n = 1024, against 180 in fp32), and a training step's
mix of shapes can run faster than any one square GEMM: that is no peak, so there is none
(MFU null).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch

from bench.backends.environment import cpu_model
from bench.backends.hardware import Figure
from bench.inputs.config import PRECISION_DTYPES
from bench.records.store import warn

GEMM_N = 1024
MAX_CPU_FLOPS = 1e16  # 10 PFLOP/s, above any CPU's GEMM rate: a cached rate beyond it is corrupt
MIN_SECONDS = 0.5
MIN_REPEATS = 3


def cache_path() -> Path:
    root = os.environ.get("TRNBENCH_CACHE_DIR") or Path.home() / ".cache" / "trnbench"
    return Path(root) / "cpu_peak.json"


def _cache_key(precision: str) -> str:
    return "|".join(
        (socket.gethostname(), cpu_model(), f"threads={torch.get_num_threads()}",
         f"torch={torch.__version__}", precision)
    )


SPREAD_FLAG = 0.10  # before and after the window further apart than this: flagged


def measure(precision: str, n: int = GEMM_N) -> float:
    """Best observed FLOP/s of an n^3 GEMM in ``precision`` on this CPU."""
    dtype = PRECISION_DTYPES[precision]
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    torch.matmul(a, b)  # first call pays for allocation and kernel selection
    best = float("inf")
    repeats, started = 0, time.perf_counter()
    while repeats < MIN_REPEATS or time.perf_counter() - started < MIN_SECONDS:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
        repeats += 1
    return 2 * n**3 / best


def host_peak(precision: str) -> float:
    """The GEMM rate of the whole host: ``measure`` with one thread per CPU this process may
    run on (a torchrun rank holds one thread by default; several ranks share the host),
    raised to the highest rate seen on the host with as many threads (``measured_peak``),
    as a single-process run's peak is."""
    threads = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    try:
        fresh = measure(precision)
        bound = measured_peak(precision, fresh=fresh)
        return max(fresh, bound.value if bound else 0.0)
    finally:
        torch.set_num_threads(threads)


def has_matrix_units(precision: str) -> bool:
    """Whether this CPU computes ``precision`` GEMMs natively (bf16: AVX512-BF16 or AMX)."""
    if precision != "bf16":
        return True
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def _source(precision: str, n: int = GEMM_N) -> str:
    return (f"torch.matmul {n}^3 {precision}, best of repeats, "
            f"{torch.get_num_threads()} threads on {socket.gethostname()}")


def _read_cache(path: Path) -> tuple[dict[str, Any], str | None]:
    """The cache's entries and why it was ignored (None: it was not)."""
    if not path.exists() and not path.is_symlink():
        return {}, None
    if not path.is_file():
        return {}, "it is not a regular file"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        return {}, f"it cannot be read as JSON ({type(e).__name__})"
    if not isinstance(data, dict):
        return {}, f"it holds a {type(data).__name__}, not an object"
    return data, None


def _rate(entry: Any) -> float | None:
    """A cache entry's rate if it is a finite FLOP/s in (0, MAX_CPU_FLOPS], else None."""
    flops = entry.get("flops") if isinstance(entry, dict) else None
    ok = isinstance(flops, int | float) and not isinstance(flops, bool) and \
        math.isfinite(flops) and 0 < flops <= MAX_CPU_FLOPS
    return float(flops) if ok else None


def measured_peak(precision: str, fresh: float | None = None) -> Figure | None:
    """The highest rate seen on this host in ``precision`` (the cache, raised by ``fresh``;
    measured if neither exists): a lower bound of the peak; None where the CPU has no
    native GEMM of that precision (see the module docstring). An odd cache or entry is
    ignored with one warning."""
    if not has_matrix_units(precision):
        return None
    path = cache_path()
    key = _cache_key(precision)
    cache, ignored = _read_cache(path)
    bound = _rate(cache.get(key))
    if ignored is None and key in cache and bound is None:
        ignored = f"its entry for this host is not a rate up to {MAX_CPU_FLOPS:g} FLOP/s"
    if ignored:
        warn(f"CPU peak cache {path} ignored: {ignored}; the peak is measured afresh")
    if fresh is None and bound is None:
        fresh = measure(precision)
    if bound is not None and (fresh is None or fresh <= bound):
        n = cache[key].get("n")
        return Figure(bound, "FLOP/s", "measured",
                      _source(precision, n if isinstance(n, int) and n > 0 else GEMM_N))
    assert fresh is not None
    if path.is_file() or not (path.exists() or path.is_symlink()):  # a FIFO stays as it is
        cache[key] = {"flops": fresh, "n": GEMM_N, "time": time.time()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache costs a re-measurement next time, nothing else
    return Figure(fresh, "FLOP/s", "measured", _source(precision))


def around_window(precision: str, before: float, after: float) -> tuple[Figure, dict, str | None]:
    """The peak of a run from its rates before and after the window: the higher, raised to
    the host's lower bound (``measured_peak``); the record's ``peak.window`` fields; the
    reason to flag the run, None when the two agree within SPREAD_FLAG."""
    high, low = max(before, after), min(before, after)
    spread = (high - low) / high
    bound = measured_peak(precision, fresh=high)
    value = max(high, bound.value if bound else 0.0)
    source = (f"{_source(precision)}, in the run's process before and after its window: "
              f"{before / 1e9:,.4g} and {after / 1e9:,.4g} GFLOP/s"
              + (f", raised to the host's highest {value / 1e9:,.4g}" if value > high else ""))
    window = {"before": before, "after": after, "spread": spread,
              "host_lower_bound": bound.value if bound else None}
    flag = None
    if spread > SPREAD_FLAG:
        flag = (f"CPU peak {before / 1e9:,.4g} GFLOP/s before and {after / 1e9:,.4g} after "
                f"the window, {spread:.0%} apart (> {SPREAD_FLAG:.0%}): the CPU was busy with "
                "other work; the MFU is uncertain")
    return Figure(value, "FLOP/s", "measured", source), window, flag


class WindowPeak:
    """The rate measured right before a timed window (on creation) and right after it
    (``finish``), for ``around_window``."""

    def __init__(self, precision: str):
        self.precision = precision
        self.before = measure(precision)

    def finish(self) -> tuple[Figure, dict, str | None]:
        return around_window(self.precision, self.before, measure(self.precision))
