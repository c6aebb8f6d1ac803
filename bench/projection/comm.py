"""Step time of one parallelism plan: compute, communication that does not overlap, bubble.

Collectives over n ranks of S bytes at B bytes/s per rank, one direction (NCCL-tests
PERFORMANCE.md, ring algorithms):

    all-reduce                    t = (S / B) * 2 (n - 1) / n
    reduce-scatter, all-gather    t = (S / B) * (n - 1) / n

Per micro-batch on one pipeline stage (the stage with the most layers, l = ceil(L / p)):

    compute    t_c = (6N + 12LHQT) * b T / (t p * peak * node MFU) * l p / L
    recompute  t_c / 3 with full activation recompute (the forward pass again:
               2 of the 6 FLOPs per parameter; Korthikanti et al. 2022, arXiv:2205.05198)
    TP         l * k all-reduces of b T d * 2 bytes over t ranks inside the node, k = 4
               (2 forward, 2 backward; Megatron-LM, Narayanan et al. 2021, arXiv:2104.04473;
               with sequence parallelism the same volume as all-gather + reduce-scatter),
               k = 6 with full recompute; times (1 - TP overlap)
    PP         with p > 1, a send of the activations forward and of their gradient back,
               b T d * 2 / t bytes per rank each way per chunk, on the link between stages
               (inside the node when a node holds several stages, else EFA); not overlapped

Per step, with m micro-batches per DP replica and v interleaved chunks per stage:

    pipeline   (t_c + recompute + TP) * (m + (p - 1) / v)        (GPipe / 1F1B; the
               bubble is (p - 1) / (v m + p - 1) of it, Megatron-LM 2021 section 2.2)
    DP         ZeRO-1: reduce-scatter of the gradients + all-gather of the parameters,
               2-byte each, N / (t p) parameters per rank, once a step;
               FSDP (ZeRO-3): all-gather forward, all-gather backward, reduce-scatter,
               every micro-batch (ZeRO, Rajbhandari et al. 2019, arXiv:1910.02054);
               over EFA at (node EFA bandwidth / chips per node) per rank when the replicas
               span nodes; times (1 - DP overlap)

    efficiency = m t_c / step time;  MFU at scale = node MFU x efficiency

Expert-parallel all-to-all, collective latency and congestion are not modelled.
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


def bubble_fraction(p: int, m: int, v: int = 1) -> float:
    """Share of the pipeline time that is bubble: (p - 1) / (v m + p - 1)."""
    return (p - 1) / (v * m + p - 1)


@dataclass(frozen=True)
class StepTime:
    """Seconds per training step on the critical path, by cause."""

    compute_s: float  # model FLOPs at the node MFU (m t_c)
    recompute_s: float
    tp_s: float  # exposed TP collectives
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


def step_time(*, flops_per_token: float, seq_len: int, micro_batch: int, micro_batches: int,
              tp: int, pp: int, dp: int, n_layers: int, dim: int, params: float,
              peak: float, node_mfu: float, sharding: str, recompute: bool, vpp: int,
              tp_overlap: float, dp_overlap: float, links: Links) -> StepTime:
    """The step-time breakdown of one plan (formulas in the module docstring)."""
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
    t_pp = 0.0
    if pp > 1 and links.pp is not None:
        t_pp = 2 * vpp * tokens_mb * dim * BYTES_16BIT / tp / links.pp
    work = t_c + t_r + t_tp + t_pp
    pipeline = work * (micro_batches + (pp - 1) / vpp)
    t_dp = 0.0
    if links.dp is not None and dp > 1:
        shard = params / (tp * pp) * BYTES_16BIT
        one = reduce_scatter_s(shard, dp, links.dp)
        t_dp = (2 * one if sharding == "zero1" else 3 * micro_batches * one) * (1 - dp_overlap)
    m = micro_batches
    return StepTime(
        compute_s=m * t_avg, recompute_s=m * t_r, tp_s=m * t_tp, pp_s=m * t_pp,
        imbalance_s=m * (t_c - t_avg), bubble_s=pipeline - m * work,
        dp_s=t_dp, total_s=pipeline + t_dp)
