"""A rank's context from the environment torchrun gives it (the runs through torchrun:
tests/integration/test_distributed.py)."""

from __future__ import annotations

from bench.train import distributed


def test_context_from_torchrun_environment():
    assert distributed.from_env({}) is None
    ctx = distributed.from_env({"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1",
                                "LOCAL_WORLD_SIZE": "8", "GROUP_RANK": "1"})
    assert (ctx.rank, ctx.local_rank, ctx.node_rank, ctx.is_main) == (9, 1, 1, False)
