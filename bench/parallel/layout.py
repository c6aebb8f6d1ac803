"""The layout of a run's ranks: TP inside a node, data parallelism over the rest.

Ranks form a DeviceMesh, row-major with TP innermost (``rank = dp_index * tp + tp_index``):
``(dp, tp)`` for ddp/fsdp, ``(dp_replicate, dp_shard, tp)`` for hsdp (HSDP: a replica's
parameters sharded over ``dp_shard`` ranks, default the ranks of one node / tp, and
replicated over the ``dp_replicate`` groups). The ranks of one TP group train on the same
sequences; each data-parallel index has its own.

Every constraint is checked here, before torchrun starts a process, as one ConfigError
naming the flag: TP divides the ranks per node, the query and KV heads (GQA: a rank holds
whole KV heads) and the vocabulary (embedding rows, output columns); a mixture-of-experts
or tied-embedding model runs without TP; the XLA backends run data parallelism only.
This module imports no torch.distributed, so the CLI checks cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.inputs.config import ConfigError, RunConfig

XLA_BACKENDS = ("xla", "neuron-xla")
SELECTIVE_EVERY = 2  # --ac selective: every 2nd block checkpointed (blocks 1, 3, 5, ...)


def checkpointed_blocks(mode: str, n_layers: int) -> list[int]:
    """Indices of the blocks whose activations ``--ac mode`` recomputes in backward."""
    if mode == "full":
        return list(range(n_layers))
    if mode == "selective":
        return list(range(SELECTIVE_EVERY - 1, n_layers, SELECTIVE_EVERY))
    return []


@dataclass(frozen=True)
class Layout:
    """Sizes of the mesh dimensions of one run."""

    tp: int
    dp: int
    dp_replicate: int
    dp_shard: int
    parallel: str

    @property
    def mesh_shape(self) -> tuple[int, ...]:
        if self.parallel == "hsdp":
            return (self.dp_replicate, self.dp_shard, self.tp)
        return (self.dp, self.tp)

    @property
    def mesh_names(self) -> tuple[str, ...]:
        return ("dp_replicate", "dp_shard", "tp") if self.parallel == "hsdp" else ("dp", "tp")

    @property
    def shards(self) -> int:
        """Ranks over which parameters, gradients and optimizer states are sharded."""
        return {"ddp": 1, "fsdp": self.dp, "hsdp": self.dp_shard}[self.parallel]

    def dp_rank(self, rank: int) -> int:
        """The data-parallel index of ``rank`` (its TP group's sequences)."""
        return rank // self.tp

    def as_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "dp": self.dp, "dp_replicate": self.dp_replicate,
                "dp_shard": self.dp_shard, "parallel": self.parallel,
                "mesh": dict(zip(self.mesh_names, self.mesh_shape, strict=True)),
                "sequence_parallel": self.tp > 1, "loss_parallel": self.tp > 1}


def check_model(cfg: RunConfig, model: Any) -> None:
    """The constraints of the model, backend and precision on ``cfg`` (no world size); the
    fields' own ranges are checked before (``config.validate``)."""
    from models.configs import MoEConfig  # torch-free: `trnbench plan` needs no torch here

    if cfg.dp_shard and cfg.parallel != "hsdp":
        raise ConfigError("--dp-shard", f"applies to --parallel hsdp only, not {cfg.parallel}")
    if cfg.backend in XLA_BACKENDS:
        for flag, value, default in (("--tp", cfg.tp, 1), ("--ac", cfg.ac, "none"),
                                     ("--param-dtype", cfg.param_dtype, "fp32")):
            if value != default:
                raise ConfigError(flag, f"{value} is not supported on the {cfg.backend} "
                                  "backend (torch-xla runs data parallelism only here); use "
                                  "--backend neuron (TorchNeuron) or cuda")
        if cfg.parallel == "hsdp":
            raise ConfigError("--parallel", f"hsdp is not supported on the {cfg.backend} "
                              "backend; accepted there: ddp, fsdp")
    if cfg.param_dtype == "bf16" and (cfg.precision != "bf16" or cfg.parallel == "ddp"):
        raise ConfigError("--param-dtype", "bf16 (FSDP2 MixedPrecisionPolicy) needs "
                          "--precision bf16 and --parallel fsdp or hsdp")
    if cfg.tp == 1:
        return
    if isinstance(model, MoEConfig):
        raise ConfigError("--tp", f"{cfg.model} is a mixture of experts: TP of the experts "
                          "is not supported, use --tp 1")
    if model.tie_embeddings:
        raise ConfigError("--tp", f"{cfg.model} ties its embedding and output head: TP "
                          "shards them on different dimensions, use --tp 1")
    for what, count in (("query heads", model.n_heads), ("KV heads", model.n_kv_heads),
                        ("vocabulary", model.vocab_size)):
        if count % cfg.tp:
            raise ConfigError("--tp", f"{cfg.tp} does not divide the {count:,} {what} of "
                              f"{cfg.model}")


def for_world(cfg: RunConfig, per_node: int, nnodes: int) -> Layout:
    """The layout of ``cfg`` on ``nnodes`` nodes of ``per_node`` ranks; ConfigError naming
    the constraint when it cannot exist."""
    world = per_node * nnodes
    if per_node % cfg.tp:
        raise ConfigError("--tp", f"{cfg.tp} does not divide the {per_node} ranks per node "
                          "(--nproc): TP stays inside a node")
    dp = world // cfg.tp
    if cfg.parallel == "ddp" and cfg.tp > 1 and dp > 1:
        raise ConfigError("--parallel", "ddp does not replicate a tensor-parallel model "
                          "(DDP takes no DTensor parameters); with --tp > 1 use fsdp or hsdp")
    if cfg.parallel != "hsdp":
        return Layout(cfg.tp, dp, 1 if cfg.parallel == "fsdp" else dp,
                      dp if cfg.parallel == "fsdp" else 1, cfg.parallel)
    shard = cfg.dp_shard or per_node // cfg.tp
    if dp % shard:
        raise ConfigError("--dp-shard", f"{shard} does not divide the {dp} data-parallel "
                          "ranks")
    return Layout(cfg.tp, dp, dp // shard, shard, "hsdp")
