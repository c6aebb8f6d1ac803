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
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.inputs.paths import write_file
from bench.report import cells, comm
from bench.report.build import Report
from bench.report.rows import present, unique

CAPTIONS = {
    "throughput.png": "Throughput: tokens/s per chip (measured) by configuration, a point at "
                      "the median over runs, whiskers the 95% t-interval of the mean (3 or more "
                      "runs); a log axis only when values span more than 10x and every "
                      "interval stays above 0.",
    "energy.png": "Energy per token by configuration, method in brackets, whiskers the 95% "
                  "t-interval of the mean; hollow points are modelled (table power x time), "
                  "not measured.",
    "step_times.png": "Step-time distribution of each configuration (all timed steps of its "
                      "runs), with the timing method; each panel on its own scale.",
    "scaling.png": "Scaling efficiency against ranks of each scaling series (100% = linear).",
}

COMM_PLOT = "comm_busbw.png"
COMM_CAPTION = ("Collectives: bus bandwidth (measured) against message size, log-log, one line "
                "per op and world size (and device, tool, dtype), each size the median over its "
                "runs; dashed: the link's datasheet bandwidth.")

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1b1b1b; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: separate; border-spacing: 0; margin: 8px 0; font-size: 12px; }
th, td { border: solid #c8c8c8; border-width: 0 1px 1px 0; padding: 4px 6px; text-align: left;
         vertical-align: top; }
tr:first-child > th { border-top-width: 1px; }
th { background: #eef1f5; }
/* a wide table scrolls inside its own box, its first column (the row's id) stays in view */
table { display: block; max-width: 100%; overflow-x: auto; }
th:first-child, td:first-child { position: sticky; left: 0; border-left-width: 1px; }
td:first-child { background: #fff; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flagged td { background: #fff4d6; }
.na { color: #8a4b00; }
p.warning { background: #fff4d6; border-left: 4px solid #d29b00; padding: 6px 10px;
            font-size: 12px; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .meta, ul.notes { color: #555; font-size: 12px; }
ul.notes { list-style: none; padding-left: 0; margin-top: 2px; }
table.figures td { white-space: nowrap; }
table.provenance td { min-width: 9em; }
table.provenance td:last-child { min-width: 32em; font-family: ui-monospace, monospace; }
dt { font-weight: 600; margin-top: 6px; }
"""

FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A text cell a spreadsheet would run as a formula (leading = + - @, tab, CR) gets a
    leading apostrophe (OWASP, "CSV Injection"); numbers are never text cells."""
    return "'" + text if text.startswith(FORMULA_LEAD) else text


def csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV, its text cells neutralised."""
    safe = frame.copy()
    for c in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[c]):
            safe[c] = safe[c].map(lambda v: neutralise(v) if isinstance(v, str) else v)
    return safe.to_csv(index=False)


def _span(values: pd.Series) -> str:
    present = [str(v) for v in values if isinstance(v, str) and v]
    return f"{min(present)} .. {max(present)}" if present else "n/a"


def header(report: Report) -> list[tuple[str, str]]:
    """What was measured, on what, with what, and how to reproduce it: (label, text)."""
    t = report.table
    ok = int(t["n"].sum()) if not t.empty else 0
    lines = [("records", f"{report.records} from {', '.join(report.sources)}: {ok} ok in "
                         f"{len(t)} configuration rows, {len(report.failed)} failed or "
                         "interrupted")]
    if not t.empty:
        hardware = unique(f"{r['device']} ({r['device_kind']}) x {cells.chips(r['chips'])}"
                          + (f", instance {r['instance']}" if present(r.get("instance"))
                             else ", no AWS instance type known")
                          for _, r in t.iterrows())
        lines += [("measured", _span(pd.concat([t["first_time"], t["last_time"]]))),
                  ("hardware", hardware), ("hosts", unique(t["hosts"])),
                  ("software", unique(t["environment"])),
                  ("trnbench commit", unique(t["git_commits"]) or "n/a")]
    if not report.comm.empty:
        runs = report.comm_points["run_id"].nunique()
        lines.append(("collectives", f"{runs} ok record(s) in {len(report.comm)} line(s) of op "
                      f"x world size: {unique(report.comm['device'])}; tools "
                      f"{unique(report.comm['tool'])}"))
    if report.sweeps:
        lines.append(("sweeps", ", ".join(report.sweeps) + " (tags.sweep; each row's "
                      "trnbench run line is under 'Runs and environment')"))
    if report.command:
        lines.append(("reproduce this report", report.command))
    lines.append(("generated", f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; CV "
                               f"threshold {report.cv_threshold:.1%}"))
    return lines


# --- Markdown ---------------------------------------------------------------------------------

# escaped, each is then a literal (CommonMark): pipes (no new cell), backslashes (none escapes
# an escape of ours), a bracket that closes an inline link or image (``](``: a reference
# link needs a definition, which a cell cannot hold); emphasis is harmless and left alone
MD_SPECIAL = re.compile(r"([\\|]|\](?=\())")
LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def md_cell(text: str, numeric: bool = False) -> str:
    """One Markdown table cell that shows the text, never markup: HTML escaped; no link or
    image (``![..](..)``, ``[..](javascript:..)``: ``](`` escaped), pipes and backslashes
    escaped; on one line (a bare CR ends a row too); a text cell formula-safe (a number's
    sign stays: numeric columns hold numbers only)."""
    text = text if numeric else neutralise(text)
    text = LINE_BREAKS.sub(" ", html.escape(text, quote=False))
    return MD_SPECIAL.sub(r"\\\1", text)


def md_table(frame: pd.DataFrame, numeric: set[str] | frozenset[str] = frozenset()) -> str:
    lines = ["| " + " | ".join(md_cell(c) for c in frame.columns) + " |",
             "|" + "".join("--:|" if c in numeric else "---|" for c in frame.columns)]
    lines += ["| " + " | ".join(md_cell(str(v), c in numeric) for c, v in
                                zip(frame.columns, row, strict=True)) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def md_text_table(table: cells.TextTable) -> str:
    notes = [f"[{i}] {md_cell(n)}" for i, n in enumerate(table.footnotes, 1)]
    warnings = [f"**Warning**: {md_cell(w)}" for w in table.warnings]
    return md_table(table.frame, table.numeric) + "".join(
        "\n\n" + "<br>\n".join(lines) for lines in (notes, warnings) if lines)


def markdown(report: Report) -> str:
    parts = ["# trnbench report", ""]
    parts += [f"- **{label}**: {md_cell(text)}" for label, text in header(report)]
    parts += ["", "## Results (one row per configuration on one device)", ""]
    parts.append(md_text_table(cells.results(report.table)) if not report.table.empty
                 else "No ok runs.")
    if not report.scaling.empty:
        parts += ["", "## Scaling", "", md_text_table(cells.scaling(report.scaling))]
    if not report.comm.empty:
        parts += ["", "## Collectives (large-message plateau of each line)", "",
                  md_text_table(comm.text(report.comm))]
        if report.comm_plot:
            parts += ["", f"![{COMM_CAPTION}]({COMM_PLOT})", "", COMM_CAPTION]
    parts += ["", "## Plots", ""]
    parts += [f"![{CAPTIONS[name]}]({name})\n\n{CAPTIONS[name]}\n" for name in report.plots]
    if not report.table.empty and "energy.png" not in report.plots:
        parts.append("No energy chart: no row has an energy reading.\n")
    parts += ["## Failed runs", ""]
    parts.append(md_table(cells.failed(report.failed)) if not report.failed.empty else "None.")
    if not report.table.empty:
        parts += ["", "## Runs and environment", "", md_table(cells.provenance(report.table))]
    parts += ["", "## How each figure was made", ""]
    parts += [f"- **{figure}**: {md_cell(how)}"
              for figure, how in cells.notes(report.cv_threshold)]
    return "\n".join(parts) + "\n"


# --- HTML -------------------------------------------------------------------------------------

def html_table(frame: pd.DataFrame, flagged: list[bool] | None = None,
               numeric: set[str] | frozenset[str] = frozenset(), css: str = "") -> str:
    def td(column: str, value: object, tag: str = "td") -> str:
        text = str(value)
        classes = " ".join(c for c in ("num" if column in numeric else "",
                                       "na" if text.startswith("n/a") else "") if c)
        attr = f' class="{classes}"' if classes else ""
        return f"<{tag}{attr}>{html.escape(text)}</{tag}>"

    head = "".join(td(c, c, "th") for c in frame.columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        attr = ' class="flagged"' if flagged and flagged[i] else ""
        body.append(f"<tr{attr}>" + "".join(td(c, v) for c, v in zip(frame.columns, row,
                                                                     strict=True)) + "</tr>")
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_text_table(table: cells.TextTable, flagged: list[bool] | None = None) -> str:
    notes = "".join(f"<li>[{i}] {html.escape(n)}</li>" for i, n in enumerate(table.footnotes, 1))
    warnings = "".join(f"<p class='warning'><strong>Warning</strong>: {html.escape(w)}</p>"
                       for w in table.warnings)
    return html_table(table.frame, flagged, table.numeric, "figures") + (
        f"<ul class='notes'>{notes}</ul>" if notes else "") + warnings


def _figure(name: str, png: bytes, caption: str | None = None) -> str:
    data = base64.b64encode(png).decode()
    caption = html.escape(caption or CAPTIONS[name])
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def page(report: Report) -> str:
    """report.html: the whole report in one file that loads nothing else."""
    e = html.escape
    meta = "".join(f"<dt>{e(label)}</dt><dd>{e(text)}</dd>" for label, text in header(report))
    parts = [f"<h1>trnbench report</h1><dl class='meta' id='header'>{meta}</dl>",
             "<h2 id='results'>Results (one row per configuration on one device)</h2>"]
    parts.append(html_text_table(cells.results(report.table), list(report.table["flagged"]))
                 if not report.table.empty else "<p>No ok runs.</p>")
    if not report.scaling.empty:
        parts += ["<h2 id='scaling'>Scaling</h2>",
                  html_text_table(cells.scaling(report.scaling))]
    if not report.comm.empty:
        parts += ["<h2 id='collectives'>Collectives (large-message plateau of each line)</h2>",
                  html_text_table(comm.text(report.comm))]
        if report.comm_plot:
            parts.append(_figure(COMM_PLOT, report.comm_plot, COMM_CAPTION))
    parts.append("<h2 id='plots'>Plots</h2>")
    parts += [_figure(name, png) for name, png in report.plots.items()]
    if not report.table.empty and "energy.png" not in report.plots:
        parts.append("<p class='na'>No energy chart: no row has an energy reading.</p>")
    parts.append("<h2 id='failed'>Failed runs</h2>")
    parts.append(html_table(cells.failed(report.failed)) if not report.failed.empty
                 else "<p>None.</p>")
    if not report.table.empty:
        parts += ["<h2 id='provenance'>Runs and environment</h2>",
                  html_table(cells.provenance(report.table), css="provenance")]
    parts.append("<h2 id='methods'>How each figure was made</h2><dl>")
    parts += [f"<dt>{e(figure)}</dt><dd>{e(how)}</dd>"
              for figure, how in cells.notes(report.cv_threshold)]
    parts.append("</dl>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'><title>trnbench report</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


# --- files ------------------------------------------------------------------------------------

OUTPUTS = ("report.md", "report.html", "report.csv", "scaling.csv", "failed.csv", "comm.csv",
           COMM_PLOT, *CAPTIONS)


def write(report: Report, out: Path) -> list[Path]:
    """Write every output under ``out`` (created), each whole and never through a symbolic
    link (``paths.write_file``); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: str | bytes) -> None:
        write_file(out / name, data)
        written.append(out / name)

    put("report.md", markdown(report))
    put("report.html", page(report))
    put("report.csv", csv(report.table))
    if not report.scaling.empty:
        put("scaling.csv", csv(report.scaling))
    if not report.failed.empty:
        put("failed.csv", csv(report.failed))
    if not report.comm.empty:
        put("comm.csv", csv(report.comm))
    if report.comm_plot:
        put(COMM_PLOT, report.comm_plot)
    for name, png in report.plots.items():
        put(name, png)
    return written
