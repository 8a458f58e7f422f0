"""Nuisance signals: background noise, mains, ECG, baseline wander, electrode motion.

Each generator adds into a ``(n_channels, n_samples)`` float32 array in place
and draws only from the ``numpy.random.Generator`` it is given, so a seed
reproduces the recording exactly.

Noise level
-----------
The pink + white background is scaled so that its RMS **within the
analysis band 20-450 Hz** (capped at 0.45·fs) equals the requested value
exactly (Parseval on the FFT bins).  Below 20 Hz pink noise adds more power;
it does not count toward the SNR because every detector removes it.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

from emgtool.simulate.muaps import ecg_beat, motion_transient

__all__ = [
    "NUISANCES",
    "BAND_HZ",
    "add_background",
    "add_mains",
    "add_ecg",
    "add_motion",
    "ecg_gain",
    "band_edges_hz",
]

#: Names accepted by ``simulate(nuisances=...)``.
NUISANCES = ("pink", "white", "mains", "ecg", "wander", "motion")

#: The band in which noise RMS (and hence SNR) is defined.
BAND_HZ = (20.0, 450.0)


def band_edges_hz(fs: float) -> tuple[float, float]:
    """The SNR band at this sampling rate: 20-450 Hz, the top capped at 0.45·fs."""
    return BAND_HZ[0], min(BAND_HZ[1], 0.45 * fs)


def add_background(
    out: NDArray[np.float32],
    rng: np.random.Generator,
    fs: float,
    noise_rms_uv: NDArray[np.float64],
    *,
    pink: bool,
    white: bool,
    wander_rms_uv: NDArray[np.float64] | None = None,
    progress=None,
) -> None:
    """Add pink/white noise (exact in-band RMS per channel) and baseline wander.

    One real FFT per channel over the whole length: block-wise FFT synthesis
    would leave steps at block edges that a high-pass filter turns into spikes.
    Pink and white carry equal in-band power when both are on.  Wander is
    a smooth random drift below ~0.5 Hz with the given RMS.
    """
    n_ch, n = out.shape
    if n == 0 or not (pink or white or wander_rms_uv is not None):
        return
    nfft = sfft.next_fast_len(n, real=True)
    f = sfft.rfftfreq(nfft, 1.0 / fs)
    lo, hi = band_edges_hz(fs)
    band = slice(int(np.searchsorted(f, lo)), int(np.searchsorted(f, hi, side="right")))
    # Amplitude shapes; the noise shape has unit mean power over the band.
    shapes = []
    if white:
        shapes.append(np.ones_like(f))
    if pink:
        p = 1.0 / np.maximum(f, 0.5)
        shapes.append(p / p[band].mean())
    h_noise = np.sqrt(sum(shapes) / len(shapes)).astype(np.float32) if shapes else None
    h_band2 = h_noise[band] ** 2 if h_noise is not None else None
    h_wander = None
    if wander_rms_uv is not None:
        w = 1.0 / (1.0 + (f / 0.3) ** 4)
        w[0] = 0.0
        h_wander = np.sqrt(w / w.sum()).astype(np.float32)  # unit total power
    m = len(f)
    spec = np.empty(m, dtype=np.complex64)
    for i in range(n_ch):
        # White Gaussian noise drawn directly as its spectrum (no forward FFT needed).
        xr = rng.standard_normal(m, dtype=np.float32)
        xi = rng.standard_normal(m, dtype=np.float32)
        h = np.zeros(m, dtype=np.float32)
        if h_noise is not None:
            # Exact in-band RMS via Parseval: P = 2·Σ|X·h|² / nfft² over the band's bins.
            p_band = 2.0 * float(np.dot(xr[band] ** 2 + xi[band] ** 2, h_band2)) / nfft**2
            if p_band > 0:
                h += h_noise * np.float32(noise_rms_uv[i] / np.sqrt(p_band))
        if h_wander is not None:
            # E|X_k|² = 2 here, so E[P] = (4/nfft²)·Σh²: scale by rms·nfft/2.
            h += h_wander * np.float32(wander_rms_uv[i] * nfft / 2.0)
        spec.real = xr * h
        spec.imag = xi * h
        out[i] += sfft.irfft(spec, nfft)[:n]
        if progress is not None:
            progress(1)


def add_mains(
    out: NDArray[np.float32],
    rng: np.random.Generator,
    fs: float,
    mains_hz: float,
    amp_uv: NDArray[np.float64],
) -> None:
    """Mains at ``mains_hz`` with harmonics 2, 3, 5 (10 %, 30 %, 10 %), slowly drifting.

    The harmonics are built once and mixed per channel with random phases via
    a small matrix product (cos/sin basis), so cost does not grow with channels.
    """
    n_ch, n = out.shape
    f0 = mains_hz * (1.0 + rng.uniform(-4e-4, 4e-4))  # grid frequency is never exact
    f_drift, ph_drift = rng.uniform(0.01, 0.05), rng.uniform(0, 2 * np.pi)
    harmonics = [
        (k, rel) for k, rel in ((1, 1.0), (2, 0.1), (3, 0.3), (5, 0.1)) if k * f0 < fs / 2
    ]
    weights = []
    for _k, rel in harmonics:
        phase = rng.uniform(0, 2 * np.pi, n_ch)
        weights += [rel * amp_uv * np.cos(phase), -rel * amp_uv * np.sin(phase)]
    if not harmonics:
        return
    w = np.array(weights, dtype=np.float32).T  # (n_ch, 2·n_harmonics)
    block = 1 << 18  # bounded temporaries for long recordings; phases use absolute time
    for a in range(0, n, block):
        t = np.arange(a, min(n, a + block)) / fs
        drift = 1.0 + 0.1 * np.sin(2 * np.pi * f_drift * t + ph_drift)
        z1 = np.exp(1j * ((2 * np.pi * f0) * t))  # harmonics by powers: e^{ikφ} = (e^{iφ})^k
        zk = {1: z1, 2: z1 * z1}
        zk[3] = zk[2] * z1
        zk[5] = zk[3] * zk[2]
        basis = np.empty((2 * len(harmonics), len(t)), dtype=np.float32)
        for j, (k, _rel) in enumerate(harmonics):
            basis[2 * j] = zk[k].real * drift
            basis[2 * j + 1] = zk[k].imag * drift
        out[:, a : a + len(t)] += w @ basis


#: ECG R-wave amplitude range (µV) at the skin over each site; 0 = none.
_ECG_UV = {
    "rectus_abdominis": (150.0, 400.0),
    "thoracic_paraspinals": (60.0, 200.0),
    "trapezius": (40.0, 120.0),
    "sternocleidomastoid": (30.0, 80.0),
    "deltoid": (20.0, 80.0),
    "biceps": (10.0, 40.0),
    "triceps": (10.0, 30.0),
}


def ecg_gain(rng: np.random.Generator, site: str, side: str) -> float:
    """Signed R-wave amplitude (µV) of the ECG on a channel over ``site``."""
    lo, hi = _ECG_UV.get(site, (0.0, 0.0))
    if hi == 0.0:
        return 0.0
    g = rng.uniform(lo, hi) * (1.3 if side == "L" else 1.0)  # the heart is left of centre
    return float(g * rng.choice([-1.0, 1.0]))


def add_ecg(
    out: NDArray[np.float32],
    rng: np.random.Generator,
    fs: float,
    gains_uv: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Add ECG beats (55-90 bpm, respiratory + random HRV); returns the R-peak samples."""
    n_ch, n = out.shape
    hr_bpm = rng.uniform(55.0, 90.0)
    rr0 = 60.0 / hr_bpm
    n_beats = int(n / fs / rr0 * 1.2) + 3
    k = np.arange(n_beats)
    resp = 0.04 * np.sin(2 * np.pi * 0.25 * k * rr0 + rng.uniform(0, 2 * np.pi))
    rr = rr0 * (1.0 + resp + 0.02 * rng.standard_normal(n_beats))
    r_s = rng.uniform(0.0, rr0) + np.concatenate([[0.0], np.cumsum(rr[:-1])])
    r = np.round(r_s * fs).astype(np.int64)
    r = r[r < n]
    beat, r_idx = ecg_beat(fs)
    active = np.flatnonzero(gains_uv)
    if active.size and r.size:
        _place(out, active, r - r_idx, beat, gains_uv[active][:, None] * np.ones((1, r.size)))
    return r


def add_motion(
    out: NDArray[np.float32],
    rng: np.random.Generator,
    fs: float,
    onsets: NDArray[np.int64],
) -> list[dict]:
    """Electrode-motion transients common to many channels at the same instant.

    Each artefact hits 60-100 % of the channels (at least 3) with 100-800 µV,
    per-channel sign and up to 1 ms skew.  Returns one dict per artefact:
    ``sample``, ``n_samples`` (span), ``channels`` (indices), ``amplitude_uv``.
    """
    n_ch, n = out.shape
    events = []
    for s in onsets:
        tau = rng.uniform(0.004, 0.012)
        wave = motion_transient(fs, tau)
        k = max(min(3, n_ch), int(np.ceil(rng.uniform(0.6, 1.0) * n_ch)))
        chans = np.sort(rng.choice(n_ch, size=k, replace=False))
        amps = rng.uniform(100.0, 800.0) * rng.uniform(0.3, 1.0, k) * rng.choice([-1.0, 1.0], k)
        skew = rng.integers(0, max(1, int(1e-3 * fs)) + 1, k)
        span = len(wave) + int(skew.max())
        if s + span > n:
            continue
        for c, a, d in zip(chans, amps, skew, strict=True):
            out[c, s + d : s + d + len(wave)] += (a * wave).astype(np.float32)
        events.append(
            {
                "sample": int(s),
                "n_samples": span,
                "channels": chans,
                "amplitude_uv": float(np.max(np.abs(amps))),
            }
        )
    return events


def _place(
    out: NDArray[np.float32],
    chans: NDArray[np.int64],
    starts: NDArray[np.int64],
    wave: NDArray[np.float64],
    gains: NDArray[np.float64],
) -> None:
    """``out[c, s:s+L] += g·wave`` for every channel c and start s (clipped at the edges).

    ``gains`` has shape (len(chans), len(starts)).  Uses ``np.add.at`` so
    overlapping placements add up.
    """
    n = out.shape[1]
    L = len(wave)
    idx = starts[:, None] + np.arange(L)[None, :]  # (E, L)
    ok = (idx >= 0) & (idx < n)
    for ci, c in enumerate(chans):
        vals = gains[ci][:, None] * wave[None, :]
        np.add.at(out[c], idx[ok], vals[ok].astype(np.float32))
