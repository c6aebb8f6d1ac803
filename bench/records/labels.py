"""The labels of figures, defined once: energy methods and the kinds of published sources.

A leaf module (no torch): run, report, compare, ingest and project all read it.

Energy (``energy.method`` of a record -> label):
    measured   a meter of the energy or power itself (RAPL counters, NVML energy counter
               or power polling)
    estimate   a reading that is partly assumed: the Neuron driver's power sysfs is
               utilisation x an assumed maximum power, with background (idle) power excluded
    modelled   no reading: a model of power x time (``--energy modelled``)

Hardware and preset figures (``bench.backends.hardware``, ``bench.projection.presets``): the label
follows the kind of the source, by its publisher (``SOURCE_LABELS``):
    datasheet  the vendor's own document about the product (chip, instance, network)
    paper      a lab's published paper
    report     press, or a company's own report that is not a product document (a
               sustainability report, an announcement of a cluster)
    estimate   a third party's figure
"""

from __future__ import annotations

ENERGY: dict[str, str] = {
    "rapl": "measured",
    "nvml-energy-counter": "measured",
    "nvml-power-polling": "measured",
    "neuron-power-utilization": "estimate",
    "modelled": "modelled",
}
ENERGY_ORDER = ("measured", "estimate", "modelled")  # strongest first
NEURON_IDLE_NOTE = ("the Neuron driver's power figure is utilisation x an assumed maximum "
                    "power and excludes idle (background) power: an estimate, likely low")


def energy(method: str | None) -> str | None:
    """The label of an energy method; None for no reading; an unknown method is an estimate."""
    if method in (None, "none"):
        return None
    return ENERGY.get(method, "estimate")


def weakest(labels: list[str]) -> str:
    """The weakest of energy labels (a figure built from several takes the weakest)."""
    return max(labels, key=ENERGY_ORDER.index)


# The publisher a source starts with -> the label its figures carry.
SOURCE_LABELS: dict[str, str] = {
    "AWS Neuron docs": "datasheet",
    "NVIDIA": "datasheet",
    "EFA": "datasheet",
    "EFAv3": "datasheet",
    "NVLink": "datasheet",
    "trn2.48xlarge": "datasheet",
    "trn1.32xlarge": "datasheet",
    "AWS sustainability report": "report",
    "AWS, Nov 2023": "report",
    "AWS, 29 Oct 2025": "report",
    "Project Rainier": "report",
    "Anthropic": "report",
    "New Carlisle": "report",
    "press": "report",
    "Epoch AI": "estimate",
    "SemiAnalysis": "estimate",
    "Llama 3 Herd": "paper",
    "Brown et al.": "paper",
}


def source_label(source: str) -> str | None:
    """The label of a source by its publisher; None when no entry matches."""
    return next((label for prefix, label in SOURCE_LABELS.items()
                 if source.startswith(prefix)), None)
