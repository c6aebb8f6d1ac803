"""The result record: one typed object per run, one JSON line in the store (docs/methodology.md,
"The record").

A ``Record`` is built from its parts (frozen dataclasses), never as a dict by hand:
``Record.start`` (a run's identity, context and backend) plus the measured parts,
``Record.failed`` for a run that failed or was interrupted, ``Record.aggregate`` for the
ranks of a torchrun job. ``to_json`` writes schema version 2; ``from_json`` reads version 2
and upgrades version 1 (``upgrade``). A key this module does not know is kept as it was
(``extra``), so that nothing stored is lost.

Derived figures: tokens/s, per chip, MFU and HFU by ``Throughput.of`` with the formulas of
``bench.records.metrics`` (their one owner); J/token, tokens/kWh and average power by
``Energy.of``.

``python -m bench.records.record --schema`` prints the schema as a Markdown table (the one in
docs/methodology.md, between its marker comments).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import cache
from typing import Any, TypeVar

from bench.backends.hardware import DEVICES
from bench.inputs.config import RunConfig
from bench.records import bandwidth, metrics, validate
from bench.records.validate import Rule

SCHEMA_VERSION = 2
STATUSES = ("ok", "failed", "interrupted")
# the records that must hold a field (Rule.required): a status, a kind, or both
OK, FAILED = ("ok",), STATUSES[1:]
TRAINING, COLLECTIVES = "training", "collectives"  # the kinds (``kind``)
RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"  # a file-name part (a trace's), no markup
JOULES_PER_KWH = 3.6e6
COMM_KIND = "comm"  # config.kind of a collectives record
FLAG_PREFIX = "flagged: "  # version 1 repeated each flag in ``warnings`` with this prefix

P = TypeVar("P", bound="Part")


class RecordError(ValueError):
    """A JSON object that is not a record readers can use; the message says why."""


def doc(meaning: str, default: Any = None, *, omit: bool | str = False,
        factory: Any = None, **rule: Any) -> Any:
    """A field with its meaning (the schema table's third column) and its ``Rule``
    (``bench.records.validate``: bounds, plausible range, accepted values, required in which
    records). ``omit``: left out of the JSON when null (True: a block only some runs have;
    "failed": a figure, null in an ok record, absent from a failed one)."""
    meta = {"doc": meaning, "omit": omit, "rule": Rule(**rule)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class Part:
    """A block of the record: known fields typed, unknown keys kept in ``extra``."""

    extra: dict[str, Any] = field(default_factory=dict, metadata={"doc": "", "omit": True},
                                  repr=False, compare=True)

    @classmethod
    def from_json(cls: type[P], data: Any, where: str = "") -> P | None:
        """The part of a JSON object (None for null); RecordError if it is not an object."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise RecordError(f"{where or cls.__name__.lower()} must be an object, got {data!r}")
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        for name, part in cls.parts().items():
            if name in values:
                values[name] = _nested(part, values[name], f"{where}.{name}" if where else name)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def parts(cls) -> dict[str, type[Part]]:
        """The fields that are parts themselves, or lists of parts (``ranks``), with their
        part: read from the annotations."""
        return _parts(cls)

    def to_json(self) -> dict[str, Any]:
        """The part as a JSON object, keys in field order, then the kept unknown keys."""
        out: dict[str, Any] = {}
        # a failed run's figures, or the training figures of a collectives record: absent
        failed = getattr(self, "status", "ok") != "ok" or getattr(self, "is_comm", False)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            omit = f.metadata.get("omit")
            if value is None and (omit is True or (omit == "failed" and failed)):
                continue
            out[f.name] = _json(value)
        return {**out, **self.extra}


@cache
def _parts(cls: type[Part]) -> dict[str, type[Part]]:
    found = {name: validate.dataclass_of(tp) for name, tp in validate.hints(cls).items()}
    return {name: part for name, part in found.items()
            if part is not None and issubclass(part, Part)}


def _nested(part: type[Part], value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [part.from_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return part.from_json(value, where)


def _json(value: Any) -> Any:
    """JSON of a field's value: parts as objects, NaN and inf as null."""
    if isinstance(value, Part):
        return value.to_json()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class Backend(Part):
    """The backend that ran, and why it was chosen."""

    name: str | None = doc("backend name (cpu, cuda, xla, neuron)")
    reason: str | None = doc("why this backend was selected")
    dist_backend: str | None = doc("torch.distributed backend (gloo, nccl, xla, neuron)")

    @classmethod
    def of(cls, selection: Any) -> Backend:
        """The block of a ``bench.backends.Selection`` (its ``backend.name``,
        ``backend.dist_backend`` and ``reason``; duck-typed: no torch here)."""
        return cls(name=selection.backend.name, reason=selection.reason,
                   dist_backend=selection.backend.dist_backend)


@dataclass(frozen=True, kw_only=True)
class Device(Part):
    """The hardware of the run."""

    name: str | None = doc("device name as the driver reports it", required=OK)
    kind: str | None = doc("hardware-table key (h100, trn2, ...), cpu, or unknown",
                           required=OK)
    device_count: int | None = doc("devices visible to the process", low=0)
    devices_used: int | None = doc("devices the run used (ranks under torchrun)", low=0)
    chips: float | None = doc("chips the figures are divided by (a fraction for a share of a "
                              "chip; null: unknown, per-chip figures null)", low=0)
    versions: dict[str, Any] | None = doc("driver, runtime and SDK versions; threads")


@dataclass(frozen=True, kw_only=True)
class Model(Part):
    """The model and its FLOPs per token (models/flops.py)."""

    name: str | None = doc("model name (trnbench models)")
    params: int | None = doc("parameters", low=0)
    active_params: int | None = doc("parameters active per token (MoE: top-k experts)", low=0)
    matmul_params: int | None = doc("N: matmul parameters of one token's forward", low=0)
    flops_per_token: float | None = doc("model FLOPs per token (the formula's)", low=1)
    hardware_flops_per_token: float | None = doc("FLOPs per token with recomputation and "
                                                 "dropped/padded MoE slots", low=1)
    flops_formula: str | None = doc("the FLOPs formula, as text")


@dataclass(frozen=True, kw_only=True)
class Moe(Part):
    """Routing of a mixture-of-experts model (dense models: no block)."""

    n_experts: int | None = doc("experts per MoE layer", low=0)
    top_k: int | None = doc("experts per token", low=0)
    capacity_factor: float | None = doc("capacity factor", low=0)
    capacity: int | None = doc("slots per expert and sequence", low=0)
    aux_loss_coef: float | None = doc("load-balancing loss coefficient", low=0)
    dropped_fraction: float | None = doc("mean fraction of top-k assignments dropped over "
                                         "capacity in the window", low=0, high=1)
    aux_loss: float | None = doc("mean load-balancing loss in the window")


@dataclass(frozen=True, kw_only=True)
class Precision(Part):
    """Precision, read from the real tensors after the run."""

    mode: str | None = doc("what runs in which precision, in words (version 1: "
                           "precision_mode)")
    param_dtypes: list[str] | None = doc("dtypes of the parameters")
    compute_dtype: str | None = doc("dtype of the forward's matmuls")
    optimizer_state_dtypes: list[str] | None = doc("dtypes of the AdamW states")
    master_copy: bool | None = doc("whether an fp32 master copy of bf16 parameters exists")
    compute_param_dtype: str | None = doc("FSDP2 mixed precision: parameter dtype in compute",
                                          omit=True)
    reduce_dtype: str | None = doc("FSDP2 mixed precision: gradient reduction dtype",
                                   omit=True)


@dataclass(frozen=True, kw_only=True)
class Optimizer(Part):
    """The optimizer's settings."""

    name: str | None = doc("optimizer class (AdamW)")
    implementation: str | None = doc("fused, foreach or for-loop")
    lr: float | None = doc("learning rate", low=0)
    betas: list[float] | None = doc("AdamW betas", low=0)
    weight_decay: float | None = doc("weight decay", low=0)
    eps: float | None = doc("AdamW eps", low=0)


@dataclass(frozen=True, kw_only=True)
class Attention(Part):
    """The attention kernels allowed."""

    sdpa_backends: list[str] | None = doc("SDPA kernels allowed (null: torch's choice)")
    enforced: bool | None = doc("whether no other kernel could run")


@dataclass(frozen=True, kw_only=True)
class Compile(Part):
    """torch.compile settings (null without --compile)."""

    scope: str | None = doc("what is compiled (forward+loss; backward by AOTAutograd)")
    optimizer_step: str | None = doc("compiled or eager")
    backend: str | None = doc("torch.compile backend")
    dynamic: bool | None = doc("dynamic shapes")


@dataclass(frozen=True, kw_only=True)
class Parallelism(Part):
    """The layout of ranks under torchrun (null: one process)."""

    tp: int | None = doc("tensor-parallel degree", low=1)
    dp: int | None = doc("data-parallel degree", low=1)
    dp_replicate: int | None = doc("replicated data-parallel groups (HSDP)", low=1)
    dp_shard: int | None = doc("ranks sharding one replica (FSDP)", low=1)
    parallel: str | None = doc("ddp or fsdp")
    mesh: dict[str, int] | None = doc("device mesh: dimension name -> size", low=1)
    sequence_parallel: bool | None = doc("sequence parallelism (with TP)")
    loss_parallel: bool | None = doc("cross-entropy on vocabulary-sharded logits (with TP)")


@dataclass(frozen=True, kw_only=True)
class Ac(Part):
    """Activation checkpointing."""

    mode: str | None = doc("none, selective or full")
    every: int | None = doc("one block in this many is checkpointed", low=0)
    blocks: int | None = doc("blocks checkpointed", low=0)
    of_blocks: int | None = doc("blocks of the model", low=0)


@dataclass(frozen=True, kw_only=True)
class Peak(Part):
    """The peak FLOP/s per chip behind MFU, with its label and source."""

    value: float | None = doc("peak FLOP/s per chip", low=1)
    unit: str | None = doc("FLOP/s")
    label: str | None = doc("published, measured or estimate")
    source: str | None = doc("where the figure comes from")
    precision: str | None = doc("the precision the peak is for")
    window: dict[str, Any] | None = doc("a measured peak: rates before and after the window "
                                        "and their spread", omit=True)


@dataclass(frozen=True, kw_only=True)
class StepTime(Part):
    """Statistics of the timed steps (bench.records.metrics.step_stats)."""

    n: int | None = doc("timed steps", low=0)
    median_s: float | None = doc("median step seconds", low=0)
    p90_s: float | None = doc("90th percentile (null: no per-step spread measured)", low=0)
    min_s: float | None = doc("fastest step", low=0)
    max_s: float | None = doc("slowest step", low=0)
    mean_s: float | None = doc("mean step seconds", low=0)
    cv: float | None = doc("coefficient of variation (null: no per-step spread)", low=0)
    method: str | None = doc("the step timer (host-clock, cuda-events, ...)")
    spread_reason: str | None = doc("why p90 and CV are null")

    @classmethod
    def of(cls, times: list[float], method: str, spread_reason: str | None = None
           ) -> StepTime:
        """The statistics of ``times``; p90 and CV null, with ``spread_reason``, where the
        timer measured no per-step spread."""
        stats = metrics.step_stats(times)
        if spread_reason:
            stats.update(p90_s=None, cv=None)
        return cls(**stats, method=method, spread_reason=spread_reason)


@dataclass(frozen=True, kw_only=True)
class Warmup(Part):
    """The warm-up before the window."""

    steps: int | None = doc("warm-up steps", low=0)
    first_step_s: float | None = doc("seconds of the first step (compilation)", low=0)
    total_s: float | None = doc("seconds of the whole warm-up", low=0)


@dataclass(frozen=True, kw_only=True)
class Compilation(Part):
    """Graph compilations, where the backend counts them (null: it does not)."""

    method: str | None = doc("what is counted: Dynamo graphs, XLA graphs")
    warmup_graphs: int | None = doc("graphs compiled in the warm-up (version 1 also: "
                                    "compiles_warmup)", low=0,
                                    needs=("compilation.timed_graphs",))  # counted together
    warmup_compile_s: float | None = doc("seconds compiling in the warm-up", low=0)
    timed_graphs: int | None = doc("graphs compiled in the timed window, 0 when sound "
                                   "(version 1 also: compiles_timed)", low=0,
                                   needs=("compilation.warmup_graphs",))
    timed_compile_s: float | None = doc("seconds compiling in the timed window", low=0)


@dataclass(frozen=True, kw_only=True)
class CompileCache(Part):
    """A persistent compile cache over the run: TorchNeuron's NEFF cache (null elsewhere).
    Cold and warm time to the first step: ``warmup.first_step_s`` with ``first_step``."""

    dir: str | None = doc("the cache directory (null: not known)")
    method: str | None = doc("what is counted as a compiled graph")
    entries_before: int | None = doc("compiled graphs in the cache before the warm-up")
    first_step_graphs: int | None = doc("graphs the first warm-up step added (compiled)")
    warmup_graphs: int | None = doc("graphs the whole warm-up added, first step included")
    timed_graphs: int | None = doc("graphs added in the timed window (0 when sound)")
    first_step: str | None = doc("cold: the first step compiled graphs; warm: it compiled "
                                 "none, every graph came from the cache")
    hits: int | None = doc("graphs loaded from the cache in warm-up and window")
    misses: int | None = doc("graphs not in the cache (compiled) in warm-up and window")
    reason: str | None = doc("why the graph counts are null")
    hits_reason: str | None = doc("why hits and misses are null")

    @classmethod
    def of(cls, start: Any, first: Any, warm: Any, end: Any) -> CompileCache:
        """The block from a cache's states (``bench.backends.base.CacheState``) at the start
        of the warm-up, after its first step, after it, after the window. A directory that
        holds no graph after a step ran is not where the cache is: not counted."""
        reason = start.reason or next((s.reason for s in (first, warm, end) if s.reason), None)
        if reason is None and not first.entries:
            reason = (f"no compiled graph ({start.method}) after the first step: the cache is "
                      "not there, or its files are named otherwise; not counted")
        counted = reason is None
        first_graphs = first.entries - start.entries if counted else None

        def added(a: Any, b: Any) -> int | None:
            return b.entries - a.entries if counted else None

        hits_reason = next((s.counters_reason for s in (start, end) if s.counters_reason), None)
        hits = misses = None
        if hits_reason is None:
            hits, misses = end.hits - start.hits, end.misses - start.misses
            if counted and misses < (added(start, end) or 0):
                hits_reason = (f"the runtime counted {misses} miss(es) for {added(start, end)} "
                               "graph(s) added: counters not used")
                hits = misses = None
        return cls(dir=start.dir, method=start.method,
                   entries_before=start.entries if counted else None,
                   first_step_graphs=first_graphs, warmup_graphs=added(start, warm),
                   timed_graphs=added(warm, end),
                   first_step=None if first_graphs is None else "cold" if first_graphs else "warm",
                   hits=hits, misses=misses, reason=reason, hits_reason=hits_reason)


@dataclass(frozen=True, kw_only=True)
class CpuFallbacks(Part):
    """Operator calls the device runtime ran on the host CPU instead of the device, without
    failing (TorchNeuron; null elsewhere). Any call flags the run: not a device-only figure."""

    method: str | None = doc("how they are counted")
    warmup: int | None = doc("calls run on the CPU in the warm-up (null: reason)", low=0)
    timed: int | None = doc("calls run on the CPU in the timed window (under torchrun: the "
                            "largest rank's)", low=0)
    ops: list[str] | None = doc("the operators that ran on the CPU")
    reason: str | None = doc("why the counts are null")

    @classmethod
    def of(cls, warm: Any, end: Any) -> CpuFallbacks:
        """From the backend's ``Fallbacks`` after the warm-up and after the window."""
        if warm.ops is None or end.ops is None:
            return cls(method=warm.method, reason=warm.reason or end.reason)
        return cls(method=warm.method, warmup=len(warm.ops), timed=len(end.ops) - len(warm.ops),
                   ops=sorted(set(end.ops)))

    @property
    def count(self) -> int:
        return (self.warmup or 0) + (self.timed or 0)

    @staticmethod
    def aggregate(parts: list[CpuFallbacks | None]) -> CpuFallbacks | None:
        """Over ranks: the largest rank's counts, every rank's operators; null counts if any
        rank has none."""
        first = parts[0]
        if first is None or any(p is None or p.warmup is None for p in parts):
            return first
        return replace(first, warmup=max(p.warmup for p in parts),
                       timed=max(p.timed for p in parts),
                       ops=sorted({op for p in parts for op in p.ops or []}))


@dataclass(frozen=True, kw_only=True)
class Memory(Part):
    """Peak device memory, measured and predicted (per rank)."""

    peak_bytes: int | None = doc("measured peak bytes (under torchrun: the largest rank's)",
                                 low=0)
    method: str | None = doc("how the peak is measured")
    predicted_peak_bytes: float | None = doc(
        "predicted peak bytes per rank (bench.parallel.memory_plan; a model's figure: whole "
        "bytes, fractional in records stored before 2026-12-05)", omit=True, low=0)
    predicted: dict[str, Any] | None = doc(
        "the predicted peak: its parts (bytes), phase and basis", omit=True)

    @staticmethod
    def aggregate(parts: list[Memory]) -> Memory:
        """Over ranks: the largest rank's peak (null if any rank has none)."""
        peaks = [m.peak_bytes for m in parts]
        return replace(parts[0], peak_bytes=None if None in peaks else max(peaks))


MFU_ABOVE_1 = ("the peak is below what the run reached (a peak measured low, or FLOPs per token "
               "overcounted)")
# twice the largest chip power in bench/backends/hardware.py (Trainium3, ~1 kW): no chip, and
# no CPU package, draws that much on average
PLAUSIBLE_W_PER_CHIP = 2 * max(d.power_w.value for d in DEVICES.values() if d.power_w)


def plausible_power(watts: float, record: dict[str, Any]) -> str | None:
    """average power per chip above PLAUSIBLE_W_PER_CHIP (a sensor fault)."""
    device = record.get("device")
    chips = device.get("chips") if isinstance(device, dict) else None
    chips = chips if isinstance(chips, int | float) and chips > 0 else 1
    if watts <= PLAUSIBLE_W_PER_CHIP * chips:
        return None
    return (f"energy.avg_power_w {watts:.4g} W is above {PLAUSIBLE_W_PER_CHIP:g} W per chip x "
            f"{chips:g} chip(s): a sensor fault, or the energy of more than the run's chips")


@dataclass(frozen=True, kw_only=True)
class Energy(Part):
    """Energy of exactly the timed window (docs/methodology.md, "Energy per token")."""

    method: str | None = doc("the meter: nvml-energy-counter, rapl, neuron-power-utilization, "
                             "modelled, null, ...", required=OK)
    joules: float | None = doc("joules over the window (null, with reason: not measured)",
                               low=0)
    reason: str | None = doc("why joules is null")
    j_per_token: float | None = doc("joules / tokens", low=0)
    tokens_per_kwh: float | None = doc("tokens / (joules / 3.6e6)", low=0)
    avg_power_w: float | None = doc("joules / interval_s", low=0, plausible=plausible_power)
    scope: str | None = doc("what the joules cover")
    sampling_period_s: float | None = doc("sensor period (null: a counter read at the edges)",
                                          low=0)
    coverage: float | None = doc("fraction of the window the sensor data cover", low=0,
                                 plausible=(None, 1, "the sensor data cover more than the "
                                            "window"))
    interval_s: float | None = doc("seconds between the meter's two readings", low=0)
    device_joules: dict[str, float | None] = doc("joules per sensor device", factory=dict,
                                                 low=0)
    warnings: list[str] = doc("the meter's warnings", factory=list)
    details: dict[str, Any] = doc("meter-specific details", factory=dict)

    @classmethod
    def of(cls, tokens: int, **reading: Any) -> Energy:
        """The block of a reading over ``tokens`` tokens, with its derived figures."""
        return cls(**reading).with_tokens(tokens)

    def with_tokens(self, tokens: int) -> Energy:
        """This reading (a meter's, without derived figures) with J/token, tokens/kWh and
        average power over ``tokens`` tokens and the meter's interval."""
        j, interval = self.joules, self.interval_s
        return replace(self, j_per_token=j / tokens if j is not None and tokens else None,
                       tokens_per_kwh=tokens / (j / JOULES_PER_KWH) if j else None,
                       avg_power_w=j / interval if j is not None and interval else None)

    @staticmethod
    def aggregate(parts: list[Energy | None], hosts: list[str], tokens: int, window_s: float
                  ) -> Energy | None:
        """Over ranks: each sensor device counted once, keyed by host and device (ranks that
        share a chip's sensor or a node's RAPL package read the same device), summed; a
        ``modelled`` figure is per rank and summed over ranks; average power over the slowest
        rank's window. Null if any rank has no reading."""
        first = parts[0]
        if first is None or any(p is None or p.joules is None for p in parts):
            return first
        if first.method == "modelled":
            devices = {f"rank{i}": p.joules for i, p in enumerate(parts)}
        else:
            devices = {f"{host}/{dev}": j for host, p in zip(hosts, parts, strict=True)
                       for dev, j in p.device_joules.items()}
        joules = sum(j for j in devices.values() if j is not None)
        reading = {f.name: getattr(first, f.name) for f in fields(Energy)
                   if f.name not in _ENERGY_DERIVED}
        return Energy.of(tokens, **{**reading, "joules": joules, "device_joules": devices,
                                    "interval_s": window_s})


_ENERGY_DERIVED = ("j_per_token", "tokens_per_kwh", "avg_power_w")


@dataclass(frozen=True, kw_only=True)
class Data(Part):
    """The training data."""

    kind: str | None = doc("synthetic-bigram")
    padding: bool | None = doc("whether sequences are padded")


@dataclass(frozen=True, kw_only=True)
class Rank(Part):
    """One rank's own figures under torchrun."""

    rank: int | None = doc("global rank", low=0)
    host: str | None = doc("its host")
    tokens: int | None = doc("tokens it trained on in the window", low=0)
    window_s: float | None = doc("its window seconds", low=0)
    tokens_per_s: float | None = doc("its tokens / its window seconds", low=0)
    step_time: StepTime | None = doc("its step-time statistics")
    loss_first: float | None = doc("its first loss")
    loss_last: float | None = doc("its last loss")
    peak_bytes: int | None = doc("its peak memory bytes", low=0)


@dataclass(frozen=True, kw_only=True)
class CommPoint(Part):
    """One op at one message size (bench.records.bandwidth: S, algbw, busbw)."""

    op: str | None = doc("all_reduce, all_gather, reduce_scatter, all_to_all or send_recv",
                         values=bandwidth.OPS, required=OK)
    size_bytes: int | None = doc("S: the bytes the bandwidths divide (bench.records.bandwidth)",
                                 low=0, required=OK)
    count: int | None = doc("elements of S", low=0)
    time_us: float | None = doc("microseconds per op: the slowest rank's mean over the timed "
                                "iterations (ingested: the tool's time)", low=0, required=OK)
    algbw_gbs: float | None = doc("S / time_us, GB/s (1e9 B/s)", low=0, required=OK)
    busbw_gbs: float | None = doc("algbw_gbs x the op's bus-bandwidth factor, GB/s", low=0,
                                  required=OK)
    rank_time_us: list[float] | None = doc("each rank's microseconds per op (trnbench)",
                                           omit=True, low=0)
    wrong: int | None = doc("elements wrong in the check after the timed iterations "
                            "(nccl-tests: #wrong)", omit=True, low=0)
    in_place_time_us: float | None = doc("nccl-tests: the in-place time", omit=True, low=0)
    tool_algbw_gbs: float | None = doc("the ingested tool's own algbw", omit=True, low=0)
    tool_busbw_gbs: float | None = doc("the ingested tool's own busbw", omit=True, low=0)


@dataclass(frozen=True, kw_only=True)
class LinkReference(Part):
    """The datasheet bandwidth of the link the collectives crossed (the report's reference
    line)."""

    link: str | None = doc("intra-node (per chip, one way) or inter-node (per node, one way)")
    gbs: float | None = doc("GB/s", low=0)
    label: str | None = doc("datasheet or assumption")
    source: str | None = doc("where the figure comes from")


@dataclass(frozen=True, kw_only=True)
class Comm(Part):
    """A collective benchmark (``trnbench comm``, or nccl-tests / nccom-test ingested)."""

    tool: str | None = doc("what measured it: trnbench, nccl-tests or nccom-test")
    method: str | None = doc("how the times were taken")
    dtype: str | None = doc("element type")
    ranks: int | None = doc("ranks in the collectives", low=2, required=OK)
    nodes: int | None = doc("hosts the ranks ran on", low=1)
    one_node: bool | None = doc("whether every rank was in one node (intra-node link)")
    warmup: int | None = doc("warm-up iterations per op and size", low=0)
    iters: int | None = doc("timed iterations per op and size", low=0)
    ops: list[str] | None = doc("the ops measured")
    api: dict[str, str] | None = doc("the torch.distributed call of each op (trnbench)",
                                     omit=True)
    points: list[CommPoint] | None = doc("one per op and size", required=OK, min_items=1)
    reference: LinkReference | None = doc("the link's datasheet bandwidth (null: none known)")
    tool_version: str | None = doc("the ingested tool's version, where it prints one",
                                   omit=True)
    tool_avg_busbw_gbs: float | None = doc("the ingested tool's 'Avg bus bandwidth'", omit=True,
                                           low=0)
    source_file: str | None = doc("the ingested file", omit=True)

    def plateaus(self) -> dict[str, tuple[float, list[int]]]:
        """op -> its large-message busbw and the sizes it is the median of
        (``bandwidth.plateau``)."""
        by_op: dict[str, list[tuple[int, float]]] = {}
        for p in self.points or []:
            by_op.setdefault(p.op, []).append((p.size_bytes, p.busbw_gbs))
        return {op: bandwidth.plateau(points) for op, points in by_op.items()}


@dataclass(frozen=True, kw_only=True)
class Throughput:
    """tokens/s, per chip, MFU and HFU of a window (``bench.records.metrics``)."""

    tokens: int
    window_s: float
    tokens_per_s: float
    tokens_per_s_per_chip: float | None
    mfu: float | None
    hfu: float | None

    @classmethod
    def of(cls, tokens: int, window_s: float, chips: float | None, model: Model,
           peak: Peak | None, mfu_chips: float | None = None) -> Throughput:
        """``mfu_chips``: the chips MFU divides by where they differ from ``chips`` (the
        ranks' own shares of a CPU host); default ``chips``."""
        tps = metrics.tokens_per_second(tokens, window_s)
        value = peak.value if peak else None
        divisor = (chips if mfu_chips is None else mfu_chips) or 0
        return cls(tokens=tokens, window_s=window_s, tokens_per_s=tps,
                   tokens_per_s_per_chip=tps / chips if chips else None,
                   mfu=metrics.mfu(model.flops_per_token, tps, value, divisor),
                   hfu=metrics.mfu(model.hardware_flops_per_token, tps, value, divisor))

    def fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


IDENTITY = ("schema_version", "run_id", "time", "status", "error", "config", "environment",
            "tags")


@dataclass(frozen=True, kw_only=True)
class Record(Part):
    """One run: identity, context, the measured parts and the derived figures."""

    schema_version: int = doc("2 (a version-1 line is upgraded when read)", SCHEMA_VERSION,
                              values=(SCHEMA_VERSION,), required=True)
    run_id: str | None = doc("12 hex digits (null only in a stand-in for a run that stored "
                             "no record)", required=True, pattern=RUN_ID_PATTERN)
    time: str = doc("UTC start time, ISO 8601 (seconds)", "")
    status: str = doc("ok, failed or interrupted", "ok", values=STATUSES, required=True)
    error: str | None = doc("why the run failed or was interrupted (null: ok)",
                            required=FAILED)
    config: dict[str, Any] = doc("the full run configuration (bench.inputs.config.RunConfig; "
                                 "a collectives record's: bench.comm.config, kind comm)",
                                 factory=dict, keys=RunConfig, required_keys=(
                                     (TRAINING, ("model",)),
                                     (f"ok {TRAINING}", ("backend", "batch", "seq",
                                                         "precision"))))
    environment: dict[str, Any] = doc("host, CPU, OS, Python, torch, trnbench version, git "
                                      "commit", factory=dict)
    tags: dict[str, str] = doc("the user's labels (--tag; sweeps and scaling series too)",
                               factory=dict)
    backend: Backend | None = doc("the backend block", omit="failed")
    world_size: int | None = doc("processes (ranks) of the run", omit="failed", low=1)
    nodes: int | None = doc("hosts of a torchrun run", omit=True, low=1)
    device: Device | None = doc("the device block", omit="failed", required=OK)
    model: Model | None = doc("the model block", omit="failed")
    moe: Moe | None = doc("the MoE block (routed models only)", omit=True)
    precision: Precision | None = doc("the precision block", omit="failed")
    optimizer: Optimizer | None = doc("the optimizer block", omit="failed")
    attention: Attention | None = doc("the attention block", omit="failed")
    compile: Compile | None = doc("the torch.compile block (null: not compiled)", omit="failed")
    parallelism: Parallelism | None = doc("the parallelism block (null: one process)",
                                          omit="failed")
    ac: Ac | None = doc("the activation-checkpointing block", omit="failed")
    tokens: int | None = doc("tokens of the window (under torchrun: once per TP group)",
                             omit="failed", low=0)
    window_s: float | None = doc("seconds of the timed window (under torchrun: the slowest "
                                 "rank's)", omit="failed", low=0)
    tokens_per_s: float | None = doc("tokens / window_s, global", omit="failed", low=0,
                                     required=(f"ok {TRAINING}",))
    tokens_per_s_per_chip: float | None = doc("tokens_per_s / device.chips", omit="failed",
                                              low=0)
    mfu: float | None = doc("model FLOPs utilisation (null: no known peak)", omit="failed",
                            low=0, plausible=(None, 1, MFU_ABOVE_1),
                            needs=("peak.value", "model.flops_per_token"))
    hfu: float | None = doc("hardware FLOPs utilisation (recomputation included)",
                            omit="failed", low=0, plausible=(None, 1, MFU_ABOVE_1),
                            needs=("peak.value", "model.hardware_flops_per_token"))
    peak: Peak | None = doc("the peak block (null: no known peak)", omit="failed")
    step_time: StepTime | None = doc("the step-time block (under torchrun: the slowest "
                                     "rank's)", omit="failed")
    step_times_s: list[float] | None = doc("every timed step's seconds", omit="failed", low=0)
    warmup: Warmup | None = doc("the warm-up block", omit="failed")
    compilation: Compilation | None = doc("the compilation block", omit="failed")
    compile_cache: CompileCache | None = doc("the persistent compile cache block (TorchNeuron)",
                                             omit=True)
    cpu_fallbacks: CpuFallbacks | None = doc("the CPU fallback block (TorchNeuron)", omit=True)
    memory: Memory | None = doc("the memory block", omit="failed")
    energy: Energy | None = doc("the energy block", omit="failed")
    loss_first: float | None = doc("first loss (under torchrun: mean over ranks)", omit="failed")
    loss_last: float | None = doc("last loss", omit="failed")
    losses: list[float] | None = doc("every step's loss, warm-up included", omit="failed")
    data: Data | None = doc("the data block", omit="failed")
    comm: Comm | None = doc("the collectives block (trnbench comm and ingested nccl-tests or "
                            "nccom-test; their records have no training figures)", omit=True,
                            required=(f"ok {COLLECTIVES}",))
    warnings: list[str] | None = doc("what to know about the figures", omit="failed")
    flags: list[str] | None = doc("what makes a figure doubtful (a report flags the row)",
                                  omit="failed")
    ranks: list[Rank] | None = doc("each rank's own figures (torchrun only)", omit=True)
    profile: dict[str, Any] | None = doc("the trace taken after the window (--profile)",
                                         omit=True)
    pytest_benchmark: dict[str, Any] | None = doc("the pytest-benchmark timing (ingested "
                                                  "records)", omit=True)

    @property
    def is_comm(self) -> bool:
        """A collectives record (``config.kind`` "comm"): no model, no training figures."""
        return is_comm({"config": self.config})

    @classmethod
    def new(cls, config: dict[str, Any], environment: dict[str, Any],
            tags: dict[str, str] | None = None, *, run_id: str | None = None,
            time: str | None = None, **context: Any) -> Record:
        """A record with identity and context filled in (status ok, no figures yet):
        a fresh run id and the time now unless given; ``context``: backend, world_size..."""
        return cls(run_id=run_id or new_run_id(),
                   time=time or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   config=dict(config), environment=dict(environment), tags=dict(tags or {}),
                   **context)

    @classmethod
    def start(cls, config: dict[str, Any], selection: Any, environment: dict[str, Any],
              tags: dict[str, str] | None = None, **context: Any) -> Record:
        """The record of a run about to start on ``selection`` (a
        ``bench.backends.Selection``): ``new`` with its backend block (``Backend.of``)."""
        return cls.new(config, environment, tags, backend=Backend.of(selection), **context)

    def failed(self, error: str, status: str = "failed", **context: Any) -> Record:
        """This run's identity and context stored as failed (or interrupted) with ``error``;
        no figures. ``context``: fields to set as well (world_size, ...)."""
        if status not in STATUSES[1:]:
            raise ValueError(f"a failed record's status is failed or interrupted, got {status!r}")
        keep = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in (*IDENTITY, "backend", "world_size", "extra")}
        return Record(**{**keep, "status": status, "error": error, **context})

    def checked(self) -> Record:
        """This record as the store writes it (``check``): an ok record with an impossible
        figure becomes failed with the reason; implausible figures are added to its flags.
        RecordError when even its identity is unusable (nothing can be stored)."""
        why, flags = check(self.to_json())
        if why and self.status == "ok":
            failed = self.failed(f"an impossible figure: {why}")
            why, flags = check(failed.to_json())
            if not why:
                return failed
        if why:
            raise RecordError(why)
        new = [f for f in flags if f not in (self.flags or [])]
        return replace(self, flags=[*(self.flags or []), *new]) if new else self

    def figures_json(self) -> dict[str, Any]:
        """The JSON of everything but the identity and the backend: what a pytest-benchmark
        file carries as a run's fields (bench.records.pytest_plugin, bench.records.ingest)."""
        return {k: v for k, v in self.to_json().items() if k not in (*IDENTITY, "backend")}

    def with_json(self, data: dict[str, Any], required: tuple[str, ...] = ()) -> Record:
        """This record with the fields of ``data`` (parts as JSON objects), checked as the
        store's readers check a line (``problem``), each of ``required`` present and not
        null; RecordError saying what is wrong."""
        merged = {**self.to_json(), **data}
        why = next((f"{k} is missing or null" for k in required if merged.get(k) is None),
                   None) or problem(merged)
        if why:
            raise RecordError(why)
        return Record.from_json(merged)

    @classmethod
    def aggregate(cls, per_rank: list[Record]) -> Record:
        """One record of a torchrun job from its ranks' records, each holding its own figures
        and host (``environment.host``):

        - tokens = sum over ranks / TP (a TP group trains on the same tokens); the window is
          the slowest rank's; tokens/s, per chip, MFU and HFU from those (``Throughput``);
        - chips = sum over ranks; a CPU is one chip however many ranks share it: chips per
          host, and MFU divides by one peak per host, its GEMM rate with all its CPUs
          (``peak.window.host``, measured by its local rank 0 after the window; without it,
          by every rank's share, each rank's peak being its own);
        - step time the slowest rank's; losses the mean over ranks (per step too); memory,
          energy and CPU fallbacks by ``Memory.aggregate``, ``Energy.aggregate`` and
          ``CpuFallbacks.aggregate``; the compile cache rank 0's (the ranks share it);
        - warnings and flags: the union; every rank's own figures under ``ranks``."""
        first = per_rank[0]
        n = len(per_rank)
        hosts = [r.environment.get("host") for r in per_rank]
        slowest = max(per_rank, key=lambda r: r.window_s)
        tp = first.parallelism.tp if first.parallelism and first.parallelism.tp else 1
        tokens = sum(r.tokens for r in per_rank) // tp
        rank_chips = [r.device.chips for r in per_rank]
        mfu_chips = None if None in rank_chips else sum(rank_chips)
        chips = mfu_chips
        peak = first.peak
        if first.device.kind == "cpu":
            chips = sum(dict(zip(hosts, rank_chips, strict=True)).values())
            host_peaks = {h: r.peak.window["host"] for h, r in zip(hosts, per_rank, strict=True)
                          if r.peak and r.peak.window and r.peak.window.get("host")}
            if peak and len(host_peaks) == len(set(hosts)):
                rate = sum(host_peaks.values()) / len(host_peaks)
                peak = replace(peak, value=rate, source=(
                    f"torch.matmul {peak.precision}, best of repeats, all CPUs of each of "
                    f"{len(host_peaks)} host(s), by its local rank 0 after the window: "
                    + ", ".join(f"{h} {v / 1e9:,.4g} GFLOP/s" for h, v in host_peaks.items())))
                mfu_chips = len(host_peaks)
        figures = Throughput.of(tokens, slowest.window_s, chips, first.model, peak,
                                mfu_chips or 0)
        return replace(
            first, **figures.fields(), peak=peak, world_size=n, nodes=len(set(hosts)),
            device=replace(first.device, chips=chips, devices_used=n),
            step_time=slowest.step_time, step_times_s=slowest.step_times_s,
            loss_first=sum(r.loss_first for r in per_rank) / n,
            loss_last=sum(r.loss_last for r in per_rank) / n,
            losses=[sum(s) / n for s in zip(*(r.losses for r in per_rank), strict=True)],
            memory=Memory.aggregate([r.memory for r in per_rank]),
            cpu_fallbacks=CpuFallbacks.aggregate([r.cpu_fallbacks for r in per_rank]),
            energy=Energy.aggregate([r.energy for r in per_rank], hosts, tokens,
                                    slowest.window_s),
            warnings=sorted({w for r in per_rank for w in r.warnings or []}),
            flags=sorted({f for r in per_rank for f in r.flags or []}),
            ranks=[Rank(rank=i, host=h, tokens=r.tokens, window_s=r.window_s,
                        tokens_per_s=r.tokens_per_s, step_time=r.step_time,
                        loss_first=r.loss_first, loss_last=r.loss_last,
                        peak_bytes=r.memory.peak_bytes)
                   for i, (h, r) in enumerate(zip(hosts, per_rank, strict=True))])

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> Record:
        """A record of a JSON object of schema version 1 or 2; RecordError (saying why) for
        one that readers cannot use (``problem``)."""
        if not isinstance(data, dict):
            raise RecordError("not a JSON object")
        data = upgrade(data)
        why = problem(data)
        if why:
            raise RecordError(why)
        record = super().from_json(data, where)
        assert record is not None
        return record


def new_run_id() -> str:
    """A fresh run id: 12 hex digits of a random UUID."""
    return uuid.uuid4().hex[:12]


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 record's JSON as version 2 (a version-2 one as it is): ``precision_mode``
    becomes ``precision.mode`` (the text, the more informative of the two); ``compiles_warmup``
    and ``compiles_timed`` go (``compilation.warmup_graphs``/``timed_graphs`` hold them); the
    ``flagged: ...`` copies of ``flags`` in ``warnings`` go."""
    if data.get("schema_version") != 1:
        return data
    out = {k: v for k, v in data.items()
           if k not in ("precision_mode", "compiles_warmup", "compiles_timed")}
    out["schema_version"] = SCHEMA_VERSION
    mode = data.get("precision_mode")
    if mode is not None:  # the older v1 lines have no precision block: it starts one
        precision = out.get("precision")
        out["precision"] = {**(precision if isinstance(precision, dict) else {}), "mode": mode}
    flags = data.get("flags")
    if isinstance(data.get("warnings"), list) and isinstance(flags, list):
        copies = {FLAG_PREFIX + f for f in flags}
        out["warnings"] = [w for w in data["warnings"] if w not in copies]
    return out


def is_comm(data: dict[str, Any]) -> bool:
    """Whether a record's JSON is a collectives record (``config.kind`` "comm")."""
    config = data.get("config")
    return isinstance(config, dict) and config.get("kind") == COMM_KIND


def kind(data: dict[str, Any]) -> str:
    """The kind of record a JSON object is: COLLECTIVES or TRAINING."""
    return COLLECTIVES if is_comm(data) else TRAINING


def check(data: dict[str, Any]) -> tuple[str | None, list[str]]:
    """Why a JSON object (schema version 2) is not a record that readers can compute with (a
    hand-edited line, a number stored as text, a figure no run can have), or None; and the
    flags of its implausible figures. Every field of every part is checked against its
    annotation and its declared ``Rule`` (``bench.records.validate``): the one validator of
    the store's writer and readers and of ``trnbench ingest``."""
    if not isinstance(data, dict):
        return "not a JSON object", []
    return validate.check(Record, data, kind(data))


def problem(data: dict[str, Any]) -> str | None:
    """Why a JSON object is not a record readers can use, or None (``check``)."""
    return check(data)[0]



def schema() -> str:
    """The record's schema as a Markdown table (field, type, meaning), blocks expanded."""
    rows = ["| field | type | meaning | checked (``bench.records.validate``) |",
            "|---|---|---|---|"]

    def walk(cls: type[Part], prefix: str) -> None:
        for f in fields(cls):
            if f.name == "extra":
                continue
            kind = str(f.type).replace("|", "\\|")
            rule = Rule.of(f).describe().replace("|", "\\|")
            rows.append(f"| `{prefix}{f.name}` | `{kind}` | {f.metadata['doc']} | {rule} |")
            part = cls.parts().get(f.name)
            if part is not None:
                walk(part, f"{prefix}{f.name}{'[]' if 'list' in str(f.type) else ''}.")

    walk(Record, "")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--schema"]:
        print("usage: python -m bench.records.record --schema", file=sys.stderr)
        return 2
    sys.stdout.write(schema())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
