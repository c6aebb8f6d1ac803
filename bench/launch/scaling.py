"""`trnbench scaling`: a weak-scaling series of data-parallel runs, one per process count.

The series is a loop over its points: each is a torchrun launch of N ranks (DDP or FSDP2)
through the launcher (``bench.launch.launcher.run``, as ``trnbench run --nproc N``) with the same
resolved configuration and the tag ``scaling=<series id>``; the batch is per rank (weak
scaling: every rank trains its own batch, the global batch grows with N), which is what
data parallelism measures. A failed point is shown as failed (the launcher stores its
record when no rank could) and the series goes on. Efficiency (``metrics.scaling_efficiency``):

    E(N) = (global tokens/s at N / N) / (global tokens/s at b / b)

b the smallest process count of the series with an ok run: 1 when the series starts at 1
rank (tokens/s per rank against one rank), else the efficiency is relative to b ranks and
labelled so.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.inputs import numbers
from bench.inputs.config import ConfigError, RunConfig
from bench.launch import launcher
from bench.records import metrics, store
from bench.records.record import Record
from bench.report import console

if TYPE_CHECKING:
    from bench.backends.selection import Selection

TAG = "scaling"


def parse_nproc(spec: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]: positive integers in ascending order, comma separated."""
    counts = numbers.count_list(spec, "--nproc", high=numbers.MAX_PER_NODE)
    if counts != sorted(set(counts)):
        raise ConfigError("--nproc", f"expected positive process counts in ascending order, "
                          f"comma separated (e.g. 1,2,4,8), got {spec!r}")
    return counts


def series_records(records: Iterable[Record], series: str) -> list[Record]:
    """The records tagged ``scaling=<series>``, in file order."""
    return [r for r in records if (r.tags or {}).get(TAG) == series]


def summarize(records: Iterable[Record]) -> tuple[int | None, list[dict[str, Any]]]:
    """(baseline process count, points) of one series' records (one per world size).

    A point: nproc (the record's world size), run id, status, error, global tokens/s,
    tokens/s per rank, efficiency against the baseline, MFU; figures null unless ok.
    """
    points = []
    for r in records:
        n = r.world_size
        usable = r.status == "ok" and isinstance(n, int) and n >= 1  # a hand-edited line
        tps = r.tokens_per_s if usable else None
        points.append({"nproc": n, "run_id": r.run_id, "status": r.status, "error": r.error,
                       "tokens_per_s": tps,
                       "tokens_per_s_per_rank": None if tps is None else tps / n,
                       "efficiency": None, "mfu": r.mfu if tps is not None else None})
    measured = {p["nproc"]: p["tokens_per_s"] for p in points if p["tokens_per_s"] is not None}
    efficiency = metrics.scaling_efficiency(measured) if measured else {}
    for p in points:
        if p["tokens_per_s"] is not None:
            p["efficiency"] = efficiency[p["nproc"]]
    return (min(efficiency) if efficiency else None), points


def _series_id(name: str | None, results: Path) -> str:
    """The user's ``--series`` name, unused in ``results``, or a new short id."""
    if name is None:
        return uuid.uuid4().hex[:8]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError("--series", f"expected letters, digits, '_', '-' or '.', got {name!r}")
    if results.exists() and series_records(store.read(results), name):
        raise ConfigError("--series", f"{name!r} already has records in {results}; "
                          "choose a new name")
    return name


def _point_env(cfg: RunConfig) -> tuple[dict[str, str], list[str]]:
    """What every point adds to its environment, and what that fixes. On the CPU, torchrun
    gives each of several ranks OMP_NUM_THREADS=1 but leaves 1 rank all cores; every point
    gets one thread per rank instead (unless the user set it), so that the series compares
    data parallelism, not thread counts."""
    if cfg.backend != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return {}, []
    return {"OMP_NUM_THREADS": "1"}, [
        "cpu: every point runs one thread per rank (OMP_NUM_THREADS=1, as torchrun sets for "
        "several ranks); set OMP_NUM_THREADS to choose another count"]


def run(cfg: RunConfig, selection: Selection, nproc_spec: str, series: str | None,
        results: Path, tags: dict[str, str], as_json: bool) -> int:
    """Run the series, print its table (or JSON); 1 if any point failed."""
    nprocs = parse_nproc(nproc_spec)
    from bench.parallel import memory_plan

    for n in nprocs:  # every point's layout exists (--tp divides it...) and fits, before any
        memory_plan.check_run(cfg, selection.backend, n, 1)
    if TAG in tags:
        raise ConfigError("--tag", f"{TAG}=... is set by trnbench scaling; name the series "
                          "with --series NAME")
    problem = store.writable_problem(results)
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    sid = _series_id(series, results)
    env, notes = _point_env(cfg)
    records: list[Record] = []
    bar = Progress(TextColumn("scaling {task.description:<10}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=console.stderr,
                   disable=not (console.stderr.is_terminal or not as_json))
    with bar:
        task = bar.add_task("", total=len(nprocs))
        for n in nprocs:
            bar.update(task, description=f"nproc {n}")
            point = launcher.run(cfg, selection, results, {**tags, TAG: sid},
                               torchrun=launcher.Torchrun(n), env=env)
            record = point.record
            assert record is not None  # one node, with a results file: always stored
            records.append(record)
            if record.status == "ok":
                bar.console.print(f"nproc {n}: {record.tokens_per_s:,.1f} tokens/s "
                                  f"(run {record.run_id})", highlight=False)
            else:
                tail = "\n".join(point.stderr.strip().splitlines()[-15:])
                bar.console.print(f"[red]nproc {n} failed[/red]: {escape(str(record.error))}"
                                  f"\n[dim]{escape(tail)}[/dim]", highlight=False)
            bar.advance(task)
    baseline, points = summarize(records)
    summary = {"series": sid, "model": cfg.model, "batch_per_rank": cfg.batch,
               "config": cfg.as_dict(), "results": str(results), "baseline_nproc": baseline,
               "points": points, "notes": notes}
    if as_json:
        print(json.dumps(summary))
    else:
        console.stdout.print(table(summary))
        for note in summary["notes"]:
            console.stdout.print(f"[yellow]note[/yellow]: {escape(note)}", soft_wrap=True)
    failed = [p["nproc"] for p in points if p["status"] != "ok"]
    if failed:
        print(f"trnbench: scaling: nproc {', '.join(map(str, failed))} failed "
              f"(stored in {results})", file=sys.stderr)
    return 1 if failed else 0


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(summary: dict[str, Any]) -> Table:
    """The series as a terminal table: one row per process count."""
    cfg, base = summary["config"], summary["baseline_nproc"]
    against = "" if base is None else f" vs {base} rank" + ("s" if base > 1 else "")
    t = Table(title=escape(f"trnbench scaling {summary['series']}: {cfg['model']} on "
                           f"{cfg['backend']} ({cfg['parallel']}), batch {cfg['batch']} per "
                           f"rank x seq {cfg['seq']} (weak scaling)"),
              caption=escape(f"efficiency = (tokens/s at N / N) / (tokens/s at b / b), b = "
                             f"{base if base is not None else 'n/a'}; stored in "
                             f"{summary['results']}"))
    for col in ("nproc", "global tokens/s", "per rank", f"efficiency{against}", "MFU",
                "status"):
        t.add_column(col, justify="left" if col == "status" else "right")
    for p in summary["points"]:
        status = ("ok" if p["status"] == "ok" else
                  f"[red]{escape(str(p['status']))}: {escape(str(p['error']))}[/red]")
        t.add_row(str(p["nproc"]), _fmt(p["tokens_per_s"], ",.1f"),
                  _fmt(p["tokens_per_s_per_rank"], ",.1f"), _fmt(p["efficiency"], ".1%"),
                  _fmt(p["mfu"], ".2%"), status)
    return t
