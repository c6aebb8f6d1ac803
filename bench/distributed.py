"""torchrun integration inside a worker, and the aggregation of ranks into one record.

A worker started by torchrun (``torch.distributed.run``) finds ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE`` and ``GROUP_RANK`` in its environment. It joins the
process group of its backend (gloo, nccl, neuron, xla), wraps the model for data
parallelism (DDP, or FSDP2 with ``fully_shard`` per block), measures like a single
process, and sends its figures to rank 0, which writes the only record.

Aggregation (the one place it is computed):
- tokens/s (global) = sum of all ranks' window tokens / TP / the slowest rank's window
  seconds: the TP ranks of a group train on the same tokens, counted once per group;
- chips = sum over ranks; per chip = global / chips;
- MFU = model FLOPs per token x global tokens/s / (peak x chips); HFU the same with the
  hardware FLOPs (activation recomputation included);
- step time: the slowest rank's statistics, every rank's kept under ``ranks``;
- loss: mean over ranks, per step too (each data-parallel index sees its own share of the
  global batch, all shares of equal size: the loss of the global batch); memory: the
  largest rank's peak;
- energy: each sensor device counted once, keyed by host and device (ranks that share a
  chip's Neuron sensor or a node's RAPL package read the same device), summed; a
  ``modelled`` figure is per rank and summed over ranks. Average power over the slowest
  rank's window. Null if any rank has no reading.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from bench import metrics

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


def aggregate_energy(per_rank: list[dict[str, Any]], tokens: int, window_s: float
                     ) -> dict[str, Any] | None:
    """The record's energy block over all ranks (see the module docstring)."""
    blocks = [r.get("energy") for r in per_rank]
    first = blocks[0]
    if first is None or any(b is None or b["joules"] is None for b in blocks):
        return first
    if first["method"] == "modelled":
        devices = {f"rank{i}": b["joules"] for i, b in enumerate(blocks)}
    else:
        devices = {f"{r['host']}/{dev}": j for r, b in zip(per_rank, blocks, strict=True)
                   for dev, j in b["device_joules"].items()}
    joules = sum(j for j in devices.values() if j is not None)
    return {**first, "joules": joules, "device_joules": devices,
            "j_per_token": joules / tokens,
            "tokens_per_kwh": tokens / (joules / 3.6e6) if joules else None,
            "avg_power_w": joules / window_s, "interval_s": window_s}


def aggregate(per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """One record's metric fields from the per-rank fields (see the module docstring)."""
    first = per_rank[0]
    slowest = max(per_rank, key=lambda r: r["window_s"])
    tp = (first.get("parallelism") or {}).get("tp", 1)
    tokens = sum(r["tokens"] for r in per_rank) // tp
    window = slowest["window_s"]
    tokens_per_s = metrics.tokens_per_second(tokens, window)
    rank_chips = [r["device"]["chips"] for r in per_rank]
    mfu_chips = None if any(c is None for c in rank_chips) else sum(rank_chips)
    chips = mfu_chips
    if first["device"].get("kind") == "cpu":
        # a CPU is one chip however many ranks share it: chips per host (each rank's peak
        # is its own share of the host, so the MFU still divides by every rank's)
        chips = sum({r["host"]: r["device"]["chips"] for r in per_rank}.values())
    peak = first["peak"]["value"] if first["peak"] else None
    fpt = first["model"]["flops_per_token"]
    hosts = {r["host"] for r in per_rank}
    memories = [r["memory"]["peak_bytes"] for r in per_rank]
    out = dict(first)
    out.update(
        world_size=len(per_rank),
        nodes=len(hosts),
        device={**first["device"], "chips": chips, "devices_used": len(per_rank)},
        tokens=tokens,
        window_s=window,
        tokens_per_s=tokens_per_s,
        tokens_per_s_per_chip=tokens_per_s / chips if chips else None,
        mfu=metrics.mfu(fpt, tokens_per_s, peak, mfu_chips or 0),
        hfu=metrics.mfu(first["model"]["hardware_flops_per_token"], tokens_per_s, peak,
                        mfu_chips or 0),
        step_time=slowest["step_time"],
        step_times_s=slowest["step_times_s"],
        loss_first=sum(r["loss_first"] for r in per_rank) / len(per_rank),
        loss_last=sum(r["loss_last"] for r in per_rank) / len(per_rank),
        losses=[sum(step) / len(per_rank) for step in zip(*(r["losses"] for r in per_rank),
                                                            strict=True)],
        memory={**first["memory"], "peak_bytes": None if None in memories else max(memories)},
        energy=aggregate_energy(per_rank, tokens, window),
        warnings=sorted({w for r in per_rank for w in r["warnings"]}),
        flags=sorted({f for r in per_rank for f in r.get("flags", [])}),
        ranks=[{
            "rank": i, "host": r["host"], "tokens": r["tokens"], "window_s": r["window_s"],
            "tokens_per_s": r["tokens_per_s"], "step_time": r["step_time"],
            "loss_first": r["loss_first"], "loss_last": r["loss_last"],
            "peak_bytes": r["memory"]["peak_bytes"],
        } for i, r in enumerate(per_rank)],
    )
    out.pop("host", None)
    return out
