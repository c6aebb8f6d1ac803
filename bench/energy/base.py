"""The meter interface: energy of exactly the timed window (docs/methodology.md).

A meter is opened right after the synchronisation that opens the timed window and closed
right after the one that closes it. It reads its sensor at those two edges and, where the
sensor needs it, in a sampler thread in between; never inside a step. An absent or
unreadable sensor is a null reading with its reason and a warning, never an exception:
the run goes on.

A meter's reading is the record's ``Energy`` part without its derived figures;
``Energy.with_tokens`` adds J/token, tokens/kWh and average power over the meter's own
open-to-close time.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from bench.records.record import Energy


class SensorError(Exception):
    """A sensor is absent or unreadable; the message is the reason stored with null energy."""


class Meter(ABC):
    """One sensor family. Subclasses implement ``_open`` and ``_close`` and raise
    SensorError for an absent or unreadable sensor; ``open``/``close`` never raise."""

    method: ClassVar[str]  # the method a null reading reports

    def open(self) -> None:
        """Read the sensor at the window's start (and start a sampler where needed)."""
        self._failure: str | None = None
        try:
            self._open()
        except SensorError as e:
            self._failure = str(e)
        self._t0 = time.perf_counter()

    def close(self) -> Energy:
        """Read the sensor at the window's end: what was measured over the window and how
        (the record's ``Energy`` without its derived figures), with joules or with the
        reason; joules summed over the devices measured."""
        interval = time.perf_counter() - self._t0
        if self._failure is None:
            try:
                return self._close(interval)
            except SensorError as e:
                self._failure = str(e)
        return Energy(method=self.method, joules=None, reason=self._failure,
                      warnings=[f"energy is null: {self._failure}"])

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self, interval_s: float) -> Energy: ...


class Sampler:
    """Calls ``sample()`` every ``period_s`` seconds in a daemon thread until ``stop()``."""

    def __init__(self, sample: Callable[[], None], period_s: float):
        self._sample = sample
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trnbench-energy", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()


def integrate(samples: list[tuple[float, float | None]]) -> tuple[float, float]:
    """Trapezoidal integral of (seconds, watts) samples: (joules, seconds covered).

    A span counts only where the samples at both of its ends are valid (not None).
    """
    joules = covered = 0.0
    for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False):
        if p0 is not None and p1 is not None:
            joules += (p0 + p1) / 2 * (t1 - t0)
            covered += t1 - t0
    return joules, covered


def fill_window(joules: float, covered_s: float, window_s: float) -> float | None:
    """Energy of the whole window from its covered part: mean covered power x window time."""
    return joules / covered_s * window_s if covered_s > 0 else None
