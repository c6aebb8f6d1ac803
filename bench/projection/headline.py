"""The line printed after `trnbench run`: the projection of the stored run, or a pointer to it.

It is ``trnbench project --from-results PATH --run-id ID`` itself (plan, batch limit,
communication, goodput), for a run whose peak is a datasheet figure of the projected chip
(its MFU is then a fraction of that chip's own peak). Any other run (a CPU against its
measured GEMM rate, another accelerator) gets only the command: its MFU is not carried to
another chip unless the user asks for it.
"""

from __future__ import annotations

import argparse
import shlex

from bench.inputs.config import ConfigError
from bench.projection import measured, presets
from bench.records.record import Record


def headline(record: Record, results_path: str | None = None,
             workload: str = "claude-3.5-sonnet", cluster: str = "rainier") -> str | None:
    """The projection of ``record`` (stored in ``results_path``) on ``cluster``, a pointer to
    ``trnbench project`` for a run of another chip, None without an ok run with an MFU."""
    if record.status != "ok" or not record.mfu or not results_path:
        return None
    argv = ["project", "--workload", workload, "--cluster", cluster, "--from-results",
            str(results_path), "--run-id", record.run_id]
    command = shlex.join(["trnbench", *argv])
    chip = presets.CLUSTERS[cluster]["hardware"]
    label = record.peak.label if record.peak else None
    if measured.device_key(record) != chip or label != "datasheet":
        return (f"Projection: not printed for a run on {record.device.name}"
                f" (its MFU is of its own {label or 'unknown'} peak); to carry it "
                f"to {presets.CLUSTERS[cluster]['title']} as an assumption: {command}")
    from bench.projection import command as project_command
    from bench.projection import model

    parser = argparse.ArgumentParser(prog="trnbench project")
    project_command.add_project_args(parser)
    try:
        p = model.project(project_command.scenario(parser.parse_args(argv[1:]), record))
    except ConfigError as e:
        return f"Projection: none ({e}); details: {command}"
    s = p.scenario
    energy = p.energy_j_facility
    return (f"Projection (not a measurement): a {s.workload.title} run on {s.cluster.title} "
            f"would take {p.days:,.1f} days on {p.chips:,} chips ({p.plan.short()}, the "
            f"fastest plan), MFU at scale {p.mfu_at_scale:.1%} = this run's {s.mfu.value:.1%}"
            f" x modelled step efficiency {p.plan.step.efficiency:.1%}, goodput "
            f"{s.goodput.value:.0%}"
            + ("" if energy is None else f", {energy / model.J_PER_MWH:,.0f} MWh facility")
            + f"; {model.calibration_summary()['text']}; details: {command}")
