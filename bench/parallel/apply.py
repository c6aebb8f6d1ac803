"""Apply a run's layout to a model with torch.distributed's own parallelism APIs.

Derivation: docs/memory.md, "Applying a layout"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.inputs.config import RunConfig
from bench.parallel import layout as layouts
from bench.train import distributed


def tensor_parallel(model: nn.Module, tp_mesh: Any) -> None:
    """Shard a Llama (models/llama.py) over ``tp_mesh`` with sequence parallelism; its
    forward returns vocabulary-sharded DTensor logits (a loss under ``loss_parallel()``)."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        PrepareModuleInput,
        RowwiseParallel,
        SequenceParallel,
        parallelize_module,
    )

    parallelize_module(model, tp_mesh, {
        "tok_embeddings": RowwiseParallel(input_layouts=Replicate(), output_layouts=Shard(1)),
        "norm": SequenceParallel(),
        "output": ColwiseParallel(input_layouts=Shard(1), output_layouts=Shard(-1),
                                  use_local_output=False),  # loss parallelism
    })
    for block in model.layers:
        parallelize_module(block, tp_mesh, {
            "attention_norm": SequenceParallel(),
            "attention": PrepareModuleInput(input_layouts=(Shard(1), None, None),
                                            desired_input_layouts=(Replicate(), None, None)),
            "attention.wq": ColwiseParallel(),
            "attention.wk": ColwiseParallel(),
            "attention.wv": ColwiseParallel(),
            "attention.wo": RowwiseParallel(output_layouts=Shard(1)),
            "ffn_norm": SequenceParallel(),
            "feed_forward": PrepareModuleInput(input_layouts=(Shard(1),),
                                               desired_input_layouts=(Replicate(),)),
            "feed_forward.w1": ColwiseParallel(),
            "feed_forward.w2": RowwiseParallel(output_layouts=Shard(1)),
            "feed_forward.w3": ColwiseParallel(),
        })


def activation_checkpointing(model: nn.Module, mode: str) -> list[int]:
    """Wrap the blocks of ``checkpointed_blocks`` in place; returns their indices."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        checkpoint_wrapper,
    )

    blocks = layouts.checkpointed_blocks(mode, len(model.layers))
    for i in blocks:
        model.layers[i] = checkpoint_wrapper(model.layers[i],
                                             checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    return blocks


def _fully_shard(model: nn.Module, mesh: Any, param_dtype: str) -> None:
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
          if param_dtype == "bf16" else MixedPrecisionPolicy())
    for block in model.layers:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)


def ac_fields(cfg: RunConfig, n_layers: int, blocks: list[int]) -> dict[str, Any]:
    return {"mode": cfg.ac, "every": {"full": 1, "selective": layouts.SELECTIVE_EVERY}.get(cfg.ac),
            "blocks": len(blocks), "of_blocks": n_layers}


def precision_fields(cfg: RunConfig) -> dict[str, Any]:
    """What ``--param-dtype`` changes in the record's precision block (its mode in words:
    ``precision_mode``)."""
    if cfg.param_dtype != "bf16":
        return {}
    return {"compute_param_dtype": "bfloat16",
            "reduce_dtype": "float32", "master_copy": True}


def precision_mode(cfg: RunConfig) -> str | None:
    """The record's ``precision.mode`` under ``--param-dtype bf16`` (else None: the
    backend's)."""
    if cfg.param_dtype != "bf16":
        return None
    return ("FSDP2 mixed precision: bf16 parameters for compute, fp32 master weights, "
            "optimizer states and gradient reduction")


@dataclass(frozen=True)
class Placement:
    """Where a model runs: its layout (one process: ``for_world(cfg, 1, 1)``), whether it
    runs under torchrun, the checkpointed blocks and the predicted memory per rank."""

    layout: layouts.Layout
    distributed: bool
    ac: dict[str, Any]  # the record's ac block (ac_fields)
    memory_predicted: dict[str, Any]  # bench.parallel.memory_plan.record_block

    @property
    def loss_parallel(self) -> bool:
        """The logits are vocabulary-sharded (TP): the loss runs under ``loss_parallel()``."""
        return self.layout.tp > 1

    @property
    def parallelism(self) -> dict[str, Any] | None:
        """The record's parallelism block (None: one process)."""
        return self.layout.as_dict() if self.distributed else None

    def data_shard(self, rank: int) -> tuple[int, int]:
        """(index, count) of the share of each global batch that ``rank`` trains: a TP
        group shares its sequences."""
        if not self.distributed:
            return 0, 1
        return self.layout.dp_rank(rank), self.layout.dp


def prepare_model(model: nn.Module, cfg: RunConfig, ctx: distributed.DistContext | None,
                  device: torch.device, replicate_in_optimizer: bool
                  ) -> tuple[nn.Module, Placement]:
    """The model to train (TP, AC and data parallelism applied) and its placement. Without
    ``ctx`` (one process) only AC applies."""
    from bench.parallel import memory_plan

    layout = (layouts.for_world(cfg, ctx.local_world_size, ctx.world_size // ctx.local_world_size)
              if ctx else layouts.for_world(cfg, 1, 1))
    plain = ctx is None or (cfg.tp == 1 and cfg.parallel != "hsdp" and cfg.param_dtype == "fp32")
    mesh = None
    if not plain:
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh(device.type, layout.mesh_shape, mesh_dim_names=layout.mesh_names)
        if layout.tp > 1:
            tensor_parallel(model, mesh["tp"])
    blocks = activation_checkpointing(model, cfg.ac)  # after TP, before data parallelism
    placement = Placement(layout, ctx is not None, ac_fields(cfg, len(model.layers), blocks),
                          memory_plan.record_block(cfg, layout))
    if ctx is None:
        return model, placement
    if plain:
        return distributed.wrap(model, cfg.parallel, device, replicate_in_optimizer), placement
    if cfg.parallel == "fsdp":
        _fully_shard(model, mesh["dp"], cfg.param_dtype)
    elif cfg.parallel == "hsdp":
        _fully_shard(model, mesh["dp_replicate", "dp_shard"], cfg.param_dtype)
    return model, placement  # ddp here is TP alone (dp 1): layout refuses DDP of a TP model
