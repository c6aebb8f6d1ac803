"""The report's charts with matplotlib (Agg), as PNG bytes.

- throughput.png: tokens/s per chip of each row as a point (the median over its runs, the
  row's figure) with a whisker over the 95% t-interval of the mean (rows of 3 or more runs;
  fewer: the point alone, its n in the label); colour by model; a log axis when the values
  span more than 10x and every interval stays above 0 (points, never bars, so that a log
  axis reads true), else a linear axis from 0 (or from the lowest interval bound below 0).
- energy.png: J/token of the rows that have an energy reading, the same way; modelled
  points hollow and labelled "modelled" (an estimate, not a measurement).
- step_times.png: the distribution of per-step times (``step_times_s``) of each row, all
  its runs pooled, as box plots (whiskers 1.5 IQR, outliers as points), one panel per row
  with its own scale.
- scaling.png: scaling efficiency against ranks of each ``scaling=<id>`` series.

Every label names the row's model, precision, batch x sequence, layout and device; every PNG
carries a footer naming the system (devices, hosts), the dates measured, the trnbench commit
and when it was drawn (``footer``), so that a pasted chart says where it came from.
"""

from __future__ import annotations

import io
import textwrap
import warnings
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from bench.inputs.errors import ConfigError
from bench.report import cells
from bench.report.rows import present, unique

DPI = 100
LOG_SPAN = 10  # values spanning more than this factor get a log axis


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend. A stored name in a script the font lacks is
    drawn as boxes, without matplotlib's "Glyph ... missing" warning on stderr."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("matplotlib", "trnbench report draws its plots with matplotlib: "
                          "pip install 'trnbench[plots]'") from None
    warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
    return plt


def check() -> None:
    """Raise ConfigError now (before anything is written) when matplotlib is missing."""
    pyplot()


def _label(r: pd.Series) -> str:
    """Everything that tells the rows apart: id, model, precision, batch x sequence, layout,
    threads, runs, device."""
    threads = f", {r['threads']:g} thr" if present(r["threads"]) else ""
    return (f"{r['row']}: {r['model']} {r['precision']}, {r['batch']} x {r['seq']}, n = {r['n']}"
            f"\n{r['layout']}{threads}\n{r['device']}")


def footer(systems: list[str], times: list[str], commits: list[str]) -> str:
    """The provenance line of a chart: system, dates measured, commit, when drawn."""
    dates = sorted({str(t)[:10] for t in times if present(t) and t})
    span = f"{dates[0]} .. {dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "n/a")
    text = (f"trnbench · system: {'; '.join(systems) or 'n/a'} · measured {span} · commit "
            f"{', '.join(commits) or 'n/a'} · drawn {datetime.now(timezone.utc):%Y-%m-%d}")
    return "\n".join(textwrap.wrap(text, 150))


def records_footer(records: pd.DataFrame) -> str:
    """``footer`` of the records a chart shows (``store.load``'s frame)."""
    hosts = records.get("environment.host", pd.Series(index=records.index, dtype=object))
    systems = [f"{device} ({kind})" + (f" on {on}" if (on := unique(hosts[g.index])) else "")
               for (device, kind), g in
               records.groupby(["device.name", "device.kind"], sort=False, dropna=False)]
    commits = unique(str(c)[:12] for c in records.get("environment.git_commit", [])
                     if present(c))
    return footer(systems, list(records["time"]), [c for c in commits.split("; ") if c])


def to_png(fig: Any, note: str | None = None) -> bytes:
    """The figure as PNG bytes, with ``note`` (a ``footer``) along its bottom edge."""
    if note:  # under everything drawn so far, from its left edge
        fig.canvas.draw()
        box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
        fig.text(box.x0 / fig.get_figwidth(), (box.y0 - 0.1) / fig.get_figheight(), note,
                 ha="left", va="top", fontsize=7, color="#555555")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return buf.getvalue()


def _colours(table: pd.DataFrame) -> list[Any]:
    cmap = pyplot().get_cmap("tab10")
    models = list(dict.fromkeys(table["model"]))
    return [cmap(models.index(m) % 10) for m in table["model"]]


def log_scale(values: Any) -> bool:
    """Whether positive ``values`` span more than 10x (then a log axis keeps all readable)."""
    v = [float(x) for x in values if present(x) and x > 0]
    return bool(v) and max(v) / min(v) > LOG_SPAN


def _points(table: pd.DataFrame, figure: str, xlabel: str, title: str, note: str,
            hollow: list[bool] | None = None) -> bytes:
    """One point per row at its median ``figure``, whiskers over ``figure``'s 95% interval
    (``<figure>_ci95_low`` / ``_high``) where the row has one."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.75 * len(table)))
    values = [float(v) for v in table[figure]]
    colours = _colours(table)
    low, high = table.get(f"{figure}_ci95_low"), table.get(f"{figure}_ci95_high")
    for y, (i, r) in enumerate(table.iterrows()):
        x = values[y]
        ci = low is not None and present(low[i]) and present(high[i])
        if ci:
            ax.errorbar(x, y, xerr=[[x - low[i]], [high[i] - x]], fmt="none", ecolor=colours[y],
                        elinewidth=1.5, capsize=5)
        empty = bool(hollow and hollow[y])
        ax.plot(x, y, "o", markersize=7, color=colours[y], markerfacecolor="white" if empty
                else colours[y])
        text = cells.count(x) + (f" (95% CI {cells.count(low[i])}–{cells.count(high[i])})"
                                 if ci else f" (n = {r['n']}: no interval)")
        ax.annotate(text, (high[i] if ci else x, y), textcoords="offset points", xytext=(8, 4),
                    fontsize=8)
    ax.set_yticks(range(len(table)), [_label(r) for _, r in table.iterrows()], fontsize=8)
    ax.set_ylim(len(table) - 0.5, -0.5)
    bounds = [float(v) for c in (low, high) if c is not None for v in c if present(v)]
    # a log axis only where every point and bound is positive: an interval reaching 0 or
    # below would be cut off (a linear axis shows that it does)
    if log_scale([*values, *bounds]) and min([*values, *bounds]) > 0:
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled decades only: no overlaps
        ax.margins(x=0.3)
        xlabel += " — log scale"
    else:  # a linear axis from 0: the distance from the axis means the value
        ax.set_xlim(min([0.0, *bounds]), max([*values, *bounds]) * 1.45)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3, which="both")
    return to_png(fig, note)


def throughput(table: pd.DataFrame, note: str = "") -> bytes | None:
    """None when no row has a per-chip figure (chips unknown: the table says why)."""
    rows = table[table["tokens_per_s_per_chip"].map(present)]
    if rows.empty:
        return None
    return _points(rows, "tokens_per_s_per_chip", "tokens/s per chip (measured): point the "
                   "median over the row's runs, whisker the 95% t-interval of the mean",
                   "Throughput by configuration (colour: model)", note)


def energy(table: pd.DataFrame, note: str = "") -> bytes | None:
    """None when no row has an energy reading (the report says so instead of a chart)."""
    rows = table[table["j_per_token"].map(present)].copy()
    if rows.empty:
        return None
    rows["model"] = [f"{r['model']} [{cells.energy_label(r)}]" for _, r in rows.iterrows()]
    return _points(rows, "j_per_token", "J/token (median; method in brackets; whisker the 95% "
                   "t-interval of the mean)", "Energy per token by configuration (hollow: "
                   "modelled, not measured)", note,
                   hollow=[m == "modelled" for m in rows["energy_method"]])


def step_times(table: pd.DataFrame, groups: dict[str, pd.DataFrame], note: str = "") -> bytes:
    """One panel per row, each with its own scale (a slow model does not flatten the rest)."""
    plt = pyplot()
    n = len(table)
    cols = min(n, 3)
    rows_ = -(-n // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 3.2 * rows_), squeeze=False)
    for ax, (_, r) in zip(axes.flat, table.iterrows(), strict=False):
        data = [t * 1e3 for ts in groups[r["row"]]["step_times_s"] if isinstance(ts, list)
                for t in ts]
        ax.boxplot([data], widths=0.5)
        ax.set_xticks([1], [f"{len(data)} steps"], fontsize=8)
        ax.set_title(_label(r), fontsize=8)
        ax.set_ylabel("step time, ms", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("Step-time distribution per configuration, each on its own scale (all timed "
                 "steps of the row's runs; " + "; ".join(dict.fromkeys(
                     table["step_time_method"])) + ")", fontsize=10)
    fig.tight_layout()
    return to_png(fig, note)


def scaling(series: pd.DataFrame, note: str = "") -> bytes | None:
    """Scaling efficiency against ranks, one line per series, the ideal (1.0) marked."""
    if series.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, s in series.groupby("series", sort=True):
        ax.plot(s["world_size"], s["scaling_efficiency"] * 100, marker="o",
                label=f"{name}: {unique(s['model'])}, {unique(s['device'])}")
        for _, r in s.iterrows():
            ax.annotate(f"{cells.num(r['scaling_efficiency'] * 100)}%",
                        (r["world_size"], r["scaling_efficiency"] * 100),
                        textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.axhline(100, color="grey", linestyle="--", linewidth=0.8, label="linear (100%)")
    ax.set_xscale("log", base=2)
    ranks = sorted(set(series["world_size"]))
    ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.set_ylim(0, max(115.0, float(series["scaling_efficiency"].max()) * 110))
    ax.set_xlabel("ranks (world size)")
    ax.set_ylabel("scaling efficiency, % (derived)")
    ax.set_title("Scaling efficiency: tokens/s per rank against the series' smallest run",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return to_png(fig, note)


def draw(table: pd.DataFrame, groups: dict[str, pd.DataFrame],
         series: pd.DataFrame | None = None) -> dict[str, bytes]:
    """File name -> PNG for each chart that has data (none without ok rows)."""
    if table.empty:
        return {}
    note = records_footer(pd.concat(groups.values()))
    charts = {"throughput.png": throughput(table, note), "energy.png": energy(table, note),
              "step_times.png": step_times(table, groups, note),
              "scaling.png": scaling(series, note) if series is not None else None}
    return {name: png for name, png in charts.items() if png is not None}
