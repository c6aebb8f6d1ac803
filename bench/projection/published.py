"""The published training runs of ``published_runs.toml``: shapes, plans, systems and the
figure each source published, as the step model reads them (docs/projection.md,
"Calibration")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tomllib

from bench.backends import hardware
from bench.projection import comm
from bench.projection.workload import Shape, custom_shape

PATH = Path(__file__).with_name("published_runs.toml")
PUBLISHED = ("mfu", "hfu_like_fraction", "tflops_per_chip")
COUNTS = ("model", "megatron-model", "megatron-hardware")
SHARDINGS = ("ddp", "zero1", "fsdp")


class DataError(ValueError):
    """A run or system of the data file that the model cannot read, with where and why."""


@dataclass(frozen=True)
class System:
    """A published run's node and links (per chip, one direction) and its HBM bandwidth."""

    name: str
    chips_per_node: int
    intra: float  # B/s per chip inside the node
    inter: float  # B/s per node to the network
    hbm: float  # B/s per chip
    source: str


@dataclass(frozen=True)
class Run:
    """One published run: what the step model needs and the figure it is checked against."""

    name: str
    source: str
    title: str  # the publication, for counting sources
    system: System
    shape: Shape
    seq: int
    batch_seqs: int
    micro_batch: int
    tp: int
    pp: int
    dp: int
    cp: int
    vpp: int
    sequence_parallel: bool
    recompute: str
    sharding: str
    grad_bytes: int
    peak: float  # FLOP/s per chip the published fraction is of
    published: str  # which figure: mfu, hfu_like_fraction, tflops_per_chip
    count: str  # how the source counted its FLOPs (COUNTS)
    value: float  # the published figure as a fraction of ``peak``
    assumed: dict[str, str] = field(default_factory=dict)

    @property
    def chips(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def micro_batches(self) -> int:
        return self.batch_seqs // (self.dp * self.micro_batch)

    def plan(self) -> str:
        return (f"TP{self.tp}" + (f" CP{self.cp}" if self.cp > 1 else "")
                + f" PP{self.pp} DP{self.dp}" + (f" v{self.vpp}" if self.vpp > 1 else "")
                + f" m={self.micro_batches}" + (f"x{self.micro_batch}"
                                                if self.micro_batch > 1 else "")
                + f" {self.recompute}")

    def counted_flops(self) -> float:
        """FLOPs of one step as the source counted them (``count``)."""
        s, tokens = self.shape, self.batch_seqs * self.seq
        if self.count == "model":
            return s.flops_per_token(self.seq) * tokens
        h, layers, vocab = s.dim, s.n_layers, s.head_params / s.dim
        per = 72 if self.count == "megatron-model" else 96
        logits = vocab / ((12 if self.count == "megatron-model" else 16) * layers * h)
        return per * tokens * layers * h * h * (1 + self.seq / (6 * h) + logits)

    def links(self) -> comm.Links:
        sy = self.system
        return comm.place(per_node=sy.chips_per_node, intra=sy.intra, inter=sy.inter,
                          tp=self.tp, cp=self.cp, pp=self.pp, dp=self.dp)


@dataclass(frozen=True)
class Excluded:
    name: str
    title: str
    reason: str


def _title(source: str) -> str:
    """The quoted title of a source ("Llama 3 Herd ...") or its first clause."""
    m = re.search(r"'([^']+)'", source)
    return m.group(1) if m else source.split(",")[0]


def _system(name: str, data: dict) -> System:
    chip = hardware.DEVICES[data["chip"]]
    hbm = data["hbm_tbs"] * 1e12 if "hbm_tbs" in data else chip.bandwidth.value
    return System(name, int(data["chips_per_node"]), data["intra_gbs"] * 1e9,
                  data["inter_gbps"] * 1e9 / 8, hbm, data["source"])


def _run(r: dict, systems: dict[str, System]) -> Run:
    name = r["name"]

    def need(key: str, accepted: tuple[str, ...] | None = None):
        if key not in r:
            raise DataError(f"{PATH.name}: run {name}: {key} is missing")
        if accepted is not None and r[key] not in accepted:
            raise DataError(f"{PATH.name}: run {name}: {key} must be one of "
                            f"{', '.join(accepted)}, got {r[key]!r}")
        return r[key]

    spec = ",".join(f"{k}={need(k)}" for k in ("layers", "dim", "heads", "kv_heads", "ffn",
                                                "mlp", "seq"))
    shape = custom_shape(spec + f",vocab={r.get('vocab', 0)}", f"run {name}", name=name,
                         label="paper", source=r["source"])
    published = need("published", PUBLISHED)
    value = need(published)
    if published == "tflops_per_chip":
        value = value / need("peak_tflops")
    run = Run(
        name=name, source=r["source"], title=_title(r["source"]),
        system=systems[need("system", tuple(systems))], shape=shape, seq=int(r["seq"]),
        batch_seqs=int(need("global_batch_seqs")), micro_batch=int(need("micro_batch")),
        tp=int(need("tp")), pp=int(need("pp")), dp=int(need("dp")), cp=int(r.get("cp", 1)),
        vpp=int(need("vpp")), sequence_parallel=bool(need("sequence_parallel")),
        recompute=need("recompute", comm.RECOMPUTE), sharding=need("sharding", SHARDINGS),
        grad_bytes=comm.GRAD_BYTES[need("grad_reduce", tuple(comm.GRAD_BYTES))],
        peak=need("peak_tflops") * 1e12, published=published, count=need("count", COUNTS),
        value=value, assumed=dict(r.get("assumed", {})))
    if run.chips != r["chips"]:
        raise DataError(f"{PATH.name}: run {name}: tp x cp x pp x dp = {run.chips}, not the "
                        f"{r['chips']} chips")
    if run.micro_batches < 1 or run.micro_batches * run.dp * run.micro_batch != run.batch_seqs:
        raise DataError(f"{PATH.name}: run {name}: the batch of {run.batch_seqs} sequences is "
                        f"not DP {run.dp} x micro-batches of {run.micro_batch}")
    return run


@cache
def load(path: Path = PATH) -> tuple[tuple[Run, ...], tuple[Excluded, ...]]:
    """The runs the model can check (in file order) and the ones it cannot, with why."""
    data = tomllib.loads(path.read_text())
    systems = {k: _system(k, v) for k, v in data["system"].items()}
    runs, excluded = [], []
    for r in data["run"]:
        if "exclude" in r:
            excluded.append(Excluded(r["name"], _title(r["source"]), r["exclude"]))
        else:
            runs.append(_run(r, systems))
    return tuple(runs), tuple(excluded)
