"""The record type: version-1 lines upgrade to the same figures, JSON round trips, the failed
constructor, and the schema in docs/methodology.md generated from the dataclasses."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.records import record as rec
from bench.records import store
from bench.records.record import Device, Energy, Model, Peak, Record, RecordError, StepTime
from tests.conftest import OK_CONFIG

ROOT = Path(__file__).resolve().parents[2]
# the published results (results/<device>/), not a user's own results/local.jsonl
PUBLISHED = sorted((ROOT / "results").glob("*/**/*.jsonl"))


def _v1_lines() -> list[dict]:
    """The version-1 lines of the published results."""
    lines = [json.loads(line) for p in PUBLISHED for line in p.read_text().splitlines() if line]
    return [d for d in lines if d.get("schema_version") == 1]


def _like(new, old):
    """``new`` with only the keys ``old`` has (version 2 adds null fields an older line
    lacks), recursively."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _like(new.get(k), v) for k, v in old.items()}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_like(n, o) for n, o in zip(new, old, strict=True)]
    return new


def test_stored_v1_lines_upgrade_to_the_same_figures():
    lines = _v1_lines()
    assert lines
    for d in lines:
        r = Record.from_json(d)
        out = r.to_json()
        assert out["schema_version"] == 2
        assert not {"precision_mode", "compiles_warmup", "compiles_timed"} & set(out)
        assert r.precision.mode == d["precision_mode"]
        assert r.compilation is None or (r.compilation.warmup_graphs, r.compilation.timed_graphs
                                         ) == (d["compiles_warmup"], d["compiles_timed"])
        same = ("tokens_per_s", "tokens_per_s_per_chip", "mfu", "window_s", "losses",
                "step_time", "energy", "device", "model", "peak", "memory", "ranks")
        assert {k: _like(out.get(k), d.get(k)) for k in same} == {k: d.get(k) for k in same}
        assert not any(w.startswith(rec.FLAG_PREFIX) for w in out.get("warnings", []))
        assert Record.from_json(out) == r  # version 2 reads back as it was written


def test_every_published_record_passes_the_readers_checks():
    """The store's checks (bench.records.validate) skip no record a trnbench run published:
    what earlier versions wrote stays readable."""
    lines = [(p.name, i, json.loads(line)) for p in PUBLISHED
             for i, line in enumerate(p.read_text().splitlines(), 1) if line]
    assert len(lines) > 20
    assert [(name, i, rec.problem(rec.upgrade(d))) for name, i, d in lines
            if rec.problem(rec.upgrade(d))] == []


def test_store_reads_v1_and_v2_alike(tmp_path):
    lines = _v1_lines()[:2]
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(lines[0]) + "\n")
    store.append(path, Record.from_json(lines[1]))
    read = list(store.read(path))
    assert [r.run_id for r in read] == [d["run_id"] for d in lines]
    frame = store.load(path)
    assert "precision_mode" not in frame and list(frame["schema_version"]) == [2, 2]
    assert list(frame["precision.mode"]) == [d["precision_mode"] for d in lines]


def test_failed_keeps_identity_and_drops_figures():
    ok = Record.new({"model": "tiny"}, {"host": "h"}, {"sweep": "s"}, run_id="abc",
                    world_size=2, tokens_per_s=5.0)
    failed = ok.failed("RuntimeError: boom")
    assert (failed.run_id, failed.time, failed.tags, failed.world_size) == \
        ("abc", ok.time, {"sweep": "s"}, 2)
    assert (failed.status, failed.error, failed.tokens_per_s) == \
        ("failed", "RuntimeError: boom", None)
    assert ok.failed("interrupted by SIGINT", "interrupted", world_size=4).world_size == 4
    with pytest.raises(ValueError, match="failed or interrupted"):
        ok.failed("x", "ok")
    assert Record.from_json(failed.to_json()) == failed


def test_start_names_the_selected_backend_and_failed_keeps_it():
    from bench.backends import selection

    selection = selection.select("cpu")
    start = Record.start({"model": "tiny"}, selection, {"host": "h"}, {"k": "v"}, run_id="abc",
                         world_size=1)
    assert start.backend.to_json() == {"name": "cpu", "reason": selection.reason,
                                       "dist_backend": "gloo"}
    assert (start.run_id, start.tags, start.environment, start.status) == \
        ("abc", {"k": "v"}, {"host": "h"}, "ok")
    assert start.failed("x").backend == start.backend


def test_unknown_keys_survive_and_bad_ones_are_named():
    r = Record.new(OK_CONFIG, {}, tokens_per_s=1.0, extra={"later_field": [1]})
    data = {**r.to_json(), "device": {"name": "d", "kind": "cpu", "new": 1}}
    back = Record.from_json(data)
    assert back.extra == {"later_field": [1]} and back.device.extra == {"new": 1}
    assert back.to_json()["device"]["new"] == 1
    with pytest.raises(RecordError, match="device must be an object"):
        Record.from_json({**data, "device": "cpu"})


def test_energy_and_throughput_figures():
    e = Energy.of(1000, method="rapl", joules=36.0, interval_s=2.0)
    assert (e.j_per_token, e.tokens_per_kwh, e.avg_power_w) == (0.036, 1000 / 1e-5, 18.0)
    assert Energy.of(10, method="null", joules=None, reason="no sensor").j_per_token is None
    t = rec.Throughput.of(1000, 2.0, 4, Model(flops_per_token=6.0, hardware_flops_per_token=8.0),
                          Peak(value=1000.0))
    assert (t.tokens_per_s, t.tokens_per_s_per_chip, t.mfu, t.hfu) == (500.0, 125.0, 0.75, 1.0)


finite = st.just(0.0) | st.floats(1e-6, 1e12)  # no float overflows to inf in a ratio
maybe = st.none() | finite
counts = st.integers(1, 2**62)  # a record's numbers stay below 2^63
records = st.builds(
    Record.new, config=st.fixed_dictionaries({**{k: st.just(v) for k, v in OK_CONFIG.items()},
                                              "model": st.text(min_size=1)}),
    environment=st.dictionaries(st.text(), st.text(), max_size=2),
    tags=st.dictionaries(st.text(), st.text(), max_size=2),
    status=st.sampled_from(["ok"]), tokens_per_s=finite, mfu=maybe, tokens=counts,
    peak=st.just(Peak(value=1e15)), model=st.just(Model(flops_per_token=1e9)),
    device=st.builds(Device, name=st.text(), kind=st.text(), chips=st.none() | counts),
    step_time=st.none() | st.builds(StepTime, median_s=maybe, method=st.text()),
    # tokens/kWh of up to 1e9 tokens on 1 mJ: 3.6e18, below 2^63
    energy=st.none() | st.builds(Energy.of, st.integers(1, 10**9), method=st.text(),
                                 joules=st.none() | st.floats(1e-3, 1e12), interval_s=maybe),
    warnings=st.none() | st.lists(st.text(), max_size=3))


@settings(max_examples=60, deadline=None)
@given(records)
def test_json_round_trip(r):
    line = store.dumps(r)
    assert Record.from_json(json.loads(line)) == r


def test_schema_in_the_docs_is_generated():
    text = (ROOT / "docs" / "methodology.md").read_text()
    found = re.search(r"<!-- record-schema:start.*?-->\n(.*?)<!-- record-schema:end -->", text,
                      re.S)
    assert found, "docs/methodology.md lacks the record-schema markers"
    assert found.group(1) == rec.schema(), \
        "the record schema changed: paste `python -m bench.records.record --schema` into " \
        "docs/methodology.md between the record-schema markers"


def _rank(host: str, tokens: int, window: float, energy: Energy | None) -> Record:
    return Record.new(
        {"model": "tiny"}, {"host": host}, tokens=tokens, window_s=window,
        tokens_per_s=tokens / window, device=Device(chips=0.25), peak=Peak(value=667e12),
        memory=rec.Memory(peak_bytes=7),
        model=Model(flops_per_token=6e9, hardware_flops_per_token=8e9),
        step_time=StepTime(median_s=window / 10), step_times_s=[window / 10] * 10,
        loss_first=2.0, loss_last=1.0, losses=[2.0, 1.0], warnings=[], energy=energy)


def _energy(method: str, devices: dict) -> Energy:
    return Energy(method=method, joules=sum(devices.values()), device_joules=devices)


def test_aggregate_by_hand():
    # 4 ranks on 2 hosts; on each host two ranks share Neuron device 0 (one chip)
    per_rank = [
        _rank("a", 1000, 2.0, _energy("neuron-power-utilization", {"neuron0": 100.0})),
        _rank("a", 1000, 2.5, _energy("neuron-power-utilization", {"neuron0": 100.0})),
        _rank("b", 1000, 2.0, _energy("neuron-power-utilization", {"neuron0": 120.0})),
        _rank("b", 1000, 2.0, _energy("neuron-power-utilization", {"neuron0": 120.0})),
    ]
    out = Record.aggregate(per_rank)
    assert (out.world_size, out.nodes, out.tokens, out.window_s) == (4, 2, 4000, 2.5)
    assert out.tokens_per_s == 1600 and out.device.chips == 1.0
    assert out.tokens_per_s_per_chip == 1600
    assert out.mfu == pytest.approx(6e9 * 1600 / 667e12)
    assert out.hfu == pytest.approx(8e9 * 1600 / 667e12)  # with recomputation
    assert out.energy.joules == 220.0  # each host's chip once
    assert out.energy.j_per_token == 220.0 / 4000
    assert out.energy.avg_power_w == 220.0 / 2.5
    assert [r.rank for r in out.ranks] == [0, 1, 2, 3]
    assert [r.host for r in out.ranks] == ["a", "a", "b", "b"]


def test_aggregate_counts_tp_tokens_once_and_cpu_chips_per_host():
    tp = [replace(_rank("a", 1000, 2.0, None), parallelism=rec.Parallelism(tp=2),
                  device=Device(kind="cpu", chips=1)) for _ in range(4)]
    out = Record.aggregate(tp)
    assert out.tokens == 2000 and out.device.chips == 1  # one CPU host: one chip
    assert out.mfu == pytest.approx(6e9 * 1000 / (667e12 * 4))  # every rank's share


def test_aggregate_modelled_energy_sums_ranks_and_null_stays_null():
    modelled = [_rank("a", 10, 1.0, _energy("modelled", {"trn2": 5.0})) for _ in range(2)]
    assert Record.aggregate(modelled).energy.joules == 10.0
    null = Energy(method="rapl", joules=None, reason="no sensor")
    mixed = [_rank("a", 10, 1.0, null), _rank("a", 10, 1.0, _energy("rapl", {"p0": 1.0}))]
    assert Record.aggregate(mixed).energy.joules is None


def test_a_v1_line_without_a_precision_block_keeps_its_precision_mode():
    line = {"schema_version": 1, "run_id": "early", "status": "ok", "config": OK_CONFIG,
            "device": {"name": "cpu", "kind": "cpu"}, "tokens_per_s": 1.0,
            "precision_mode": "fp32: fp32 parameters and compute"}
    r = Record.from_json(line)
    assert r.precision.mode == line["precision_mode"]
    assert r.to_json()["precision"]["mode"] == line["precision_mode"]
