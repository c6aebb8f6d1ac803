"""Which Trainium generation and logical-core layout a Neuron process runs on.

Per AWS Neuron docs (trainium, trainium2): Trainium1 shows 2 NeuronCores per chip (device kind
``NC_v2``); Trainium2 has 8 physical NeuronCore-v3 per chip, shown as 8 logical cores
with LNC=1 (``NC_v3``) or 4 with the default LNC=2 (``NC_v3d``). LNC comes from
``NEURON_LOGICAL_NC_CONFIG`` (or the compiler flag ``-lnc``). Per-chip throughput and
MFU divide by chips = logical cores in use / logical cores per chip.

Sources, in order of trust: the runtime's device kind, then ``neuron-ls --json-output``
(its JSON shape changed in Neuron 2.34, so it is parsed defensively), then the
environment. What could not be determined is None, and MFU stays null.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

# device kind -> (generation, LNC, logical cores per chip)
DEVICE_KINDS: dict[str, tuple[str, int, int]] = {
    "NC_v2": ("trn1", 1, 2),
    "NC_v3": ("trn2", 1, 8),
    "NC_v3d": ("trn2", 2, 4),
}
PHYSICAL_CORES_PER_CHIP = {"trn1": 2, "trn2": 8, "trn3": 8}


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


def _generation(text: str) -> str | None:
    match = re.search(r"\b(trn[123])", text)
    return match.group(1) if match else None


def from_neuron_ls(payload: Any, environ: dict[str, str] | None = None) -> NeuronTopology | None:
    """Topology from parsed ``neuron-ls --json-output``: a list of devices, or an object
    holding one under ``neuron_devices``/``devices`` with instance-wide fields."""
    top: dict[str, Any] = {}
    devices = payload
    if isinstance(payload, dict):
        top = payload
        devices = payload.get("neuron_devices") or payload.get("devices") or []
    if not isinstance(devices, list) or not devices or not isinstance(devices[0], dict):
        return None
    first = devices[0]
    gen = _generation(str(top.get("instance_type") or top.get("instance-type") or ""))
    lnc = top.get("logical_neuroncore_config") or first.get("logical_neuroncore_config")
    lnc = int(lnc) if lnc is not None else lnc_from_env(environ)
    physical = first.get("nc_count")
    logical = first.get("logical_nc_count") or first.get("logical_nc")
    if gen is None and physical is not None:
        gen = {2: "trn1", 8: "trn2"}.get(int(physical))  # trn3 also has 8: needs the name
    if lnc is None:
        lnc = 2 if gen == "trn2" else 1  # trn2's documented default; trn1 has no LNC
    if logical is None and physical is not None:
        logical = int(physical) // lnc
    return NeuronTopology(gen, lnc, int(logical) if logical else None, None, "neuron-ls")


def run_neuron_ls() -> Any | None:
    exe = shutil.which("neuron-ls")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--json-output"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def detect(device_kind: str | None) -> NeuronTopology:
    """Best available description; fields it cannot establish are None."""
    if device_kind:
        topo = from_device_kind(device_kind)
        if topo:
            return topo
    payload = run_neuron_ls()
    topo = from_neuron_ls(payload) if payload is not None else None
    if topo:
        return topo
    return NeuronTopology(None, lnc_from_env(), None, device_kind,
                          "unknown (no known device kind, no neuron-ls)")
