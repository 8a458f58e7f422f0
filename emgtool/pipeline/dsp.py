"""Signal processing building blocks with explicit state.

Every function here is pure: state goes in and comes out, as with
``scipy.signal.sosfilt(sos, x, zi=zi)``.  All filters are causal so that
offline analysis and live recording give the same samples.

Examples
--------
>>> import numpy as np
>>> from emgtool.pipeline.dsp import design_filters, filter_step, init_filter_state
>>> sos = design_filters(2048.0, (20.0, 450.0), 4, mains_hz=None, harmonics=())
>>> zi = init_filter_state(sos, n_channels=2)
>>> y, zi = filter_step(sos, np.zeros((2, 100), np.float32), zi)
>>> y.shape
(2, 100)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from emgtool.pipeline import _kernels

__all__ = [
    "band_power",
    "floor_bias",
    "rms_level",
    "effective_band",
    "design_filters",
    "init_filter_state",
    "filter_step",
    "detect_mains",
    "robust_sd",
]

MAINS_CANDIDATES_HZ = (50.0, 60.0)


def effective_band(fs: float, band_hz: tuple[float, float]) -> tuple[float, float]:
    """Band-pass corners kept below Nyquist (upper corner ≤ 0.45·fs)."""
    lo, hi = band_hz
    hi = min(hi, 0.45 * fs)
    lo = min(lo, 0.5 * hi)
    return (lo, hi)


def design_filters(
    fs: float,
    band_hz: tuple[float, float],
    order: int,
    *,
    mains_hz: float | None,
    harmonics: tuple[int, ...],
    notch_q: float = 30.0,
) -> NDArray[np.float64]:
    """One SOS cascade: Butterworth band-pass followed by mains notches.

    Parameters
    ----------
    harmonics : tuple of int
        Which multiples of ``mains_hz`` to notch (1 = fundamental); only those
        found in the data (see :func:`detect_mains`), so clean recordings pay
        for no notch at all.
    """
    lo, hi = effective_band(fs, band_hz)
    sections = [signal.butter(order, [lo, hi], "bandpass", fs=fs, output="sos")]
    if mains_hz:
        for k in harmonics:
            f0 = k * mains_hz
            if f0 < 0.48 * fs:
                b, a = signal.iirnotch(f0, notch_q, fs=fs)
                sections.append(signal.tf2sos(b, a))
    return np.concatenate(sections, axis=0)


def init_filter_state(
    sos: NDArray, n_channels: int, first: NDArray | None = None
) -> NDArray[np.float32]:
    """Initial conditions, shape ``(n_sections, n_channels, 2)``.

    With ``first`` (one value per channel: the first sample), the filter
    starts in the steady state for that constant input, so a DC offset gives
    no step transient.  It depends on one sample only, never on the length of
    the first chunk, so chunked and whole-file results stay identical.
    """
    zi = np.zeros((sos.shape[0], n_channels, 2), dtype=np.float32)
    if first is not None:
        base = signal.sosfilt_zi(sos)  # (n_sections, 2) for a unit step
        zi[:] = (base[:, None, :] * np.asarray(first, np.float64)[None, :, None]).astype(
            np.float32
        )
    return zi


def filter_step(
    sos: NDArray, x: NDArray[np.float32], zi: NDArray[np.float32], head: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Filter a ``(n_channels, n)`` chunk, carrying ``zi`` (float32 throughout).

    Channels are independent, so large chunks are split in two halves filtered
    in parallel (see :mod:`emgtool.pipeline._kernels`); the result is bit-identical
    to one call.  ``head``: room for that many earlier columns in front of the
    output (see :func:`emgtool.pipeline._kernels.sosfilt`).
    """
    if x.shape[1] == 0:
        return x.astype(np.float32, copy=True), zi
    return _kernels.sosfilt(sos.astype(np.float32), x, zi, head)


def robust_sd(x: NDArray, axis: int = -1) -> NDArray[np.float64]:
    """Noise SD from the median absolute value (σ = median|x| / 0.6745).

    For a zero-mean band-passed signal the median absolute value equals the
    MAD; it ignores sparse large potentials, unlike the plain SD.
    """
    return np.median(np.abs(x), axis=axis) / 0.6745


def percentile_last_axis(v: NDArray, pct: float, presorted: bool = False) -> NDArray:
    """``np.percentile(v, pct, axis=-1)`` ("linear"), cheap for short last axes.

    np.percentile costs ~0.1 ms of overhead per call, and a noise floor is
    needed per block; the same arithmetic serves one block or thousands, so
    every floor is the same whichever way it was computed.  With ``presorted``
    ``v`` is already sorted along its last axis (several percentiles, one sort).

    >>> percentile_last_axis(np.array([3.0, 0.0, 4.0, 1.0, 2.0]), 25.0).item()
    1.0
    """
    w = v.shape[-1]
    if not presorted:
        v = np.sort(v, axis=-1)
    pos = pct / 100.0 * (w - 1)
    i = int(np.floor(pos))
    t = np.float32(pos - i)
    lo, hi = v[..., i], v[..., min(i + 1, w - 1)]
    return (lo + t * (hi - lo)).astype(np.float32)


def band_power(sos: NDArray, fs: float, n_fft: int = 8192) -> tuple[NDArray, NDArray]:
    """Frequencies (Hz) and power response ``|H(f)|²`` of ``sos`` on an ``n_fft`` grid."""
    f, h = signal.sosfreqz(sos, worN=n_fft // 2 + 1, fs=fs)
    return f, np.abs(h) ** 2


def _noise_autocorr(sos: NDArray, fs: float, n_fft: int = 1 << 16) -> NDArray[np.float64]:
    """Autocorrelation (lags 0, 1, … n_fft/2 - 1) of white noise through ``sos``."""
    ac = np.fft.irfft(band_power(sos, fs, n_fft)[1], n=n_fft)
    return ac[: n_fft // 2] / ac[0]


def bin_dof(sos: NDArray, fs: float, bin_n: int) -> float:
    """Degrees of freedom of the mean square of ``bin_n`` samples of white noise through ``sos``.

    The mean square is a sum of squares of correlated Gaussian samples,
    approximated as chi-square with Satterthwaite's degrees of freedom
    ``bin_n² / Σ (bin_n - |l|)·ρ(l)²``.

    >>> sos = design_filters(2048.0, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    >>> round(bin_dof(sos, 2048.0, 20), 1)
    10.8
    """
    rho = _noise_autocorr(sos, fs)[:bin_n]
    lags = np.arange(bin_n)
    return bin_n**2 / float(bin_n + 2.0 * ((bin_n - lags[1:]) * rho[1:] ** 2).sum())


def rms_level(sos: NDArray, fs: float, bin_n: int, p: float) -> float:
    """RMS (in noise SDs) that a bin of ``bin_n`` noise samples exceeds with probability ``p``.

    The bin's mean square is taken as chi-square with :func:`bin_dof` degrees of
    freedom.  Short bins of few samples (10 ms at 250 Hz is 2 samples) scatter
    widely: a fixed 2σ level that noise exceeds once in 10⁵ bins at 2 kHz is
    exceeded by one bin in 50 there.

    >>> sos = design_filters(2048.0, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    >>> round(rms_level(sos, 2048.0, 20, 3e-5), 2)
    1.93
    >>> sos = design_filters(250.0, (20.0, 112.5), 2, mains_hz=None, harmonics=())
    >>> round(rms_level(sos, 250.0, 2, 3e-5), 2)
    3.23
    """
    from scipy.stats import chi2

    dof = bin_dof(sos, fs, bin_n)
    return float(np.sqrt(chi2.isf(p, dof) / dof))


def floor_bias(
    sos: NDArray, fs: float, block_n: int, step: int, n_blocks: int, pct: float
) -> float:
    """Expected noise floor over the true noise SD, for Gaussian noise through ``sos``.

    The floor is the ``pct`` percentile of the robust SDs of the last
    ``n_blocks`` blocks, each taken from every ``step``-th of ``block_n``
    samples.  Each block's estimate scatters (relative SE ``r``), and a low
    percentile of a few scattered estimates lies below their mean: the floor
    underestimates the SD by ``|z|·r``, where ``z`` is the expected ``pct``
    percentile of ``n_blocks`` standard normal values.  At 2048 Hz (512
    samples a block, 20-450 Hz) that is about 3 %, which lets Gaussian noise
    pass a calibrated level of 5.7 about twice as often as designed
    (at 250 Hz, 62 samples a block: 9 %, ten times as often).

    ``r``: the median-based SD of ``N`` independent Gaussian samples has
    variance ``1.36·σ²/N``; correlated samples add the covariances of the
    median's score, ``1{|x| < q}`` (q = 0.6745), whose Hermite expansion
    gives ``0.368·ρ² + 0.198·ρ⁴`` per lag of correlation ``ρ``.

    >>> sos = design_filters(2048.0, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    >>> round(floor_bias(sos, 2048.0, 2048, 4, 10, 25.0), 3)
    0.97
    """
    from scipy.special import ndtri

    rho = _noise_autocorr(sos, fs)[step::step]  # correlation of samples step, 2·step, … apart
    factor = 1.0 + 2.0 * float((0.368 * rho**2 + 0.198 * rho**4).sum())
    r = np.sqrt(1.36 * factor / max(1, block_n // step))
    # Expected order statistics (Blom), interpolated as np.percentile does.
    pos = (n_blocks - 1) * pct / 100.0
    i = int(np.floor(pos))
    z_of = [
        float(ndtri((j + 1 - 0.375) / (n_blocks + 0.25))) for j in (i, min(i + 1, n_blocks - 1))
    ]
    z = z_of[0] + (pos - i) * (z_of[1] - z_of[0])
    return float(1.0 + z * r)


def detect_mains(
    x: NDArray[np.float32], fs: float, *, min_ratio: float = 3.0
) -> tuple[float | None, tuple[int, ...], NDArray[np.float64], NDArray[np.float64]]:
    """Find mains interference (50 or 60 Hz and harmonics) in raw samples.

    A line counts when its power stands ``min_ratio`` above the median of its
    spectral neighbourhood, in the spectrum pooled over channels *or* in any
    single channel (one disconnected electrode among clean ones is enough).

    Returns
    -------
    mains_hz : float or None
        50.0, 60.0, or None when no line stands out.
    harmonics : tuple of int
        Multiples of ``mains_hz`` that stand out (to be notched).
    mains_ratio : ndarray, shape (n_channels,)
        Fraction of each channel's 20 Hz–Nyquist power in the mains lines
        (1 = pure mains, e.g. a disconnected electrode).
    mains_rms_uv : ndarray, shape (n_channels,)
        RMS amplitude of the mains lines per channel.
    """
    n_ch, n = x.shape
    zeros = np.zeros(n_ch)
    nperseg = int(min(n, 2 ** int(np.ceil(np.log2(fs)))))  # ~1 Hz resolution
    if nperseg < 64:
        return None, (), zeros, zeros
    clean = np.where(np.isfinite(x), x, 0.0)
    f, pxx = signal.welch(clean, fs=fs, nperseg=nperseg, axis=-1, detrend="constant")
    df = f[1] - f[0]
    norm = pxx / np.maximum(pxx.sum(axis=1, keepdims=True), 1e-30)
    spectra = np.vstack([np.median(norm, axis=0)[None, :], norm])  # pooled, then each channel

    def line_scores(f0: float) -> NDArray:
        k = int(round(f0 / df))
        if k + 12 >= len(f):
            return np.zeros(len(spectra))
        peak = spectra[:, max(k - 1, 0) : k + 2].max(axis=1)
        neigh = np.concatenate(
            [spectra[:, max(k - 12, 0) : max(k - 3, 0)], spectra[:, k + 4 : k + 13]], axis=1
        )
        return peak / np.maximum(np.median(neigh, axis=1), 1e-30)

    best, best_h, best_score = None, (), 0.0
    scores = {
        f0: {h: line_scores(h * f0) for h in range(1, 10) if h * f0 < 0.48 * fs}
        for f0 in MAINS_CANDIDATES_HZ
    }
    # The pooled spectrum decides when it can (lines common to the montage); a
    # line in a single channel (a disconnected electrode) decides otherwise.
    for rows in (slice(0, 1), slice(1, None)):
        for f0 in MAINS_CANDIDATES_HZ:
            sc = {h: float(v[rows].max()) for h, v in scores[f0].items()}
            hs = tuple(h for h, v in sc.items() if v >= min_ratio)
            score = max((sc[h] for h in hs), default=0.0)
            if hs and score > best_score:
                best, best_h, best_score = f0, hs, score
        if best is not None:
            break
    if best is None:
        return None, (), zeros, zeros

    def line_power(f0):
        k = int(round(f0 / df))
        return pxx[:, max(k - 1, 0) : min(k + 2, len(f))].sum(axis=-1)

    band = f >= 20.0
    total = pxx[:, band].sum(axis=1)
    mains_p = sum(line_power(h * best) for h in best_h)
    ratio = np.clip(mains_p / np.maximum(total, 1e-30), 0.0, 1.0)
    rms = np.sqrt(mains_p * df)
    return best, best_h, ratio, rms
