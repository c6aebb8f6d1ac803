"""report.html in a real browser: Debian's chromium, headless, driven by Playwright.

The browser is part of the test set-up (scripts/setup-browser.sh, run by `make test`);
Playwright only drives it (``executable_path``) and never downloads one. The page must
render its tables and decode its charts with no page error, no console error and no
network request at all. A full-page screenshot is kept as an artifact in
``$TRNBENCH_ARTIFACTS`` (default ``artifacts/``, git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def page_dir(report_generated) -> Path:
    """The report of the session's records (tests/integration/conftest.py), shared with
    test_report."""
    return report_generated[0]


def _browser(playwright):
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is absent: the browser test needs Debian's chromium; run "
                    f"scripts/setup-browser.sh (make test runs it first) or set $CHROMIUM")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)


def test_report_renders_in_chromium_without_errors_or_requests(page_dir):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: it comes with the test extra (pip install -e "
                    "'.[test]')")
    url = (page_dir / "report.html").as_uri()
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        def console(message) -> None:
            if message.type == "error":
                problems.append(f"console: {message.text}")

        page.on("console", console)
        page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, wait_until="load")
        results = page.locator("#results + table tbody tr")
        cells = page.eval_on_selector_all("#results + table tbody tr",
                                          "rows => rows.map(r => r.cells.length)")
        headers = page.eval_on_selector_all("#results + table th", "h => h.map(e => e.textContent)")
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        failed_rows = page.locator("#failed + table tbody tr").count()
        scaling_rows = page.locator("#scaling + table tbody tr").count()
        methods = page.locator("#methods + dl dt").all_text_contents()
        flagged_text = page.locator("tr.flagged").all_text_contents()
        artifacts = Path(os.environ.get("TRNBENCH_ARTIFACTS", ROOT / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = artifacts / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        rendered_rows = results.count()
        browser.close()

    assert problems == []
    assert [u for u in requests if not u.startswith("data:")] == [url]  # the page itself only
    csv = pd.read_csv(page_dir / "report.csv")
    assert rendered_rows == len(csv) == 4
    assert set(cells) == {len(headers)} and "MFU %" in headers and "tokens/J" in headers
    assert len(images) == len(list(page_dir.glob("*.png"))) == 4
    assert all(done and w > 0 and h > 0 for done, w, h in images), images
    assert failed_rows == 1 and scaling_rows == 2
    assert "How each figure was made" not in methods and "MFU" in methods
    assert all("flagged [" in t for t in flagged_text)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
