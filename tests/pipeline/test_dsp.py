"""Preprocessing building blocks."""

import numpy as np
import pytest
from scipy import signal

from emgtool.config import DetectorConfig
from emgtool.pipeline import dsp


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_detects_mains_frequency_and_harmonics(mains):
    fs = 2048.0
    rng = np.random.default_rng(0)
    t = np.arange(int(5 * fs)) / fs
    x = (
        rng.normal(0, 5, (3, t.size))
        + 40 * np.sin(2 * np.pi * mains * t)
        + 10 * np.sin(2 * np.pi * 3 * mains * t)
    )
    f0, harmonics, ratio, rms = dsp.detect_mains(x.astype(np.float32), fs)
    assert f0 == mains
    assert 1 in harmonics and 3 in harmonics
    assert (ratio > 0.5).all()
    assert np.allclose(rms, np.hypot(40, 10) / np.sqrt(2), rtol=0.15)


def test_no_mains_in_clean_noise():
    x = np.random.default_rng(1).normal(0, 5, (2, 10240)).astype(np.float32)
    f0, harmonics, _, _ = dsp.detect_mains(x, 2048.0)
    assert f0 is None and harmonics == ()


def test_band_kept_below_nyquist():
    lo, hi = dsp.effective_band(250.0, (20.0, 450.0))
    assert hi <= 0.45 * 250 and lo < hi


def test_chunked_filter_equals_one_shot():
    fs = 2048.0
    sos = dsp.design_filters(fs, (20, 450), 2, mains_hz=50, harmonics=(1, 3))
    x = np.random.default_rng(2).normal(0, 10, (4, 20000)).astype(np.float32) + 500
    zi = dsp.init_filter_state(sos, 4, x[:, 0])
    y1, _ = dsp.filter_step(sos, x, zi)
    parts, z = [], dsp.init_filter_state(sos, 4, x[:, 0])
    for a, b in [(0, 1), (1, 997), (997, 12000), (12000, 20000)]:
        y, z = dsp.filter_step(sos, x[:, a:b], z)
        parts.append(y)
    assert np.array_equal(y1, np.concatenate(parts, axis=1))
    # Starting from the first sample's steady state: a DC offset gives no transient.
    assert np.abs(y1[:, :200]).max() < 60


def test_robust_sd_ignores_sparse_spikes():
    x = np.random.default_rng(3).normal(0, 4, 20000)
    x[::100] = 500
    assert dsp.robust_sd(x) == pytest.approx(4, rel=0.1)
    assert np.std(x) > 20


def test_filter_matches_scipy():
    fs = 2048.0
    cfg = DetectorConfig()
    sos = dsp.design_filters(fs, cfg.band_hz, cfg.filter_order, mains_hz=None, harmonics=())
    ref = signal.butter(cfg.filter_order, [20, 450], "bandpass", fs=fs, output="sos")
    assert np.allclose(sos, ref)


@pytest.mark.parametrize("n_ch, n", [(1, 7), (3, 255), (16, 257), (64, 1000)])
def test_compiled_filter_is_bit_identical_to_scipy(n_ch, n):
    """The numba cascade must equal scipy's sosfilt exactly, tile edges included."""
    from emgtool.pipeline import _kernels

    if not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed: the scipy fallback is used")
    rng = np.random.default_rng(n_ch * 1000 + n)
    sos = dsp.design_filters(2048.0, (20.0, 450.0), 2, mains_hz=50.0, harmonics=(1, 3)).astype(
        np.float32
    )
    x = (rng.standard_normal((n_ch, n)) * 100).astype(np.float32)
    zi = (rng.standard_normal((sos.shape[0], n_ch, 2)) * 10).astype(np.float32)
    zi_before = zi.copy()
    y, zf = _kernels.sosfilt(sos, x, zi)
    y_ref, zf_ref = signal.sosfilt(sos, x, axis=-1, zi=zi)
    assert y.dtype == np.float32 and zf.dtype == np.float32
    assert np.array_equal(y, y_ref) and np.array_equal(zf, zf_ref)
    assert np.array_equal(zi, zi_before)  # the caller's state is not modified


def test_compiled_raw_scan_and_bins_equal_their_numpy_fallbacks():
    """Runs of equal samples, maxima, bad-sample counts and bin sums: kernel == numpy."""
    from emgtool.pipeline import _kernels as K

    if not K.HAVE_NUMBA:
        pytest.skip("numba not installed: the numpy fallback is used")
    rng = np.random.default_rng(11)
    values = np.array([0, 1, 2, 5, np.nan, 1e9, np.inf, -np.inf], np.float32)
    for _ in range(200):
        n = int(rng.integers(0, 80))
        raw = rng.choice(values, size=(3, n), p=[0.3, 0.3, 0.2, 0.1, 0.04, 0.02, 0.02, 0.02])
        ctx = rng.choice(values[:5], size=(3, int(rng.integers(0, 5))))
        prev = (rng.random(3) * 3).astype(np.float32)
        got = K._scan_raw_jit(ctx, raw, 4, prev, np.float32(1e7))
        want = K._scan_raw_numpy(ctx, raw, 4, prev, 1e7)
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(np.asarray(g, float), np.asarray(w, float))
        bin_n = int(rng.integers(1, 30))
        acc_n = int(rng.integers(0, bin_n))
        y = rng.standard_normal((3, n)).astype(np.float32)
        acc = rng.random(3) * acc_n
        g, w = K._bin_sumsq_jit(y, bin_n, acc, acc_n), K._bin_sumsq_numpy(y, bin_n, acc, acc_n)
        assert g[0].shape == w[0].shape and np.allclose(g[0], w[0]) and g[2] == w[2]
        assert np.allclose(g[1], w[1])


def test_compiled_site_segments_equal_the_numpy_fallback():
    from emgtool.pipeline import _kernels as K

    if not K.HAVE_NUMBA:
        pytest.skip("numba not installed: the numpy fallback is used")
    rng = np.random.default_rng(5)
    for _ in range(100):
        n_ch, n = int(rng.integers(1, 6)), int(rng.integers(0, 300))
        n_sites = int(rng.integers(1, n_ch + 1))
        site_of_ch = np.r_[np.arange(n_sites), rng.integers(0, n_sites, n_ch - n_sites)]
        y = (rng.standard_normal((n_ch, n)) * 3).astype(np.float32)
        n_blk = int(rng.integers(1, 4))
        thr = rng.uniform(2, 5, (n_ch, n_blk)).astype(np.float32)
        thr[rng.random((n_ch, n_blk)) < 0.1] = np.inf
        blk_of = np.sort(rng.integers(0, n_blk, n))
        excluded = rng.random((n_ch, n)) < 0.05
        low = (thr * rng.uniform(0.4, 1.0, (n_ch, n_blk))).astype(np.float32)
        bridge_n = int(rng.integers(0, 6))
        span_n, pot_n = rng.integers(0, 12, n_sites), int(rng.integers(1, 40))
        args = (y, thr, low, blk_of, excluded, site_of_ch, n_sites, bridge_n, span_n, pot_n)
        for g, w in zip(K._site_segments_jit(*args), K._site_segments_numpy(*args), strict=True):
            assert np.array_equal(g, w)


@pytest.mark.parametrize("block_n", [2048, 2047, 1000, 5, 4])
def test_block_noise_sd_is_the_numpy_robust_sd(block_n):
    from emgtool.pipeline import _kernels as K

    rng = np.random.default_rng(block_n)
    x = (rng.standard_normal((6, block_n * 3)) * 5).astype(np.float32)
    x[2] = np.round(x[2])  # ties
    x[3] = 0.0  # one value throughout (the selection never narrows to one)
    x[4, ::3] = 1.5  # a third of the values equal, near the median
    got = K.block_robust_sd(x, block_n, 3, 4)
    want = [dsp.robust_sd(x[:, i * block_n : (i + 1) * block_n][:, ::4]) for i in range(3)]
    assert np.array_equal(got, np.array(want, np.float32))
