"""What `trnbench comm` prints: the progress bar (as ``trnbench run``'s), the line of a
finished run, and the summary of its record (every point, and each op's plateau)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.records.bandwidth import size_text
from bench.records.record import Record
from bench.report import console


@contextlib.contextmanager
def progress(enabled: bool) -> Iterator[Any]:
    """A callback ``update(done, total, text)``: one bar over the run's points with an ETA
    and the last point's bandwidth, on stderr (drawn as on a terminal when stderr is the
    launcher's pipe to one); None when not ``enabled``."""
    if not enabled:
        yield None
        return
    out = console.stderr if console.stderr.is_terminal else Console(stderr=True,
                                                                    force_terminal=True)
    bar = console.progress_bar("comm", "last", out)
    task = bar.add_task("comm", total=None, last="")

    def update(done: int, total: int, text: str) -> None:
        bar.update(task, completed=done, total=total, last=text)

    with bar:
        yield update


def finished_line(record: Record) -> str:
    head = console.finished_head("comm", record)
    if record.status != "ok":
        return f"{head}: {record.error}"
    best = ", ".join(f"{op} {gbs:,.3g} GB/s" for op, (gbs, _) in record.comm.plateaus().items())
    return f"{head}: {len(record.comm.points)} points on {record.world_size} ranks; busbw " \
           f"plateau {best}"


def summary_table(record: Record, path: str) -> Table:
    """The run's context, each op's plateau against the link's datasheet figure, and every
    point."""
    r, c = record, record.comm
    t = Table(title=f"trnbench comm {r.run_id}: {r.status}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("backend", escape(r.backend.reason if r.backend else "n/a"))
    if r.status != "ok":
        t.add_row("error", f"[red]{escape(r.error or '')}[/red]")
        t.add_row("stored", escape(path))
        return t
    t.add_row("device", escape(f"{r.device.name} ({r.device.kind})"))
    t.add_row("ranks", f"{c.ranks} on {c.nodes} node{'' if c.nodes == 1 else 's'} "
              f"({'intra' if c.one_node else 'inter'}-node link), {c.dtype}, "
              f"{c.warmup} warm-up + {c.iters} timed iterations per point")
    t.add_row("method", escape(c.method))
    ref = c.reference
    for op, (gbs, sizes) in r.comm.plateaus().items():
        vs = "" if ref is None else f" = {gbs / ref.gbs:.1%} of the {ref.link} datasheet " \
                                    f"{ref.gbs:,.4g} GB/s"
        t.add_row(f"{op} plateau", f"{gbs:,.4g} GB/s busbw (median of {size_text(sizes[0])}"
                  f"..{size_text(sizes[-1])}){vs}")
    if ref is not None:
        t.add_row("reference", escape(f"{ref.link} {ref.gbs:,.4g} GB/s [{ref.label}: "
                                      f"{ref.source}]"))
    for note in [*(r.warnings or []), *(f"flagged: {f}" for f in r.flags or [])]:
        t.add_row("[yellow]warning[/yellow]", escape(note))
    t.add_row("stored", escape(path))
    return t


def points_table(record: Record) -> Table:
    """Every point, as nccl-tests prints them, with the slowest and fastest rank's time."""
    t = Table(title="points (time: the slowest rank's)")
    for col in ("op", "size", "count", "time us", "fastest rank us", "algbw GB/s",
                "busbw GB/s", "wrong"):
        t.add_column(col, justify="left" if col == "op" else "right")
    for p in record.comm.points:
        fastest = min(p.rank_time_us) if p.rank_time_us else None
        t.add_row(p.op, size_text(p.size_bytes), f"{p.count:,}", f"{p.time_us:,.2f}",
                  "n/a" if fastest is None else f"{fastest:,.2f}", f"{p.algbw_gbs:,.4g}",
                  f"{p.busbw_gbs:,.4g}", "n/a" if p.wrong is None else str(p.wrong))
    return t
