"""The report's charts with matplotlib (Agg), as PNG bytes.

- throughput.png: tokens/s per chip by row (labelled with model, precision, threads, ranks
  and device), bars coloured by model, whiskers from the min to the max over the row's
  runs, the value printed on each bar; a log axis when the values span more than 10x.
- energy.png: J/token of the rows that have an energy reading, labelled with the method;
  modelled bars are hatched and say "modelled" (an estimate, not a measurement).
- step_times.png: the distribution of per-step times (``step_times_s``) of each row, all
  its runs pooled, as box plots (whiskers 1.5 IQR, outliers as points), one panel per row
  with its own scale.
- scaling.png: scaling efficiency against ranks of each ``scaling=<id>`` series.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import pandas as pd

from bench.inputs.errors import ConfigError
from bench.report import cells
from bench.report.rows import present, unique

DPI = 100
LOG_SPAN = 10  # values spanning more than this factor get a log axis


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("matplotlib", "trnbench report draws its plots with matplotlib: "
                          "pip install 'trnbench[plots]'") from None
    return plt


def check() -> None:
    """Raise ConfigError now (before anything is written) when matplotlib is missing."""
    pyplot()


def _label(r: pd.Series) -> str:
    """Everything that tells the rows apart: id, model, precision, threads, ranks, device."""
    threads = f"{r['threads']:g} thr" if present(r["threads"]) else None
    ranks = f"{r['world_size']} rank{'' if r['world_size'] == 1 else 's'}"
    what = ", ".join(x for x in (r["precision"], threads, ranks) if x)
    return f"{r['row']}: {r['model']} ({what})\n{r['device']}"


def to_png(fig: Any) -> bytes:
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


def _bars(table: pd.DataFrame, values: pd.Series, xlabel: str, title: str,
          errors: list[list[float]] | None = None, hatches: list[str] | None = None) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.65 * len(table)))
    ys = range(len(table))
    bars = ax.barh(ys, values, xerr=errors, color=_colours(table), capsize=4)
    for bar, hatch in zip(bars, hatches or [], strict=False):
        bar.set_hatch(hatch)
    ax.bar_label(bars, labels=[cells.count(v) for v in values], padding=4, fontsize=8)
    ax.set_yticks(list(ys), [_label(r) for _, r in table.iterrows()], fontsize=8)
    ax.invert_yaxis()
    if log_scale(values):
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled decades only: no overlaps
        xlabel += " — log scale"
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.margins(x=0.12)
    return to_png(fig)


def throughput(table: pd.DataFrame) -> bytes | None:
    """None when no row has a per-chip figure (chips unknown: the table says why)."""
    table = table[table["tokens_per_s_per_chip"].map(present)]
    if table.empty:
        return None
    med = table["tokens_per_s_per_chip"]
    errors = [list(med - table["tokens_per_s_per_chip_min"]),
              list(table["tokens_per_s_per_chip_max"] - med)]
    return _bars(table, med, "tokens/s per chip (measured; median, whiskers min-max)",
                 "Throughput by configuration (colour: model)", errors)


def energy(table: pd.DataFrame) -> bytes | None:
    """None when no row has an energy reading (the report says so instead of a chart)."""
    rows = table[table["j_per_token"].notna()].copy()
    if rows.empty:
        return None
    rows["model"] = [f"{r['model']} [{cells.energy_label(r)}]" for _, r in rows.iterrows()]
    hatches = ["//" if m == "modelled" else "" for m in rows["energy_method"]]
    return _bars(rows, rows["j_per_token"], "J/token (median; method in brackets)",
                 "Energy per token by configuration (hatched: modelled, not measured)",
                 hatches=hatches)


def step_times(table: pd.DataFrame, groups: dict[str, pd.DataFrame]) -> bytes:
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
    return to_png(fig)


def scaling(series: pd.DataFrame) -> bytes | None:
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
    return to_png(fig)


def draw(table: pd.DataFrame, groups: dict[str, pd.DataFrame],
         series: pd.DataFrame | None = None) -> dict[str, bytes]:
    """File name -> PNG for each chart that has data (none without ok rows)."""
    if table.empty:
        return {}
    with warnings.catch_warnings():  # a name in a script the font lacks is drawn as boxes
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        charts = {"throughput.png": throughput(table), "energy.png": energy(table),
                  "step_times.png": step_times(table, groups),
                  "scaling.png": scaling(series) if series is not None else None}
    return {name: png for name, png in charts.items() if png is not None}
