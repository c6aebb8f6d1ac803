"""The text of each figure, and the notes on how each was made.

A figure's cell holds its number alone, in one format per kind (``count``: rates with
thousands separators; ``num``: 3 significant figures for ratios and times); the methods and
labels are in the column headers, the energy column, the "Runs and environment" table and the
notes. A null figure reads ``n/a [k]``: footnote k gives the reason, said once however many
rows share it (``TextTable``).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.inputs import config
from bench.records import metrics
from bench.report.rows import key_text, present

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "µ"), (1e-9, "n"))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """``value`` with an SI prefix, e.g. 0.00123 J -> '1.23 mJ', 3.1e9 -> '3.1 G'; n/a
    for a value the record does not hold."""
    if not present(value):
        return "n/a"
    for factor, prefix in _PREFIXES:
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def num(value: float, sig: int = 3) -> str:
    """``sig`` significant figures, thousands separated, never in exponent form:
    2990.4 -> '2,990', 0.04213 -> '0.0421', 12.34 -> '12.3'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, sig - 1 - magnitude)
    return f"{round(value, sig - 1 - magnitude):,.{decimals}f}"


def count(value: float) -> str:
    """A rate such as tokens/s: thousands separated, whole numbers from 100 up."""
    if not present(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else num(value)


def chips(value: float | None) -> str:
    """'1 chip', '0.25 chips', or 'chips unknown' (a null device.chips)."""
    return f"{value:g} chip{'' if value == 1 else 's'}" if present(value) else "chips unknown"


def _seconds(value: float) -> str:
    return si(value, "s")


def energy_label(r: pd.Series) -> str:
    """'rapl, measured' for a sensor; 'modelled (estimate, not measured)' for a model. The one
    place a row's energy label is worded (tables and plots)."""
    label = r["energy_label"]
    if label == "modelled":
        return "modelled (estimate, not measured)"
    return f"{r['energy_method']}, {label}" if present(label) else "not measured"


def compile_time(r: pd.Series) -> str:
    steps = r["warmup_steps"]
    text = (f"first step {_seconds(r['first_step_s'])}; warm-up {_seconds(r['warmup_s'])} "
            f"({steps} step{'' if steps == 1 else 's'})")
    if present(r["compile_graphs_warmup"]):
        text += (f"; {r['compile_graphs_warmup']:g} graphs compiled in warm-up "
                 f"({_seconds(r['compile_s_warmup'])}), {r['compile_graphs_timed']:g} in the "
                 f"timed window ({r['compile_method']})")
    return text


@dataclass
class TextTable:
    """A table as text cells: numbers alone in their cells (right-aligned: ``numeric``), each
    n/a a footnote reference ``n/a [k]`` whose reason is said once in ``footnotes``; what a
    reader must know before using the table in ``warnings`` (shown under it)."""

    frame: pd.DataFrame
    numeric: set[str] = field(default_factory=set)
    footnotes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def note(self, reason: str) -> str:
        """'n/a [k]' for ``reason``, numbered on first use."""
        if reason not in self.footnotes:
            self.footnotes.append(reason)
        return f"n/a [{self.footnotes.index(reason) + 1}]"


def _fig(out: TextTable, r: pd.Series, column: str, fmt: Any, reason: str) -> str:
    """``fmt(r[column])``, or a footnoted n/a with ``reason``."""
    return fmt(r[column]) if present(r.get(column)) else out.note(reason)


def _range(low: Any, high: Any) -> str:
    return f"{count(low)}–{count(high)}"


RESULT_NUMERIC = ["threads", "ranks", "batch", "seq", "n", "tokens/s per chip", "95% CI",
                  "min–max", "CV %", "tokens/s per instance", "MFU %", "tokens/J",
                  "$/M tokens", "step p50 ms", "step p90 ms", "first step s", "peak mem GiB",
                  "steps", "warmup", "lr", "seed", "dist timeout s"]
# row columns that tell configurations apart besides those the table always shows (layout
# holds TP, DP, AC and the parameter dtype): a column each when the rows differ in it
VARYING = {"backend": "backend", "steps": "steps", "warmup": "warmup", "lr": "lr",
           "seed": "seed", "data": "data", "energy_flag": "energy setting", "dp_shard": "dp shard",
           "dist_timeout_s": "dist timeout s", "environment": "software"}
GIB = 2**30


def varying(table: pd.DataFrame) -> dict[str, str]:
    """The ``VARYING`` columns whose values differ between the rows of ``table``."""
    return {c: name for c, name in VARYING.items()
            if c in table and table[c].map(key_text).nunique() > 1}


def few_runs(table: pd.DataFrame, name: Any = lambda r: r["row"],
             how: str = f"trnbench sweep: repeats, default {metrics.MIN_REPEATS}") -> list[str]:
    """The warning under a table with rows of fewer than ``metrics.MIN_REPEATS`` runs
    (``name``: how a row is named in it; ``how``: how to repeat one)."""
    few = table[table["n"] < metrics.MIN_REPEATS]
    if few.empty:
        return []
    ids = ", ".join(f"{name(r)} (n = {r['n']})" for _, r in few.iterrows())
    return [f"fewer than {metrics.MIN_REPEATS} runs: {ids}. Too few to publish: no 95% "
            f"interval, and one or two runs do not show the run-to-run spread; repeat each "
            f"configuration at least {metrics.MIN_REPEATS} times ({how})."]


def _no_interval(n: int) -> str:
    if n == 1:
        return "1 run: no spread over repeats"
    return (f"n = {n}: a 95% interval needs at least {metrics.MIN_REPEATS} runs (at n = 2, "
            f"t(0.975, 1) = 12.7 makes it wider than any spread the runs show)")


def results(table: pd.DataFrame) -> TextTable:
    """The main table: one row per configuration, every figure a number or a noted n/a;
    a column for each configuration field the rows differ in (``varying``)."""
    out = TextTable(pd.DataFrame())
    speedup = "speedup_baseline" in table and table["speedup_baseline"].map(present).any()
    base = table["speedup_baseline"].dropna().iloc[0] if speedup else None
    differ = varying(table)
    rows = []
    for _, r in table.iterrows():
        one_run = f"{r['n']} run: no spread over repeats"
        no_energy = r["energy_note"] if present(r["energy_note"]) else "no energy reading"
        cells = {
            "row": r["row"], "model": r["model"], "device": r["device"],
            "precision": r["precision"],
            "threads": str(r["threads"]) if present(r["threads"]) else out.note(
                "threads per process not recorded (not a CPU run)"),
            "ranks": str(r["world_size"]), "layout": r["layout"], "batch": str(r["batch"]),
            "seq": str(r["seq"]), "compile": "yes" if r["compile"] else "no",
        }
        cells |= {name: key_text(r[c]) or "n/a" for c, name in differ.items()}
        cells |= {
            "n": str(r["n"]),
            "tokens/s per chip": _fig(out, r, "tokens_per_s_per_chip", count, "chips unknown"),
            "95% CI": _range(r["tokens_per_s_per_chip_ci95_low"],
                             r["tokens_per_s_per_chip_ci95_high"])
            if present(r.get("tokens_per_s_per_chip_ci95_low")) else out.note(
                _no_interval(r["n"])),
            "min–max": _range(r["tokens_per_s_per_chip_min"], r["tokens_per_s_per_chip_max"])
            if r["n"] > 1 else out.note(one_run),
            "CV %": num(r["tokens_per_s_per_chip_cv"] * 100) if present(
                r["tokens_per_s_per_chip_cv"]) else out.note(one_run),
            "tokens/s per instance": _fig(out, r, "tokens_per_s_per_instance", count,
                                           str(r.get("instance_note"))),
            "MFU %": _fig(out, r, "mfu", lambda v: num(v * 100), str(r["mfu_note"])),
            "tokens/J": _fig(out, r, "j_per_token", lambda v: num(1 / v), no_energy),
            "energy": energy_label(r) if present(r["j_per_token"]) else out.note(no_energy),
            "$/M tokens": _fig(out, r, "usd_per_m_tokens", num, str(r.get("instance_note"))),
        }
        if speedup:
            cells[f"speedup vs {base}"] = _fig(out, r, "speedup", num, "no tokens/s per chip")
        cells |= {
            "step p50 ms": _fig(out, r, "step_p50_s", lambda v: num(v * 1e3), "no step times"),
            "step p90 ms": _fig(out, r, "step_p90_s", lambda v: num(v * 1e3),
                                f"{r['step_time_method'] or 'these step times'}: no "
                                "per-step spread"),
            "first step s": _fig(out, r, "first_step_s", num, "no warm-up step"),
            "peak mem GiB": _fig(out, r, "peak_memory_bytes", lambda v: num(v / GIB),
                                 "no peak memory measured"),
            "flag": out.note(f"{r['row']}: {r['flag_reason']}").replace("n/a", "flagged")
            if r["flagged"] else "",
        }
        rows.append(cells)
    out.frame = pd.DataFrame(rows)
    out.numeric = {c for c in out.frame.columns if c in RESULT_NUMERIC or
                   c.startswith("speedup")}
    out.warnings = few_runs(table)
    return out


ROW_COLUMN = {"energy": "energy_flag"}  # a RunConfig field -> its report column, where renamed


def run_argv(r: pd.Series) -> list[str]:
    """The `trnbench run` flags of a row: every RunConfig field, as ``config.to_argv`` gives
    them, then the processes (--nproc, --nnodes) of a torchrun run."""
    argv: list[str] = []
    for name, opt in config.OPTIONS.items():
        value = r[ROW_COLUMN.get(name, name)]
        if not present(value):
            continue
        if opt.boolean:
            argv.append(opt.flag if value else f"--no-{opt.flag[2:]}")
            continue
        if opt.limits is not None:
            value = int(value) if opt.limits.integer else float(value)
        argv += [opt.flag, opt.to_text(value)]
    if r["world_size"] > 1:
        argv += ["--nproc", str(r["world_size"] // max(int(r["nodes"]), 1))]
        argv += ["--nnodes", str(r["nodes"])] if r["nodes"] > 1 else []
    return argv


def _command(r: pd.Series) -> str:
    """The `trnbench run` line that reproduces a row's configuration, every flag given."""
    return "trnbench run " + shlex.join(run_argv(r))


def _memory(r: pd.Series) -> str:
    if not present(r["peak_memory_bytes"]):
        return "n/a (no peak memory measured)"
    text = f"{num(r['peak_memory_bytes'] / GIB)} GiB ({r['peak_memory_method']})"
    if present(r["predicted_peak_bytes"]):
        text += f"; planned {num(r['predicted_peak_bytes'] / GIB)} GiB per rank"
    return text


def provenance(table: pd.DataFrame) -> pd.DataFrame:
    """Where each row comes from: runs, device, instance, hosts, versions, peak, energy and
    step-timing methods, compile times, and the command that reproduces it."""
    def instance(r: pd.Series) -> str:
        if not present(r.get("instance")):
            return f"n/a ({r['instance_note']})"
        text = f"{r['instance']} ({r['chips_per_instance']:g} chips)"
        if present(r.get("price_usd_per_hour")):
            text += (f", USD {r['price_usd_per_hour']:,.2f}/h on {r['price_date']} "
                     f"({r['price_source']})")
        return text + (f"; {r['instance_note']}" if present(r.get("instance_note")) else "")

    return pd.DataFrame([{
        "row": r["row"], "run ids": r["run_ids"],
        "device": f"{r['device']} ({r['device_kind']}, {chips(r['chips'])})",
        "instance": instance(r), "hosts": r["hosts"], "environment": r["environment"],
        "git commit": r["git_commits"],
        "peak (MFU)": f"{si(r['peak_flops_per_chip'], 'FLOP/s')} per chip, {r['peak_label']}: "
                      f"{r['peak_source']}" if r["peak_source"] else "n/a",
        "energy scope": r["energy_scope"] or "n/a (no energy reading)",
        "step timing": r["step_time_method"], "warm-up": compile_time(r),
        "peak memory": _memory(r),
        "when": f"{r['first_time']} .. {r['last_time']}",
        "results file": r["source_files"], "reproduce": _command(r),
    } for _, r in table.iterrows()])


SCALING_NUMERIC = {"ranks", "nodes", "n", "tokens/s", "tokens/s per rank", "efficiency %",
                   "against ranks"}


def scaling(table: pd.DataFrame) -> TextTable:
    """The scaling table: efficiency against the series' smallest world size."""
    out = TextTable(pd.DataFrame())
    out.frame = pd.DataFrame([{
        "series": r["series"], "model": r["model"], "device": r["device"],
        "precision": r["precision"], "ranks": str(r["world_size"]),
        "nodes": str(r["nodes"]), "n": str(r["n"]), "tokens/s": count(r["tokens_per_s"]),
        "tokens/s per rank": count(r["tokens_per_s_per_rank"]),
        "efficiency %": num(r["scaling_efficiency"] * 100),
        "against ranks": str(r["baseline_world_size"]), "run ids": r["run_ids"],
    } for _, r in table.iterrows()])
    out.numeric = SCALING_NUMERIC
    out.warnings = few_runs(table, lambda r: f"{r['series']}, {r['world_size']} rank"
                                             f"{'' if r['world_size'] == 1 else 's'}") \
        if not table.empty else []
    return out


def failed(table: pd.DataFrame) -> pd.DataFrame:
    """The failed and interrupted runs as text."""
    def text(value: Any) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else \
            str(value) if present(value) else "n/a"

    return table.map(text).rename(columns=lambda c: c.replace("_", " "))


def notes(cv_threshold: float) -> list[tuple[str, str]]:
    """How each figure was made: (figure, method), the same in every output."""
    return [
        ("rows", "one row per configuration: the ok runs that share the device, the world size, "
         "the energy method, every trnbench run flag (each RunConfig field; a record older than "
         "a field ran with its default) and the software versions (Python, torch, trnbench, the "
         "device's SDK, driver and runtime, a CPU's threads). Runs that differ in any of these "
         "are never one row; a field the rows differ in, beyond those always shown, gets a "
         "column. layout: 1 process, or TP x DP and the data parallelism (ddp, fsdp, hsdp), "
         "with activation checkpointing and bf16 parameters when used. Each row's trnbench run "
         "line, every flag given, is under 'Runs and environment'."),
        ("tokens/s per chip", "measured: tokens processed in the timed window across all "
         "ranks / window seconds / chips, the device synchronised at both edges of the "
         "window. The row's figure is the median over its n runs; with n > 1 the range and the "
         f"CV, and with n >= {metrics.MIN_REPEATS} the 95% confidence interval of the mean "
         "(Student's t-interval, mean +- t(0.975, n-1) x s / sqrt(n), s the sample standard "
         "deviation; below 3 runs none is given, and the table warns); the CSV keeps the "
         "olympic mean (MLPerf: best and worst run dropped). Per instance: x chips per AWS "
         "instance (bench/report/prices.toml). $/M tokens: USD per instance-hour / (tokens/s per "
         "instance x 3600) x 1e6, the price's source and date under 'Runs and environment'. "
         "Speedup (with --baseline): tokens/s per chip / the baseline row's."),
        ("MFU", "derived: FLOPs per token (formula 6N+12LHQT, PaLM appendix B: N matmul "
         "parameters, L layers, H heads, Q head dim, T sequence) x tokens/s / (dense peak "
         "FLOP/s of the precision x chips). The peak's label is shown (measured: a GEMM rate "
         "measured on this host; datasheet: a vendor document; estimate: a third party) and "
         "its source are under 'Runs and environment'. No known peak: n/a, never a guessed "
         "peak."),
        ("tokens/J, energy", "energy over the timed window by the method in the energy "
         "column. rapl, nvml-energy-counter, nvml-power-polling, neuron-power-utilization: "
         "read from a sensor (measured). modelled: table power x chips x window time, an "
         "estimate that is never a measurement. tokens/J = tokens / joules (= tokens/s per "
         "W); the CSV also has J/token and tokens/kWh = tokens / (joules / 3.6e6). No "
         "reading (no sensor, --energy none): n/a with the reason."),
        ("step p50 / p90", "each run's median and 90th percentile of its per-step times "
         "(linear interpolation), taken by the method under 'Runs and environment' "
         "(host-clock: synchronised host clock per step; device events; window average); the "
         "median over the row's runs."),
        ("compile", "wall time of the first warm-up step (compilation happens there) and of "
         "the whole warm-up; on XLA also the graph compilations counted in warm-up and in "
         "the timed window (which should compile nothing)."),
        ("peak mem", "the measured peak memory per rank (the largest rank's), median over the "
         "row's runs, in GiB (2^30 bytes), by the method under 'Runs and environment' (device "
         "allocator peak on an accelerator; the process's max RSS on a CPU), beside the memory "
         "plan's prediction where the run recorded one."),
        ("n, CV, flag", f"n: ok runs of the configuration. CV: population standard deviation "
         f"/ mean of tokens/s per chip over the n runs. flagged [k]: the CV of tokens/s per "
         f"chip, J/token or step p50 is above {cv_threshold:.1%}, or a run of the row was "
         f"flagged (a CPU peak that moved around its window, an MFU above 1); footnote k "
         f"names which."),
        ("scaling efficiency", "per series tagged scaling=<id> (trnbench scaling): tokens/s "
         "per rank = tokens/s (global, median over the repeats) / world size; efficiency = "
         "tokens/s per rank / tokens/s per rank of the series' world_size 1 run (1.0 = "
         "linear). A series without a 1-rank run is measured against its smallest world size, "
         "given in the 'against ranks' column."),
        ("n/a", "a figure that could not be made (unknown peak, no energy sensor, no AWS "
         "instance, one run) is shown as n/a [k], never as a number; footnote k under the "
         "table gives the reason once for every row it applies to; in the CSV the cell is "
         "empty and the reason is in the *_note column."),
        ("failed runs", "runs with status failed or interrupted are not in the tables; "
         "they are listed with their error."),
        ("busbw (collectives)", "measured: S / time x the op's factor, 2(n-1)/n for "
         "all-reduce, (n-1)/n for all-gather, reduce-scatter and all-to-all, 1 for send/recv "
         "(nccl-tests' definition; GB/s = 1e9 B/s); time: trnbench comm the slowest rank's, "
         "nccl-tests and nccom-test their own. A line is one op on one world size, device, tool "
         "and dtype, each size the median over its runs; its plateau is the median busbw of "
         "its three largest sizes, against the datasheet bandwidth of the link crossed (per "
         "chip inside a node, per node across nodes)."),
    ]
