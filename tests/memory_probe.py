"""What a training step of this code really holds on the CPU, to check the memory model
(bench/parallel/activations.py) against: the bytes autograd saves for backward, counted with
``torch.autograd.graph.saved_tensors_hooks``, and the CPU allocator's peak over a step from
``torch.profiler.profile(profile_memory=True)``. Used in-process (tests/unit/test_memory_model.py)
and in torchrun ranks (tests/integration/memory_tp_ranks.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.backends.cpu import CpuBackend
from bench.inputs.config import RunConfig
from bench.parallel import apply, memory_plan
from bench.train import distributed
from bench.train.data import SyntheticBatches
from bench.train.runner import ADAMW, make_train_step

# autograd nodes between a parameter and what an op saves of it: a cast or a view
_CAST_OR_VIEW = {"ToCopyBackward0", "_ToCopyBackward0", "TBackward0", "ViewBackward0",
                 "TransposeBackward0", "ExpandBackward0", "UnsafeViewBackward0",
                 "AliasBackward0", "PermuteBackward0", "ReshapeAliasBackward0"}


def _local(t: torch.Tensor) -> torch.Tensor:
    """The tensor holding ``t``'s data on this rank (a DTensor's shard, a collective's result)."""
    from torch.distributed.tensor import DTensor

    t = t._local_tensor if isinstance(t, DTensor) else t
    while type(t).__name__ == "AsyncCollectiveTensor":
        t = t.elem
    return t


def _storage(t: torch.Tensor) -> tuple[int, int]:
    s = _local(t).untyped_storage()
    return s.data_ptr(), s.nbytes()


def _of_parameter(t: torch.Tensor) -> bool:
    """Whether ``t`` is a cast or view of a parameter (autocast's bf16 copy of a weight)."""
    fn = t.grad_fn
    for _ in range(8):
        if fn is None:
            return False
        name = type(fn).__name__
        if name == "AccumulateGrad":
            return True
        if name not in _CAST_OR_VIEW and "ToLocal" not in name and "FromLocal" not in name:
            return False
        nxt = [f for f, _ in fn.next_functions if f is not None]
        if len(nxt) != 1:
            return False
        fn = nxt[0]
    return False


class SavedBytes:
    """Storages autograd saves while the hooks are on, each counted once, by kind:
    activation, autocast (casts of parameters), parameter, buffer. A checkpointed block's
    inputs, which its recompute closure holds, are counted from a forward pre-hook. No
    reference is kept: a saved storage lives until backward, so its address is its key."""

    def __init__(self, model: nn.Module) -> None:
        self.params = {_storage(p)[0] for p in model.parameters()}
        self.buffers = {_storage(b)[0] for b in model.buffers()}
        self.seen: dict[int, tuple[str, int]] = {}
        self.handles = [m.register_forward_pre_hook(self._inputs) for m in model.modules()
                        if type(m).__name__ == "CheckpointWrapper"]

    def _inputs(self, _module: nn.Module, args: tuple) -> None:
        for a in args:
            if isinstance(a, torch.Tensor):
                self._add(a)

    def _add(self, t: torch.Tensor) -> None:
        ptr, nbytes = _storage(t)
        if ptr in self.seen:
            return
        if ptr in self.params or (t.grad_fn is None and t.requires_grad):
            kind = "parameter"
        elif ptr in self.buffers:
            kind = "buffer"
        else:
            kind = "autocast" if _of_parameter(t) else "activation"
        self.seen[ptr] = (kind, nbytes)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self._add(t)
        return t

    def hooks(self) -> torch.autograd.graph.saved_tensors_hooks:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def total(self, kind: str) -> int:
        return sum(n for k, n in self.seen.values() if k == kind)

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def allocator_peak(prof: torch.profiler.profile) -> tuple[int, int]:
    """(peak, end) of the bytes the CPU allocator holds above what it held when profiling
    started: its allocation records in time order, each free matched to its allocation by
    address (a free of a block allocated before is left out, as is a stale size the
    allocator's reporter may keep from an earlier profiling session)."""
    stack, events = list(prof.profiler.kineto_results.experimental_event_tree()), []
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if type(node.extra_fields).__name__ == "_ExtraFields_Allocation":
            f = node.extra_fields
            events.append((node.start_time_ns, f.id, f.alloc_size, f.ptr))
    live: dict[int, int] = {}
    held = peak = 0
    for _, _, size, ptr in sorted(events):
        if size > 0:
            live[ptr] = size
            held += size
            peak = max(peak, held)
        elif ptr in live:
            held -= live.pop(ptr)
    return peak, held


def tensor_bytes(tensors: Any) -> int:
    """Bytes of the distinct storages of ``tensors``."""
    return sum(dict(_storage(t) for t in tensors).values())


@dataclass
class Probe:
    """One rank's model, optimizer and step as ``bench.train.runner.prepare`` makes them on
    the CPU, and its batch."""

    cfg: RunConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: Any
    batch: tuple[torch.Tensor, torch.Tensor]
    placement: apply.Placement

    @classmethod
    def build(cls, cfg: RunConfig, base: nn.Module,
              ctx: distributed.DistContext | None = None) -> Probe:
        """A copy of ``base`` (the registry model, seeded) placed as ``cfg`` says."""
        backend = CpuBackend()
        model, placement = apply.prepare_model(copy.deepcopy(base), cfg, ctx, backend.device,
                                               False)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, **ADAMW,
                                      **backend.optimizer_options())
        step = make_train_step(model, optimizer, backend, cfg.precision, model,
                               loss_parallel=placement.loss_parallel)
        shard = placement.data_shard(ctx.rank if ctx else 0)
        data = SyntheticBatches(cfg.batch, cfg.seq, base.cfg.vocab_size, cfg.seed,
                                backend.device, pool=1, shard=shard)
        return cls(cfg, model, optimizer, step, data[0], placement)

    def saved(self) -> SavedBytes:
        """One step with the bytes its forward saves for backward counted."""
        counter = SavedBytes(self.model)
        with counter.hooks():
            self.step(*self.batch)
        counter.close()
        return counter

    def profiled(self) -> tuple[SavedBytes, int, int]:
        """A warm-up step (AdamW's states come to exist), then one step under the profiler
        with its saved bytes counted: the counter, the parameters and AdamW states, and the
        allocator's peak above them over the step."""
        self.step(*self.batch)
        cpu = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=cpu, profile_memory=True) as prof:
            counter = self.saved()
        states = (v for s in self.optimizer.state.values() for v in s.values()
                  if isinstance(v, torch.Tensor))
        resident = tensor_bytes(self.model.parameters()) + tensor_bytes(states)
        return counter, resident, allocator_peak(prof)[0]

    def prediction(self) -> memory_plan.Prediction:
        return memory_plan.predict(self.cfg, self.placement.layout, 0.0)
