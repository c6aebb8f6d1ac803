"""A modelled energy figure, only on request (method ``modelled``): never a measurement.

    E = P_table x chips x t_window

P is the device's power figure in ``bench.backends.hardware`` with its label and source (GPU TDP,
datasheet; Trainium2 ~500 W, estimate). The method and scope say "modelled" wherever the
figure appears. The CPU has no table power: null with the reason.
"""

from __future__ import annotations

from bench.backends import hardware
from bench.energy.base import Meter, SensorError
from bench.records.record import Energy


class ModelledMeter(Meter):
    method = "modelled"

    def __init__(self, kind: str, chips: float | None):
        self.kind = kind
        self.chips = chips

    def _open(self) -> None:
        spec = hardware.DEVICES.get(self.kind)
        if spec is None or spec.power_w is None:
            what = "the CPU has none" if self.kind == "cpu" else "not in bench/backends/hardware.py"
            raise SensorError(f"no table power for device kind {self.kind!r} ({what})")
        if not self.chips:
            raise SensorError("the number of chips in use is unknown")
        self.power = spec.power_w

    def _close(self, interval_s: float) -> Energy:
        p = self.power
        joules = p.value * self.chips * interval_s
        return Energy(
            method=self.method, joules=joules,
            scope=f"modelled: {p.value:g} W x {self.chips:g} chip(s) x window time "
                  f"[{p.label}: {p.source}]; not measured",
            interval_s=interval_s,
            device_joules={self.kind: joules},
            details={"power_w": p.as_dict(), "chips": self.chips},
        )
