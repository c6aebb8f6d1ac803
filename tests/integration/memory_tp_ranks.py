"""A torchrun rank of tests/integration/test_memory_tp.py: TP 2 under gloo on the CPU, for
each model, precision and checkpointing mode one step with the bytes its forward saves for
backward counted (tests/memory_probe.py) beside what the plan predicts for this rank;
rank r writes its rows to ``OUT.r.json``.

    python -m torch.distributed.run --standalone --nproc-per-node=2 memory_tp_ranks.py OUT
"""

from __future__ import annotations

import json
import sys

import torch

from bench.backends import selection
from bench.train import distributed
from models import registry
from tests.memory_probe import Probe

SHAPES = {"tiny": (2, 256), "125m": (1, 64)}


def main(out: str) -> None:
    ctx = distributed.from_env()
    torch.distributed.init_process_group("gloo")
    rows = []
    for name, (b, t) in SHAPES.items():
        torch.manual_seed(0)
        base = registry.build(registry.get(name), device="cpu").train()
        for precision in ("fp32", "bf16"):
            for ac in ("none", "selective", "full"):
                cfg = selection.resolve_run("cpu", {"model": name, "batch": b, "seq": t,
                                                    "precision": precision, "ac": ac,
                                                    "tp": 2})[0]
                probe = Probe.build(cfg, base, ctx)
                counter = probe.saved()
                pred = probe.prediction()
                rows.append({"model": name, "precision": precision, "ac": ac,
                             "tp": pred_tp(probe), "saved": counter.total("activation"),
                             "autocast": counter.total("autocast"), "planned": pred.saved})
    with open(f"{out}.{ctx.rank}.json", "w") as f:
        json.dump(rows, f)
    torch.distributed.destroy_process_group()


def pred_tp(probe: Probe) -> int:
    return probe.placement.layout.tp


if __name__ == "__main__":
    main(sys.argv[1])
