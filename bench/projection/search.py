"""The parallelism plan: TP x PP x DP (x EP) with ZeRO-1 or FSDP that fits in chip memory.

Derivation: docs/projection.md, "The plan search"."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.backends.hardware import Figure
from bench.inputs.config import ConfigError
from bench.parallel import activations
from bench.projection.comm import BYTES_16BIT, StepBreakdown
from bench.projection.workload import Shape

TP_CHOICES = (1, 2, 4, 8, 16)
SHARDING = {"zero1": "ZeRO-1", "fsdp": "FSDP"}
TOLERANCE = 0.01  # plans this close to the fastest count as equally fast
SLOWDOWN = 0.15  # the efficient plan may be this much slower than the fastest
DP_HALVINGS = 6  # DP searched at D, D / 2, ..., D / 2^6
CP_CHOICES = (1, 2, 4, 8, 16, 32)
BATCH_SHORTFALL = 0.05  # a plan may round the global batch down by this share to split it
ACT_BYTES_PER_LAYER = 34  # x b T h / t: an MoE layer (Korthikanti et al. 2022; an estimate)
GIB = 2**30


def _n(count: int, noun: str, plural: str = "s") -> str:
    return f"{count:,} {noun}{'' if count == 1 else plural}"


@dataclass(frozen=True)
class ChipMemory:
    """A plan's memory, bytes per chip."""

    states: float  # weights, gradients, optimizer states
    activations: float
    usable: float  # usable share of the chip's memory

    @property
    def total(self) -> float:
        return self.states + self.activations

    @property
    def fits(self) -> bool:
        return self.total <= self.usable


@dataclass(frozen=True)
class Plan:
    tp: int
    pp: int
    dp: int
    sharding: str  # zero1 | fsdp
    recompute: str  # none | full
    micro_batch: int  # sequences
    micro_batches: int  # m per DP replica per step
    vpp: int
    memory: ChipMemory
    step: StepBreakdown
    ep: int = 1  # expert-parallel ranks inside DP
    node_mfu: float = 1.0  # the node MFU the step is modelled at
    cp: int = 1  # context-parallel ranks

    @property
    def chips(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def batch_seqs(self) -> int:
        """Sequences per step: DP x micro-batches x micro-batch."""
        return self.dp * self.micro_batches * self.micro_batch

    @property
    def mfu_at_scale(self) -> float:
        """u = node MFU x step efficiency."""
        return self.node_mfu * self.step.efficiency

    @property
    def rate(self) -> float:
        """chips x u: proportional to the training throughput."""
        return self.chips * self.mfu_at_scale

    def short(self) -> str:
        return (f"TP{self.tp}" + (f" CP{self.cp}" if self.cp > 1 else "")
                + f" PP{self.pp}" + (f"x{self.vpp}" if self.vpp > 1 else "") + f" DP{self.dp}"
                + (f" EP{self.ep}" if self.ep > 1 else "") + f" {SHARDING[self.sharding]}"
                + (" recompute" if self.recompute == "full" else "")
                + f" m={self.micro_batches}")

    def describe(self) -> str:
        return (f"TP {self.tp}" + (f" x CP {self.cp}" if self.cp > 1 else "")
                + f" x PP {self.pp} x DP {self.dp} = {self.chips:,} chips, "
                + (f"experts split over EP {self.ep} inside DP, " if self.ep > 1 else "")
                + f"{SHARDING[self.sharding]}, "
                f"{'full recompute' if self.recompute == 'full' else 'no recompute'}, "
                f"{_n(self.micro_batches, 'micro-batch', 'es')} of "
                f"{_n(self.micro_batch, 'sequence')} per replica"
                + (f", interleaved: {self.vpp} chunks per stage" if self.vpp > 1 else ""))

    def as_dict(self, seq_len: int) -> dict:
        return {
            "tp": self.tp, "cp": self.cp, "pp": self.pp, "dp": self.dp, "ep": self.ep,
            "chips": self.chips, "sharding": self.sharding, "recompute": self.recompute,
            "micro_batch_seqs": self.micro_batch, "micro_batches": self.micro_batches,
            "vpp": self.vpp, "global_batch_seqs": self.batch_seqs,
            "global_batch_tokens": self.batch_seqs * seq_len,
            "memory_bytes": {"states": self.memory.states,
                             "activations": self.memory.activations,
                             "total": self.memory.total, "usable": self.memory.usable},
            "step": self.step.as_dict(),
        }


def memory(shape: Shape, seq_len: int, *, tp: int, pp: int, dp: int, sharding: str,
           recompute: bool, micro_batch: int, micro_batches: int, vpp: int,
           usable: float, ep: int = 1, cp: int = 1) -> ChipMemory:
    """Bytes per chip of one plan (derivation: docs/projection.md, "The plan search"); CP
    ranks shard the optimizer like DP ranks and hold 1 / cp of each sequence."""
    dense = shape.dense_params / (tp * pp)
    experts = shape.expert_params / (tp * pp * ep)
    shards = dp * cp
    if sharding == "zero1":
        states = dense * (4 + 12 / shards) + experts * (4 + 12 / (shards // ep))
    else:
        gathered = (shape.dense_params + shape.expert_params / ep) / shape.n_layers / tp
        states = dense * 16 / shards + experts * 16 / (shards // ep) + 2 * gathered * BYTES_16BIT
    tokens = micro_batch * seq_len / cp
    layer = layer_activations(shape, tokens, seq_len // cp, tp)
    stored = 2 * tokens * shape.dim / tp if recompute else layer
    in_flight = min(micro_batches, pp)
    if vpp > 1:
        in_flight *= 1 + (pp - 1) / (pp * vpp)
    acts = math.ceil(shape.n_layers / pp) * in_flight * stored + (layer if recompute else 0)
    return ChipMemory(states, acts, usable)


def layer_activations(shape: Shape, tokens: float, seq_len: int, tp: int) -> float:
    """Bytes one layer keeps for backward for ``tokens`` tokens in a frontier framework's layout:
    this code's per-block terms (bench.parallel.activations, bf16 parameters, a flash kernel)
    with the linears' inputs kept sequence-sharded and grouped k, v not repeated (Megatron-LM
    with sequence parallelism); an MoE layer by Korthikanti's 34 h / t bytes a token."""
    if shape.n_experts > 1:
        return ACT_BYTES_PER_LAYER * tokens * shape.dim / tp
    s = activations.Shape(shape.dim, shape.ffn, shape.n_heads, shape.kv_heads, 0,
                          shape.n_layers, gated=shape.gated)
    mode, heads = "bf16p", shape.n_heads // tp
    norms = (2 * activations.norm_saved(s, mode) + activations.norm_output_saved(s, mode, 3)
             + activations.norm_output_saved(s, mode, 2 if s.gated else 1))
    attention = 2 * s.head_dim * (2 * heads + 2 * max(1, shape.kv_heads // tp)) + 4 * heads
    per_token = norms / tp + attention + activations.mlp_saved(s, mode, tp)
    return tokens * per_token + activations.rope_saved(s, mode, seq_len)


StepFn = Callable[..., tuple[float | None, StepBreakdown]]
"""step_fn(tp=, cp=, pp=, dp=, ep=, vpp=, micro_batches=, sharding=, recompute=) ->
(node MFU, step): the node MFU the step is modelled at, None (and the step at the highest
node MFU allowed) when the plan cannot hold the MFU at scale it is given."""


def _order(p: Plan) -> tuple:
    return (p.chips, p.node_mfu, p.tp * p.cp * p.pp, p.ep, p.vpp, p.sharding != "zero1",
            p.recompute != "none")


def fastest(plans: list[Plan]) -> Plan:
    """The most chips x u; within TOLERANCE of it the fewest chips etc. (module docstring)."""
    best = max(p.rate for p in plans)
    return min((p for p in plans if p.rate >= (1 - TOLERANCE) * best), key=_order)


def efficient(plans: list[Plan]) -> Plan:
    """The fewest chip-hours (highest u) within SLOWDOWN of the fastest (module docstring)."""
    slowest_rate = fastest(plans).rate / (1 + SLOWDOWN)
    allowed = [p for p in plans if p.rate >= slowest_rate]
    best = max(p.mfu_at_scale for p in allowed)
    return fastest([p for p in allowed if p.mfu_at_scale >= (1 - TOLERANCE) * best])


def chunk_choices(n_layers: int, pp: int, micro_batches: int) -> list[int]:
    """Interleaved chunks per stage: divisors of the layers of a stage (ceil(L / p)); more
    than one needs at least as many micro-batches as stages, a multiple of them
    (Megatron-LM's interleaved schedule)."""
    layers = math.ceil(n_layers / pp)
    ok = pp > 1 and micro_batches >= pp and micro_batches % pp == 0
    return [v for v in range(1, layers + 1) if layers % v == 0 and (v == 1 or ok)]


def search(shape: Shape, seq_len: int, *, chips: int, chips_per_node: int, intra_modelled: bool,
           memory_bytes: float, usable_share: float, global_batch_tokens: float,
           micro_batch: int, step_fn: StepFn, cp_min_tokens: int = 8192,
           max_node_mfu: Figure | None = None, tp: int | None = None,
           cp: int | None = None, pp: int | None = None, dp: int | None = None,
           ep: int | None = None, vpp: int | None = None, sharding: str = "auto",
           recompute: str = "auto") -> list[Plan]:
    """Every plan that fits and can hold its MFU; ConfigError with the reason when none can.
    ``intra_modelled``: the intra-node link is known (or plans are only ranked), so that
    TP and EP may exceed 1; ``max_node_mfu``: the cap an MFU at scale is held under."""
    batch_seqs = int(global_batch_tokens // seq_len)
    max_dp = batch_seqs // micro_batch
    if max_dp < 1:
        raise ConfigError("--global-batch-tokens", f"{global_batch_tokens:,.0f} tokens is less "
                          f"than one micro-batch ({micro_batch} x {seq_len} tokens)")
    tps = [t for t in TP_CHOICES if t <= chips_per_node and shape.n_heads % t == 0
           and (intra_modelled or t == 1)]
    if tp is not None:
        if tp not in TP_CHOICES or tp > chips_per_node or shape.n_heads % tp:
            raise ConfigError("--tp", f"{tp} is not one of {TP_CHOICES} within a "
                              f"{chips_per_node}-chip node dividing {shape.n_heads} heads")
        if not intra_modelled and tp > 1:
            raise ConfigError("--intra-node-gbs", "needed for TP > 1: no intra-node "
                              "bandwidth is known for this node")
        tps = [tp]
    cps = [c for c in CP_CHOICES if seq_len % (2 * c) == 0 and seq_len // c >= cp_min_tokens]
    if cp is not None:
        if seq_len % (2 * cp) and cp > 1:
            raise ConfigError("--cp", f"{cp} ranks need the sequence of {seq_len} tokens in "
                              f"2 x {cp} equal chunks (load-balanced causal attention)")
        cps = [cp]
    cps = cps or [1]
    if pp is not None and not 1 <= pp <= shape.n_layers:
        raise ConfigError("--pp", f"must be between 1 and the {shape.n_layers} layers, got {pp}")
    pps = [pp] if pp is not None else range(1, shape.n_layers + 1)
    if vpp is not None and pp is not None and math.ceil(shape.n_layers / pp) % vpp:
        raise ConfigError("--vpp", f"{vpp} chunks do not divide the "
                          f"{math.ceil(shape.n_layers / pp)} layers of a stage at PP {pp}")
    eps = [e for e in range(1, shape.n_experts + 1)
           if shape.n_experts % e == 0 and (intra_modelled or e == 1)]
    if ep is not None:
        if shape.n_experts % ep:
            raise ConfigError("--ep", f"{ep} does not divide the {shape.n_experts} experts of "
                              f"{shape.name}" if shape.n_experts > 1 else
                              f"{shape.name} is dense (no experts): EP must be 1, got {ep}")
        if dp is not None and dp % ep:
            raise ConfigError("--ep", f"{ep} does not divide DP {dp}: the expert-parallel "
                              "ranks are data-parallel replicas")
        if not intra_modelled and ep > 1:
            raise ConfigError("--intra-node-gbs", "needed for EP > 1: no intra-node "
                              "bandwidth is known for this node")
        eps = [ep]
    shardings = ["zero1", "fsdp"] if sharding == "auto" else [sharding]
    recomputes = ["none", "full"] if recompute == "auto" else [recompute]
    usable = usable_share * memory_bytes
    if dp is not None:
        if dp > max_dp:
            raise ConfigError("--dp", f"{dp} replicas need at least {dp * micro_batch} "
                              f"sequences per step; the global batch has {batch_seqs} "
                              "(raise --global-batch-tokens)")
        if min(tps) * min(cps) * (pp or 1) * dp > chips:
            raise ConfigError("--dp", f"TP x CP x PP x DP = "
                              f"{min(tps) * min(cps) * (pp or 1) * dp:,} is more than the "
                              f"{chips:,} chips")

    fitting: list[Plan] = []
    smallest: tuple[float, str] | None = None
    ceiling: tuple[float, str] | None = None  # best MFU at scale of a plan that cannot hold
    chunked = 0  # plans left out: no chunk count fits their micro-batches
    for t, c, p in itertools.product(tps, cps, pps):
        top = dp if dp is not None else min(chips // (t * c * p), max_dp)
        ds = [top] if dp is not None else sorted({top >> k for k in
                                                  range(DP_HALVINGS + 1)} - {0})
        for d, e, s, r in itertools.product(ds, eps, shardings, recomputes):
            if t * c * p * d > chips or d % e or d == 0:
                continue
            m = batch_seqs // (d * micro_batch)
            for v in ([vpp] if vpp is not None else chunk_choices(shape.n_layers, p, m)):
                mv = m - m % p if v > 1 else m  # interleaved: a multiple of the stages
                if mv < 1 or (v > 1 and (mv < p or math.ceil(shape.n_layers / p) % v)):
                    chunked += 1
                    continue
                if d * mv * micro_batch < (1 - BATCH_SHORTFALL) * batch_seqs:
                    continue
                mem = memory(shape, seq_len, tp=t, pp=p, dp=d, ep=e, cp=c, sharding=s,
                             recompute=r != "none", micro_batch=micro_batch,
                             micro_batches=mv, vpp=v, usable=usable)
                if not mem.fits:
                    if smallest is None or mem.total < smallest[0]:
                        smallest = (mem.total, f"TP {t}" + (f" x CP {c}" if c > 1 else "")
                                    + f" x PP {p} x DP {d}" + (f" (EP {e})" if e > 1 else "")
                                    + f", {SHARDING[s]}, "
                                    f"{'full recompute' if r == 'full' else 'no recompute'}")
                    continue
                node_mfu, step = step_fn(tp=t, cp=c, pp=p, dp=d, ep=e, vpp=v,
                                         micro_batches=mv, sharding=s, recompute=r)
                plan = Plan(t, p, d, s, r, micro_batch, mv, v, mem, step, ep=e,
                            node_mfu=node_mfu or 1.0, cp=c)
                if node_mfu is None:
                    cap = max_node_mfu.value if max_node_mfu else 1.0
                    if ceiling is None or cap * step.efficiency > ceiling[0]:
                        ceiling = (cap * step.efficiency, plan.short())
                    continue
                fitting.append(plan)
    if fitting:
        return fitting
    if ceiling is not None:
        cap = (f"a node MFU of at most {max_node_mfu.value:.1%} (--max-node-mfu: "
               f"{max_node_mfu.source})" if max_node_mfu else "node MFU 100%")
        raise ConfigError("--mfu", f"no plan on {chips:,} chips can hold this MFU at scale at "
                          f"{cap}: the best MFU at scale any plan reaches there is "
                          f"{ceiling[0]:.1%} ({ceiling[1]})")
    if vpp is not None and smallest is None and chunked:
        raise ConfigError("--vpp", f"{vpp} chunks per stage need at least as many "
                          "micro-batches as stages, a multiple of them: no plan has that")
    if smallest is None and ep is not None:
        raise ConfigError("--ep", f"no TP x PP x DP in {chips:,} chips has a DP that EP {ep} "
                          f"divides (DP = chips / (TP x PP), at most {max_dp:,} replicas of "
                          "the global batch)")
    if smallest is None:
        raise ConfigError("plan", f"no TP x PP x DP fits in {chips:,} chips with these "
                          "constraints")
    raise ConfigError("plan", f"no parallelism plan fits {shape.name} at seq {seq_len} on "
                      f"{chips:,} chips: the smallest need is {smallest[0] / GIB:,.1f} GiB per "
                      f"chip ({smallest[1]}) against {usable / GIB:,.1f} GiB usable")
