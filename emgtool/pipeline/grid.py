"""Spatial tests for candidates on an electrode grid (HD-sEMG, many electrodes on one site).

A motor unit's potential reaches the skin over a few electrode spacings:
the electrode over it sees the largest deflection and its neighbours the
same waveform, smaller and a little delayed by conduction.  Two kinds of
candidate break that picture, and a grid can tell them apart from a
potential by the field alone, without knowing the electrodes' layout:

- *a noise crossing*: with 64 electrodes, the noise of one of them or another
  crosses the threshold 64 times as often as a single channel's would.  Such a
  peak is seen on one electrode only, and no other electrode carries its
  waveform beyond what its own noise gives (``lone`` of :func:`grid_tests`);
- *a far-field source*: the QRS of the heart or an electrode-motion transient
  is present on nearly every electrode, with any sign (motion moves each
  electrode its own way; :func:`far_field_any_sign`).

Both tests project every electrode's window on the candidate's own waveform
(the best electrode's samples around the peak, a matched filter that
integrates the whole potential) over a few milliseconds of lag
(conduction delay across an electrode spacing, the skew of a motion
transient).  The noise's share of a projection depends on the noise's
spectrum (pink noise projects more on a slow waveform than white noise),
so it is measured on the same windows: the electrodes' median
autocorrelation gives the variance a noise-only window projects with
(:func:`noise_gain`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> w = rng.normal(0, 5.0, (1, 16, 101))
>>> w[0, 3, 45:56] += 40 * np.hanning(11)  # one noise-like bump on electrode 3 only
>>> sd, best = np.full((1, 16), 5.0), np.array([3])
>>> lone, far, _ = grid_tests(w, sd, best, 20, 6)
>>> bool(lone[0]), bool(far[0])
(True, False)
>>> w[0, 4, 46:57] += 20 * np.hanning(11)  # its neighbour carries it too
>>> bool(grid_tests(w, sd, best, 20, 6)[0][0])
False
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy import special

__all__ = ["projections", "noise_gain", "support_bound", "grid_level", "grid_tests"]

#: A noise-only grid passes the support test (some other electrode beyond the
#: bound) with at most this probability (Bonferroni over electrodes and lags).
SUPPORT_ALPHA = 0.01
#: Far field: at least half of the electrodes carry this share of the largest projection ...
FAR_SHARE = 0.3
#: ... and, each, beyond this many SDs of what their noise projects.
FAR_MIN_Z = 3.0


def projections(w: NDArray, best: NDArray, half: int, max_lag: int) -> NDArray[np.float64]:
    """|projection| of every electrode's window on the best electrode's waveform.

    Parameters
    ----------
    w : ndarray, shape (n, k, L)
        Windows of the ``k`` electrodes of a site, centred on each candidate's peak.
    best : ndarray of int, shape (n,)
        Electrode (slot in ``k``) where each candidate is largest.
    half : int
        The waveform is the best electrode's samples ``centre ± half``, unit norm.
    max_lag : int
        Largest shift tried (samples, either way); the largest |projection| is kept.

    Returns
    -------
    ndarray, shape (n, k)
        In µV (the units of ``w``); the best electrode's entry is its waveform's norm.
    """
    n, _k, length = w.shape
    c = length // 2
    t = w[np.arange(n), best, c - half : c + half + 1].astype(np.float64)
    t = t / np.maximum(np.sqrt((t * t).sum(axis=1, keepdims=True)), 1e-12)
    out = np.zeros(w.shape[:2])
    for lag in range(-max_lag, max_lag + 1):
        seg = w[:, :, c - half + lag : c + half + 1 + lag]
        out = np.maximum(out, np.abs(np.einsum("nkl,nl->nk", seg, t)))
    return out


MEDIAN_ELECTRODES = 32  # electrodes whose autocorrelations give the noise's (their median)


def noise_gain(w: NDArray, best: NDArray, half: int) -> NDArray[np.float64]:
    """Variance of a noise window's projection on the waveform, in noise variances.

    ``t' R t`` for the unit-norm waveform ``t`` and the noise's normalised
    autocorrelation ``R``, estimated per candidate as the median over its
    electrodes of their windows' autocorrelations (the few electrodes that
    carry a potential do not move the median).  1 for white noise; larger
    when the noise and the waveform share low frequencies.
    """
    n, _k, length = w.shape
    c = length // 2
    m = 2 * half + 1  # lags 0 … 2 half: the waveform's length
    x = w.astype(np.float64)
    t = x[np.arange(n), best, c - half : c + half + 1]
    t = t / np.maximum(np.sqrt((t * t).sum(axis=1, keepdims=True)), 1e-12)
    # Autocorrelations (lags 0 … m-1) of every window and of the waveform, by FFT
    # (single precision for the windows: ample for a median of 64 estimates, and
    # half the work on a day-long grid).
    nfft = 1 << int(np.ceil(np.log2(length + m)))
    # At most 32 electrodes, evenly spread, for the median (half the work on 64).
    sub = w[:, :: max(1, -(-w.shape[1] // MEDIAN_ELECTRODES))]
    fx = sp_fft.rfft(sub.astype(np.float32), nfft, axis=2)
    r = sp_fft.irfft(fx * fx.conj(), nfft, axis=2)[:, :, :m]
    rho = np.median(r / np.maximum(r[:, :, :1], 1e-30), axis=1).astype(np.float64)  # (n, m)
    ft = np.fft.rfft(t, nfft, axis=1)
    a = np.fft.irfft(ft * ft.conj(), nfft, axis=1)[:, :m]
    g = a[:, 0] * rho[:, 0] + 2.0 * (a[:, 1:] * rho[:, 1:]).sum(axis=1)
    return np.maximum(g, 0.1)  # a short window can misjudge it; never below a tenth


def support_bound(k: int, max_lag: int, alpha: float = SUPPORT_ALPHA) -> float:
    """z that the noise of ``k - 1`` electrodes over ``2 max_lag + 1`` lags exceeds
    with probability <= ``alpha`` (two-sided, Bonferroni: lags overlap, so conservative)."""
    m = max(1, k - 1) * (2 * max_lag + 1)
    return float(-special.ndtri(alpha / (2 * m)))


def grid_level(thr_sd: NDArray, k: int) -> NDArray[np.float64]:
    """Level (noise SDs) that the largest of ``k`` electrodes' noise crosses as often
    as one electrode's noise crosses ``thr_sd``.

    By Rice's formula a Gaussian process crosses level ``u`` (in SDs) at a rate
    proportional to ``exp(-u²/2)``; ``k`` independent electrodes cross ``k``
    times as often, which the level ``sqrt(u² + 2 ln k)`` undoes.

    >>> round(float(grid_level(np.array(5.0), 64)), 2)
    5.77
    """
    return np.sqrt(np.asarray(thr_sd, np.float64) ** 2 + 2.0 * np.log(max(k, 1)))


def grid_tests(
    w: NDArray,
    sd: NDArray,
    best: NDArray,
    half: int,
    max_lag: int,
    thr_uv: NDArray | None = None,
    alpha: float = SUPPORT_ALPHA,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64]]:
    """(lone crossing, far field, field) of each candidate; see the module docstring.

    Parameters
    ----------
    w : ndarray, shape (n, k, L)
        Electrode windows centred on the peaks (see :func:`projections`).
    sd : ndarray, shape (n, k)
        Noise SD of each electrode at each candidate.
    best, half, max_lag
        As for :func:`projections`.
    thr_uv : ndarray, shape (n,), optional
        The candidate threshold on the best electrode (µV).  A peak above the
        grid's level (:func:`grid_level`) is beyond what the largest of the
        electrodes' noise reaches as often as one electrode's noise reaches the
        threshold: however focal, it is not called a noise crossing.

    Returns
    -------
    lone : ndarray of bool
        A noise crossing: no other electrode carries the waveform beyond its
        noise (the bound is what the noise of the others reaches with
        probability ``alpha``, :func:`support_bound`), and the peak is below
        the grid's level (if ``thr_uv`` is given).  A focal potential under
        one electrode (a small superficial unit) has little field at its
        neighbours, so at low SNR the support test alone would take it for
        noise; its own size still tells it apart.
    far : ndarray of bool
        At least half of the electrodes each carry ``FAR_SHARE`` of the largest
        projection and ``FAR_MIN_Z`` noise SDs: a motor unit's field covers a
        few electrode spacings (a quarter of an 8x8 grid at most), while a
        motion transient reaches most electrodes with random sign and size
        (which a projection on the grid's mean waveform, where signs cancel,
        misses) and the QRS all of them.
    field : ndarray, shape (n, k)
        Each electrode's projection on the candidate's waveform in noise SDs
        (where the potential is: two candidates of one potential share it).
    """
    n, k, _ = w.shape
    if n == 0 or k < 2:
        return np.zeros(n, bool), np.zeros(n, bool), np.zeros((n, k))
    proj = projections(w, best, half, max_lag)
    z = proj / (np.maximum(sd, 1e-6) * np.sqrt(noise_gain(w, best, half))[:, None])
    carry = (proj >= FAR_SHARE * proj.max(axis=1, keepdims=True)) & (z >= FAR_MIN_Z)
    far = carry.sum(axis=1) * 2 >= k
    others = z.copy()
    others[np.arange(n), best] = -np.inf
    lone = others.max(axis=1) < support_bound(k, max_lag, alpha)
    if thr_uv is not None:
        i = np.arange(n)
        sd_b = np.maximum(sd[i, best], 1e-6)
        peak_sd = np.abs(w[i, best, w.shape[2] // 2]) / sd_b
        lone &= peak_sd < grid_level(np.asarray(thr_uv, np.float64) / sd_b, k)
    return lone, far, z
