"""`trnbench ingest FILE.json`: the benchmarks of a pytest-benchmark JSON file as records.

A benchmark timed with the ``train_step_benchmark`` fixture (bench/records/pytest_plugin.py) holds,
in ``extra_info["trnbench"]``, the run configuration, environment, backend and the metric
fields of a record. Each becomes one record:

    Record.new(config, environment, tags {"source": "pytest-benchmark"})
      + backend + the metric fields
      + "pytest_benchmark": name, fullname, group, the file's datetime, rounds, steps per
        round, round times and pytest-benchmark's statistics of the rounds

with ``time`` the file's ``datetime`` (when the benchmarks ran). Every benchmark is checked
before the first append: a malformed file, a benchmark without trnbench extra_info or with a
metric field of the wrong kind (``bench.records.record.problem``, the store readers' own check), is
one error line (exit 2) and nothing is written; so is a benchmark named twice in the file. A
benchmark already stored (same full name and time: the file ingested again) is skipped and
counted.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.inputs import config
from bench.inputs.config import ConfigError
from bench.records.record import IDENTITY, Record, RecordError

SECTIONS = ("config", "environment", "backend", "fields", "benchmark")
FIELDS = ("device", "model", "tokens", "window_s", "tokens_per_s", "tokens_per_s_per_chip",
          "mfu", "peak", "step_time", "energy", "loss_first", "loss_last")
REQUIRED = ("device", "model", "tokens", "window_s", "tokens_per_s", "energy")  # not null
STATS = ("min", "max", "mean", "median", "stddev", "rounds", "iqr", "ops", "total")
TAGS = {"source": "pytest-benchmark"}


def _read(path: Path) -> dict[str, Any]:
    field = str(path)
    try:
        data = json.loads(config.read_text(path, "FILE.json"))
    except RecursionError:
        raise ConfigError(field, "not valid JSON (nested too deeply)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(field, f"not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ConfigError(field, "no 'benchmarks' list: not a pytest --benchmark-json file")
    if not data["benchmarks"]:
        raise ConfigError(field, "holds no benchmarks")
    return data


def _when(data: dict[str, Any], field: str) -> str:
    """The file's ``datetime`` as the store writes times (UTC, seconds)."""
    try:
        when = datetime.fromisoformat(str(data.get("datetime")))
    except ValueError:
        raise ConfigError(field, f"datetime: expected an ISO 8601 time, got "
                          f"{data.get('datetime')!r}") from None
    if when.tzinfo is None:
        raise ConfigError(field, f"datetime: {data['datetime']!r} has no time zone")
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _record(bench: dict[str, Any], when: str, field: str) -> Record:
    """One benchmark as a record; ConfigError naming the benchmark when it cannot be one."""
    name = bench.get("fullname") or bench.get("name") if isinstance(bench, dict) else None
    extra = bench.get("extra_info") if isinstance(bench, dict) else None
    tb = extra.get("trnbench") if isinstance(extra, dict) else None
    if not isinstance(tb, dict):
        raise ConfigError(field, f"benchmark {name!r} has no trnbench extra_info (time it with "
                          "the train_step_benchmark fixture of bench.records.pytest_plugin)")
    where = f"benchmark {name!r}: extra_info.trnbench"
    missing = [k for k in SECTIONS if not isinstance(tb.get(k), dict)]
    missing += [f"fields.{k}" for k in FIELDS if not missing and k not in tb["fields"]]
    if missing:
        raise ConfigError(field, f"{where}: missing {missing[0]}; expected {', '.join(SECTIONS)}"
                          f" and the metric fields {', '.join(FIELDS)}")
    clash = sorted(set(tb["fields"]) & {*IDENTITY, "backend"})
    if clash:
        raise ConfigError(field, f"{where}.fields: {clash[0]!r} belongs to the record's identity, "
                          "not to its metric fields")
    try:
        config.validate(config.RunConfig(**tb["config"]))
    except TypeError as e:
        raise ConfigError(field, f"{where}.config: {e}") from None
    except ConfigError as e:
        raise ConfigError(field, f"{where}.config: {e}") from None
    stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
    timing = {"name": bench.get("name"), "fullname": bench.get("fullname"),
              "group": bench.get("group"), "datetime": when, **tb["benchmark"],
              "stats": {k: stats.get(k) for k in STATS}}
    try:
        return Record.new(tb["config"], tb["environment"], TAGS, time=when).with_json(
            {**tb["fields"], "backend": tb["backend"], "pytest_benchmark": timing}, REQUIRED)
    except RecordError as e:
        raise ConfigError(field, f"{where}.fields: {e}") from None


def records(path: str | Path) -> list[Record]:
    """Every benchmark of a pytest-benchmark JSON file as a record, all checked first; a
    benchmark named twice in the file is a ConfigError (which one would be the run?)."""
    path = Path(path)
    data = _read(path)
    when = _when(data, str(path))
    out = [_record(b, when, str(path)) for b in data["benchmarks"]]
    keys = [key(r) for r in out]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice:
        raise ConfigError(str(path), f"benchmark {twice[0]!r} appears {keys.count(twice)} "
                          "times in the file; one benchmark is one record")
    return out


def key(record: Record) -> tuple:
    """A benchmark's identity: its full name and when it ran."""
    bench = record.pytest_benchmark
    return (bench.get("fullname"), record.time) if isinstance(bench, dict) else ()


