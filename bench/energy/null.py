"""The stand-in meter for "no sensor": energy null with the reason, so callers never branch."""

from __future__ import annotations

from bench.energy.base import Meter
from bench.records.record import Energy


class NoMeter(Meter):
    """Measures nothing. ``warn``: whether the summary should flag the missing figure
    (not when the user turned energy off with ``--energy none``)."""

    method = "none"

    def __init__(self, reason: str, warn: bool = True):
        self.reason = reason
        self.warn = warn

    def _open(self) -> None:
        pass

    def _close(self, interval_s: float) -> Energy:
        warnings = [f"energy is null: {self.reason}"] if self.warn else []
        return Energy(method=self.method, joules=None, reason=self.reason, warnings=warnings)
