"""Step time of one parallelism plan: compute, communication that does not overlap, bubble.

Derivation: docs/projection.md, "Step time of a plan"."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench.projection.workload import Shape

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


GRAD_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}  # bytes per gradient in the DP reduction
RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class StepBreakdown:
    """Seconds per training step on the critical path, by cause."""

    compute_s: float  # model FLOPs at the node MFU (m t_c)
    recompute_s: float
    tp_s: float  # exposed TP collectives
    ep_s: float  # exposed expert-parallel all-to-alls
    pp_s: float  # pipeline sends
    imbalance_s: float  # the busiest stage (layers and the head) against the average
    bubble_s: float
    dp_s: float  # exposed DP collectives
    total_s: float
    cp_s: float = 0.0  # context-parallel K, V all-gathers and their gradients
    elementwise_s: float = 0.0  # non-matmul work bound by memory bandwidth

    @property
    def efficiency(self) -> float:
        return self.compute_s / self.total_s

    def as_dict(self) -> dict:
        return {**asdict(self), "efficiency": self.efficiency}

    @staticmethod
    def at(node_mfu: float, one: StepBreakdown, half: StepBreakdown) -> StepBreakdown:
        """The step at ``node_mfu`` from the steps at 1 and 0.5: every part is a / x + b."""
        f1, f2 = asdict(one), asdict(half)
        return StepBreakdown(**{k: (f2[k] - f1[k]) / node_mfu + 2 * f1[k] - f2[k] for k in f1})


@dataclass(frozen=True)
class Links:
    """Per-rank bandwidths (B/s, one direction); None where unknown (traffic not modelled)."""

    intra: float | None  # inside the node (TP)
    pp: float | None  # between pipeline stages
    dp: float | None  # what DP replicas share: EFA per chip, or intra-node if one node
    ep: float | None = None  # between expert-parallel ranks: intra-node while TP x EP fits
    cp: float | None = None  # between context-parallel ranks


@dataclass(frozen=True)
class Constants:
    """The step model's free constants, fitted on published runs (``calibration``)."""

    tp_overlap: float  # share of TP (and CP) traffic hidden behind compute
    dp_overlap: float  # share of DP traffic hidden behind compute
    link_efficiency: float  # share of a link's bandwidth a collective achieves
    elementwise_bytes: float  # HBM bytes per token and layer in units of d, forward + backward
    ep_overlap: float = 0.0


def busiest_stage(n_layers: int, pp: int, head: float) -> tuple[int, float]:
    """(layers, work in layers) of the busiest of ``pp`` stages, the output head (``head``
    layers' worth of FLOPs) on the last one, layers placed to make it as light as they can."""
    if pp == 1:
        return n_layers, n_layers + head
    best: tuple[int, float] | None = None
    # past (L + head) / p a stage of k layers is the busiest, and more k only adds to it
    for k in range(math.ceil(n_layers / pp), math.ceil((n_layers + head) / pp) + 2):
        last = max(0, n_layers - (pp - 1) * k)  # layers left for the last stage
        load = max(k, last + head)
        if best is None or load < best[1]:
            best = (k if k >= last + head else last, load)
    assert best is not None
    return best


def step_time(shape: Shape, *, seq_len: int, micro_batch: int, micro_batches: int, tp: int,
              pp: int, dp: int, peak: float, hbm: float | None, node_mfu: float,
              sharding: str, recompute: str, vpp: int, links: Links, constants: Constants,
              cp: int = 1, ep: int = 1, grad_bytes: int = 4, sequence_parallel: bool = True,
              checkpointed: float = 1.0, dp_efficiency: float | None = None) -> StepBreakdown:
    """The step-time breakdown of one plan (derivation: docs/projection.md, "Step time of a
    plan"); ``dp_efficiency`` (0, 1]: DP time from a measured scaling efficiency instead;
    ``hbm`` None: the elementwise work is not modelled; ``checkpointed``: the share of the
    layers that full recompute checkpoints (1: all)."""
    k = constants
    tokens = micro_batch * seq_len / cp  # per rank of a TP group, per micro-batch
    head = shape.head_flops / shape.layer_flops(seq_len)
    layers, load = busiest_stage(shape.n_layers, pp, head)
    per_layer = shape.layer_flops(seq_len) * tokens / (tp * peak * node_mfu)
    t_c = load * per_layer
    t_avg = (shape.n_layers + head) / pp * per_layer
    full = checkpointed if recompute == "full" else 0.0
    share = full / 3 if recompute != "selective" else (
        shape.attention_forward_flops(seq_len) / shape.layer_flops(seq_len))
    t_r = layers * per_layer * share
    t_e = 0.0
    if hbm is not None:
        t_e = (layers * (1 + full / 3) * k.elementwise_bytes * shape.dim * tokens
               / ((tp if sequence_parallel else 1) * hbm))
    n_fwd = 4 + 2 * full  # TP collectives per layer and micro-batch
    t_tp = t_cp = t_ep = t_pp = 0.0
    if links.intra is not None:
        size = tokens * shape.dim * BYTES_16BIT
        t_tp = layers * n_fwd * all_reduce_s(size, tp, links.intra * k.link_efficiency)
        t_tp *= 1 - k.tp_overlap
    if cp > 1 and links.cp is not None:
        kv = max(shape.kv_heads // tp, 1) * shape.head_dim  # K and V width per TP rank
        size = 2 * micro_batch * seq_len * kv * BYTES_16BIT  # K and V, all CP ranks
        t_cp = (layers * (2 + full)
                * reduce_scatter_s(size, cp, links.cp * k.link_efficiency) * (1 - k.tp_overlap))
    if ep > 1 and links.ep is not None:
        size = tokens * shape.top_k * shape.dim * BYTES_16BIT / tp
        t_ep = layers * n_fwd * all_to_all_s(size, ep, links.ep * k.link_efficiency)
        t_ep *= 1 - k.ep_overlap
    if pp > 1 and links.pp is not None:
        t_pp = 2 * vpp * tokens * shape.dim * BYTES_16BIT / tp / (links.pp * k.link_efficiency)
    work = t_c + t_r + t_e + t_tp + t_cp + t_ep + t_pp
    pipeline = work * (micro_batches + (pp - 1) / vpp)
    t_dp = 0.0
    replicas = dp * cp  # ranks that hold the same weights
    if dp_efficiency is not None and replicas > 1:
        t_dp = pipeline * (1 - dp_efficiency) / dp_efficiency
    elif links.dp is not None and replicas > 1:
        bandwidth = links.dp * k.link_efficiency
        t_dp = sum(
            _dp_traffic(count, n, bandwidth, sharding, grad_bytes, micro_batches)
            for count, n in (((shape.params - shape.expert_params) / (tp * pp), replicas),
                             (shape.expert_params / (tp * pp * ep), replicas // ep)))
        t_dp *= 1 - k.dp_overlap
    m = micro_batches
    return StepBreakdown(
        compute_s=m * t_avg, recompute_s=m * t_r, tp_s=m * t_tp, ep_s=m * t_ep, pp_s=m * t_pp,
        imbalance_s=m * (t_c - t_avg), bubble_s=pipeline - m * work,
        dp_s=t_dp, total_s=pipeline + t_dp, cp_s=m * t_cp, elementwise_s=m * t_e)


def _dp_traffic(params: float, n: int, bandwidth: float, sharding: str, grad_bytes: int,
                micro_batches: int) -> float:
    """Seconds of one step's DP collectives of ``params`` parameters per rank over n ranks:
    ddp all-reduces the gradients; zero1 reduce-scatters them and all-gathers the 16-bit
    weights once a step; fsdp gathers the weights twice and reduce-scatters every
    micro-batch."""
    if params <= 0 or n <= 1:
        return 0.0
    grads = reduce_scatter_s(params * grad_bytes, n, bandwidth)
    weights = reduce_scatter_s(params * BYTES_16BIT, n, bandwidth)
    if sharding == "ddp":
        return 2 * grads
    if sharding == "zero1":
        return grads + weights
    return micro_batches * (grads + 2 * weights)


def place(*, per_node: int, intra: float | None, inter: float | None, tp: int, pp: int,
          dp: int, cp: int = 1, ep: int = 1, group: int | None = None,
          group_link: float | None = None) -> Links:
    """Per-rank links of a plan whose ranks are ordered TP, CP, PP, DP (Llama 3 Herd,
    Sec. 3.3.2): a group whose span fits in a node uses the node's link (``intra``, per
    chip); in an UltraServer of ``group`` chips, ``group_link`` (per chip); else the network
    (``inter``, per node) shared by the node's chips. Expert parallelism sits next to TP
    inside DP. A ring over several levels runs at its slowest link."""
    net = None if inter is None else inter / per_node

    def link(span: int) -> float | None:
        if span <= per_node:
            return intra
        if group is not None and group_link is not None and span <= group:
            return group_link
        return net

    return Links(intra=intra, cp=link(tp * cp), pp=link(tp * cp * pp),
                 dp=link(tp * cp * pp * dp), ep=link(tp * ep))
