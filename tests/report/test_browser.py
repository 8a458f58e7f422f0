"""The HTML report in a real headless Chromium (Debian's ``chromium`` package).

Driven by Playwright for Python (pip package ``playwright``) against the
system browser: ``executable_path=/usr/bin/chromium``; ``playwright install``
is never needed.  Locally the test is skipped when Chromium or Playwright is
missing; with the ``CI`` environment variable set it fails instead, so CI
cannot pass without running it.
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


@pytest.fixture(scope="module")
def browser():
    _need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "Python package 'playwright' is not installed")
    with sync_playwright() as pw:
        # Playwright gives the browser a fresh temporary profile of its own.
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def report(tmp_path):
    """Report of a simulated ALS-like recording with cramps, as a perfect detector sees it."""
    from conftest import analysis_from_truth

    from emgtool.simulate import simulate

    rec, truth = simulate("als-widespread", duration_s=120, seed=3, fs=1000, n_cramps=2)
    paths = write_report(analysis_from_truth(rec, truth), tmp_path)
    return paths["report_html"], json.loads(paths["summary_json"].read_text(encoding="utf-8"))


def test_report_in_chromium(browser, report):
    html_path, summary = report
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console_errors, requests = [], []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    url = html_path.resolve().as_uri()

    def route(r):
        requests.append(r.request.url)
        if r.request.url == url:
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")

    # Figures: every <img> decoded, with a non-zero rendered size.
    imgs = page.eval_on_selector_all(
        "img",
        "els => els.map(e => {const r = e.getBoundingClientRect();"
        " return {complete: e.complete, nw: e.naturalWidth, nh: e.naturalHeight,"
        " w: r.width, h: r.height, fig: e.closest('figure')?.dataset.figure};})",
    )
    svgs = page.eval_on_selector_all(
        "svg",
        "els => els.map(e => {const r = e.getBoundingClientRect(); return {w: r.width, h: r.height};})",
    )
    n_fig = page.eval_on_selector_all("figure", "els => els.length")
    assert len(imgs) + len(svgs) == n_fig == 6
    for im in imgs:
        assert im["complete"] and im["nw"] > 0 and im["nh"] > 0, im
        assert im["w"] > 50 and im["h"] > 50, im
    assert {im["fig"] for im in imgs} == {
        "bodymap",
        "raster",
        "rates",
        "cramps",
        "waveforms",
        "quality",
    }

    # The numbers the reader sees equal summary.json.
    rows = page.eval_on_selector_all(
        "tr.site",
        "rows => rows.map(r => {const o = {site: r.dataset.site, side: r.dataset.side};"
        " r.querySelectorAll('td[data-key]').forEach(td => o[td.dataset.key] = td.textContent);"
        " return o;})",
    )
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
    assert (
        page.inner_text("p.pattern span[data-key='spread.pattern']")
        == summary["spread"]["pattern"]
    )
    assert "not a diagnosis" in page.inner_text("#disclaimer").lower()

    # A non-blank rendering.
    from matplotlib.image import imread

    png = page.screenshot(full_page=True)
    px = imread(io.BytesIO(png))[..., :3]
    assert px.shape[0] > 2000  # the whole report, not just the first screen
    assert float(np.var(px)) > 0.01
    assert len(np.unique((px[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50

    assert console_errors == []
    assert requests == [url]  # only the file itself: no network, no external resource
    page.close()
