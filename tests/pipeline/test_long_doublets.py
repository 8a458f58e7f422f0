"""A large doublet whose two discharges and filter ringing outlast one potential's span
is still two fasciculations (not sustained activity)."""

import numpy as np

from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording
from emgtool.scoring import evaluate
from emgtool.simulate import simulate
from emgtool.sites import assign_sites

from .conftest import lobes

FS = 2048.0


def _doublets(seconds: float, wave: np.ndarray, lag_ms: float, seed: int):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    # 20 dB in the simulator's terms (2.5 µV), plus 50 Hz mains so the notches ring
    x = (
        rng.normal(0, 2.5, len(t))
        + 30 * np.sin(2 * np.pi * 50 * t)
        + 8 * np.sin(2 * np.pi * 150 * t)
    )
    first = (6.0 + np.cumsum(rng.uniform(0.8, 1.6, int(seconds))) * 1.0) * FS
    first = first[first < (seconds - 1.0) * FS].astype(int)
    # A unit's doublet intervals vary (by ±2 ms here): the same lag every time the
    # unit fires would be a polyphasic potential repeating its pattern (core.py,
    # _repeating_pattern), not two discharges.
    lags = np.round((lag_ms + rng.uniform(-2.0, 2.0, len(first))) * FS / 1000).astype(int)
    for s, lag in zip(first, lags, strict=True):
        x[s : s + len(wave)] += wave
        x[s + lag : s + lag + len(wave)] += 0.97 * wave
    return x, first, lags


def test_large_doublet_with_long_ringing_gives_two_events():
    wave = lobes([-300, 600, -450, 200], [3, 4, 5, 5])  # 17 ms, 1 mV p-p
    x, first, lags = _doublets(40.0, wave, 13.0, seed=1)
    rec = Recording(x[None].astype(np.float32), FS, assign_sites(["FDI R"]))
    ev = analyze(rec).events
    fasc = ev[(ev.trial_type == "fasciculation") & (ev.onset >= 5.5)]
    peaks = np.round(fasc["peak_s"].to_numpy() * FS).astype(int)
    n = len(wave)
    pairs = list(zip(first, lags, strict=True))
    one = [((peaks >= s) & (peaks < s + min(lag, n))).sum() for s, lag in pairs]
    two = [((peaks >= s + lag) & (peaks < s + lag + n)).sum() for s, lag in pairs]
    assert np.mean(np.array(one) == 1) >= 0.9, one
    assert np.mean(np.array(two) == 1) >= 0.9, two
    # ... and no sustained activity where the doublets are (the filter start-up aside)
    assert not ((ev.trial_type == "voluntary") & (ev.onset >= 5.5)).any()


def test_notch_ringing_after_large_potentials_is_not_a_brief_voluntary_run():
    """A mains notch rings after a large potential at 10-20 % of its size for ~0.1 s;
    the activity bins took those tails for firing (a bin fired above 10 % of the
    largest bin before it), and a few large fasciculations close together became a
    brief 'voluntary' run whose potentials were then dropped (here 5 of them).
    Tails beyond a potential's span are judged with the filter's own envelope."""
    rec, truth = simulate(
        "als-widespread",
        60.0,
        seed=1041,
        snr_db=20.0,
        nuisances={"pink", "white", "mains", "ecg", "motion"},
        mains_hz=50.0,
    )
    assert not (truth.trial_type == "voluntary").any()
    ev = analyze(rec).events
    assert not (ev.trial_type == "voluntary").any(), ev[ev.trial_type == "voluntary"]
    f = evaluate(ev, truth, duration_s=rec.duration_s)["fasciculation"]["overall"]
    assert f["sensitivity"] >= 0.985, f
