"""The ``trnbench sweep`` and ``trnbench scaling`` verbs: their flags and what they do."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.inputs import config
from bench.inputs.errors import ConfigError
from bench.inputs.numbers import COUNT, flag
from bench.inputs.paths import path_arg
from bench.launch import scaling
from bench.launch import suite as suites
from bench.launch import sweep as sweeps
from bench.parallel import memory_plan
from bench.records import store
from bench.report import console
from bench.train.command import add_run_flags, parse_tags, resolve_run


def add_sweep_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench sweep`."""
    p.add_argument("file", metavar="FILE.toml", help="sweep file: a [sweep] table whose fields "
                   "take a value or a list (the grid), plus repeats (default 3), name, results, "
                   "timeout_s")
    p.add_argument("--results", metavar="PATH", type=path_arg, help="JSONL file to append to "
                   "(default: the "
                   f"file's results, else $TRNBENCH_RESULTS or {store.DEFAULT_PATH})")
    p.add_argument("--resume", action="store_true", help="skip repeats already stored (status "
                   "ok) for the same configuration and environment")
    p.add_argument("--dry-run", action="store_true", help="print the resolved points; run nothing")


def cmd_sweep(args: argparse.Namespace) -> int:
    """`trnbench sweep FILE [--results PATH] [--resume] [--dry-run]`."""
    from bench.backends import environment

    sweep = sweeps.load(args.file, args.results)
    if args.dry_run:
        done = sweeps.plan(sweep, sweeps.stored_ok(sweep.results, environment.capture()))[1] \
            if args.resume else None
        console.stdout.print(sweeps.dry_run_table(sweep, done))
        return 0
    return sweeps.execute(sweep, args.resume)


def add_scaling_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench scaling`: the run flags, the process counts and the series."""
    add_run_flags(p)
    p.add_argument("--nproc", required=True, metavar="N,N,...",
                   help="process counts in ascending order, e.g. 1,2,4,8 (batch per rank)")
    p.add_argument("--series", metavar="NAME",
                   help="series id stored as the tag scaling=NAME (default: a new id)")


def cmd_scaling(args: argparse.Namespace) -> int:
    """`trnbench scaling`: one torchrun launch per process count, then the efficiency."""
    cfg, selection = resolve_run(args)
    results = Path(args.results) if args.results else store.default_path()
    return scaling.run(cfg, selection, args.nproc, args.series, results, parse_tags(args.tag),
                       args.json)


def add_suite_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench suite`."""
    p.add_argument("file", metavar="FILE.toml", help="suite file: [suite] name, repeats "
                   "(>= 3), timeout_s; [defaults] and [backend.NAME] run fields; [[case]] "
                   "name, scope (chip, node, nodes), batch (a number or a search list), "
                   "run fields (scripts/suite.toml)")
    p.add_argument("--hardware", required=True, choices=list(memory_plan.NODES),
                   help="the node kind this machine is (its ranks per node and per chip, and "
                        "its datasheet memory where the backend cannot read it)")
    p.add_argument("--backend", choices=config.BACKEND_NAMES[1:], help="default: the "
                   "hardware's (" + ", ".join(f"{b[0]} on {h}" for h, b in
                                              memory_plan.HARDWARE_BACKENDS.items()) + ")")
    p.add_argument("--nproc-per-node", type=flag(COUNT), metavar="N", help="ranks on this "
                   "node (default: the hardware's: 64 on trn2 at LNC=2, 8 on GPUs); a chip "
                   "case takes at most this many")
    p.add_argument("--results", metavar="PATH", type=path_arg, help="JSONL file to append to "
                   f"(default $TRNBENCH_RESULTS or {store.DEFAULT_PATH})")
    p.add_argument("--summary", metavar="PATH", type=path_arg, help="also write the suite's "
                   "summary as JSON here (default: none)")
    p.add_argument("--resume", action="store_true", help="reuse the ok runs already stored "
                   "for the same suite, case, phase, configuration and host")
    p.add_argument("--dry-run", action="store_true", help="print each case's plan and the runs "
                   "it would start; run nothing")


def cmd_suite(args: argparse.Namespace) -> int:
    """`trnbench suite FILE --hardware H`: the suite's cases on this machine."""
    suite = suites.load(args.file)
    machine = suites.machine(args.hardware, args.backend, args.nproc_per_node)
    results = Path(args.results) if args.results else store.default_path()
    problem = store.writable_problem(results)
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    if args.dry_run:
        return suites.dry_run(suite, machine, results)
    return suites.execute(suite, machine, results, args.resume,
                          Path(args.summary) if args.summary else None)
