"""Score detected events against ground truth: one-to-one matching per site.

A detected fasciculation matches a true one on the same site (site + side)
when its onset lies within the true potential's span
``[onset - tol, onset + duration + tol]`` (``tol`` = 15 ms by default).
A detected cramp matches a true cramp on the same site when their
intersection-over-union is at least 0.5.  Matching is one-to-one and
optimal: the largest number of pairs, and among those the closest
(onset distance for fasciculations, 1 - IoU for cramps), found with
:func:`scipy.optimize.linear_sum_assignment` on the few groups of events
that compete for each other; everything else is vectorized with
:func:`numpy.searchsorted`, so tens of thousands of events score in well
under a second.

Only ``trial_type`` ``fasciculation`` and ``cramp`` are scored.  True
``artifact`` rows serve to count artefacts wrongly detected as
fasciculations, and true ``cramp``/``voluntary`` spans to count
fasciculations reported inside sustained activity (both should be 0).

Examples
--------
>>> import pandas as pd
>>> truth = pd.DataFrame({"onset": [1.0, 2.0], "duration": [0.01, 0.01],
...                       "trial_type": "fasciculation", "site": "biceps", "side": "L"})
>>> det = pd.DataFrame({"onset": [1.005, 3.0], "duration": [0.01, 0.01],
...                     "trial_type": "fasciculation", "site": "biceps", "side": "L"})
>>> r = evaluate(det, truth, duration_s=60.0)
>>> r["fasciculation"]["overall"]["tp"], r["fasciculation"]["overall"]["fp"]
(1, 1)
>>> r["fasciculation"]["overall"]["sensitivity"]
0.5
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from emgtool.errors import EmgtoolError, EmgtoolWarning

__all__ = [
    "Matching",
    "match_events",
    "evaluate",
    "evaluation_frame",
    "format_evaluation",
    "SCORED_KINDS",
]

FASC = "fasciculation"
CRAMP = "cramp"
#: The kinds that are scored; every other trial_type is ignored.
SCORED_KINDS = (FASC, CRAMP)
_SUSTAINED = ("cramp", "voluntary")


# --------------------------------------------------------------------------- matching
@dataclass
class Matching:
    """Result of :func:`match_events`.

    Row numbers are positions (``iloc``) in the tables given to
    :func:`match_events`.

    Attributes
    ----------
    pairs : dict kind -> ndarray (n, 2) of int
        Matched ``(detected_row, true_row)`` pairs.
    detected : dict kind -> ndarray of int
        Rows of the detected table of this kind.
    truth : dict kind -> ndarray of int
        Rows of the truth table of this kind.
    """

    pairs: dict[str, np.ndarray] = field(default_factory=dict)
    detected: dict[str, np.ndarray] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    def false_positives(self, kind: str) -> np.ndarray:
        """Detected rows of ``kind`` that match nothing."""
        return np.setdiff1d(self.detected[kind], self.pairs[kind][:, 0])

    def false_negatives(self, kind: str) -> np.ndarray:
        """True rows of ``kind`` that nothing matched."""
        return np.setdiff1d(self.truth[kind], self.pairs[kind][:, 1])


def _col(df: pd.DataFrame, name: str, default: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), default, dtype=object)
    s = df[name].astype(object).where(df[name].notna(), default)
    return s.astype(str).str.strip().replace("", default).to_numpy(dtype=object)


def _site_keys(df: pd.DataFrame) -> np.ndarray:
    """``"site side"`` per row (``"site"`` when the side is n/a)."""
    site = _col(df, "site", "unknown")
    side = _col(df, "side", "n/a")
    site_s, side_s = pd.Series(site, dtype=object), pd.Series(side, dtype=object)
    both = site_s + " " + side_s
    return both.where(~side_s.isin(["n/a", "nan"]), site_s).to_numpy(dtype=object)


def _times(df: pd.DataFrame, what: str = "table") -> tuple[np.ndarray, np.ndarray]:
    """Onset and duration (s) as float arrays; NaN durations become 0."""
    try:
        onset = pd.to_numeric(df["onset"], errors="raise").to_numpy(dtype=np.float64)
        dur = pd.to_numeric(df["duration"], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise EmgtoolError(f"{what}: onset/duration must be numbers ({e})") from None
    if np.isnan(onset).any():
        raise EmgtoolError(f"{what}: {int(np.isnan(onset).sum())} row(s) without an onset")
    dur = np.where(np.isfinite(dur) & (dur > 0), dur, 0.0)
    return onset, dur


def _kind_rows(df: pd.DataFrame, kind: str) -> np.ndarray:
    if "trial_type" not in df.columns or len(df) == 0:
        return np.zeros(0, dtype=np.int64)
    tt = df["trial_type"].astype(str).str.strip().str.lower().to_numpy()
    return np.flatnonzero(tt == kind)


def _group_offsets(keys_a: np.ndarray, keys_b: np.ndarray, span_s: float) -> tuple:
    """Map site keys to a time offset so one sorted search covers all sites.

    Each site gets its own stretch of the time axis, ``span_s`` apart, which
    keeps events of different sites from ever being candidates of each other.
    """
    uniq = np.unique(np.concatenate([keys_a, keys_b]).astype(str))
    lookup = {k: i for i, k in enumerate(uniq)}
    ga = np.fromiter((lookup[k] for k in keys_a.astype(str)), np.int64, len(keys_a))
    gb = np.fromiter((lookup[k] for k in keys_b.astype(str)), np.int64, len(keys_b))
    return ga * span_s, gb * span_s


def _candidates(
    points: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All ``(point, window)`` index pairs with ``lo[w] <= points[p] <= hi[w]``.

    Vectorized: ``points`` is sorted once and each window's range of points is
    found by binary search, so the cost is O((n + m) log n + pairs).
    """
    order = np.argsort(points, kind="stable")
    sp = points[order]
    a = np.searchsorted(sp, lo, side="left")
    b = np.searchsorted(sp, hi, side="right")
    counts = np.maximum(b - a, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    win = np.repeat(np.arange(len(lo)), counts)
    # position within each window's run: 0, 1, ... counts-1
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    pos = np.arange(total) - starts + np.repeat(a, counts)
    return order[pos], win


def _assign(i: np.ndarray, j: np.ndarray, cost: np.ndarray, n_i: int, n_j: int) -> np.ndarray:
    """Optimal one-to-one assignment on a sparse set of allowed pairs.

    Maximises the number of pairs, then minimises the summed ``cost``
    (costs must be >= 0).  Pairs whose two ends have no other candidate are
    taken directly; the rest is split into connected groups, each solved
    exactly with the Hungarian algorithm.

    Returns
    -------
    ndarray, shape (k, 2)
        Matched ``(i, j)`` index pairs.
    """
    if len(i) == 0:
        return np.zeros((0, 2), np.int64)
    deg_i = np.bincount(i, minlength=n_i)
    deg_j = np.bincount(j, minlength=n_j)
    simple = (deg_i[i] == 1) & (deg_j[j] == 1)
    out = [np.column_stack([i[simple], j[simple]])]
    ci, cj, cc = i[~simple], j[~simple], cost[~simple]
    if len(ci):
        # Connected groups of competing events (bipartite graph: i nodes, then j nodes).
        n = n_i + n_j
        graph = coo_matrix((np.ones(len(ci)), (ci, n_i + cj)), shape=(n, n))
        _n, label = connected_components(graph, directed=False)
        comp = label[ci]
        order = np.argsort(comp, kind="stable")
        ci, cj, cc, comp = ci[order], cj[order], cc[order], comp[order]
        bounds = np.flatnonzero(np.diff(comp)) + 1
        for gi, gj, gc in zip(
            np.split(ci, bounds), np.split(cj, bounds), np.split(cc, bounds), strict=True
        ):
            ui, li = np.unique(gi, return_inverse=True)
            uj, lj = np.unique(gj, return_inverse=True)
            # A forbidden pair costs more than all allowed pairs together, so the
            # solver first maximises the number of allowed pairs.
            big = float(gc.sum()) * 2.0 + 1.0
            m = np.full((len(ui), len(uj)), big)
            m[li, lj] = gc
            r, c = linear_sum_assignment(m)
            ok = m[r, c] < big
            out.append(np.column_stack([ui[r[ok]], uj[c[ok]]]))
    pairs = np.concatenate(out).astype(np.int64)
    return pairs[np.argsort(pairs[:, 1], kind="stable")]


def _match_fasc(det: pd.DataFrame, truth: pd.DataFrame, rows_d, rows_t, tol_s: float):
    d_on, _ = _times(det.iloc[rows_d], "detected events")
    t_on, t_dur = _times(truth.iloc[rows_t], "true events")
    if len(d_on) == 0 or len(t_on) == 0:
        return np.zeros((0, 2), np.int64)
    span = (
        float(max(d_on.max(), (t_on + t_dur).max()) - min(d_on.min(), t_on.min()))
        + 10 * tol_s
        + 10.0
    )
    gd, gt = _group_offsets(_site_keys(det.iloc[rows_d]), _site_keys(truth.iloc[rows_t]), span)
    base = min(d_on.min(), t_on.min())
    dp = d_on - base + gd
    lo = t_on - base + gt - tol_s
    hi = t_on + t_dur - base + gt + tol_s
    pi, pj = _candidates(dp, lo, hi)
    cost = np.abs(d_on[pi] - t_on[pj])
    local = _assign(pi, pj, cost, len(d_on), len(t_on))
    return np.column_stack([rows_d[local[:, 0]], rows_t[local[:, 1]]])


def _iou(a0, a1, b0, b1) -> np.ndarray:
    inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0, None)
    union = np.maximum(a1, b1) - np.minimum(a0, b0)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match_cramp(det: pd.DataFrame, truth: pd.DataFrame, rows_d, rows_t, min_iou: float):
    d_on, d_dur = _times(det.iloc[rows_d], "detected events")
    t_on, t_dur = _times(truth.iloc[rows_t], "true events")
    if len(d_on) == 0 or len(t_on) == 0:
        return np.zeros((0, 2), np.int64)
    lo_all = min(d_on.min(), t_on.min())
    # Windows reach back by the longest detection: keep sites further apart than that.
    span = float(max((d_on + d_dur).max(), (t_on + t_dur).max()) - lo_all) + d_dur.max() + 10.0
    gd, gt = _group_offsets(_site_keys(det.iloc[rows_d]), _site_keys(truth.iloc[rows_t]), span)
    # Overlapping intervals: a detection's onset lies in [t0 - longest detection, t1].
    dp = d_on - lo_all + gd
    lo = t_on - lo_all + gt - float(d_dur.max())
    hi = t_on + t_dur - lo_all + gt
    pi, pj = _candidates(dp, lo, hi)
    iou = _iou(d_on[pi], d_on[pi] + d_dur[pi], t_on[pj], t_on[pj] + t_dur[pj])
    keep = iou >= min_iou - 1e-12
    pi, pj, iou = pi[keep], pj[keep], iou[keep]
    local = _assign(pi, pj, 1.0 - iou, len(d_on), len(t_on))
    return np.column_stack([rows_d[local[:, 0]], rows_t[local[:, 1]]])


def match_events(
    detected_df: pd.DataFrame,
    truth_df: pd.DataFrame,
    *,
    fasc_tol_ms: float = 15.0,
    cramp_iou: float = 0.5,
) -> Matching:
    """Match detected events to true ones, one to one, per site and kind.

    Parameters
    ----------
    detected_df, truth_df : DataFrame
        Event tables (:mod:`emgtool.events` columns; ``onset``, ``duration``,
        ``trial_type`` are required, ``site`` and ``side`` default to
        ``unknown`` / ``n/a``).
    fasc_tol_ms : float
        A detected fasciculation matches when its onset lies within the true
        span ``[onset, onset + duration]`` widened by this much on each side.
    cramp_iou : float
        Minimum intersection-over-union for two cramps to match.

    Returns
    -------
    Matching

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"onset": [5.0], "duration": [4.0], "trial_type": ["cramp"]})
    >>> d = pd.DataFrame({"onset": [5.5], "duration": [4.0], "trial_type": ["cramp"]})
    >>> match_events(d, t).pairs["cramp"].tolist()
    [[0, 0]]
    """
    if fasc_tol_ms < 0:
        raise EmgtoolError(f"fasc_tol_ms must be >= 0, got {fasc_tol_ms}")
    if not 0 < cramp_iou <= 1:
        raise EmgtoolError(f"cramp_iou must be in (0, 1], got {cramp_iou}")
    m = Matching()
    for kind in SCORED_KINDS:
        rd, rt = _kind_rows(detected_df, kind), _kind_rows(truth_df, kind)
        m.detected[kind], m.truth[kind] = rd, rt
        if kind == FASC:
            m.pairs[kind] = _match_fasc(detected_df, truth_df, rd, rt, fasc_tol_ms / 1000.0)
        else:
            m.pairs[kind] = _match_cramp(detected_df, truth_df, rd, rt, cramp_iou)
    return m


# --------------------------------------------------------------------------- metrics
def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _metrics(tp: int, fp: int, fn: int, duration_s: float) -> dict:
    n_true, n_det = tp + fn, tp + fp
    sens, prec = _ratio(tp, n_true), _ratio(tp, n_det)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    minutes = duration_s / 60.0
    true_rate, det_rate = _ratio(n_true, minutes), _ratio(n_det, minutes)
    return {
        "n_true": n_true,
        "n_detected": n_det,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "sensitivity": sens,
        "precision": prec,
        "f1": f1,
        "true_rate_per_min": true_rate,
        "detected_rate_per_min": det_rate,
        "rate_error_per_min": det_rate - true_rate,
        "rate_error_rel": _ratio(det_rate - true_rate, true_rate),
    }


def _infer_duration(det: pd.DataFrame, truth: pd.DataFrame) -> float:
    ends = []
    for df in (det, truth):
        if len(df):
            on, dur = _times(df)
            ends.append(float(np.max(on + dur)))
    return max(ends) if ends else 0.0


def _in_spans(points, pkeys, s0, s1, skeys) -> tuple[np.ndarray, np.ndarray]:
    """Points inside any span ``[s0, s1]`` with the same key, and spans holding a point.

    Returns two boolean arrays: one per point, one per span.
    """
    hit_p, hit_s = np.zeros(len(points), bool), np.zeros(len(s0), bool)
    if len(points) == 0 or len(s0) == 0:
        return hit_p, hit_s
    lo_all = min(points.min(), s0.min())
    span = float(max(points.max(), s1.max()) - lo_all) + 10.0
    gp, gs = _group_offsets(pkeys, skeys, span)
    pi, si = _candidates(points - lo_all + gp, s0 - lo_all + gs, s1 - lo_all + gs)
    hit_p[pi] = True
    hit_s[si] = True
    return hit_p, hit_s


def evaluate(
    detected_df: pd.DataFrame,
    truth_df: pd.DataFrame,
    *,
    duration_s: float | None = None,
    n_channels: int | None = None,
    fasc_tol_ms: float = 15.0,
    cramp_iou: float = 0.5,
) -> dict:
    """Sensitivity, precision, F1 and rates per kind and per site.

    Parameters
    ----------
    detected_df, truth_df : DataFrame
        Event tables (see :func:`match_events`).
    duration_s : float, optional
        Recording duration, for rates.  If omitted it is inferred from the end
        of the last event (an underestimate) and a warning says so.
    n_channels : int, optional
        Number of channels recorded; adds false fasciculations per
        channel-hour (the ``healthy`` target).
    fasc_tol_ms, cramp_iou : float
        Matching rules (see :func:`match_events`).

    Returns
    -------
    dict
        JSON-ready: ``duration_s``, ``duration_inferred``, ``tolerances``;
        for ``fasciculation`` and ``cramp``: ``overall`` and ``sites``
        (``"site side"`` → metrics: ``n_true``, ``n_detected``, ``tp``, ``fp``,
        ``fn``, ``sensitivity``, ``precision``, ``f1``,
        ``true_rate_per_min``, ``detected_rate_per_min``,
        ``rate_error_per_min``, ``rate_error_rel``); cramps add
        ``onset_error_median_s``/``onset_error_max_s``/``offset_error_*``
        (absolute, over matched cramps) and ``onset_bias_s``/``offset_bias_s``
        (median signed, detected − true); ``checks``: ``true_artifacts``,
        ``false_fasciculations_on_artifacts`` (false fasciculations within
        ±tol of a true artefact: motion artefacts at any site, flat/clipped
        stretches at their own site), ``artifacts_detected_as_fasciculation``
        (distinct true artefacts with at least one of them),
        ``fasciculations_in_sustained`` (detected fasciculations whose onset
        lies inside a true cramp or voluntary span on the same site),
        ``false_fasc_per_channel_hour``.  Undefined ratios are NaN.
    """
    inferred = duration_s is None
    if inferred:
        duration_s = _infer_duration(detected_df, truth_df)
        warnings.warn(
            f"recording duration not given; using the end of the last event ({duration_s:.1f} s), "
            "so rates are overestimated",
            EmgtoolWarning,
            stacklevel=2,
        )
    duration_s = float(duration_s)
    m = match_events(detected_df, truth_df, fasc_tol_ms=fasc_tol_ms, cramp_iou=cramp_iou)
    dkeys, tkeys = _site_keys(detected_df), _site_keys(truth_df)
    out: dict = {
        "duration_s": duration_s,
        "duration_inferred": inferred,
        "tolerances": {"fasc_tol_ms": fasc_tol_ms, "cramp_iou": cramp_iou},
    }
    for kind in SCORED_KINDS:
        rd, rt, pairs = m.detected[kind], m.truth[kind], m.pairs[kind]
        d_site, t_site = dkeys[rd], tkeys[rt]
        tp_site = tkeys[pairs[:, 1]]
        sites = sorted(set(d_site) | set(t_site))
        per_site = {}
        for s in sites:
            tp = int(np.sum(tp_site == s))
            per_site[s] = _metrics(
                tp, int(np.sum(d_site == s)) - tp, int(np.sum(t_site == s)) - tp, duration_s
            )
        tp = len(pairs)
        overall = _metrics(tp, len(rd) - tp, len(rt) - tp, duration_s)
        if kind == CRAMP:
            errs = _cramp_errors(detected_df, truth_df, pairs)
            overall.update(errs)
            for s in sites:
                per_site[s].update(_cramp_errors(detected_df, truth_df, pairs[tp_site == s]))
        out[kind] = {"overall": overall, "sites": per_site}

    # Sanity checks the targets ask for.
    fp_rows = m.false_positives(FASC)
    art_rows = _kind_rows(truth_df, "artifact")
    fp_on, _ = _times(detected_df.iloc[fp_rows]) if len(fp_rows) else (np.zeros(0), None)
    fp_on_art, arts_hit = 0, 0
    if len(art_rows) and len(fp_on):
        a_on, a_dur = _times(truth_df.iloc[art_rows])
        tol = fasc_tol_ms / 1000.0
        a_keys = tkeys[art_rows]
        # Motion/electrical artefacts (site unknown) hit many sites at once: any site
        # counts; a flat or clipped stretch belongs to its own site.
        common = np.char.startswith(a_keys.astype(str), "unknown")
        hit_p = np.zeros(len(fp_on), bool)
        hit_a = np.zeros(len(a_on), bool)
        for sel, pk, ak in (
            (
                common,
                np.full(len(fp_on), "*", dtype=object),
                np.full(common.sum(), "*", dtype=object),
            ),
            (~common, dkeys[fp_rows], a_keys[~common]),
        ):
            hp, ha = _in_spans(fp_on, pk, a_on[sel] - tol, a_on[sel] + a_dur[sel] + tol, ak)
            hit_p |= hp
            hit_a[sel] |= ha
        fp_on_art, arts_hit = int(hit_p.sum()), int(hit_a.sum())
    fasc_rows = m.detected[FASC]
    sus_rows = np.concatenate([_kind_rows(truth_df, k) for k in _SUSTAINED])
    in_sus = 0
    if len(fasc_rows) and len(sus_rows):
        f_on, _ = _times(detected_df.iloc[fasc_rows])
        s_on, s_dur = _times(truth_df.iloc[sus_rows])
        hit, _ = _in_spans(f_on, dkeys[fasc_rows], s_on, s_on + s_dur, tkeys[sus_rows])
        in_sus = int(hit.sum())
    hours = duration_s / 3600.0
    out["checks"] = {
        "true_artifacts": int(len(art_rows)),
        "artifacts_detected_as_fasciculation": arts_hit,
        "false_fasciculations_on_artifacts": fp_on_art,
        "fasciculations_in_sustained": in_sus,
        "n_channels": n_channels,
        "false_fasc_per_channel_hour": (
            _ratio(len(fp_rows), n_channels * hours) if n_channels else float("nan")
        ),
    }
    return out


def _cramp_errors(det: pd.DataFrame, truth: pd.DataFrame, pairs: np.ndarray) -> dict:
    nan = float("nan")
    if len(pairs) == 0:
        keys = (
            "onset_error_median_s",
            "onset_error_max_s",
            "offset_error_median_s",
            "offset_error_max_s",
            "onset_bias_s",
            "offset_bias_s",
        )
        return dict.fromkeys(keys, nan)
    d_on, d_dur = _times(det.iloc[pairs[:, 0]])
    t_on, t_dur = _times(truth.iloc[pairs[:, 1]])
    on_err = d_on - t_on
    off_err = (d_on + d_dur) - (t_on + t_dur)
    return {
        "onset_error_median_s": float(np.median(np.abs(on_err))),
        "onset_error_max_s": float(np.max(np.abs(on_err))),
        "offset_error_median_s": float(np.median(np.abs(off_err))),
        "offset_error_max_s": float(np.max(np.abs(off_err))),
        "onset_bias_s": float(np.median(on_err)),
        "offset_bias_s": float(np.median(off_err)),
    }


# --------------------------------------------------------------------------- display
_FRAME_COLS = [
    "kind",
    "site",
    "n_true",
    "n_detected",
    "tp",
    "fp",
    "fn",
    "sensitivity",
    "precision",
    "f1",
    "true_rate_per_min",
    "detected_rate_per_min",
    "rate_error_per_min",
]


def evaluation_frame(result: dict) -> pd.DataFrame:
    """One row per kind and site (plus an ``ALL`` row per kind) from :func:`evaluate`."""
    rows = []
    for kind in SCORED_KINDS:
        block = result[kind]
        for site, met in [("ALL", block["overall"]), *block["sites"].items()]:
            rows.append({"kind": kind, "site": site, **met})
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=_FRAME_COLS)
    return df


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{v:.{digits}f}"


def format_evaluation(result: dict) -> str:
    """A plain-text report: one table per kind, one row per site."""
    lines = [
        f"duration: {result['duration_s']:.1f} s"
        + (" (inferred from the last event)" if result["duration_inferred"] else "")
    ]
    head = [
        "site",
        "true",
        "det",
        "TP",
        "FP",
        "FN",
        "sens",
        "prec",
        "F1",
        "true/min",
        "det/min",
        "err/min",
    ]
    for kind in SCORED_KINDS:
        block = result[kind]
        rows = []
        for site, met in [*sorted(block["sites"].items()), ("ALL", block["overall"])]:
            rows.append(
                [
                    site,
                    _fmt(met["n_true"]),
                    _fmt(met["n_detected"]),
                    _fmt(met["tp"]),
                    _fmt(met["fp"]),
                    _fmt(met["fn"]),
                    _fmt(met["sensitivity"]),
                    _fmt(met["precision"]),
                    _fmt(met["f1"]),
                    _fmt(met["true_rate_per_min"], 2),
                    _fmt(met["detected_rate_per_min"], 2),
                    _fmt(met["rate_error_per_min"], 2),
                ]
            )
        widths = [
            max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
        ]
        lines.append("")
        lines.append(
            f"{kind} ("
            + (
                f"onset within true span ± {result['tolerances']['fasc_tol_ms']:g} ms"
                if kind == FASC
                else f"IoU >= {result['tolerances']['cramp_iou']:g}"
            )
            + ")"
        )

        def fmt_row(r: list[str], widths: list[int] = widths) -> str:
            cells = zip(r, widths, strict=True)
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)
            )

        lines.append(fmt_row(head))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(fmt_row(r) for r in rows)
        if kind == CRAMP:
            o = block["overall"]
            lines.append(
                f"cramp onset error median/max: {_fmt(o['onset_error_median_s'])} / "
                f"{_fmt(o['onset_error_max_s'])} s; offset error median/max: "
                f"{_fmt(o['offset_error_median_s'])} / {_fmt(o['offset_error_max_s'])} s"
            )
    c = result["checks"]
    lines.append("")
    lines.append(
        f"true artefacts: {c['true_artifacts']}, of which detected as fasciculations: "
        f"{c['artifacts_detected_as_fasciculation']} ({c['false_fasciculations_on_artifacts']} "
        "false fasciculations); fasciculations inside true cramp/voluntary "
        f"spans: {c['fasciculations_in_sustained']}"
    )
    if c.get("n_channels"):
        lines.append(
            f"false fasciculations per channel-hour: {_fmt(c['false_fasc_per_channel_hour'], 2)}"
            f" ({c['n_channels']} channels)"
        )
    return "\n".join(lines)
