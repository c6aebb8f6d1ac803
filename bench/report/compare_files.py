"""`trnbench compare --out DIR`: the comparison as compare.md, compare.csv and compare.html,
with the bar chart compare.png (target / baseline of each figure, on a linear axis from 0) and
loss.png (the loss curves of matching runs and their relative difference), each chart with
the footer of ``plots.footer``, in the report's formats
(``bench.report.cells``: thousands-separated rates, 3 significant figures for ratios, each
null figure a footnoted n/a; ``bench.report.render``: safe Markdown/CSV, self-contained HTML).
"""

from __future__ import annotations

import base64
import html
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from bench.inputs.paths import write_file
from bench.report import cells, losses, render

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


def footer(result: dict[str, Any]) -> str:
    """The provenance line of compare's charts: both systems, dates measured, commits."""
    from bench.report import plots

    sides_ = [result["baseline"], result["target"]]
    systems = [f"{s['device']['name']} ({s['device']['kind']}) on {', '.join(s['hosts'])}"
               for s in sides_]
    commits = list(dict.fromkeys(c for s in sides_ for c in s["commits"]))
    return plots.footer(list(dict.fromkeys(systems)), [t for s in sides_ for t in s["measured"]],
                        commits)


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
                  "1 = equal; linear axis from 0)", fontsize=8)
    ax.set_title(f"{t['model']}: target / baseline per chip, instance, watt and dollar",
                 fontsize=10)
    ax.set_xlim(left=0)
    ax.margins(x=0.15)
    return plots.to_png(fig, footer(result))


def loss_chart(result: dict[str, Any]) -> bytes | None:
    """loss.png: per pairing, both sides' mean loss per step (left) and their relative
    difference with the tolerance (right); None without a pairing."""
    from bench.report import plots

    pairs, tolerance = result["losses"]["pairs"], result["losses"]["tolerance"]
    if not pairs:
        return None
    plt = plots.pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(pairs), 2, figsize=(11, 3.2 * len(pairs)), squeeze=False)
    names = {role: f"{role}: {result[role]['device']['name']}" for role in ("baseline", "target")}
    for (curve, diff), p in zip(axes, pairs, strict=True):
        steps = list(range(1, p["steps"] + 1))
        for role, style in (("baseline", "-"), ("target", "--")):
            curve.plot(steps, p[role]["losses"], style, marker=".", markersize=4,
                       label=f"{names[role]} ({p[role]['runs']} run"
                             f"{'' if p[role]['runs'] == 1 else 's'})")
        curve.set_title("\n".join(textwrap.wrap(losses.describe(p["configuration"]), 60)),
                        fontsize=8)
        curve.set_xlabel("step (warm-up included)", fontsize=8)
        curve.set_ylabel("loss (mean over runs)", fontsize=8)
        curve.legend(fontsize=7)
        relative = [abs(t - b) / abs(b) * 100 if b else float("nan")
                    for b, t in zip(p["baseline"]["losses"], p["target"]["losses"], strict=True)]
        diff.plot(steps, relative, marker=".", markersize=4, color="#555555")
        diff.axhline(tolerance * 100, color="#d62728", linestyle="--", linewidth=0.8,
                     label=f"tolerance {tolerance:.0%}")
        diff.axvline(p["at_step"], color="#999999", linestyle=":", linewidth=0.8)
        diff.set_ylim(bottom=0, top=max([tolerance * 100 * 1.3, *relative]) * 1.1)
        diff.set_title(f"largest difference {p['max_relative_difference']:.2%} at step "
                       f"{p['at_step']}" + (" — above tolerance" if p["flagged"] else ""),
                       fontsize=8, color="#d62728" if p["flagged"] else "black")
        diff.set_xlabel("step", fontsize=8)
        diff.set_ylabel("|target - baseline| / baseline, %", fontsize=8)
        diff.legend(fontsize=7)
        for ax in (curve, diff):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
    fig.suptitle("Loss curves: did both sides train the same thing?", fontsize=10)
    fig.tight_layout()
    return plots.to_png(fig, footer(result))


def loss_table(result: dict[str, Any]) -> cells.TextTable:
    """The loss-curve check as text cells: a row per pairing."""
    loss = result["losses"]
    out = cells.TextTable(pd.DataFrame([{
        "configuration": losses.describe(p["configuration"]),
        "baseline runs": str(p["baseline"]["runs"]), "target runs": str(p["target"]["runs"]),
        "steps": str(p["steps"]),
        "largest difference %": cells.num(p["max_relative_difference"] * 100),
        "at step": str(p["at_step"]), "tolerance %": cells.num(loss["tolerance"] * 100),
        "flag": "above tolerance" if p["flagged"] else "",
    } for p in loss["pairs"]]))
    out.numeric = {"baseline runs", "target runs", "steps", "largest difference %", "at step",
                   "tolerance %"}
    return out


def loss_method(result: dict[str, Any]) -> str:
    return (f"How: {result['losses']['method']}. The tolerance is derived in "
            "docs/methodology.md, 'Loss curves across devices'.")


def _images(names: dict[str, str], charts: dict[str, bytes]) -> list[str]:
    return [f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}" '
            f'alt="{html.escape(names[name])}"><figcaption>{html.escape(names[name])}'
            "</figcaption></figure>" for name, png in charts.items()]


CAPTIONS = {"compare.png": "target / baseline of each figure (1 = equal)",
            "loss.png": "loss curves of matching runs and their relative difference"}


def markdown(result: dict[str, Any], charts: dict[str, bytes]) -> str:
    parts = ["# trnbench compare", "", f"Records from {render.md_cell(result['results'])}; "
             "each side's figure is the median over its runs.", "",
             render.md_table(sides(result)), "", render.md_text_table(text_table(result))]
    if result["warnings"]:
        parts += ["", "## Warnings", ""] + [f"- {render.md_cell(w)}" for w in
                                            result["warnings"]]
    sourced = inputs(result)
    if not sourced.empty:
        parts += ["", "## Inputs", "", render.md_table(sourced)]
    parts += ["", "## Loss curves", ""]
    parts.append(render.md_text_table(loss_table(result)) if result["losses"]["pairs"] else
                 render.md_cell(f"Not compared: {result['losses']['reason']}"))
    parts += ["", render.md_cell(loss_method(result))]
    parts += [""] + [f"![{CAPTIONS[name]}]({name})\n" for name in charts]
    return "\n".join(parts) + "\n"


def page(result: dict[str, Any], charts: dict[str, bytes]) -> str:
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
    body.append("<h2 id='losses'>Loss curves</h2>")
    body.append(render.html_text_table(loss_table(result)) if result["losses"]["pairs"] else
                f"<p class='na'>Not compared: {e(result['losses']['reason'])}</p>")
    body.append(f"<p class='meta'>{e(loss_method(result))}</p>")
    body += _images(CAPTIONS, charts)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<link rel='icon' href='data:,'><title>trnbench compare</title>"
            f"<style>{render.CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


OUTPUTS = ("compare.md", "compare.csv", "compare.html", "compare.png", "loss.png")


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """compare.md, compare.csv, compare.html, and compare.png (when a ratio exists) and
    loss.png (when loss curves were compared), each whole and never through a symbolic link
    (``paths.write_file``)."""
    out.mkdir(parents=True, exist_ok=True)
    charts = {name: png for name, png in (("compare.png", chart(result)),
                                          ("loss.png", loss_chart(result))) if png}
    files: dict[str, str | bytes] = {
        "compare.md": markdown(result, charts), "compare.csv": render.csv(frame(result)),
        "compare.html": page(result, charts), **charts}
    for name, data in files.items():
        write_file(out / name, data)
    return [out / name for name in files]
