"""The collectives of `trnbench comm` on one rank: their buffers, one call each through
torch.distributed, the timed window, and the check of a result (docs/cli/comm.md, "Method").

The window of one op and size, after its warm-up calls:

    synchronise -> barrier -> synchronise -> clock -> ITERS calls issued back to back
                -> synchronise -> clock

time per op = window / ITERS, the method of nccl-tests (host clock around a loop closed by
a stream synchronisation). The timed buffers hold zeros (sums stay finite); the check runs
once after the window on buffers filled per rank, and counts the elements that differ from
the expected result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

# the non-deprecated names of torch >= 2.13 where present (the same signatures)
ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
EXACT_SUMS = {torch.float32: 2**24, torch.bfloat16: 256}  # sums of ones exact up to here


def api() -> dict[str, str]:
    """The torch.distributed call behind each op (the record's ``comm.api``)."""
    return {"all_reduce": "all_reduce", "all_gather": ALL_GATHER.__name__,
            "reduce_scatter": REDUCE_SCATTER.__name__, "all_to_all": "all_to_all_single",
            "send_recv": "batch_isend_irecv (isend to rank+1, irecv from rank-1)"}


@dataclass
class Collective:
    """One op on ``count`` elements (of S) over ``ranks`` ranks: its input and output."""

    op: str
    count: int
    ranks: int
    rank: int
    dtype: torch.dtype
    device: torch.device

    def __post_init__(self) -> None:
        n, count = self.ranks, self.count
        shapes = {"all_reduce": (count, count), "all_gather": (count // n, count),
                  "reduce_scatter": (count, count // n), "all_to_all": (count, count),
                  "send_recv": (count, count)}
        inp, out = shapes[self.op]
        self.input = torch.zeros(inp, dtype=self.dtype, device=self.device)
        self.output = self.input if self.op == "all_reduce" else torch.zeros(
            out, dtype=self.dtype, device=self.device)

    def __call__(self) -> None:
        """Issue the op once (no host wait where the backend enqueues it)."""
        op = self.op
        if op == "all_reduce":
            dist.all_reduce(self.input)
        elif op == "all_gather":
            ALL_GATHER(self.output, self.input)
        elif op == "reduce_scatter":
            REDUCE_SCATTER(self.output, self.input)
        elif op == "all_to_all":
            dist.all_to_all_single(self.output, self.input)
        else:
            n, r = self.ranks, self.rank
            for work in dist.batch_isend_irecv([dist.P2POp(dist.isend, self.input, (r + 1) % n),
                                                dist.P2POp(dist.irecv, self.output,
                                                           (r - 1) % n)]):
                work.wait()

    def wrong(self) -> int | None:
        """Run the op once on inputs that tell the ranks apart and count the output elements
        that are not the expected result; None where a sum is not exact in the dtype."""
        n, r, op = self.ranks, self.rank, self.op
        reduces = op in ("all_reduce", "reduce_scatter")
        if reduces and n > EXACT_SUMS.get(self.dtype, 0):
            return None
        self.input.fill_(1 if reduces else r)
        self()
        if reduces:  # every rank gave ones: every element is n
            return int((self.output != n).sum())
        if op == "send_recv":  # from rank r - 1
            return int((self.output != (r - 1) % n).sum())
        chunks = self.output.view(n, -1)  # chunk i came from rank i
        expected = torch.arange(n, dtype=self.dtype, device=self.device).unsqueeze(1)
        return int((chunks != expected).sum())


def window(call: Callable[[], None], iters: int, sync: Callable[[], None],
           barrier: Callable[[], None], clock: Callable[[], float] = time.perf_counter
           ) -> float:
    """Seconds of ``iters`` calls issued back to back between two synchronisations, the
    ranks started together (module docstring)."""
    sync()
    barrier()
    sync()
    start = clock()
    for _ in range(iters):
        call()
    sync()
    return clock() - start
