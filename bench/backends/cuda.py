"""NVIDIA GPUs through torch.cuda: device events for per-step times, fused AdamW."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench import hardware
from bench.backends.accelerator import AcceleratorBackend
from bench.backends.base import DeviceInfo, Probe
from bench.hardware import Figure


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


class CudaBackend(AcceleratorBackend):
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

    def optimizer_options(self) -> dict[str, Any]:
        return {"fused": True}
