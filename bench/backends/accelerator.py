"""Shared code of accelerators that have a torch device module (``torch.cuda``,
``torch.neuron``): device selection, synchronisation, device events for per-step
times, peak memory. The cuda and neuron backends differ only in what they add on top,
so the tests of one path cover the other's mechanics.
"""

from __future__ import annotations

import time
from types import ModuleType

import torch

from bench.backends.base import Backend, Memory, StepTimer


class DeviceEventTimer(StepTimer):
    """Timing events recorded on the device stream after each step: no host sync in the
    window; elapsed times are read after the closing synchronisation."""

    method = "device-events"

    def __init__(self, device: torch.device, steps: int):
        self._events = [torch.Event(device=device, enable_timing=True) for _ in range(steps + 1)]
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
    """For devices without timing events: every step gets the window's mean time
    (the window is closed by the caller's synchronisation before step_times())."""

    method = "window-average"

    def __init__(self, steps: int):
        self._steps = steps
        self._t0 = 0.0
        self._marks = 0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._marks = 0

    def mark(self) -> None:
        self._marks += 1

    def step_times(self) -> list[float]:
        if not self._marks:
            return []
        return [(time.perf_counter() - self._t0) / self._marks] * self._marks


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
            return DeviceEventTimer(self.device, steps)
        except (RuntimeError, NotImplementedError, TypeError):
            return WindowAverageTimer(steps)

    def reset_peak_memory(self) -> None:
        reset = getattr(self.module, "reset_peak_memory_stats", None)
        if reset is not None:
            reset(self.device)

    def peak_memory(self) -> Memory:
        read = getattr(self.module, "max_memory_allocated", None)
        if read is None:
            return Memory(None, f"not reported by torch.{self.device_type}")
        return Memory(int(read(self.device)), f"torch.{self.device_type}.max_memory_allocated")
