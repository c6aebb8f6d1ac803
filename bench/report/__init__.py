"""`trnbench report`: result tables and plots from stored records (docs/cli/report.md).

- ``rows``: one row per configuration on one device, figures over repeats with their labels;
  the failed runs; where each row comes from.
- ``scaling``: scaling efficiency of the series tagged ``scaling=<id>``.
- ``cells``: the text of each figure with its method and label, and the notes on methods.
- ``plots``: matplotlib charts as PNG bytes.
- ``render``: Markdown, CSV and a self-contained HTML page.
- ``command``: the verb (load, validate, write, terminal summary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.report import rows, scaling


@dataclass
class Report:
    """Everything the outputs show, built once from the loaded records."""

    sources: list[str]
    records: int
    cv_threshold: float
    table: pd.DataFrame  # rows.row(): numbers, labels and methods (the CSV)
    groups: dict[str, pd.DataFrame]  # row id -> the ok records behind it
    failed: pd.DataFrame  # rows.failed()
    scaling: pd.DataFrame  # scaling.table()
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG


def build(records: pd.DataFrame, sources: list[str], cv_threshold: float) -> Report:
    """Tables of ``records`` (store.load's frame); plots are added by ``plots.draw``."""
    frame = rows.normalise(records)
    ok = frame[frame["status"] == "ok"]
    groups = rows.group(ok)
    table = pd.DataFrame([rows.row(rid, g, cv_threshold) for rid, g in groups.items()],
                         columns=rows.COLUMNS)
    return Report(sources, len(frame), cv_threshold, table, groups, rows.failed(frame),
                  scaling.table(ok))
