"""Cardiac (ECG) contamination: potentials locked to the heart rhythm.

On trunk and proximal sites the QRS complex passes the EMG band-pass and
looks like a biphasic potential once a second.  Fasciculations of one motor
unit fire irregularly (Poisson-like, or at a preferred ~80 ms interval),
whereas the heart produces the *same shape* at a *regular* interval of
0.35–1.6 s.  A tracker per site locks onto such a chain (three or more
similar potentials at a steady interval) and then labels every potential
that falls on the predicted beat with the same shape and size as
``artifact`` (ECG).  Beats are aligned on the site's template before they
are averaged in and timed by that alignment (a QRS's largest sample jumps
between R and S); a site without a steady rhythm of its own must agree with
another site's steady rhythm (one heart beats for all sites).

Examples
--------
>>> import numpy as np
>>> from emgtool.pipeline.ecg import CardiacTracker, classify
>>> w = np.sin(np.linspace(0, 2 * np.pi, 40)).astype(np.float32)
>>> tr = CardiacTracker()
>>> out = [classify(tr, int(t * 2048), w, 2048.0) for t in (1.0, 1.9, 2.8, 3.7)]
>>> out
[False, False, True, True]
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["CardiacTracker", "classify", "keep_threshold", "reference", "ECG_SITES", "bootstrap"]

#: Sites where cardiac contamination is expected (trunk and proximal limbs).
ECG_SITES = frozenset(
    {
        "sternocleidomastoid",
        "trapezius",
        "deltoid",
        "biceps",
        "triceps",
        "thoracic_paraspinals",
        "rectus_abdominis",
        "iliopsoas",
    }
)

RR_MIN_S, RR_MAX_S = 0.33, 1.6
RR_TOL = 0.15  # beat-to-beat variability allowed, as a fraction of RR
SHAPE_LOCK = 0.85  # correlation needed to start tracking
SHAPE_KEEP = 0.7  # correlation needed to stay on the rhythm (clean signal)
SHAPE_FLOOR = 0.5  # ... never below this, however noisy the beats (noise alone stays < ~0.4)
KEEP_HISTORY = 32  # accepted beats whose correlations set the noise-adapted threshold
KEEP_MIN_BEATS = 8
MAX_MISSED = 8  # the lock survives this many beat intervals without a detected beat
STEADY_BEATS = 8  # a rhythm is steady when its last this many beats were found one after
STEADY_MISSED = 2  # another, with at most this many beats missed in between
SITE_OFFSET_S = 0.04  # the same beat's fiducial differs between sites by up to this (R vs S)
REF_TOL = 0.05  # timing drift allowed per beat interval when predicting from another site


@dataclass
class CardiacTracker:
    """State of one site's cardiac tracker."""

    locked: bool = False
    rr: float = 0.0  # samples
    last: int = 0  # fiducial sample of the last beat (where the template's centre fell)
    template: NDArray | None = None
    history: list = field(default_factory=list)  # recent (peak, waveform) candidates
    corrs: list = field(default_factory=list)  # template correlation of recent accepted beats
    amps: list = field(default_factory=list)  # peak-to-peak of recent accepted beats
    amp_ref: float = 0.0  # their median (0: none yet)
    tpl: tuple | None = None  # (template less its mean, zero-padded by the lag; its energy)
    steps: list = field(default_factory=list)  # beat intervals spanned by recent accepted beats
    beats: list = field(
        default_factory=list
    )  # recent (peak, fiducial, rr, steady) of accepted beats
    prev: tuple | None = None  # (last, rr, timing error) before the last accepted beat
    keep: float = SHAPE_KEEP  # keep_threshold(self), updated with corrs


MAX_LAG_S = 0.02  # misalignment tolerated between two beats (R vs S wave as "the" peak)
AMP_RATIO = 2.0  # a beat's p-p stays within this factor of the site's recent beats


def _align(a: NDArray, b: NDArray, max_lag: int = 4) -> tuple[float, int]:
    """Largest normalised cross-correlation of two waveforms over small lags, and its lag.

    Peaks are found as the largest absolute sample, which can jump between
    phases of similar size (R or S wave); a few ms of lag absorb that jitter.
    At lag ``k``, ``b[i]`` lines up with ``a[i + k]``: the point of ``b``
    that corresponds to the centre of ``a`` is ``k`` samples before ``b``'s
    own centre.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if den <= 0:
        return 0.0, 0
    n = len(a)
    full = np.correlate(a, b, mode="full")  # lag k sits at index n - 1 + k
    lag = min(max_lag, n - 1)
    part = full[n - 1 - lag : n + lag]
    i = int(part.argmax())
    return float(part[i] / den), i - lag


_WIN_IDX: dict = {}


def _align_many(a: NDArray, bs: NDArray, max_lag: int) -> tuple[NDArray, NDArray]:
    """:func:`_align` of ``a`` with each row of ``bs`` at once: (correlations, lags)."""
    a = np.asarray(a, np.float64)
    bs = np.asarray(bs, np.float64)
    n = len(a)
    lag = min(max_lag, n - 1)
    idx = _WIN_IDX.get((n, lag))
    if idx is None:
        idx = _WIN_IDX[(n, lag)] = np.arange(n)[None, :] + np.arange(2 * lag + 1)[:, None]
    ap = np.zeros(n + 2 * lag)
    ap[lag : lag + n] = a - a.mean()
    bs = bs - bs.mean(axis=1, keepdims=True)
    # Row k of ap[idx] is a shifted by k - lag: its product with b is the correlation there.
    full = bs @ ap[idx].T  # (rows, 2 lag + 1)
    den = np.sqrt((ap * ap).sum() * (bs * bs).sum(axis=1))
    i = full.argmax(axis=1)
    best = full[np.arange(len(bs)), i]
    corr = np.where(den > 0, best / np.where(den > 0, den, 1.0), 0.0)
    return corr, np.where(den > 0, i - lag, 0)


def _set_template(tr: CardiacTracker, template: NDArray) -> None:
    tr.template = np.asarray(template, np.float64)
    tr.tpl = None  # padded copy made on first use, for the lag then in force


def _align_template(tr: CardiacTracker, w: NDArray, max_lag: int) -> tuple[float, int]:
    """:func:`_align` of the site's template with ``w`` (the template's part cached)."""
    n = len(tr.template)
    lag = min(max_lag, n - 1)
    if tr.tpl is None or len(tr.tpl[0]) != n + 2 * lag:
        ap = np.zeros(n + 2 * lag)
        ap[lag : lag + n] = tr.template - tr.template.mean()
        tr.tpl = (ap, float(ap @ ap))
    ap, aa = tr.tpl
    b = np.asarray(w, np.float64)
    b = b - b.mean()
    den = math.sqrt(aa * float(b @ b))
    if den <= 0:
        return 0.0, 0
    full = np.correlate(ap, b, mode="valid")  # index i: lag i - lag, as in _align
    i = int(full.argmax())
    return float(full[i]) / den, i - lag


def _shift(w: NDArray, k: int) -> NDArray:
    """``w`` moved ``k`` samples later (zeros shifted in): ``out[i] = w[i - k]``."""
    out = np.zeros(len(w), np.float64)
    if k >= 0:
        out[k:] = w[: len(w) - k]
    else:
        out[:k] = w[-k:]
    return out


def _lag(fs: float) -> int:
    return max(1, int(round(MAX_LAG_S * fs)))


def _may_chain(ts: list, t3: int, fs: float, lag: int) -> bool:
    """Could peaks ``ts`` (time order) and ``t3`` hold the chain :func:`_chain` looks for?

    A necessary condition on the peaks alone: with fiducials moved by at most
    ``lag``, the later interval ``d2 = t3 - t2`` must lie in the RR range
    widened by ``lag``, and the earlier one ``d1 = t2 - t1`` within
    ``RR_TOL·(d2 + lag) + 3·lag`` of it (``|k1 - 2·k2| <= 3·lag``).
    """
    for i in range(len(ts) - 1, 0, -1):
        d2 = t3 - ts[i]
        if d2 > RR_MAX_S * fs + lag:
            return False
        if d2 < RR_MIN_S * fs - lag:
            continue
        tol = RR_TOL * (d2 + lag) + 3 * lag
        for j in range(i - 1, -1, -1):
            d1 = ts[i] - ts[j]
            if d1 > d2 + tol:
                break
            if abs(d1 - d2) <= tol:
                return True
    return False


def _chain(history: list, fs: float) -> tuple[float, NDArray] | None:
    """A regular chain of three similar potentials ending at the newest one.

    Intervals are measured between aligned fiducials (each waveform aligned
    on the newest), and the template is the average of the aligned
    waveforms, so it keeps the QRS sharp whichever phase was each one's peak.
    """
    if len(history) < 3:
        return None
    t3, w3 = history[-1]
    lag = _lag(fs)
    # Cheap first: the peaks alone must allow such a chain (alignment moves each
    # fiducial by at most ``lag``), as most histories outside a rhythm do not.
    if not _may_chain([t for t, _ in history[:-1]], t3, fs, lag):
        return None
    # Alignment of every earlier potential on the newest one, in one product.
    cs, ks = _align_many(w3, np.stack([w for _, w in history[:-1]]), lag)
    cs, ks = cs.tolist(), ks.tolist()
    for i in range(len(history) - 2, 0, -1):
        t2, w2 = history[i]
        if t3 - t2 > RR_MAX_S * fs + lag:
            break
        c2, k2 = cs[i], ks[i]
        i2 = t3 - (t2 - k2)
        if i2 < RR_MIN_S * fs or i2 > RR_MAX_S * fs or c2 < SHAPE_LOCK:
            continue
        for j in range(i - 1, -1, -1):
            t1, w1 = history[j]
            c1, k1 = cs[j], ks[j]
            i1 = (t2 - k2) - (t1 - k1)
            if i1 > (1 + RR_TOL) * i2 + lag:
                break
            if abs(i1 - i2) <= RR_TOL * i2 and c1 >= SHAPE_LOCK:
                rr = (i1 + i2) / 2.0
                template = (_shift(w1, k1) + _shift(w2, k2) + w3) / 3.0
                # A potential of the beat's shape halfway between two of these
                # beats means the heart beats twice as fast: seen only every
                # other beat (the others split or merged differently), three
                # beats two intervals apart would lock at half the rate.
                fids = [t - k for (t, _), k in zip(history[:-1], ks, strict=True)]
                mids = (t3 - rr / 2, t2 - k2 - rr / 2)
                half = [
                    j
                    for j in range(len(fids))
                    if cs[j] >= SHAPE_KEEP
                    and any(abs(fids[j] - m) <= RR_TOL * rr / 2 for m in mids)
                ]
                if half and rr / 2 >= RR_MIN_S * fs:
                    rr /= 2.0
                return rr, template
    return None


def keep_threshold(tr: CardiacTracker) -> float:
    """Correlation a potential on the predicted beat needs to be taken as that beat.

    Noise lowers the correlation of every beat with the (averaged, clean)
    template: at a few dB a quarter of the QRS complexes fall below
    ``SHAPE_KEEP`` and would be counted as fasciculations.  The threshold
    therefore follows how well this site's own accepted beats match: their
    median less three robust SDs, between ``SHAPE_FLOOR`` and ``SHAPE_KEEP``.
    Clean beats (correlation ~0.95 or more) keep ``SHAPE_KEEP``.
    """
    if len(tr.corrs) < KEEP_MIN_BEATS:
        return SHAPE_KEEP
    # Plain Python on <= 32 numbers: several times cheaper than numpy calls here.
    med = statistics.median(tr.corrs)
    sd = 1.4826 * statistics.median([abs(c - med) for c in tr.corrs])
    return min(max(med - 3.0 * sd, SHAPE_FLOOR), SHAPE_KEEP)


def _amp_ok(tr: CardiacTracker, pp: float) -> bool:
    """Is ``pp`` within ``AMP_RATIO`` of the site's recent beats?

    The QRS at one electrode keeps its size from beat to beat (breathing
    moves it by tens of percent, posture slowly); a potential several times
    larger or smaller on the predicted beat is something else that happens
    to fall there, such as a fasciculation of similar shape.
    """
    if not tr.amps:
        return True
    ref = tr.amp_ref
    return ref / AMP_RATIO <= pp <= ref * AMP_RATIO


def _set_amps(tr: CardiacTracker, amps: list) -> None:
    tr.amps = amps
    tr.amp_ref = float(statistics.median(amps)) if amps else 0.0


def _accept(
    tr: CardiacTracker, peak: int, fid: int, k: int, w: NDArray, lag: int, c: float
) -> None:
    """Take the potential at fiducial ``fid`` as the beat ``k`` intervals after the last."""
    tr.prev = (tr.last, tr.rr, abs(fid - tr.last - k * tr.rr) / (tr.rr * k**0.5))
    tr.rr = 0.8 * tr.rr + 0.2 * (fid - tr.last) / k
    tr.last = fid
    _set_template(tr, 0.9 * tr.template + 0.1 * _shift(w, lag))
    tr.corrs = [*tr.corrs[-(KEEP_HISTORY - 1) :], c]
    _set_amps(tr, [*tr.amps[-(KEEP_HISTORY - 1) :], float(w.max() - w.min())])
    tr.steps = [*tr.steps[-(STEADY_BEATS - 1) :], k]
    tr.keep = keep_threshold(tr)
    _log_beat(tr, peak, fid)


def _steady(tr: CardiacTracker) -> bool:
    """Has the site found its last ``STEADY_BEATS`` beats nearly one after another?"""
    return len(tr.steps) == STEADY_BEATS and sum(tr.steps) <= STEADY_BEATS + STEADY_MISSED


def _log_beat(tr: CardiacTracker, peak: int, fid: int) -> None:
    tr.beats = [*tr.beats[-7:], (peak, fid, tr.rr, _steady(tr))]


def reference(tr: CardiacTracker, before: int) -> tuple[int, float] | None:
    """(fiducial, RR) of the site's last beat whose peak is at or before ``before``,
    if its rhythm was steady then; None otherwise.

    Another site's candidate is judged against this prediction: one heart beats
    for every site.
    """
    for pk, fid, rr, steady in reversed(tr.beats):
        if pk <= before:
            return (fid, rr) if steady else None
    return None


def _agrees(fid: int, refs: list, fs: float) -> bool:
    """Does a beat at ``fid`` fall on the rhythm of at least one steady other site?

    With no steady site to compare with, anything goes.  A site's fiducial may
    sit on another wave of the QRS than the reference's (``SITE_OFFSET_S``),
    and RR drifts a little per interval (``REF_TOL``).
    """
    if not refs:
        return True
    for f0, rr in refs:
        n = max(1, int(round((fid - f0) / rr)))
        if abs(fid - f0 - n * rr) <= SITE_OFFSET_S * fs + REF_TOL * rr * n:
            return True
    return False


def _unlock(tr: CardiacTracker) -> None:
    tr.locked = False
    tr.history, tr.corrs, tr.steps, tr.beats = [], [], [], []
    _set_amps(tr, [])
    tr.keep, tr.prev = SHAPE_KEEP, None


def _near_beat(d: int, rr: float, max_lag: int) -> set:
    """Beat counts k (1..MAX_MISSED) a potential ``d`` samples after a beat may be on,
    for some alignment lag; {0} stands for the same cycle."""
    ks = {int(round((d - max_lag) / rr)), int(round((d + max_lag) / rr))}
    return {
        k
        for k in ks
        if k == 0
        or (1 <= k <= MAX_MISSED and abs(d - k * rr) <= RR_TOL * rr * math.sqrt(k) + max_lag)
    }


def _may_be_on_beat(tr: CardiacTracker, peak: int, max_lag: int) -> bool:
    """Can a potential at ``peak`` pass the timing test, or replace the last beat,
    for some alignment lag?  Most cannot, and need no correlation."""
    ks = _near_beat(peak - tr.last, tr.rr, max_lag)
    if ks - {0}:
        return True
    if 0 in ks and tr.prev is not None:
        return bool(_near_beat(peak - tr.prev[0], tr.prev[1], max_lag) - {0})
    return False


def _reanchor(tr: CardiacTracker, peak: int, fid: int, w: NDArray, lag: int, c: float) -> bool:
    """Take ``fid`` as the last beat instead of the one accepted just before it.

    The first potential that fits the predicted beat is taken as the beat; a
    motion artefact or a fasciculation just before the QRS can be that one.
    The rhythm would then sit off its phase and miss the true beats that
    follow.  When a later potential of the same cycle fits the beat better
    (closer to the time predicted before the previous choice, with the
    template's shape and the beats' size), it becomes the beat.
    """
    last0, rr0, err0 = tr.prev
    k = int(round((fid - last0) / rr0))
    if k < 1 or k > MAX_MISSED:
        return False
    err = abs(fid - last0 - k * rr0) / (rr0 * k**0.5)
    if err >= err0 or err > RR_TOL or c < tr.keep or not _amp_ok(tr, float(w.max() - w.min())):
        return False
    tr.last, tr.rr = last0, rr0
    tr.steps = tr.steps[:-1]
    _accept(tr, peak, fid, k, np.asarray(w, np.float64), lag, c)
    return True


def classify(
    tr: CardiacTracker,
    peak: int,
    w: NDArray,
    fs: float,
    refs: list | None = None,
    learn: bool = True,
) -> bool:
    """True if the potential at ``peak`` belongs to the cardiac rhythm; updates ``tr``.

    Potentials must be passed in time order.  A potential is the next beat
    when, aligned on the site's QRS template, it falls on the predicted beat
    (within ``RR_TOL`` of the interval, growing with missed beats), matches
    the template's shape (``keep_threshold``) and has the size of the
    site's recent beats.  ``refs`` are predictions of other sites with a
    steady rhythm (:func:`reference`): unless this site's own rhythm is
    steady, a beat here must agree with one of them, since a motor unit of
    similar shape firing at about the heart rate can otherwise hold a site's
    tracker (a lock needs only three regular potentials, and missed beats
    widen the timing window).  A steady site is not overruled, so one beat
    taken wrongly elsewhere does not spread.  With ``learn=False`` the
    potential is only judged against a rhythm already locked: it never
    starts one (a grid's local potentials, see ``core._may_start_rhythm``).
    """
    if tr.locked and peak - tr.last > MAX_MISSED * tr.rr + _lag(fs):
        _unlock(tr)
    if tr.locked:
        if not _may_be_on_beat(tr, peak, _lag(fs)):
            return False  # cheap: off the rhythm whatever the alignment
        # Beats can be missed (below threshold, excluded); timing error grows with each.
        c, lag = _align_template(tr, w, _lag(fs))
        fid = peak - lag
        k = int(round((fid - tr.last) / tr.rr))
        if (
            1 <= k <= MAX_MISSED
            and abs(fid - tr.last - k * tr.rr) <= RR_TOL * tr.rr * np.sqrt(k)
            and c >= tr.keep
            and _amp_ok(tr, float(w.max() - w.min()))
            and (_steady(tr) or _agrees(fid, refs or [], fs))
        ):
            _accept(tr, peak, fid, k, np.asarray(w, np.float64), lag, c)
            return True
        if k == 0 and tr.prev is not None and _reanchor(tr, peak, fid, w, lag, c):
            return True
        return False
    if not learn:
        return False
    tr.history.append((peak, w))
    tr.history = [h for h in tr.history if peak - h[0] <= 3 * RR_MAX_S * fs][-12:]
    found = _chain(tr.history, fs)
    if found is not None and _agrees(peak, refs or [], fs):
        tr.locked, tr.rr = True, found[0]
        _set_template(tr, found[1])
        tr.last = peak
        tr.history = []
        tr.corrs, tr.steps = [], []
        _set_amps(tr, [float(found[1].max() - found[1].min())])
        tr.keep, tr.prev = keep_threshold(tr), None
        _log_beat(tr, peak, peak)
        return True
    return False


def bootstrap(peaks: NDArray, waveforms: NDArray, fs: float) -> tuple[CardiacTracker, NDArray]:
    """Find the rhythm in a block of candidates seen at the start of a recording.

    Returns the tracker (locked at the last beat if a rhythm was found) and a
    boolean mask of the candidates that are heart beats, so that the first
    beats of a recording are not counted as fasciculations.
    """
    tr = CardiacTracker()
    is_ecg = np.zeros(len(peaks), bool)
    order = np.argsort(peaks, kind="stable")
    best = None
    for n, i in enumerate(order):
        hist = [(int(peaks[j]), waveforms[j]) for j in order[max(0, n - 11) : n + 1]]
        found = _chain(hist, fs)
        if found is not None:
            best = (i, found)
            break
    if best is None:
        for i in order:  # no rhythm: warm the history so a later lock can use it
            classify(tr, int(peaks[i]), waveforms[i], fs)
        return tr, is_ecg
    i0, (rr, template) = best
    # Walk backward and forward from the anchor along the rhythm (aligned fiducials).
    anchor = int(peaks[i0])
    lag_max = _lag(fs)
    amps: list = []
    corrs: list = []
    last_beat, last_peak, steps = anchor, anchor, []
    for direction in (-1, 1):
        last, cur_rr = anchor, rr
        idx = order if direction == 1 else order[::-1]
        for j in idx:
            c, lag = _align(template, waveforms[j], lag_max)
            t = int(peaks[j]) - lag
            if (t - last) * direction <= 0:
                continue
            k = int(round(abs(t - last) / cur_rr))
            if 1 <= k <= 3 and abs(abs(t - last) - k * cur_rr) <= RR_TOL * cur_rr:
                if c >= SHAPE_KEEP:
                    is_ecg[j] = True
                    cur_rr = 0.8 * cur_rr + 0.2 * abs(t - last) / k
                    last = t
                    corrs.append(c)
                    amps.append(float(np.ptp(waveforms[j])))
                    if direction == 1:
                        steps.append(k)
                        last_peak = int(peaks[j])
        if direction == 1:
            last_beat = last
    is_ecg[i0] = True
    amps.append(float(np.ptp(waveforms[i0])))
    tr.locked, tr.rr, tr.last = True, rr, last_beat
    _set_template(tr, template)
    tr.corrs = corrs[-KEEP_HISTORY:]
    _set_amps(tr, amps[-KEEP_HISTORY:])
    tr.steps = steps[-STEADY_BEATS:]
    tr.keep = keep_threshold(tr)
    _log_beat(tr, last_peak, last_beat)
    return tr, is_ecg
