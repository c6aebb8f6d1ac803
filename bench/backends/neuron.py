"""TorchNeuron: the native PyTorch backend on device ``neuron`` (Neuron 2.33+, torch 2.13/2.14).

TorchNeuron registers Trainium as a PrivateUse1 device, so the mechanics are those of
every accelerator with a torch device module (bench.backends.accelerator, shared with
cuda): ``torch.neuron.synchronize()`` at the window edges, device events per step,
``torch.autocast(device_type="neuron")`` for bf16, ``torch.compile(backend="neuron")``,
process group ``neuron``. One process drives one logical NeuronCore; per-chip figures
divide by the logical cores per chip of the detected generation and LNC.

Eager mode compiles each operator's graph into a NEFF on first use, or loads it from the
persistent NEFF cache; an operator without a Neuron kernel runs on the CPU without failing.
The record counts both (``bench.backends.neuron_runtime``): the graphs added to the cache in
the first step, the warm-up and the window (cold or warm start), and the CPU fallbacks, which
flag the run.
"""

from __future__ import annotations

from functools import cached_property
from importlib import metadata

import torch

from bench.backends import hardware, neuron_runtime, neuron_topology
from bench.backends.accelerator import AcceleratorBackend
from bench.backends.base import CacheState, Fallbacks, Probe
from bench.backends.hardware import Figure
from bench.records import record

NATIVE_MIN_VERSION = (2, 13)  # torch-neuronx 2.13.x/2.14.x are TorchNeuron; earlier are XLA
SDK_LINE = "TorchNeuron (native PyTorch backend, torch-neuronx 2.13/2.14, Neuron 2.33+)"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def torch_neuronx_version() -> str | None:
    return _version("torch-neuronx")


def is_native(version: str) -> bool:
    major, minor = (int(p) for p in version.split(".")[:2])
    return (major, minor) >= NATIVE_MIN_VERSION


class NeuronBackend(AcceleratorBackend):
    name = "neuron"
    dist_backend = "neuron"
    device_type = "neuron"
    compile_backend = "neuron"

    @classmethod
    def probe(cls) -> Probe:
        version = torch_neuronx_version()
        if version is None:
            return Probe(cls.name, False, "torch-neuronx is not installed")
        if not is_native(version):
            return Probe(cls.name, False, f"torch-neuronx {version} is the XLA line "
                                          "(use --backend neuron-xla)")
        try:
            import torch_neuronx  # noqa: F401  (registers the neuron device)
        except Exception as e:  # noqa: BLE001 - any import failure means unavailable
            return Probe(cls.name, False, f"import torch_neuronx failed: {e}")
        module = getattr(torch, "neuron", None)
        if module is None or not module.is_available():
            return Probe(cls.name, False, "no Neuron device visible (driver, runtime?)")
        return Probe(cls.name, True, f"{module.device_count()} logical NeuronCore(s), "
                                     f"torch-neuronx {version}")

    @classmethod
    def rank_memory(cls, per_node: int) -> Figure:
        return neuron_topology.rank_memory()

    def _device_name(self) -> str | None:
        """``torch.neuron.get_device_name`` where the module has it. What it returns is not
        published, so it is only trusted as a known device kind or a generation's name
        (neuron_topology.detect); it is recorded as ``versions.device_name``."""
        get_name = getattr(self.module, "get_device_name", None)
        return str(get_name(self.device)) if get_name else None

    @cached_property
    def _topology(self) -> neuron_topology.NeuronTopology:
        """Detected once per backend (neuron-ls is a subprocess)."""
        return neuron_topology.detect(self._device_name())

    def describe(self) -> record.Device:
        topo = self._topology
        return record.Device(
            name=f"AWS {topo.generation or 'Trainium (generation unknown)'} NeuronCore",
            kind=topo.generation or "unknown",
            device_count=self.module.device_count(),
            devices_used=1,
            chips=topo.chips(1),
            versions={"sdk_line": SDK_LINE, "torch": torch.__version__,
                      "torch-neuronx": torch_neuronx_version() or "?",
                      "neuronx-cc": _version("neuronx-cc") or "?",
                      "device_name": str(self._device_name()),
                      "lnc": str(topo.lnc), "topology_source": topo.source,
                      "neff_cache": neuron_runtime.cache_dir() or "unset",
                      **neuron_runtime.settings()},
        )

    def reset_counters(self) -> None:
        neuron_runtime.clear_fallbacks()

    def cache_state(self) -> CacheState:
        return neuron_runtime.cache_state()

    def fallbacks(self) -> Fallbacks:
        return neuron_runtime.fallbacks()

    def peak_flops(self, precision: str) -> Figure | None:
        gen = self._topology.generation
        return hardware.peak_for(hardware.DEVICES.get(gen or ""), precision)
