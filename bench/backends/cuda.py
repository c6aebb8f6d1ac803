"""NVIDIA GPUs through torch.cuda: CUDA events for per-step times, fused AdamW."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench import hardware
from bench.backends.base import Backend, DeviceInfo, Memory, Probe, StepTimer
from bench.hardware import Figure


class CudaEventTimer(StepTimer):
    """CUDA events recorded on the stream after each step: no host sync in the window."""

    method = "cuda-events"

    def __init__(self, steps: int):
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)]
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


def nvidia_driver_version() -> str | None:
    """The kernel driver version from /proc/driver/nvidia/version, if present."""
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    for token in first.split():
        if token.count(".") >= 1 and token.replace(".", "").isdigit():
            return token
    return None


class CudaBackend(Backend):
    name = "cuda"
    dist_backend = "nccl"
    device_type = "cuda"

    @classmethod
    def probe(cls) -> Probe:
        if not torch.cuda.is_available():
            why = "torch.cuda.is_available() is False"
            if torch.version.cuda is None:
                why += f" (torch {torch.__version__} is a build without CUDA)"
            return Probe(cls.name, False, why)
        n = torch.cuda.device_count()
        return Probe(cls.name, True, f"{n} CUDA device(s): {torch.cuda.get_device_name(0)}")

    def _device(self) -> torch.device:
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def describe(self) -> DeviceInfo:
        name = torch.cuda.get_device_name(self.device)
        spec = hardware.lookup(name)
        versions = {"torch": torch.__version__, "cuda": str(torch.version.cuda)}
        driver = nvidia_driver_version()
        if driver:
            versions["driver"] = driver
        return DeviceInfo(
            name=name,
            kind=spec.key if spec else "unknown",
            device_count=torch.cuda.device_count(),
            devices_used=1,
            chips=1,
            versions=versions,
        )

    def peak_flops(self, precision: str) -> Figure | None:
        spec = hardware.lookup(torch.cuda.get_device_name(self.device))
        return hardware.peak_for(spec, precision)

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def step_timer(self, steps: int) -> StepTimer:
        return CudaEventTimer(steps)

    def optimizer_options(self) -> dict[str, Any]:
        return {"fused": True}

    def reset_peak_memory(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory(self) -> Memory:
        peak = torch.cuda.max_memory_allocated(self.device)
        return Memory(peak, "torch.cuda.max_memory_allocated")
