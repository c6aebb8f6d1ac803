"""Inputs taken from a stored run (``bench.store``): its MFU and, if present, its J/token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import hardware, store
from bench.config import ConfigError
from bench.hardware import Figure


def load_record(path: str | os.PathLike, run_id: str | None = None) -> dict[str, Any]:
    """The run ``run_id`` of ``path``, else its last ok run with an MFU."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--from-results", f"no such file: {p}")
    records = list(store.iter_records(p))
    if run_id is not None:
        for r in records:
            if r.get("run_id") == run_id:
                if r.get("status") != "ok" or r.get("mfu") is None:
                    raise ConfigError("--run-id", f"run {run_id} has no MFU (status "
                                      f"{r.get('status')}, mfu {r.get('mfu')})")
                return r
        ids = ", ".join(str(r.get("run_id")) for r in records[-5:]) or "none"
        raise ConfigError("--run-id", f"no run {run_id!r} in {p}; last runs: {ids}")
    usable = [r for r in records if r.get("status") == "ok" and r.get("mfu") is not None]
    if not usable:
        raise ConfigError("--from-results", f"{p} holds no ok run with an MFU")
    return usable[-1]


def describe(record: dict[str, Any]) -> str:
    dev = record.get("device") or {}
    peak = record.get("peak") or {}
    return (f"run {record.get('run_id')}: {record.get('config', {}).get('model')} on "
            f"{dev.get('name')}, MFU of its {peak.get('precision')} peak "
            f"[{peak.get('label')}: {peak.get('source')}]")


def node_mfu(record: dict[str, Any], path: str | os.PathLike) -> Figure:
    return Figure(float(record["mfu"]), "", "measured", f"{describe(record)}, {path}")


def device_key(record: dict[str, Any]) -> str | None:
    """The hardware-table key of the record's device, if it is in the table."""
    dev = record.get("device") or {}
    for name in (dev.get("kind"), dev.get("name")):
        spec = hardware.lookup(str(name)) if name else None
        if spec is not None:
            return spec.key
    return None


def j_per_flop(record: dict[str, Any], chip_key: str) -> tuple[Figure | None, str | None]:
    """Measured J per model FLOP on the projected chip type, or None and why not."""
    energy = record.get("energy") or {}
    jpt = energy.get("j_per_token")
    if jpt is None or energy.get("method") == "modelled":
        return None, None
    key = device_key(record)
    if key != chip_key:
        return None, (f"the run's measured {jpt:.4g} J/token is not used: it was measured on "
                      f"{(record.get('device') or {}).get('name')}, not on {chip_key}")
    if not str(energy.get("scope")).startswith("accelerators"):
        return None, (f"the run's measured J/token is not used: its scope is "
                      f"{energy.get('scope')!r}, not the accelerators")
    fpt = record["model"]["flops_per_token"]
    return Figure(jpt / fpt, "J/FLOP", "measured",
                  f"run {record.get('run_id')}: energy.j_per_token {jpt:.4g} "
                  f"({energy.get('method')}; {energy.get('scope')}) / {fpt:.4g} FLOPs per "
                  "token"), None
