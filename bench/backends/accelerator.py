"""Shared code of accelerators that have a torch device module (``torch.cuda``,
``torch.neuron``): device selection, synchronisation, device events for per-step
times, peak memory. The cuda and neuron backends differ in what they add on top; both are
tested through stand-in device modules of the torch.cuda shape (tests/unit/test_gpu_path.py,
tests/unit/test_neuron.py, tests/integration/test_neuron_ls.py).
"""

from __future__ import annotations

import time
from types import ModuleType

import torch

from bench.backends.base import Backend, StepTimer
from bench.records import record


class DeviceEventTimer(StepTimer):
    """Timing events recorded on the device stream after each step: no host sync in the
    window; elapsed times (ms, ``Event.elapsed_time``) are read after the closing
    synchronisation. Events are the device module's ``Event(enable_timing=True)`` where it has
    one (torch.cuda.Event), else ``torch.Event(device=...)``."""

    method = "device-events"

    def __init__(self, module: ModuleType, device: torch.device, steps: int):
        event = getattr(module, "Event", None)
        make = (lambda: event(enable_timing=True)) if event else (
            lambda: torch.Event(device=device, enable_timing=True))
        self._events = [make() for _ in range(steps + 1)]
        self._n = 0

    def start(self) -> None:
        self._n = 0
        self.mark()

    def mark(self) -> None:
        self._events[self._n].record()
        self._n += 1

    def step_times(self) -> list[float]:
        ev = self._events[: self._n]
        return [a.elapsed_time(b) / 1e3 for a, b in zip(ev, ev[1:], strict=False)]


class WindowAverageTimer(StepTimer):
    """For devices without timing events: every step gets the window's mean,

        per-step time = window seconds / steps taken,

    the window running from ``start`` to ``stop`` (the closing synchronisation). One averaged
    figure carries no spread: p90 and CV are null with ``spread_reason``."""

    method = "window-average"
    spread_reason = ("one window average per step (no per-step device timing): p90 and CV "
                     "not measured")

    def __init__(self, steps: int):
        self._steps = steps
        self._t0 = self._t1 = 0.0
        self._marks = 0

    def start(self) -> None:
        self._t0 = self._t1 = time.perf_counter()
        self._marks = 0

    def mark(self) -> None:
        self._marks += 1

    def stop(self) -> None:
        self._t1 = time.perf_counter()

    def step_times(self) -> list[float]:
        if not self._marks:
            return []
        return [(self._t1 - self._t0) / self._marks] * self._marks


class AcceleratorBackend(Backend):
    """A backend whose device is driven through ``torch.get_device_module(device_type)``."""

    @property
    def module(self) -> ModuleType:
        return torch.get_device_module(self.device_type)

    def _device(self) -> torch.device:
        self.module.set_device(self.local_rank)
        return torch.device(self.device_type, self.local_rank)

    def synchronize(self) -> None:
        self.module.synchronize(self.device)

    def step_timer(self, steps: int) -> StepTimer:
        try:
            return DeviceEventTimer(self.module, self.device, steps)
        except (RuntimeError, NotImplementedError, TypeError):
            return WindowAverageTimer(steps)

    def reset_peak_memory(self) -> None:
        reset = getattr(self.module, "reset_peak_memory_stats", None)
        if reset is not None:
            reset(self.device)

    def peak_memory(self) -> record.Memory:
        name = self.module.__name__  # torch.cuda, torch.neuron
        read = getattr(self.module, "max_memory_allocated", None)
        if read is None:
            return record.Memory(peak_bytes=None, method=f"not reported by {name}")
        return record.Memory(
            peak_bytes=int(read(self.device)),
            method=f"{name}.max_memory_allocated (peak since the reset before warm-up)")
