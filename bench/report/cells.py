"""The text of each figure with its method and label, and the notes on how each was made.

Every cell names where its number comes from: ``measured``, ``derived`` (computed from
measurements and a labelled peak), the energy method (``modelled`` marked as not
measured), the step-timing method. A null figure reads ``n/a (reason)``, never a number.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.rows import present

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "µ"), (1e-9, "n"))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """``value`` with an SI prefix, e.g. 0.00123 J -> '1.23 mJ', 3.1e9 -> '3.1 G'."""
    for factor, prefix in _PREFIXES:
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def count(value: float) -> str:
    """A rate such as tokens/s: thousands separated, whole numbers from 100 up."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _seconds(value: float) -> str:
    return si(value, "s")


def throughput(r: pd.Series) -> str:
    text = f"{count(r['tokens_per_s_per_chip'])} (measured"
    if r["n"] > 1:
        text += (f"; median of {r['n']}, olympic mean "
                 f"{count(r['tokens_per_s_per_chip_olympic_mean'])}, range "
                 f"{count(r['tokens_per_s_per_chip_min'])}-"
                 f"{count(r['tokens_per_s_per_chip_max'])}")
    return text + ")"


def mfu(r: pd.Series) -> str:
    if not present(r["mfu"]):
        return f"n/a ({r['mfu_note']})"
    text = (f"{r['mfu'] * 100:#.3g}% (derived; peak {si(r['peak_flops_per_chip'], 'FLOP/s')}, "
            f"{r['peak_label']})")
    return text + (f" [{r['mfu_note']}]" if present(r["mfu_note"]) else "")


def energy_label(r: pd.Series) -> str:
    """'rapl, measured' for a sensor; 'modelled (estimate, not measured)' for a model."""
    label = r["energy_label"]
    if label == "modelled":
        return "modelled (estimate, not measured)"
    return f"{r['energy_method']}, {label}" if present(label) else "not measured"


def j_per_token(r: pd.Series) -> str:
    if not present(r["j_per_token"]):
        return f"n/a ({r['energy_note']})"
    text = f"{si(r['j_per_token'], 'J')} ({energy_label(r)})"
    return text + (f" [{r['energy_note']}]" if present(r["energy_note"]) else "")


def tokens_per_kwh(r: pd.Series) -> str:
    if not present(r["tokens_per_kwh"]):
        return f"n/a (no energy reading: {r['energy_method']})"
    return f"{si(r['tokens_per_kwh'])} ({energy_label(r)})"


def step(r: pd.Series, column: str) -> str:
    return f"{_seconds(r[column])} ({r['step_time_method']})"


def compile_time(r: pd.Series) -> str:
    steps = r["warmup_steps"]
    text = (f"first step {_seconds(r['first_step_s'])}; warm-up {_seconds(r['warmup_s'])} "
            f"({steps} step{'' if steps == 1 else 's'})")
    if present(r["compile_graphs_warmup"]):
        text += (f"; {r['compile_graphs_warmup']:g} graphs compiled in warm-up "
                 f"({_seconds(r['compile_s_warmup'])}), {r['compile_graphs_timed']:g} in the "
                 f"timed window ({r['compile_method']})")
    return text


def variation(r: pd.Series) -> str:
    if r["n"] < 2:
        return "n/a (1 run)"
    return f"{r['tokens_per_s_per_chip_cv']:.1%}"


def flag(r: pd.Series) -> str:
    return f"FLAGGED: {r['flag_reason']}" if r["flagged"] else ""


def configuration(r: pd.Series) -> str:
    text = f"{r['backend']}, batch {r['batch']} x seq {r['seq']}"
    if r["threads"] is not None:
        text += f", {r['threads']} thread(s) per process"
    if r["world_size"] > 1:
        text += f", {r['world_size']} ranks on {r['nodes']} node(s), {r['parallel']}"
    text += ", torch.compile" if r["compile"] else ", eager"
    return text + f", energy {r['energy_method']}"


def results(table: pd.DataFrame) -> pd.DataFrame:
    """The main table as text: one row per configuration."""
    return pd.DataFrame([{
        "row": r["row"], "model": r["model"], "device": r["device"],
        "precision": r["precision"], "configuration": configuration(r),
        "tokens/s per chip": throughput(r), "MFU": mfu(r), "J/token": j_per_token(r),
        "tokens/kWh": tokens_per_kwh(r), "step p50": step(r, "step_p50_s"),
        "step p90": step(r, "step_p90_s"), "compile": compile_time(r), "n": str(r["n"]),
        "CV": variation(r), "flag": flag(r),
    } for _, r in table.iterrows()], columns=RESULT_HEADERS)


RESULT_HEADERS = ["row", "model", "device", "precision", "configuration", "tokens/s per chip",
                  "MFU", "J/token", "tokens/kWh", "step p50", "step p90", "compile", "n", "CV",
                  "flag"]


def provenance(table: pd.DataFrame) -> pd.DataFrame:
    """Where each row comes from: runs, device, hosts, versions, peak and energy sources."""
    return pd.DataFrame([{
        "row": r["row"], "run ids": r["run_ids"],
        "device": f"{r['device']} ({r['device_kind']}, {r['chips']:g} chip(s))",
        "hosts": r["hosts"], "environment": r["environment"], "git commit": r["git_commits"],
        "peak source": f"{r['peak_label']}: {r['peak_source']}" if r["peak_source"] else "n/a",
        "energy scope": r["energy_scope"] or "n/a (no energy reading)",
        "when": f"{r['first_time']} .. {r['last_time']}",
        "results file": r["source_files"],
    } for _, r in table.iterrows()])


def scaling(table: pd.DataFrame) -> pd.DataFrame:
    """The scaling table as text."""
    return pd.DataFrame([{
        "series": r["series"], "model": r["model"], "device": r["device"],
        "precision": r["precision"], "world size": str(r["world_size"]),
        "nodes": str(r["nodes"]), "n": str(r["n"]),
        "tokens/s": f"{count(r['tokens_per_s'])} (measured, global)",
        "tokens/s per rank": f"{count(r['tokens_per_s_per_rank'])} (derived)",
        "scaling efficiency": f"{r['scaling_efficiency']:.1%} (derived, against "
                              f"{r['baseline_world_size']} rank(s))",
        "run ids": r["run_ids"],
    } for _, r in table.iterrows()])


def failed(table: pd.DataFrame) -> pd.DataFrame:
    """The failed and interrupted runs as text."""
    def text(value: Any) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else \
            str(value) if present(value) else "n/a"

    return table.map(text).rename(columns=lambda c: c.replace("_", " "))


def notes(cv_threshold: float) -> list[tuple[str, str]]:
    """How each figure was made: (figure, method), the same in every output."""
    return [
        ("tokens/s per chip", "measured: tokens processed in the timed window across all "
         "ranks / window seconds / chips, the device synchronised at both edges of the "
         "window. The row's figure is the median over its n runs; with n > 1 also the "
         "olympic mean (MLPerf: best and worst run dropped) and the range."),
        ("MFU", "derived: FLOPs per token (formula 6N+12LHQT, PaLM appendix B: N matmul "
         "parameters, L layers, H heads, Q head dim, T sequence) x tokens/s / (dense peak "
         "FLOP/s of the precision x chips). The peak's label is shown (measured: a GEMM rate "
         "measured on this host; datasheet: a vendor document; estimate: a third party) and "
         "its source under 'Runs and environment'. No known peak: n/a, never a guessed peak."),
        ("J/token, tokens/kWh", "energy over the timed window by the method shown. rapl, "
         "nvml-energy-counter, nvml-power-polling, neuron-power-utilization: read from a "
         "sensor (measured). modelled: table power x chips x window time, an estimate that "
         "is never a measurement. J/token = joules / tokens; tokens/kWh = tokens / (joules / "
         "3.6e6). No reading (no sensor, --energy none): n/a with the reason."),
        ("step p50 / p90", "each run's median and 90th percentile of its per-step times "
         "(linear interpolation), taken by the method shown (host-clock: synchronised host "
         "clock per step; device events; window average); the median over the row's runs."),
        ("compile", "wall time of the first warm-up step (compilation happens there) and of "
         "the whole warm-up; on XLA also the graph compilations counted in warm-up and in "
         "the timed window (which should compile nothing)."),
        ("n, CV, flag", f"n: ok runs of the configuration. CV: population standard deviation "
         f"/ mean of tokens/s per chip over the n runs. FLAGGED: the CV of tokens/s per chip, "
         f"J/token or step p50 is above {cv_threshold:.1%}."),
        ("scaling efficiency", "per series tagged scaling=<id> (trnbench scaling): tokens/s "
         "per rank = tokens/s (global, median over the repeats) / world size; efficiency = "
         "tokens/s per rank / tokens/s per rank of the series' world_size 1 run (1.0 = "
         "linear). A series without a 1-rank run is measured against its smallest world size, "
         "named in the cell."),
        ("n/a", "a figure that could not be made (unknown peak, no energy sensor) is shown "
         "as n/a with the reason, never as a number; in the CSV its cell is empty and the "
         "reason is in the *_note column."),
        ("failed runs", "runs with status failed or interrupted are not in the tables; "
         "they are listed with their error."),
    ]
