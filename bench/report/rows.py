"""One row per configuration on one device, each figure over repeats with its label.

Records with status ok are grouped by ``key_columns``: the device, the world size, the
energy method that ran, every run-configuration field (``config.*``: each field of
``bench.inputs.config.RunConfig``, and any other a record holds) and the software the run used
(Python, torch, trnbench, and every ``device.versions.*``: SDK, driver, runtime versions and a
CPU's threads per process). Only the repeats of one configuration share a row: records that
differ in any of these are never merged. A record written before a RunConfig field existed
ran with that field's default (no TP before ``--tp``, no checkpointing before ``--ac``), and
is grouped as such (``normalise``). The git commit is not part of the key (a commit changes no
measurement); each row lists its commits.

Each figure of a row is summarised over its n runs with ``metrics.repeat_stats``: the median
is the row's figure; olympic mean (MLPerf: best and worst run dropped), min, max and CV are
kept. A row is flagged when the CV over its runs of tokens/s per chip, J/token or the median
step time is above the threshold.

Where each figure comes from (fields of the record, docs/methodology.md "The record"):
- tokens/s per chip: measured, ``tokens_per_s_per_chip``.
- MFU: derived, ``mfu`` = FLOPs/token x tokens/s / (peak x chips); the peak's label and
  source go with it; no peak gives null and the reason.
- J/token, tokens/kWh: ``energy.*`` by ``energy.method``; ``modelled`` is an estimate
  (table power x chips x time), never a measurement; null gives the reason.
- step p50 / p90: each run's ``step_time.median_s`` / ``p90_s`` by ``step_time.method``.
- compile: ``warmup.first_step_s`` (holds compilation), ``warmup.total_s``; on XLA the
  graph compilations counted in warm-up and in the timed window (``compilation``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Iterable
from typing import Any

import pandas as pd

from bench.inputs import config
from bench.records import labels, metrics

# the key's leading columns, the order rows are sorted in; ``key_columns`` adds the rest
KEY = ("config.model", "device.name", "config.precision", "config.backend", "config.batch",
       "config.seq", "world_size", "config.compile", "config.parallel", "energy.method",
       "device.versions.threads")
CONFIG = tuple(f"config.{name}" for name in config.OPTIONS)
SOFTWARE = ("environment.python", "environment.torch", "environment.trnbench")
# what a record written before a RunConfig field existed ran with: the field's default
DEFAULTS = {f"config.{f.name}": f.default for f in dataclasses.fields(config.RunConfig)
            if f.default is not dataclasses.MISSING}

READ = (*KEY, *CONFIG, *SOFTWARE, "run_id", "time", "status", "error", "source_file", "device.kind",
        "device.chips", "nodes", "tokens_per_s", "tokens_per_s_per_chip", "mfu", "peak.value",
        "peak.label", "peak.source", "model.flops_formula", "energy.j_per_token",
        "energy.tokens_per_kwh", "energy.scope", "energy.reason", "step_time.median_s",
        "step_time.p90_s", "step_time.method", "step_times_s", "warmup.steps",
        "warmup.first_step_s", "warmup.total_s", "compilation.method",
        "compilation.warmup_graphs", "compilation.warmup_compile_s",
        "compilation.timed_graphs", "environment.host", "environment.git_commit", "ranks",
        "tags.scaling", "flags", "parallelism.dp", "parallelism.dp_shard", "memory.peak_bytes",
        "memory.method", "memory.predicted_peak_bytes")

COLUMNS = [
    "row", "model", "device", "device_kind", "chips", "precision", "backend", "batch", "seq",
    "world_size", "nodes", "threads", "compile", "parallel", "layout", "tp", "dp_shard", "ac",
    "param_dtype", "steps", "warmup", "lr", "seed", "data", "energy_flag", "dist_timeout_s", "n",
    "tokens_per_s_per_chip", "tokens_per_s_per_chip_olympic_mean", "tokens_per_s_per_chip_min",
    "tokens_per_s_per_chip_max", "tokens_per_s_per_chip_cv", "tokens_per_s_method",
    "mfu", "mfu_n", "mfu_method", "peak_flops_per_chip", "peak_label", "peak_source", "mfu_note",
    "j_per_token", "j_per_token_cv", "j_per_token_n", "tokens_per_kwh", "energy_method",
    "energy_label", "energy_scope", "energy_note",
    "step_p50_s", "step_p90_s", "step_p50_cv", "step_time_method",
    "first_step_s", "warmup_s", "warmup_steps", "compile_graphs_warmup", "compile_s_warmup",
    "compile_graphs_timed", "compile_method",
    "peak_memory_bytes", "peak_memory_method", "predicted_peak_bytes",
    "flagged", "flag_reason", "cv_threshold",
    "run_ids", "hosts", "environment", "git_commits", "first_time", "last_time", "source_files",
]

FAILED_COLUMNS = ["run_id", "time", "status", "model", "backend", "batch", "seq", "precision",
                  "world_size", "error", "source_file"]



def present(value: Any) -> bool:
    """Whether a cell holds a value (not None/NaN; lists and dicts count as values)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def unique(values: Iterable[Any]) -> str:
    """The distinct present values in order of appearance, joined by '; '."""
    return "; ".join(dict.fromkeys(str(v) for v in values if present(v)))


def normalise(records: pd.DataFrame) -> pd.DataFrame:
    """Every column the report reads (absent ones null); world_size and nodes 1 unless set;
    a RunConfig field a record lacks (written before the field existed) its default."""
    frame = records.reindex(columns=list(dict.fromkeys([*records.columns, *READ])))
    frame["world_size"] = frame["world_size"].map(lambda w: int(w) if present(w) else 1)
    frame["nodes"] = frame["nodes"].map(lambda n: int(n) if present(n) else 1)
    for column, default in DEFAULTS.items():
        frame[column] = frame[column].map(lambda v, d=default: v if present(v) else d)
    return frame


# where a run found things, not what ran: the NEFF cache's directory and where the topology was
# read (neuron-ls or the runtime) do not make two configurations
NOT_KEY = ("device.versions.neff_cache", "device.versions.topology_source")


def key_columns(frame: pd.DataFrame) -> list[str]:
    """What tells configurations apart: ``KEY``, every other RunConfig field, any other
    ``config.*`` field of the records, the software versions and every ``device.versions.*``."""
    others = sorted(c for c in frame.columns if c.startswith(("config.", "device.versions."))
                    and c not in NOT_KEY)
    return list(dict.fromkeys([*KEY, *CONFIG, *SOFTWARE, *others]))


def key_text(value: Any) -> str:
    """A key cell as text that equal values share: 2 and 2.0 alike, null empty, a list as
    JSON."""
    if not present(value):
        return ""
    if isinstance(value, list | dict) or type(value).__name__ in ("bool", "bool_"):  # numpy's
        return json.dumps(value if isinstance(value, list | dict) else bool(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _order(value: Any) -> tuple[int, Any]:
    """Sort position of a key cell: numbers by value, then text, then null."""
    if isinstance(value, numbers.Real) and present(value):
        return 0, float(value)
    return (1, str(value)) if present(value) else (2, "")


def group(ok: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Row id ("R1", ...) -> the ok records of one configuration (``key_columns`` equal), oldest
    first; rows in the order of their key (model, device, precision, ...)."""
    if ok.empty:
        return {}
    ordered = ok.sort_values("time", kind="stable")
    columns = key_columns(ordered)
    text = [ordered[c].map(key_text) for c in columns]
    groups = [g for _, g in ordered.groupby(text, sort=False, dropna=False)]
    groups.sort(key=lambda g: tuple(_order(g[c].iloc[0]) for c in columns))
    return {f"R{i}": g for i, g in enumerate(groups, 1)}


def _stats(values: pd.Series, cv_threshold: float) -> metrics.RepeatStats | None:
    present_values = [float(v) for v in values if present(v)]
    return metrics.repeat_stats(present_values, cv_threshold) if present_values else None


def _median(values: pd.Series) -> float | None:
    s = _stats(values, metrics.CV_FLAG)
    return s.median if s else None


def _cv(s: metrics.RepeatStats | None) -> float | None:
    """The CV over repeats; None for fewer than two runs (no spread to measure)."""
    return s.cv if s is not None and s.n > 1 else None


def _int(value: Any) -> int | None:
    return int(value) if present(value) else None


def _hosts(g: pd.DataFrame) -> str:
    ranks = [r.get("host") for rs in g["ranks"] if isinstance(rs, list) for r in rs]
    return unique([*g["environment.host"], *ranks])


def _environment(g: pd.DataFrame) -> str:
    device_versions = sorted(c for c in g.columns if c.startswith("device.versions.")
                             and c != "device.versions.threads"  # a column of its own
                             and c not in NOT_KEY)
    envs = []
    for _, r in g.iterrows():
        parts = [f"python {r['environment.python']}", f"torch {r['environment.torch']}",
                 f"trnbench {r['environment.trnbench']}"]
        parts += [v for v in (f"{c.removeprefix('device.versions.')} {r[c]}"
                              for c in device_versions if present(r[c])) if v not in parts]
        envs.append(", ".join(parts))
    return unique(envs)


def layout(first: pd.Series) -> str:
    """How a row's ranks are laid out, with checkpointing and parameter dtype: '1 process',
    'TP 8 x DP 8 fsdp, AC full, bf16 params', 'TP 4 x DP 4 hsdp (shard 2)'."""
    ranks, tp = int(first["world_size"]), int(first["config.tp"])
    text = "1 process"
    if ranks > 1:
        dp = _int(first["parallelism.dp"]) or ranks // tp
        text = f"TP {tp} x DP {dp} {first['config.parallel']}"
        shard = _int(first["parallelism.dp_shard"])
        if first["config.parallel"] == "hsdp" and shard:
            text += f" (shard {shard})"
    if first["config.ac"] != "none":
        text += f", AC {first['config.ac']}"
    if first["config.param_dtype"] != "fp32":
        text += f", {first['config.param_dtype']} params"
    return text


def _mfu_note(g: pd.DataFrame, mfu: metrics.RepeatStats | None) -> str | None:
    first = g.iloc[0]
    if mfu is not None and mfu.n == len(g):
        return None
    if not g["peak.value"].map(present).all():
        return (f"no peak FLOP/s known for {first['device.name']} in "
                f"{first['config.precision']}; MFU is null, never a guessed peak")
    return "the chip count is unknown"


def _energy_note(g: pd.DataFrame, j: metrics.RepeatStats | None) -> str | None:
    missing = g[~g["energy.j_per_token"].map(present)]
    if missing.empty:
        return None
    reasons = unique(f"{m}: {r}" for m, r in zip(missing["energy.method"],
                                                 missing["energy.reason"], strict=True))
    return reasons if j is None else f"{len(missing)} of {len(g)} runs without a reading " \
                                     f"({reasons})"


def row(row_id: str, g: pd.DataFrame, cv_threshold: float) -> dict[str, Any]:
    """The figures of one configuration (``g``: its ok records) with labels and methods."""
    first = g.iloc[0]
    tps = _stats(g["tokens_per_s_per_chip"], cv_threshold)
    mfu = _stats(g["mfu"], cv_threshold)
    j = _stats(g["energy.j_per_token"], cv_threshold)
    p50 = _stats(g["step_time.median_s"], cv_threshold)
    method = first["energy.method"]
    flags = [f"{name} CV {s.cv:.1%} > {cv_threshold:.1%}"
             for name, s in (("tokens/s per chip", tps), ("J/token", j), ("step p50", p50))
             if s is not None and s.n > 1 and s.flagged]
    flags += dict.fromkeys(f for run in g["flags"] if isinstance(run, list) for f in run)
    return {
        "row": row_id, "model": first["config.model"], "device": first["device.name"],
        "device_kind": first["device.kind"], "chips": first["device.chips"],
        "precision": first["config.precision"], "backend": first["config.backend"],
        "batch": _int(first["config.batch"]), "seq": _int(first["config.seq"]),
        "world_size": first["world_size"], "nodes": first["nodes"],
        "threads": _int(first["device.versions.threads"]),
        "compile": bool(first["config.compile"]), "parallel": first["config.parallel"],
        "layout": layout(first), "tp": _int(first["config.tp"]),
        "dp_shard": _int(first["config.dp_shard"]), "ac": first["config.ac"],
        "param_dtype": first["config.param_dtype"], "steps": _int(first["config.steps"]),
        "warmup": _int(first["config.warmup"]), "lr": first["config.lr"],
        "seed": _int(first["config.seed"]), "data": first["config.data"],
        "energy_flag": first["config.energy"], "dist_timeout_s": first["config.dist_timeout_s"],
        "n": len(g),
        # null (n/a, with mfu_note's reason) when no run knows its chip count
        "tokens_per_s_per_chip": tps and tps.median, "tokens_per_s_per_chip_olympic_mean":
            tps and tps.olympic_mean, "tokens_per_s_per_chip_min": tps and tps.min,
        "tokens_per_s_per_chip_max": tps and tps.max, "tokens_per_s_per_chip_cv": _cv(tps),
        "tokens_per_s_method": "measured: tokens in the timed window / window s / chips",
        "mfu": mfu.median if mfu else None, "mfu_n": mfu.n if mfu else 0,
        "mfu_method": f"derived: FLOPs/token ({unique(g['model.flops_formula'])}) x tokens/s "
                      f"/ (peak x chips)",
        "peak_flops_per_chip": _median(g["peak.value"]), "peak_label": unique(g["peak.label"]),
        "peak_source": unique(g["peak.source"]), "mfu_note": _mfu_note(g, mfu),
        "j_per_token": j.median if j else None, "j_per_token_cv": _cv(j),
        "j_per_token_n": j.n if j else 0, "tokens_per_kwh": _median(g["energy.tokens_per_kwh"]),
        "energy_method": method,
        "energy_label": labels.energy(method) if j else None,
        "energy_scope": unique(g["energy.scope"]), "energy_note": _energy_note(g, j),
        "step_p50_s": p50.median if p50 else None, "step_p90_s": _median(g["step_time.p90_s"]),
        "step_p50_cv": _cv(p50), "step_time_method": unique(g["step_time.method"]),
        "first_step_s": _median(g["warmup.first_step_s"]), "warmup_s": _median(g["warmup.total_s"]),
        "warmup_steps": _int(first["warmup.steps"]),
        "compile_graphs_warmup": _median(g["compilation.warmup_graphs"]),
        "compile_s_warmup": _median(g["compilation.warmup_compile_s"]),
        "compile_graphs_timed": _median(g["compilation.timed_graphs"]),
        "compile_method": unique(g["compilation.method"]) or None,
        "peak_memory_bytes": _median(g["memory.peak_bytes"]),
        "peak_memory_method": unique(g["memory.method"]) or None,
        "predicted_peak_bytes": _median(g["memory.predicted_peak_bytes"]),
        "flagged": bool(flags), "flag_reason": "; ".join(flags) or None,
        "cv_threshold": cv_threshold,
        "run_ids": " ".join(g["run_id"]), "hosts": _hosts(g), "environment": _environment(g),
        "git_commits": unique(str(c)[:12] for c in g["environment.git_commit"] if present(c)),
        "first_time": g["time"].iloc[0], "last_time": g["time"].iloc[-1],
        "source_files": unique(g["source_file"]),
    }


def failed(frame: pd.DataFrame) -> pd.DataFrame:
    """The records that are not ok (failed, interrupted), with their errors, oldest first."""
    bad = frame[frame["status"] != "ok"].sort_values("time", kind="stable")
    columns = {"run_id": "run_id", "time": "time", "status": "status", "config.model": "model",
               "config.backend": "backend", "config.batch": "batch", "config.seq": "seq",
               "config.precision": "precision", "world_size": "world_size", "error": "error",
               "source_file": "source_file"}
    return bad[list(columns)].rename(columns=columns)[FAILED_COLUMNS].reset_index(drop=True)
