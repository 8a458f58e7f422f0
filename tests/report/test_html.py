"""report.html: self-contained, every section, escaped, numbers equal summary.json."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from emgtool.report import render_report, summarize, write_report

SECTIONS = (
    "recording",
    "warnings",
    "spread",
    "sites",
    "raster",
    "rates",
    "cramps",
    "waveforms",
    "quality",
    "methods",
    "disclaimer",
)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs, self.cells, self.figures = set(), [], [], []
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("src", "href", "action", "poster", "data"):
            if k in a and tag != "td":
                self.refs.append((tag, a[k]))
        if tag == "tr" and "data-site" in a:
            self._row = (a["data-site"], a["data-side"])
        if tag == "td" and "data-key" in a and self._row:
            self._cell = [self._row, a["data-key"], a.get("data-value"), ""]
        if tag == "figure":
            self.figures.append(a.get("data-figure"))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[3] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(tuple(self._cell))
            self._cell = None
        if tag == "tr":
            self._row = None


def _parse(html):
    p = _Collect()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def als_rendered():
    from .conftest import ALS_SITES, make_analysis

    a = make_analysis(ALS_SITES, duration_s=300.0, seed=1)
    s = summarize(a)
    return s, render_report(a, s)


def test_self_contained_with_every_section(als_rendered):
    s, html = als_rendered
    p = _parse(html)
    assert set(SECTIONS) <= p.ids
    for tag, ref in p.refs:
        assert ref.startswith(("data:image/png;base64,", "#")), (tag, ref[:60])
    assert not re.search(r"(?i)(src|href)\s*=\s*[\"']?\s*(https?:)?//", html)
    assert "url(" not in html and "@import" not in html and "<script" not in html.lower()
    assert "default-src 'none'" in html  # CSP: the browser refuses any request
    assert set(p.figures) == {"bodymap", "raster", "rates", "cramps", "waveforms", "quality"}
    assert "not a diagnosis" in html.lower()
    assert "research tool" in html.lower()


def test_site_numbers_equal_summary(als_rendered):
    s, html = als_rendered
    p = _parse(html)
    by_site = {(x["site"], x["side"]): x for x in s["sites"]}
    seen = 0
    for (site, side), key, raw, text in p.cells:
        if key in ("site", "side", "region"):
            assert text == by_site[(site, side)][key]
            continue
        assert json.loads(raw) == by_site[(site, side)][key]
        v = by_site[(site, side)][key]
        if key in ("fasciculation_rate_per_min", "fasciculation_count", "cramp_count"):
            assert float(text) == pytest.approx(v, abs=0.006)
            seen += 1
    assert seen == 3 * len(s["sites"])


def test_text_is_escaped_and_identity_hidden(factory, spec):
    evil = "bic<script>alert(1)</script>"
    a = factory([spec(evil, "L", "cervical", 5)], warnings=["<b>watch</b> & see"], duration_s=120)
    html = render_report(a, summarize(a))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;watch&lt;/b&gt; &amp; see" in html
    assert "rec.edf" not in html  # the file name is shown only when identity is kept
    b = factory(
        [spec("biceps", "L", "cervical", 5)], identity={"subject": "Doe^J"}, duration_s=120
    )
    assert "Doe^J" in render_report(b, summarize(b))


def test_no_events_no_waveforms(factory, spec):
    a = factory(
        [spec("biceps", "L", "cervical", 0), spec("biceps", "R", "cervical", 0)], duration_s=120
    )
    html = render_report(a, summarize(a))
    assert "No cramps detected" in html and "No waveforms stored" in html
    assert 'data-key="spread.pattern">none<' in html


@pytest.fixture
def sixteen(factory, spec):
    sites = []
    for i, (site, region) in enumerate(
        [
            ("biceps", "cervical"),
            ("triceps", "cervical"),
            ("deltoid", "cervical"),
            ("first_dorsal_interosseous", "cervical"),
            ("thoracic_paraspinals", "thoracic"),
            ("vastus_lateralis", "lumbosacral"),
            ("tibialis_anterior", "lumbosacral"),
            ("gastrocnemius_medial", "lumbosacral"),
        ]
    ):
        for side in ("L", "R"):
            sites.append(
                spec(
                    site,
                    side,
                    region,
                    3 + 4 * i,
                    cramps=[(200.0 + 50 * i, 8.0)] if i % 3 == 0 else [],
                )
            )
    return factory(sites, duration_s=900, gaps_s=[(400.0, 410.0)], seed=5)


def test_write_report_16_sites(sixteen, tmp_path):
    paths = write_report(sixteen, tmp_path / "out")
    assert sorted(paths) == ["report_html", "summary_json"]
    doc = json.loads(paths["summary_json"].read_text(encoding="utf-8"))
    assert len(doc["sites"]) == 16
    assert paths["report_html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["report.html", "summary.json"]
    # Speed is measured by benchmarks/performance.py, not asserted here (shared machines).


def test_raster_of_a_day_draws_one_tick_per_pixel_column(factory, spec):
    """A day-long recording has ~10^5 fasciculations per site; the raster draws at
    most a few ticks per pixel column (bounded memory), at the same places, while a
    short recording keeps every tick."""
    import numpy as np
    from matplotlib.collections import LineCollection

    from emgtool.report.figures import _time_unit, raster_figure

    def ticks(an):
        fig = raster_figure(an, summarize(an))
        (coll,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
        return np.sort([seg[0, 0] for seg in coll.get_segments()])

    def onsets(an):
        f = an.events["trial_type"] == "fasciculation"
        return np.sort(an.events.loc[f, "onset"].to_numpy()) / _time_unit(an.duration_s)[0]

    def nearest(x, ref):
        i = np.clip(np.searchsorted(ref, x), 1, len(ref) - 1)
        return np.minimum(np.abs(x - ref[i - 1]), np.abs(x - ref[i]))

    day = factory([spec("biceps", "L", "cervical", 75)], duration_s=86400.0, seed=2)
    drawn, true = ticks(day), onsets(day)
    assert len(true) > 100_000 and len(drawn) < 10_000
    quarter_px = (86400.0 / _time_unit(86400.0)[0]) / (4 * 600)  # the axis is > 600 px
    assert nearest(drawn, true).max() < quarter_px  # no tick where there is no event
    assert nearest(true, drawn).max() < quarter_px  # no event without its tick
    short = factory([spec("biceps", "L", "cervical", 30)], duration_s=300.0, seed=2)
    assert np.array_equal(ticks(short), onsets(short))
