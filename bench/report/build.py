"""`trnbench report`: result tables and plots from stored records (docs/cli/report.md).

- ``rows``: one row per configuration on one device, figures over repeats with their labels;
  the failed runs; where each row comes from.
- ``scaling``: scaling efficiency of the series tagged ``scaling=<id>``.
- ``derived``: CI of the repeat mean, per instance, per dollar, speedup over a baseline row.
- ``cells``: the text of each figure (numbers alone, n/a reasons as footnotes), the notes.
- ``plots``: matplotlib charts as PNG bytes.
- ``comm``: the collectives records: busbw against message size, the plateau table.
- ``render``: Markdown, CSV and a self-contained HTML page.
- ``command``: the verb (load, validate, write, terminal summary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.records.record import COMM_KIND
from bench.report import comm, derived, efficiency, prices, rows


@dataclass
class Report:
    """Everything the outputs show, built once from the loaded records."""

    sources: list[str]
    records: int
    cv_threshold: float
    table: pd.DataFrame  # rows.row(): numbers, labels and methods (the CSV)
    groups: dict[str, pd.DataFrame]  # row id -> the ok records behind it
    failed: pd.DataFrame  # rows.failed()
    scaling: pd.DataFrame  # efficiency.table()
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG
    sweeps: list[str] = field(default_factory=list)  # tags.sweep of the records
    command: str = ""  # the trnbench report command that wrote it
    comm: pd.DataFrame = field(default_factory=pd.DataFrame)  # comm.plateaus()
    comm_points: pd.DataFrame = field(default_factory=pd.DataFrame)  # comm.points()
    comm_plot: bytes | None = None  # comm.plot(), drawn with the other plots


def build(records: pd.DataFrame, sources: list[str], cv_threshold: float,
          baseline: str | None = None, instances: dict[str, prices.Instance] | None = None
          ) -> Report:
    """Tables of ``records`` (store.load's frame); plots are added by ``plots.draw``.
    ``baseline``: the row (id or KEY=VALUE terms, ``derived.baseline_row``) of the speedups."""
    frame = rows.normalise(records)
    collectives = frame.get("config.kind", pd.Series(index=frame.index, dtype=object)) \
        == COMM_KIND
    frame["config.model"] = frame["config.model"].astype(object).where(  # in the failed runs
        ~collectives, "collectives (comm)")
    ok = frame[(frame["status"] == "ok") & ~collectives]
    groups = rows.group(ok)
    table = pd.DataFrame([rows.row(rid, g, cv_threshold) for rid, g in groups.items()],
                         columns=rows.COLUMNS)
    table = derived.add(table, groups, prices.load() if instances is None else instances,
                        baseline)
    sweeps = [str(s) for s in dict.fromkeys(frame.get("tags.sweep", pd.Series()).dropna())]
    points = comm.points(frame[(frame["status"] == "ok") & collectives])
    return Report(sources, len(frame), cv_threshold, table, groups, rows.failed(frame),
                  efficiency.table(ok), sweeps=sweeps, comm=comm.plateaus(points),
                  comm_points=points)
