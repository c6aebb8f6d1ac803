"""Trainium energy from the Neuron driver's power sysfs (method ``neuron-power-utilization``).

Derivation: docs/energy.md, "Neuron power sysfs (Trainium)"."""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bench.backends.hardware import Figure
from bench.energy.base import Meter, Sampler, SensorError, fill_window, integrate
from bench.records.record import Energy

ROOT_ENV = "TRNBENCH_NEURON_SYSFS"
DEFAULT_ROOTS = ("/sys/devices/virtual/neuron_device", "/sys/class/neuron_device")
DEVICE_DIR = re.compile(r"neuron(\d+)")
AGGREGATION_S = 60.0
VALID = "POWER_STATUS_VALID"
RAW_HEADER = "die,util_bips,counter"
RAW_POLL_S = 0.5
AGGREGATE_POLL_S = 5.0
SEARCH_DEPTH = 3


@dataclass(frozen=True)
class Aggregate:
    """One per-minute record of ``utilization``."""

    status: str
    timestamp: int  # unix seconds; the record covers [timestamp - 60, timestamp)
    avg: float  # fraction of maximum power


def parse_utilization(text: str) -> Aggregate:
    fields = text.strip().split(",")
    if len(fields) != 5:
        raise ValueError(f"expected <status>,<time>,<min>,<max>,<avg>, got {text.strip()!r}")
    status, timestamp, _, _, avg = fields
    return Aggregate(status, int(timestamp), float(avg) / 100)


def parse_raw(text: str) -> float | None:
    """The device's utilization (largest die, as a fraction) from ``utilization_raw``;
    None when any die has no good reading (unavailable, read_error, bogus)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or lines[0] != RAW_HEADER or len(lines) < 2:
        raise ValueError(f"expected {RAW_HEADER!r} and one row per die, got {text.strip()!r}")
    values = []
    for row in lines[1:]:
        fields = row.split(",")
        if len(fields) != 3 or not fields[1].isdigit() or int(fields[1]) > 10000:
            return None
        values.append(int(fields[1]) / 10000)
    return max(values)


def sysfs_root(root: str | os.PathLike | None = None) -> Path:
    chosen = root or os.environ.get(ROOT_ENV)
    if chosen:
        return Path(chosen)
    return next((Path(r) for r in DEFAULT_ROOTS if Path(r).is_dir()), Path(DEFAULT_ROOTS[0]))


def power_node(device_dir: Path) -> Path | None:
    """The directory holding ``utilization`` for one device, or None."""
    usual = device_dir / "stats" / "power"
    if (usual / "utilization").exists():
        return usual
    for dirpath, dirnames, filenames in os.walk(device_dir):
        here = Path(dirpath)
        if here.name == "power" and "utilization" in filenames + dirnames:
            return here
        if len(here.relative_to(device_dir).parts) >= SEARCH_DEPTH:
            dirnames.clear()
    return None


class NeuronMeter(Meter):
    method = "neuron-power-utilization"

    def __init__(self, max_power: Figure | None, chips_used: float | None,
                 root: str | os.PathLike | None = None):
        self.max_power = max_power
        self.chips_used = chips_used
        self.root = sysfs_root(root)

    def _open(self) -> None:
        if not self.root.is_dir():
            raise SensorError(f"no Neuron sysfs at {self.root} (set ${ROOT_ENV} where the "
                              "driver puts it)")
        devices = sorted((d for d in self.root.iterdir() if DEVICE_DIR.fullmatch(d.name)),
                         key=lambda d: int(d.name[len("neuron"):]))
        if not devices:
            raise SensorError(f"no neuronN device directories under {self.root}")
        self._nodes: dict[str, Path] = {}
        for d in devices:
            node = power_node(d)
            if node is None:
                raise SensorError(f"no power node (stats/power/utilization) under {d}")
            self._nodes[d.name] = node
        if self.max_power is None:
            raise SensorError("no maximum chip power for this device in bench/backends/hardware.py "
                              "(AWS does not publish it), so utilization cannot become watts")
        self._raw = all((n / "utilization_raw").exists() for n in self._nodes.values())
        self._raw_samples: dict[str, list[tuple[float, float | None]]] = {
            n: [] for n in self._nodes}
        self._aggregates: dict[str, dict[int, Aggregate]] = {n: {} for n in self._nodes}
        self._sample(strict=True)
        self._wall0 = time.time()
        self._sampler = Sampler(self._sample, RAW_POLL_S if self._raw else AGGREGATE_POLL_S).start()

    def _sample(self, strict: bool = False) -> None:
        """One reading per device; ``strict``: an unreadable file fails the meter."""
        t = time.perf_counter()
        for name, node in self._nodes.items():
            path = node / ("utilization_raw" if self._raw else "utilization")
            try:
                text = path.read_text()
                value = parse_raw(text) if self._raw else parse_utilization(text)
            except (OSError, ValueError) as e:
                if strict:
                    raise SensorError(f"cannot read {path}: {e}") from None
                value = None
            if self._raw:
                self._raw_samples[name].append((t, value))
            elif value is not None:
                self._aggregates[name][value.timestamp] = value

    def _close(self, interval_s: float) -> Energy:
        self._sampler.stop()
        self._sample()
        window = (self._wall0, time.time())
        watts = self.max_power.value
        per_device: dict[str, float | None] = {}
        covered_fractions = []
        invalid = 0
        for name in self._nodes:
            if self._raw:
                samples = [(t, v * watts if v is not None else None)
                           for t, v in self._raw_samples[name]]
                span = samples[-1][0] - samples[0][0]
                joules, covered = integrate(samples)
            else:
                span = window[1] - window[0]
                joules = covered = 0.0
                for rec in self._aggregates[name].values():
                    overlap = max(0.0, min(rec.timestamp, window[1])
                                  - max(rec.timestamp - AGGREGATION_S, window[0]))
                    if rec.status != VALID:
                        invalid += 1 if overlap > 0 else 0
                        continue
                    joules += rec.avg * watts * overlap
                    covered += overlap
            # mean power over the samples x the window's own duration: the samples bracket
            # the window (an opening read before it, a closing one after the sampler stops)
            per_device[name] = fill_window(joules, covered, interval_s)
            covered_fractions.append(min(1.0, covered / span) if span > 0 else 0.0)
        coverage = sum(covered_fractions) / len(covered_fractions)
        warnings = self._warnings(interval_s, coverage, invalid)
        source = "utilization_raw" if self._raw else "utilization"
        p = self.max_power
        common = {
            "scope": f"accelerators: {len(self._nodes)} Neuron device(s), whole chips, power "
                     f"above background; watts = {source} x estimated maximum power "
                     f"{p.value:g} W per chip [{p.label}: {p.source}]",
            "sampling_period_s": RAW_POLL_S if self._raw else AGGREGATION_S,
            "coverage": coverage,
            "interval_s": interval_s,
            "device_joules": per_device,
            "details": {"source": source, "root": str(self.root), "max_power_w": p.as_dict()},
        }
        if any(j is None for j in per_device.values()):
            reason = ("no valid utilization_raw reading during the window" if self._raw else
                      f"no valid per-minute power aggregate covers the window ({interval_s:.1f} s"
                      f"; the driver publishes one per {AGGREGATION_S:.0f} s)")
            return Energy(method=self.method, joules=None, reason=reason,
                          warnings=[f"energy is null: {reason}", *warnings], **common)
        return Energy(method=self.method, joules=math.fsum(per_device.values()),
                      warnings=warnings, **common)

    def _warnings(self, interval_s: float, coverage: float, invalid: int) -> list[str]:
        out = []
        if not self._raw and interval_s < AGGREGATION_S:
            out.append(f"the window ({interval_s:.1f} s) is shorter than the {AGGREGATION_S:.0f} s "
                       f"aggregation period of the Neuron power sensor: coverage {coverage:.0%}, "
                       "and each aggregate also averages power from outside the window")
        elif 0 < coverage < 0.99:
            out.append(f"the power sensor covers {coverage:.0%} of the window; the rest is "
                       "filled with the mean covered power")
        if invalid:
            out.append(f"{invalid} per-minute power aggregate(s) overlapping the window were not "
                       f"{VALID}")
        n = len(self._nodes)
        if self.chips_used is None or n > math.ceil(self.chips_used - 1e-9):
            used = "an unknown number of" if self.chips_used is None else f"{self.chips_used:g}"
            out.append(f"measures all {n} Neuron device(s) under {self.root}; this process "
                       f"computes on {used} chip(s)")
        return out
