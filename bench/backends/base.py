"""The backend interface: one small class per device family (docs/backends.md).

A backend owns everything that differs between devices: where tensors live, how to
wait for the device, how to time steps without a host sync, autocast, the attention
kernels, compile, the peak FLOP/s of its chip, the memory a rank has and its peak memory.
Neither the runner nor the memory check before a run branches on hardware.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.backends.hardware import Figure, MemoryUnknown
from bench.inputs.config import PRECISION_DTYPES
from bench.records import record

if TYPE_CHECKING:
    from bench.backends.gemm_peak import WindowPeak


@dataclass(frozen=True)
class Probe:
    """Whether a backend can run here, and why (shown by `auto` and `trnbench env`)."""

    name: str
    available: bool
    reason: str


@dataclass(frozen=True)
class CompileCount:
    """Graph compilations so far and their total compile time (lazy-tensor backends)."""

    graphs: int
    seconds: float
    method: str

    def __sub__(self, other: CompileCount) -> CompileCount:
        return CompileCount(self.graphs - other.graphs, self.seconds - other.seconds,
                            self.method)


@dataclass(frozen=True)
class CacheState:
    """A persistent compile cache at one instant (TorchNeuron's NEFF cache,
    ``bench.backends.neuron_runtime``): its directory, the compiled graphs in it, and the
    runtime's hit and miss counters. ``reason``: why ``entries`` is None; ``counters_reason``:
    why hits and misses are."""

    dir: str | None
    entries: int | None
    hits: int | None
    misses: int | None
    method: str
    reason: str | None = None
    counters_reason: str | None = None


@dataclass(frozen=True)
class Fallbacks:
    """Operator calls the device runtime ran on the host CPU since ``Backend.reset_counters``
    (one name per call), or None with the reason they are not counted."""

    ops: list[str] | None
    method: str
    reason: str | None


DYNAMO_METHOD = ("torch.compile (Dynamo) counters: graphs compiled; seconds = frame compiles + "
                 "backward compiles (torch._dynamo.utils.calculate_time_spent)")


def dynamo_compilations() -> CompileCount:
    """Graphs torch.compile has compiled in this process so far, and its compile time
    (tracing, AOTAutograd, Inductor; the backward graph compiles lazily at the first backward)."""
    from torch._dynamo import utils

    seconds = utils.calculate_time_spent().get("total_wall_time", 0.0)
    return CompileCount(utils.counters["stats"]["unique_graphs"], seconds, DYNAMO_METHOD)


def sdpa_limit(kernels: tuple[SDPBackend, ...] | None) -> contextlib.AbstractContextManager:
    """Let ``F.scaled_dot_product_attention`` use only ``kernels`` (None: torch's own choice).

    Inside, a call that none of them can run raises ("No available kernel") rather than falling
    back to another kernel; under torch.compile the kernel is fixed when the graph is traced."""
    return contextlib.nullcontext() if kernels is None else sdpa_kernel(list(kernels))


class StepTimer(ABC):
    """Per-step times over the timed window, taken without a host sync inside it."""

    method: ClassVar[str]
    spread_reason: ClassVar[str | None] = None  # set where the times carry no spread

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def mark(self) -> None:
        """Called once after each step is issued."""

    def stop(self) -> None:
        """Called right after the synchronisation that closes the window."""

    @abstractmethod
    def step_times(self) -> list[float]:
        """Seconds per step; call after ``stop``."""


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
    compile_backend: ClassVar[str] = "inductor"  # the torch.compile backend of --compile
    build_on_host: ClassVar[bool] = False  # initialise weights on the CPU, then move them
    reduces_in_optimizer: ClassVar[bool] = False  # data-parallel gradients reduced in
    # optimizer_step (torch-xla's xm.optimizer_step) rather than by a DDP wrapper

    def __init__(self, local_rank: int = 0):
        self.local_rank = local_rank
        self.device = self._device()
        self._torch_compiled = False  # compile() was used: Dynamo's counters apply

    @classmethod
    @abstractmethod
    def probe(cls) -> Probe:
        """Can this backend run here? Must not initialise a device irreversibly."""

    @classmethod
    def rank_memory(cls, per_node: int) -> Figure:
        """Memory of one rank's device when ``per_node`` ranks run on each node (bytes, with
        where it was read), for the memory plan's check before a run starts
        (bench.parallel.memory_plan.check_run). Read without creating a device context in
        the calling process; MemoryUnknown where it cannot be read (the run is then not checked)."""
        raise MemoryUnknown(f"the {cls.name} backend cannot read it")

    def _device(self) -> torch.device:
        return torch.device(self.device_type)

    @abstractmethod
    def describe(self) -> record.Device:
        """What the run executes on: the record's ``device`` part. Throughput and MFU per chip
        divide by its ``chips`` (a NeuronCore is a fraction of a chip; None where the runtime
        does not say: per-chip figures and MFU null)."""

    @abstractmethod
    def peak_flops(self, precision: str) -> Figure | None:
        """Dense peak FLOP/s per chip for ``precision``; None when unknown (MFU null)."""

    def window_peak(self, precision: str) -> WindowPeak | None:
        """For a device whose peak is measured, not published (the CPU): a probe that
        measures it now, right before the timed window, and again after it
        (``bench.backends.gemm_peak.WindowPeak``); None elsewhere."""
        return None

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

    def sdpa_backends(self, precision: str) -> tuple[SDPBackend, ...] | None:
        """SDPA kernels the forward may use (see ``sdpa_limit``); None: torch chooses.
        Called once per run, before warm-up: it may raise when the device cannot run them."""
        return None

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()

    def compile(self, fn: Callable) -> Callable:
        """``--compile``: torch.compile (``compile_backend``, default mode) with static shapes,
        so that no shape is generalised to a dynamic one behind the run's back."""
        self._torch_compiled = True
        return torch.compile(fn, backend=self.compile_backend, dynamic=False)

    def compiles_optimizer_step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether ``--compile`` also compiles the optimizer step: not for a fused optimizer (its
        step already is a few multi-tensor kernels), else yes (Inductor fuses the per-parameter
        or foreach loops; the step was compiled so before the compile scope was split)."""
        return not optimizer.defaults.get("fused")

    def execution(self, precision: str, model: torch.nn.Module,
                  optimizer: torch.optim.Optimizer, compiled: bool) -> dict[str, Any]:
        """The record's ``precision``, ``optimizer``, ``attention`` and ``compile`` parts, read
        from the model and optimizer after the run (dtypes of the real tensors); the
        precision's ``mode`` is the runner's to say."""
        states = [t for s in optimizer.state.values() for t in s.values()
                  if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim()]
        kernels = self.sdpa_backends(precision)
        return {
            "precision": record.Precision(
                param_dtypes=sorted({_dtype(p) for p in model.parameters()}),
                compute_dtype=_dtype(PRECISION_DTYPES[precision]),
                optimizer_state_dtypes=sorted({_dtype(t) for t in states}),
                master_copy=False,  # the parameters are the master weights; no second copy
            ),
            "optimizer": record.Optimizer(
                name=type(optimizer).__name__,
                implementation=optimizer_implementation(optimizer),
                **{k: optimizer.defaults[k] for k in ("lr", "betas", "weight_decay", "eps")}),
            "attention": record.Attention(
                sdpa_backends=[k.name for k in kernels] if kernels else None,
                enforced=kernels is not None,  # no other kernel could run (else: torch's)
            ),
            "compile": record.Compile(
                scope="forward+loss",  # backward: its AOTAutograd-compiled graph
                optimizer_step="compiled" if self.compiles_optimizer_step(optimizer)
                else "eager",
                backend=self.compile_backend,
                dynamic=False,
            ) if compiled else None,
        }

    def optimizer_options(self) -> dict[str, Any]:
        """Extra AdamW keyword arguments (fused/foreach) for this device."""
        return {}

    def compilations(self) -> CompileCount | None:
        """Graph compilations so far, where the backend counts them (else None): Dynamo's
        graphs once ``compile`` was used."""
        return dynamo_compilations() if self._torch_compiled else None

    def reset_counters(self) -> None:
        """Called at the start of the warm-up: counters read later (``fallbacks``) start
        there."""

    def cache_state(self) -> CacheState | None:
        """A persistent compile cache now, where the backend has one (else None)."""
        return None

    def fallbacks(self) -> Fallbacks | None:
        """Operator calls run on the host CPU since ``reset_counters``, where the device
        runtime can fall back to it silently (else None)."""
        return None

    def reset_peak_memory(self) -> None:
        """Start a fresh peak-memory measurement."""

    @abstractmethod
    def peak_memory(self) -> record.Memory:
        """Peak memory of the run and how it was read: the record's ``memory`` part, measured
        (the runner adds the predicted peak)."""


def _dtype(x: torch.Tensor | torch.dtype) -> str:
    return str(x if isinstance(x, torch.dtype) else x.dtype).removeprefix("torch.")


def optimizer_implementation(optimizer: torch.optim.Optimizer) -> str:
    """``fused``, ``foreach`` or ``for-loop``: what torch runs (its defaults resolved as
    torch.optim does for an optimizer given neither flag)."""
    fused, foreach = optimizer.defaults.get("fused"), optimizer.defaults.get("foreach")
    if fused is None and foreach is None:
        from torch.optim.optimizer import _default_to_fused_or_foreach

        params = [p for g in optimizer.param_groups for p in g["params"]]
        fused, foreach = _default_to_fused_or_foreach(params, False, False)
    return "fused" if fused else "foreach" if foreach else "for-loop"
