"""The ``trnbench ingest`` verb: pytest-benchmark JSON files, nccl-tests output and
nccom-test reports into the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.inputs import config
from bench.inputs.config import ConfigError
from bench.inputs.numbers import COUNT, Limits, flag
from bench.inputs.paths import path_arg
from bench.records import ingest, labels, store
from bench.records.record import Record
from bench.report import console

FORMATS = ("auto", "pytest-benchmark", "nccl-tests", "nccom-test")
TOOL_FLAGS = ("op", "ranks", "nodes", "device")  # of the collectives tools' output only


def _stored_keys(results: Path) -> set[tuple]:
    """The identities of the benchmarks already ingested into ``results``."""
    return {ingest.key(r) for r in _stored(results)} - {()}


def add_ingest_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench ingest`."""
    p.add_argument("file", metavar="FILE", help="pytest --benchmark-json output of benchmarks "
                   "timed with the trnbench fixture, nccl-tests' stdout, or an nccom-test "
                   "--report-to-json-file report")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="what FILE is (default auto: told from its content)")
    p.add_argument("--op", help="collectives tools: the op, where the file does not name it "
                   "(nccom-test: allr, allg, redsct, alltoall, sendrecv, or trnbench's "
                   "all_reduce, ...; default: nccl-tests' program name)")
    p.add_argument("--ranks", type=flag(Limits(low=2, high=2**31 - 1, integer=True)),
                   metavar="N", help="collectives tools: the ranks (nccom-test's -r; default: "
                   "nccl-tests' device lines)")
    p.add_argument("--nodes", type=flag(COUNT), metavar="M", help="collectives tools: the "
                   "hosts (default: nccl-tests' device lines; nccom-test 1, its -N default)")
    p.add_argument("--device", metavar="NAME", help="collectives tools: the device, a "
                   "hardware key (trn2, h100, ...) or a name (default: nccl-tests' device "
                   "lines; nccom-test names none)")
    p.add_argument("--results", metavar="PATH", type=path_arg, help=f"JSONL file to append "
                   f"to (default $TRNBENCH_RESULTS or {store.DEFAULT_PATH})")


def _collectives(args: argparse.Namespace, fmt: str, results: Path) -> int:
    """nccl-tests output or an nccom-test report: one record per test, each stored once."""
    from bench.comm import ingest as tools

    given = tools.Given(**{k: getattr(args, k) for k in TOOL_FLAGS})
    recs = tools.records(args.file, fmt, given)
    stored = {tools.key(r) for r in _stored(results)} - {()}
    new = [r for r in recs if tools.key(r) not in stored]
    for record in new:
        store.append(results, record)
    for r in new:
        c = r.comm
        best = ", ".join(f"{gbs:,.4g} GB/s" for gbs, _ in r.comm.plateaus().values())
        console.stdout.print(
            f"{r.run_id}  {c.tool}: {c.ops[0]} on {c.ranks} ranks, {c.nodes} node(s), "
            f"{r.device.name}: {len(c.points)} points, busbw plateau {best}",
            highlight=False, markup=False, soft_wrap=True)
    skipped = len(recs) - len(new)
    console.stdout.print(f"ingested {len(new)} test(s) of {fmt} from {args.file} into "
                         f"{results}" + (f"; skipped {skipped} already stored (same file "
                                         "content)" if skipped else ""),
                         highlight=False, markup=False, soft_wrap=True)
    return 0


def _stored(results: Path) -> list[Record]:
    return list(store.read(results)) if results.exists() else []


def cmd_ingest(args: argparse.Namespace) -> int:
    results = Path(args.results) if args.results else store.default_path()
    problem = store.writable_problem(results)
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    fmt = args.format
    if fmt == "auto":
        from bench.comm.ingest import detect

        fmt = detect(config.read_text(args.file, "FILE"), args.file)
    if fmt != "pytest-benchmark":
        return _collectives(args, fmt, results)
    extra = next((k for k in TOOL_FLAGS if getattr(args, k) is not None), None)
    if extra:
        raise ConfigError(f"--{extra}", "applies to nccl-tests and nccom-test files, not to "
                          "pytest-benchmark JSON")
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
