"""Lazy-tensor backends on torch-xla: legacy torch-neuronx (``neuron-xla``) and XLA:CPU (``xla``).

Both run the same code (docs/backends.md): tensors on ``torch_xla.device()``, a graph
cut with ``torch_xla.sync()`` at each step end, ``torch_xla.sync(wait=True)`` plus
``xm.wait_device_ops()`` before a clock is read. Execution is asynchronous, so per-step
times are the window average (method ``window-average``); a host clock per step would
time the tracing, not the device. Graph compilations are counted with
``torch_xla.debug.metrics`` (metric ``CompileTime``: one sample per compiled graph).

``xla`` exists so that CI exercises this path on a machine without Trainium: torch-xla
on its PJRT CPU client executes the same traced graphs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from importlib import metadata
from typing import Any

import torch

from bench.backends import gemm_peak, hardware, neuron_runtime, neuron_topology
from bench.backends.accelerator import WindowAverageTimer
from bench.backends.base import Backend, CompileCount, Probe, StepTimer
from bench.backends.environment import cpu_model
from bench.backends.hardware import Figure
from bench.records import record

# AWS Neuron docs (torch-neuronx training): typical flags for transformer training
DEFAULT_NEURON_CC_FLAGS = "--model-type transformer --distribution-strategy=llm-training"
DEFAULT_COMPILE_CACHE = "/var/tmp/neuron-compile-cache"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class XlaBackend(Backend):
    """torch-xla on its CPU client (``PJRT_DEVICE=CPU``): the CI lane of the Neuron XLA path."""

    name = "xla"
    dist_backend = "xla"
    device_type = "xla"
    pjrt_device = "CPU"
    supports_compile = False
    build_on_host = True  # XLA practice; also gives the eager CPU's exact initial weights
    reduces_in_optimizer = True

    @classmethod
    def probe(cls) -> Probe:
        if os.environ.get("PJRT_DEVICE", cls.pjrt_device) != cls.pjrt_device:
            return Probe(cls.name, False, f"PJRT_DEVICE={os.environ['PJRT_DEVICE']} "
                                          f"(this backend needs {cls.pjrt_device})")
        version = _version("torch-xla") or _version("torch_xla")
        if version is None:
            return Probe(cls.name, False, "torch-xla is not installed")
        return Probe(cls.name, True, f"torch-xla {version} on PJRT {cls.pjrt_device}")

    def _device(self) -> torch.device:
        os.environ.setdefault("PJRT_DEVICE", self.pjrt_device)
        import torch_xla

        return torch_xla.device()

    def synchronize(self) -> None:
        import torch_xla
        import torch_xla.core.xla_model as xm

        torch_xla.sync(wait=True)
        xm.wait_device_ops()

    def step_end(self) -> None:
        import torch_xla

        torch_xla.sync()

    def step_timer(self, steps: int) -> StepTimer:
        return WindowAverageTimer(steps)

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """All-reduces gradients across replicas when there are several, then steps."""
        import torch_xla.core.xla_model as xm

        xm.optimizer_step(optimizer)

    def compile(self, fn: Callable) -> Callable:
        raise NotImplementedError("lazy-tensor graphs are compiled by XLA; no torch.compile")

    def compilations(self) -> CompileCount:
        import torch_xla.debug.metrics as met

        data = met.metric_data("CompileTime")
        count, total_ns = (data[0], data[1]) if data else (0, 0)
        return CompileCount(int(count), total_ns / 1e9, "torch_xla.debug.metrics CompileTime")

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "torch-xla": _version("torch-xla") or "?"}

    def describe(self) -> record.Device:
        return record.Device(name=f"XLA:CPU on {cpu_model()}", kind="cpu", device_count=1,
                             devices_used=1, chips=1, versions=self.versions())

    def peak_flops(self, precision: str) -> Figure | None:
        """The host's measured GEMM rate: XLA:CPU computes on the same cores."""
        return gemm_peak.measured_peak(precision)

    def peak_memory(self) -> record.Memory:
        return record.Memory(peak_bytes=None, method="not reported by XLA:CPU")


# every probe reason and record of neuron-xla says it is the legacy line
LEGACY = ("legacy XLA line (torch-neuronx 2.9 on torch-xla, last shipped in Neuron 2.31; "
          "PyTorch/XLA training unsupported since Neuron 2.30)")


class NeuronXlaBackend(XlaBackend):
    """Legacy torch-neuronx (<= 2.31, torch-xla 2.9): one process per logical NeuronCore."""

    name = "neuron-xla"
    pjrt_device = "NEURON"

    @classmethod
    def probe(cls) -> Probe:
        version = _version("torch-neuronx")
        if version is None:
            return Probe(cls.name, False, f"{LEGACY}: torch-neuronx is not installed")
        from bench.backends.neuron import is_native

        if is_native(version):
            return Probe(cls.name, False, f"{LEGACY}: torch-neuronx {version} is TorchNeuron "
                                          "(use --backend neuron)")
        if _version("torch-xla") is None:
            return Probe(cls.name, False, f"{LEGACY}: torch-xla is not installed")
        if not any(os.path.exists(f"/dev/neuron{i}") for i in range(64)):
            return Probe(cls.name, False, f"{LEGACY}: no /dev/neuron* device (Neuron driver "
                                          "not loaded?)")
        return Probe(cls.name, True, f"{LEGACY}: torch-neuronx {version} on torch-xla "
                                     f"{_version('torch-xla')}")

    @classmethod
    def rank_memory(cls, per_node: int) -> Figure:
        return neuron_topology.rank_memory()

    def _device(self) -> torch.device:
        os.environ.setdefault("NEURON_CC_FLAGS", DEFAULT_NEURON_CC_FLAGS)
        import torch_neuronx  # noqa: F401  (registers the Neuron PJRT plugin)

        return super()._device()

    @cached_property
    def _topology(self) -> neuron_topology.NeuronTopology:
        """Detected once per backend (neuron-ls is a subprocess)."""
        return neuron_topology.detect(device_kind())

    def versions(self) -> dict[str, str]:
        topo = self._topology
        return {**super().versions(), "sdk_line": LEGACY,
                "torch-neuronx": _version("torch-neuronx") or "?",
                "neuronx-cc": _version("neuronx-cc") or "?",
                "NEURON_CC_FLAGS": os.environ.get("NEURON_CC_FLAGS", ""),
                "compile_cache": os.environ.get("NEURON_COMPILE_CACHE_URL",
                                                DEFAULT_COMPILE_CACHE),
                "lnc": str(topo.lnc), "topology_source": topo.source,
                **neuron_runtime.settings()}

    def describe(self) -> record.Device:
        import torch_xla.runtime as xr

        topo = self._topology
        return record.Device(
            name=f"AWS {topo.generation or 'Trainium (generation unknown)'} NeuronCore",
            kind=topo.generation or "unknown",
            device_count=xr.global_runtime_device_count(),
            devices_used=1,
            chips=topo.chips(1),
            versions=self.versions(),
        )

    def peak_flops(self, precision: str) -> Figure | None:
        gen = self._topology.generation
        return hardware.peak_for(hardware.DEVICES.get(gen or ""), precision)

    def peak_memory(self) -> record.Memory:
        return memory_from_info(self.device)


def memory_from_info(device: torch.device) -> record.Memory:
    """Device memory from ``xm.get_memory_info`` (torch-xla 2.9: ``bytes_used``, ``bytes_limit``
    and ``peak_bytes_used`` in bytes; torch-xla before 2.1: ``kb_free`` and ``kb_total`` in
    KiB). The peak where the runtime reports one (since the process started: torch-xla has no
    reset), else the memory in use after the window, labelled as such, never as a peak."""
    import torch_xla.core.xla_model as xm

    try:
        info: dict[str, Any] = dict(xm.get_memory_info(device))
    except Exception as e:  # noqa: BLE001 - not every runtime reports it (XLA:CPU raises)
        return record.Memory(peak_bytes=None, method="not reported by the runtime "
                             f"(xm.get_memory_info: {e})")
    if info.get("peak_bytes_used") is not None:
        return record.Memory(peak_bytes=int(info["peak_bytes_used"]),
                             method="xm.get_memory_info peak_bytes_used (peak since the "
                             "process started, model set-up included)")
    if info.get("bytes_used") is not None:
        used = int(info["bytes_used"])
    elif info.get("kb_total") is not None and info.get("kb_free") is not None:
        used = (int(info["kb_total"]) - int(info["kb_free"])) * 1024
    else:
        return record.Memory(peak_bytes=None, method="xm.get_memory_info gave no known field "
                             f"({sorted(info)})")
    return record.Memory(peak_bytes=used, method="xm.get_memory_info: in use after the window, "
                         "not the peak (the runtime reports no peak)")


def device_kind() -> str | None:
    """The PJRT device kind of the first device (``NC_v3d`` ...), where the runtime says."""
    try:
        import torch_xla.runtime as xr

        attrs = xr.global_runtime_device_attributes()
        return str(attrs[0].get("device_kind") or "") or None if attrs else None
    except Exception:  # noqa: BLE001 - attribute API differs across releases
        return None
