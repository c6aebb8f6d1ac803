"""torchrun integration inside a worker.

A worker started by torchrun (``torch.distributed.run``) finds ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE`` and ``GROUP_RANK`` in its environment. It joins the
process group of its backend (gloo, nccl, neuron, xla), wraps the model for data
parallelism (DDP, or FSDP2 with ``fully_shard`` per block), measures like a single
process, and sends its record to rank 0, which writes the only record.

Rank 0 turns the gathered per-rank records into the one record with
``bench.records.record.Record.aggregate`` (tokens once per TP group, the slowest rank's window,
chips per host on a CPU, each energy sensor once).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

_objects_group: dist.ProcessGroup | None = None


@dataclass(frozen=True)
class DistContext:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    node_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env(environ: dict[str, str] | None = None) -> DistContext | None:
    """The torchrun worker context, or None outside torchrun."""
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    return DistContext(
        rank=int(env["RANK"]),
        local_rank=int(env.get("LOCAL_RANK", 0)),
        world_size=int(env["WORLD_SIZE"]),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])),
        node_rank=int(env.get("GROUP_RANK", 0)),
    )


def init_process_group(dist_backend: str, timeout_s: float, world_size: int) -> None:
    """Join the job's process group; a peer that dies makes collectives fail after
    ``timeout_s`` instead of hanging. Refuses a group smaller than torchrun's world (as
    torch-xla's single-process PJRT CPU client makes one)."""
    global _objects_group
    timeout = timedelta(seconds=timeout_s)
    if dist_backend == "xla":
        import torch_xla.distributed.xla_backend  # noqa: F401  (registers "xla")

        dist.init_process_group("xla", init_method="xla://", timeout=timeout)
    else:
        dist.init_process_group(dist_backend, timeout=timeout)
    if dist.get_world_size() != world_size:
        raise RuntimeError(f"the {dist_backend} process group has {dist.get_world_size()} "
                           f"rank(s) where torchrun started {world_size}: this backend does "
                           "not run several processes here")
    # records travel as pickled objects on the host: a gloo group whatever the device
    _objects_group = None if dist_backend == "gloo" else dist.new_group(backend="gloo",
                                                                        timeout=timeout)


def wrap(model: torch.nn.Module, parallel: str, device: torch.device,
         replicate_in_optimizer: bool) -> torch.nn.Module:
    """Data-parallel model: DDP (gradients all-reduced in backward) or FSDP2 (parameters,
    gradients and optimizer states sharded per block). ``replicate_in_optimizer``: the
    backend reduces gradients in its optimizer step instead (``xm.optimizer_step``)."""
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.layers:
            fully_shard(block)
        fully_shard(model)
        return model
    if replicate_in_optimizer:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=_objects_group)
    return out


def barrier() -> None:
    dist.barrier(group=_objects_group)


def destroy() -> None:
    """Destroy the process groups while the interpreter is fully alive. The model's reference
    cycles are collected first: DDP's reducer holds the group, and a group whose C++ object
    outlives this call is destroyed during interpreter shutdown, where Gloo's worker threads
    can abort the process (SIGABRT; pytorch/pytorch#179291)."""
    global _objects_group
    _objects_group = None
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()
