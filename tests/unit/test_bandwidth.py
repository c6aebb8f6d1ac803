"""Bus bandwidths against hand arithmetic, the large-message plateau, and the collectives
record: what its JSON holds and what readers refuse."""

from __future__ import annotations

import json
import re

import pytest

from bench.records import bandwidth, store
from bench.records.record import Comm, CommPoint, Device, Record, RecordError, problem


@pytest.mark.parametrize(("op", "ranks", "factor"), [
    ("all_reduce", 2, 1.0), ("all_reduce", 4, 1.5), ("all_reduce", 8, 1.75),
    ("all_gather", 2, 0.5), ("all_gather", 4, 0.75), ("reduce_scatter", 32, 31 / 32),
    ("all_to_all", 4, 0.75), ("send_recv", 2, 1.0), ("send_recv", 64, 1.0)])
def test_busbw_factors_are_nccl_tests(op, ranks, factor):
    assert bandwidth.busbw_factor(op, ranks) == factor


def test_bandwidths_by_hand():
    # 4 MiB in 1000 us: 4194304 B / 1e-3 s = 4.194304 GB/s; all-reduce on 4 ranks x 1.5
    assert bandwidth.algbw_gbs(4 * 2**20, 1000.0) == pytest.approx(4.194304)
    assert bandwidth.busbw_gbs("all_reduce", 4, 4 * 2**20, 1000.0) == pytest.approx(6.291456)
    # nccl-tests' own row (all_reduce_perf -g 8): 134217728 B in 813.52 us
    assert bandwidth.algbw_gbs(134217728, 813.52) == pytest.approx(164.98, abs=0.005)
    assert bandwidth.busbw_gbs("all_reduce", 8, 134217728, 813.52) == pytest.approx(
        288.72, abs=0.01)


def test_plateau_is_the_median_of_the_three_largest_sizes():
    points = [(1024, 0.1), (2048, 9.0), (4096, 3.0), (8192, 5.0), (8192, 7.0), (16384, 4.0)]
    # sizes 4096 (3.0), 8192 (median of 5 and 7: 6.0), 16384 (4.0) -> median 4.0
    assert bandwidth.plateau(points) == (4.0, [4096, 8192, 16384])
    assert bandwidth.plateau([(8, 1.0)]) == (1.0, [8])
    with pytest.raises(ValueError):
        bandwidth.plateau([])


def _comm_record(**point) -> Record:
    p = {"op": "all_reduce", "size_bytes": 1024, "count": 256, "time_us": 10.0,
         "algbw_gbs": 0.1024, "busbw_gbs": 0.1024, **point}
    return Record.new({"kind": "comm", "backend": "cpu"}, {"host": "h"}, world_size=2,
                      device=Device(name="cpu", kind="cpu"),
                      comm=Comm(tool="trnbench", ranks=2, nodes=1, one_node=True,
                                points=[CommPoint(**p)]))


def test_a_collectives_record_has_no_training_fields_and_reads_back():
    r = _comm_record()
    data = json.loads(store.dumps(r))
    assert "model" not in data and "tokens_per_s" not in data and "mfu" not in data
    assert data["comm"]["points"][0]["busbw_gbs"] == 0.1024
    assert Record.from_json(data) == r and r.is_comm
    failed = r.failed("rank 1 failed: killed by SIGKILL")
    assert problem(failed.to_json()) is None and failed.is_comm


@pytest.mark.parametrize(("change", "why"), [
    ({"op": "broadcast"}, "comm.points[0].op must be one of all_reduce"),
    ({"busbw_gbs": "fast"}, "comm.points[0].busbw_gbs must be a number >= 0"),
    ({"time_us": -1.0}, "comm.points[0].time_us must be a number >= 0")])
def test_readers_refuse_a_collectives_record_they_cannot_plot(change, why):
    with pytest.raises(RecordError, match=re.escape(why)):
        Record.from_json(_comm_record(**change).to_json())


def test_an_ok_collectives_record_needs_its_points():
    data = _comm_record().to_json()
    assert problem({**data, "comm": None}) == \
        "comm is missing or null (ok collectives records need it)"
    assert problem({**data, "comm": {**data["comm"], "points": []}}) == \
        "comm.points must hold at least 1 item(s), got 0"
    assert problem({**data, "comm": {**data["comm"], "ranks": 1}}) == \
        "comm.ranks must be an integer >= 2 or null, got 1"
    # a training record still needs its model
    assert problem({**data, "config": {}}) == \
        "config.model is missing or null (training records need it)"
