"""The report's files: Markdown, CSV and one self-contained HTML page, plus the PNG charts.

report.html embeds everything (CSS inline, charts as base64 PNG ``data:`` URIs, a ``data:``
favicon): it fetches nothing and names no external URL. report.md links the PNG files
written beside it. report.csv holds the numbers at full precision, one row per
configuration, with the label and method of each figure in its own column (an n/a figure
is an empty cell with the reason in the matching ``*_note`` column); scaling.csv and
failed.csv are written when there are scaling series or failed runs.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.report import Report, cells

CAPTIONS = {
    "throughput.png": "Throughput: tokens/s per chip (measured), median over runs, whiskers "
                      "min-max, by model and device.",
    "energy.png": "Energy per token by model and device, method in brackets; hatched bars "
                  "are modelled (table power x time), not measured.",
    "step_times.png": "Step-time distribution of each configuration (all timed steps of its "
                      "runs), with the timing method.",
}

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1b1b1b; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; }
th, td { border: 1px solid #c8c8c8; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
tr.flagged td { background: #fff4d6; }
.na { color: #8a4b00; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .meta { color: #555; font-size: 12px; }
dt { font-weight: 600; margin-top: 6px; }
"""


def _summary(report: Report) -> str:
    ok = int(report.table["n"].sum()) if not report.table.empty else 0
    return (f"{report.records} records from {', '.join(report.sources)}: {ok} ok in "
            f"{len(report.table)} configuration rows, {len(report.failed)} failed or "
            f"interrupted. Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. "
            f"CV threshold {report.cv_threshold:.1%}.")


# --- Markdown ---------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_md_cell(str(v)) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    parts = ["# trnbench report", "", _summary(report), "",
             "## Results (one row per configuration on one device)", ""]
    parts.append(md_table(cells.results(report.table)) if not report.table.empty
                 else "No ok runs.")
    if not report.scaling.empty:
        parts += ["", "## Scaling", "", md_table(cells.scaling(report.scaling))]
    parts += ["", "## Plots", ""]
    parts += [f"![{CAPTIONS[name]}]({name})\n\n{CAPTIONS[name]}\n" for name in report.plots]
    if not report.table.empty and "energy.png" not in report.plots:
        parts.append("No energy chart: no row has an energy reading.\n")
    parts += ["## Failed runs", ""]
    parts.append(md_table(cells.failed(report.failed)) if not report.failed.empty else "None.")
    if not report.table.empty:
        parts += ["", "## Runs and environment", "", md_table(cells.provenance(report.table))]
    parts += ["", "## How each figure was made", ""]
    parts += [f"- **{figure}**: {how}" for figure, how in cells.notes(report.cv_threshold)]
    return "\n".join(parts) + "\n"


# --- HTML -------------------------------------------------------------------------------------

def _html_table(frame: pd.DataFrame, flagged: list[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        attr = ' class="flagged"' if flagged and flagged[i] else ""
        tds = "".join(f'<td class="na">{html.escape(str(v))}</td>' if str(v).startswith("n/a")
                      else f"<td>{html.escape(str(v))}</td>" for v in row)
        body.append(f"<tr{attr}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    caption = html.escape(CAPTIONS[name])
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def page(report: Report) -> str:
    """report.html: the whole report in one file that loads nothing else."""
    e = html.escape
    parts = [f"<h1>trnbench report</h1><p class='meta'>{e(_summary(report))}</p>",
             "<h2 id='results'>Results (one row per configuration on one device)</h2>"]
    parts.append(_html_table(cells.results(report.table), list(report.table["flagged"]))
                 if not report.table.empty else "<p>No ok runs.</p>")
    if not report.scaling.empty:
        parts += ["<h2 id='scaling'>Scaling</h2>", _html_table(cells.scaling(report.scaling))]
    parts.append("<h2 id='plots'>Plots</h2>")
    parts += [_figure(name, png) for name, png in report.plots.items()]
    if not report.table.empty and "energy.png" not in report.plots:
        parts.append("<p class='na'>No energy chart: no row has an energy reading.</p>")
    parts.append("<h2 id='failed'>Failed runs</h2>")
    parts.append(_html_table(cells.failed(report.failed)) if not report.failed.empty
                 else "<p>None.</p>")
    if not report.table.empty:
        parts += ["<h2 id='provenance'>Runs and environment</h2>",
                  _html_table(cells.provenance(report.table))]
    parts.append("<h2 id='methods'>How each figure was made</h2><dl>")
    parts += [f"<dt>{e(figure)}</dt><dd>{e(how)}</dd>"
              for figure, how in cells.notes(report.cv_threshold)]
    parts.append("</dl>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'><title>trnbench report</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


# --- files ------------------------------------------------------------------------------------

def write(report: Report, out: Path) -> list[Path]:
    """Write every output under ``out`` (created); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: str | bytes) -> None:
        path = out / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        written.append(path)

    put("report.md", markdown(report))
    put("report.html", page(report))
    put("report.csv", report.table.to_csv(index=False))
    if not report.scaling.empty:
        put("scaling.csv", report.scaling.to_csv(index=False))
    if not report.failed.empty:
        put("failed.csv", report.failed.to_csv(index=False))
    for name, png in report.plots.items():
        put(name, png)
    return written
