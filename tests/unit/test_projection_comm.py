"""`trnbench project --comm-from`: measured bus bandwidths in place of the datasheet links,
labelled measured with their record ids, the step time they give pinned by hand arithmetic,
and the records it refuses (another device without --allow-other-device, none at all, a link
also given by a flag)."""

from __future__ import annotations

import json

import pytest

from bench.comm import result
from bench.projection import calibration, presets, workload
from bench.records import store
from bench.records.record import Device, Record
from models import registry

# a tiny workload on 2 trn2 nodes, the plan pinned: TP 2 inside a node, DP 16 across
PROJECT = ("project", "--model", "tiny", "--tokens", "1e9", "--hardware", "trn2", "--chips",
           "32", "--node-mfu", "0.4", "--tp", "2", "--pp", "1", "--recompute", "none")
SIZES = (2**20, 2**21, 2**22)


def _record(op: str, gbs: float, ranks: int, nodes: int, device: Device) -> Record:
    """A collectives record whose every point has busbw ``gbs`` (time from S by hand)."""
    factor = {"all_reduce": 2 * (ranks - 1) / ranks, "reduce_scatter": (ranks - 1) / ranks}[op]
    points = [result.point(op, ranks, s, s // 4, s / (gbs * 1e9 / factor) * 1e6) for s in SIZES]
    return Record.new({"kind": "comm", "backend": "x"}, {}, world_size=ranks, nodes=nodes,
                      device=device, comm=result.part(tool="trnbench", method="m", dtype="fp32",
                                                      ranks=ranks, nodes=nodes, points=points,
                                                      device_kind=device.kind))


CPU = Device(name="AMD EPYC", kind="cpu")
TRN2 = Device(name="AWS Trainium2 NeuronCore", kind="trn2")


@pytest.fixture
def fabric(tmp_path):
    """A CPU's intra-node all-reduce at 2 GB/s and a 2-node reduce-scatter at 100 GB/s."""
    path = tmp_path / "comm.jsonl"
    intra, inter = _record("all_reduce", 2.0, 2, 1, CPU), _record("reduce_scatter", 100.0, 32,
                                                                  2, CPU)
    for r in (intra, inter):
        store.append(path, r)
    return path, intra.run_id, inter.run_id


def _project(cli_main, *args: str) -> dict:
    proc = cli_main(*PROJECT, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_measured_links_replace_the_datasheet_and_the_step_by_hand(cli_main, fabric):
    path, intra_id, inter_id = fabric
    datasheet = _project(cli_main)
    out = _project(cli_main, "--comm-from", str(path), "--allow-other-device")
    inputs = {r["name"]: r for r in out["inputs"]}
    intra, inter = (inputs["intra-node bandwidth per chip"],
                    inputs["inter-node (EFA) bandwidth per node"])
    assert (intra["value"], intra["label"]) == (pytest.approx(2e9), "measured")
    assert (inter["value"], inter["label"]) == (pytest.approx(100e9), "measured")
    assert intra["source"].startswith(f"run {intra_id}: trnbench all_reduce busbw plateau 2 GB/s")
    assert out["bandwidths"]["intra"]["runs"] == [intra_id]
    assert out["bandwidths"]["inter"]["runs"] == [inter_id]
    assert datasheet["bandwidths"]["intra"]["label"] == "assumption"  # NeuronLink, each way
    plan, step = out["plan"], out["plan"]["step"]
    assert (plan["tp"], plan["dp"], plan["sharding"]) == (2, 16, "zero1")
    shape = registry.get("tiny")
    seq, dim, layers = shape.seq_len, shape.config.dim, shape.config.n_layers
    m = plan["micro_batches"]
    # TP: m micro-batches x L layers x 4 all-reduces of T x d bf16 values at 2 GB/s, x 2(2-1)/2
    tp_s = m * layers * 4 * (seq * dim * 2 / 2e9) * 2 * (2 - 1) / 2
    assert step["tp_s"] == pytest.approx(tp_s)  # measured: no link share applied again
    # the datasheet's 1,024 GB/s NeuronLink at the calibrated achieved share of a link
    share = calibration.CONSTANTS.link_efficiency
    assert datasheet["plan"]["step"]["tp_s"] == pytest.approx(tp_s * 2e9 / (1024e9 * share))
    # DP over EFA (32 chips > 16 per node): 100 GB/s per node / 16 chips; ZeRO-1 is a
    # reduce-scatter of the gradients (the default gradient bytes) and an all-gather of the
    # 2-byte parameters over TP 2, a calibrated share of it hidden behind compute
    params = workload.resolve(model="tiny", workload=None, params=None, flops=None,
                              tokens=1e9, seq=None, shape=None).shape.params
    per_chip = 100e9 / 16
    grad = presets.DEFAULTS["grad_reduce"].value
    one = params / 2 / per_chip * (16 - 1) / 16
    hidden = calibration.CONSTANTS.dp_overlap
    assert step["dp_s"] == pytest.approx((grad + 2) * one * (1 - hidden))
    assert step["total_s"] > datasheet["plan"]["step"]["total_s"]


def test_the_headline_says_which_links_were_measured(cli_main, fabric):
    path, intra_id, inter_id = fabric
    proc = cli_main(*PROJECT, "--comm-from", str(path), "--allow-other-device")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert f"intra-node 2 GB/s per chip [measured: run {intra_id}]" in text
    assert f"inter-node 100 GB/s per node [measured: run {inter_id}]" in text
    assert "the intra-node bandwidth was measured on AMD EPYC, not on the AWS Trainium2" in text


def test_the_projected_chips_own_records_need_no_permission(cli_main, tmp_path):
    path = tmp_path / "comm.jsonl"
    mine = _record("all_reduce", 500.0, 64, 1, TRN2)
    for r in (_record("all_reduce", 2.0, 128, 1, CPU), mine):  # more ranks, another device
        store.append(path, r)
    out = _project(cli_main, "--comm-from", str(path))
    assert out["bandwidths"]["intra"]["runs"] == [mine.run_id]
    assert out["bandwidths"]["intra"]["value"] == pytest.approx(500e9)
    assert out["bandwidths"]["inter"]["label"] == "datasheet"  # no inter-node record
    assert out["bandwidths"]["inter"]["runs"] == []


@pytest.mark.parametrize(("extra", "flag", "why"), [
    ((), "--comm-from", "was measured on AMD EPYC, not on the projected AWS Trainium2; "
                        "--allow-other-device uses it"),
    (("--allow-other-device", "--intra-node-gbs", "100"), "--intra-node-gbs",
     "and --comm-from both give this link's bandwidth"),
])
def test_refused(cli_main, fabric, extra, flag, why):
    proc = cli_main(*PROJECT, "--comm-from", str(fabric[0]), *extra)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"trnbench: error: {flag}: " in proc.stderr and why in proc.stderr


def test_a_file_without_collectives_is_refused(cli_main, tmp_path):
    empty = tmp_path / "none.jsonl"
    store.append(empty, Record.new({"kind": "comm"}, {}).failed("rank 1 failed"))
    proc = cli_main(*PROJECT, "--comm-from", str(empty))
    assert proc.returncode == 2 and "holds no ok collectives record" in proc.stderr
    proc = cli_main(*PROJECT, "--allow-other-device")
    assert "--allow-other-device: applies to --scaling-from and --comm-from" in proc.stderr
