"""Cardiac tracker: the shape threshold follows the noise of the site's own beats."""

import numpy as np

from emgtool.pipeline.ecg import SHAPE_KEEP, CardiacTracker, classify, keep_threshold, reference

FS = 2048.0
RR = int(0.8 * FS)


def _qrs(n: int = 102) -> np.ndarray:
    t = np.arange(n) - n / 2
    return (-t / 6.0 * np.exp(-((t / 6.0) ** 2))).astype(np.float32) * 100.0


def _run(noise_uv: float, n_beats: int = 120, seed: int = 0) -> tuple[CardiacTracker, np.ndarray]:
    """Beats at a steady rhythm; the first three are clean (the lock, as on the start-up probe)."""
    rng = np.random.default_rng(seed)
    tr = CardiacTracker()
    w = _qrs()
    out = []
    for k in range(n_beats):
        sd = 1.0 if k < 3 else noise_uv
        x = w + rng.normal(0, sd, len(w)).astype(np.float32)
        out.append(classify(tr, 2048 + k * RR, x, FS))
    return tr, np.array(out)


def test_clean_beats_keep_the_strict_threshold():
    tr, got = _run(noise_uv=1.0)
    assert got[3:].all()
    assert keep_threshold(tr) == SHAPE_KEEP


def test_noisy_beats_stay_on_the_rhythm():
    # At this noise about a fifth of the beats fall below SHAPE_KEEP (fixed threshold: 78 % tracked).
    tr, got = _run(noise_uv=12.0)
    assert tr.locked
    assert keep_threshold(tr) < SHAPE_KEEP
    assert got[10:].mean() >= 0.95


def test_other_shape_on_the_beat_is_not_taken_when_beats_are_clean():
    tr, _ = _run(noise_uv=1.0, n_beats=20)
    t = np.arange(102)
    other = (np.sin(2 * np.pi * t / 12.0) * np.hanning(102) * 100).astype(np.float32)
    assert not classify(tr, tr.last + RR, other, FS)


def _two_wave(n: int = 102, gap: int = 24) -> np.ndarray:
    """A QRS whose R and S waves are equally large, ``gap`` samples apart."""
    t = np.arange(n, dtype=np.float64)
    c = n / 2 - gap / 2
    return (np.exp(-(((t - c) / 4.0) ** 2)) - np.exp(-(((t - c - gap) / 4.0) ** 2))) * 100.0


def test_beats_centred_on_r_or_s_keep_a_sharp_template():
    # Noise decides whether R or S is a beat's largest sample, so windows come centred
    # on either wave.  Averaged unaligned, the template smears into both; aligned, it
    # stays the QRS and keeps matching the beats.
    rng = np.random.default_rng(3)
    w = _two_wave()
    tr = CardiacTracker()
    got = []
    for k in range(80):
        shift = 12 if k % 2 else -12
        x = np.roll(w, shift) + rng.normal(0, 8.0, len(w))
        got.append(classify(tr, 2048 + k * RR + shift, x.astype(np.float32), FS))
    assert np.mean(got[3:]) >= 0.95
    c = max(np.corrcoef(np.roll(tr.template, s), w)[0, 1] for s in range(-14, 15))
    assert c >= 0.95


def test_same_shape_but_five_times_larger_is_not_the_beat():
    tr, _ = _run(noise_uv=1.0, n_beats=20)
    assert not classify(tr, tr.last + RR, 5 * _qrs(), FS)
    assert classify(tr, tr.last + RR, _qrs(), FS)  # the rhythm goes on


def test_a_potential_off_the_steady_rhythm_of_another_site_does_not_lock():
    # Three regular potentials of one shape (a unit firing near the heart rate) would
    # lock a site's tracker; the heart seen steady at another site beats elsewhere.
    steady, _ = _run(noise_uv=1.0, n_beats=20)
    ref = reference(steady, steady.last + 10 * RR)
    assert ref is not None
    unit = -_qrs()
    t0 = steady.last + int(0.45 * RR)
    alone, other = CardiacTracker(), CardiacTracker()
    for k in range(4):
        alone_got = classify(alone, t0 + k * RR, unit, FS)
        other_got = classify(other, t0 + k * RR, unit, FS, refs=[ref])
    assert alone.locked and alone_got
    assert not other.locked and not other_got
    # On the reference's beats the same potentials lock at once.
    on_beat = CardiacTracker()
    got = [classify(on_beat, steady.last + (k + 1) * RR, unit, FS, refs=[ref]) for k in range(3)]
    assert got[-1] and on_beat.locked


def test_an_early_look_alike_does_not_throw_the_rhythm_off_phase():
    tr, _ = _run(noise_uv=1.0, n_beats=20)
    beat = tr.last + RR
    early = beat - int(0.12 * RR)  # inside the timing window, before the QRS
    assert classify(tr, early, 0.9 * _qrs(), FS)
    # The true beat fits the predicted time better: it replaces the look-alike...
    assert classify(tr, beat, _qrs(), FS)
    assert abs(tr.last - beat) <= 2
    # ...and the rhythm goes on in phase.
    assert all(classify(tr, beat + k * RR, _qrs(), FS) for k in range(1, 5))


def test_interval_precheck_never_rejects_a_chain_the_full_search_finds(monkeypatch):
    """_may_chain (peaks only) must be a necessary condition of _chain (aligned
    waveforms): histories it rejects are never chains, so skipping their
    alignment changes no result.  Random histories, half of them built around
    a rhythm with jitter up to the alignment lag, and waveforms of one shape
    shifted by up to the lag (so that alignments move fiducials as far as allowed)."""
    from emgtool.pipeline import ecg

    rng = np.random.default_rng(1)
    lag = ecg._lag(FS)
    base = _qrs()
    may_chain = ecg._may_chain
    monkeypatch.setattr(ecg, "_may_chain", lambda *a: True)  # _chain: the full search
    found = rejected = 0
    for trial in range(1500):
        n = int(rng.integers(3, 13))
        if trial % 2:
            rr = rng.uniform(ecg.RR_MIN_S, ecg.RR_MAX_S) * FS
            ts = np.cumsum(rr * rng.uniform(0.8, 1.2, n)) + rng.integers(-lag, lag + 1, n)
        else:
            ts = np.cumsum(rng.uniform(0.05, 1.0, n) * FS)
        ts = np.sort(ts.astype(int))
        hist = [(int(t), np.roll(base, int(rng.integers(-lag, lag + 1)))) for t in ts]
        full = ecg._chain(hist, FS)
        may = may_chain([t for t, _ in hist[:-1]], hist[-1][0], FS, lag)
        found += full is not None
        rejected += not may
        assert may or full is None, (trial, ts)
    assert found >= 100 and rejected >= 100, (found, rejected)  # both cases exercised
