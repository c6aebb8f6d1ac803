"""A page of trnbench (report.html, compare.html) opened in a real browser, for the integration
tests.

The browser is Debian's chromium, headless, driven by Playwright through ``executable_path``;
Playwright never downloads one (scripts/setup-browser.sh installs chromium; `make test` runs it
first). ``open_page`` loads a page, records every page error, console error and request, reads
what the test asks for, and keeps a full-page screenshot in ``$TRNBENCH_ARTIFACTS`` (default
``artifacts/``, git-ignored; CI keeps it as an artifact).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class Opened:
    """What a page did in the browser, and what the test read from it."""

    url: str
    problems: list[str] = field(default_factory=list)  # page errors, console errors, failures
    requests: list[str] = field(default_factory=list)
    images: list[list[Any]] = field(default_factory=list)  # [complete, width, height] per <img>
    read: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


def open_page(page_file: Path, shot: str, read: Callable[[Any], dict[str, Any]],
              width: int = 1400) -> Opened:
    """``page_file`` in headless chromium at ``width`` x 900: its problems, requests, images,
    what ``read(page)`` returns, and a full-page screenshot saved as ``shot``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: it comes with the test extra (pip install -e "
                    "'.[test]')")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is absent: the browser test needs Debian's chromium; run "
                    f"scripts/setup-browser.sh (make test runs it first) or set $CHROMIUM")
    opened = Opened(page_file.as_uri())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("pageerror", lambda e: opened.problems.append(f"page error: {e}"))

        def console(message: Any) -> None:
            if message.type == "error":
                opened.problems.append(f"console: {message.text}")

        page.on("console", console)
        page.on("requestfailed", lambda r: opened.problems.append(f"failed request: {r.url}"))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(opened.url, wait_until="load")
        opened.images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        opened.read = read(page)
        artifacts = Path(os.environ.get("TRNBENCH_ARTIFACTS", ROOT / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        opened.screenshot = artifacts / shot
        page.screenshot(path=str(opened.screenshot), full_page=True)
        browser.close()
    return opened
