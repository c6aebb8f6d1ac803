"""The report's collectives: bus bandwidth against message size, and the large-message
plateau of each line against its link's datasheet bandwidth (docs/cli/report.md).

A line is one op on one world size, device, tool and dtype: its ``runs`` (``trnbench comm``
records, or ingested nccl-tests / nccom-test ones) pooled, each size's busbw the median
over them. Its plateau is ``bandwidth.plateau`` of those points (the median busbw of its
three largest sizes), the figure ``trnbench project --comm-from`` uses.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.records import bandwidth
from bench.report import cells
from bench.report.rows import present
from bench.report.rows import unique as unique_text

LINE = ("device", "tool", "op", "ranks", "nodes", "dtype")  # what one line of the plot is
COLUMNS = [*LINE, "link", "runs", "plateau_busbw_gbs", "plateau_from_bytes",
           "plateau_to_bytes", "max_busbw_gbs",
           "reference_gbs", "reference_label", "reference_source", "of_reference",
           "run_ids"]
DASHES = ((0, (5, 2)), (0, (2, 2)), (0, (6, 2, 1, 2)), (0, (1, 1)))  # reference lines
NUMERIC = frozenset({"ranks", "nodes", "runs", "plateau busbw GB/s", "max busbw GB/s",
                     "datasheet GB/s", "of datasheet %"})


def _value(record: pd.Series, key: str) -> Any:
    value = record.get(key)
    return value if present(value) else None


def points(records: pd.DataFrame) -> pd.DataFrame:
    """One row per point of the ok collectives records (``store.load``'s frame)."""
    rows = []
    for _, r in records.iterrows():
        one_node = bool(_value(r, "comm.one_node"))
        line = {"device": r["device.name"], "tool": r["comm.tool"],
                "ranks": int(r["comm.ranks"]), "nodes": int(_value(r, "comm.nodes") or 1),
                "dtype": _value(r, "comm.dtype") or "n/a",
                "link": "intra-node" if one_node else "inter-node", "run_id": r["run_id"],
                "reference_gbs": _value(r, "comm.reference.gbs"),
                "reference_label": _value(r, "comm.reference.label"),
                "reference_source": _value(r, "comm.reference.source")}
        rows += [{**line, "op": p["op"], "size_bytes": p["size_bytes"],
                  "busbw_gbs": p["busbw_gbs"]} for p in r["comm.points"]]
    return pd.DataFrame(rows, columns=[*LINE, "link", "run_id", "reference_gbs",
                                       "reference_label", "reference_source", "size_bytes",
                                       "busbw_gbs"])


def _label(key: tuple) -> str:
    device, tool, op, ranks, nodes, dtype = key
    return f"{op}, {ranks} ranks / {nodes} node{'' if nodes == 1 else 's'} ({device}, {tool}, " \
           f"{dtype})"


def plateaus(pts: pd.DataFrame) -> pd.DataFrame:
    """One row per line: its plateau, largest busbw, runs and the datasheet reference."""
    rows = []
    for key, g in pts.groupby(list(LINE), sort=True):
        gbs, sizes = bandwidth.plateau(list(zip(g["size_bytes"], g["busbw_gbs"], strict=True)))
        ref = g["reference_gbs"].iloc[0]
        rows.append({**dict(zip(LINE, key, strict=True)), "link": g["link"].iloc[0],
                     "runs": g["run_id"].nunique(), "plateau_busbw_gbs": gbs,
                     "plateau_from_bytes": sizes[0], "plateau_to_bytes": sizes[-1],
                     "max_busbw_gbs": g["busbw_gbs"].max(), "reference_gbs": ref,
                     "reference_label": g["reference_label"].iloc[0],
                     "reference_source": g["reference_source"].iloc[0],
                     "of_reference": gbs / ref if present(ref) else None,
                     "run_ids": " ".join(dict.fromkeys(g["run_id"]))})
    return pd.DataFrame(rows, columns=COLUMNS)


def text(table: pd.DataFrame) -> cells.TextTable:
    """The plateau table as text cells; a line without a datasheet figure says why."""
    out = cells.TextTable(pd.DataFrame())
    out.frame = pd.DataFrame([{
        "op": r["op"], "device": r["device"], "tool": r["tool"], "ranks": str(r["ranks"]),
        "nodes": str(r["nodes"]), "dtype": r["dtype"], "link": r["link"],
        "runs": str(r["runs"]), "plateau busbw GB/s": cells.num(r["plateau_busbw_gbs"]),
        "plateau sizes": f"{bandwidth.size_text(r['plateau_from_bytes'])} .. "
                         f"{bandwidth.size_text(r['plateau_to_bytes'])}",
        "max busbw GB/s": cells.num(r["max_busbw_gbs"]),
        "datasheet GB/s": cells.num(r["reference_gbs"]) if present(r["reference_gbs"]) else
        out.note(f"no datasheet {r['link']} bandwidth for {r['device']} (a CPU host, or a "
                 "device of no known node)"),
        "of datasheet %": cells.num(r["of_reference"] * 100) if present(r["of_reference"])
        else "n/a",
        "datasheet source": f"[{r['reference_label']}: {r['reference_source']}]"
        if present(r["reference_gbs"]) else "",
        "run ids": r["run_ids"]} for _, r in table.iterrows()])
    out.numeric = set(NUMERIC)
    out.warnings = cells.few_runs(
        table.rename(columns={"runs": "n"}),
        lambda r: f"{r['op']}, {r['ranks']} ranks, {r['device']}, {r['tool']}",
        "run trnbench comm, or the collectives tool, again")
    return out


def plot(pts: pd.DataFrame, table: pd.DataFrame, note: str = "") -> bytes:
    """busbw against message size, log-log, one line per op and world size (and device,
    tool, dtype); each datasheet bandwidth a dashed horizontal line, named in the legend;
    ``note``: the footer (``plots.records_footer``)."""
    from bench.report.plots import pyplot, to_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for key, g in pts.groupby(list(LINE), sort=True):
        median = g.groupby("size_bytes")["busbw_gbs"].median()
        ax.plot(median.index, median.values, marker="o", markersize=3, label=_label(key))
    refs = table[table["reference_gbs"].map(present)]
    for i, ((gbs, link), g) in enumerate(refs.groupby(["reference_gbs", "link"], sort=True)):
        ax.axhline(gbs, color=("black", "dimgrey", "darkgrey")[i % 3], linewidth=1,
                   linestyle=DASHES[i % len(DASHES)],
                   label=f"datasheet {link} {cells.num(gbs)} GB/s ({unique_text(g['device'])})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted(set(pts["size_bytes"]))
    ticks = sizes[::max(1, len(sizes) // 10)]
    ax.set_xticks(ticks, [bandwidth.size_text(s) for s in ticks], fontsize=7, rotation=30)
    ax.set_xlabel("message size S")
    ax.set_ylabel("bus bandwidth, GB/s (measured; median over runs)")
    ax.set_title("Collectives: busbw = S / time x the op's factor (nccl-tests' definition)",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return to_png(fig, note)
