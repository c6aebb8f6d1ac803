"""The meter of a run's `--energy` choice.

``make_meter`` turns the run's ``--energy`` choice into a meter; every choice yields one,
so the runner never branches on hardware. ``auto`` takes the sensor of the backend in use
(``AUTO``) and is never ``modelled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.backends import hardware
from bench.energy.base import Meter
from bench.energy.modelled import ModelledMeter
from bench.energy.neuron import NeuronMeter
from bench.energy.null import NoMeter
from bench.energy.nvml import NvmlMeter, gpu_refs
from bench.energy.rapl import RaplMeter
from bench.inputs.config import ENERGY_CHOICES

if TYPE_CHECKING:
    from bench.backends.base import Backend
    from bench.records.record import Device

__all__ = ["AUTO", "CHOICES", "Meter", "make_meter"]

CHOICES = ENERGY_CHOICES
AUTO = {"cuda": "nvml", "neuron": "neuron", "neuron-xla": "neuron", "cpu": "rapl", "xla": "rapl"}


def make_meter(choice: str, backend: Backend, device: Device) -> Meter:
    """The meter for ``choice`` (one of CHOICES) on ``backend``'s device."""
    sensor = AUTO.get(backend.name) if choice == "auto" else choice
    if sensor is None:
        return NoMeter(f"no energy sensor is known for backend {backend.name!r}")
    if sensor == "none":
        return NoMeter("not measured (--energy none)", warn=False)
    if sensor == "nvml":
        return NvmlMeter(gpu_refs(backend.device))
    if sensor == "neuron":
        spec = hardware.DEVICES.get(device.kind)
        return NeuronMeter(spec.power_w if spec else None, device.chips)
    if sensor == "rapl":
        return RaplMeter()
    if sensor == "modelled":
        return ModelledMeter(device.kind, device.chips)
    raise ValueError(f"unknown energy method {choice!r}; accepted: {', '.join(CHOICES)}")
