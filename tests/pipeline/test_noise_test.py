"""The matched-filter noise test (pipeline/wavelets.py): noise crossings are not potentials."""

import numpy as np
import pytest
from scipy import signal

from emgtool.config import DetectorConfig
from emgtool.pipeline import dsp
from emgtool.pipeline.analyze import analyze
from emgtool.pipeline.wavelets import (
    noise_level,
    probe_gains,
    reach_samples,
    wavelet_bank,
    wavelet_score,
    white_gains,
)
from emgtool.scoring import evaluate
from emgtool.simulate import simulate

FS = 2048.0


def _band_noise(n_ch: int, n: int, seed: int) -> np.ndarray:
    sos = dsp.design_filters(FS, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    x = np.random.default_rng(seed).standard_normal((n_ch, n))
    return signal.sosfilt(sos, x, axis=1)


@pytest.mark.parametrize("fs", [250.0, 500.0, 1000.0, 2048.0, 4096.0])
def test_bank_fits_the_candidate_window_at_any_rate(fs):
    half_n = max(2, int(round(15.0 * fs / 1000.0)))
    bank = wavelet_bank(fs, half_n)
    reach = reach_samples(fs, half_n)
    assert bank.shape[1] % 2 == 1
    assert half_n - reach - bank.shape[1] // 2 >= 0  # every position fits the window
    assert np.allclose((bank**2).sum(axis=1), 1.0)
    assert np.allclose(bank.sum(axis=1), 0.0, atol=1e-9)


def test_noise_level_bounds_the_rate_of_white_noise():
    """Rice's formula, summed over the bank, bounds how often noise reaches the level."""
    bank = wavelet_bank(FS, 31)
    sos = dsp.design_filters(FS, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    rate_per_h = 20000.0  # a low level, so that 10 min of noise shows it often
    u = noise_level(bank, sos, FS, rate_per_h)
    y = _band_noise(1, int(600 * FS), 1)
    sd = dsp.robust_sd(y, axis=-1)[0]
    gains = white_gains(bank, sos, FS)
    best = np.zeros(y.shape[1])
    for h, g in zip(bank, gains, strict=True):
        best = np.maximum(best, np.abs(np.convolve(y[0], h[::-1], mode="same")) / (sd * g))
    crossings = np.count_nonzero((best[1:] >= u) & (best[:-1] < u))
    predicted = rate_per_h * 600 / 3600
    assert predicted / 6 <= crossings <= predicted  # a union bound: fewer, not far fewer


def test_probe_gains_measure_the_noise_colour():
    bank = wavelet_bank(FS, 31)
    sos = dsp.design_filters(FS, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    white = _band_noise(1, int(20 * FS), 2)
    measured = probe_gains(white, bank)[0]
    assert np.allclose(measured, white_gains(bank, sos, FS), rtol=0.05)
    # Low-pass noise (say a 150 Hz amplifier) carries more of its power in the wide shapes.
    lp = signal.sosfilt(signal.butter(4, 150.0, fs=FS, output="sos"), white, axis=1)
    g_lp = probe_gains(lp, bank)[0]
    assert g_lp[-1] / g_lp[0] > 1.5 * measured[-1] / measured[0]


def test_score_is_high_for_a_potential_and_low_for_a_noise_window():
    bank = wavelet_bank(FS, 31)
    sos = dsp.design_filters(FS, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    gains = np.tile(white_gains(bank, sos, FS), (2, 1))
    t = (np.arange(62) - 31) / FS
    pot = 60.0 * (-t / 0.0015) * np.exp(-0.5 * (t / 0.0015) ** 2)  # biphasic, ~8 ms
    noise = _band_noise(1, 62, 3)[0] * 10.0
    waves = np.stack([pot + noise, noise]).astype(np.float32)
    score = wavelet_score(waves, np.array([10.0, 10.0]), gains, bank, 31, reach_samples(FS, 31))
    assert score[0] > 6.0
    assert score[1] < 4.0


def _quiet(seed: int):
    # Background noise only (no voluntary bursts or artefacts): every detection is a noise crossing.
    return simulate(
        "healthy",
        duration_s=300.0,
        seed=seed,
        snr_db=3.0,
        nuisances={"pink", "white"},
        n_voluntary=0,
    )


def test_noise_crossings_are_not_counted_as_fasciculations():
    rec, _ = _quiet(7)
    hours = rec.duration_s / 3600 * rec.n_channels
    off = analyze(rec, config=DetectorConfig(fasc_noise_per_h=None)).events
    on = analyze(rec).events
    n_off = int((off.trial_type == "fasciculation").sum())
    n_on = int((on.trial_type == "fasciculation").sum())
    # Without the test a 5σ threshold passes several noise peaks per channel-hour (Rice).
    assert n_off / hours >= 3.0
    assert n_on / hours <= 1.0
    assert n_on <= n_off / 4


def test_noise_test_keeps_true_potentials():
    rec, truth = simulate(
        "als-widespread", duration_s=120.0, seed=11, snr_db=6.0, nuisances={"pink", "white"}
    )
    scores = {}
    for name, cfg in (("off", DetectorConfig(fasc_noise_per_h=None)), ("on", DetectorConfig())):
        ev = analyze(rec, config=cfg).events
        scores[name] = evaluate(ev, truth, duration_s=rec.duration_s)["fasciculation"]["overall"]
    # Over the 4σ pre-selection the test gives up ~2 % of true potentials (the
    # weakest, whose matched outputs noise reaches more than once an hour).
    assert scores["on"]["tp"] >= 0.97 * scores["off"]["tp"]
    assert scores["on"]["fp"] <= scores["off"]["fp"]


@pytest.mark.parametrize("fs", [1000.0, 2048.0])
def test_floor_bias_predicts_the_pipeline_noise_floor(fs):
    """The noise floor (a low percentile of scattered block SDs) sits a few % under
    the noise SD; dsp.floor_bias predicts by how much, for the pipeline's own filter."""
    from emgtool.pipeline.core import flush, init_state, step
    from emgtool.recording import Recording

    n = int(200 * fs)
    x = np.random.default_rng(3).standard_normal((4, n)) * 20.0
    rec = Recording.from_array(
        x.astype(np.float32), fs=fs, labels=["Biceps L", "Biceps R", "Tib ant L", "Tib ant R"]
    )
    st = init_state(fs, rec.channels)
    for a in range(0, n, 8192):
        _, st = step(rec.slice(a, min(n, a + 8192)), st)
    _, st = flush(st)
    true_sd = signal.sosfilt(st.sos, x, axis=1)[:, int(10 * fs) :].std(axis=1)
    floors = np.array([f for f in st.sd_floor[10:] if f is not None])
    measured = float(np.mean(floors.mean(axis=0) / true_sd))
    assert measured < 0.99  # the bias is real ...
    assert abs(measured - st.floor_bias) < 0.008, (measured, st.floor_bias)  # ... and predicted


def test_noise_test_passes_gaussian_noise_at_no_more_than_its_rate():
    """With a low candidate threshold the noise test alone decides; on Gaussian noise
    its pass rate must stay under the rate it is set to (Rice, a union bound), which
    needs the noise floor's SD unbiased (the floor is ~3 % low: twice the rate)."""
    n_ch, dur_s = 8, 450.0  # one channel-hour
    x = np.random.default_rng(5).standard_normal((n_ch, int(dur_s * FS))) * 20.0
    from emgtool.recording import Recording

    labels = [
        "Biceps L",
        "Biceps R",
        "Tib ant L",
        "Tib ant R",
        "Deltoid L",
        "Deltoid R",
        "Soleus L",
        "Soleus R",
    ]
    rec = Recording.from_array(x.astype(np.float32), fs=FS, labels=labels)
    cfg = DetectorConfig(
        fasc_threshold_sd=3.0, fasc_noise_per_h=100.0, fasc_min_pp_uv=0.0, ecg_reject=False
    )
    ev = analyze(rec, config=cfg).events
    n_fasc = int((ev.trial_type == "fasciculation").sum())
    assert n_fasc <= 100, n_fasc


def test_busy_site_level_holds_the_share_of_noise_crossings():
    """A site's level comes down with its rate of clear potentials, by Rice's formula, so
    that noise would make ``fasc_fdr`` of what is counted there; a quiet site keeps it."""
    from emgtool.pipeline import core
    from emgtool.recording import Recording

    rec = Recording.from_array(
        np.zeros((3, 10), np.float32), fs=FS, labels=["Biceps L", "Biceps L", "Tib ant R"]
    )
    st = core.init_state(FS, rec.channels, DetectorConfig(fasc_fdr=0.01))
    st.wav_level = 5.7
    now = int(400 * FS)
    # Biceps L (2 electrodes): 600 clear potentials in the last 5 min = 7200/h.
    st.clear_peaks[0] = sorted(now - np.linspace(FS, 290 * FS, 600).astype(int))
    # Tib ant R: 5 in 5 min (too few to tell a rate) and an old burst beyond the window.
    st.clear_peaks[1] = sorted([int(20 * FS) + k for k in range(200)] + [now - int(FS)] * 5)
    busy = core._busy_level(st, 0, now)
    allowed = 0.01 * 7200 / 2  # noise crossings per channel-hour allowed on Biceps L
    assert busy < 5.7
    assert np.isclose(np.exp(-(busy**2 - 5.7**2) / 2), allowed / 1.0, rtol=1e-6)
    assert core._busy_level(st, 1, now) == 5.7
    # Only potentials before the candidate count (decisions run in time order).
    assert core._busy_level(st, 0, now - int(300 * FS)) == 5.7
    st.cfg = DetectorConfig(fasc_fdr=0.0)
    assert core._busy_level(st, 0, now) == 5.7


def test_busy_sites_find_more_weak_potentials_at_the_same_precision():
    rec, truth = simulate(
        "als-widespread", duration_s=240.0, seed=11, snr_db=6.0, nuisances={"pink", "white"}
    )
    res = {}
    for q in (0.0, 0.01):
        ev = analyze(rec, config=DetectorConfig(fasc_fdr=q)).events
        res[q] = evaluate(ev, truth, duration_s=rec.duration_s)["fasciculation"]["overall"]
    gained, added = res[0.01]["tp"] - res[0.0]["tp"], res[0.01]["fp"] - res[0.0]["fp"]
    assert gained >= 0.01 * res[0.0]["tp"], res
    assert added <= gained / 2, res
    assert res[0.01]["precision"] >= 0.97, res


def test_quiet_recordings_keep_the_strict_level():
    rec, _ = _quiet(7)
    strict = analyze(rec, config=DetectorConfig(fasc_fdr=0.0)).events
    adaptive = analyze(rec).events
    assert strict["sample"].tolist() == adaptive["sample"].tolist()
