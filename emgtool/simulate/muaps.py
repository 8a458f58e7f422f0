"""Waveforms: motor-unit action potentials, ECG beats and electrode-motion transients.

A fasciculation potential at the skin is a motor-unit action potential
(MUAP): 2-5 phases, 5-20 ms, tens to hundreds of µV peak to peak.  Each
template here is built from alternating-sign half-sine lobes (one lobe per
phase) on a fine time grid, lightly smoothed, then point-sampled at ``fs``.
Lobes that share a boundary cross zero exactly there, so the number of phases
is known by construction; a third of the units get a small serration (an
extra turn without a baseline crossing), as complex potentials do.  The
positive and negative lobes are balanced to zero net area (no DC), as in a
bipolar recording of a propagating potential.

The truth ``phases`` and ``turns`` are measured on the sampled template
with :func:`count_phases` and :func:`count_turns` (rules in
docs/simulator.md), so they describe exactly what is in the signal.

Examples
--------
>>> import numpy as np
>>> from emgtool.simulate.muaps import make_muap
>>> m = make_muap(np.random.default_rng(0), 2048.0)
>>> round(float(np.ptp(m.wave)), 6), 5.0 <= m.duration_ms <= 21.0
(1.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Muap",
    "make_muap",
    "count_phases",
    "count_turns",
    "ecg_beat",
    "motion_transient",
]

_FINE_HZ = 20_000.0  # grid on which lobes are drawn before sampling at fs


@dataclass(frozen=True)
class Muap:
    """One motor unit's potential, normalised to 1 (µV-less) peak to peak.

    Attributes
    ----------
    wave : ndarray
        Samples at ``fs``, starting and ending at 0; ``ptp(wave) == 1``.
    duration_ms : float
        Length of ``wave`` in ms (the span of the potential).
    phases, turns : int
        Measured on ``wave`` (see :func:`count_phases`, :func:`count_turns`).
    peak_index : int
        Index of the largest absolute deflection in ``wave``.
    """

    wave: NDArray[np.float64]
    duration_ms: float
    phases: int
    turns: int
    peak_index: int


def count_phases(wave: NDArray, rel: float = 0.05) -> int:
    """Phases = baseline crossings + 1, ignoring samples within ``rel``·ptp of 0."""
    x = np.asarray(wave, dtype=float)
    sig = x[np.abs(x) > rel * np.ptp(x)]
    if sig.size == 0:
        return 0
    return int(np.count_nonzero(np.diff(np.sign(sig))) + 1)


def count_turns(wave: NDArray, rel: float = 0.1) -> int:
    """Turns = direction reversals of at least ``rel``·ptp (hysteresis), incl. the return to 0.

    The wave is taken to start and end at the baseline, so a monophasic bump
    has 1 turn and a classic triphasic potential 3.
    """
    x = np.concatenate([[0.0], np.asarray(wave, dtype=float), [0.0]])
    h = rel * np.ptp(x)
    turns = 0
    ext = x[0]  # running extremum in the current direction
    direction = 0  # +1 rising, -1 falling, 0 undecided
    for v in x[1:]:  # templates are ~40 samples: a plain loop is fine here
        if direction >= 0 and v > ext:
            ext, direction = v, 1 if v - x[0] >= h or direction == 1 else direction
        elif direction <= 0 and v < ext:
            ext, direction = v, -1 if x[0] - v >= h or direction == -1 else direction
        if direction == 1 and ext - v >= h:
            turns, ext, direction = turns + 1, v, -1
        elif direction == -1 and v - ext >= h:
            turns, ext, direction = turns + 1, v, 1
    return turns


def make_muap(
    rng: np.random.Generator,
    fs: float,
    *,
    n_phases: int | None = None,
    duration_ms: float | None = None,
    serration_prob: float = 0.3,
) -> Muap:
    """A random physiological MUAP template (2-5 phases, 5-20 ms).

    Parameters
    ----------
    rng : numpy Generator
    fs : float
        Sampling rate of the output.
    n_phases, duration_ms : optional
        Force the number of lobes or the span; random otherwise (longer
        potentials tend to have more phases).
    """
    if n_phases is None:
        n_phases = int(rng.choice([2, 3, 4, 5], p=[0.2, 0.45, 0.22, 0.13]))
    if duration_ms is None:
        lo = 5.0 + 2.0 * (n_phases - 2)
        hi = min(20.0, 11.0 + 3.0 * (n_phases - 2))
        duration_ms = float(rng.uniform(lo, hi))
    # Lobe widths: the main lobe is widest; no lobe shorter than 1 ms so it
    # survives sampling at 2 kHz.
    main = int(rng.integers(0, n_phases)) if n_phases != 3 else 1
    alpha = np.full(n_phases, 2.0)
    alpha[main] = 4.0
    widths = 1.0 + rng.dirichlet(alpha) * (duration_ms - n_phases * 1.0)
    amps = rng.uniform(0.2, 0.7, n_phases)
    amps[main] = 1.0
    signs = (-1.0) ** (np.arange(n_phases) - main)  # alternate around the main lobe
    polarity = rng.choice([-1.0, 1.0])
    t_ms = np.arange(0.0, duration_ms, 1000.0 / _FINE_HZ)
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    lobe = np.clip(np.searchsorted(edges, t_ms, side="right") - 1, 0, n_phases - 1)
    local = (t_ms - edges[lobe]) / widths[lobe]
    fine = polarity * signs[lobe] * amps[lobe] * np.sin(np.pi * np.clip(local, 0.0, 1.0))
    if rng.random() < serration_prob:
        # A notch inside the main lobe: an extra turn, no extra baseline crossing.
        c = edges[main] + widths[main] * rng.uniform(0.35, 0.65)
        w = max(widths[main] * rng.uniform(0.1, 0.15), 0.35)
        fine -= (
            0.7 * polarity * signs[main] * np.exp(-0.5 * ((t_ms - c) / w) ** 2) * (lobe == main)
        )
    # Light smoothing (0.1 ms) rounds the lobe joints like volume conduction does.
    k = max(1, int(0.1e-3 * _FINE_HZ))
    kern = np.exp(-0.5 * (np.arange(-4 * k, 4 * k + 1) / k) ** 2)
    fine = np.convolve(fine, kern / kern.sum(), mode="same")
    n = max(3, int(np.ceil(duration_ms * 1e-3 * fs)))
    t_s = np.arange(n) * 1000.0 / fs  # ms
    wave = np.interp(t_s, t_ms, fine, right=0.0)
    wave = np.concatenate([[0.0], wave, [0.0]])  # start and end at the baseline
    # Zero net area: a bipolar surface recording of a propagating potential has
    # no DC content, and a net area would make every high-pass filter ring
    # after the potential (a spurious second deflection ~30 ms later).
    pos, neg = wave[wave > 0].sum(), -wave[wave < 0].sum()
    if pos > 0 and neg > 0:
        wave = np.where(wave > 0, wave * np.sqrt(neg / pos), wave * np.sqrt(pos / neg))
    wave /= np.ptp(wave)
    return Muap(
        wave=wave,
        duration_ms=len(wave) * 1000.0 / fs,
        phases=count_phases(wave),
        turns=count_turns(wave),
        peak_index=int(np.argmax(np.abs(wave))),
    )


def ecg_beat(fs: float) -> tuple[NDArray[np.float64], int]:
    """One PQRST complex with R = 1, and the index of the R peak.

    Gaussian P, Q, R, S and T waves; QRS about 90 ms wide, T 300 ms after R.
    """
    t = np.arange(-0.25, 0.50, 1.0 / fs)
    waves = (  # (centre s, width s, amplitude)
        (-0.17, 0.025, 0.10),
        (-0.028, 0.008, -0.12),
        (0.0, 0.010, 1.0),
        (0.030, 0.010, -0.28),
        (0.30, 0.045, 0.28),
    )
    beat = sum(a * np.exp(-0.5 * ((t - c) / w) ** 2) for c, w, a in waves)
    return np.asarray(beat), int(np.argmin(np.abs(t)))


def motion_transient(fs: float, tau_s: float) -> NDArray[np.float64]:
    """Electrode-motion transient: alpha function ``(t/τ)·e^(1-t/τ)``, peak 1 at ``τ``, 8τ long."""
    t = np.arange(0.0, 8.0 * tau_s, 1.0 / fs)
    return (t / tau_s) * np.exp(1.0 - t / tau_s)
