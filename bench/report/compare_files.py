"""`trnbench compare --out DIR`: the comparison as compare.md, compare.csv and compare.html,
with the bar chart compare.png (target / baseline of each figure), in the report's formats
(``bench.report.cells``: thousands-separated rates, 3 significant figures for ratios, each
null figure a footnoted n/a; ``bench.report.render``: safe Markdown/CSV, self-contained HTML).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from bench.inputs.paths import write_file
from bench.report import cells, render

CSV_COLUMNS = ["figure", "unit", "baseline", "target", "speedup", "label", "formula", "reason"]


def frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per figure: both sides' values, target / baseline, label, formula, reason."""
    return pd.DataFrame([{
        "figure": r["name"].replace("_", " "), "unit": r["unit"], "baseline": r["baseline"],
        "target": r["target"], "speedup": r["ratio"], "label": r["label"],
        "formula": r["formula"], "reason": r["reason"],
    } for r in result["ratios"]], columns=CSV_COLUMNS)


def _value(table: cells.TextTable, value: float | None, reason: str | None,
           fmt: Any = cells.count) -> str:
    return fmt(value) if value is not None else table.note(reason or "not available")


def text_table(result: dict[str, Any]) -> cells.TextTable:
    """The ratio table as text cells (numbers alone, null reasons as footnotes)."""
    out = cells.TextTable(pd.DataFrame())
    rows = []
    for r in result["ratios"]:
        reason = r["reason"]
        rows.append({
            "figure": r["name"].replace("_", " "), "unit": r["unit"],
            "baseline": _value(out, r["baseline"], reason),
            "target": _value(out, r["target"], reason),
            "speedup (target / baseline)": _value(out, r["ratio"], reason, cells.num),
            "label": r["label"],
        })
    out.frame = pd.DataFrame(rows)
    out.numeric = {"baseline", "target", "speedup (target / baseline)"}
    return out


def sides(result: dict[str, Any]) -> pd.DataFrame:
    """What each side selected: query, runs, model, device, instance."""
    out = []
    for role in ("baseline", "target"):
        s = result[role]
        inst = s["instance"]
        out.append({
            "side": role, "query": s["query"], "runs": str(s["runs"]),
            "run ids": " ".join(s["run_ids"]),
            "configuration": f"{s['model']}, seq {s['seq']}, {s['precision']}, batch "
                             f"{', '.join(map(str, s['batch']))}",
            "device": f"{s['device']['name']} ({s['device']['kind']})",
            "instance": f"{inst['name']} ({inst['chips']} chips; {inst['how']})" if inst
            else "n/a",
        })
    return pd.DataFrame(out)


def inputs(result: dict[str, Any]) -> pd.DataFrame:
    """Every input of a figure (chips per instance, price, energy) with its label and source."""
    out = []
    for role in ("baseline", "target"):
        seen = set()
        for fig in result[role]["figures"].values():
            for i in fig["inputs"]:
                if i["name"] in seen:
                    continue
                seen.add(i["name"])
                where = ", ".join(f"{k} {i[k]}" for k in ("region", "date", "method")
                                  if i.get(k))
                out.append({"side": role, "input": i["name"],
                            "value": f"{i['value']:,.6g} {i['unit']}",
                            "label": i["label"],
                            "source": "; ".join(x for x in (where, i["source"]) if x)})
    return pd.DataFrame(out, columns=["side", "input", "value", "label", "source"])


def chart(result: dict[str, Any]) -> bytes | None:
    """compare.png: target / baseline of each figure that has one, 1 marked; None if none."""
    from bench.report import plots

    rows = [r for r in result["ratios"] if r["ratio"] is not None]
    if not rows:
        return None
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * len(rows)))
    names = [f"{r['name'].replace('_', ' ')} ({r['label']})" for r in rows]
    values = [r["ratio"] for r in rows]
    bars = ax.barh(range(len(rows)), values, color=["#1f77b4" if v >= 1 else "#d62728"
                                                     for v in values])
    ax.bar_label(bars, labels=[f"{cells.num(v)}x" for v in values], padding=3, fontsize=8)
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    b, t = result["baseline"], result["target"]
    ax.set_xlabel(f"target / baseline ({t['device']['name']} over {b['device']['name']}; "
                  "1 = equal)", fontsize=8)
    ax.set_title(f"{t['model']}: target / baseline per chip, instance, watt and dollar",
                 fontsize=10)
    ax.margins(x=0.15)
    return plots.to_png(fig)


def markdown(result: dict[str, Any], png: bool) -> str:
    parts = ["# trnbench compare", "", f"Records from {render.md_cell(result['results'])}; "
             "each side's figure is the median over its runs.", "",
             render.md_table(sides(result)), "", render.md_text_table(text_table(result))]
    if result["warnings"]:
        parts += ["", "## Warnings", ""] + [f"- {render.md_cell(w)}" for w in
                                            result["warnings"]]
    sourced = inputs(result)
    if not sourced.empty:
        parts += ["", "## Inputs", "", render.md_table(sourced)]
    parts += ["", "![target / baseline](compare.png)", ""] if png else []
    return "\n".join(parts) + "\n"


def page(result: dict[str, Any], png: bytes | None) -> str:
    e = html.escape
    table = text_table(result)
    warnings = "".join(f"<li>{e(w)}</li>" for w in result["warnings"])
    body = [f"<h1>trnbench compare</h1><p class='meta'>Records from {e(result['results'])}; "
            "each side's figure is the median over its runs.</p>",
            render.html_table(sides(result)), "<h2 id='ratios'>Target / baseline</h2>",
            render.html_text_table(table)]
    if warnings:
        body.append(f"<h2 id='warnings'>Warnings</h2><ul>{warnings}</ul>")
    sourced = inputs(result)
    if not sourced.empty:
        body += ["<h2 id='inputs'>Inputs</h2>", render.html_table(sourced)]
    if png:
        body.append(f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}"'
                    ' alt="target / baseline"></figure>')
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<link rel='icon' href='data:,'><title>trnbench compare</title>"
            f"<style>{render.CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


OUTPUTS = ("compare.md", "compare.csv", "compare.html", "compare.png")


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """compare.md, compare.csv, compare.html (and compare.png when a ratio exists), each
    whole and never through a symbolic link (``paths.write_file``)."""
    out.mkdir(parents=True, exist_ok=True)
    png = chart(result)
    files: dict[str, str | bytes] = {
        "compare.md": markdown(result, png is not None),
        "compare.csv": render.csv(frame(result)), "compare.html": page(result, png)}
    if png:
        files["compare.png"] = png
    for name, data in files.items():
        write_file(out / name, data)
    return [out / name for name in files]
