"""The ``trnbench sweep`` and ``trnbench scaling`` verbs: their flags and what they do."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.inputs.paths import path_arg
from bench.launch import scaling
from bench.launch import sweep as sweeps
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
