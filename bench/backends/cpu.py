"""The host CPU. Its peak is a measured GEMM rate (bench.backends.gemm_peak), labelled measured."""

from __future__ import annotations

import resource

import torch

from bench.backends import gemm_peak
from bench.backends.base import Backend, Probe
from bench.backends.environment import cpu_model, host_memory_bytes
from bench.backends.hardware import GIB, Figure
from bench.records import record


class CpuBackend(Backend):
    name = "cpu"
    dist_backend = "gloo"
    device_type = "cpu"

    @classmethod
    def probe(cls) -> Probe:
        return Probe(cls.name, True, f"host CPU ({torch.get_num_threads()} threads)")

    @classmethod
    def rank_memory(cls, per_node: int) -> Figure:
        """The host's RAM shared by the ranks of the node: MemTotal / ``per_node``."""
        total = host_memory_bytes()
        return Figure(total / per_node, "B", "measured",
                      f"/proc/meminfo: {total / GIB:,.1f} GiB host RAM / {per_node} ranks")

    def describe(self) -> record.Device:
        return record.Device(
            name=cpu_model(),
            kind="cpu",
            device_count=1,
            devices_used=1,
            chips=1,
            versions={"torch": torch.__version__, "threads": str(torch.get_num_threads())},
        )

    def peak_flops(self, precision: str) -> Figure | None:
        return gemm_peak.measured_peak(precision)

    def window_peak(self, precision: str) -> gemm_peak.WindowPeak | None:
        return gemm_peak.WindowPeak(precision) if gemm_peak.has_matrix_units(precision) else None

    def peak_memory(self) -> record.Memory:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return record.Memory(peak_bytes=kib * 1024,
                             method="process max RSS (whole Python process, since start)")
