"""nccl-tests and nccom-test output into collectives records (``trnbench ingest``): the
fixtures of tests/fixtures/comm (made from the documented formats; examples, not
measurements) read to the tool's own figures within its rounding, the same measurement in
both tools' formats reads to the same points, and what a file does not say comes from flags
that may not contradict it."""

from __future__ import annotations

import json
import re

import pytest

from bench.comm import ingest, nccl_tests
from bench.inputs.errors import ConfigError
from tests.conftest import ROOT, read_jsonl

FIXTURES = ROOT / "tests" / "fixtures" / "comm"
NONE = ingest.Given()


def _one(name: str, fmt: str = "nccl-tests", given: ingest.Given = NONE):
    [record] = ingest.records(FIXTURES / name, fmt, given)
    return record


def _matches_the_tool(points, factor: float) -> None:
    """Recomputed algbw and busbw against the tool's two printed decimals (its time is
    rounded too: 0.005 us of 24 us at the least)."""
    for p in points:
        assert p.algbw_gbs == pytest.approx(p.tool_algbw_gbs, abs=0.006, rel=1e-3)
        assert p.busbw_gbs == pytest.approx(p.tool_busbw_gbs, abs=0.006, rel=1e-3)
        assert p.busbw_gbs == pytest.approx(p.algbw_gbs * factor)


def test_nccl_tests_2_19_6_one_node():
    r = _one("all_reduce_perf_2.19.6_g8.txt")
    c = r.comm
    assert (c.tool, c.ranks, c.nodes, c.one_node, c.dtype) == ("nccl-tests", 8, 1, True, "fp32")
    assert (c.warmup, c.iters, c.tool_version, c.tool_avg_busbw_gbs) == (5, 20, "2.19.6",
                                                                         66.7871)
    assert [p.size_bytes for p in c.points] == [2**k for k in range(3, 28)]
    assert all(p.count == p.size_bytes // 4 and p.wrong == 0 for p in c.points)
    _matches_the_tool(c.points, 2 * 7 / 8)
    last = c.points[-1]  # 134217728 B in 813.52 us, in place 801.31 us
    assert (last.time_us, last.in_place_time_us) == (813.52, 801.31)
    assert last.busbw_gbs == pytest.approx(134217728 / 813.52e-6 / 1e9 * 1.75)
    assert (r.device.name, r.device.kind, r.device.versions) == (
        "NVIDIA H100 80GB HBM3", "h100", {"nccl-tests": "2.19.6", "nccl": "2.29.7"})
    assert r.tags == {"source": "nccl-tests"} and r.environment == {"hosts": ["trnbench-0"]}
    assert (c.reference.link, c.reference.gbs, c.reference.label) == ("intra-node", 450.0,
                                                                      "datasheet")


def test_nccl_tests_2_17_layout_and_per_rank_counts():
    c = _one("all_gather_perf_2.17.1_g8.txt").comm
    assert (c.ops, c.tool_version, c.iters) == (["all_gather"], None, 20)
    # its count column is per rank: 1024 B of fp32 over 8 ranks is 32 each, 256 in all
    assert [(p.size_bytes, p.count) for p in c.points[:2]] == [(1024, 256), (2048, 512)]
    _matches_the_tool(c.points, 7 / 8)
    assert c.points[-1].time_us == 30.17


def test_nccl_tests_across_two_nodes():
    r = _one("all_reduce_perf_2.19.6_2nodes.txt")
    c = r.comm
    assert (c.ranks, c.nodes, c.one_node, r.world_size, r.nodes) == (16, 2, False, 16, 2)
    assert r.environment == {"hosts": ["trnbench-0", "trnbench-1"]}
    _matches_the_tool(c.points, 2 * 15 / 16)
    # per node, EFA: 3,200 Gbit/s of a p5.48xlarge
    assert (c.reference.link, c.reference.gbs) == ("inter-node", 400.0)


def test_both_tools_read_the_same_measurement_to_the_same_points():
    nccl = _one("all_reduce_perf_2.19.6_g8.txt").comm.points
    nccom = _one("nccom_allr_r8.json", "nccom-test",
                 ingest.Given(op="allr", ranks=8, device="h100")).comm.points
    figures = ("op", "size_bytes", "count", "time_us", "algbw_gbs", "busbw_gbs")
    assert [[getattr(p, f) for f in figures] for p in nccom] == \
        [[getattr(p, f) for f in figures] for p in nccl if p.size_bytes >= 2**20]


def test_nccom_test_documented_report():
    r = _one("nccom_allg_r32_doc.json", "nccom-test",
             ingest.Given(op="allg", ranks=32, device="trn2"))
    c = r.comm
    assert (c.tool, c.ops, c.ranks, c.nodes, c.dtype, c.warmup) == ("nccom-test", ["all_gather"],
                                                                     32, 1, "fp32", None)
    assert (r.device.name, r.device.kind) == ("AWS Trainium2", "trn2")
    # its JSON is unrounded and 1e9-based; its time has two decimals (6.19 us: 0.08%)
    for p in c.points:
        assert p.algbw_gbs == pytest.approx(p.tool_algbw_gbs, rel=1e-3)
        assert p.busbw_gbs == pytest.approx(p.algbw_gbs * 31 / 32)
    assert c.points[0].busbw_gbs == pytest.approx(1024 / 6.19e-6 / 1e9 * 31 / 32)
    assert c.reference.link == "intra-node" and r.warnings == [
        "nccom-test's report names no op, ranks, nodes or device: they are trnbench ingest's "
        "--op, --ranks, --nodes and --device"]


def test_a_tool_busbw_in_other_units_is_said(tmp_path):
    """nccom-test's older examples print GiB/s: 33554432 B in 768 us -> 40.69."""
    data = {"results": [{"size(B)": 33554432, "count(elems)": 33554432, "type": "uint8",
                         "time(us)": 768, "algbw(GB/s)": 40.69, "busbw(GB/s)": 40.69}]}
    path = tmp_path / "old-nccom.json"
    path.write_text(json.dumps(data))
    [r] = ingest.records(path, "nccom-test", ingest.Given(op="allr", ranks=2, device="trn2"))
    assert r.comm.points[0].busbw_gbs == pytest.approx(43.69, abs=0.01)
    assert r.warnings[0].startswith("nccom-test's own busbw differs from S / time x factor by "
                                    "up to 6.9%")


PER_ITERATION = """\
# nThread 1 nGpus 2 minBytes 1024 maxBytes 1024 step: 2(factor) warmup iters: 1 iters: 20 agg iters: 1 validation: 1 graph: 0 unalign: 0
#       size         count      type   redop    root     time   algbw   busbw  #wrong   i_min   i_max   i_p99  i_cv%     time   algbw   busbw  #wrong   i_min   i_max   i_p99  i_cv%  timestamp
        1024           256     float     sum      -1    10.00    0.10    0.10       0    9.00   11.00   11.00   1.00     9.50    0.11    0.11       0    9.00   10.00   10.00   1.00  2026-01-01 12:00:00
"""  # noqa: E501 - one row of nccl-tests -I 1 -S 1, as it prints it


def test_per_iteration_columns_and_timestamps_are_read_from_the_right():
    [test] = nccl_tests.parse(PER_ITERATION, "f")
    [row] = test.rows
    assert (row.size, row.time_us, row.algbw, row.wrong, row.in_place_time_us) == (
        1024, 10.0, 0.1, 0, 9.5)


@pytest.mark.parametrize(("given", "flag", "why"), [
    (ingest.Given(op="all_gather"), "--op", "all_gather given, but the file says all_reduce"),
    (ingest.Given(ranks=4), "--ranks", "4 given, but the file says 8"),
])
def test_a_flag_that_contradicts_the_file_is_refused(given, flag, why):
    with pytest.raises(ConfigError, match="^" + re.escape(f"{flag}: {why}")):
        ingest.records(FIXTURES / "all_reduce_perf_2.19.6_g8.txt", "nccl-tests", given)


def test_what_the_file_does_not_say_comes_from_flags(tmp_path):
    stripped = tmp_path / "stripped.txt"  # no program line, no device lines
    stripped.write_text("\n".join(
        line for line in (FIXTURES / "all_reduce_perf_2.19.6_g8.txt").read_text().splitlines()
        if not line.startswith(("#  Rank", "# Collective"))))
    for given, flag in ((NONE, "--op"), (ingest.Given(op="all_reduce"), "--ranks"),
                        (ingest.Given(op="all_reduce", ranks=8), "--nodes"),
                        (ingest.Given(op="all_reduce", ranks=8, nodes=1), "--device")):
        with pytest.raises(ConfigError, match=f"^{flag}: "):
            ingest.records(stripped, "nccl-tests", given)
    [r] = ingest.records(stripped, "nccl-tests",
                         ingest.Given(op="all_reduce", ranks=8, nodes=1, device="h100"))
    assert (r.device.kind, r.comm.ranks) == ("h100", 8)
    report = FIXTURES / "nccom_allg_r32_doc.json"
    for given, flag in ((NONE, "--op"), (ingest.Given(op="bcast"), "--op"),
                        (ingest.Given(op="allg"), "--ranks"),
                        (ingest.Given(op="allg", ranks=32), "--device")):
        with pytest.raises(ConfigError, match=f"^{flag}: "):
            ingest.records(report, "nccom-test", given)


@pytest.mark.parametrize(("content", "why"), [
    ("hello\n", "not a pytest-benchmark JSON file, nccl-tests output or an nccom-test report"),
    ("{not json", "not valid JSON"),
    ('{"version": 3, "nccl_version": 22907, "results": []}', "nccl-tests' -J JSON is not read"),
])
def test_a_file_of_no_known_format_is_one_line(cli_main, tmp_path, content, why):
    bad, results = tmp_path / "bad.txt", tmp_path / "r.jsonl"
    bad.write_text(content)
    proc = cli_main("ingest", str(bad), "--results", str(results))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and why in proc.stderr
    assert not results.exists()


@pytest.mark.parametrize(("content", "why"), [
    ("# nThread 1\n     1024   256   float   sum   -1   fast 0.1 0.1 0   9 0.1 0.1 0\n",
     "line 2: time 'fast' is not a number"),
    ("# nThread 1\n     1024   256\n", "line 2: 2 columns, expected size, count, type"),
])
def test_a_row_that_cannot_be_read_names_its_line(tmp_path, content, why):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(why)):
        ingest.records(bad, "nccl-tests", ingest.Given(ranks=2, nodes=1, device="h100"))


def test_ingest_stores_each_test_once_labelled_by_its_tool(cli_main, tmp_path):
    results = tmp_path / "r.jsonl"
    log = tmp_path / "two-tests.txt"  # two programs' output in one log
    log.write_text((FIXTURES / "all_reduce_perf_2.19.6_g8.txt").read_text()
                   + (FIXTURES / "all_gather_perf_2.17.1_g8.txt").read_text())
    first = cli_main("ingest", str(log), "--results", str(results))
    assert first.returncode == 0, first.stderr
    again = cli_main("ingest", str(log), "--results", str(results))
    assert "skipped 2 already stored" in again.stdout
    records = read_jsonl(results)
    assert [r["comm"]["ops"] for r in records] == [["all_reduce"], ["all_gather"]]
    assert {r["tags"]["source"] for r in records} == {"nccl-tests"}
    assert all("model" not in r and r["config"]["kind"] == "comm" for r in records)
    proc = cli_main("ingest", str(FIXTURES / "nccom_allg_r32_doc.json"), "--op", "allg",
                    "--ranks", "32", "--device", "trn2", "--results", str(results))
    assert proc.returncode == 0 and read_jsonl(results)[-1]["comm"]["tool"] == "nccom-test"


def test_tool_flags_do_not_apply_to_pytest_benchmark_json(cli_main, tmp_path):
    bench = tmp_path / "b.json"
    bench.write_text('{"benchmarks": []}')
    proc = cli_main("ingest", str(bench), "--ranks", "8", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "--ranks: applies to nccl-tests and nccom-test files" in proc.stderr
