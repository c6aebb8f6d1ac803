"""Terminal output with rich: the progress bar on stderr and the run summary table."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bench.records import labels
from bench.records.record import Energy, Record

# a pipe or file gets wide lines instead of rich's 80-column default
stdout = Console(width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def progress_bar(label: str, field: str, out: Console) -> Progress:
    """The bar of a run's phases on ``out``: ``label`` (a column format), bar, done of total,
    elapsed, ETA, then the task's field ``field`` (a rate, the last point)."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(),
                    TextColumn(f"{{task.fields[{field}]}}"), console=out, refresh_per_second=4)


@contextlib.contextmanager
def run_progress(enabled: bool = True, tokens_per_step: int | None = None) -> Iterator[Any]:
    """A progress callback for runner.measure: a "compiling (first step)" line with its elapsed
    time, then one bar each for warm-up and the timed window with an ETA; the window's bar
    shows the tokens/s of its steps so far (host clock at each step's return, no device sync:
    an approximation until the window's end, whose synchronised figure is the record's)."""
    if not enabled:
        yield None
        return
    bar = progress_bar("{task.description:<22}", "rate", stderr)
    tasks: dict[str, Any] = {}
    started: dict[str, float] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, rate="")
            started[phase] = time.perf_counter()
        rate = ""
        if phase == "timed" and tokens_per_step and done:
            rate = f"~{done * tokens_per_step / (time.perf_counter() - started[phase]):,.0f} " \
                   "tokens/s"
        bar.update(tasks[phase], completed=done, rate=rate)

    with bar:
        yield update


def finished_line(record: Record) -> str:
    """One line for a finished run (what a pipe or a sweep's log gets instead of the bars)."""
    head = finished_head("run", record)
    if record.status != "ok":
        return f"{head}: {record.error}"
    return (f"{head}: {record.config['model']}, {record.tokens_per_s:,.0f} tokens/s over "
            f"{plural(record.config['steps'], 'timed step')} in {record.window_s:.2f} s")


def finished_head(verb: str, record: Record) -> str:
    """The start of a finished run's line: ``VERB RUN_ID STATUS``."""
    return f"{verb} {record.run_id} {record.status}"


def plural(n: float, word: str) -> str:
    """'1 step', '2 steps', '1.5 chips'."""
    return f"{n:g} {word}{'' if n == 1 else 's'}"


def _si(value: float | None, unit: str, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def _bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _energy(e: Energy) -> str:
    """J/token, tokens/kWh and average power with the method and scope; or null and why."""
    if e.joules is None:
        return f"null ({e.method}: {e.reason})"
    how = f"{e.method}, {labels.energy(e.method)}" + (
        f", coverage {e.coverage:.0%}" if e.coverage is not None and e.coverage < 1 else "")
    per_kwh = _si(e.tokens_per_kwh, "").strip()
    return (f"{_si(e.j_per_token, 'J/token')}, {per_kwh} tokens/kWh, "
            f"avg {_si(e.avg_power_w, 'W')} ({_si(e.joules, 'J')} over the window) "
            f"[{how}; {e.scope}]")


def summary_table(record: Record, path: str) -> Table:
    """The human summary of one record: what ran, the figures, and how each was taken."""
    r, cfg = record, record.config
    t = Table(title=escape(f"trnbench run {r.run_id}: {r.status}"), show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("model", f"{cfg['model']}  batch {cfg['batch']} x seq {cfg['seq']}, "
              f"{cfg['steps']} timed + {plural(cfg['warmup'], 'warm-up step')}")
    t.add_row("backend", escape(r.backend.reason or "n/a") if r.backend else "n/a")
    if r.status != "ok":
        t.add_row("error", f"[red]{escape(r.error or '')}[/red]")
        t.add_row("stored", escape(path))
        return t
    dev = r.device
    chips = "chips unknown" if dev.chips is None else plural(dev.chips, "chip")
    t.add_row("device", escape(f"{dev.name} ({dev.kind}), {chips}"))
    par, ac = r.parallelism, r.ac
    if par or (ac and ac.blocks):
        t.add_row("layout", (f"{r.world_size} ranks: TP {par.tp} x DP {par.dp} "
                             f"{par.parallel}" if par else "1 process")
                  + (f", {ac.blocks} of {ac.of_blocks} blocks checkpointed ({ac.mode})"
                     if ac and ac.blocks else ""))
    t.add_row("precision", f"{cfg['precision']}: {r.precision.mode if r.precision else 'n/a'}"
              + (", torch.compile" if cfg["compile"] else ""))
    t.add_row("tokens/s", f"{r.tokens_per_s:,.1f} global, "
              + ("n/a" if r.tokens_per_s_per_chip is None else
                 f"{r.tokens_per_s_per_chip:,.1f}") + " per chip")
    peak = r.peak
    if r.mfu is None:
        t.add_row("MFU", "null (no known peak for this device and precision)")
    else:
        t.add_row("MFU", f"{r.mfu:.1%} of {_si(peak.value, 'FLOP/s')} "
                  + escape(f"[{peak.label}: {peak.source}]"))
        if r.hfu is not None and r.hfu != r.mfu:
            t.add_row("HFU", f"{r.hfu:.1%} (hardware FLOPs, recomputation included)")
    m = r.model
    t.add_row("FLOPs/token", f"{_si(m.flops_per_token, 'FLOP')} ({m.flops_formula}, "
              f"N={m.matmul_params:,})")
    moe = r.moe
    if moe:
        t.add_row("MoE", f"{moe.n_experts} experts, top-{moe.top_k}, capacity factor "
                  f"{moe.capacity_factor:g} ({moe.capacity} slots/expert/sequence): "
                  f"{moe.dropped_fraction:.2%} of assignments dropped; hardware "
                  f"{_si(m.hardware_flops_per_token, 'FLOP')}/token")
    st = r.step_time
    if st.p90_s is None:  # one averaged figure per step: no spread to show
        t.add_row("step time", f"{st.median_s * 1e3:.2f} ms window average "
                  f"({st.method}; no per-step spread)")
    else:
        t.add_row("step time", f"median {st.median_s * 1e3:.2f} ms, p90 "
                  f"{st.p90_s * 1e3:.2f} ms, CV {st.cv:.1%} ({st.method})")
    w = r.warmup
    if w.first_step_s is not None:
        t.add_row("warm-up", f"first step {w.first_step_s:.2f} s, "
                  f"{plural(w.steps, 'step')} {w.total_s:.2f} s")
    c = r.compilation
    if c is not None and c.timed_graphs is not None:
        t.add_row("compilations", f"{c.warmup_graphs} in warm-up "
                  f"({c.warmup_compile_s:.2f} s), {c.timed_graphs} in the timed "
                  f"window ({c.method})")
    mem = r.memory
    t.add_row("peak memory", f"{_bytes(mem.peak_bytes)} ({mem.method})"
              + (f"; predicted {_bytes(mem.predicted_peak_bytes)} per rank"
                 if mem.predicted_peak_bytes is not None else ""))
    t.add_row("loss", f"{r.loss_first:.4f} -> {r.loss_last:.4f}")
    energy = r.energy
    t.add_row("energy", escape(_energy(energy)))
    # the record's warnings hold a step-time CV above metrics.CV_FLAG (the runner's check)
    notes = [*(r.warnings or []), *(f"flagged: {f}" for f in r.flags or []),
             *(w for w in energy.warnings if not energy.reason or energy.reason not in w)]
    for note in notes:
        t.add_row("[yellow]warning[/yellow]", escape(note))
    t.add_row("stored", escape(path))  # user text: never markup
    return t
