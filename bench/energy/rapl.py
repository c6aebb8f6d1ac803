"""CPU package energy from Linux RAPL powercap counters (method ``rapl``).

Derivation: docs/energy.md, "RAPL (CPU packages)"."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.energy.base import Meter, Sampler, SensorError
from bench.records.record import Energy

ROOT_ENV = "TRNBENCH_RAPL_ROOT"
DEFAULT_ROOT = "/sys/class/powercap"
PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")
WRAP_GUARD_S = 10.0


@dataclass(frozen=True)
class Zone:
    name: str  # "package-0"
    energy: Path
    max_range_uj: int


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as e:
        raise SensorError(f"cannot read {path}: {e}") from None


def package_zones(root: Path) -> list[Zone]:
    """The top-level RAPL zones under ``root``, psys excluded."""
    if not root.is_dir():
        raise SensorError(f"no RAPL powercap tree at {root} (set ${ROOT_ENV} to point elsewhere)")
    zones = []
    for d in sorted(root.iterdir()):
        if not PACKAGE_ZONE.fullmatch(d.name):
            continue
        name_file = d / "name"  # a label only: bytes that are not UTF-8 are replaced, not fatal
        name = name_file.read_text(errors="replace").strip() if name_file.is_file() else d.name
        if name != "psys":
            zones.append(Zone(name, d / "energy_uj", _read_int(d / "max_energy_range_uj")))
    if not zones:
        raise SensorError(f"no RAPL package zone (intel-rapl:N) under {root}")
    return zones


class RaplMeter(Meter):
    method = "rapl"

    def __init__(self, root: str | os.PathLike | None = None, wrap_guard_s: float = WRAP_GUARD_S):
        self.root = Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
        self.wrap_guard_s = wrap_guard_s

    def _open(self) -> None:
        self._zones = package_zones(self.root)
        self._last = [_read_int(z.energy) for z in self._zones]
        self._total_uj = [0] * len(self._zones)
        self._sampler = Sampler(self._guard, self.wrap_guard_s).start()

    def _advance(self) -> None:
        for i, zone in enumerate(self._zones):
            now = _read_int(zone.energy)
            delta = now - self._last[i]
            self._total_uj[i] += delta if delta >= 0 else delta + zone.max_range_uj
            self._last[i] = now

    def _guard(self) -> None:
        # a missed guard read matters only if the counter wraps twice before the next one
        with contextlib.suppress(SensorError):
            self._advance()

    def _close(self, interval_s: float) -> Energy:
        self._sampler.stop()
        self._advance()
        per_zone = {z.name: uj / 1e6 for z, uj in zip(self._zones, self._total_uj, strict=True)}
        return Energy(
            method=self.method, joules=sum(per_zone.values()),
            scope=f"cpu-package (all processes): {len(per_zone)} RAPL package zone(s) under "
                  f"{self.root}, whatever ran on the package; sub-zones (core, uncore, dram) "
                  "and psys not added",
            coverage=1.0,
            interval_s=interval_s,
            device_joules=per_zone,
        )
