"""NVIDIA GPU energy through NVML (``pynvml`` from nvidia-ml-py, the ``gpu`` extra).

Derivation: docs/energy.md, "NVML (NVIDIA GPUs)"."""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bench.energy.base import Meter, Sampler, SensorError, fill_window, integrate
from bench.records.record import Energy

if TYPE_CHECKING:
    import torch

POLL_S = 0.1
POWER_AVERAGING_S = 1.0


@dataclass(frozen=True)
class GpuRef:
    """One GPU as the process sees it: torch's index and the ids NVML knows it by."""

    index: int  # torch/CUDA device index in this process
    uuid: str | None = None  # NVML form, "GPU-..."
    pci_bus_id: str | None = None  # NVML form, "00000000:3B:00.0"


def gpu_refs(device: torch.device) -> list[GpuRef]:
    """The GPU behind a torch device (none for a non-CUDA device)."""
    import torch

    if device.type != "cuda":
        return []
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    uuid = str(props.uuid)
    pci = None
    if hasattr(props, "pci_bus_id"):  # torch builds that expose the PCI location
        pci = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    return [GpuRef(index, uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}", pci)]


def open_nvml() -> ModuleType:
    """``pynvml``, initialised (``nvmlInit``); SensorError when nvidia-ml-py is not installed
    or NVML cannot start (no driver). NVML creates no CUDA context."""
    try:
        import pynvml
    except ImportError:
        raise SensorError("nvidia-ml-py is not installed (pip install 'trnbench[gpu]')"
                          ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        raise SensorError(f"NVML could not start: {e}") from None
    return pynvml


def close_nvml(nvml: ModuleType) -> None:
    with contextlib.suppress(nvml.NVMLError):  # a failed shutdown changes no figure
        nvml.nvmlShutdown()


def find_handle(nvml: ModuleType, ref: GpuRef, warnings: list[str]) -> Any:
    """The NVML handle of ``ref``: by UUID, else PCI bus id, else the CUDA_VISIBLE_DEVICES
    entry at its index (a plain index adds a warning to ``warnings``)."""
    handle, entry = locate(nvml, ref)
    if entry is not None and not pci_order():
        warnings.append(
            f"cuda:{ref.index} taken as NVML index {entry}; CUDA and NVML may order "
            "GPUs differently (set CUDA_DEVICE_ORDER=PCI_BUS_ID)")
    return handle


def pci_order() -> bool:
    """Whether CUDA numbers GPUs by PCI bus as NVML does (else fastest first)."""
    return os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"


def locate(nvml: ModuleType, ref: GpuRef) -> tuple[Any, str | None]:
    """The NVML handle of ``ref`` (as ``find_handle``) and, where it was taken by a plain NVML
    index, that index (else None)."""
    tried = []
    for key, lookup in ((ref.uuid, nvml.nvmlDeviceGetHandleByUUID),
                        (ref.pci_bus_id, nvml.nvmlDeviceGetHandleByPciBusId)):
        if key:
            try:
                return lookup(key), None
            except nvml.NVMLError as e:
                tried.append(f"{key}: {e}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = [v.strip() for v in visible.split(",")] if visible is not None else None
    entry = str(ref.index) if entries is None else (
        entries[ref.index] if ref.index < len(entries) else None)
    try:
        if entry is not None and entry.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(entry)), entry
        if entry:
            return nvml.nvmlDeviceGetHandleByUUID(entry), None
    except nvml.NVMLError as e:
        tried.append(f"{entry}: {e}")
    raise SensorError(f"no NVML device found for cuda:{ref.index} (tried "
                      f"{'; '.join(tried) or 'nothing'}; CUDA_VISIBLE_DEVICES={visible})")


def mig_enabled(nvml: ModuleType, handle: Any) -> bool:
    """Whether a GPU is in MIG mode: ``nvmlDeviceGetMigMode`` gives [current, pending];
    NVML_ERROR_NOT_SUPPORTED is a GPU without MIG."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError as e:
        if e.value == nvml.NVML_ERROR_NOT_SUPPORTED:
            return False
        raise
    return current == nvml.NVML_DEVICE_MIG_ENABLE


def memory_totals(refs: list[GpuRef]) -> tuple[list[tuple[int, str]], bool]:
    """(total bytes, board name) of each GPU (``nvmlDeviceGetMemoryInfo(handle).total``,
    ``nvmlDeviceGetName``), and whether these are all the host's GPUs instead: where a GPU is
    taken by plain index in an order CUDA may not share (``find_handle``'s warning) and the
    host's GPUs differ in memory, the smallest of them all is the safe bound. SensorError
    where NVML cannot say, and where a GPU taken by index is in MIG mode (its handle is the
    parent board, whose whole memory no MIG instance has)."""
    nvml = open_nvml()
    try:
        located = [locate(nvml, ref) for ref in refs]
        handles = [h for h, _ in located]
        by_index = [h for h, entry in located if entry is not None]
        host = False
        if by_index and not pci_order():
            every = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            if len({_memory(nvml, h) for h in every}) > 1:
                handles, by_index, host = every, every, True
        if any(mig_enabled(nvml, h) for h in by_index):
            raise SensorError("a GPU taken by NVML index is in MIG mode: its memory is the "
                              "whole board's, not a MIG instance's")
        return [(_memory(nvml, h), _text(nvml.nvmlDeviceGetName(h))) for h in handles], host
    except nvml.NVMLError as e:
        raise SensorError(f"NVML could not read the GPUs' memory: {e}") from None
    finally:
        close_nvml(nvml)


def _memory(nvml: ModuleType, handle: Any) -> int:
    return int(nvml.nvmlDeviceGetMemoryInfo(handle).total)


def _text(value: str | bytes) -> str:
    """nvidia-ml-py returns str; older releases returned bytes."""
    return value.decode() if isinstance(value, bytes) else value


class NvmlMeter(Meter):
    method = "nvml"  # a null reading; a measured one says counter or polling

    def __init__(self, gpus: list[GpuRef], poll_s: float = POLL_S):
        self.gpus = gpus
        self.poll_s = poll_s

    def _open(self) -> None:
        if not self.gpus:
            raise SensorError("the run computes on no CUDA device")
        self.nvml: ModuleType = open_nvml()
        try:
            self._warnings: list[str] = []
            self._handles = [find_handle(self.nvml, ref, self._warnings) for ref in self.gpus]
            self._labels = [self._label(h, ref) for h, ref in zip(self._handles, self.gpus,
                                                                  strict=True)]
            self._c0 = [self._counter(h) for h in self._handles]
        except SensorError:
            self._shutdown()
            raise
        self._power: list[list[tuple[float, float | None]]] = [[] for _ in self._handles]
        self._poll()
        self._sampler = Sampler(self._poll, self.poll_s).start()

    def _label(self, handle: Any, ref: GpuRef) -> str:
        """The board's NVML UUID: unique across ranks and hosts (else torch's index)."""
        try:
            return _text(self.nvml.nvmlDeviceGetUUID(handle))
        except self.nvml.NVMLError:
            return f"cuda:{ref.index}"

    def _counter(self, handle: Any) -> int | None:
        """Cumulative energy in mJ; None where the GPU does not support the counter."""
        try:
            return self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self.nvml.NVMLError as e:
            if e.value == self.nvml.NVML_ERROR_NOT_SUPPORTED:
                return None
            raise SensorError(f"nvmlDeviceGetTotalEnergyConsumption failed: {e}") from None

    def _poll(self) -> None:
        t = time.perf_counter()
        for samples, handle in zip(self._power, self._handles, strict=True):
            try:
                samples.append((t, self.nvml.nvmlDeviceGetPowerUsage(handle) / 1000))
            except self.nvml.NVMLError:
                samples.append((t, None))

    def _shutdown(self) -> None:
        close_nvml(self.nvml)

    def _close(self, interval_s: float) -> Energy:
        self._sampler.stop()
        self._poll()
        try:
            c1 = [self._counter(h) if c0 is not None else None
                  for h, c0 in zip(self._handles, self._c0, strict=True)]
        finally:
            self._shutdown()
        labels = self._labels
        backwards = [f"{k} ({a} -> {b} mJ)" for k, a, b in zip(labels, self._c0, c1, strict=True)
                     if a is not None and b is not None and b < a]
        counter = {k: (b - a) / 1000 if a is not None and b is not None and b >= a else None
                   for k, a, b in zip(labels, self._c0, c1, strict=True)}
        polled, coverages = {}, []
        for k, samples in zip(labels, self._power, strict=True):
            joules, covered = integrate(samples)
            span = samples[-1][0] - samples[0][0]
            # the window's own duration, as the Neuron meter (the samples bracket the window)
            polled[k] = fill_window(joules, covered, interval_s)
            coverages.append(covered / span if span > 0 else 0.0)
        counter_j = _total(counter)
        polled_j = _total(polled)
        polled_coverage = sum(coverages) / len(coverages)
        details = {
            "nvml-energy-counter": {"joules": counter_j, "device_joules": counter},
            "nvml-power-polling": {"joules": polled_j, "device_joules": polled,
                                   "sampling_period_s": self.poll_s,
                                   "coverage": polled_coverage},
            "difference_j": counter_j - polled_j if None not in (counter_j, polled_j) else None,
        }
        names = ", ".join(f"cuda:{ref.index} = {label}" for ref, label in zip(self.gpus, labels,
                                                                             strict=True))
        scope = f"accelerators: {len(labels)} GPU board(s) ({names})"
        warnings = list(self._warnings)
        if counter_j is not None:
            return Energy(method="nvml-energy-counter", joules=counter_j, scope=scope,
                          coverage=1.0, interval_s=interval_s, device_joules=counter,
                          warnings=warnings, details=details)
        if polled_j is None:
            raise SensorError("neither the energy counter nor power readings were available")
        why = (f"the NVML energy counter went backwards over the window on {', '.join(backwards)}"
               " (driver reload or counter reset)" if backwards else
               "the NVML energy counter is not supported here")
        warnings.append(f"{why}; energy is integrated from power readings polled every "
                        f"{self.poll_s:g} s")
        if interval_s < POWER_AVERAGING_S:
            warnings.append(f"the window ({interval_s:.2f} s) is shorter than NVML's ~1 s power "
                            "averaging: the polled power includes time outside the window")
        return Energy(method="nvml-power-polling", joules=polled_j, scope=scope,
                      sampling_period_s=self.poll_s, coverage=polled_coverage,
                      interval_s=interval_s, device_joules=polled, warnings=warnings,
                      details=details)


def _total(per_device: dict[str, float | None]) -> float | None:
    values = list(per_device.values())
    return None if None in values else math.fsum(values)
