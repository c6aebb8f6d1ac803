"""The report's charts with matplotlib (Agg), as PNG bytes.

- throughput.png: tokens/s per chip by row (model, device, precision), bars coloured by
  device, whiskers from the min to the max over the row's runs.
- energy.png: J/token of the rows that have an energy reading, labelled with the method;
  modelled bars are hatched and say "modelled" (an estimate, not a measurement).
- step_times.png: the distribution of per-step times (``step_times_s``) of each row, all
  its runs pooled, as box plots (whiskers 1.5 IQR, outliers as points).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from bench.config import ConfigError
from bench.report import cells

DPI = 100


def _pyplot() -> Any:
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
    _pyplot()


def _label(r: pd.Series) -> str:
    return f"{r['row']}: {r['model']}, {r['precision']}\n{r['device']}"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def _colours(table: pd.DataFrame) -> list[Any]:
    cmap = _pyplot().get_cmap("tab10")
    devices = list(dict.fromkeys(table["device"]))
    return [cmap(devices.index(d) % 10) for d in table["device"]]


def _bars(table: pd.DataFrame, values: pd.Series, xlabel: str, title: str,
          errors: list[list[float]] | None = None, hatches: list[str] | None = None) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * len(table)))
    ys = range(len(table))
    bars = ax.barh(ys, values, xerr=errors, color=_colours(table), capsize=4)
    for bar, hatch in zip(bars, hatches or [], strict=False):
        bar.set_hatch(hatch)
    ax.set_yticks(list(ys), [_label(r) for _, r in table.iterrows()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def throughput(table: pd.DataFrame) -> bytes:
    med = table["tokens_per_s_per_chip"]
    errors = [list(med - table["tokens_per_s_per_chip_min"]),
              list(table["tokens_per_s_per_chip_max"] - med)]
    return _bars(table, med, "tokens/s per chip (measured; median, whiskers min-max)",
                 "Throughput by model and device", errors)


def energy(table: pd.DataFrame) -> bytes | None:
    """None when no row has an energy reading (the report says so instead of a chart)."""
    rows = table[table["j_per_token"].notna()].copy()
    if rows.empty:
        return None
    rows["model"] = [f"{r['model']} [{cells.energy_label(r)}]" for _, r in rows.iterrows()]
    hatches = ["//" if m == "modelled" else "" for m in rows["energy_method"]]
    return _bars(rows, rows["j_per_token"], "J/token (median; method in brackets)",
                 "Energy per token by model and device (hatched: modelled, not measured)",
                 hatches=hatches)


def step_times(table: pd.DataFrame, groups: dict[str, pd.DataFrame]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(table)), 4.5))
    data = [[t * 1e3 for ts in groups[rid]["step_times_s"] if isinstance(ts, list) for t in ts]
            for rid in table["row"]]
    positions = list(range(1, len(data) + 1))
    ax.boxplot(data, positions=positions)
    ax.set_xticks(positions, [_label(r) for _, r in table.iterrows()], fontsize=8)
    ax.set_ylabel("step time, ms")
    ax.set_title("Step-time distribution per configuration (all timed steps of the row's "
                 "runs; " + "; ".join(dict.fromkeys(table["step_time_method"])) + ")",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def draw(table: pd.DataFrame, groups: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """File name -> PNG for each chart that has data (none without ok rows)."""
    if table.empty:
        return {}
    charts = {"throughput.png": throughput(table), "energy.png": energy(table),
              "step_times.png": step_times(table, groups)}
    return {name: png for name, png in charts.items() if png is not None}
