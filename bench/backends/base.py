"""The backend interface: one small class per device family (DESIGN.md, "Backends").

A backend owns everything that differs between devices: where tensors live, how to
wait for the device, how to time steps without a host sync, autocast, compile, the
peak FLOP/s of its chip and its peak memory. The runner never branches on hardware.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from bench.config import PRECISION_DTYPES
from bench.hardware import Figure


@dataclass(frozen=True)
class Probe:
    """Whether a backend can run here, and why (shown by `auto` and `trnbench env`)."""

    name: str
    available: bool
    reason: str


@dataclass(frozen=True)
class DeviceInfo:
    """What a run executes on. Throughput and MFU per chip divide by ``chips``."""

    name: str
    kind: str  # hardware-table key ("h100", "trn2", ...) or "cpu"/"unknown"
    device_count: int  # devices visible to the process (GPUs, logical NeuronCores)
    devices_used: int  # devices this process computes on
    chips: float | None  # chips this process computes on (a NeuronCore is a fraction of one);
    # None when the runtime does not say (then per-chip figures and MFU are null)
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Memory:
    """Peak memory of the run and how it was read."""

    peak_bytes: int | None
    method: str


@dataclass(frozen=True)
class CompileCount:
    """Graph compilations so far and their total compile time (lazy-tensor backends)."""

    graphs: int
    seconds: float
    method: str

    def __sub__(self, other: CompileCount) -> CompileCount:
        return CompileCount(self.graphs - other.graphs, self.seconds - other.seconds,
                            self.method)


class StepTimer(ABC):
    """Per-step times over the timed window, taken without a host sync inside it."""

    method: ClassVar[str]

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def mark(self) -> None:
        """Called once after each step is issued."""

    @abstractmethod
    def step_times(self) -> list[float]:
        """Seconds per step; call after the device was synchronised."""


class HostClockTimer(StepTimer):
    """Host perf_counter stamps; exact on a synchronous device (the CPU)."""

    method = "host-clock"

    def __init__(self, steps: int):
        self._stamps: list[float] = []

    def start(self) -> None:
        self._stamps = [time.perf_counter()]

    def mark(self) -> None:
        self._stamps.append(time.perf_counter())

    def step_times(self) -> list[float]:
        s = self._stamps
        return [b - a for a, b in zip(s, s[1:], strict=False)]


class Backend(ABC):
    """One device family. Subclasses set the class attributes and implement ``probe``."""

    name: ClassVar[str]
    dist_backend: ClassVar[str]
    device_type: ClassVar[str]
    supports_compile: ClassVar[bool] = True  # whether --compile (torch.compile) applies
    build_on_host: ClassVar[bool] = False  # initialise weights on the CPU, then move them
    reduces_in_optimizer: ClassVar[bool] = False  # data-parallel gradients reduced in
    # optimizer_step (torch-xla's xm.optimizer_step) rather than by a DDP wrapper

    def __init__(self, local_rank: int = 0):
        self.local_rank = local_rank
        self.device = self._device()

    @classmethod
    @abstractmethod
    def probe(cls) -> Probe:
        """Can this backend run here? Must not initialise a device irreversibly."""

    def _device(self) -> torch.device:
        return torch.device(self.device_type)

    @abstractmethod
    def describe(self) -> DeviceInfo: ...

    @abstractmethod
    def peak_flops(self, precision: str) -> Figure | None:
        """Dense peak FLOP/s per chip for ``precision``; None when unknown (MFU null)."""

    def synchronize(self) -> None:
        """Wait until the device has finished all issued work."""

    def step_end(self) -> None:
        """Step boundary hook (lazy-tensor backends cut the graph here)."""

    def step_timer(self, steps: int) -> StepTimer:
        return HostClockTimer(steps)

    def autocast(self, precision: str) -> contextlib.AbstractContextManager:
        """bf16: autocast with fp32 master weights; fp32: nothing."""
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=PRECISION_DTYPES[precision])

    def precision_mode(self, precision: str) -> str:
        if precision == "fp32":
            return "fp32 parameters and compute"
        return f"autocast {precision} compute, fp32 parameters and optimizer states"

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()

    def compile(self, fn: Callable) -> Callable:
        return torch.compile(fn)

    def optimizer_options(self) -> dict[str, Any]:
        """Extra AdamW keyword arguments (fused/foreach) for this device."""
        return {}

    def compilations(self) -> CompileCount | None:
        """Graph compilations so far, where the backend counts them (else None)."""
        return None

    def reset_peak_memory(self) -> None:
        """Start a fresh peak-memory measurement."""

    @abstractmethod
    def peak_memory(self) -> Memory: ...
