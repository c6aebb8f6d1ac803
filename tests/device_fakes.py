"""Stand-ins for accelerator device modules, so the accelerator paths run whole on the CPU.

``FakeDeviceModule`` has the shape of ``torch.cuda`` (PyTorch docs, "torch.cuda":
https://docs.pytorch.org/docs/stable/cuda.html, and "CUDA semantics: asynchronous execution"):
``set_device``, ``current_device``, ``device_count``, ``is_available``, ``get_device_name``,
``get_device_capability``, ``synchronize``, ``Event(enable_timing=...)`` with ``record()`` and
``elapsed_time(end)`` in milliseconds, and the caching allocator's ``memory_allocated``,
``max_memory_allocated`` and ``reset_peak_memory_stats``. TorchNeuron's ``torch.neuron`` has
the same role and names ("torch.neuron and torch.accelerator reference",
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/torch/reference/api/torch-neuron-module.html:
device, stream, event and memory functions; its memory guide asks for ``synchronize()`` before
any memory statistic is read).

As on a device, work is asynchronous: an event recorded after a step is complete only after
the next ``synchronize``, and ``elapsed_time`` of an incomplete event raises, as CUDA does.
The CPU computes synchronously, so an event's time is the host clock at ``record()``: the
per-step times it gives are the real times of the steps. The allocator is a ledger the test
drives (``allocate``/``free``): its peak is what ``max_memory_allocated`` reports.
"""

from __future__ import annotations

import time
import types
from typing import Any


class FakeEvent:
    """``torch.cuda.Event``: ``record()`` on the current stream, ``elapsed_time(end)`` in ms."""

    def __init__(self, module: FakeDeviceModule, enable_timing: bool = False):
        self.module = module
        self.enable_timing = enable_timing
        self.stamp: float | None = None
        self.completed = False

    def record(self, stream: Any = None) -> None:
        self.stamp = time.perf_counter()
        self.completed = False
        self.module.pending.append(self)

    def query(self) -> bool:
        return self.completed

    def elapsed_time(self, end: FakeEvent) -> float:
        if not (self.enable_timing and end.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self.stamp is None or end.stamp is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        if not (self.completed and end.completed):
            raise RuntimeError("device not ready: events not completed (no synchronize yet)")
        return (end.stamp - self.stamp) * 1e3


class FakeDeviceModule(types.ModuleType):
    """A device module of the ``torch.cuda`` shape; ``calls`` logs what the harness called."""

    def __init__(self, name: str, device_name: str, count: int = 1,
                 capability: tuple[int, int] = (9, 0)):
        super().__init__(name)
        self.device_name = device_name
        self.count = count
        self.capability = capability
        self.current = 0
        self.pending: list[FakeEvent] = []
        self.allocated = self.peak = 0
        self.calls: list[tuple[str, Any]] = []

    # device
    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return self.count

    def set_device(self, device: Any) -> None:
        self.calls.append(("set_device", device))
        self.current = int(getattr(device, "index", device) or 0)

    def current_device(self) -> int:
        return self.current

    def get_device_name(self, device: Any = None) -> str:
        return self.device_name

    def get_device_capability(self, device: Any = None) -> tuple[int, int]:
        return self.capability

    def synchronize(self, device: Any = None) -> None:
        self.calls.append(("synchronize", device))
        for event in self.pending:
            event.completed = True
        self.pending.clear()

    def Event(self, enable_timing: bool = False) -> FakeEvent:  # noqa: N802 - torch's name
        return FakeEvent(self, enable_timing)

    # caching allocator
    def allocate(self, nbytes: int) -> None:
        self.allocated += nbytes
        self.peak = max(self.peak, self.allocated)

    def free(self, nbytes: int) -> None:
        self.allocated -= nbytes

    def memory_allocated(self, device: Any = None) -> int:
        return self.allocated

    def max_memory_allocated(self, device: Any = None) -> int:
        self.calls.append(("max_memory_allocated", device))
        return self.peak

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        self.calls.append(("reset_peak_memory_stats", device))
        self.peak = self.allocated

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]
