"""Step time of one parallelism plan: compute, communication that does not overlap, bubble.

Derivation: docs/projection.md, "Step time of a plan"."""

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
