"""The hardware table: every figure labelled and sourced; strict device-name matching."""

from __future__ import annotations

import pytest

from bench.backends import hardware

LABELS = {"datasheet", "paper", "estimate", "report", "measured"}


def test_every_figure_has_label_and_source():
    for spec in hardware.DEVICES.values():
        figures = [*spec.peak.values(), spec.memory_bytes, spec.bandwidth]
        if spec.power_w is not None:
            figures.append(spec.power_w)
        for fig in figures:
            assert fig.label in LABELS and fig.source and fig.value > 0, (spec.key, fig)


def test_facts_figures():
    assert hardware.DEVICES["trn2"].peak["bf16"].value == 667e12
    assert hardware.DEVICES["trn2"].power_w.label == "estimate"
    assert hardware.DEVICES["trn1"].power_w is None  # not published
    assert hardware.DEVICES["h100"].peak["bf16"].value == pytest.approx(989.4e12)
    assert hardware.DEVICES["v100"].peak["fp16"].value == 125e12


@pytest.mark.parametrize(("name", "key"), [
    ("NVIDIA H100 80GB HBM3", "h100"),
    ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-80GB", "a100"),
    ("Tesla V100-SXM2-32GB", "v100"),
    ("trn2", "trn2"),
    ("NVIDIA H100 PCIe", None),
    ("NVIDIA H200 NVL", None),
    ("NVIDIA GeForce RTX 4090", None),
])
def test_lookup_matches_only_known_boards(name, key):
    spec = hardware.lookup(name)
    assert (spec.key if spec else None) == key


def test_unknown_device_has_no_peak():
    assert hardware.peak_for(None, "bf16") is None
    assert hardware.peak_for(hardware.DEVICES["v100"], "bf16") is None
