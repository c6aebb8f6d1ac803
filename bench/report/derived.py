"""Figures of a report row derived from its measurements and a sourced table: the 95%
confidence interval of the repeat mean (tokens/s per chip, J/token; ``metrics.mean_ci95``:
none below 3 runs), tokens/s per instance and USD per million tokens
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
from bench.report import query as queries
from bench.report.rows import present

COLUMNS = ["tokens_per_s_per_chip_ci95_low", "tokens_per_s_per_chip_ci95_high",
           "j_per_token_ci95_low", "j_per_token_ci95_high", "ci_method",
           "instance", "chips_per_instance", "tokens_per_s_per_instance", "usd_per_m_tokens",
           "price_usd_per_hour", "price_source", "price_date", "instance_note",
           "speedup", "speedup_baseline"]
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


def baseline_row(table: pd.DataFrame, groups: dict[str, pd.DataFrame], query: str) -> str:
    """The id of the one row ``query`` names: a row id (R3), or a query (``bench.report.query``:
    the language of `trnbench compare`) whose records all lie in one row; ConfigError naming
    --baseline otherwise."""
    if query in set(table["row"]):
        return query
    frame = pd.concat(groups.values()) if groups else pd.DataFrame(columns=["run_id"])
    selected = frame[queries.matches(frame, query, "--baseline")]
    hits = [rid for rid, g in groups.items() if g["run_id"].isin(selected["run_id"]).any()]
    if len(hits) != 1:
        raise ConfigError("--baseline", f"{query!r} selects runs of {len(hits)} rows"
                          f"{' (' + ', '.join(hits) + ')' if hits else ''}, expected one; "
                          f"give a row id ({', '.join(table['row'])}) or more terms")
    return hits[0]


def add(table: pd.DataFrame, groups: dict[str, pd.DataFrame],
        instances: dict[str, prices.Instance], baseline: str | None) -> pd.DataFrame:
    """``table`` with COLUMNS filled in (a copy)."""
    out = table.reindex(columns=[*table.columns, *COLUMNS]).astype(
        {c: object for c in COLUMNS})
    base_id = baseline_row(table, groups, baseline) if baseline else None
    base = table.set_index("row")["tokens_per_s_per_chip"].get(base_id) if base_id else None
    for i, r in table.iterrows():
        extra: dict[str, Any] = _instance(r, instances)
        for figure, column in (("tokens_per_s_per_chip", "tokens_per_s_per_chip"),
                               ("j_per_token", "energy.j_per_token")):
            ci = metrics.mean_ci95([float(v) for v in groups[r["row"]][column] if present(v)])
            if ci:
                extra |= {f"{figure}_ci95_low": ci[0], f"{figure}_ci95_high": ci[1],
                          "ci_method": metrics.CI_METHOD}
        if present(base) and present(r["tokens_per_s_per_chip"]) and base > 0:
            extra |= {"speedup": r["tokens_per_s_per_chip"] / base, "speedup_baseline": base_id}
        for k, v in extra.items():
            out.at[i, k] = v
    return out
