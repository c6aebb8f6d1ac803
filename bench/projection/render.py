"""The projection as rich tables (inputs with their labels, then results), and the sweep plot."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from bench.inputs.config import ConfigError
from bench.inputs.paths import write_file
from bench.projection.cluster import Node
from bench.projection.model import Projection
from bench.projection.search import SLOWDOWN

_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def fmt(value: Any, unit: str = "") -> str:
    """A value for people: SI prefixes for rates, powers and bytes, separators for counts."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if unit == "FLOP" or (unit == "tokens" and value >= 1e9):
        return f"{value:.3g} {unit}"
    if unit in ("FLOP/s", "W", "B/s"):
        for factor, prefix in _PREFIXES:
            if abs(value) >= factor:
                return f"{value / factor:,.4g} {prefix}{unit}"
        return f"{value:.4g} {unit}"
    if unit == "B":
        return f"{value / 2**30:,.1f} GiB ({value / 1e9:,.0f} GB)"
    if unit in ("chips", "sequences", "tokens"):
        return f"{value:,.0f} {unit}"
    return f"{value:.4g}" + (f" {unit}" if unit else "")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def bandwidths(node: Node) -> dict[str, dict[str, Any] | None]:
    """The node's two links as the step model prices them (B/s, one way: intra-node per chip,
    inter-node per node), each with its label, source and the records it was measured by."""
    return {link: None if fig is None else {**fig.as_dict(), "runs": list(node.runs.get(link, ()))}
            for link, fig in (("intra", node.intra), ("inter", node.inter))}


def links_text(node: Node) -> str:
    """Which bandwidths were measured: one line for the headline."""
    parts = []
    for link, name, per, fig in (("intra", "intra-node", "per chip", node.intra),
                                 ("inter", "inter-node", "per node", node.inter)):
        if fig is None:
            parts.append(f"{name} unknown")
            continue
        runs = node.runs.get(link)
        how = f"measured: run {', '.join(runs)}" if runs else fig.label
        parts.append(f"{name} {fmt(fig.value, 'B/s')} {per} [{how}]")
    return "; ".join(parts)


def inputs_table(p: Projection) -> Table:
    t = Table(title="trnbench project: inputs (projection, not a measurement)")
    for col in ("input", "value", "label", "source"):
        t.add_column(col, overflow="fold")
    for r in p.as_dict()["inputs"]:
        t.add_row(r["name"], escape(fmt(r["value"], r["unit"])), r["label"], escape(r["source"]))
    return t


def results_table(p: Projection) -> Table:
    d = p.as_dict()
    s = p.scenario
    t = Table(title=f"trnbench project: {escape(s.workload.title)} on {escape(s.cluster.title)}",
              show_header=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    plan = p.plan
    mem = plan.memory
    t.add_row("plan", plan.describe())
    t.add_row("links", escape(links_text(s.cluster.node)))
    t.add_row("memory per chip", f"{mem.states / 2**30:,.1f} GiB states + "
              f"{mem.activations / 2**30:,.1f} GiB activations = {mem.total / 2**30:,.1f} GiB "
              f"of {mem.usable / 2**30:,.1f} GiB usable")
    st = plan.step
    parts = ", ".join(f"{name} {sec:,.3g} s" for name, sec in (
            ("compute", st.compute_s), ("recompute", st.recompute_s),
            ("elementwise", st.elementwise_s), ("TP", st.tp_s), ("CP", st.cp_s),
            ("EP all-to-all", st.ep_s), ("PP sends", st.pp_s),
            ("stage imbalance", st.imbalance_s), ("bubble", st.bubble_s),
            ("DP" if s.dp_efficiency is None else "DP (scaling efficiency)", st.dp_s)) if sec)
    t.add_row("step", f"{st.total_s:,.3g} s = {parts}; efficiency {st.efficiency:.1%}")
    if s.mode == "node":
        t.add_row("MFU at scale", f"{d['mfu_at_scale']:.1%} = node MFU {s.mfu.value:.1%} x "
                  f"efficiency {st.efficiency:.1%}")
    else:
        t.add_row("MFU at scale", f"{d['mfu_at_scale']:.1%} (given) = implied node MFU "
                  f"{plan.node_mfu:.1%} x efficiency {st.efficiency:.1%}")
    peak = fmt(d["peak_flops_per_chip"], "FLOP/s")
    t.add_row("time", f"{d['days']:,.1f} days = C / ({d['chips']:,} chips x {peak} x MFU "
              f"{d['mfu_at_scale']:.1%} x goodput {d['goodput']:.0%}); "
              f"{d['calibration']['text']} (trnbench project --validate)")
    t.add_row("chip-hours", f"{d['chip_hours'] / 1e6:,.2f} M")
    for name in ("fastest", "efficient"):
        q = d["plans"][name]
        e = q["energy_mwh_facility"]
        t.add_row(f"{name} plan", f"{q['plan']}: {q['days']:,.1f} days on {q['chips']:,} chips, "
                  f"{q['chip_hours'] / 1e6:,.2f} M chip-hours"
                  + ("" if e is None else f", {e:,.0f} MWh facility")
                  + f", MFU at scale {q['mfu_at_scale']:.1%}"
                  + (" (the headline figures)" if name == d["plans"]["headline"] else
                     f" (fewest chip-hours at most {SLOWDOWN:.0%} slower than the fastest)"))
    if d["energy_mwh_chips"] is not None:
        t.add_row("chip power", f"{fmt(d['chip_power_w'], 'W')} "
                  f"[{escape(p.chip_power.label)}: {escape(p.chip_power.source)}]")
        t.add_row("energy", f"{d['energy_mwh_chips']:,.0f} MWh at the chips, "
                  f"{d['energy_mwh_it']:,.0f} MWh IT, {d['energy_mwh_facility']:,.0f} MWh "
                  "facility")
        t.add_row("average power", f"{d['avg_power_mw_it']:,.1f} MW IT, "
                  f"{d['avg_power_mw_facility']:,.1f} MW facility")
    else:
        t.add_row("energy", "n/a: no chip power (pass --chip-power-w)")
    if d["power_cap_mw"] is not None:
        t.add_row("power cap", f"{d['power_cap_mw']:,.0f} MW: this run uses "
                  f"{_pct(d['power_cap_share'])}; the cap allows at most "
                  + ("n/a" if d["max_chips_under_cap"] is None
                     else f"{d['max_chips_under_cap']:,} chips"))
    fits = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "unknown"}[d["fits"]]
    power = ("no cap given" if d["power_cap_mw"] is None
             else {True: "yes", False: "no", None: "unknown"}[d["fits_power"]])
    t.add_row("fits", f"{fits} (memory: yes; power: {power})")
    for note in d["notes"]:
        t.add_row("[yellow]note[/yellow]", escape(note))
    return t


def sweep_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="trnbench project: time and power against chip count")
    for col in ("chips used of requested", "plan", "MFU at scale", "days", "facility MW",
                "cap share", "fits"):
        t.add_column(col, justify="left" if col == "plan" else "right", overflow="fold")
    for r in rows:
        if "error" in r:
            t.add_row(f"{r['chips_requested']:,}", escape(r["error"]), "", "", "", "", "")
            continue
        mw = r["avg_power_mw_facility"]
        chips = f"{r['chips']:,}" + ("" if r["chips"] == r["chips_requested"]
                                     else f" of {r['chips_requested']:,}")
        t.add_row(chips, r["plan"], _pct(r["mfu_at_scale"]), f"{r['days']:,.1f}",
                  "n/a" if mw is None else f"{mw:,.1f}", _pct(r["power_cap_share"]),
                  {True: "yes", False: "no", None: "?"}[r["fits"]])
    return t


def fit_map_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="trnbench project: the fit map, one row per global batch")
    for col in ("global batch", "chips", "days", "facility MWh", "node MFU", "MFU at scale",
                "cap share", "plan"):
        t.add_column(col, justify="left" if col == "plan" else "right", overflow="fold")
    for r in rows:
        batch = f"{r['global_batch_tokens'] / 2**20:,.4g}M"
        if "error" in r:
            t.add_row(batch, "", "", "", "", "", "", escape(r["error"]))
            continue
        used = r["batch_tokens_used"]
        if used != r["global_batch_tokens"]:
            batch += f" ({used / 2**20:,.4g}M used)"
        e = r["energy_mwh_facility"]
        t.add_row(batch, f"{r['chips']:,}", f"{r['days']:,.1f}",
                  "n/a" if e is None else f"{e:,.0f}",
                  f"{r['node_mfu']:.1%}" + (" implied" if r["node_mfu_implied"] else ""),
                  _pct(r["mfu_at_scale"]), _pct(r["power_cap_share"]), r["plan"])
    return t


def validation_table(v: Any) -> Table:
    """``calibration.Validation`` as a table: one row per published run."""
    t = Table(title=f"trnbench project --validate: the step model at node MFU "
              f"{v.node_mfu:.1%} against {len(v.rows)} published runs")
    for col in ("run", "set", "plan", "published", "implied node MFU", "predicted", "error"):
        t.add_column(col, justify="left" if col in ("run", "plan", "set") else "right",
                     overflow="fold")
    for r in v.rows:
        kind = {"mfu": "MFU", "hfu_like_fraction": "HFU", "tflops_per_chip": "TFLOP/s"}[
            r.run.published]
        t.add_row(r.run.name + (" *" if r.run.assumed else ""),
                  "fit" if r.fitted else "held out", r.run.plan(),
                  f"{r.run.value:.1%} {kind}",
                  "above 1" if r.implied is None else f"{r.implied:.1%}",
                  f"{r.predicted:.1%}", f"{r.error:+.1%}")
    return t


def validation_summary(v: Any) -> str:
    """The fitted constants, the errors, the excluded runs."""
    k = v.constants
    fitted = v.errors(True)
    lines = [
        f"constants (fitted on {len(fitted)} runs, every other one of the file): node MFU "
        f"{v.node_mfu:.1%}, link bandwidth achieved {k.link_efficiency:.1%}, DP overlap "
        f"{k.dp_overlap:.1%}, elementwise {k.elementwise_bytes:,.0f} x d bytes per token and "
        f"layer, TP overlap {k.tp_overlap:.0%} (held)",
        f"held out: {len(v.errors(False))} runs, median |error| {v.held_out_median:.1%}, worst "
        f"{v.held_out_worst:.1%}; fit: median {sorted(fitted)[len(fitted) // 2]:.1%}, worst "
        f"{max(fitted):.1%}; {v.sources} sources",
        "* some inputs assumed (published_runs.toml, [run.assumed]); predicted = the published "
        "figure as its source counted it, at the common node MFU",
    ]
    lines += [f"not modelled: {e.name}: {e.reason}" for e in v.excluded]
    return "\n".join(escape(x) for x in lines)


def plot(rows: list[dict[str, Any]], path: str, title: str, cap_mw: float | None,
         labels: str | None = None) -> None:
    """Days and facility MW against chips (log axes) as a PNG, each point annotated with
    its ``labels`` field (the global batch of a fit map); needs the `plots` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot", "needs matplotlib: pip install 'trnbench[plots]'") from None
    ok = [r for r in rows if "error" not in r]
    if not ok:
        raise ConfigError("--plot", "no chip count of the sweep has a plan to plot")
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot([r["chips"] for r in ok], [r["days"] for r in ok], "o-", color="tab:blue")
    if labels == "batch":
        for r in ok:
            ax.annotate(f"{r['global_batch_tokens'] / 2**20:,.4g}M tokens",
                        (r["chips"], r["days"]), textcoords="offset points", xytext=(6, 6),
                        fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chips")
    ax.set_ylabel("days", color="tab:blue")
    powered = [r for r in ok if r["avg_power_mw_facility"] is not None]
    if powered:
        ax2 = ax.twinx()
        ax2.plot([r["chips"] for r in powered], [r["avg_power_mw_facility"] for r in powered],
                 "s--", color="tab:red")
        if cap_mw is not None:
            ax2.axhline(cap_mw, color="tab:red", linestyle=":", label=f"cap {cap_mw:,.0f} MW")
            ax2.legend(loc="upper center")
        ax2.set_yscale("log")
        ax2.set_ylabel("average facility power (MW)", color="tab:red")
    ax.set_title(f"{title}\n(projection, not a measurement)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    write_file(Path(path), png.getvalue())  # never through a symbolic link
