"""The CPU's peak: a measured square-GEMM rate, cached per host, CPU, threads, torch and dtype.

No vendor publishes a usable dense peak for an arbitrary host CPU running PyTorch, so
MFU on the CPU divides by what ``torch.matmul`` itself reaches here:

    rate = 2 n^3 / t_best   (one n x n x n GEMM, best of repeated timings)

The figure is labelled ``measured`` and its source names the method and host. The cache
file is ``$TRNBENCH_CACHE_DIR/cpu_peak.json`` (default ``~/.cache/trnbench``).

bf16 has a peak only on a CPU with bf16 matrix instructions (AVX512-BF16 or AMX). Elsewhere
torch's bf16 GEMM is a fallback whose rate depends on the shape (on a 2-core AMD EPYC with
AVX2: 3.1 GFLOP/s at n = 128, 1.0 at n = 1024, against 180 in fp32), and a training step's
mix of shapes can run faster than any one square GEMM: that is no peak, so there is none
(MFU null).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import torch

from bench.config import PRECISION_DTYPES
from bench.environment import cpu_model
from bench.hardware import Figure

GEMM_N = 1024
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


def has_matrix_units(precision: str) -> bool:
    """Whether this CPU computes ``precision`` GEMMs natively (bf16: AVX512-BF16 or AMX)."""
    if precision != "bf16":
        return True
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def measured_peak(precision: str) -> Figure | None:
    """The cached measurement for this host and ``precision``, measured once if absent; None
    where the CPU has no native GEMM of that precision (see the module docstring)."""
    if not has_matrix_units(precision):
        return None
    path = cache_path()
    key = _cache_key(precision)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(key)
    if entry is None:
        entry = {"flops": measure(precision), "n": GEMM_N, "time": time.time()}
        cache[key] = entry
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache costs a re-measurement next time, nothing else
    source = (
        f"torch.matmul {entry['n']}^3 {precision}, best of repeats, "
        f"{torch.get_num_threads()} threads on {socket.gethostname()}"
    )
    return Figure(float(entry["flops"]), "FLOP/s", "measured", source)
