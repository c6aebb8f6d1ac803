"""The ``trnbench report`` verb: load records, check the input, write the files, summarise."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from bench import console, store
from bench.config import ConfigError
from bench.paths import readable_files
from bench.report import Report, build, cells, plots, render

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
    """The terminal view: the headline figures of each row with their labels."""
    t = Table(title=f"trnbench report: {len(report.table)} configurations, "
                    f"{len(report.failed)} failed runs")
    text = cells.results(report.table)
    columns = ("row", "model", "device", "precision", "tokens/s per chip", "MFU", "J/token",
               "step p50", "n", "flag")
    for c in columns:
        t.add_column(c, overflow="fold")
    for _, r in text.iterrows():
        t.add_row(*(r[c] for c in columns))
    return t


def run(args: argparse.Namespace) -> int:
    sources = _sources(args.results)
    out = _out(args.out)
    plots.check()
    records = store.load(sources, check=True)  # a line it cannot use: one warning each
    if records.empty:
        raise ConfigError("--results", f"no records in {', '.join(map(str, sources))}")
    report = build(records, [str(p) for p in sources], args.cv_threshold)
    report.plots = plots.draw(report.table, report.groups)
    written = render.write(report, out)
    if not report.table.empty:
        console.stdout.print(summary(report))
    for _, f in cells.failed(report.failed).iterrows():
        console.stdout.print(f"failed run {f['run id']} ({f['model']}, {f['backend']}): "
                             f"{f['error']}", markup=False, highlight=False, soft_wrap=True)
    console.stdout.print("wrote " + ", ".join(str(p) for p in written), markup=False,
                         highlight=False, soft_wrap=True)
    return 0
