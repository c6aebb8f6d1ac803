"""One label map: energy methods and the kinds of sources of every hardware and preset figure."""

from __future__ import annotations

import json

import pandas as pd

from bench import cli
from bench.backends.hardware import DEVICES, Figure
from bench.projection import calibration, presets
from bench.records import labels, store
from bench.records.record import Record
from bench.report import compare, rows

SOURCE_KINDS = {"datasheet", "paper", "report", "estimate"}


def _figures() -> list[tuple[str, Figure]]:
    out = []
    for spec in DEVICES.values():
        out += [(f"{spec.key} peak {p}", f) for p, f in spec.peak.items()]
        out += [(f"{spec.key} {n}", f) for n, f in (("memory", spec.memory_bytes),
                                                     ("bandwidth", spec.bandwidth),
                                                     ("power", spec.power_w)) if f]
    for name, node in presets.NODES.items():
        out += [(f"{name} {k}", node[k]) for k in ("intra", "inter", "group", "group_link")
                if node.get(k)]
    for name, c in presets.CLUSTERS.items():
        out += [(f"{name} {k}", c[k]) for k in ("chips", "power_cap") if c.get(k)]
        out += [(f"{name} {k} chips", p["chips"]) for k, p in c.get("pools", {}).items()]
    out += [(name, w["flops"]) for name, w in presets.WORKLOADS.items()]
    out += [(name, f) for name, f in presets.DEFAULTS.items()]
    out += [(name, Figure(0, "", s["label"], s["source"])) for name, s in presets.SHAPES.items()]
    return out + [(name, f) for name, f in calibration.defaults().items()]


def test_every_figure_label_matches_its_source_kind():
    checked = 0
    for name, fig in _figures():
        if fig.label in SOURCE_KINDS:
            assert labels.source_label(fig.source) == fig.label, (name, fig)
            checked += 1
        elif fig.label == "derived":  # the step model's fitted constants and cap
            assert name in calibration.defaults() and "published run" in fig.source, name
        else:
            assert fig.label in {"assumption"}, (name, fig)
    assert checked > 30
    assert presets.DEFAULTS["pue"].label == "report"  # a sustainability report


def test_neuron_energy_is_an_estimate_in_report_compare_and_project(tmp_path, capsys):
    """One Neuron-energy record: the report, a comparison and a projection say estimate."""
    record = Record.new({"model": "1b", "precision": "bf16", "backend": "neuron", "batch": 1,
                         "seq": 2048},
                        {"host": "trn"}).with_json({
        "device": {"name": "trn2", "kind": "trn2", "chips": 1},
        "peak": {"value": 667e12, "label": "datasheet", "source": "x", "precision": "bf16"},
        "model": {"flops_per_token": 1e10}, "mfu": 0.3, "tokens_per_s": 1e4,
        "tokens_per_s_per_chip": 1e4, "world_size": 1,
        "energy": {"method": "neuron-power-utilization", "j_per_token": 0.5,
                   "scope": "accelerators (trn2)", "joules": 50.0}})
    path = tmp_path / "runs.jsonl"
    store.append(path, record)
    df = pd.json_normalize([record.to_json()])
    row = rows.row("r1", rows.normalise(df), 0.05)
    assert row["energy_label"] == "estimate"
    assert compare._energy(df, "target")["label"] == "estimate"
    assert cli.main(["project", "--workload", "claude-3.5-sonnet", "--cluster", "rainier",
                     "--from-results", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    energy = next(r for r in d["inputs"] if r["name"] == "energy per FLOP of the run")
    assert energy["label"] == "estimate" and labels.NEURON_IDLE_NOTE in d["notes"]
    assert compare.ENERGY_LABELS is labels.ENERGY
