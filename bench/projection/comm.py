"""Step time of one parallelism plan: compute, communication that does not overlap, bubble.

Collectives over n ranks of S bytes at B bytes/s per rank, one direction (NCCL-tests
PERFORMANCE.md, ring algorithms):

    all-reduce                    t = (S / B) * 2 (n - 1) / n
    reduce-scatter, all-gather    t = (S / B) * (n - 1) / n
    all-to-all                    t = (S / B) * (n - 1) / n   (S: what each rank sends to
                                  all n, itself included; bus bandwidth = algorithm
                                  bandwidth x (n - 1) / n)

Per micro-batch on one pipeline stage (the stage with the most layers, l = ceil(L / p)):

    compute    t_c = (6N + 12LHQT) * b T / (t p * peak * node MFU) * l p / L
    recompute  t_c / 3 with full activation recompute (the forward pass again:
               2 of the 6 FLOPs per parameter; Korthikanti et al. 2022, arXiv:2205.05198)
    TP         l * k all-reduces of b T d * 2 bytes over t ranks inside the node, k = 4
               (2 forward, 2 backward; Megatron-LM, Narayanan et al. 2021, arXiv:2104.04473;
               with sequence parallelism the same volume as all-gather + reduce-scatter),
               k = 6 with full recompute; times (1 - TP overlap)
    EP         a mixture of experts with e > 1 expert-parallel ranks: per MoE layer (every
               layer of the registry's MoE shapes) a dispatch and a combine all-to-all over
               the e ranks, forward and backward, k as for TP (4; 6 with full recompute);
               each of b T k_e d * 2 / t bytes per rank: each token goes to its k_e routed
               experts (GShard, Lepikhin et al. 2020, arXiv:2006.16668), and sequence
               parallelism leaves b T / t tokens on each TP rank (Megatron-Core's token
               dispatcher: S / TP x B local tokens); dropless, balanced routing;
               on the intra-node link while t e ranks fit in a node, else EFA; times
               (1 - EP overlap)
    PP         with p > 1, a send of the activations forward and of their gradient back,
               b T d * 2 / t bytes per rank each way per chunk, on the link between stages
               (inside the node when a node holds several stages, else EFA); not overlapped

Per step, with m micro-batches per DP replica and v interleaved chunks per stage:

    pipeline   (t_c + recompute + TP + EP + PP) * (m + (p - 1) / v)   (GPipe / 1F1B; the
               bubble is (p - 1) / (v m + p - 1) of it, Megatron-LM 2021 section 2.2)
    DP         ZeRO-1: reduce-scatter of the gradients + all-gather of the parameters,
               2-byte each, once a step: the dense N_d / (t p) parameters over the d
               replicas, plus the experts' N_e / (t p e) over the d / e replicas that hold
               the same experts;
               FSDP (ZeRO-3): all-gather forward, all-gather backward, reduce-scatter,
               every micro-batch (ZeRO, Rajbhandari et al. 2019, arXiv:1910.02054);
               over EFA at (node EFA bandwidth / chips per node) per rank when the replicas
               span nodes; times (1 - DP overlap)
    DP, measured  in place of the above, a measured data-parallel scaling efficiency E
               (``trnbench scaling``; ``metrics.scaling_efficiency``) as the share of the
               step that DP leaves to the rest: DP = pipeline x (1 - E) / E, so that
               pipeline / (pipeline + DP) = E

    efficiency = m t_c / step time;  MFU at scale = node MFU x efficiency

Not modelled: collective latency and congestion; for experts, capacity-factor padding of
the dispatch (capacity-based routing sends about capacity factor x k_e slots per token, not
k_e) and load imbalance across experts (the busiest expert sets the pace).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

BYTES_16BIT = 2


def all_reduce_s(size: float, n: int, bandwidth: float) -> float:
    """Ring all-reduce: (S / B) * 2 (n - 1) / n."""
    return 0.0 if n <= 1 else size / bandwidth * 2 * (n - 1) / n


def reduce_scatter_s(size: float, n: int, bandwidth: float) -> float:
    """Ring reduce-scatter or all-gather of S bytes in total: (S / B) * (n - 1) / n."""
    return 0.0 if n <= 1 else size / bandwidth * (n - 1) / n


def all_to_all_s(size: float, n: int, bandwidth: float) -> float:
    """All-to-all of S bytes per rank (S / n to each rank): (S / B) * (n - 1) / n."""
    return 0.0 if n <= 1 else size / bandwidth * (n - 1) / n


def bubble_fraction(p: int, m: int, v: int = 1) -> float:
    """Share of the pipeline time that is bubble: (p - 1) / (v m + p - 1)."""
    return (p - 1) / (v * m + p - 1)


@dataclass(frozen=True)
class StepBreakdown:
    """Seconds per training step on the critical path, by cause."""

    compute_s: float  # model FLOPs at the node MFU (m t_c)
    recompute_s: float
    tp_s: float  # exposed TP collectives
    ep_s: float  # exposed expert-parallel all-to-alls
    pp_s: float  # pipeline sends
    imbalance_s: float  # the stage with ceil(L/p) layers against the average
    bubble_s: float
    dp_s: float  # exposed DP collectives
    total_s: float

    @property
    def efficiency(self) -> float:
        return self.compute_s / self.total_s

    def as_dict(self) -> dict:
        return {**asdict(self), "efficiency": self.efficiency}


@dataclass(frozen=True)
class Links:
    """Per-rank bandwidths (B/s, one direction); None where unknown (traffic not modelled)."""

    intra: float | None  # inside the node (TP)
    pp: float | None  # between pipeline stages
    dp: float | None  # what DP replicas share: EFA per chip, or intra-node if one node
    ep: float | None = None  # between expert-parallel ranks: intra-node while TP x EP fits


def step_time(*, flops_per_token: float, seq_len: int, micro_batch: int, micro_batches: int,
              tp: int, pp: int, dp: int, n_layers: int, dim: int, params: float,
              peak: float, node_mfu: float, sharding: str, recompute: bool, vpp: int,
              tp_overlap: float, dp_overlap: float, links: Links,
              dp_efficiency: float | None = None, ep: int = 1, top_k: int = 1,
              expert_params: float = 0.0, ep_overlap: float = 0.0) -> StepBreakdown:
    """The step-time breakdown of one plan (formulas in the module docstring);
    ``dp_efficiency`` (0, 1]: DP time from a measured scaling efficiency instead;
    ``ep``, ``top_k``, ``expert_params`` (of ``params``): a mixture of experts."""
    tokens_mb = micro_batch * seq_len
    layers_stage = math.ceil(n_layers / pp)
    t_avg = flops_per_token * tokens_mb / (tp * pp * peak * node_mfu)
    t_c = t_avg * layers_stage * pp / n_layers
    t_r = t_c / 3 if recompute else 0.0
    k = 6 if recompute else 4
    t_tp = 0.0
    if links.intra is not None:
        per_layer = all_reduce_s(tokens_mb * dim * BYTES_16BIT, tp, links.intra)
        t_tp = layers_stage * k * per_layer * (1 - tp_overlap)
    t_ep = 0.0
    if ep > 1 and links.ep is not None:
        per_layer = all_to_all_s(tokens_mb * top_k * dim * BYTES_16BIT / tp, ep, links.ep)
        t_ep = layers_stage * k * per_layer * (1 - ep_overlap)
    t_pp = 0.0
    if pp > 1 and links.pp is not None:
        t_pp = 2 * vpp * tokens_mb * dim * BYTES_16BIT / tp / links.pp
    work = t_c + t_r + t_tp + t_ep + t_pp
    pipeline = work * (micro_batches + (pp - 1) / vpp)
    t_dp = 0.0
    if dp_efficiency is not None and dp > 1:
        t_dp = pipeline * (1 - dp_efficiency) / dp_efficiency
    elif links.dp is not None and dp > 1:
        dense = (params - expert_params) / (tp * pp) * BYTES_16BIT
        experts = expert_params / (tp * pp * ep) * BYTES_16BIT
        one = (reduce_scatter_s(dense, dp, links.dp)
               + reduce_scatter_s(experts, dp // ep, links.dp))
        t_dp = (2 * one if sharding == "zero1" else 3 * micro_batches * one) * (1 - dp_overlap)
    m = micro_batches
    return StepBreakdown(
        compute_s=m * t_avg, recompute_s=m * t_r, tp_s=m * t_tp, ep_s=m * t_ep, pp_s=m * t_pp,
        imbalance_s=m * (t_c - t_avg), bubble_s=pipeline - m * work,
        dp_s=t_dp, total_s=pipeline + t_dp)
