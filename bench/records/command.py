"""The ``trnbench ingest`` verb: pytest-benchmark JSON files into the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.inputs.config import ConfigError
from bench.inputs.paths import path_arg
from bench.records import ingest, labels, store
from bench.report import console


def _stored_keys(results: Path) -> set[tuple]:
    """The identities of the benchmarks already ingested into ``results``."""
    if not results.exists():
        return set()
    return {ingest.key(r) for r in store.read(results)} - {()}


def add_ingest_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench ingest`."""
    p.add_argument("file", metavar="FILE.json", help="pytest --benchmark-json output of "
                   "benchmarks timed with the trnbench fixture")
    p.add_argument("--results", metavar="PATH", type=path_arg, help=f"JSONL file to append "
                   f"to (default $TRNBENCH_RESULTS or {store.DEFAULT_PATH})")


def cmd_ingest(args: argparse.Namespace) -> int:
    results = Path(args.results) if args.results else store.default_path()
    problem = store.writable_problem(results)
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    recs = ingest.records(args.file)
    stored = _stored_keys(results)
    new = [r for r in recs if ingest.key(r) not in stored]
    for record in new:
        store.append(results, record)
    for r in new:
        mfu = "null" if r.mfu is None else f"{r.mfu:.2%}"
        j = r.energy.j_per_token
        console.stdout.print(
            f"{r.run_id}  {r.pytest_benchmark['fullname']}: "
            f"{r.tokens_per_s:,.1f} tokens/s, MFU {mfu}, "
            f"J/token {'null' if j is None else f'{j:.4g}'} ({r.energy.method}, "
            f"{labels.energy(r.energy.method)})",
            highlight=False, markup=False, soft_wrap=True)
    skipped = len(recs) - len(new)
    console.stdout.print(f"ingested {len(new)} benchmark(s) from {args.file} into {results}"
                         + (f"; skipped {skipped} already stored (same benchmark and time)"
                            if skipped else ""), highlight=False, markup=False)
    return 0
