"""`trnbench compare`: ratios of a target set of runs over a baseline set.

Each side is a query over the records with status ``ok``, in the language of `trnbench report
--baseline` (``bench.report.query``: KEY=VALUE terms, short keys such as model, device, ac, or
a run id).

Each side's figure is the median over its runs (``metrics.repeat_stats``); every ratio is
target / baseline of:

    per chip      tokens/s per chip                                           measured
    per instance  tokens/s per chip x chips per instance (bench/report/prices.toml)  derived
    per watt      tokens per joule = tokens / J of the timed window
                  = 1 / (J/token)                           the energy method's label
    per dollar    tokens per dollar = tokens/s per chip x chips per instance x 3600
                  / on-demand USD per instance-hour (bench/report/prices.toml)       derived

Per instance and per dollar assume the per-chip rate holds on every chip of the instance.
A figure that cannot be formed (no per-chip rate, no energy, no instance, no price) is null
with the reason; a modelled energy makes its ratio ``modelled``. Runs that differ in model,
sequence length or precision are refused unless ``--allow-mismatch``; every other
configuration field that differs (batch, threads per process, world size, nodes, every other
run flag such as tp, ac, steps or seed, energy method, torch and device software versions) is
a warning.
``--out DIR`` writes compare.md/.csv/.html and the bar chart compare.png (``compare_files``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from bench.inputs.errors import ConfigError
from bench.inputs.paths import readable_files
from bench.records import labels, metrics, store
from bench.records.record import COMM_KIND
from bench.report import cells, console, losses, prices, rows
from bench.report import query as queries

MATCH_FIELDS = ("config.model", "config.seq", "config.precision")
# configuration fields that may differ between the sides (a warning each), with their names:
# these, every other run flag (config.*) and every device.versions.* field (SDK, driver,
# runtime versions)
CONFIG_FIELDS = {"config.batch": "batch", "device.versions.threads": "threads per process",
                 "world_size": "world size", "nodes": "nodes", "config.compile": "torch.compile",
                 "config.parallel": "data parallelism", "config.backend": "backend",
                 "energy.method": "energy method", "environment.torch": "torch version"}
CONFIG_FIELDS |= {c: c.removeprefix("config.").replace("_", " ") for c in rows.CONFIG
                  if c not in (*CONFIG_FIELDS, *MATCH_FIELDS)}
ENERGY_LABELS = labels.ENERGY  # the one map (bench.records.labels)
RATIO_LABELS = ("derived", "estimate", "modelled")  # a ratio takes the weakest of its inputs
FIGURES = {
    "per_chip": ("tokens/s per chip", "the measured rate (median over runs)"),
    "per_instance": ("tokens/s per instance", "tokens/s per chip x chips per instance"),
    "per_watt": ("tokens/J", "tokens / J of the timed window (1 / J per token)"),
    "per_dollar": ("tokens/USD", "tokens/s per chip x chips per instance x 3600 / USD per "
                   "instance-hour"),
}


def load_records(paths: list[str] | None) -> tuple[pd.DataFrame, str]:
    """All records of ``paths`` (default: the store's default file) and how to name them."""
    files = readable_files([Path(p) for p in paths] if paths else [store.default_path()],
                           "--results")
    df = store.load(files, check=True)
    where = ", ".join(map(str, files))
    if df.empty:
        raise ConfigError("--results", f"no records in {where}")
    return df, where


def select(df: pd.DataFrame, query: str, flag: str, where: str) -> pd.DataFrame:
    """The ok training records that satisfy every term of ``query`` (``bench.report.query``);
    collectives records (``trnbench comm``) have no throughput to compare."""
    training = df.get("config.kind", pd.Series(index=df.index, dtype=object)) != COMM_KIND
    runs = df[(df["status"] == "ok") & training & queries.matches(df, query, flag)]
    if runs.empty:
        raise ConfigError(flag, f"{query!r} selects no ok runs in {where}")
    return runs


def _values(runs: pd.DataFrame, field: str) -> list[Any]:
    if field not in runs.columns:
        return []
    return runs[field].dropna().drop_duplicates().tolist()


def check_comparable(base: pd.DataFrame, target: pd.DataFrame, allow: bool) -> list[str]:
    """Refuse (ConfigError) runs that differ in model, sequence length or precision, naming
    the field and two of its values; with ``allow``, a warning per difference instead."""
    warnings = []
    for field in MATCH_FIELDS:
        b, t = _values(base, field), _values(target, field)
        if len(b) > 1 or len(t) > 1:
            role, vals = ("baseline", b) if len(b) > 1 else ("target", t)
            what = f"the {role} runs mix {vals[0]!r} and {vals[1]!r}"
        elif b != t:
            what = f"baseline {b[0] if b else None!r}, target {t[0] if t else None!r}"
        else:
            continue
        if not allow:
            raise ConfigError(field, f"{what}: runs that differ in model, sequence length or "
                              "precision are not compared (--allow-mismatch compares anyway)")
        warnings.append(f"{field} differs: {what}")
    return warnings


def config_differences(base: pd.DataFrame, target: pd.DataFrame) -> list[str]:
    """A warning for every configuration field (``CONFIG_FIELDS`` and the device's software
    versions) whose values differ between the baseline and the target runs."""
    versions = sorted({c for c in (*base.columns, *target.columns)
                       if c.startswith("device.versions.") and c != "device.versions.threads"})
    fields = {**CONFIG_FIELDS, **{c: c.removeprefix("device.versions.") + " version"
                                  for c in versions}}
    base, target = _counts_as_ints(base), _counts_as_ints(target)
    base, target = _with_defaults(base), _with_defaults(target)
    out = []
    for field, name in fields.items():
        b, t = _values(base, field), _values(target, field)
        if set(map(str, b)) != set(map(str, t)):
            out.append(f"{name} differs ({field}): baseline {_show(b)}, target {_show(t)}")
    return out


def _counts_as_ints(runs: pd.DataFrame) -> pd.DataFrame:
    """world_size and nodes as ints (a single-process record may lack them: 1)."""
    return runs.assign(**{c: runs[c].fillna(1).astype(int) for c in ("world_size", "nodes")
                          if c in runs})


def _with_defaults(runs: pd.DataFrame) -> pd.DataFrame:
    """A run flag a record lacks (written before the flag existed) as its default, as the
    report groups it (``rows.DEFAULTS``)."""
    return runs.assign(**{c: runs[c].map(lambda v, d=d: v if rows.present(v) else d)
                          if c in runs else d for c, d in rows.DEFAULTS.items()})


def _show(values: list[Any]) -> str:
    return ", ".join(map(str, values)) or "not recorded"


def _stats(runs: pd.DataFrame, column: str) -> metrics.RepeatStats | None:
    if column not in runs.columns:
        return None
    values = pd.to_numeric(runs[column], errors="coerce").dropna().tolist()
    return metrics.repeat_stats(values) if values else None


def _figure(value: float | None, label: str, inputs: list[dict[str, Any]],
            reason: str | None = None, stats: metrics.RepeatStats | None = None
            ) -> dict[str, Any]:
    return {"value": value, "label": label, "inputs": inputs, "reason": reason,
            "stats": stats.as_dict() if stats else None}


def _instance(runs: pd.DataFrame, role: str, table: dict[str, prices.Instance],
              name: str | None) -> tuple[prices.Instance | None, str]:
    """The instance a side's device runs in, and how it was chosen (or why there is none)."""
    kind, device = runs["device.kind"].iloc[0], runs["device.name"].iloc[0]
    if name:
        flag = f"--{role}-instance"
        if name not in table:
            raise ConfigError(flag, f"unknown instance {name!r}; accepted: "
                              f"{', '.join(table)} (or add it with --prices FILE.toml)")
        if table[name].device != kind:
            holding = [i for i, inst in table.items() if inst.device == kind]
            raise ConfigError(flag, f"{name} holds {table[name].device} accelerators but the "
                              f"{role} runs are on {device} (device kind {kind}); accepted: "
                              + (", ".join(holding) if holding else
                                 f"none known for {kind} (add one with --prices FILE.toml, "
                                 f'device = "{kind}")'))
        return table[name], flag
    inst = prices.for_device(table, kind, device)
    if inst is None:
        return None, (f"{role}: no AWS instance is known for device kind {kind!r} "
                      f"({device}); name one with --{role}-instance")
    return inst, f"the AWS instance of device kind {kind!r}"


def _energy(runs: pd.DataFrame, role: str) -> dict[str, Any]:
    """Tokens per joule of a side (median over the runs with energy), labelled by method."""
    column = "energy.j_per_token"
    if column in runs.columns:
        per_token = pd.to_numeric(runs[column], errors="coerce")
        has, per_token = runs[per_token > 0], per_token[per_token > 0]
    if column not in runs.columns or has.empty:
        first = runs.iloc[0]
        why = f"{first.get('energy.method')}: {first.get('energy.reason')}"
        return _figure(None, "measured", [], f"{role}: no energy measured ({why})")
    stats = metrics.repeat_stats((1.0 / per_token).tolist())
    methods = has["energy.method"].drop_duplicates().tolist()
    label = labels.weakest([labels.energy(m) for m in methods])
    inputs = [{"name": "energy", "value": float(per_token.median()),
               "unit": "J/token", "label": label, "method": ", ".join(methods),
               "source": "; ".join(has["energy.scope"].dropna().drop_duplicates().astype(str)),
               "runs": len(has)}]
    return _figure(stats.median, label, inputs, stats=stats)


def side(runs: pd.DataFrame, role: str, query: str, table: dict[str, prices.Instance],
         instance_name: str | None) -> dict[str, Any]:
    """What a side selected and its four figures (each a value with label, inputs, reason)."""
    devices = _values(runs, "device.name")
    if len(devices) > 1:
        raise ConfigError(f"--{role}", f"selects runs on several devices ({devices[0]!r}, "
                          f"{devices[1]!r}); narrow the query, e.g. with device_name=...")
    chip = _stats(runs, "tokens_per_s_per_chip")
    per_chip = _figure(chip.median if chip else None, "measured", [],
                       None if chip else f"{role}: tokens/s per chip is null in every run "
                       "(chips per device unknown)", chip)
    inst, how = _instance(runs, role, table, instance_name)
    figures = {"per_chip": per_chip}
    if inst is None:
        figures["per_instance"] = _figure(None, "derived", [], how)
        figures["per_dollar"] = _figure(None, "derived", [], how)
    else:
        chips_in = {"name": "chips per instance", "value": inst.chips,
                    "unit": f"chips in {inst.name}",
                    "label": "user" if inst.chips_source.startswith("user") else "datasheet",
                    "source": inst.chips_source}
        per_inst = chip.median * inst.chips if chip else None
        figures["per_instance"] = _figure(per_inst, "derived", [chips_in], per_chip["reason"])
        if inst.price is None:
            figures["per_dollar"] = _figure(None, "derived", [chips_in],
                                            f"{role}: {inst.name}: {inst.price_missing}")
        else:
            p = inst.price
            price_in = {"name": "price", "value": p.usd_per_hour, "unit": "USD per hour",
                        "label": p.label, "region": p.region, "date": p.date, "source": p.source}
            figures["per_dollar"] = _figure(
                per_inst * 3600 / p.usd_per_hour if per_inst is not None else None, "derived",
                [chips_in, price_in], per_chip["reason"])
    figures["per_watt"] = _energy(runs, role)
    first = runs.iloc[0]
    return {
        "query": query, "runs": len(runs), "run_ids": runs["run_id"].tolist(),
        "device": {"kind": first["device.kind"], "name": first["device.name"]},
        "hosts": _values(runs, "environment.host"),
        "measured": [str(runs["time"].min()), str(runs["time"].max())],
        "commits": list(dict.fromkeys(str(c)[:12] for c in
                                      _values(runs, "environment.git_commit"))),
        "model": first["config.model"], "seq": int(first["config.seq"]),
        "precision": first["config.precision"],
        "batch": [int(b) for b in _values(runs, "config.batch")],
        "instance": ({"name": inst.name, "chips": inst.chips, "how": how} if inst else None),
        "figures": {k: figures[k] for k in FIGURES},
    }


def ratios(base: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]]:
    """target / baseline of each figure; null with the first side's reason when one lacks it."""
    out = []
    for key, (unit, formula) in FIGURES.items():
        b, t = base["figures"][key], target["figures"][key]
        both = b["value"] is not None and t["value"] is not None and b["value"] > 0
        labels = [lab for lab in (b["label"], t["label"]) if lab in RATIO_LABELS]
        out.append({
            "name": key, "ratio": t["value"] / b["value"] if both else None,
            "baseline": b["value"], "target": t["value"], "unit": unit, "formula": formula,
            "label": max(["derived", *labels], key=RATIO_LABELS.index),
            "reason": None if both else (b["reason"] or t["reason"] or "baseline is zero"),
        })
    return out


def compare(df: pd.DataFrame, where: str, args: argparse.Namespace) -> dict[str, Any]:
    """The comparison as one JSON-ready dict: both sides, the ratios, the warnings."""
    table = prices.load(args.prices)
    base_runs = select(df, args.baseline, "--baseline", where)
    target_runs = select(df, args.target, "--target", where)
    warnings = check_comparable(base_runs, target_runs, args.allow_mismatch)
    warnings += config_differences(base_runs, target_runs)
    base = side(base_runs, "baseline", args.baseline, table, args.baseline_instance)
    target = side(target_runs, "target", args.target, table, args.target_instance)
    scopes = {s["figures"]["per_watt"]["inputs"][0]["source"].split(":")[0]
              for s in (base, target) if s["figures"]["per_watt"]["inputs"]}
    if len(scopes) > 1:
        warnings.append(f"per watt compares different energy scopes ({', '.join(sorted(scopes))})"
                        ": not like for like")
    for s in (base, target):
        st = s["figures"]["per_chip"]["stats"]
        if st and st["flagged"]:
            warnings.append(f"{s['query']!r}: tokens/s per chip varies over its {st['n']} runs "
                            f"(CV {st['cv']:.1%} > {metrics.CV_FLAG:.0%})")
        if s["runs"] < metrics.MIN_REPEATS:
            warnings.append(f"{s['query']!r}: {s['runs']} run{'' if s['runs'] == 1 else 's'}, "
                            f"fewer than {metrics.MIN_REPEATS}: too few to publish (repeat the "
                            f"configuration at least {metrics.MIN_REPEATS} times)")
    loss = losses.check(base_runs, target_runs, args.loss_tolerance)
    warnings += losses.warnings(loss)
    return {"baseline": base, "target": target, "ratios": ratios(base, target),
            "losses": loss, "warnings": warnings, "results": where}


def _num(value: float | None) -> str:
    return "null" if value is None else cells.count(value)


def render(result: dict[str, Any]) -> None:
    """The ratio table and every input with its label, on stdout; warnings on stderr."""
    from rich.markup import escape
    from rich.table import Table

    b, t = result["baseline"], result["target"]
    for role, s in (("baseline", b), ("target", t)):
        inst = s["instance"]
        console.stdout.print(
            f"{role}: {s['query']!r}: {s['runs']} run(s) of {s['model']} seq {s['seq']} "
            f"{s['precision']} batch {', '.join(map(str, s['batch']))} on {s['device']['name']} "
            f"({s['device']['kind']})" + (f"; instance {inst['name']} ({inst['chips']} chips, "
                                          f"{inst['how']})" if inst else ""),
            highlight=False, markup=False, soft_wrap=True)
    table = Table(title="trnbench compare: target / baseline (medians over runs)")
    for col in ("figure", "baseline", "target", "speedup", "label", "formula / why null"):
        table.add_column(col, justify="right" if col in ("baseline", "target", "speedup") else
                         "left")
    for r in result["ratios"]:
        table.add_row(r["name"].replace("_", " "), _num(r["baseline"]), _num(r["target"]),
                      "null" if r["ratio"] is None else f"{cells.num(r['ratio'])}x", r["label"],
                      escape(f"{r['unit']}: {r['formula']}" if r["ratio"] is not None
                             else r["reason"]))
    console.stdout.print(table)
    inputs = Table(title="inputs")
    for col in ("side", "input", "value", "label", "source"):
        inputs.add_column(col)
    for role, s in (("baseline", b), ("target", t)):
        st = s["figures"]["per_chip"]["stats"]
        if st:
            inputs.add_row(role, "tokens/s per chip", f"{cells.count(st['median'])} (n {st['n']}, "
                           f"min {cells.count(st['min'])}, max {cells.count(st['max'])}, CV "
                           f"{st['cv']:.1%})",
                           "measured", ", ".join(s["run_ids"]))
        seen = set()
        for fig in s["figures"].values():
            for i in fig["inputs"]:
                if i["name"] in seen:
                    continue
                seen.add(i["name"])
                value = f"{i['value']:,.6g} {i['unit']}"  # a sourced input, as given
                where = ", ".join(f"{k} {i[k]}" for k in ("region", "date", "method") if i.get(k))
                inputs.add_row(role, i["name"], value, i["label"],
                               escape("; ".join(x for x in (where, i["source"]) if x)))
    console.stdout.print(inputs)
    console.stdout.print(loss_table(result["losses"]))
    for w in result["warnings"]:
        console.stderr.print(f"[yellow]warning[/yellow]: {escape(w)}")




def loss_table(loss: dict[str, Any]) -> Any:
    """The loss-curve check on the terminal: one row per pairing, or the reason for none."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"loss curves: largest relative difference, tolerance "
                        f"{loss['tolerance']:.0%}", caption=escape(loss["reason"] or ""))
    for col in ("configuration", "runs", "steps", "largest difference", "at step", "flag"):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for p in loss["pairs"]:
        table.add_row(escape(losses.describe(p["configuration"])),
                      f"{p['baseline']['runs']} / {p['target']['runs']}", str(p["steps"]),
                      f"{p['max_relative_difference']:.2%}", str(p["at_step"]),
                      "[yellow]above tolerance[/yellow]" if p["flagged"] else "")
    return table
