"""Scaling efficiency of the runs tagged ``scaling=<series id>`` (``trnbench scaling``).

For a series run at world sizes N = 1, 2, 4, ... (processes, one per chip or core; weak
scaling: each rank keeps its batch):

    T_N                       = median over the repeats at N of the global tokens/s
    tokens/s per rank (N)     = T_N / N
    scaling efficiency E(N)   = (T_N / N) / (T_b / b)     (metrics.scaling_efficiency)

b is the series' smallest world size: 1 when the series has a 1-rank run, so that
E(N) = tokens/s per rank / tokens/s per rank of the world_size 1 run (1.0 = linear);
otherwise the efficiency is relative to b ranks and the table says so.
"""

from __future__ import annotations

import pandas as pd

from bench.records import metrics
from bench.report.rows import present, unique

COLUMNS = ["series", "model", "device", "precision", "world_size", "nodes", "n",
           "tokens_per_s", "tokens_per_s_cv", "tokens_per_s_per_rank", "scaling_efficiency",
           "baseline_world_size", "run_ids"]


def table(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per series and world size, in series then world-size order."""
    tagged = ok[ok["tags.scaling"].map(present).astype(bool)]
    out = []
    for series, s in tagged.groupby("tags.scaling", sort=True):
        sizes = {int(w): (g, metrics.repeat_stats([float(v) for v in g["tokens_per_s"]]))
                 for w, g in s.sort_values("time", kind="stable").groupby("world_size")}
        efficiency = metrics.scaling_efficiency({w: st.median for w, (_, st) in sizes.items()})
        for w, (g, st) in sorted(sizes.items()):
            out.append({
                "series": series, "model": unique(g["config.model"]),
                "device": unique(g["device.name"]), "precision": unique(g["config.precision"]),
                "world_size": w, "nodes": int(g["nodes"].max()), "n": st.n,
                "tokens_per_s": st.median, "tokens_per_s_cv": st.cv,
                "tokens_per_s_per_rank": st.median / w, "scaling_efficiency": efficiency[w],
                "baseline_world_size": min(sizes), "run_ids": " ".join(g["run_id"]),
            })
    return pd.DataFrame(out, columns=COLUMNS)
