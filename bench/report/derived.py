"""Figures of a report row derived from its measurements and a sourced table: the 95%
confidence interval of the repeat mean, tokens/s per instance and USD per million tokens
(``bench/report/prices.toml``: chips per instance, on-demand price with its source and date), and
the speedup over a baseline row named with ``report --baseline``.

    tokens/s per instance = tokens/s per chip x chips per instance
    USD per M tokens      = USD per instance-hour / (tokens/s per instance x 3600) x 1e6
    speedup               = tokens/s per chip / the baseline row's tokens/s per chip

Per instance and per dollar assume the per-chip rate holds on every chip of the instance; a
device with no known AWS instance (a CPU host) leaves them null with the reason.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.inputs.errors import ConfigError
from bench.records import metrics
from bench.report import prices
from bench.report.rows import present

COLUMNS = ["tokens_per_s_per_chip_ci95_low", "tokens_per_s_per_chip_ci95_high", "ci_method",
           "instance", "chips_per_instance", "tokens_per_s_per_instance", "usd_per_m_tokens",
           "price_usd_per_hour", "price_source", "price_date", "instance_note",
           "speedup", "speedup_baseline"]
# the row columns a --baseline query may name (KEY=VALUE), besides a row id such as R3
BASELINE_KEYS = ("model", "device", "device_kind", "precision", "backend", "batch", "seq",
                 "world_size", "threads", "compile", "parallel")


def _instance(r: pd.Series, table: dict[str, prices.Instance]) -> dict[str, Any]:
    inst = prices.for_device(table, str(r["device_kind"]), str(r["device"]))
    if inst is None:
        return {"instance_note": f"no AWS instance is known for device kind "
                                 f"{r['device_kind']!r} (bench/report/prices.toml)"}
    out: dict[str, Any] = {"instance": inst.name, "chips_per_instance": inst.chips}
    per_chip = r["tokens_per_s_per_chip"]
    if present(per_chip):
        out["tokens_per_s_per_instance"] = per_chip * inst.chips
    if inst.price is None:
        out["instance_note"] = f"{inst.name}: {inst.price_missing}"
    elif present(per_chip):
        p = inst.price
        out |= {"usd_per_m_tokens": p.usd_per_hour / (per_chip * inst.chips * 3600) * 1e6,
                "price_usd_per_hour": p.usd_per_hour, "price_date": p.date,
                "price_source": f"{p.label}: {p.source}"}
    return out


def baseline_row(table: pd.DataFrame, query: str) -> str:
    """The id of the one row ``query`` names: a row id (R3) or KEY=VALUE terms over
    BASELINE_KEYS; ConfigError naming --baseline otherwise."""
    if query in set(table["row"]):
        return query
    mask = pd.Series(True, index=table.index)
    for term in query.split(","):
        key, sep, value = term.partition("=")
        if not sep or key not in BASELINE_KEYS:
            raise ConfigError("--baseline", f"expected a row id ({', '.join(table['row'])}) or "
                              f"KEY=VALUE terms with KEY one of {', '.join(BASELINE_KEYS)}; "
                              f"got {term!r}")
        mask &= table[key].map(lambda v, want=value: str(v).lower() == want.lower())
    hits = table[mask]
    if len(hits) != 1:
        raise ConfigError("--baseline", f"{query!r} selects {len(hits)} rows, expected one "
                          f"(rows: {', '.join(table['row'])})")
    return str(hits["row"].iloc[0])


def add(table: pd.DataFrame, groups: dict[str, pd.DataFrame],
        instances: dict[str, prices.Instance], baseline: str | None) -> pd.DataFrame:
    """``table`` with COLUMNS filled in (a copy)."""
    out = table.reindex(columns=[*table.columns, *COLUMNS]).astype(
        {c: object for c in COLUMNS})
    base_id = baseline_row(table, baseline) if baseline else None
    base = table.set_index("row")["tokens_per_s_per_chip"].get(base_id) if base_id else None
    for i, r in table.iterrows():
        values = [float(v) for v in groups[r["row"]]["tokens_per_s_per_chip"] if present(v)]
        ci = metrics.mean_ci95(values)
        extra: dict[str, Any] = _instance(r, instances)
        if ci:
            extra |= {"tokens_per_s_per_chip_ci95_low": ci[0],
                      "tokens_per_s_per_chip_ci95_high": ci[1], "ci_method": metrics.CI_METHOD}
        if present(base) and present(r["tokens_per_s_per_chip"]) and base > 0:
            extra |= {"speedup": r["tokens_per_s_per_chip"] / base, "speedup_baseline": base_id}
        for k, v in extra.items():
            out.at[i, k] = v
    return out
