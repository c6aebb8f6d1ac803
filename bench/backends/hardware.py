"""Per-device hardware figures, each with a label and a source.

Labels (docs/methodology.md): ``datasheet`` (vendor document), ``paper`` (a lab's published
figure), ``estimate`` (third party), ``report`` (press), ``measured`` (this host).
Peaks are dense (no sparsity), per chip, in FLOP/s of the named precision. A
device that is not in this table has no peak: MFU is null, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Figure:
    """One number with its unit, label and source."""

    value: float
    unit: str
    label: str
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


class MemoryUnknown(Exception):
    """Why a backend cannot tell the memory per rank (the run is then not checked)."""


@dataclass(frozen=True)
class DeviceSpec:
    """A chip's published figures. ``peak`` maps a precision to dense FLOP/s per chip."""

    key: str
    name: str
    peak: dict[str, Figure]
    memory_bytes: Figure
    bandwidth: Figure
    power_w: Figure | None
    name_patterns: tuple[str, ...] = field(default=())


def _tflops(value: float, label: str, source: str) -> Figure:
    return Figure(value * 1e12, "FLOP/s", label, source)


_NEURON_TRN1 = "AWS Neuron docs, Trainium architecture (trainium.rst)"
_NEURON_TRN2 = "AWS Neuron docs, Trainium2 architecture (trainium2.rst)"
_NEURON_TRN3 = "AWS Neuron docs, Trainium3 architecture (trainium3.rst)"
_H100 = "NVIDIA H100 Tensor Core GPU whitepaper v1.04 / datasheet (SXM5, dense)"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet (SXM, dense)"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB, dense)"
_V100 = "NVIDIA Tesla V100 datasheet (SXM2)"
GIB = 1024**3

DEVICES: dict[str, DeviceSpec] = {
    spec.key: spec
    for spec in (
        DeviceSpec(
            key="trn1",
            name="AWS Trainium1",
            peak={
                "bf16": _tflops(190, "datasheet", _NEURON_TRN1),
                "fp32": _tflops(47.5, "datasheet", _NEURON_TRN1),
            },
            memory_bytes=Figure(32 * GIB, "B", "datasheet", _NEURON_TRN1),
            bandwidth=Figure(820 * GIB, "B/s", "datasheet",
                             _NEURON_TRN1 + ": 820 GiB/sec of device memory bandwidth"),
            power_w=None,  # AWS has not published it
        ),
        DeviceSpec(
            key="trn2",
            name="AWS Trainium2",
            peak={
                "bf16": _tflops(667, "datasheet", _NEURON_TRN2),
                "fp8": _tflops(1299, "datasheet", _NEURON_TRN2),
                "fp32": _tflops(181, "datasheet", _NEURON_TRN2),
            },
            memory_bytes=Figure(96 * GIB, "B", "datasheet", _NEURON_TRN2),
            bandwidth=Figure(2.9e12, "B/s", "datasheet", _NEURON_TRN2),
            power_w=Figure(
                500, "W", "estimate", "SemiAnalysis, Dec 2024; Epoch AI ML hardware data"
            ),
        ),
        DeviceSpec(
            key="trn3",
            name="AWS Trainium3",
            peak={
                "bf16": _tflops(671, "datasheet", _NEURON_TRN3),
                "fp8": _tflops(2517, "datasheet", _NEURON_TRN3 + " (MXFP8)"),
                "fp32": _tflops(183, "datasheet", _NEURON_TRN3),
            },
            memory_bytes=Figure(144 * GIB, "B", "datasheet", _NEURON_TRN3),
            bandwidth=Figure(4.9e12, "B/s", "datasheet", _NEURON_TRN3),
            power_w=Figure(1000, "W", "report", "press reports of ~1 kW per Trainium3 chip"),
        ),
        DeviceSpec(
            key="h100",
            name="NVIDIA H100 SXM",
            peak={
                "bf16": _tflops(989.4, "datasheet", _H100),
                "fp8": _tflops(1978.9, "datasheet", _H100),
                "fp32": _tflops(66.9, "datasheet", _H100 + " (FP32 non-tensor)"),
            },
            memory_bytes=Figure(80e9, "B", "datasheet", _H100),
            bandwidth=Figure(3.35e12, "B/s", "datasheet", _H100),
            power_w=Figure(700, "W", "datasheet", _H100 + " (TDP)"),
            name_patterns=(r"H100 80GB HBM3", r"H100 SXM"),
        ),
        DeviceSpec(
            key="h200",
            name="NVIDIA H200 SXM",
            peak={
                "bf16": _tflops(989.4, "datasheet", _H200),
                "fp8": _tflops(1978.9, "datasheet", _H200),
                "fp32": _tflops(66.9, "datasheet", _H200 + " (FP32 non-tensor)"),
            },
            memory_bytes=Figure(141e9, "B", "datasheet", _H200),
            bandwidth=Figure(4.8e12, "B/s", "datasheet", _H200),
            power_w=Figure(700, "W", "datasheet", _H200 + " (TDP)"),
            name_patterns=(r"H200(?! NVL)",),
        ),
        DeviceSpec(
            key="a100",
            name="NVIDIA A100 SXM4",
            peak={
                "bf16": _tflops(312, "datasheet", _A100),
                "fp32": _tflops(19.5, "datasheet", _A100 + " (FP32 non-tensor)"),
            },
            memory_bytes=Figure(80e9, "B", "datasheet", _A100),
            bandwidth=Figure(2.0e12, "B/s", "datasheet", _A100),
            power_w=Figure(400, "W", "datasheet", _A100 + " (TDP)"),
            name_patterns=(r"A100-SXM4",),
        ),
        DeviceSpec(
            key="v100",
            name="NVIDIA V100 SXM2",
            peak={
                "fp16": _tflops(125, "datasheet", _V100 + " (FP16 tensor)"),
                "fp32": _tflops(15.7, "datasheet", _V100),
            },
            memory_bytes=Figure(32e9, "B", "datasheet", _V100),
            bandwidth=Figure(0.9e12, "B/s", "datasheet", _V100),
            power_w=Figure(300, "W", "datasheet", _V100 + " (TDP)"),
            name_patterns=(r"V100-SXM2",),
        ),
    )
}


def lookup(device_name: str) -> DeviceSpec | None:
    """The spec whose key or name pattern matches a runtime device name, else None.

    Only the exact board variants of the table match (an H100 PCIe or NVL has other
    peaks and is deliberately unknown).
    """
    key = device_name.strip().lower()
    if key in DEVICES:
        return DEVICES[key]
    for spec in DEVICES.values():
        if any(re.search(p, device_name) for p in spec.name_patterns):
            return spec
    return None


def peak_for(spec: DeviceSpec | None, precision: str) -> Figure | None:
    """Dense peak FLOP/s per chip of ``precision`` on ``spec``; None when unknown."""
    return None if spec is None else spec.peak.get(precision)
