"""What `trnbench comm` measures: ops, message sizes, dtype and iterations, checked before
any process starts. A leaf of the comm stage: no torch.

Sizes are powers of two from MIN to MAX (``--sizes MIN:MAX``), each with an optional K, M or G
(x 1024, as nccl-tests reads ``-b``/``-e``). An op that splits S into one chunk per rank
(all-gather, reduce-scatter, all-to-all) uses S rounded down to a whole element per rank, as
nccl-tests does; the record holds the bytes used.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from bench.inputs.errors import ConfigError
from bench.records.bandwidth import OPS, SPLIT_OPS
from bench.records.record import COMM_KIND

DTYPE_BYTES = {"fp32": 4, "bf16": 2}
BACKENDS = ("neuron", "cuda", "cpu")  # eager process groups: neuron, nccl, gloo (auto order)
DEFAULT_SIZES = {"cpu": "1K:16M"}  # gloo moves a GiB in seconds: the CPU default stops at 16M
ACCELERATOR_SIZES = "1K:1G"  # nccl-tests' and nccom-test's documented large-message end
MAX_BYTES = 2**34  # 16 GiB: more than any device's buffer of one collective
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
SIZE = re.compile(r"(\d+)\s*([KMG]?)I?B?", re.I)
BUFFERS = 3  # the memory check: S bytes x this per rank (input, output, the check's buffer)


@dataclass(frozen=True)
class CommConfig:
    """One `trnbench comm` run (stored whole in the record's ``config``, with kind comm)."""

    backend: str
    ops: tuple[str, ...]
    sizes: str  # MIN:MAX as given
    dtype: str
    warmup: int
    iters: int
    dist_timeout_s: float

    @property
    def element_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def size_list(self) -> list[int]:
        return parse_sizes(self.sizes)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": COMM_KIND, **dataclasses.asdict(self), "ops": list(self.ops)}

    def to_argv(self) -> list[str]:
        """``trnbench comm`` flags that give exactly this configuration."""
        return ["--backend", self.backend, "--ops", ",".join(self.ops), "--sizes", self.sizes,
                "--dtype", self.dtype, "--warmup", str(self.warmup), "--iters", str(self.iters),
                "--dist-timeout", repr(self.dist_timeout_s)]


def parse_size(text: str, field: str = "--sizes") -> int:
    """``"4M"`` -> 4194304: an integer with an optional K, M or G (x 1024; a trailing B or
    iB is allowed, as nccom-test writes ``1kb``)."""
    m = SIZE.fullmatch(text.strip())
    if not m:
        raise ConfigError(field, f"expected a size like 1K, 4M or 1G (K = 1024), got {text!r}")
    return int(m[1]) * UNITS[m[2].upper()]


def _show(size: int) -> str:
    for unit in ("G", "M", "K"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)


def parse_sizes(spec: str) -> list[int]:
    """``"1K:4M"`` -> [1024, 2048, ..., 4194304]: powers of two from MIN to MAX (one size
    alone: ``"4M"``), each in 1 B .. 16G."""
    low_text, _, high_text = spec.partition(":")
    low = parse_size(low_text)
    high = parse_size(high_text) if high_text else low
    for size, text in ((low, low_text), (high, high_text or low_text)):
        if not 1 <= size <= MAX_BYTES or size & (size - 1):
            raise ConfigError("--sizes", f"{text.strip()!r} is not a power of two from 1 to "
                              f"{_show(MAX_BYTES)} bytes")
    if low > high:
        raise ConfigError("--sizes", f"MIN {low_text.strip()} is above MAX {high_text.strip()}")
    return [2**k for k in range(low.bit_length() - 1, high.bit_length())]


def parse_ops(spec: str) -> tuple[str, ...]:
    """``"all_reduce,all_gather"`` -> the ops, in the order given, each once."""
    ops = [o.strip() for o in spec.split(",") if o.strip()]
    unknown = [o for o in ops if o not in OPS]
    if unknown or not ops:
        raise ConfigError("--ops", f"unknown op {unknown[0] if unknown else spec!r}; "
                          f"accepted: {', '.join(OPS)} (comma-separated)")
    return tuple(dict.fromkeys(ops))


def make(backend: str, ops: str | None, sizes: str | None, dtype: str, warmup: int,
         iters: int, dist_timeout_s: float) -> CommConfig:
    """The checked configuration of the flags (warm-up, iterations and timeout are checked
    by their flags' parsers); ``None`` ops or sizes take the defaults."""
    if dtype not in DTYPE_BYTES:
        raise ConfigError("--dtype", f"unknown dtype {dtype!r}; accepted: "
                          f"{', '.join(DTYPE_BYTES)}")
    cfg = CommConfig(backend=backend, ops=parse_ops(ops) if ops else OPS,
                     sizes=sizes or DEFAULT_SIZES.get(backend, ACCELERATOR_SIZES), dtype=dtype,
                     warmup=warmup, iters=iters, dist_timeout_s=float(dist_timeout_s))
    parse_sizes(cfg.sizes)  # checked now, before any process starts
    return cfg


def point_bytes(op: str, size: int, ranks: int, element: int) -> tuple[int, int]:
    """(S, elements of S) that ``op`` moves for a requested ``size`` on ``ranks`` ranks:
    whole elements, and for a split op whole elements per rank (0: none fit)."""
    unit = element * (ranks if op in SPLIT_OPS else 1)
    count = (size // unit) * (unit // element)
    return count * element, count


def check_world(cfg: CommConfig, ranks: int) -> None:
    """ConfigError unless every op has at least one element per rank at the smallest size."""
    smallest = cfg.size_list[0]
    for op in cfg.ops:
        if point_bytes(op, smallest, ranks, cfg.element_bytes)[0] == 0:
            need = cfg.element_bytes * (ranks if op in SPLIT_OPS else 1)
            raise ConfigError("--sizes", f"{_show(smallest)} B is below one {cfg.dtype} element "
                              f"per rank for {op} on {ranks} ranks: the smallest size must be "
                              f">= {need} B")
