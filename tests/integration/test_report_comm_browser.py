"""report.html of collectives records in Debian's chromium (Playwright, through
tests/integration/browser.py), as tests/integration/test_report.py opens the training report:
the Collectives table and the bandwidth plot render, with no page error and no request. A
full-page screenshot is kept in ``$TRNBENCH_ARTIFACTS`` (default ``artifacts/``) as
report_comm.png."""

from __future__ import annotations

from bench.comm import ingest
from bench.records import store
from tests.conftest import ROOT, invoke
from tests.integration.browser import open_page

FIXTURES = ROOT / "tests" / "fixtures" / "comm"


def test_the_bandwidth_plot_renders_in_chromium(tmp_path):
    results = tmp_path / "r.jsonl"
    for name, fmt, given in (
            ("all_reduce_perf_2.19.6_g8.txt", "nccl-tests", ingest.Given()),
            ("all_reduce_perf_2.19.6_2nodes.txt", "nccl-tests", ingest.Given()),
            ("all_gather_perf_2.17.1_g8.txt", "nccl-tests", ingest.Given()),
            ("nccom_allg_r32_doc.json", "nccom-test",
             ingest.Given(op="allg", ranks=32, device="trn2"))):
        for r in ingest.records(FIXTURES / name, fmt, given):
            store.append(results, r)
    out = tmp_path / "out"
    proc = invoke("report", str(results), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    opened = open_page(out / "report.html", "report_comm.png", lambda page: {
        "rows": page.locator("#collectives + table tbody tr").count(),
        "headers": page.eval_on_selector_all("#collectives + table th",
                                             "h => h.map(e => e.textContent)"),
        "alts": page.eval_on_selector_all("img", "imgs => imgs.map(i => i.alt)")})
    assert opened.problems == []
    assert [u for u in opened.requests if not u.startswith("data:")] == [opened.url]
    read = opened.read
    assert read["rows"] == 4 and "plateau busbw GB/s" in read["headers"]
    assert "of datasheet %" in read["headers"]
    [(done, width, _)] = opened.images
    [alt] = read["alts"]
    assert alt.startswith("Collectives: bus bandwidth") and done and width > 800
    assert opened.screenshot.stat().st_size > 20_000
