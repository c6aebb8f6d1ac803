"""The ``trnbench report`` and ``trnbench compare`` verbs: their flags and what they do."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from bench.inputs.errors import ConfigError
from bench.inputs.numbers import Limits, flag
from bench.inputs.paths import output_dir, path_arg, readable_files, text_arg
from bench.records import metrics, store
from bench.report import cells, comm, console, losses, plots, render
from bench.report import compare as comparing
from bench.report.build import Report, build

DEFAULT_OUT = Path("report")


def _sources(paths: list[str] | None) -> list[Path]:
    return readable_files([Path(p) for p in paths] if paths else [store.default_path()],
                          "--results")


def _written(write: Callable[[], list[Path]]) -> list[Path]:
    """The files ``write`` wrote; a filesystem that fails after the checks (full, gone
    read-only) is a ConfigError naming --out and the file, never a traceback."""
    try:
        return write()
    except OSError as e:
        raise ConfigError("--out", f"cannot write {e.filename or ''}: {e.strerror}") from None


def summary(report: Report) -> Table:
    """The terminal view: the headline figures of each row, n/a reasons as footnotes."""
    failed = len(report.failed)
    text = cells.results(report.table)
    t = Table(title=f"trnbench report: {len(report.table)} configuration"
                    f"{'' if len(report.table) == 1 else 's'}, {failed} failed "
                    f"run{'' if failed == 1 else 's'}",
              caption="\n".join(f"[{i}] {n}" for i, n in enumerate(text.footnotes, 1)),
              caption_justify="left")
    shown = ("row", "model", "device", "precision", "threads", "ranks", "layout", "batch",
             "seq", *cells.varying(report.table).values(), "n", "tokens/s per chip", "95% CI",
             "MFU %", "tokens/J", "step p50 ms", "peak mem GiB", "flag")
    columns = [c for c in text.frame.columns if c in shown or c.startswith("speedup")]
    for c in columns:
        t.add_column(escape(c), overflow="fold", justify="right" if c in text.numeric else "left")
    for _, r in text.frame.iterrows():
        t.add_row(*(escape(r[c]) for c in columns))
    return t


def comm_summary(report: Report) -> Table:
    """The terminal view of the collectives: each line's plateau against its datasheet."""
    text = comm.text(report.comm)
    t = Table(title=f"trnbench report: collectives, {len(report.comm)} line"
                    f"{'' if len(report.comm) == 1 else 's'} (op x world size)",
              caption="\n".join(f"[{i}] {n}" for i, n in enumerate(text.footnotes, 1)),
              caption_justify="left")
    columns = [c for c in text.frame.columns if c not in ("datasheet source", "run ids")]
    for c in columns:
        t.add_column(escape(c), overflow="fold", justify="right" if c in text.numeric else "left")
    for _, r in text.frame.iterrows():
        t.add_row(*(escape(r[c]) for c in columns))
    return t


def add_report_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench report`."""
    p.add_argument("files", nargs="*", metavar="FILE.jsonl", type=path_arg,
                   help="JSONL files to read (or with --results; default: as --results)")
    p.add_argument("--results", metavar="PATH", nargs="+", action="extend", type=path_arg,
                   help=f"JSONL files to read, repeatable (default $TRNBENCH_RESULTS or "
                        f"{store.DEFAULT_PATH})")
    p.add_argument("--out", metavar="DIR", help="directory for report.md/.csv/.html and the "
                   "PNG plots (default report/)")
    p.add_argument("--cv-threshold", type=flag(Limits(low=0)), default=metrics.CV_FLAG,
                   metavar="FRACTION",
                   help=f"flag rows whose CV over repeats is above this (default "
                        f"{metrics.CV_FLAG})")
    p.add_argument("--baseline", metavar="ROW", type=text_arg,
                   help="add a speedup column against this row: "
                   "its id (R1) or a query in the language of compare that selects runs of one "
                   "row, e.g. model=tiny,threads=1,world_size=1 (default: no speedup column)")


def cmd_report(args: argparse.Namespace) -> int:
    """`trnbench report`: tables, plots and pages of the stored runs."""
    args.results = [*args.files, *(args.results or [])] or None
    sources = _sources(args.results)
    out = output_dir(args.out, "--out", DEFAULT_OUT, render.OUTPUTS)
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
    if not report.comm.empty:
        shown = records[records["run_id"].isin(report.comm_points["run_id"])]
        report.comm_plot = comm.plot(report.comm_points, report.comm,
                                     plots.records_footer(shown))
    written = _written(lambda: render.write(report, out))
    if not report.table.empty:
        console.stdout.print(summary(report))
    for warning in cells.few_runs(report.table) if not report.table.empty else []:
        console.stderr.print(f"[yellow]warning[/yellow]: {escape(warning)}")
    if not report.comm.empty:
        console.stdout.print(comm_summary(report))
    for _, f in cells.failed(report.failed).iterrows():
        console.stdout.print(f"failed run {f['run id']} ({f['model']}, {f['backend']}): "
                             f"{f['error']}", markup=False, highlight=False, soft_wrap=True)
    console.stdout.print("wrote " + ", ".join(str(p) for p in written), markup=False,
                         highlight=False, soft_wrap=True)
    return 0


def add_compare_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench compare`."""
    q = ("comma-separated KEY=VALUE terms (e.g. device=h100,model=1b,ac=full; the language "
         "of report --baseline) or a run id")
    p.add_argument("--baseline", required=True, metavar="QUERY", type=text_arg,
                   help=f"baseline runs: {q}")
    p.add_argument("--target", required=True, metavar="QUERY", type=text_arg,
                   help=f"target runs: {q}")
    p.add_argument("--results", metavar="PATH", nargs="+", action="extend", type=path_arg,
                   help=f"JSONL files to read, repeatable (default $TRNBENCH_RESULTS or "
                        f"{store.DEFAULT_PATH})")
    p.add_argument("--allow-mismatch", action="store_true", help="compare runs that differ in "
                   "model, sequence length or precision (with a warning)")
    p.add_argument("--prices", metavar="FILE.toml", help="instance prices that add to or "
                   "override bench/report/prices.toml, labelled user (default: none)")
    p.add_argument("--baseline-instance", metavar="NAME", help="AWS instance of the baseline, "
                   "one that holds its device (default: the instance of its device kind)")
    p.add_argument("--target-instance", metavar="NAME", help="AWS instance of the target, one "
                   "that holds its device (default: the instance of its device kind)")
    p.add_argument("--loss-tolerance", type=flag(Limits(low=0)), default=losses.TOLERANCE,
                   metavar="FRACTION", help="flag loss curves of matching runs whose largest "
                   "relative difference is above this (default "
                   f"{losses.TOLERANCE:g}; docs/methodology.md)")
    p.add_argument("--json", action="store_true", help="the comparison as JSON on stdout")
    p.add_argument("--out", metavar="DIR", help="also write compare.md, compare.csv, "
                   "compare.html, the ratio chart compare.png and the loss curves loss.png "
                   "under DIR (default: none)")


def cmd_compare(args: argparse.Namespace) -> int:
    out = None
    if getattr(args, "out", None) is not None:
        from bench.report import compare_files

        out = output_dir(args.out, "--out", Path(args.out), compare_files.OUTPUTS)
    df, where = comparing.load_records(args.results)
    result = comparing.compare(df, where, args)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        comparing.render(result)
    if out is not None:
        written = _written(lambda: compare_files.write(result, out))
        console.stderr.print("wrote " + ", ".join(map(str, written)), markup=False,
                             highlight=False, soft_wrap=True)
    return 0
