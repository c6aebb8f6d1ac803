"""nccom-test's JSON report (``--report-to-json-file FILE``), in the one form its
documentation shows (``tools/neuron-sys-tools/nccom-test.rst``, Neuron 2.24 to 2.32):

    {"results": [{"size(B)": 1024, "count(elems)": 256, "type": "fp32",
                  "algbw(GB/s)": 0.1655..., "busbw(GB/s)": 0.1603..., "time:avg(us)": 6.19}, ...]}

The keys are the text table's column headers (``time(us)`` in older releases; with
``--stats`` one ``time:STAT(us)`` key per statistic, of which the average is read). The
report names neither the op, nor the ranks, nor the nodes, nor the device: the command
line that ran it does, so ``trnbench ingest`` takes them as flags. ``size(B)`` is S as
nccl-tests defines it (the whole gathered array for all-gather).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.inputs.errors import ConfigError

# nccom-test's op names (and trnbench's own) -> trnbench's
OPS = {"allr": "all_reduce", "all_reduce": "all_reduce", "allg": "all_gather",
       "all_gather": "all_gather", "redsct": "reduce_scatter",
       "reduce_scatter": "reduce_scatter", "alltoall": "all_to_all", "all_to_all": "all_to_all",
       "sendrecv": "send_recv", "send_recv": "send_recv"}
TIME_KEYS = ("time:avg(us)", "time(us)")


@dataclass
class Row:
    size: int
    count: int | None
    type: str | None
    time_us: float
    algbw: float | None
    busbw: float | None


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0


def parse(data: Any, where: str) -> list[Row]:
    """The rows of a report; ConfigError naming ``where`` and the row when it is not one."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or not results:
        raise ConfigError(where, "no 'results' list: not an nccom-test --report-to-json-file "
                          "report")
    rows = []
    for i, r in enumerate(results):
        at = f"results[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(where, f"{at} is not an object")
        key = next((k for k in TIME_KEYS if k in r), None)
        if key is None:
            raise ConfigError(where, f"{at} has no time: expected one of {', '.join(TIME_KEYS)}")
        size = r.get("size(B)")
        if not (_positive(size) and float(size).is_integer()):
            raise ConfigError(where, f"{at}.size(B) must be a whole number of bytes > 0, got "
                              f"{size!r}")
        if not _positive(r[key]):
            raise ConfigError(where, f"{at}.{key} must be a number > 0, got {r[key]!r}")
        count = r.get("count(elems)")
        rows.append(Row(size=int(size), count=int(count) if _positive(count) else None,
                        type=r.get("type") if isinstance(r.get("type"), str) else None,
                        time_us=float(r[key]),
                        algbw=r.get("algbw(GB/s)") if _positive(r.get("algbw(GB/s)")) else None,
                        busbw=r.get("busbw(GB/s)") if _positive(r.get("busbw(GB/s)")) else None))
    return rows
