"""The HTML report in a real headless Chromium (Debian's ``chromium`` package).

Driven by Playwright for Python (pip package ``playwright``) against the
system browser: ``executable_path=/usr/bin/chromium``; ``playwright install``
is never needed.  Without Playwright the test drives Chromium over the
DevTools protocol itself (``cdp_driver.py``, tornado websocket); set
``EMGTOOL_BROWSER_DRIVER=cdp`` to force that path.  Locally the test is
skipped when Chromium is missing; with the ``CI`` environment variable set it
fails instead, so CI cannot pass without running it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from emgtool.report import write_report

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("EMGTOOL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _need(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: the browser test must run)")
    pytest.skip(why)


class _PlaywrightPage:
    """The same small API as cdp_driver.CdpPage, on Playwright."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self.allowed: set[str] = set()
        self.page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        self.page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        route.continue_() if url in self.allowed else route.abort()

    def goto(self, url: str) -> None:
        self.allowed.add(url)
        self.page.goto(url, wait_until="load")

    def evaluate(self, expression: str):
        return self.page.evaluate(expression)

    def screenshot(self) -> bytes:
        return self.page.screenshot(full_page=True)

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def page_factory():
    _need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}")
    driver = os.environ.get("EMGTOOL_BROWSER_DRIVER", "")
    if driver != "cdp":
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            driver = "cdp"
    if driver == "cdp":
        from .cdp_driver import CdpPage

        pages = []

        def make():
            pages.append(CdpPage(CHROMIUM, ARGS))
            return pages[-1]

        yield make
        for p in pages:
            p.close()
        return
    with sync_playwright() as pw:
        # Playwright gives the browser a fresh temporary profile of its own.
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield lambda: _PlaywrightPage(b)
        finally:
            b.close()


@pytest.fixture
def report(tmp_path):
    """Report of a simulated ALS-like recording with cramps, as a perfect detector sees it."""
    from emgtool.simulate import simulate

    from .conftest import analysis_from_truth

    rec, truth = simulate("als-widespread", duration_s=120, seed=3, fs=1000, n_cramps=2)
    paths = write_report(analysis_from_truth(rec, truth), tmp_path)
    return paths["report_html"], json.loads(paths["summary_json"].read_text(encoding="utf-8"))


IMGS_JS = """[...document.querySelectorAll('img')].map(e => {const r = e.getBoundingClientRect();
 return {complete: e.complete, nw: e.naturalWidth, nh: e.naturalHeight, w: r.width, h: r.height,
 fig: e.closest('figure') ? e.closest('figure').dataset.figure : null};})"""
SVGS_JS = """[...document.querySelectorAll('svg')].map(e => {const r = e.getBoundingClientRect();
 return {w: r.width, h: r.height};})"""
ROWS_JS = """[...document.querySelectorAll('tr.site')].map(r => {
 const o = {site: r.dataset.site, side: r.dataset.side};
 r.querySelectorAll('td[data-key]').forEach(td => o[td.dataset.key] = td.textContent); return o;})"""


def test_report_in_chromium(page_factory, report):
    html_path, summary = report
    page = page_factory()
    url = html_path.resolve().as_uri()
    page.goto(url)

    # Figures: every <img> decoded, with a non-zero rendered size.
    imgs = page.evaluate(IMGS_JS)
    svgs = page.evaluate(SVGS_JS)
    n_fig = page.evaluate("document.querySelectorAll('figure').length")
    assert len(imgs) + len(svgs) == n_fig == 6
    for im in imgs:
        assert im["complete"] and im["nw"] > 0 and im["nh"] > 0, im
        assert im["w"] > 50 and im["h"] > 50, im
    for sv in svgs:
        assert sv["w"] > 50 and sv["h"] > 50, sv
    assert {im["fig"] for im in imgs} == {
        "bodymap",
        "raster",
        "rates",
        "cramps",
        "waveforms",
        "quality",
    }

    # The numbers the reader sees equal summary.json.
    rows = page.evaluate(ROWS_JS)
    assert len(rows) == len(summary["sites"])
    for row, s in zip(rows, summary["sites"], strict=True):
        assert (row["site"], row["side"]) == (s["site"], s["side"])
        assert int(row["fasciculation_count"]) == s["fasciculation_count"]
        assert float(row["fasciculation_rate_per_min"]) == pytest.approx(
            s["fasciculation_rate_per_min"], abs=0.005 + 1e-9
        )
        assert float(row["rest_s"]) == pytest.approx(s["rest_s"], abs=0.05 + 1e-9)
        assert int(row["cramp_count"]) == s["cramp_count"]
        assert row["region"] == s["region"]
    assert sum(s["cramp_count"] for s in summary["sites"]) >= 1  # the cramp figure has content
    shown = page.evaluate(
        "document.querySelector(\"p.pattern span[data-key='spread.pattern']\").textContent"
    )
    assert shown == summary["spread"]["pattern"]
    assert (
        "not a diagnosis"
        in page.evaluate("document.querySelector('#disclaimer').textContent").lower()
    )

    # A non-blank rendering of the whole page.
    from matplotlib.image import imread

    px = imread(io.BytesIO(page.screenshot()))[..., :3]
    assert px.shape[0] > 2000
    assert float(np.var(px)) > 0.01
    assert len(np.unique((px[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50

    assert page.console_errors == []
    assert page.requests == [url]  # only the file itself: no network, no external resource
    page.close()


def test_blocked_request_is_seen(page_factory, tmp_path):
    """The request recorder works: a page with an external image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="https://example.invalid/x.png"></body></html>')
    page = page_factory()
    url = bad.resolve().as_uri()
    page.goto(url)
    assert "https://example.invalid/x.png" in page.requests
    page.close()
