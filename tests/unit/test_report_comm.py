"""`trnbench report` of collectives records (in this process): the plateau of each line by
hand arithmetic against its datasheet bandwidth, repeats pooled per size, the bandwidth plot
and the Collectives section, failed runs among the failed, and no training row made of
them (report.html in a browser: tests/integration/test_report_comm_browser.py)."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from bench.comm import ingest, result
from bench.records import store
from bench.records.record import Comm, Device, Record
from bench.report import comm
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "comm"


def _trnbench_run(times_us: dict[int, float]) -> Record:
    """A 2-rank all_reduce record of trnbench comm with these times per size."""
    points = [result.point("all_reduce", 2, size, size // 4, t) for size, t in times_us.items()]
    return Record.new({"kind": "comm", "backend": "cpu"}, {"host": "h"}, world_size=2, nodes=1,
                      device=Device(name="AMD EPYC", kind="cpu"),
                      comm=result.part(tool="trnbench", method="m", dtype="fp32", ranks=2,
                                       nodes=1, points=points, device_kind="cpu"))


@pytest.fixture
def comm_results(tmp_path):
    results = tmp_path / "r.jsonl"
    for name in ("all_reduce_perf_2.19.6_g8.txt", "all_reduce_perf_2.19.6_2nodes.txt"):
        for r in ingest.records(FIXTURES / name, "nccl-tests", ingest.Given()):
            store.append(results, r)
    # two runs of one line: each size's median over them, then the plateau
    store.append(results, _trnbench_run({1024: 10.0, 2048: 10.0, 4096: 20.0, 8192: 40.0}))
    store.append(results, _trnbench_run({1024: 10.0, 2048: 30.0, 4096: 40.0, 8192: 20.0}))
    store.append(results, Record.new({"kind": "comm", "backend": "cpu"}, {}).failed(
        "rank 1 failed: killed by SIGKILL (torchrun exit code 1)"))
    return results


def test_collectives_are_a_section_of_their_own(cli_main, tmp_path, comm_results):
    out = tmp_path / "out"
    proc = cli_main("report", str(comm_results), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"report.md", "report.html", "report.csv",
                                                "comm.csv", "comm_busbw.png", "failed.csv"}
    assert (out / "comm_busbw.png").read_bytes().startswith(b"\x89PNG")
    md = (out / "report.md").read_text()
    assert "No ok runs." in md  # no training row is made of a collectives record
    assert "## Collectives (large-message plateau of each line)" in md
    assert "![Collectives: bus bandwidth" in md and "(comm_busbw.png)" in md
    runs = pd.read_csv(out / "comm.csv")["runs"]
    assert (runs < 3).all()  # one run a line: the table warns, as the results table does
    assert md.count("**Warning**: fewer than 3 runs: ") == 1 and "(n = 1)" in md
    failed = pd.read_csv(out / "failed.csv")
    assert list(failed["model"]) == ["collectives (comm)"]
    assert "trnbench report: collectives, 3 lines" in proc.stdout


def test_the_plateau_of_each_line_by_hand(cli_main, tmp_path, comm_results):
    out = tmp_path / "out"
    assert cli_main("report", str(comm_results), "--out", str(out)).returncode == 0
    table = pd.read_csv(out / "comm.csv").set_index(["ranks", "tool"])
    one = table.loc[(8, "nccl-tests")]
    # the three largest sizes of all_reduce_perf -g 8: busbw = S / t x 2 x 7 / 8
    by_hand = statistics.median(s / (t * 1e-6) / 1e9 * 1.75 for s, t in (
        (33554432, 221.38), (67108864, 418.76), (134217728, 813.52)))
    assert one["plateau_busbw_gbs"] == pytest.approx(by_hand)  # 280.45 GB/s
    assert (one["plateau_from_bytes"], one["plateau_to_bytes"]) == (33554432, 134217728)
    assert (one["link"], one["reference_gbs"], one["reference_label"]) == ("intra-node", 450.0,
                                                                          "datasheet")
    assert one["of_reference"] == pytest.approx(by_hand / 450)
    two = table.loc[(16, "nccl-tests")]
    assert (two["nodes"], two["link"], two["reference_gbs"]) == (2, "inter-node", 400.0)
    mine = table.loc[(2, "trnbench")]
    # sizes 2048, 4096, 8192: median times over the two runs give busbw (factor 1)
    medians = [statistics.median([s / (t * 1e-6) / 1e9 for t in ts])
               for s, ts in ((2048, (10.0, 30.0)), (4096, (20.0, 40.0)), (8192, (40.0, 20.0)))]
    assert mine["plateau_busbw_gbs"] == pytest.approx(statistics.median(medians))
    assert mine["runs"] == 2 and pd.isna(mine["reference_gbs"])


def test_a_record_of_one_point_has_a_plateau_of_it():
    r = Record.new({"kind": "comm"}, {}, device=Device(name="x", kind="cpu"), comm=Comm(
        tool="trnbench", ranks=2, nodes=1, one_node=True, points=[
            result.point("send_recv", 2, 64, 16, 1.0)]))
    frame = pd.json_normalize([r.to_json()], sep=".")
    table = comm.plateaus(comm.points(frame))
    assert table["plateau_busbw_gbs"].tolist() == [pytest.approx(0.064)]


def test_compare_leaves_collectives_records_out(cli_main, comm_results):
    """They have no throughput: a query that selects only them selects no run."""
    proc = cli_main("compare", "--results", str(comm_results), "--baseline", "device.kind=cpu",
                    "--target", "device.kind=h100")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--baseline: 'device.kind=cpu' selects no ok runs" in proc.stderr
