"""Cardiac tracker: the shape threshold follows the noise of the site's own beats."""

import numpy as np

from emgtool.pipeline.ecg import SHAPE_KEEP, CardiacTracker, classify, keep_threshold

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
