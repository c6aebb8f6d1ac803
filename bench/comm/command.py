"""The ``trnbench comm`` verb: collectives through torch.distributed on the run's backend,
launched through torchrun by the one launcher (bench.launch.launcher), one record per run.

Everything that can be checked is checked here, before any process starts: the ops and
sizes, the backend, the ranks per node against the devices of the host, the world size
against the smallest size, the largest size against the memory of a rank, the results file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from bench.comm import config
from bench.inputs.errors import ConfigError
from bench.inputs.numbers import COUNT, INDEX, PER_NODE, Limits, flag
from bench.inputs.paths import path_arg
from bench.records import bandwidth, store
from bench.report import console

if TYPE_CHECKING:
    from bench.backends.selection import Selection

PROGRESS_ENV = "TRNBENCH_PROGRESS"  # "bar": rank 0 draws the bar on the launcher's terminal


def add_comm_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench comm`."""
    p.add_argument("--backend", default="auto", choices=("auto", *config.BACKENDS),
                   help="device family and its process group: neuron (neuron), cuda (nccl), "
                        "cpu (gloo); default auto, in that order")
    p.add_argument("--ops", metavar="OP,OP,...", help=f"collectives (default all: "
                   f"{','.join(bandwidth.OPS)})")
    p.add_argument("--sizes", metavar="MIN:MAX", help="message sizes S, powers of two from MIN "
                   "to MAX, K/M/G = 1024^1..3 (default "
                   f"{config.ACCELERATOR_SIZES} on accelerators, {config.DEFAULT_SIZES['cpu']} "
                   "on cpu)")
    p.add_argument("--dtype", default="fp32", choices=tuple(config.DTYPE_BYTES),
                   help="element type (default fp32)")
    p.add_argument("--warmup", type=flag(INDEX), default=5, metavar="W",
                   help="untimed iterations per op and size (default 5)")
    p.add_argument("--iters", type=flag(COUNT), default=20, metavar="N",
                   help="timed iterations per op and size (default 20)")
    p.add_argument("--dist-timeout", dest="dist_timeout_s", default=300.0, metavar="SECONDS",
                   type=flag(Limits(low=0, low_open=True, high=1e9)),
                   help="process-group timeout (default 300): a collective that hangs, or a "
                        "peer that died, fails the run by then")
    p.add_argument("--nproc", type=flag(PER_NODE), default=2, metavar="N",
                   help="ranks per node, started by torchrun (one per GPU or NeuronCore; "
                        "default 2)")
    p.add_argument("--nnodes", type=flag(COUNT), default=1, metavar="M",
                   help="nodes (with --rdzv-endpoint; default 1)")
    p.add_argument("--node-rank", type=flag(INDEX), metavar="R", help="this node's rank "
                   "(default: the rendezvous assigns it)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="torchrun c10d rendezvous "
                   "(required with --nnodes > 1; default: none, one node)")
    p.add_argument("--results", metavar="PATH", type=path_arg,
                   help=f"JSONL file to append to (default $TRNBENCH_RESULTS or "
                        f"{store.DEFAULT_PATH})")
    p.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE",
                   help="label the record (repeatable): stored under `tags` (default: none)")


def resolve_backend(name: str) -> Selection:
    """The backend of ``--backend`` among those with an eager process group."""
    from bench.backends import selection

    if name == "auto":
        probes = [selection.BACKENDS[n].probe() for n in config.BACKENDS]
        chosen = next(p for p in probes if p.available)  # cpu always is
        skipped = "; ".join(f"{p.name} ({p.reason})" for p in probes[:probes.index(chosen)])
        return selection.Selection(selection.BACKENDS[chosen.name], f"auto chose "
                                   f"{chosen.name}: {chosen.reason}"
                                   + (f"; skipped {skipped}" if skipped else ""))
    try:
        return selection.select(name)
    except selection.BackendUnavailable as e:
        raise ConfigError("--backend", f"{e}; accepted: auto, {', '.join(config.BACKENDS)}"
                          ) from None


def check_host(cfg: config.CommConfig, sel: Selection, nproc: int) -> None:
    """ConfigError when this node cannot hold ``nproc`` ranks: more ranks than devices (one
    per GPU or NeuronCore), or a largest size whose buffers exceed a rank's memory."""
    from bench.backends.hardware import GIB, MemoryUnknown
    from bench.parallel import memory_plan

    backend = sel.backend
    if backend.name != "cpu":
        import torch

        devices = torch.get_device_module(backend.device_type).device_count()
        if nproc > devices:
            raise ConfigError("--nproc", f"{nproc} ranks per node, but this host has "
                              f"{devices} {backend.name} device(s): one rank per device")
    try:
        memory = memory_plan.rank_memory(backend, nproc)
    except MemoryUnknown as e:
        console.stderr.print(f"[dim]memory not checked: {e}[/dim]")
        return
    need = config.BUFFERS * cfg.size_list[-1]
    if need > memory.value:
        raise ConfigError("--sizes", f"MAX needs {config.BUFFERS} x {cfg.size_list[-1]:,} B = "
                          f"{need / GIB:,.3g} GiB per rank, above the {memory.value / GIB:,.3g}"
                          f" GiB a rank has with {nproc} per node ({memory.source})")


def _launch(args: argparse.Namespace, cfg: config.CommConfig, sel: Selection,
            results: Path, tags: dict[str, str]) -> int:
    """Check the launch, then hand the ranks to torchrun through the launcher."""
    from bench.launch import launcher

    world = args.nproc * args.nnodes
    if world < 2:
        raise ConfigError("--nproc", "collectives need at least 2 ranks (--nproc x --nnodes), "
                          "got 1")
    from bench.train.command import check_launch_flags

    check_launch_flags(args)  # --node-rank below --nnodes, a HOST:PORT rendezvous
    config.check_world(cfg, world)
    check_host(cfg, sel, args.nproc)
    inner = [*cfg.to_argv(), "--results", str(results),
             *(a for k, v in tags.items() for a in ("--tag", f"{k}={v}")),
             *(["--json"] if args.json else [])]
    bar = not args.json and console.stderr.is_terminal
    torchrun = launcher.Torchrun(args.nproc, args.nnodes, args.node_rank, args.rdzv_endpoint)
    outcome = launcher.launch("comm", inner, cfg.as_dict(), sel, results, tags,
                              torchrun=torchrun, stream=True,
                              env={PROGRESS_ENV: "bar", "COLUMNS": str(console.stderr.width)}
                              if bar else None)
    record = outcome.record
    if record is None:
        print("trnbench: rank 0 ran on another node: that node's launcher stores the job's "
              "record", file=sys.stderr)
    if record is not None and record.status != "ok":
        print(f"trnbench: comm failed: {record.error} (stored in {results})", file=sys.stderr)
        return 1
    return 1 if outcome.returncode else 0


def cmd_comm(args: argparse.Namespace) -> int:
    """`trnbench comm`: launch the ranks, or (under torchrun) be one."""
    from bench.comm import summary
    from bench.train import distributed  # torch: only for the verbs that run
    from bench.train.command import parse_tags

    sel = resolve_backend(args.backend)
    cfg = config.make(sel.backend.name, args.ops, args.sizes, args.dtype, args.warmup,
                      args.iters, args.dist_timeout_s)
    tags = parse_tags(args.tag)
    results = Path(args.results) if args.results else store.default_path()
    problem = store.writable_problem(results)
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    ctx = distributed.from_env()
    if ctx is None:
        return _launch(args, cfg, sel, results, tags)

    from bench.comm import worker
    from bench.launch import child

    child.announce_rank(ctx.rank)  # its node's launcher learns where rank 0 ran
    child.die_with_parent(os.getppid())  # and it stops should torchrun be killed
    run_id = child.take_run_id()  # the launcher's, checked
    bar = ctx.is_main and not args.json and (console.stderr.is_terminal
                                             or os.environ.get(PROGRESS_ENV) == "bar")
    if ctx.is_main:
        console.stderr.print(f"[dim]{escape(sel.reason)}[/dim]")
    with summary.progress(bar) as update:
        record = worker.execute(cfg, sel, results, ctx, run_id, tags, update)
    if not ctx.is_main:
        return 0 if record.status == "ok" else 1
    if not bar:
        console.stderr.print(summary.finished_line(record), markup=False, highlight=False,
                             soft_wrap=True)
    if args.json:
        print(store.dumps(record))
    else:
        if record.status == "ok":
            console.stdout.print(summary.points_table(record))
        console.stdout.print(summary.summary_table(record, str(results)))
    if record.status != "ok":
        print(f"trnbench: comm failed: {record.error} (stored in {results})", file=sys.stderr)
        return 1
    return 0
