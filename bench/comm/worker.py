"""`trnbench comm` on one torchrun rank: join the run's process group, time every op and
size (bench.comm.collectives), and on rank 0 store the one record of the run.

A failure midway is handled as ``trnbench run`` handles it (bench.train.runner.execute): a
failing rank prints one line naming itself and raises, so that torchrun stops the others;
rank 0 stores the failure itself only where no launcher (which passes the run id) will.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from bench.backends import environment
from bench.backends.base import Backend
from bench.backends.selection import Selection
from bench.comm import collectives, result
from bench.comm.config import CommConfig, point_bytes
from bench.inputs.config import PRECISION_DTYPES
from bench.inputs.errors import signal_of
from bench.launch import launcher
from bench.records import record as rec
from bench.records import store
from bench.records.bandwidth import size_text
from bench.train import distributed

Progress = Callable[[int, int, str], None]
"""progress(done, total, what was just measured)."""

METHOD = ("host clock around the timed iterations issued back to back, between device "
          "synchronisations (synchronise, barrier, synchronise before; synchronise after); "
          "time = the slowest rank's window / iterations, after the warm-up iterations")


def measure(cfg: CommConfig, backend: Backend, ctx: distributed.DistContext,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """This rank's window and check of every op and size, in order."""
    dtype = PRECISION_DTYPES[cfg.dtype]
    plan = [(op, *point_bytes(op, size, ctx.world_size, cfg.element_bytes))
            for op in cfg.ops for size in cfg.size_list]
    out = []
    for i, (op, size_bytes, count) in enumerate(plan):
        c = collectives.Collective(op, count, ctx.world_size, ctx.rank, dtype, backend.device)
        for _ in range(cfg.warmup):
            c()
        seconds = collectives.window(c, cfg.iters, backend.synchronize, dist.barrier)
        out.append({"op": op, "size_bytes": size_bytes, "count": count, "window_s": seconds,
                    "wrong": c.wrong()})
        del c
        if progress:
            busbw = result.point(op, ctx.world_size, size_bytes, count,
                                 seconds / cfg.iters * 1e6).busbw_gbs
            progress(i + 1, len(plan), f"{op} {size_text(size_bytes)}: busbw {busbw:,.3g} GB/s "
                                       "(rank 0)")
    return out


def _warnings(cfg: CommConfig, ranks_per_node: int) -> list[str]:
    """What to know about the figures of a run on this host."""
    notes = []
    if cfg.backend == "cpu":
        notes.append("gloo on a CPU host: the bandwidth of its transport between processes, "
                     "not of a device fabric")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if cpus and ranks_per_node > cpus:
            notes.append(f"{ranks_per_node} ranks per node share {cpus} CPUs: the times "
                         "include waiting for a core")
    return notes


def assemble(cfg: CommConfig, record: rec.Record, backend: Backend,
             gathered: list[dict[str, Any]]) -> rec.Record:
    """The run's record from every rank's host and points (rank order): each point's time is
    the slowest rank's window / iterations."""
    ranks = len(gathered)
    hosts = [g["host"] for g in gathered]
    nodes = len(set(hosts))
    points = []
    for i, first in enumerate(gathered[0]["points"]):
        times = [g["points"][i]["window_s"] / cfg.iters * 1e6 for g in gathered]
        wrongs = [g["points"][i]["wrong"] for g in gathered]
        points.append(result.point(
            first["op"], ranks, first["size_bytes"], first["count"], max(times),
            rank_time_us=times, wrong=None if None in wrongs else sum(wrongs)))
    device = backend.describe()
    versions = dict(device.versions or {})
    if backend.dist_backend == "nccl":
        versions["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    device = replace(device, devices_used=ranks, versions=versions)
    wrong = [p for p in points if p.wrong]
    flags = [f"{len(wrong)} point(s) gave a wrong result in the check after the window: "
             + ", ".join(f"{p.op} {size_text(p.size_bytes)}" for p in wrong)] if wrong else []
    comm = result.part(tool="trnbench", method=METHOD, dtype=cfg.dtype, ranks=ranks,
                       nodes=nodes, points=points, device_kind=device.kind,
                       warmup=cfg.warmup, iters=cfg.iters,
                       api={op: collectives.api()[op] for op in cfg.ops})
    return replace(record, device=device, world_size=ranks, nodes=nodes, comm=comm,
                   warnings=_warnings(cfg, ranks // nodes), flags=flags)


def execute(cfg: CommConfig, selection: Selection, results: Path | None,
            ctx: distributed.DistContext, run_id: str | None = None,
            tags: dict[str, str] | None = None, progress: Progress | None = None
            ) -> rec.Record:
    """Measure ``cfg`` on this rank; rank 0 gathers every rank's points and appends the
    record (ok, failed or interrupted) to ``results``."""
    record = rec.Record.start(cfg.as_dict(), selection, environment.capture(), tags,
                              run_id=run_id, world_size=ctx.world_size)
    writes = results is not None and ctx.is_main
    try:
        backend = selection.backend(ctx.local_rank)
        distributed.init_process_group(backend.dist_backend, cfg.dist_timeout_s,
                                       ctx.world_size)
        mine = measure(cfg, backend, ctx, progress if ctx.is_main else None)
        gathered = distributed.gather({"host": record.environment.get("host"), "points": mine})
        if ctx.is_main:
            record = assemble(cfg, record, backend, gathered)
    except KeyboardInterrupt as e:  # SIGINT, or SIGTERM (bench.inputs.errors.Interrupted)
        record = record.failed(f"interrupted by {signal_of(e).name}", "interrupted")
        if writes:
            store.append(results, record)
        raise
    except Exception as e:  # noqa: BLE001 - any failure midway is a failed run, stored
        error = f"{type(e).__name__}: {e}"
        launcher.say_rank_failed(ctx.rank, error)
        traceback.clear_frames(e.__traceback__)
        if not ctx.is_main or run_id is not None:
            raise  # under the launcher (run_id given) the launcher stores the failure
        record = record.failed(f"rank {ctx.rank} failed: {error}")
    finally:
        distributed.destroy()
    if writes:
        store.append(results, record)
    return record
