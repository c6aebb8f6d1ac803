"""report.html of collectives records in Debian's chromium (Playwright), as
tests/integration/test_report.py opens the training report: the Collectives table and the
bandwidth plot render, with no page error and no request. A full-page screenshot is kept in
``$TRNBENCH_ARTIFACTS`` (default ``artifacts/``) as report_comm.png."""

from __future__ import annotations

import os
from pathlib import Path

from bench.comm import ingest
from bench.records import store
from tests.conftest import ROOT, invoke
from tests.integration.test_report import _browser

FIXTURES = ROOT / "tests" / "fixtures" / "comm"


def test_the_bandwidth_plot_renders_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

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
    url = (out / "report.html").as_uri()
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, wait_until="load")
        rows = page.locator("#collectives + table tbody tr").count()
        headers = page.eval_on_selector_all("#collectives + table th",
                                            "h => h.map(e => e.textContent)")
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")
        artifacts = Path(os.environ.get("TRNBENCH_ARTIFACTS", ROOT / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = artifacts / "report_comm.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert problems == []
    assert [u for u in requests if not u.startswith("data:")] == [url]
    assert rows == 4 and "plateau busbw GB/s" in headers and "of datasheet %" in headers
    [(alt, done, width)] = images
    assert alt.startswith("Collectives: bus bandwidth") and done and width > 800
    assert shot.stat().st_size > 20_000
