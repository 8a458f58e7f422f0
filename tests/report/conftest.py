"""Hand-built :class:`Analysis` objects for the report tests.

The factory draws fasciculations as a Poisson process over each site's rest
time (outside gaps and cramps), so tests know the true rate and the exact
observation time without needing the detector.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emgtool.analysis import Analysis, SiteResult
from emgtool.config import DetectorConfig
from emgtool.events import normalise_events
from emgtool.recording import Channel


def _free_spans(duration_s, blocked):
    """Complement of the (sorted, merged) blocked spans within [0, duration_s)."""
    spans, t = [], 0.0
    for a, b in sorted(blocked):
        if a > t:
            spans.append((t, a))
        t = max(t, b)
    if t < duration_s:
        spans.append((t, duration_s))
    return spans


def _template(shape: int, n: int) -> np.ndarray:
    x = np.linspace(-3, 3, n)
    w = 0.6 + 0.35 * shape
    return -x / w * np.exp(-(x**2) / (2 * w**2)) * (1 + 0.5 * (shape % 2) * np.cos(2 * x))


def make_analysis(
    sites: list[dict],
    *,
    duration_s: float = 300.0,
    fs: float = 2000.0,
    gaps_s: list[tuple[float, float]] = (),
    seed: int = 0,
    warnings: list[str] = (),
    extra_events: list[dict] = (),
    identity: dict | None = None,
) -> Analysis:
    """Build an Analysis.

    Each site dict: ``site``, ``side``, ``region``, ``rate_per_min`` (true rate),
    optional ``onsets`` (explicit fasciculation times, overrides the rate),
    ``cramps`` [(onset_s, dur_s)], ``n_channels``, ``quality``, ``n_shapes``,
    ``rest_s`` (override).
    """
    rng = np.random.default_rng(seed)
    cfg = DetectorConfig()
    gaps_s = list(gaps_s)
    rows = []
    site_results = []
    channels = []
    for spec in sites:
        site, side, region = spec["site"], spec.get("side", "L"), spec.get("region", "cervical")
        nch = spec.get("n_channels", 1)
        labels = [f"{site} {side}" + (f" {i + 1:02d}" if nch > 1 else "") for i in range(nch)]
        for lab in labels:
            channels.append(Channel(lab, site, side, region))
        cramps = list(spec.get("cramps", []))
        blocked = gaps_s + [(a, a + d) for a, d in cramps]
        free = _free_spans(duration_s, blocked)
        rest_s = spec.get("rest_s", sum(b - a for a, b in free))
        if "onsets" in spec:
            onsets = np.sort(np.asarray(spec["onsets"], float))
        else:
            rate_s = spec.get("rate_per_min", 0.0) / 60.0
            onsets = []
            for a, b in free:
                k = rng.poisson(rate_s * (b - a))
                onsets.extend(rng.uniform(a, b, k))
            onsets = np.sort(np.asarray(onsets, float))
        n_shapes = spec.get("n_shapes", 2)
        before = np.diff(onsets, prepend=-np.inf)
        after = np.diff(onsets, append=np.inf)
        iso = (before > 0.25) & (after > 0.25)
        for i, t in enumerate(onsets):
            rows.append(
                dict(
                    onset=t,
                    duration=0.012,
                    trial_type="fasciculation",
                    sample=int(round(t * fs)),
                    site=site,
                    side=side,
                    region=region,
                    channel="|".join(labels[: 1 + i % nch]),
                    amplitude_uv=float(rng.lognormal(np.log(150), 0.4)),
                    duration_ms=float(rng.uniform(6, 16)),
                    phases=int(rng.integers(2, 7)),
                    turns=int(rng.integers(2, 8)),
                    area_uv_ms=float(rng.uniform(100, 900)),
                    shape=int(rng.integers(0, n_shapes)),
                    multiplet=0,
                    pair=False,
                    discharge="isolated" if iso[i] else "continual",
                    peak_s=t + 0.004,
                    reason="n/a",
                )
            )
        for a, d in cramps:
            rows.append(
                dict(
                    onset=a,
                    duration=d,
                    trial_type="cramp",
                    sample=int(round(a * fs)),
                    site=site,
                    side=side,
                    region=region,
                    channel="|".join(labels),
                    amplitude_uv=400.0,
                    mean_amplitude_uv=180.0,
                    peak_s=a + d / 2,
                    reason="n/a",
                )
            )
        excluded = {"cramp": float(sum(d for _a, d in cramps))}
        if gaps_s:
            excluded["gap"] = float(sum(b - a for a, b in gaps_s))
        site_results.append(
            SiteResult(
                site,
                side,
                region,
                labels,
                rest_s=float(rest_s),
                excluded_s=excluded,
                quality=list(spec.get("quality", [])),
                noise_uv=5.0,
            )
        )
    rows.extend(extra_events)
    events = (
        normalise_events(pd.DataFrame(rows))
        if rows
        else normalise_events(pd.DataFrame({"onset": [], "duration": [], "trial_type": []}))
    )
    # Waveforms: up to 50 per site, one template per shape plus noise.
    nwin = int(round(0.030 * fs))
    for sr in site_results:
        idx = np.flatnonzero(
            (events["site"] == sr.site).to_numpy()
            & (events["side"] == sr.side).to_numpy()
            & (events["trial_type"] == "fasciculation").to_numpy()
        )[:50]
        shapes = events["shape"].to_numpy()[idx].astype(int) if idx.size else np.zeros(0, int)
        amps = events["amplitude_uv"].to_numpy()[idx].astype(float) if idx.size else np.zeros(0)
        w = np.array([_template(s, nwin) * a / 2 for s, a in zip(shapes, amps, strict=True)])
        w = w + rng.normal(0, 3, w.shape) if w.size else np.zeros((0, nwin))
        sr.waveforms = w.astype(np.float32)
        sr.waveform_event_index = idx.astype(np.int64)
    n_samples = int(round(duration_s * fs))
    gaps = [(int(round(a * fs)), int(round(b * fs))) for a, b in gaps_s]
    cq = {
        c.label: {"noise_uv": 5.0, "mains_ratio": 0.1, "clipped_s": 0.0, "flags": []}
        for c in channels
    }
    return Analysis(
        events=events,
        sites=site_results,
        fs=fs,
        n_samples=n_samples,
        channels=tuple(channels),
        recording_id="sha256-0123456789ab",
        source={"file": "rec.edf", "format": "edf", "start_time": None, "reader_warnings": []},
        config=cfg,
        warnings=list(warnings),
        gaps=gaps,
        channel_quality=cq,
        mains_hz=50.0,
        identity=dict(identity or {}),
    )


def S(site, side, region, rate=0.0, **kw):
    """Shorthand for a site spec."""
    return dict(site=site, side=side, region=region, rate_per_min=rate, **kw)


ALS_SITES = [
    S("tongue", "n/a", "bulbar", 8),
    S("biceps", "L", "cervical", 30),
    S("biceps", "R", "cervical", 25),
    S("first_dorsal_interosseous", "L", "cervical", 15),
    S("first_dorsal_interosseous", "R", "cervical", 12),
    S("thoracic_paraspinals", "R", "thoracic", 6),
    S("vastus_lateralis", "L", "lumbosacral", 10),
    S("tibialis_anterior", "R", "lumbosacral", 9),
    S("gastrocnemius_medial", "L", "lumbosacral", 20, cramps=[(100.0, 12.0)]),
    S("gastrocnemius_medial", "R", "lumbosacral", 18),
]


@pytest.fixture
def factory():
    return make_analysis


@pytest.fixture
def spec():
    return S


@pytest.fixture
def als_analysis():
    return make_analysis(ALS_SITES, duration_s=300.0, seed=1)


def analysis_from_truth(rec, truth: pd.DataFrame) -> Analysis:
    """The Analysis a perfect detector would return for a simulated recording.

    Rest time per site is the recording minus every non-fasciculation truth
    span at the site (cramps, voluntary bursts, artefacts); waveforms are cut
    from the raw signal around each potential's peak.
    """
    from emgtool.events import EVENT_COLUMNS

    events = normalise_events(truth[[c for c in truth.columns if c in EVENT_COLUMNS]])
    fs, dur = rec.fs, rec.duration_s
    keys: list[tuple[str, str]] = []
    for ch in rec.channels:
        if ch.site_key not in keys:
            keys.append(ch.site_key)
    half = int(round(0.015 * fs))
    kinds = events["trial_type"].astype(str).to_numpy()
    sites = []
    for site, side in keys:
        chans = [c for c in rec.channels if c.site_key == (site, side)]
        here = (events["site"].astype(str) == site).to_numpy() & (
            events["side"].astype(str) == side
        ).to_numpy()
        spans = sorted(
            (o, o + d)
            for o, d in zip(
                events["onset"][here & (kinds != "fasciculation")],
                events["duration"][here & (kinds != "fasciculation")].fillna(0),
                strict=True,
            )
        )
        excluded: dict[str, float] = {}
        for k in ("cramp", "voluntary", "artifact"):
            sel = here & (kinds == k)
            if sel.any():
                excluded[k] = float(events["duration"][sel].fillna(0).sum())
        blocked = sum(b - a for a, b in _free_spans(dur, spans)) if spans else dur
        idx = np.flatnonzero(here & (kinds == "fasciculation"))[:50]
        row = rec.labels.index(chans[0].label)
        peaks = events["peak_s"].to_numpy(dtype=float, na_value=np.nan)[idx]
        peaks = np.where(
            np.isfinite(peaks), peaks, events["onset"].to_numpy(dtype=float)[idx] + 0.005
        )
        centre = np.clip(np.round(peaks * fs).astype(int), half, rec.n_samples - half - 1)
        w = np.array(
            [rec.data[row, c - half : c + half] for c in centre], dtype=np.float32
        ).reshape(len(idx), 2 * half)
        sites.append(
            SiteResult(
                site,
                side,
                chans[0].region,
                [c.label for c in chans],
                rest_s=float(blocked),
                excluded_s=excluded,
                noise_uv=5.0,
                waveforms=w,
                waveform_event_index=idx.astype(np.int64),
            )
        )
    return Analysis(
        events=events,
        sites=sites,
        fs=fs,
        n_samples=rec.n_samples,
        channels=rec.channels,
        recording_id="rec-simulated",
        source={"format": "simulated", "reader_warnings": []},
        config=DetectorConfig(),
        mains_hz=rec.meta.get("mains_hz"),
    )
