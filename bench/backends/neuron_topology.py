"""Which Trainium generation and logical-core layout a Neuron process runs on.

Per AWS Neuron docs (trainium, trainium2): Trainium1 shows 2 NeuronCores per chip (device kind
``NC_v2``); Trainium2 has 8 physical NeuronCore-v3 per chip, shown as 8 logical cores with LNC=1
(``NC_v3``) or 4 with the default LNC=2 (``NC_v3d``). LNC comes from ``NEURON_LOGICAL_NC_CONFIG``
(or the compiler flag ``-lnc``). Per-chip throughput and MFU divide by chips = logical cores in
use / logical cores per chip.

Sources, in order of trust: the runtime's device name when it is a known device kind, then
``neuron-ls`` JSON, then a device name that names the generation ("Trainium2", "trn2") with
the LNC of the environment. What could not be determined is None, and MFU stays null.

``neuron-ls`` JSON (Neuron LS User Guide, Neuron 2.29:
https://awsdocs-neuron.readthedocs-hosted.com/en/v2.29.0/tools/neuron-sys-tools/neuron-ls.html):
``neuron-ls --json-output`` prints a list with one object per Neuron device (one chip), whose
``nc_count`` is the NeuronCores the device shows (4 on a trn2 at LNC=2), ``memory_size`` its
device memory in bytes and, on trn2, ``logical_neuroncore_config`` the LNC. From Neuron 2.34 that
flag is gone: ``--output-format json`` prints an object with instance- and UltraServer-wide
fields at the top ("Announcing end of support for the neuron-ls JSON output format starting
with Neuron 2.34", 16 October 2026). No example of the new object is published, so the device
entries are found by their documented fields wherever the object holds them. The new flag is
tried first, the old one after it.

The generation is the one whose datasheet memory (bench.backends.hardware) equals
``memory_size``; else trn1 when the chip has 2 physical cores (nc_count x LNC); else unknown
(trn2 and trn3 both have 8).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from bench.backends import hardware

# device kind -> (generation, LNC, logical cores per chip)
DEVICE_KINDS: dict[str, tuple[str, int, int]] = {
    "NC_v2": ("trn1", 1, 2),
    "NC_v3": ("trn2", 1, 8),
    "NC_v3d": ("trn2", 2, 4),
}
PHYSICAL_CORES_PER_CHIP = {"trn1": 2, "trn2": 8, "trn3": 8}
DEFAULT_LNC = {"trn1": 1, "trn2": 2, "trn3": 2}  # trn1 has no LNC; trn2/trn3 default to 2
NEURON_LS_FLAGS = (("--output-format", "json"), ("--json-output",))  # Neuron >= 2.34, older
# where the aws-neuronx-tools package installs neuron-ls (the Neuron setup guides add it to
# PATH by hand: a shell that did not is still checked)
NEURON_BIN = "/opt/aws/neuron/bin"
LNC_KEYS = ("logical_neuroncore_config", "logical-neuroncore-config")  # JSON key, text label


@dataclass(frozen=True)
class NeuronTopology:
    generation: str | None  # "trn1" | "trn2" | "trn3" | None
    lnc: int | None
    logical_cores_per_chip: int | None
    device_kind: str | None
    source: str

    def chips(self, logical_cores: int) -> float | None:
        if not self.logical_cores_per_chip:
            return None
        return logical_cores / self.logical_cores_per_chip

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lnc_from_env(environ: dict[str, str] | None = None) -> int | None:
    env = os.environ if environ is None else environ
    value = env.get("NEURON_LOGICAL_NC_CONFIG")
    if value is None:
        match = re.search(r"(?:^|\s)-?-lnc[= ](\d)", env.get("NEURON_CC_FLAGS", ""))
        value = match.group(1) if match else None
    return int(value) if value and value.isdigit() else None


def from_device_kind(kind: str) -> NeuronTopology | None:
    if kind not in DEVICE_KINDS:
        return None
    gen, lnc, per_chip = DEVICE_KINDS[kind]
    return NeuronTopology(gen, lnc, per_chip, kind, f"runtime device kind {kind}")


def from_device_name(name: str, environ: dict[str, str] | None = None) -> NeuronTopology | None:
    """A device name that names the generation ("Trainium2", "trn2"): LNC from the environment,
    else the generation's default."""
    match = re.search(r"(?:trainium|trn)\s*([123])", name, re.IGNORECASE)
    if not match:
        return None
    gen = f"trn{match.group(1)}"
    lnc = lnc_from_env(environ) or DEFAULT_LNC[gen]
    return NeuronTopology(gen, lnc, PHYSICAL_CORES_PER_CHIP[gen] // lnc, name,
                          f"runtime device name {name!r}, LNC {lnc}")


def _device_entries(payload: Any) -> list[dict[str, Any]]:
    """The per-device objects: the list itself (before 2.34), or the list inside the object
    whose entries carry the documented per-device field ``nc_count`` (2.34 on)."""
    candidates = [payload] if isinstance(payload, list) else (
        list(payload.values()) if isinstance(payload, dict) else [])
    for value in candidates:
        if (isinstance(value, list) and value
                and all(isinstance(d, dict) and "nc_count" in d for d in value)):
            return value
    return []


def _int(value: Any) -> int | None:
    """A neuron-ls field as an integer; None when it is not one (``"96 GB"``, a list)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _lnc(device: dict[str, Any], payload: Any) -> int | None:
    """The LNC neuron-ls states: in the device entry, else in the top-level object (Neuron >=
    2.34); None where neither gives a number."""
    top = payload if isinstance(payload, dict) else {}
    return next((v for d in (device, top) for k in LNC_KEYS if (v := _int(d.get(k)))), None)


def _generation(memory_bytes: Any, physical: int | None) -> str | None:
    for key in PHYSICAL_CORES_PER_CHIP:
        if memory_bytes == hardware.DEVICES[key].memory_bytes.value:
            return key
    return "trn1" if physical == PHYSICAL_CORES_PER_CHIP["trn1"] else None


def from_neuron_ls(payload: Any, environ: dict[str, str] | None = None,
                   source: str = "neuron-ls") -> NeuronTopology | None:
    """Topology from parsed neuron-ls JSON (either format); None without device entries."""
    devices = _device_entries(payload)
    if not devices:
        return None
    first = devices[0]
    lnc = _lnc(first, payload)
    logical = _int(first["nc_count"])
    physical = logical * lnc if logical and lnc else None
    gen = _generation(first.get("memory_size"), physical if physical else logical)
    if lnc is None:
        lnc = lnc_from_env(environ) or (DEFAULT_LNC[gen] if gen == "trn1" else None)
    return NeuronTopology(gen, lnc, logical, None, source)


def neuron_ls() -> str | None:
    """The neuron-ls executable: on PATH, else in ``NEURON_BIN``; None where neither has it."""
    return shutil.which("neuron-ls") or shutil.which("neuron-ls", path=NEURON_BIN)


def run_neuron_ls() -> tuple[Any, str] | None:
    """Parsed JSON of the first neuron-ls JSON flag that works, and the command that gave it."""
    exe = neuron_ls()
    if exe is None:
        return None
    for flags in NEURON_LS_FLAGS:
        try:
            proc = subprocess.run([exe, *flags], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode == 0:
            try:
                return json.loads(proc.stdout), " ".join(["neuron-ls", *flags])
            except ValueError:
                continue
    return None


def rank_memory() -> hardware.Figure:
    """Device memory per rank from neuron-ls: a rank drives one NeuronCore that a device shows,
    so per rank = ``memory_size`` / ``nc_count`` (at LNC=2 a trn2's 96 GiB over 4 logical
    cores: 24 GiB), the smallest over the devices. neuron-ls reads the driver and claims no
    NeuronCore (a NeuronCore belongs to one process). MemoryUnknown without neuron-ls (on
    PATH or in ``NEURON_BIN``), when it fails or times out, or without device entries giving
    both fields as integers (a device giving something else is passed over)."""
    if neuron_ls() is None:
        raise hardware.MemoryUnknown(f"neuron-ls is neither on PATH nor in {NEURON_BIN}")
    found = run_neuron_ls()
    if not found:
        raise hardware.MemoryUnknown("neuron-ls failed or timed out")
    sizes = [(size / cores, size, cores, d) for d in _device_entries(found[0])
             if (size := _int(d.get("memory_size"))) and (cores := _int(d.get("nc_count")))]
    if not sizes:
        raise hardware.MemoryUnknown("neuron-ls gives no device with integer memory_size and "
                                     "nc_count")
    _, size, cores, device = min(sizes, key=lambda x: x[0])
    lnc = _lnc(device, found[0])
    at = f" at LNC={lnc}" if lnc else ""
    return hardware.Figure(size / cores, "B", "measured", f"neuron-ls: {size / hardware.GIB:,.4g}"
                           f" GiB per device / {cores} NeuronCores{at}")


def detect(device_name: str | None) -> NeuronTopology:
    """Best available description; fields it cannot establish are None."""
    if device_name:
        topo = from_device_kind(device_name)
        if topo:
            return topo
    found = run_neuron_ls()
    topo = from_neuron_ls(found[0], source=found[1]) if found else None
    if topo and topo.generation:
        return topo
    named = from_device_name(device_name) if device_name else None
    if named:
        return named
    if topo:
        return topo
    return NeuronTopology(None, lnc_from_env(), None, device_name,
                          "unknown (no known device kind or name, no neuron-ls)")
