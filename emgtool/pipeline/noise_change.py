"""A lasting change of a channel's noise level, told apart from sustained muscle activity.

The noise floor carries the previous rest estimate through 1-s blocks busy
with activity (``core._close_block``), so that a cramp does not raise the
thresholds and end itself.  A lasting rise of a channel's *noise* (an
electrode's contact worsens, a new interference source) also makes its bins
"active"; without more, the floor would never follow it, and the rest of the
recording would be one long cramp at that site, with no fasciculation
counted there.

The two differ in structure, whatever their level:

- *Noise at a new level is as featureless as before.*  The mean squares of its
  10-ms bins scatter as little as at rest: their spread (interquartile range
  / median, :func:`bin_spread`) depends on the noise's spectrum, not on its
  level; for Gaussian noise it is that of a chi-square with the bins' degrees
  of freedom (``dsp.bin_dof``: 0.60 at 2 kHz; simulated rest 0.69, its noise
  being a little pink).  Activity is made of motor-unit discharges, bins with
  and without a potential: simulated cramps spread 1.25-1.46 (median; 1st
  percentile 0.80).  Quartiles ignore the few bins of a fasciculation: a busy
  muscle twitches on at its new noise level (variance / mean² did not, on the
  64-electrode benchmark file, where a 5-min piece has 240 fasciculations).
  The reference is the channel's own spread at rest, but never more than
  ``REST_CAP`` times the Gaussian one: heart beats or artefacts at rest must
  not let a cramp pass for noise.
- *Noise holds still.*  Its 1-s block SDs vary by their estimation error
  (about 5 %), while a cramp waxes and wanes.
- *The noise has risen.*  A block is busy when its bins are active; bursts
  (heart beats on a trunk channel) make it busy while the block's robust SD
  stays at the floor.  Only a robust SD well above the floor is a new level.

A channel busy for the noise floor's window (at least ``CHANGE_MIN_S``) in a
row whose blocks pass the three tests (:func:`looks_like_noise`) has changed
its noise level: the floor is re-based on what those blocks measured, the
channel is flagged (``noise-change``), and a sustained-activity episode it
made is an artefact (its span is excluded, as any sustained activity's).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> rms = np.sqrt(rng.chisquare(10, (1, 100)) / 10)  # 100 bins of noise (10 dof each)
>>> bool(0.4 < bin_spread(rms)[0] < 0.8)  # Gaussian: 0.6
True
>>> bursts = rms.copy()
>>> bursts[:, ::2] *= 2  # a discharge in every other bin
>>> bool(bin_spread(bursts)[0] > 1.2)
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from emgtool.pipeline import dsp

__all__ = ["CHANGE_MIN_S", "REST_EVERY", "noise_spread", "bin_spread", "looks_like_noise"]

#: A channel must have been busy and noise-like for the floor's own window
#: (``noise_window_s``: it follows any other change of the rest noise that fast),
#: and at least this long (s), before its floor is re-based.
CHANGE_MIN_S = 10.0
#: The test needs bins of at least 4 degrees of freedom (Gaussian spread 1.03; 0.94 at
#: 500 Hz, 0.60 at 2 kHz).  At 250 Hz (2 samples, a 20-112 Hz band) simulated cramps
#: scatter no more than noise, and a 17-s cramp was taken for a noise change: there
#: the rule is off.
MAX_NOISE_SPREAD = 1.05
#: Noise-like: the run's median bin spread is at most this times the reference ...
SPREAD_RATIO = 1.25
#: ... (the channel's at rest, at most REST_CAP times the Gaussian one; its median
#: over the last ten rest blocks taken one in REST_EVERY: it changes slowly) ...
REST_CAP = 1.5
REST_EVERY = 5
#: ... its block SDs' upper quartile at most this times their lower quartile ...
STEADY_RATIO = 1.2
#: ... and their median at least this times the noise SD the run was judged against.
MIN_RISE = 1.2


def noise_spread(fs: float, band_hz: tuple[float, float], bin_n: int) -> float | None:
    """Spread (:func:`bin_spread`) of ``bin_n``-sample bins of Gaussian noise in this
    band; None where it is too large for the test to tell activity from noise.

    >>> round(noise_spread(2048.0, (20.0, 450.0), 20), 2)
    0.6
    >>> noise_spread(250.0, (20.0, 450.0), 2) is None
    True
    """
    from scipy.stats import chi2

    band = dsp.effective_band(fs, band_hz)
    sos = dsp.design_filters(fs, band, 2, mains_hz=None, harmonics=())
    q25, q50, q75 = chi2.ppf([0.25, 0.5, 0.75], dsp.bin_dof(sos, fs, bin_n))
    spread = float((q75 - q25) / q50)
    return spread if spread <= MAX_NOISE_SPREAD else None


def bin_spread(rms: NDArray) -> NDArray[np.float32]:
    """Interquartile range / median of the bins' mean squares, from their RMS (last axis).

    The quartiles of the RMS ("linear" interpolation) are squared: one sort of
    the float32 RMS per block.  For Gaussian noise the spread depends on the
    bins' degrees of freedom only, not on the level; ``inf`` where there is no
    power.
    """
    v = np.sort(np.asarray(rms, np.float32), axis=-1)
    q25, q50, q75 = (dsp.percentile_last_axis(v, p, presorted=True) ** 2 for p in (25, 50, 75))
    out = np.full(q50.shape, np.inf, np.float32)
    np.divide(q75 - q25, q50, out=out, where=q50 > 0)
    return out


def looks_like_noise(
    spread: NDArray, sd: NDArray, spread_rest: NDArray, spread_noise: float, floor: NDArray
) -> NDArray[np.bool_]:
    """Is each channel's run of busy blocks noise at a new level (see the module docstring)?

    Parameters
    ----------
    spread, sd : ndarray, shape (n_ch, n_blocks)
        Bin spread and robust SD of each block of the run.
    spread_rest : ndarray, shape (n_ch,)
        The channel's bin spread at rest (NaN if never at rest: not re-based).
    spread_noise : float
        Gaussian noise's bin spread (:func:`noise_spread`).
    floor : ndarray, shape (n_ch,)
        The noise SD the run was judged against (the floor, unbiased).
    """
    ref = np.minimum(np.asarray(spread_rest, np.float64), REST_CAP * spread_noise)
    calm = np.median(spread, axis=1) <= SPREAD_RATIO * ref
    q25, med, q75 = np.percentile(sd, [25.0, 50.0, 75.0], axis=1)
    steady = q75 <= STEADY_RATIO * q25
    risen = med >= MIN_RISE * np.asarray(floor, np.float64)
    return calm & steady & risen & (q25 > 0)
