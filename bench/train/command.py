"""The ``trnbench run`` and ``trnbench models`` verbs: their flags and what they do."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from bench.inputs import config
from bench.inputs.errors import ConfigError
from bench.inputs.numbers import COUNT, INDEX, PER_NODE, flag
from bench.inputs.paths import path_arg
from bench.records import store
from bench.records.record import new_run_id
from bench.report import console

if TYPE_CHECKING:
    from bench.backends.selection import Selection


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench run`."""
    add_run_flags(p)
    _add_launch_args(p)
    _add_profile_args(p)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of every RunConfig field (``config.add_flags``) and of the run's output."""
    p.add_argument("--config", metavar="FILE", help="TOML file with a [run] table, over the "
                   "backend's defaults and under the flags (default: none)")
    config.add_flags(p)
    p.add_argument("--results", metavar="PATH", type=path_arg,
                   help=f"JSONL file to append to (default $TRNBENCH_RESULTS or "
                        f"{store.DEFAULT_PATH})")
    p.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    p.add_argument("--no-projection", action="store_true",
                   help="no projection line after the summary (never in --json)")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE",
                   help="label the record (repeatable): stored under `tags`, e.g. sweep ids "
                        "(default: none)")


def _add_launch_args(p: argparse.ArgumentParser) -> None:
    """torchrun's flags: processes, nodes, rendezvous; Neuron precompilation."""
    p.add_argument("--nproc", type=flag(PER_NODE), metavar="N",
                   help="processes per node, started by torchrun (one per GPU or NeuronCore; "
                        "default: this process alone, no torchrun)")
    p.add_argument("--nnodes", type=flag(COUNT), metavar="M",
                   help="nodes (with --rdzv-endpoint; default 1)")
    p.add_argument("--node-rank", type=flag(INDEX), metavar="R",
                   help="this node's rank (Slurm; default: the rendezvous assigns it)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="torchrun c10d rendezvous "
                   "(default: none, torchrun --standalone on one node)")
    p.add_argument("--precompile", action="store_true",
                   help="neuron-xla: run under neuron_parallel_compile to fill the compile "
                        "cache (no record is stored), then run again without it")


def _add_profile_args(p: argparse.ArgumentParser) -> None:
    """--profile: a trace of steps after the window."""
    p.add_argument("--profile", action="store_true", help="trace steps run after the timed "
                   "window (never inside it): torch.profiler Chrome trace JSON beside the "
                   "results file; on Neuron the runtime's device profile (NEURON_RT_INSPECT_*)")
    p.add_argument("--profile-steps", type=flag(COUNT), default=3, metavar="N",
                   help="steps to trace with --profile (default 3)")


def precompile(cfg: config.RunConfig, argv: list[str]) -> None:
    """Re-run this command, less ``--precompile``, under ``neuron_parallel_compile``.

    The tool takes the command of a short trial run and precompiles the graphs it traces; with
    ``--nproc`` that command launches the torchrun ranks, as in the documented
    ``neuron_parallel_compile torchrun --nproc_per_node=N <script>`` ("PyTorch NeuronX
    neuron_parallel_compile CLI", Neuron docs), so the graphs are those of the same world size.
    """
    if cfg.backend != "neuron-xla":
        raise ConfigError("--precompile", f"applies to --backend neuron-xla only, not "
                          f"{cfg.backend}")
    exe = shutil.which("neuron_parallel_compile")
    if exe is None:
        raise ConfigError("--precompile", "neuron_parallel_compile is not on PATH (it comes "
                          "with torch-neuronx; activate the Neuron environment)")
    inner = ["run", *(a for a in argv if a != "--precompile")]  # argv: the verb's arguments
    console.stderr.print(f"precompiling: {exe} {sys.executable} -m bench {' '.join(inner)}",
                         markup=False, highlight=False)
    os.execv(exe, [exe, sys.executable, "-m", "bench", *inner])


def parse_tags(items: list[str] | None) -> dict[str, str]:
    """``--tag KEY=VALUE`` flags as a dict (keys: letters, digits, '_', '-', '.')."""
    tags: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise ConfigError("--tag", f"expected KEY=VALUE with a key of letters, digits, "
                              f"'_', '-' or '.', got {item!r}")
        tags[key] = value
    return tags


def _passed_flags(args: argparse.Namespace) -> list[str]:
    """The flags of ``trnbench run`` that are neither configuration, launch, results nor
    tags, as given: what a ``--nproc`` launch passes on to its ranks."""
    flags = [flag for flag, given in (("--json", args.json),
                                      ("--no-projection", args.no_projection)) if given]
    if args.profile:
        flags += ["--profile", "--profile-steps", str(args.profile_steps)]
    return flags


ENDPOINT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
                      r":(?P<port>[0-9]{1,5})")


def check_launch_flags(args: argparse.Namespace) -> None:
    """The torchrun flags, before anything starts: each node flag needs --nproc, a node rank
    below --nnodes, a rendezvous of HOST:PORT (required with --nnodes > 1)."""
    if args.nproc is None:
        given = next((f for f, v in (("--nnodes", args.nnodes), ("--node-rank", args.node_rank),
                                     ("--rdzv-endpoint", args.rdzv_endpoint)) if v is not None),
                     None)
        if given:
            raise ConfigError(given, "applies to a torchrun launch only: give --nproc N too")
        return
    nnodes = args.nnodes or 1
    if args.node_rank is not None and args.node_rank >= nnodes:
        raise ConfigError("--node-rank", f"must be below --nnodes ({nnodes}), got "
                          f"{args.node_rank}")
    if args.rdzv_endpoint is not None:
        m = ENDPOINT.fullmatch(args.rdzv_endpoint)
        if not m or not 1 <= int(m["port"]) <= 65535:
            raise ConfigError("--rdzv-endpoint", f"expected HOST:PORT (a host name or "
                              f"address, a port 1-65535), got {args.rdzv_endpoint!r}")
    elif nnodes > 1:
        raise ConfigError("--rdzv-endpoint", "is required with --nnodes > 1 (HOST:PORT of "
                          "the rendezvous, e.g. the first node:29500)")


def launch_torchrun(args: argparse.Namespace, cfg: config.RunConfig,
                    selection: Selection, results: Path | None,
                    tags: dict[str, str]) -> int:
    """``--nproc``: hand the run to torchrun through the launcher (bench.launch.launcher);
    torchrun's output streams to ours. The launcher of the node where the job's rank 0 ran
    stores its record; another node's says so and stores nothing."""
    from bench.launch import launcher

    torchrun = launcher.Torchrun(args.nproc, args.nnodes or 1, args.node_rank,
                                 args.rdzv_endpoint)
    outcome = launcher.run(cfg, selection, results, tags, torchrun=torchrun,
                           flags=_passed_flags(args), stream=True)
    record = outcome.record
    if record is None and results is not None:
        print("trnbench: rank 0 ran on another node: that node's launcher stores the job's "
              "record", file=sys.stderr)
    if record is not None and record.status != "ok":
        print(f"trnbench: run failed: {record.error} (stored in {results})", file=sys.stderr)
        return 1
    return 1 if outcome.returncode else 0


def resolve_run(args: argparse.Namespace) -> tuple[config.RunConfig, Selection]:
    """The validated run configuration and backend of the run flags (``add_run_flags``)."""
    from bench.backends import selection

    file_layer = config.load_toml(args.config) if args.config else {}
    return selection.resolve_run(args.backend or file_layer.get("backend", "auto"), file_layer,
                                config.flag_layer(args))


def profiling(args: argparse.Namespace, cfg: config.RunConfig, selection: Selection,
              results: Path | None, run_id: str | None) -> int:
    """The steps to profile after the window (0 without --profile). On Neuron the runtime's
    inspection variables go into this process's environment now, before any device work
    (bench.train.profile); a user's own NEURON_RT_INSPECT_* settings are kept."""
    if not args.profile:
        return 0
    if results is None:
        raise ConfigError("--profile", "needs a results file to store the trace beside")
    from bench.train import profile

    if selection.backend.name in profile.NEURON_BACKENDS:
        os.environ.update({k: v for k, v in profile.neuron_env(
            results, run_id or "torchrun", cfg.warmup, cfg.steps).items() if k not in os.environ})
    return args.profile_steps



def cmd_run(args: argparse.Namespace) -> int:
    """`trnbench run`: one run here, or its ranks through torchrun (``--nproc``)."""
    from bench.launch import child
    from bench.train import distributed, runner  # torch: only for the verbs that run

    ctx = distributed.from_env()
    if ctx is not None:  # a torchrun worker: its node's launcher learns where rank 0 ran
        child.announce_rank(ctx.rank)
        child.die_with_parent(os.getppid())  # and it stops should torchrun be killed
    cfg, selection = resolve_run(args)
    tags = parse_tags(args.tag)
    if ctx is None:  # before any process starts or anything is written (bench.parallel)
        check_launch_flags(args)
        if args.nproc is None and cfg.parallel != "ddp":
            raise ConfigError("--parallel", f"{cfg.parallel} shards over torchrun ranks: give "
                              "--nproc N (one process has no data parallelism)")
        from bench.parallel import memory_plan

        memory_plan.check_run(cfg, selection.backend, args.nproc or 1, args.nnodes or 1)
    if args.precompile:
        precompile(cfg, args.verb_argv)
    # graph extraction under neuron_parallel_compile: the device runs stubs, nothing is stored
    extracting = bool(os.environ.get("NEURON_EXTRACT_GRAPHS_ONLY"))
    results = None if extracting else Path(args.results) if args.results else \
        store.default_path()
    problem = store.writable_problem(results) if results else None
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    if args.nproc is not None and ctx is None:
        return launch_torchrun(args, cfg, selection, results, tags)
    if extracting:
        console.stderr.print("graph extraction under neuron_parallel_compile: the device runs "
                             "stubs with zero outputs, so no record is stored")

    run_id = child.take_run_id()  # the launcher's, checked; None without one
    if args.profile and ctx is None and run_id is None:
        run_id = new_run_id()  # names the trace before the run starts
    profile_steps = profiling(args, cfg, selection, results, run_id)
    main_rank = ctx is None or ctx.is_main
    if main_rank:
        console.stderr.print(f"[dim]{escape(selection.reason)}[/dim]")
    # live progress on a terminal only; otherwise (a pipe, a sweep, --json) one line at the end
    show_progress = main_rank and console.stderr.is_terminal and not args.json
    with console.run_progress(show_progress, cfg.tokens_per_step) as progress:
        record = runner.execute(cfg, selection, results, progress, ctx,
                                run_id, tags, profile_steps)
    if not main_rank:
        return 0 if record.status == "ok" else 1
    if not show_progress:
        console.stderr.print(console.finished_line(record), markup=False, highlight=False,
                             soft_wrap=True)
    if args.json:
        print(store.dumps(record))
    else:
        console.stdout.print(console.summary_table(record, str(results or "not stored")))
        if results and not args.no_projection:  # no results: stub outputs
            from bench.projection.headline import headline

            line = headline(record, str(results))
            if line:
                console.stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    if record.status != "ok":
        where = f"stored in {results}" if results else "not stored"
        print(f"trnbench: run failed: {record.error} ({where})", file=sys.stderr)
        return 1
    return 0


def add_models_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench models`."""
    p.add_argument("--json", action="store_true", help="the registry as a JSON list on stdout")


def cmd_models(args: argparse.Namespace) -> int:
    """`trnbench models`: the registry with parameter and FLOP counts."""
    from models import flops, registry

    rows: list[dict[str, Any]] = []
    for name in registry.names():
        spec = registry.get(name)
        c = spec.config
        rows.append({
            "name": name, "params": flops.param_count(c),
            "active_params": flops.active_param_count(c),
            "matmul_params": flops.matmul_param_count(c),
            "flops_per_token": flops.flops_per_token(c, spec.seq_len),
            "hardware_flops_per_token": flops.hardware_flops_per_token(c, spec.seq_len),
            "seq": spec.seq_len, "batch": spec.batch_size, "layers": c.n_layers,
            "dim": c.dim, "heads": c.n_heads, "kv_heads": c.n_kv_heads,
            "vocab": c.vocab_size, "max_seq": c.max_seq_len, "description": spec.description,
        })
    if args.json:
        print(json.dumps(rows))
        return 0
    from rich.table import Table

    t = Table(title=f"trnbench models (FLOPs/token by {flops.FORMULA} at the default seq)")
    for col in ("name", "params", "active", "layers", "dim", "heads/kv", "vocab", "seq",
                "batch", "GFLOP/token"):
        t.add_column(col, justify="left" if col == "name" else "right")
    for r in rows:
        t.add_row(r["name"], f"{r['params']:,}", f"{r['active_params']:,}", str(r["layers"]),
                  str(r["dim"]),
                  f"{r['heads']}/{r['kv_heads']}", f"{r['vocab']:,}", str(r["seq"]),
                  str(r["batch"]), f"{r['flops_per_token'] / 1e9:,.2f}")
    console.stdout.print(t)
    return 0
