"""Checks of a record's JSON derived from the annotations of its parts (docs/methodology.md,
"Checks of a record").

Every field of every part is checked against its annotation (``int``, ``float``, ``str``,
``bool``, ``X | None``, ``list[X]``, ``dict[str, X]``, a nested dataclass, ``Any``) and
against the ``Rule`` declared beside it (``Rule.of``: a field's metadata). A problem is
*impossible* (the record is unusable: readers skip it, the writer stores the run as failed
with the reason) or *implausible* (the figure stays and the record is flagged). A leaf
module: it knows dataclasses and rules, not the record.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from typing import Any, Union

MAX_MAGNITUDE = 2.0**63  # beyond int64: no figure of a run, and pandas' int columns overflow
MAX_DEPTH = 32  # of a free-form JSON value (environment, details): no part nests deeper
SHOWN = 60  # characters of a bad value quoted in a message


@dataclass(frozen=True)
class Rule:
    """What a field's value must be beyond its type. ``low``/``high``: impossible outside
    (inclusive; of each item of a list or dict); ``plausible``: ``(low, high, why)``, outside
    it the record is flagged, or a function ``(value, record) -> flag or None``;
    ``values``: the accepted values; ``pattern``: a string's full match; ``required``: the
    records that must hold it (not null), as conditions (``check``'s: a status, a kind, or
    both, "ok training"; True: every record); ``keys``: a dataclass whose annotations type
    the keys of a dict (unknown keys pass) and whose field metadata ``option.limits`` bound
    them; ``required_keys``: (condition, keys) pairs, the keys the dict holds in those
    records; ``min_items``: the fewest items of a list; ``needs``: dotted paths of the record
    that must not be null where this field is not (the figures it was derived from)."""

    low: float | None = None
    high: float | None = None
    plausible: tuple[float | None, float | None, str] | Callable[..., str | None] | None = None
    values: tuple[Any, ...] = ()
    pattern: str | None = None
    required: bool | tuple[str, ...] = ()
    keys: type | None = None
    required_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()
    min_items: int | None = None
    needs: tuple[str, ...] = ()

    @staticmethod
    def of(f: dataclasses.Field) -> Rule:
        return f.metadata.get("rule") or NO_RULE

    def describe(self) -> str:
        """The rule in words (the schema table's column)."""
        parts = []
        if self.required is True:
            parts.append("required")
        elif self.required:
            parts.append(f"required in {' and '.join(self.required)} records")
        if self.low is not None:
            parts.append(f">= {_bound(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_bound(self.high)}")
        if self.values:
            parts.append("one of " + ", ".join(map(str, self.values)))
        if self.pattern:
            parts.append(f"matches `{self.pattern}`")
        if isinstance(self.plausible, tuple):
            low, high, _ = self.plausible
            parts.append("flagged " + " or ".join(
                x for x in (f"below {low:g}" if low is not None else "",
                            f"above {high:g}" if high is not None else "") if x))
        elif self.plausible is not None:
            parts.append("flagged: " + (self.plausible.__doc__ or "").strip().rstrip("."))
        if self.keys is not None:
            parts.append(f"keys typed as {self.keys.__name__}")
        if self.needs:
            parts.append("needs " + ", ".join(self.needs))
        for condition, keys in self.required_keys:
            parts.append(f"{condition} records: holds {', '.join(keys)}")
        if self.min_items:
            parts.append(f"at least {self.min_items} item(s)")
        return "; ".join(parts)


NO_RULE = Rule()


class Impossible(Exception):
    """A value that no reader can use; the message says where and why."""


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


@cache
def hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields."""
    found = typing.get_type_hints(cls)
    return {f.name: found[f.name] for f in fields(cls)}


def optional(tp: Any) -> tuple[bool, tuple[Any, ...]]:
    """Whether ``tp`` admits None, and its other members."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        return type(None) in args, tuple(a for a in args if a is not type(None))
    return False, (tp,)


def dataclass_of(tp: Any) -> type | None:
    """The dataclass of a field typed ``X``, ``X | None`` or ``list[X]``, else None."""
    _, members = optional(tp)
    tp = members[0] if len(members) == 1 else None
    if typing.get_origin(tp) is list:
        (tp,) = typing.get_args(tp)
    return tp if isinstance(tp, type) and is_dataclass(tp) else None


def describe(tp: Any) -> str:
    """A type in words: "an integer", "a list of numbers or null", ..."""
    nullable, members = optional(tp)
    words = " or ".join(_word(m) for m in members)
    return words + (" or null" if nullable else "")


def _word(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict or (isinstance(tp, type) and is_dataclass(tp)):
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, "a JSON value")


class Checker:
    """One walk over a record's JSON: the first impossible value raises ``Impossible``; the
    implausible ones are collected in ``flags``. ``root``: the whole record (cross-field
    rules); ``kind``: the record's kind, which with its status makes the conditions a
    ``Rule.required`` names ("ok", "training", "ok training")."""

    def __init__(self, root: dict[str, Any], kind: str):
        self.root = root
        self.status = root.get("status")
        self.conditions = (str(self.status), kind, f"{self.status} {kind}")
        self.flags: list[str] = []

    def met(self, required: bool | tuple[str, ...]) -> str | None:
        """The condition of ``required`` this record meets (the first), or None."""
        if required is True:
            return "all"
        return next((c for c in required if c in self.conditions), None)

    def part(self, cls: type, data: Any, where: str) -> None:
        """A dataclass's JSON object: every annotated field, then the unknown keys."""
        if not isinstance(data, dict):
            raise Impossible(f"{where or cls.__name__.lower()} must be an object, got "
                             f"{show(data)}")
        known = hints(cls)
        for f in fields(cls):
            if f.name == "extra":
                continue
            rule = Rule.of(f)
            here = f"{where}.{f.name}" if where else f.name
            value = data.get(f.name)
            if value is None:
                condition = self.met(rule.required)
                if condition:
                    raise Impossible(f"{here} is missing or null ({condition} records "
                                     "need it)")
                continue
            self.value(known[f.name], value, here, rule)
            missing = next((p for p in rule.needs if value_at(self.root, p) is None), None)
            if missing:
                raise Impossible(f"{here} is {show(value)} but {missing} is missing or null "
                                 "(it is derived from it)")
        for key, value in data.items():
            if key not in known:
                self.any(value, f"{where}.{key}" if where else key, 1)

    def value(self, tp: Any, value: Any, where: str, rule: Rule = NO_RULE) -> None:
        """``value`` against its type ``tp`` and its field's ``rule``."""
        nullable, members = optional(tp)
        if value is None:
            if not nullable and tp is not Any:
                raise Impossible(f"{where} must be {describe(tp)}, got null")
            return
        if len(members) != 1:
            raise TypeError(f"{where}: a union of {members} is not checked")
        tp = members[0]
        origin = typing.get_origin(tp)
        if tp is Any:
            self.any(value, where, 0)
        elif isinstance(tp, type) and is_dataclass(tp):
            self.part(tp, value, where)
        elif origin is list:
            if not isinstance(value, list):
                raise Impossible(f"{where} must be {describe(tp)}, got {show(value)}")
            (item,) = typing.get_args(tp)
            if rule.min_items and len(value) < rule.min_items:
                raise Impossible(f"{where} must hold at least {rule.min_items} item(s), got "
                                 f"{len(value)}")
            for i, v in enumerate(value):
                self.value(item, v, f"{where}[{i}]", _items(rule))
        elif origin is dict:
            if not isinstance(value, dict):
                raise Impossible(f"{where} must be an object, got {show(value)}")
            _, item = typing.get_args(tp)
            if rule.keys is not None:
                self.keyed(rule, value, where)
            for k, v in value.items():
                self.scalar(str, k, f"a key of {where}", NO_RULE)
                if rule.keys is None or k not in hints(rule.keys):
                    self.value(item, v, f"{where}.{k}", _items(rule))
        else:
            self.scalar(tp, value, where, rule, " or null" if nullable else "")
        self.plausible(rule, value, where)

    def keyed(self, rule: Rule, value: dict[str, Any], where: str) -> None:
        """A dict whose keys a dataclass types (the record's ``config``: ``RunConfig``)."""
        assert rule.keys is not None
        for condition, keys in rule.required_keys:
            missing = next((k for k in keys if value.get(k) is None), None)
            if missing and self.met((condition,)):
                raise Impossible(f"{where}.{missing} is missing or null ({condition} records "
                                 "need it)")
        known = hints(rule.keys)
        for f in fields(rule.keys):
            if value.get(f.name) is not None:
                limits = getattr(f.metadata.get("option"), "limits", None)
                bound = Rule(low=getattr(limits, "low", None), high=getattr(limits, "high", None))
                self.value(known[f.name], value[f.name], f"{where}.{f.name}", bound)

    def scalar(self, tp: Any, value: Any, where: str, rule: Rule, or_null: str = "") -> None:
        if tp is bool:
            ok = isinstance(value, bool)
        elif tp is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif tp is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif tp is str:
            ok = isinstance(value, str)
        else:
            raise TypeError(f"{where}: type {tp!r} is not checked")
        if not ok:
            raise Impossible(f"{where} must be {describe(tp)}{_range(rule)}{or_null}, got "
                             f"{show(value)}")
        if tp in (int, float):
            if not (math.isfinite(value) and abs(value) < MAX_MAGNITUDE):
                raise Impossible(f"{where} must be a finite number below 2^63 in magnitude, "
                                 f"got {show(value)}")
            if (rule.low is not None and value < rule.low) or \
                    (rule.high is not None and value > rule.high):
                raise Impossible(f"{where} must be {describe(tp)}{_range(rule)}{or_null}, "
                                 f"got {show(value)}")
        if tp is str and not _unicode(value):
            raise Impossible(f"{where} must be Unicode text, got {show(value)} (a lone "
                             "surrogate)")
        if rule.values and value not in rule.values:
            raise Impossible(f"{where} must be one of {', '.join(map(str, rule.values))}, got "
                             f"{show(value)}")
        if rule.pattern and not (isinstance(value, str) and re.fullmatch(rule.pattern, value)):
            raise Impossible(f"{where} must match {rule.pattern}, got {show(value)}")

    def plausible(self, rule: Rule, value: Any, where: str) -> None:
        if rule.plausible is None or self.status != "ok":
            return
        if callable(rule.plausible):
            flag = rule.plausible(value, self.root)
        else:
            low, high, why = rule.plausible
            flag = None
            if high is not None and value > high:
                flag = f"{where} {value:.4g} is above {high:g}: {why}"
            elif low is not None and value < low:
                flag = f"{where} {value:.4g} is below {low:g}: {why}"
        if flag:
            self.flags.append(flag)

    def any(self, value: Any, where: str, depth: int) -> None:
        """A free-form JSON value: finite numbers, at most ``MAX_DEPTH`` levels of nesting
        (walked without recursion)."""
        stack = [(value, where, depth)]
        while stack:
            v, here, level = stack.pop()
            if level > MAX_DEPTH:
                raise Impossible(f"{where} nests deeper than {MAX_DEPTH} levels")
            if isinstance(v, str) and not _unicode(v):
                raise Impossible(f"{here} must be Unicode text, got {show(v)}")
            if isinstance(v, float) and not math.isfinite(v):
                raise Impossible(f"{here} must be a finite number, got {show(v)}")
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= MAX_MAGNITUDE:
                raise Impossible(f"{here} must be below 2^63 in magnitude, got {show(v)}")
            if isinstance(v, dict):
                stack += [(k, f"{here} (a key)", level + 1) for k in v]
                stack += [(x, f"{here}.{k}", level + 1) for k, x in v.items()]
            elif isinstance(v, list):
                stack += [(x, f"{here}[{i}]", level + 1) for i, x in enumerate(v)]


def value_at(data: Any, path: str) -> Any:
    """The value at dotted ``path`` of nested objects, None where any step is missing."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _unicode(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (JSON's \\ud800 escapes decode to lone surrogates,
    which no file or font takes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _items(rule: Rule) -> Rule:
    """The rule of a list's or dict's items: its bounds."""
    return Rule(low=rule.low, high=rule.high)


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _range(rule: Rule) -> str:
    bounds = [f">= {_bound(rule.low)}" if rule.low is not None else "",
              f"<= {_bound(rule.high)}" if rule.high is not None else ""]
    text = " and ".join(b for b in bounds if b)
    return f" {text}" if text else ""


def check(cls: type, data: dict[str, Any], kind: str) -> tuple[str | None, list[str]]:
    """Why the JSON object ``data`` of dataclass ``cls``, a record of ``kind``, is impossible
    (None when it is usable), and its implausible figures (flags)."""
    checker = Checker(data, kind)
    try:
        checker.part(cls, data, "")
    except Impossible as e:
        return str(e), []
    return None, checker.flags
