"""The property of issue 26: any record that ``store.append`` accepts is read back by
``report``, ``compare``, ``ingest`` and ``project --from-results`` without a warning or a
traceback. Records are drawn from the parts' own annotations (every field of every part, any
value of its type, null where the type admits it), so that a field added to a part is drawn
too; ``store.append`` stores them as they come (an impossible figure as a failed run, an
implausible one flagged) or refuses one whose identity is unusable."""

from __future__ import annotations

import json
import math
import typing
import warnings
from dataclasses import fields, is_dataclass, replace
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bench.inputs.config import RunConfig
from bench.records import bandwidth, store, validate
from bench.records.record import (
    COLLECTIVES,
    COMM_KIND,
    RUN_ID_PATTERN,
    STATUSES,
    TRAINING,
    Record,
    RecordError,
)
from bench.records.validate import Rule
from tests.conftest import bench_json, invoke


def rarely(common: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``rare`` one draw in ten, else ``common``."""
    return st.integers(0, 9).flatmap(lambda k: rare if k == 0 else common)


text = st.text(max_size=12)
EXTREME = [0, 1e308, -1.0, 2**63, 7.5, 1.6e10, float("nan"), float("inf")]
ints = rarely(st.integers(1, 10**12), st.sampled_from([0, -1, 2**63, 10**30]))
numbers = rarely(st.integers(1, 10**6) | st.floats(1e-6, 1e15), st.sampled_from(EXTREME))
CLEAN = {int: st.integers(1, 10**9), float: st.integers(1, 10**6) | st.floats(1e-6, 1e12),
         str: text, bool: st.booleans()}  # a value no rule refuses (an ok record that stays ok)
ANY = {int: ints, float: numbers, str: text, bool: st.booleans()}


def json_values(scalars: dict[type, st.SearchStrategy]) -> st.SearchStrategy:
    leaves = st.none() | scalars[bool] | scalars[float] | scalars[str]
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(text, inner, max_size=3), max_leaves=6)


def of_type(tp: Any, rule: Rule = validate.NO_RULE, conditions: tuple[str, ...] = (),
            scalars: dict[type, st.SearchStrategy] = ANY) -> st.SearchStrategy:
    """Any value of annotation ``tp`` with scalars drawn from ``scalars`` (of plain values,
    CLEAN, within the field's rule too); null too where the type admits it, unless the rule
    requires it in records that meet ``conditions`` (a status, a kind, both)."""
    nullable, members = validate.optional(tp)
    (tp,) = members
    origin = typing.get_origin(tp)
    clean = scalars is CLEAN
    if tp is Any:
        value = json_values(scalars)
    elif isinstance(tp, type) and is_dataclass(tp):
        value = part(tp, conditions, scalars)
    elif origin is list:
        value = st.lists(of_type(typing.get_args(tp)[0], conditions=conditions, scalars=scalars),
                         min_size=rule.min_items or 0 if clean else 0, max_size=3)
    elif origin is dict:
        if rule.keys is not None:
            value = config(clean)
        else:
            value = st.dictionaries(text, of_type(typing.get_args(tp)[1], scalars=scalars),
                                    max_size=3)
    elif clean and rule.values:
        value = st.sampled_from(rule.values)
    elif clean and tp in (int, float) and rule.low is not None:
        value = st.integers(max(1, math.ceil(rule.low)), int(rule.high or 10**9))
    else:
        value = scalars[tp]
    required = rule.required is True or any(c in conditions for c in rule.required)
    return value if required or not nullable else st.none() | value


def part(cls: type, conditions: tuple[str, ...] = (),
         scalars: dict[type, st.SearchStrategy] = ANY) -> st.SearchStrategy:
    hints = validate.hints(cls)
    return st.builds(cls, **{f.name: of_type(hints[f.name], Rule.of(f), conditions, scalars)
                             for f in fields(cls) if f.name != "extra"})


def config(clean: bool) -> st.SearchStrategy:
    """A record's config: RunConfig's fields with values in their limits; unless ``clean``,
    sometimes any values of their types, some keys left out."""
    hints = validate.hints(RunConfig)
    valid = {"model": st.sampled_from(["tiny", "1b", "gone-model"]), "backend": st.just("cpu"),
             "precision": st.sampled_from(["fp32", "bf16"])}
    for f in fields(RunConfig):
        limits = f.metadata["option"].limits
        if f.name not in valid and limits is not None:
            high = min(limits.high or 2**31, 2**31)
            valid[f.name] = st.integers(int(limits.low or 0) + 1, high) if limits.integer \
                else st.floats(limits.low or 0, high, exclude_min=True)
    drawn = {name: valid.get(name, of_type(hints[name])) for name in hints}
    ok_keys = ("model", "backend", "batch", "seq", "precision")
    within = st.fixed_dictionaries({k: valid[k] for k in ok_keys},
                                   optional={k: v for k, v in drawn.items() if k not in ok_keys})
    anything = st.fixed_dictionaries({}, optional={k: of_type(hints[k]) for k in hints})
    return within if clean else rarely(within, anything)


run_ids = st.from_regex(RUN_ID_PATTERN, fullmatch=True)


def record(status: str, kind: str, scalars: dict[type, st.SearchStrategy]
           ) -> st.SearchStrategy:
    conditions = (status, kind, f"{status} {kind}")
    drawn = {f.name: of_type(validate.hints(Record)[f.name], Rule.of(f), conditions, scalars)
             for f in fields(Record) if f.name not in ("extra", "run_id", "status",
                                                       "schema_version")}
    if kind == COLLECTIVES:  # trnbench comm's config (bench.comm.config), kind comm
        drawn["config"] = st.fixed_dictionaries(
            {"kind": st.just(COMM_KIND), "backend": st.just("cpu")},
            optional={"ops": st.lists(st.sampled_from(bandwidth.OPS), max_size=2),
                      "warmup": st.integers(0, 5)})
    return st.builds(Record, run_id=rarely(run_ids, st.sampled_from(["", "../x", "[/]"])),
                     status=st.just(status), **drawn)


def consistent(r: Record) -> Record:
    """``r`` with the derived figures whose inputs are null set to null too (``Rule.needs``):
    a record of plain values that stays ok."""
    data = r.to_json()
    nulled = {f.name: None for f in fields(Record) if getattr(r, f.name) is not None
              and any(validate.value_at(data, p) is None for p in Rule.of(f).needs)}
    return replace(r, **nulled)


# training and collectives records (config.kind comm), ok ones more often; half of them of
# plain values (most of them stay ok), half of any values
records = st.tuples(st.sampled_from(["ok", "ok", *STATUSES]),
                    st.sampled_from([TRAINING, TRAINING, COLLECTIVES])).flatmap(
    lambda sk: record(*sk, CLEAN).map(consistent) | record(*sk, ANY))


def _stored(path, drawn: list[Record]) -> list[Record]:
    stored = []
    for i, record in enumerate(drawn):
        record = record.__class__(**{**{f.name: getattr(record, f.name) for f in fields(record)},
                                     "run_id": f"{record.run_id[:60]}{i}"})
        try:
            stored.append(store.append(path, record))
        except RecordError:  # an unusable identity: refused, nothing written
            continue
    return stored


def _clean(proc, *argv: str, refused: bool = False) -> None:
    """Exit 0 without a warning; with ``refused``, exit 2 with one error line is allowed."""
    if refused and proc.returncode == 2:
        assert len(proc.stderr.splitlines()) == 1, (argv, proc.stderr)
        assert proc.stderr.startswith("trnbench: error: "), (argv, proc.stderr)
        return
    assert proc.returncode == 0, (argv, proc.stderr)
    # a reader's warning (a line skipped, a run counted once); the report's own notes on the
    # figures ("warning: fewer than 3 runs ...") are not about reading
    assert "trnbench: warning" not in proc.stderr and "Traceback" not in proc.stderr, \
        (argv, proc.stderr)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(records, min_size=1, max_size=4))
def test_every_stored_record_is_read_back_cleanly(tmp_path_factory, drawn):
    work = tmp_path_factory.mktemp("prop")
    path = work / "r.jsonl"
    stored = _stored(path, drawn)
    assume(stored)
    event(f"ok records stored: {sum(r.status == 'ok' for r in stored)}")
    event(f"flagged: {any(r.flags for r in stored)}")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["run_id"] for d in lines] == [r.run_id for r in stored]
    env = {"TRNBENCH_CACHE_DIR": str(work)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning (pandas, matplotlib) fails the test
        argv = ("report", str(path), "--out", str(work / "report"))
        _clean(invoke(*argv, cwd=work, env=env), *argv)
        (work / "b.json").write_text(bench_json())
        argv = ("ingest", "b.json", "--results", str(path))
        _clean(invoke(*argv, cwd=work, env=env), *argv)
        for r in stored:  # compare and project select ok training runs (report shows all)
            if r.status != "ok" or r.is_comm:
                continue
            argv = ("compare", "--results", str(path), "--baseline", r.run_id, "--target",
                    r.run_id, "--json")
            _clean(invoke(*argv, cwd=work, env=env), *argv)
            argv = ("project", "--workload", "claude-2", "--cluster", "rainier",
                    "--from-results", str(path), "--run-id", r.run_id, "--json")
            # a run without an MFU, or with one above 1, is refused with one error line
            _clean(invoke(*argv, cwd=work, env=env), *argv,
                   refused=r.mfu is None or r.mfu > 1)
