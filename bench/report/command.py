"""The ``trnbench report`` verb: load records, check the input, write the files, summarise."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from bench.inputs.errors import ConfigError
from bench.inputs.numbers import Limits, flag
from bench.inputs.paths import path_arg, readable_files
from bench.records import metrics, store
from bench.report import cells, console, plots, render
from bench.report.build import Report, build

DEFAULT_OUT = Path("report")


def _sources(paths: list[str] | None) -> list[Path]:
    return readable_files([Path(p) for p in paths] if paths else [store.default_path()],
                          "--results")


def _out(path: str | None) -> Path:
    out = Path(path) if path else DEFAULT_OUT
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a directory")
    return out


def summary(report: Report) -> Table:
    """The terminal view: the headline figures of each row, n/a reasons as footnotes."""
    failed = len(report.failed)
    text = cells.results(report.table)
    t = Table(title=f"trnbench report: {len(report.table)} configuration"
                    f"{'' if len(report.table) == 1 else 's'}, {failed} failed "
                    f"run{'' if failed == 1 else 's'}",
              caption="\n".join(f"[{i}] {n}" for i, n in enumerate(text.footnotes, 1)),
              caption_justify="left")
    columns = [c for c in text.frame.columns if c in (
        "row", "model", "device", "precision", "threads", "ranks", "n", "tokens/s per chip",
        "95% CI", "MFU %", "tokens/J", "step p50 ms", "flag") or c.startswith("speedup")]
    for c in columns:
        t.add_column(escape(c), overflow="fold", justify="right" if c in text.numeric else "left")
    for _, r in text.frame.iterrows():
        t.add_row(*(escape(r[c]) for c in columns))
    return t


def add_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench report`."""
    p.add_argument("files", nargs="*", metavar="FILE.jsonl", type=path_arg,
                   help="JSONL files to read (or with --results)")
    p.add_argument("--results", metavar="PATH", nargs="+", action="extend", type=path_arg,
                   help=f"JSONL files to read, repeatable (default $TRNBENCH_RESULTS or "
                        f"{store.DEFAULT_PATH})")
    p.add_argument("--out", metavar="DIR", help="directory for report.md/.csv/.html and the "
                   "PNG plots (default report/)")
    p.add_argument("--cv-threshold", type=flag(Limits(low=0)), default=metrics.CV_FLAG,
                   metavar="FRACTION",
                   help=f"flag rows whose CV over repeats is above this (default "
                        f"{metrics.CV_FLAG})")
    p.add_argument("--baseline", metavar="ROW", help="add a speedup column against this row: "
                   "its id (R1) or KEY=VALUE terms, e.g. model=tiny,threads=1,world_size=1")


def run(args: argparse.Namespace) -> int:
    sources = _sources(args.results)
    out = _out(args.out)
    plots.check()
    records = store.load(sources, check=True)  # a line it cannot use: one warning each
    if records.empty:
        raise ConfigError("--results", f"no records in {', '.join(map(str, sources))}")
    report = build(records, [str(p) for p in sources], args.cv_threshold,
                   getattr(args, "baseline", None))
    flags = [f"--results {' '.join(map(str, sources))}", f"--out {out}"]
    if args.cv_threshold != metrics.CV_FLAG:
        flags.append(f"--cv-threshold {args.cv_threshold:g}")
    if getattr(args, "baseline", None):
        flags.append(f"--baseline {args.baseline}")
    report.command = "trnbench report " + " ".join(flags)
    report.plots = plots.draw(report.table, report.groups, report.scaling)
    written = render.write(report, out)
    if not report.table.empty:
        console.stdout.print(summary(report))
    for _, f in cells.failed(report.failed).iterrows():
        console.stdout.print(f"failed run {f['run id']} ({f['model']}, {f['backend']}): "
                             f"{f['error']}", markup=False, highlight=False, soft_wrap=True)
    console.stdout.print("wrote " + ", ".join(str(p) for p in written), markup=False,
                         highlight=False, soft_wrap=True)
    return 0
