"""How much the pipeline's own filter can ring after a potential.

A causal band-pass rings after every potential, and a mains notch (a
resonance 1-2 Hz wide) rings at its frequency for a few tenths of a second.
Far above the noise that ringing crosses the candidate threshold: at 20 dB a
700 µV potential left 50 Hz ringing of 60-80 µV p-p 40-120 ms later, which
was counted as a second fasciculation.  How large the ringing can be, and for
how long, is a property of the filter actually in use (band, order, which
notches, sampling rate), so it is measured on that filter rather than set as a
constant: :func:`ringing_envelope` filters a family of probe potentials and
records the largest peak-to-peak that can follow a potential's peak at each
lag, relative to the potential's own peak to peak.

The probes are Gaussians and their first three derivatives (mono- to
tetraphasic) with widths of 0.5-3 ms, i.e. potentials about 3-20 ms long:
the span of surface fasciculation potentials.  The envelope includes the
probe's own late phases, so a smaller candidate a few ms after a larger one
(a late phase split off by a sub-threshold gap) is covered too.

Beyond a potential's span (``TRAIN_FROM_MS``) trains of 2-5 equal
alternating half-sine lobes, 5-20 ms long, are probes too: a long
polyphasic potential keeps exciting a mains notch with each lobe after its
peak, and a 50 Hz notch rang after a simulated 19-ms, 660 µV potential 30 %
above the Gaussian probes' envelope 64 ms after its peak (counted as
fasciculations on a 64-electrode grid at 20 dB).  Within the span they are
left out: their late lobes are as large as their peak, which would take the
second discharge of a doublet for a phase of the first.

Examples
--------
>>> from emgtool.pipeline import dsp
>>> sos = dsp.design_filters(2048.0, (20.0, 450.0), 2, mains_hz=50.0, harmonics=(1,))
>>> env = ringing_envelope(sos, 2048.0)
>>> bool(env[0] == 1.0), bool(env[int(0.06 * 2048)] < 0.2)
(True, True)
>>> plain = ringing_envelope(dsp.design_filters(2048.0, (20.0, 450.0), 2, mains_hz=None, harmonics=()), 2048.0)
>>> len(plain) < len(env)  # without a notch the ringing dies out sooner
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = ["ringing_envelope"]

PROBE_WIDTHS_MS = (0.5, 1.0, 2.0, 3.0)  # Gaussian SDs: potentials ~3-20 ms long
ENVELOPE_FLOOR = 0.02  # below this a 2.5 mV potential rings under the 50 µV counting limit
MAX_LAG_S = 1.0  # longest ringing considered (a Q = 30 notch at 50 Hz decays by e in 0.2 s)
TRAIN_LOBES = (2, 3, 4, 5)  # polyphasic potentials: phases ...
TRAIN_MS = (5.0, 10.0, 15.0, 20.0)  # ... and spans
TRAIN_FROM_MS = 20.0  # lobe trains bound the ringing from this lag on (beyond a potential)


def ringing_envelope(
    sos: NDArray, fs: float, floor: float = ENVELOPE_FLOOR, max_lag_s: float = MAX_LAG_S
) -> NDArray[np.float64]:
    """Largest p-p that can follow a potential's peak, per lag, relative to its p-p.

    Parameters
    ----------
    sos : ndarray
        The filter cascade in use (band-pass and notches), as for ``scipy.signal.sosfilt``.
    fs : float
        Sampling rate.
    floor : float
        The envelope is cut where it stays below this for good.

    Returns
    -------
    ndarray
        ``env[k]`` for lags ``k = 0 … len(env) - 1`` samples after the peak:
        ``2 · max |y(t)| / pp(y)`` over ``t ≥ k`` and over the probes; non-increasing.
    """
    n_lag = max(2, int(round(max_lag_s * fs)))
    lead = max(8, int(round(0.03 * fs)))  # probe centre: room for the widest probe
    t = (np.arange(lead + n_lag + lead) - lead) / fs
    probes = []
    for w_ms in PROBE_WIDTHS_MS:
        u = t / max(w_ms / 1000.0, 0.5 / fs)
        g = np.exp(-0.5 * u * u)
        probes += [g, -u * g, (1 - u * u) * g, (u**3 - 3 * u) * g]
    n_gauss = len(probes)
    for n_lobes in TRAIN_LOBES:
        for span_ms in TRAIN_MS:
            n = max(2, int(round(span_ms / n_lobes * fs / 1000.0)))
            lobe = np.sin(np.pi * (np.arange(n) + 0.5) / n)
            train = np.concatenate([lobe * (-1.0) ** i for i in range(n_lobes)])
            x = np.zeros(len(t))
            x[lead : lead + len(train)] = train[: len(t) - lead]
            probes.append(x)
    y = signal.sosfilt(sos, np.array(probes), axis=1)
    pp = y.max(axis=1) - y.min(axis=1)
    env = np.zeros(n_lag)
    from_n = min(n_lag, int(round(TRAIN_FROM_MS * fs / 1000.0)))
    for i, (row, p) in enumerate(zip(y, pp, strict=True)):
        pk = int(np.abs(row).argmax())
        tail = 2.0 * np.abs(row[pk : pk + n_lag]) / p
        if i >= n_gauss:  # a lobe train: beyond a potential's span only
            tail[: min(from_n, len(tail))] = 0.0
        env[: len(tail)] = np.maximum(env[: len(tail)], tail)
    env = np.maximum.accumulate(env[::-1])[::-1]  # max over all later lags
    env = np.minimum(env, 1.0)
    keep = np.flatnonzero(env >= floor)
    return env[: (keep[-1] + 1 if len(keep) else 1)]
