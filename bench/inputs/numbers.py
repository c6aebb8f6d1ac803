"""The one parser of numbers a user gives: flags, ``--config`` TOML, sweep and price files.

A number is accepted when it is finite, within its range and, for a count, integral
(``8``, ``8.0`` and ``"1e3"`` are counts; ``8.5``, ``nan``, ``inf`` and ``true`` are not).
A rejected one is a ``ConfigError`` naming the field, the accepted range and the value.
A leaf module (no torch) so that argument parsing stays fast.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.inputs.errors import ConfigError

INT_MAX = 2**31 - 1  # the largest count a tensor dimension or a process count takes


@dataclass(frozen=True)
class Limits:
    """The accepted range: ``low`` (exclusive when ``low_open``) to ``high`` inclusive."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_show(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_show(self.high)}")
        return " ".join([kind, " and ".join(parts)]).strip()

    def admits(self, value: float) -> bool:
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e16 else f"{bound:g}"


def _from_text(text: str) -> int | float | None:
    """A flag's text as a number (None when it is none); exact for integer literals."""
    try:
        return int(text.strip())
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def check(value: object, field: str, limits: Limits, text: bool = False) -> int | float:
    """``value`` (a TOML or JSON number; with ``text``, a flag's text) as an int (counts) or
    a float; ``ConfigError(field, ...)`` unless it is a number that ``limits`` admits."""
    number = _from_text(value) if text and isinstance(value, str) else value
    ok = isinstance(number, int | float) and not isinstance(number, bool)
    try:
        ok = ok and limits.admits(float(number))  # type: ignore[arg-type]
    except OverflowError:  # an integer beyond any float
        ok = False
    if not ok:
        raise ConfigError(field, f"must be {limits.describe()}, got {value!r}")
    return int(number) if limits.integer else float(number)  # type: ignore[arg-type]


def flag(limits: Limits = Limits()) -> Callable[[str], int | float]:
    """An argparse ``type`` that parses a flag with ``check`` (argparse names the flag)."""

    def parse(text: str) -> int | float:
        try:
            return check(text, "", limits, text=True)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.message) from None

    parse.__name__ = limits.describe()
    return parse


POSITIVE = Limits(low=0, low_open=True)
FRACTION = Limits(low=0, high=1)
COUNT = Limits(low=1, high=INT_MAX, integer=True)
INDEX = Limits(low=0, high=INT_MAX, integer=True)  # a count that may be 0, a rank
# processes per node (--nproc): torchrun starts every one, and a node has no more devices or
# cores than this (a trn2.48xlarge: 64 NeuronCores; a 2-socket CPU host: a few hundred cores)
MAX_PER_NODE = 4096
PER_NODE = Limits(low=1, high=MAX_PER_NODE, integer=True)


def count_list(spec: str, field: str, high: float = INT_MAX) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]: comma-separated counts, each checked with ``check``."""
    items = [x for x in spec.split(",") if x.strip()]
    if not items:
        raise ConfigError(field, f"expected comma-separated integers >= 1, got {spec!r}")
    return [check(x, field, Limits(low=1, high=high, integer=True), text=True) for x in items]
