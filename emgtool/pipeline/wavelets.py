"""Potential or noise crossing? A matched-filter bank test for candidates.

A threshold on the band-passed signal alone lets Gaussian noise through at
the rate Rice's formula gives: ``2·ν0·exp(-u²/2)`` crossings per second of a
level ``u`` (in noise SDs, both polarities), where ``ν0`` is the noise's mean
rate of zero up-crossings.  White noise in 20-450 Hz has ``ν0 ≈ 266 Hz``,
so a 5σ threshold passes about 7 noise peaks per channel-hour: on quiet
recordings of healthy muscle that is the whole false rate.

A motor-unit potential is a smooth waveform of a few milliseconds with most
of its energy in a few phases; a noise crossing is one excursion as narrow as
the band allows.  Each candidate is therefore also correlated with a bank of
unit-energy potential shapes, the first and second derivatives of Gaussians
0.7-3 ms wide (mono- to triphasic potentials 3-20 ms long, the probes of
``ringing.py``): the matched filters of such potentials, as in spike
detection with the continuous wavelet transform (Nenadic & Burdick, IEEE
Trans Biomed Eng 2005;52:74).  Each filter's output is divided by its own
noise SD on the channel (measured on the start-up probe, as the noise colour
differs between electrodes and amplifiers), and a candidate is kept when the
largest output near its peak exceeds the level that Gaussian noise reaches
through any filter of the bank only ``rate_per_h`` times per hour (Rice's
formula per filter, summed: a union bound, so the real noise rate is lower).
On simulated 6 dB recordings this keeps the noise rate under 1 per
channel-hour while losing about 1 % of true potentials; noise peaks that
cross 5σ on one sample rarely carry a potential's energy.

Examples
--------
>>> import numpy as np
>>> from emgtool.pipeline import dsp
>>> sos = dsp.design_filters(2048.0, (20.0, 450.0), 2, mains_hz=None, harmonics=())
>>> bank = wavelet_bank(2048.0, half_n=31)
>>> bank.shape[0], bool(np.allclose((bank**2).sum(axis=1), 1.0))
(8, True)
>>> round(noise_level(bank, sos, 2048.0, rate_per_h=1.0), 1)
5.7
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from . import dsp

__all__ = ["wavelet_bank", "white_gains", "probe_gains", "noise_level", "wavelet_score"]

WIDTHS_MS = (0.7, 1.2, 2.0, 3.0)  # Gaussian SDs of the bank's shapes
SUPPORT_SD = 3.0  # each shape is cut at ±3 of its SDs
REACH_MS = 5.0  # the matched output is searched within ±5 ms of the candidate's peak


def wavelet_bank(fs: float, half_n: int) -> NDArray[np.float64]:
    """Unit-energy, zero-mean potential shapes, one per row, all of one odd length.

    The longest shape is shortened, if need be, so that it fits a window of
    ``2·half_n`` samples with the search reach on both sides; at low sampling
    rates the widths are at least one sample and repeated widths are dropped.
    """
    reach = reach_samples(fs, half_n)
    max_half = max(1, half_n - reach - 1)
    widths = sorted({max(1.0, round(w / 1000.0 * fs, 1)) for w in WIDTHS_MS})
    half = min(max_half, int(np.ceil(SUPPORT_SD * widths[-1])))
    t = np.arange(-half, half + 1, dtype=np.float64)
    rows = []
    for w in widths:
        u = t / w
        g = np.exp(-0.5 * u * u)
        for shape in (-u * g, (1.0 - u * u) * g):
            h = shape - shape.mean()
            rows.append(h / np.sqrt((h * h).sum()))
    return np.array(rows)


def reach_samples(fs: float, half_n: int) -> int:
    """How far from the candidate's peak the matched outputs are searched (samples)."""
    return int(min(max(1, round(REACH_MS / 1000.0 * fs)), max(1, half_n // 3)))


def white_gains(bank: NDArray, sos: NDArray, fs: float) -> NDArray[np.float64]:
    """Each filter's output SD over its input SD, for white noise through ``sos``."""
    f, p = dsp.band_power(sos, fs)
    hk = np.abs(np.fft.rfft(bank, n=2 * (len(f) - 1), axis=1)) ** 2
    return np.sqrt((hk * p[None, :]).sum(axis=1) / p.sum())


def probe_gains(y: NDArray, bank: NDArray) -> NDArray[np.float64]:
    """Each filter's output SD over the signal's SD, per channel: shape (n_ch, n_filters).

    ``y`` is band-passed noise (the start-up probe); SDs are robust (MAD), so
    the sparse potentials in it do not count.
    """
    y = np.asarray(y, np.float64)
    sd = np.maximum(dsp.robust_sd(y, axis=-1), 1e-12)
    out = np.empty((y.shape[0], len(bank)))
    for k, h in enumerate(bank):
        c = signal.fftconvolve(y, h[None, ::-1], mode="valid", axes=-1)
        out[:, k] = dsp.robust_sd(c, axis=-1) / sd
    return out


def noise_level(bank: NDArray, sos: NDArray, fs: float, rate_per_h: float) -> float:
    """Level (in each filter's noise SDs) that white noise passes ``rate_per_h`` times an hour.

    Rice's formula for each filter's output (its zero up-crossing rate from
    its spectrum), both polarities, summed over the bank.
    """
    f, p = dsp.band_power(sos, fs)
    hk = np.abs(np.fft.rfft(bank, n=2 * (len(f) - 1), axis=1)) ** 2 * p[None, :]
    nu0 = np.sqrt((hk * f[None, :] ** 2).sum(axis=1) / hk.sum(axis=1))
    return float(np.sqrt(2.0 * np.log(2.0 * 3600.0 * nu0.sum() / rate_per_h)))


def wavelet_score(
    waves: NDArray, sd_uv: NDArray, gains: NDArray, bank: NDArray, centre: int, reach: int
) -> NDArray[np.float64]:
    """Largest matched output near each waveform's centre, in that output's noise SDs.

    Parameters
    ----------
    waves : ndarray, shape (n, n_window)
        Band-passed waveforms (µV), each centred on its candidate's peak.
    sd_uv : ndarray, shape (n,)
        Noise SD of each waveform's channel.
    gains : ndarray, shape (n, n_filters)
        Each filter's output noise SD over ``sd_uv`` on that channel.
    bank : ndarray, shape (n_filters, m)
        :func:`wavelet_bank`.
    centre, reach : int
        Outputs are taken at window positions ``centre - reach … centre + reach``.
    """
    n = len(waves)
    if n == 0:
        return np.zeros(0)
    m = bank.shape[1]
    lo = centre - reach - m // 2
    views = np.lib.stride_tricks.sliding_window_view(waves, m, axis=1)[:, lo : lo + 2 * reach + 1]
    out = np.abs(views.astype(np.float32) @ bank.T.astype(np.float32))  # (n, positions, filters)
    scale = np.maximum(np.asarray(sd_uv, np.float64)[:, None] * gains, 1e-12)
    return (out.max(axis=1) / scale).max(axis=1)
