"""NVIDIA GPUs through torch.cuda: device events for per-step times, fused AdamW, and in bf16
FlashAttention only.

Attention in bf16 runs under ``sdpa_kernel([FLASH_ATTENTION])``: a shape or GPU that flash
cannot take fails the run loudly ("No available kernel") instead of falling back silently to the
memory-efficient or math kernel; a GPU older than sm80 fails before warm-up with the reason.
fp32 leaves the choice to torch (flash takes only fp16/bf16; torch picks memory-efficient
attention). Whatever was allowed is recorded (``attention.sdpa_backends``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn.attention import SDPBackend

from bench.backends import hardware
from bench.backends.accelerator import AcceleratorBackend
from bench.backends.base import Probe
from bench.backends.hardware import Figure, MemoryUnknown
from bench.energy.base import SensorError
from bench.energy.nvml import GpuRef, memory_totals
from bench.records import record

FLASH_MIN_CAPABILITY = (8, 0)  # PyTorch's FlashAttention-2 kernels: Ampere (sm80) and newer


def flash_kernels(precision: str, capability: tuple[int, int], gpu: str
                  ) -> tuple[SDPBackend, ...] | None:
    """The SDPA kernels of a run: FlashAttention alone in bf16, torch's choice in fp32.

    Raises RuntimeError (the run fails, with this reason) for bf16 on a GPU below sm80."""
    if precision == "fp32":
        return None
    if tuple(capability) < FLASH_MIN_CAPABILITY:
        need = ".".join(map(str, FLASH_MIN_CAPABILITY))
        raise RuntimeError(
            f"{precision} on cuda runs attention on FlashAttention only, which needs compute "
            f"capability >= {need}; {gpu} has {capability[0]}.{capability[1]}: use an Ampere "
            "or newer GPU, or --precision fp32"
        )
    return (SDPBackend.FLASH_ATTENTION,)


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
        # the count only: naming a device would initialise CUDA in the probing process (a
        # sweep's parent, say), whose context then holds memory its runs need
        return Probe(cls.name, True, f"{torch.cuda.device_count()} CUDA device(s)")

    @classmethod
    def rank_memory(cls, per_node: int) -> Figure:
        """The smallest total memory of the GPUs the ranks will use (rank i on cuda:i, as
        ``AcceleratorBackend`` sets it), through NVML (``nvmlDeviceGetMemoryInfo(h).total``):
        NVML opens no CUDA context in the launching process, whose memory the run would lose.
        Where CUDA may order unlike GPUs differently from NVML, the smallest of the host's
        GPUs (``memory_totals``). MemoryUnknown without NVML (nvidia-ml-py absent, no
        driver), a GPU for each rank, or on a GPU in MIG mode taken by index."""
        try:
            totals, host = memory_totals([GpuRef(i) for i in range(per_node)])
        except SensorError as e:
            raise MemoryUnknown(str(e)) from None
        total, name = min(totals)
        several = f", the smallest of {len(totals)} GPUs" if len(set(totals)) > 1 else ""
        if host:
            several = (f", the smallest of the host's {len(totals)} GPUs (a lower bound: CUDA "
                       "may number them otherwise than NVML; CUDA_DEVICE_ORDER=PCI_BUS_ID)")
        return Figure(float(total), "B", "measured", f"NVML: {name}{several}")

    def describe(self) -> record.Device:
        name = self.module.get_device_name(self.device)
        spec = hardware.lookup(name)
        versions = {"torch": torch.__version__, "cuda": str(torch.version.cuda)}
        driver = nvidia_driver_version()
        if driver:
            versions["driver"] = driver
        return record.Device(
            name=name,
            kind=spec.key if spec else "unknown",
            device_count=self.module.device_count(),
            devices_used=1,
            chips=1,
            versions=versions,
        )

    def peak_flops(self, precision: str) -> Figure | None:
        spec = hardware.lookup(self.module.get_device_name(self.device))
        return hardware.peak_for(spec, precision)

    def optimizer_options(self) -> dict[str, Any]:
        return {"fused": True}

    def sdpa_backends(self, precision: str) -> tuple[SDPBackend, ...] | None:
        return flash_kernels(precision, self.module.get_device_capability(self.device),
                             self.module.get_device_name(self.device))
