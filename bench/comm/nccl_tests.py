"""nccl-tests' text output (the stdout of ``all_reduce_perf`` and its siblings), in the
layouts of its source (github.com/NVIDIA/nccl-tests: ``src/util.cu`` from 2.18,
``src/common.cu`` before; the ``redop``/``root`` columns from 2.11 or so):

    # nccl-tests version 2.19.6 nccl-headers=22907 nccl-library=22907     (from 2.17.4)
    # Collective test starting: all_reduce_perf                           (from 2.16.7)
    # nThread 1 nGpus 8 minBytes 8 maxBytes 134217728 step: 2(factor) warmup iters: 1 iters: 20 ...
    #  Rank  0 Group  0 Pid   4242 on trnbench-0 device  0 [0000:18:00] NVIDIA H100 80GB HBM3
    #       size         count      type   redop    root     time   algbw   busbw  #wrong ...
            8             2     float     sum      -1    24.00    0.00    0.00       0 ...
    # Avg bus bandwidth    : 66.7871

A row is ``size count type [redop [root]]`` then two groups, out-of-place and in-place, of
``time algbw busbw #wrong`` (8 columns each with ``-I 1``; a timestamp after them with
``-S 1``): read from the right. A file may hold several tests one after the other: each
``# nThread`` line starts one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bench.inputs.errors import ConfigError

PROGRAMS = {"all_reduce_perf": "all_reduce", "all_gather_perf": "all_gather",
            "reduce_scatter_perf": "reduce_scatter", "alltoall_perf": "all_to_all",
            "sendrecv_perf": "send_recv"}
TYPES = {"float": "fp32", "bfloat16": "bf16", "half": "fp16", "double": "fp64"}
DEVICE = re.compile(r"^#\s+Rank\s+(\d+)\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+"
                    r"\s+\[[^\]]*\]\s+(.*?)\s*$")
SETTINGS = re.compile(r"warmup iters: (\d+) iters: (\d+)")
VERSION = re.compile(r"^# nccl-tests version (\S+)(?:.*nccl-library=(\d+))?")
STARTING = re.compile(r"^# Collective test starting: (\S+)")
AVERAGE = re.compile(r"^# Avg bus bandwidth\s*:\s*([0-9.eE+-]+)")


@dataclass
class Row:
    size: int
    count: int
    type: str
    time_us: float
    algbw: float
    busbw: float
    wrong: int | None
    in_place_time_us: float


@dataclass
class Test:
    """One test of a file: what its header says, and its rows."""

    program: str | None = None
    version: str | None = None
    nccl: str | None = None  # the NCCL library version, 2.29.7 from 22907
    warmup: int | None = None
    iters: int | None = None
    ranks: dict[int, tuple[str, str]] = field(default_factory=dict)  # rank -> (host, device)
    rows: list[Row] = field(default_factory=list)
    avg_busbw: float | None = None

    @property
    def op(self) -> str | None:
        return PROGRAMS.get(self.program or "")


def _nccl_version(code: str) -> str:
    """NCCL_VERSION_CODE as a version: 22907 -> 2.29.7 (major x 10000 + minor x 100 + patch
    since 2.9; major x 1000 + minor x 100 + patch before)."""
    n = int(code)
    return (f"{n // 10000}.{n // 100 % 100}.{n % 100}" if n >= 10000 else
            f"{n // 1000}.{n // 100 % 10}.{n % 100}")


def _number(token: str, line: int, field_: str, where: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ConfigError(where, f"line {line}: {field_} {token!r} is not a number") from None


def _row(tokens: list[str], group: int, timestamp: bool, line: int, where: str) -> Row:
    if timestamp:
        tokens = tokens[:-2]  # "%Y-%m-%d %H:%M:%S"
    if len(tokens) < 3 + 2 * group:
        raise ConfigError(where, f"line {line}: {len(tokens)} columns, expected size, count, "
                          f"type and two groups of {group} (out-of-place, in-place)")
    oop, inplace = tokens[-2 * group:-group], tokens[-group:]
    wrong = None if oop[3] == "N/A" else int(_number(oop[3], line, "#wrong", where))
    return Row(size=int(tokens[0]), count=int(tokens[1]), type=tokens[2],
               time_us=_number(oop[0], line, "time", where),
               algbw=_number(oop[1], line, "algbw", where),
               busbw=_number(oop[2], line, "busbw", where), wrong=wrong,
               in_place_time_us=_number(inplace[0], line, "in-place time", where))


def parse(text: str, where: str) -> list[Test]:
    """Every test of a file of nccl-tests output; ConfigError naming ``where`` and the line
    when it holds none or a row cannot be read."""
    tests: list[Test] = []
    pending = Test()  # header lines before the first "# nThread" line
    group, timestamp = 4, False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if line.startswith("#"):
            if m := VERSION.match(line):
                pending.version, code = m[1], m[2]
                pending.nccl = _nccl_version(code) if code else None
            elif m := STARTING.match(line):
                pending.program = m[1]
            elif line.startswith("# nThread"):
                m = SETTINGS.search(line)
                test = Test(program=pending.program, version=pending.version,
                            nccl=pending.nccl, warmup=int(m[1]) if m else None,
                            iters=int(m[2]) if m else None)
                tests.append(test)
                pending = Test()
            elif (m := DEVICE.match(line)) and tests:
                tests[-1].ranks[int(m[1])] = (m[2], m[3])
            elif "algbw" in line and "busbw" in line:
                group = 8 if "i_min" in line else 4
                timestamp = "timestamp" in line
            elif (m := AVERAGE.match(line)) and tests:
                tests[-1].avg_busbw = float(m[1])
            continue
        tokens = stripped.split()
        if not tokens or not tokens[0].isdigit():
            continue
        if not tests:
            raise ConfigError(where, f"line {number}: a table row before nccl-tests' "
                              "'# nThread ...' header line")
        tests[-1].rows.append(_row(tokens, group, timestamp, number, where))
    tests = [t for t in tests if t.rows]
    if not tests:
        raise ConfigError(where, "no nccl-tests table rows (lines of size, count, type, ... "
                          "after a '# nThread' header)")
    return tests
