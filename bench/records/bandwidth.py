"""Bandwidths of a collective: the one place they are computed (docs/methodology.md,
"Collectives").

nccl-tests' definitions (doc/PERFORMANCE.md), which nccom-test shares: with S the bytes of
the operation and t its time, algorithm bandwidth algbw = S / t and bus bandwidth busbw =
algbw x the op's factor for n ranks; GB/s is 1e9 bytes per second. S is the buffer for
all-reduce and send/recv, the whole gathered (scattered) array for all-gather
(reduce-scatter), and what one rank sends in all for all-to-all.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

# op -> its bus-bandwidth factor for n ranks (nccl-tests doc/PERFORMANCE.md, src/*.cu)
FACTORS: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "send_recv": lambda n: 1.0,
}
OPS = tuple(FACTORS)
SPLIT_OPS = ("all_gather", "reduce_scatter", "all_to_all")  # S is split in n rank chunks
GB = 1e9
PLATEAU_SIZES = 3  # the large-message plateau: the busbw of the three largest sizes


def busbw_factor(op: str, ranks: int) -> float:
    """The factor from algbw to busbw of ``op`` on ``ranks`` ranks."""
    return FACTORS[op](ranks)


def algbw_gbs(size_bytes: float, time_us: float) -> float:
    """algbw = S / t, in GB/s (1e9 B/s), from bytes and microseconds."""
    return size_bytes / (time_us * 1e-6) / GB


def busbw_gbs(op: str, ranks: int, size_bytes: float, time_us: float) -> float:
    """busbw = algbw x the op's factor, in GB/s."""
    return algbw_gbs(size_bytes, time_us) * busbw_factor(op, ranks)


def plateau(points: Sequence[tuple[int, float]]) -> tuple[float, list[int]]:
    """The large-message bus bandwidth of one op's (size, busbw) points: the median busbw
    of its ``PLATEAU_SIZES`` largest sizes (each size's median over repeats), with those
    sizes. Raises ValueError for no points."""
    if not points:
        raise ValueError("plateau needs at least one point")
    by_size: dict[int, list[float]] = {}
    for size, busbw in points:
        by_size.setdefault(int(size), []).append(float(busbw))
    sizes = sorted(by_size)[-PLATEAU_SIZES:]
    return statistics.median(statistics.median(by_size[s]) for s in sizes), sizes


def size_text(size: int) -> str:
    """Bytes as nccl-tests' users read them: 1 KiB, 4 MiB, 1 GiB."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} B"
