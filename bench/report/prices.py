"""AWS instances for `trnbench compare`: accelerators per instance and on-demand prices.

The table is ``bench/report/prices.toml``; every price carries its region, date, label and source,
and an instance whose price could not be sourced carries ``price_missing`` (the reason)
instead. A user file (``--prices FILE.toml``) adds or overrides prices, labelled ``user``::

    [prices."trn2.48xlarge"]
    usd_per_hour = 40.0          # required, > 0
    date = "2026-10-01"          # required: when the price held
    region = "us-east-2"         # optional
    source = "our AWS invoice"   # optional (default: the file's path)
    chips = 16                   # only for an instance not in the table,
    device = "trn2"              # with the device kind it holds
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from bench.inputs import numbers
from bench.inputs.config import read_toml, tomllib
from bench.inputs.errors import ConfigError

USER_FIELDS = ("usd_per_hour", "date", "region", "source", "chips", "device")
USD_PER_HOUR = numbers.Limits(low=0, low_open=True, high=1e6)
CHIPS = numbers.Limits(low=1, high=10**6, integer=True)


@dataclass(frozen=True)
class Price:
    """On-demand USD per instance-hour."""

    usd_per_hour: float
    region: str | None
    date: str
    label: str  # datasheet (the AWS price list) or user
    source: str


@dataclass(frozen=True)
class Instance:
    name: str
    device: str  # hardware key of its accelerator (bench/backends/hardware.py)
    chips: int
    chips_source: str
    price: Price | None
    price_missing: str | None = None  # why there is no price
    device_name: str | None = None  # substring of the device name that picks this instance
    default: bool = False  # the instance of its device kind when several hold it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load(user_file: str | Path | None = None) -> dict[str, Instance]:
    """The instance table, with the prices of ``user_file`` (if any) applied over it."""
    table = tomllib.loads(resources.files("bench.report").joinpath("prices.toml").read_text())
    instances = {name: _instance(name, entry) for name, entry in table["instances"].items()}
    if user_file is not None:
        instances.update(_user_prices(Path(user_file), instances))
    return instances


def _instance(name: str, e: dict[str, Any]) -> Instance:
    price = None
    if "usd_per_hour" in e:
        price = Price(e["usd_per_hour"], e["region"], e["date"], e["label"], e["source"])
    return Instance(name, e["device"], e["chips"], e["chips_source"], price,
                    e.get("price_missing"), e.get("device_name"), e.get("default", False))


def _number(value: Any, key: str, where: str, limits: numbers.Limits) -> int | float:
    try:
        return numbers.check(value, key, limits)
    except ConfigError as e:
        raise ConfigError("--prices", f"{where}.{e}") from None


def _user_prices(path: Path, known: dict[str, Instance]) -> dict[str, Instance]:
    """The instances a user price file changes or adds; every entry is checked first."""
    data = read_toml(path, "--prices")
    entries = data.get("prices")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError("--prices", f"{path}: expected [prices.\"INSTANCE\"] tables")
    out = {}
    for name, e in entries.items():
        where = f"{path}: prices.{name}"
        if not isinstance(e, dict):
            raise ConfigError("--prices", f"{where}: must be a table")
        unknown = sorted(set(e) - set(USER_FIELDS))
        if unknown:
            raise ConfigError("--prices", f"{where}: unknown field {unknown[0]!r}; accepted: "
                              f"{', '.join(USER_FIELDS)}")
        usd = _number(e.get("usd_per_hour"), "usd_per_hour", where, USD_PER_HOUR)
        if not e.get("date"):
            raise ConfigError("--prices", f"{where}.date: required (when the price held)")
        price = Price(float(usd), e.get("region"), str(e["date"]), "user",
                      str(e.get("source") or path))
        if name in known:
            out[name] = replace(known[name], price=price, price_missing=None)
            continue
        chips = e.get("chips")
        if chips is not None:
            chips = _number(chips, "chips", where, CHIPS)
        if chips is None or not isinstance(e.get("device"), str) or not e["device"]:
            raise ConfigError("--prices", f"{where}: an instance not in bench/report/prices.toml "
                              f"needs chips (an integer >= 1) and device (its device kind); known: "
                              f"{', '.join(known)}")
        out[name] = Instance(name, str(e["device"]), chips, f"user: {path}", price)
    return out


def for_device(instances: dict[str, Instance], kind: str, device_name: str) -> Instance | None:
    """The instance that holds device ``kind``: the one whose ``device_name`` occurs in the
    run's device name, else the default one of the kind; None when the table has none."""
    holding = [i for i in instances.values() if i.device == kind]
    named = [i for i in holding if i.device_name and i.device_name in device_name]
    return next(iter(named or [i for i in holding if i.default]), None)
