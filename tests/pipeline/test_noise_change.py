"""A lasting rise of a channel's noise level is not a cramp (noise_change.py)."""

import numpy as np
import pandas as pd
import pytest

from emgtool.pipeline import core
from emgtool.pipeline.analyze import analyze, quality_warnings
from emgtool.pipeline.noise_change import bin_spread, looks_like_noise
from emgtool.recording import Recording
from emgtool.sites import assign_sites

from .conftest import lobes, run_chunked

FS = 2048.0
SIGMA = 10.0
STEP_S = 30.0
SINGLES_S = [8.0, 14.0, 21.0, 45.0, 51.0, 57.5, 63.0, 70.0, 76.0]


def _recording(gain: float, fs: float = FS) -> Recording:
    """80 s of one channel whose noise rises ``gain``-fold at STEP_S, with single potentials."""
    rng = np.random.default_rng(21)
    n = int(80 * fs)
    x = rng.normal(0, SIGMA, n)
    a = int(STEP_S * fs)
    x[a:] += rng.normal(0, SIGMA * np.sqrt(gain**2 - 1), n - a)  # white: the same shape
    w = lobes([300.0, -300.0], [3.0, 3.0], fs)  # 600 µV p-p: clear at either level
    for s in SINGLES_S:
        i = int(s * fs)
        x[i : i + len(w)] += w
    return Recording(x[None].astype(np.float32), fs, assign_sites(["Gastroc med L"]))


@pytest.fixture(scope="module")
def stepped():
    rec = _recording(3.0)
    return rec, analyze(rec)


def test_noise_rise_is_reported_not_counted_as_a_cramp(stepped):
    _rec, an = stepped
    ev = an.events
    assert not ev["trial_type"].isin(["cramp", "voluntary"]).any(), ev
    art = ev[(ev["trial_type"] == "artifact") & (ev["reason"] == "noise-change")]
    assert len(art) == 1, ev
    onset, dur = float(art["onset"].iloc[0]), float(art["duration"].iloc[0])
    assert abs(onset - STEP_S) < 0.5
    assert 9.0 < dur < 12.0  # the floor's window (10 s) of evidence, then it follows
    q = an.channel_quality["Gastroc med L"]
    assert "noise-change" in q["flags"]
    assert q["noise_changes"][0]["onset_s"] == pytest.approx(STEP_S, abs=1.0)
    assert q["noise_changes"][0]["ratio"] == pytest.approx(3.0, rel=0.15)
    assert any("noise level" in w and "Gastroc med L" in w for w in quality_warnings(an))
    site = an.sites[0]
    assert "noise-change:Gastroc med L" in site.quality
    assert site.excluded_s["sustained"] >= dur  # the episode's span, as any activity's


def test_fasciculations_after_the_rise_are_counted(stepped):
    _rec, an = stepped
    ev = an.events
    fasc = ev[ev["trial_type"] == "fasciculation"]
    for s in SINGLES_S:
        if STEP_S <= s < STEP_S + 12:
            continue  # inside the span of evidence: not analysed
        assert (np.abs(fasc["onset"] - s) < 0.02).any(), (s, fasc)
    assert len(fasc) == len([s for s in SINGLES_S if not STEP_S <= s < STEP_S + 12])


def test_without_the_rule_the_rise_was_one_long_cramp(stepped, monkeypatch):
    """The failure this guards against: the floor never followed the new level."""
    rec, _an = stepped
    monkeypatch.setattr(core, "_follow_noise_change", lambda *a, **k: None)
    ev = analyze(rec).events
    sus = ev[ev["trial_type"].isin(["cramp", "voluntary"])]
    assert (sus["duration"] > 40).any(), ev
    fasc = ev[ev["trial_type"] == "fasciculation"]
    assert not (fasc["onset"] > STEP_S).any()


def test_noise_change_is_the_same_for_any_chunking(stepped):
    rec, an = stepped
    whole = an.events.reset_index(drop=True)
    rng = np.random.default_rng(3)
    for _ in range(3):
        cuts = np.sort(rng.integers(1, rec.n_samples, 40))
        got = run_chunked(rec, cuts).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, whole)


@pytest.mark.parametrize("fs", [500.0, 1000.0])
def test_a_rise_is_followed_on_low_cost_boards(fs):
    ev = analyze(_recording(3.0, fs)).events
    assert not ev["trial_type"].isin(["cramp", "voluntary"]).any(), ev
    assert (ev["reason"] == "noise-change").sum() == 1
    fasc = ev[ev["trial_type"] == "fasciculation"]
    assert (fasc["onset"] > STEP_S + 12).sum() == sum(s > STEP_S + 12 for s in SINGLES_S)


def test_below_500_hz_the_rule_is_off_and_the_warning_says_so():
    an = analyze(_recording(3.0, 250.0))
    assert not (an.events["reason"] == "noise-change").any()
    assert any("noise cannot be told" in w for w in an.warnings), an.warnings


def test_a_small_rise_is_followed_too():
    an = analyze(_recording(1.5))
    ev = an.events
    assert not ev["trial_type"].isin(["cramp", "voluntary"]).any(), ev
    fasc = ev[ev["trial_type"] == "fasciculation"]
    assert len(fasc) >= len(SINGLES_S) - 2


def test_spread_tells_discharges_from_noise():
    rng = np.random.default_rng(0)
    noise = rng.chisquare(10, (50, 10, 100)) / 10  # 50 runs of 10 blocks of 100 noise bins
    d = bin_spread(np.sqrt(noise))  # (50, 10): that of a chi-square with 10 dof, ~0.6
    assert np.median(d) == pytest.approx(0.6, rel=0.15)
    firing = noise.copy()
    firing[..., ::2] *= 4  # a discharge in every other bin
    assert (bin_spread(np.sqrt(firing)) > 1.5 * np.median(d)).all()
    twitches = noise.copy()
    twitches[..., ::10] *= 30  # a large fasciculation in a tenth of the bins: quartiles
    assert np.median(bin_spread(np.sqrt(twitches))) < 1.2 * np.median(d)  # hardly move
    sd = 7.0 * rng.uniform(0.97, 1.03, (50, 10))
    rest, floor = np.full(50, 0.6), np.full(50, 3.5)  # the noise rose 2x
    assert looks_like_noise(d, sd, rest, 0.6, floor).mean() > 0.95
    assert looks_like_noise(bin_spread(np.sqrt(twitches)), sd, rest, 0.6, floor).mean() > 0.9
    assert not looks_like_noise(bin_spread(np.sqrt(firing)), sd, rest, 0.6, floor).any()
    waxing = sd * np.linspace(1.0, 2.5, 10)[None, :]  # a level that waxes: not noise
    assert not looks_like_noise(d, waxing, rest, 0.6, floor).any()
    # bursts at rest (heart beats) do not make a reference a cramp would pass
    busy_rest = np.full(50, 5.0)
    assert not looks_like_noise(bin_spread(np.sqrt(firing)), sd, busy_rest, 0.6, floor).any()
    # busy, but the robust SD did not rise: bursts on an unchanged noise
    assert not looks_like_noise(d, sd, rest, 0.6, np.full(50, 7.0)).any()
