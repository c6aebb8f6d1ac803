"""The one query language of `trnbench report --baseline` and `trnbench compare`.

A query selects stored records (``store.load``: one flat row per record, nested keys joined by
'.'). It is comma-separated terms that must all hold:

    KEY=VALUE   the record field KEY equals VALUE (numbers compare as numbers, true/false as
                booleans): any column, e.g. device.kind=h100, config.model=1b, tags.sweep=s1;
                a short key (``ALIASES``); any other key names a --tag label (side=a is
                tags.side=a)
    RUN_ID      a term without '=' selects the run with that id

Short keys: every ``trnbench run`` flag by its field name (model, batch, seq, precision, ac, tp,
steps, seed, ...: ``config.<name>``), ``device`` (the device kind, as ``device_kind``),
``device_name``, ``threads`` (a CPU's threads per process), ``ranks`` (world size), ``host``
and ``run`` (the run id).
"""

from __future__ import annotations

import pandas as pd

from bench.inputs import config
from bench.inputs.errors import ConfigError

ALIASES = {
    **{name: f"config.{name}" for name in config.OPTIONS},
    "device": "device.kind", "device_kind": "device.kind", "device_name": "device.name",
    "threads": "device.versions.threads", "ranks": "world_size",
    "host": "environment.host", "run": "run_id",
}


def terms(query: str, flag: str) -> list[str]:
    """The terms of ``query``; ConfigError naming ``flag`` for an empty one."""
    parts = [t.strip() for t in query.split(",")]
    if not all(parts):
        raise ConfigError(flag, f"empty term in {query!r}; expected KEY=VALUE[,KEY=VALUE...] "
                          "or a run id")
    return parts


def column(frame: pd.DataFrame, key: str, flag: str) -> str:
    """The record field a query key names; ConfigError naming ``flag`` for an unknown one."""
    name = ALIASES.get(key, key)
    if name not in frame.columns and f"tags.{key}" in frame.columns:
        name = f"tags.{key}"  # a user's --tag label by its own name
    if name not in frame.columns:
        raise ConfigError(flag, f"unknown key {key!r}; accepted: {', '.join(ALIASES)}, or any "
                          "record field such as device.kind, config.model, tags.NAME")
    return name


def equals(values: pd.Series, wanted: str) -> pd.Series:
    """Where ``values`` equal the text ``wanted``: as text, as a number, as a boolean."""
    if wanted.lower() in ("true", "false"):
        return values.astype(str).str.lower() == wanted.lower()
    as_text = values.astype(str) == wanted
    try:
        number = float(wanted)
    except ValueError:
        return as_text
    return as_text | (pd.to_numeric(values, errors="coerce") == number)


def matches(frame: pd.DataFrame, query: str, flag: str) -> pd.Series:
    """Where the records of ``frame`` satisfy every term of ``query``."""
    mask = pd.Series(True, index=frame.index)
    for term in terms(query, flag):
        key, sep, value = (part.strip() for part in term.partition("="))
        mask &= equals(frame[column(frame, key, flag) if sep else "run_id"],
                       value if sep else term)
    return mask
