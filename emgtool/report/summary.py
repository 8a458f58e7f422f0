"""``summary.json``: per-site rates, shapes, intervals, cramps and regional spread.

:func:`summarize` is a pure function of an :class:`~emgtool.analysis.Analysis`;
every key is documented in ``docs/summary-schema.md`` and the spread rules in
``docs/spread-patterns.md``.  The output is plain JSON types only (no NaN:
missing numbers are ``None`` → ``null``).

Only events whose ``trial_type`` is ``fasciculation`` or ``cramp`` are ever
counted; ``artifact`` and ``voluntary`` rows only remove observation time
(they end inter-fasciculation intervals).

Examples
--------
>>> from emgtool.report.summary import poisson_interval
>>> lo, hi = poisson_interval(0)
>>> (lo, round(hi, 3))
(0.0, 3.689)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.stats import chi2

from emgtool._version import __version__
from emgtool.config import ALGORITHM_VERSION
from emgtool.pipeline.finalize import LOW_RATE_PREFIX, low_rate_warning

__all__ = [
    "SCHEMA_VERSION",
    "REGIONS",
    "PATTERNS",
    "InvolvementRule",
    "summarize",
    "poisson_interval",
    "site_label",
    "excluded_spans_s",
]

#: Bumped on any change of key names or meaning (major) or added keys (minor).
SCHEMA_VERSION = "1.0"

REGIONS = ("bulbar", "cervical", "thoracic", "lumbosacral")
PATTERNS = ("none", "focal", "multifocal", "widespread")

#: Intrinsic foot muscles: healthy people fasciculate there too (domain.md §1.1).
FOOT_MUSCLES = ("abductor_hallucis", "extensor_digitorum_brevis", "extensor_hallucis_brevis")
#: Polyphasic: more than this many phases.
POLYPHASIC_PHASES = 4
#: Rejected events shorter than this (s) do not end inter-fasciculation intervals.
IFI_BLANK_S = 0.25

FASC = "fasciculation"
CRAMP = "cramp"


class InvolvementRule:
    """When a site counts as *involved* (see ``docs/spread-patterns.md``).

    A site is involved when it shows at least ``min_count`` fasciculations
    **and** the lower bound of the exact two-sided ``1 - alpha`` Poisson
    interval of its rate exceeds ``background_per_min``.  A site that is not
    involved and has less than ``min_rest_s`` of artefact-free rest is
    ``insufficient`` (it cannot be called free).
    """

    def __init__(
        self,
        min_count: int = 3,
        background_per_min: float = 0.2,
        alpha: float = 0.05,
        min_rest_s: float = 90.0,
    ) -> None:
        self.min_count = int(min_count)
        self.background_per_min = float(background_per_min)
        self.alpha = float(alpha)
        self.min_rest_s = float(min_rest_s)

    def to_dict(self) -> dict:
        return {
            "min_count": self.min_count,
            "background_rate_per_min": self.background_per_min,
            "alpha": self.alpha,
            "min_rest_s": self.min_rest_s,
        }


def poisson_interval(k: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Garwood) two-sided interval of a Poisson mean given ``k`` counts.

    Examples
    --------
    >>> [round(v, 3) for v in poisson_interval(10)]
    [4.795, 18.39]
    """
    k = int(k)
    lo = 0.0 if k == 0 else float(chi2.ppf(alpha / 2, 2 * k) / 2)
    hi = float(chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2)
    return lo, hi


def site_label(site: str, side: str) -> str:
    """``"biceps L"``, or just ``"tongue"`` for a midline site."""
    return site if side in ("n/a", "", None) else f"{site} {side}"


# ---------------------------------------------------------------------- helpers
def _num(x, nd: int = 6):
    """Plain float rounded, or None for NaN/None/inf."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return round(v, nd)


def _pct(num: int, den: int):
    return None if den == 0 else round(100.0 * num / den, 3)


def _quantiles(values: np.ndarray) -> tuple:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None, None, None
    q25, q50, q75 = np.percentile(v, [25, 50, 75])
    return _num(q25), _num(q50), _num(q75)


def _col(df: pd.DataFrame, name: str, dtype=float) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    s = pd.to_numeric(df[name], errors="coerce")
    return s.to_numpy(dtype=float, na_value=np.nan)


def _str_column(col: pd.Series) -> np.ndarray:
    """A text column as an object array of str, without a copy of every string when
    it is one already (``astype(str)`` copies a million rows of a day's events)."""
    if pd.api.types.is_string_dtype(col) and not col.isna().any():
        return col.to_numpy(dtype=object)
    return col.astype(str).to_numpy()


#: Columns of the per-site fasciculation and cramp groups (what the summary and
#: the figures read from them).
_GROUP_COLUMNS = (
    "onset",
    "duration",
    "amplitude_uv",
    "duration_ms",
    "phases",
    "shape",
    "pair",
    "multiplet",
    "discharge",
)


def _split_events(analysis) -> dict:
    """Group the event table once: fasciculations and cramps per (site, side),
    and the non-fasciculation rows (the only ones that remove observation time).

    Memory matters here: a day-long recording has a million event rows.  Each
    group is one copy of its rows (no intermediate copy of the whole kind), and
    the non-fasciculation rows are kept as a few numpy columns, their channel
    lists factorised (a day of heart beats repeats the same few channel sets).
    """
    ev = analysis.events
    out: dict = {"fasc": {}, "cramp": {}, "nonfasc": None}
    if not len(ev):
        return out
    kinds, site, side = (_str_column(ev[c]) for c in ("trial_type", "site", "side"))
    onset = ev["onset"].to_numpy(dtype=float)
    # The per-site figures read only these columns: copy no others (strings cost most).
    cols = [c for c in _GROUP_COLUMNS if c in ev.columns]
    for kind, name in ((FASC, "fasc"), (CRAMP, "cramp")):
        pos = np.flatnonzero(kinds == kind)
        if not len(pos):
            continue
        groups = pd.DataFrame({"site": site[pos], "side": side[pos]}).groupby(
            ["site", "side"], sort=False
        )
        for k, idx in groups.indices.items():
            p = pos[idx]
            p = p[np.argsort(onset[p], kind="stable")]  # as sort_values(kind="stable")
            out[name][(str(k[0]), str(k[1]))] = ev[cols].iloc[p]
    nf = np.flatnonzero(kinds != FASC)
    chan = ev["channel"].to_numpy()[nf] if "channel" in ev.columns else np.full(len(nf), "")
    codes, uniques = pd.factorize(pd.Series(chan, dtype=object).fillna(""), use_na_sentinel=False)
    out["nonfasc"] = {
        "onset": onset[nf],
        "duration": np.nan_to_num(ev["duration"].to_numpy(dtype=float)[nf], nan=0.0),
        "site": site[nf],
        "side": side[nf],
        "chan_code": codes,
        "chan_sets": [set(str(c).split("|")) if c else set() for c in uniques],
    }
    return out


def excluded_spans_s(
    analysis, site_result, split: dict | None = None, min_event_s: float = 0.0
) -> list[tuple[float, float]]:
    """Spans (s) in which the site was not observed at rest, merged and sorted.

    Gaps (plus the filter warm-up after each), and every cramp, voluntary
    and artefact event at the site or on one of its channels that lasts at
    least ``min_event_s`` (gaps always count).
    """
    fs = analysis.fs
    warm = float(getattr(analysis.config, "warmup_s", 0.0) or 0.0)
    spans = [(a / fs, b / fs + warm) for a, b in analysis.gaps]
    split = split if split is not None else _split_events(analysis)
    nf = split["nonfasc"]
    if nf is not None and len(nf["onset"]):
        here = (nf["site"] == site_result.site) & (nf["side"] == site_result.side)
        chans = set(site_result.channels)
        chan_hit = np.array([bool(c & chans) for c in nf["chan_sets"]], dtype=bool)
        on_chan = chan_hit[nf["chan_code"]]
        sel = (here | on_chan) & (nf["duration"] >= min_event_s)
        on = nf["onset"][sel]
        du = nf["duration"][sel]
        spans += list(zip(on.tolist(), (on + du).tolist(), strict=True))
    spans.sort()
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(float(a), float(b)) for a, b in merged]


def _valid_intervals(onsets: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """Intervals between consecutive onsets that do not touch an excluded span."""
    if onsets.size < 2:
        return np.zeros(0)
    t0, t1 = onsets[:-1], onsets[1:]
    ok = np.ones(t0.size, dtype=bool)
    if spans:
        a = np.array([s[0] for s in spans])
        b = np.array([s[1] for s in spans])
        # An interval [t0, t1] is broken when some span [a, b] overlaps it.
        # Spans are sorted and disjoint: the first span ending after t0 decides.
        j = np.searchsorted(b, t0, side="right")
        has = j < a.size
        jj = np.minimum(j, a.size - 1)
        ok = ~(has & (a[jj] < t1))
    return (t1 - t0)[ok]


def _multiplet_members(df: pd.DataFrame, doublet_s: float) -> int:
    """Number of potentials that belong to a doublet/multiplet."""
    m = _col(df, "multiplet")
    if np.isfinite(m).any():
        m = np.nan_to_num(m, nan=0.0)
        # each multiplet has one member at position 1 and a first member at 0
        return int(np.sum(m >= 1) + np.sum(m == 1))
    # Fallback when the detector left the column empty: same shape (or any
    # shape if unknown) repeating within doublet_s.
    on = df["onset"].to_numpy(dtype=float)
    shape = np.nan_to_num(_col(df, "shape"), nan=-1)
    member = np.zeros(on.size, dtype=bool)
    order = np.argsort(on, kind="stable")
    on, shape = on[order], shape[order]
    for i in range(1, on.size):  # per event of one site, not per sample
        j = i - 1
        while j >= 0 and on[i] - on[j] < doublet_s:
            if shape[i] == shape[j]:
                member[i] = member[j] = True
                break
            j -= 1
    return int(member.sum())


def _bools(col: pd.Series) -> pd.Series:
    """Known truth values of a column that may hold bools, "True"/"false" strings or NA."""
    m = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}
    vals = [m.get(v if isinstance(v, bool) else str(v).strip().lower()) for v in col.tolist()]
    return pd.Series([v for v in vals if v is not None], dtype=bool)


def _isolated(df: pd.DataFrame, isolated_s: float) -> tuple[int, int]:
    """(isolated, known) counts from the ``discharge`` column or the 250 ms rule."""
    if "discharge" in df.columns:
        d = df["discharge"].astype("string").fillna("n/a").str.lower()
        known = d.isin(["isolated", "continual"])
        if known.any():
            return int((d == "isolated").sum()), int(known.sum())
    on = np.sort(df["onset"].to_numpy(dtype=float))
    if on.size == 0:
        return 0, 0
    before = np.diff(on, prepend=-np.inf)
    after = np.diff(on, append=np.inf)
    return int(np.sum((before > isolated_s) & (after > isolated_s))), int(on.size)


def _observed_s(analysis, sr) -> float:
    """Time the site was recorded with usable signal (the cramp-rate denominator).

    The recording minus gaps and the time the detector excluded as clipped,
    flat or disconnected at this site (cramps happen outside rest, so rest_s
    is the wrong denominator for them).
    """
    ex = {k: float(v or 0.0) for k, v in sr.excluded_s.items()}
    gap_s = max(sum(b - a for a, b in analysis.gaps) / analysis.fs, ex.get("gap", 0.0))
    unusable = sum(ex.get(k, 0.0) for k in ("clipped", "flat", "disconnected"))
    return max(0.0, analysis.duration_s - gap_s - unusable)


# ---------------------------------------------------------------------- per site
def _site_summary(analysis, sr, rule: InvolvementRule, split: dict) -> dict:
    cfg = analysis.config
    empty = analysis.events.iloc[0:0]
    f = split["fasc"].get((sr.site, sr.side), empty)
    c = split["cramp"].get((sr.site, sr.side), empty)
    n = len(f)
    rest_s = float(sr.rest_s or 0.0)
    if rest_s > 0:
        lo, hi = poisson_interval(n, rule.alpha)
        rate = n / rest_s * 60.0
        ci = [_num(lo / rest_s * 60.0), _num(hi / rest_s * 60.0)]
    else:
        rate, ci = None, [None, None]

    if n >= rule.min_count and ci[0] is not None and ci[0] > rule.background_per_min:
        status = "involved"
    elif rest_s < rule.min_rest_s:
        status = "insufficient"
    else:
        status = "not_involved"

    amp_q = _quantiles(_col(f, "amplitude_uv"))
    dur_q = _quantiles(_col(f, "duration_ms"))
    ph = _col(f, "phases")
    ph_known = ph[np.isfinite(ph)]
    shapes = _col(f, "shape")
    shapes = shapes[np.isfinite(shapes) & (shapes >= 0)]
    pair_known = _bools(f["pair"]) if "pair" in f.columns else pd.Series([], dtype=bool)
    iso, iso_known = _isolated(f, cfg.isolated_ms / 1000.0)

    # Brief rejections (ECG beats, single artefact spikes: < IFI_BLANK_S) only blank a
    # few ms; letting them break intervals would drop most long IFIs on ECG-laden
    # sites and bias the statistics towards short intervals.
    spans = excluded_spans_s(analysis, sr, split, min_event_s=IFI_BLANK_S)
    ifi = _valid_intervals(f["onset"].to_numpy(dtype=float), spans) * 1000.0
    ifi_q = _quantiles(ifi)

    observed_s = _observed_s(analysis, sr)
    cdur = np.nan_to_num(c["duration"].to_numpy(dtype=float), nan=0.0)
    nc = len(c)
    if observed_s > 0:
        clo, chi = poisson_interval(nc, rule.alpha)
        cph = nc / observed_s * 3600.0
        cph_ci = [_num(clo / observed_s * 3600.0), _num(chi / observed_s * 3600.0)]
    else:
        cph, cph_ci = None, [None, None]

    flags = list(sr.quality)
    if rest_s < rule.min_rest_s:
        flags.append("short_rest")
    if analysis.fs < 1000:
        flags.append("low_fs")

    return {
        "site": sr.site,
        "side": sr.side,
        "region": sr.region,
        "label": site_label(sr.site, sr.side),
        "channels": list(sr.channels),
        "rest_s": _num(rest_s, 3),
        "observed_s": _num(observed_s, 3),
        "excluded_s": {str(k): _num(v, 3) for k, v in sorted(sr.excluded_s.items())},
        "status": status,
        "fasciculation_count": int(n),
        "fasciculation_rate_per_min": _num(rate),
        "fasciculation_rate_ci95_per_min": ci,
        "amplitude_uv_median": amp_q[1],
        "amplitude_uv_q25": amp_q[0],
        "amplitude_uv_q75": amp_q[2],
        "amplitude_uv_iqr": None if amp_q[0] is None else _num(amp_q[2] - amp_q[0]),
        "duration_ms_median": dur_q[1],
        "phases_median": _num(np.median(ph_known)) if ph_known.size else None,
        "polyphasic_pct": _pct(int(np.sum(ph_known > POLYPHASIC_PHASES)), int(ph_known.size)),
        "doublet_pct": _pct(_multiplet_members(f, cfg.doublet_ms / 1000.0), n) if n else None,
        "pair_pct": _pct(int(pair_known.sum()), int(len(pair_known))),
        "isolated_pct": _pct(iso, iso_known),
        "n_shapes": int(np.unique(shapes).size),
        "ifi_count": int(ifi.size),
        "ifi_median_ms": ifi_q[1],
        "ifi_q25_ms": ifi_q[0],
        "ifi_q75_ms": ifi_q[2],
        "ifi_iqr_ms": None if ifi_q[0] is None else _num(ifi_q[2] - ifi_q[0]),
        "cramp_count": int(nc),
        "cramps_per_hour": _num(cph),
        "cramps_per_hour_ci95": cph_ci,
        "cramp_total_s": _num(float(cdur.sum()), 3),
        "cramp_longest_s": _num(float(cdur.max()), 3) if nc else None,
        "cramp_peak_amplitude_uv_median": _quantiles(_col(c, "amplitude_uv"))[1],
        "noise_uv": _num(sr.noise_uv, 3),
        "quality_flags": flags,
    }


# ---------------------------------------------------------------------- spread
def _sides(sites: Iterable[dict]) -> list[str]:
    return sorted({s["side"] for s in sites if s["side"] in ("L", "R")})


def _regions(site_rows: list[dict]) -> list[dict]:
    regions = list(REGIONS)
    if any(s["region"] not in REGIONS for s in site_rows):
        regions.append("unknown")
    out = []
    for r in regions:
        rows = [
            s for s in site_rows if (s["region"] if s["region"] in REGIONS else "unknown") == r
        ]
        inv = [s for s in rows if s["status"] == "involved"]
        adequate = [s for s in rows if s["status"] != "insufficient"]
        if not rows:
            status = "not_examined"
        elif inv:
            status = "involved"
        elif adequate:
            status = "not_involved"
        else:
            status = "insufficient"
        out.append(
            {
                "region": r,
                "status": status,
                "sites_examined": [s["label"] for s in rows],
                "n_sites_examined": len(rows),
                "sites_with_fasciculations": [s["label"] for s in inv],
                "n_sites_with_fasciculations": len(inv),
                "sites_with_any_detected": [
                    s["label"] for s in rows if s["fasciculation_count"] > 0
                ],
                "sides_examined": _sides(rows),
                "sides_with_fasciculations": _sides(inv),
                "fasciculation_count": int(sum(s["fasciculation_count"] for s in rows)),
                "cramp_count": int(sum(s["cramp_count"] for s in rows)),
            }
        )
    return out


def classify_spread(region_rows: list[dict], site_rows: list[dict]) -> dict:
    """Pattern from the per-region and per-site involvement (``docs/spread-patterns.md``)."""
    known = [r for r in region_rows if r["region"] in REGIONS]
    involved = [r for r in known if r["status"] == "involved"]
    inv_sites = [s for s in site_rows if s["status"] == "involved"]
    unknown_only = bool(inv_sites) and not involved
    n = len(involved)
    bilateral_regions = [
        r["region"] for r in involved if r["sides_with_fasciculations"] == ["L", "R"]
    ]
    if not inv_sites:
        pattern = "none"
    elif n >= 3 or (n >= 2 and len(bilateral_regions) >= 2):
        pattern = "widespread"
    elif n == 2:
        pattern = "multifocal"
    else:
        pattern = "focal"  # one region, or only sites of unknown region
    not_assessed = [r["region"] for r in known if r["status"] in ("not_examined", "insufficient")]
    return {
        "pattern": pattern,
        "regions_with_fasciculations": [r["region"] for r in involved],
        "n_regions_with_fasciculations": n,
        "bilateral": _sides(inv_sites) == ["L", "R"],
        "bilateral_regions": bilateral_regions,
        "sites_with_fasciculations": [s["label"] for s in inv_sites],
        "n_sites_with_fasciculations": len(inv_sites),
        "regions_not_assessed": not_assessed,
        "complete": not not_assessed,
        "unknown_region_involved": any(s["region"] not in REGIONS for s in inv_sites),
        "pattern_uses_unknown_region_only": unknown_only,
        "foot_muscles_only": bool(inv_sites) and all(s["site"] in FOOT_MUSCLES for s in inv_sites),
    }


# ---------------------------------------------------------------------- top level
def summarize(analysis, rule: InvolvementRule | None = None) -> dict:
    """Summarise an :class:`~emgtool.analysis.Analysis` as a JSON-ready dict.

    Parameters
    ----------
    analysis : Analysis
    rule : InvolvementRule, optional
        When a site counts as involved; the documented defaults if None.

    Returns
    -------
    dict
        See ``docs/summary-schema.md``.  ``json.dumps(summary, allow_nan=False)``
        always succeeds.
    """
    rule = rule or InvolvementRule()
    split = _split_events(analysis)
    sites = [_site_summary(analysis, sr, rule, split) for sr in analysis.sites]
    regions = _regions(sites)
    spread = classify_spread(regions, sites)

    warnings = [str(w) for w in analysis.warnings]
    for s in sites:
        if (s["rest_s"] or 0.0) < rule.min_rest_s:
            warnings.append(
                f"site {s['label']}: only {s['rest_s'] or 0:.1f} s of artefact-free rest observed "
                f"(< {rule.min_rest_s:g} s); its rate is uncertain and it cannot be called free of "
                "fasciculations"
            )
    if analysis.fs < 1000 and not any(LOW_RATE_PREFIX in w for w in warnings):
        warnings.append(low_rate_warning(analysis.fs, analysis.config.band_hz))
    if spread["foot_muscles_only"]:
        warnings.append(
            "fasciculations were found only in intrinsic foot muscles, where healthy people "
            "commonly fasciculate (sometimes > 100/min); interpret with care"
        )
    if spread["regions_not_assessed"] and spread["pattern"] != "widespread":
        warnings.append(
            "region(s) not adequately examined: "
            + ", ".join(spread["regions_not_assessed"])
            + "; the spread pattern describes the examined regions only"
        )
    src = analysis.source or {}
    for w in src.get("reader_warnings", []) or []:
        warnings.append(f"reader: {w}")

    fs = analysis.fs
    gaps = [
        {"start_s": _num(a / fs), "stop_s": _num(b / fs), "duration_s": _num((b - a) / fs)}
        for a, b in analysis.gaps
    ]
    excluded_total: dict[str, float] = {}
    for sr in analysis.sites:
        for k, v in sr.excluded_s.items():
            excluded_total[str(k)] = excluded_total.get(str(k), 0.0) + float(v or 0.0)
    ev = analysis.events
    kinds = ev["trial_type"].astype(str) if len(ev) else pd.Series([], dtype=str)
    out = {
        "schema_version": SCHEMA_VERSION,
        "emgtool_version": __version__,
        "algorithm_version": ALGORITHM_VERSION,
        "recording": {
            "recording_id": str(analysis.recording_id),
            "duration_s": _num(analysis.duration_s),
            "fs": _num(fs),
            "n_samples": int(analysis.n_samples),
            "n_channels": len(analysis.channels),
            "n_sites": len(sites),
            "format": src.get("format"),
            "start_time": src.get("start_time") if analysis.identity else None,
            "gaps": gaps,
            "gap_total_s": _num(sum(g["duration_s"] or 0 for g in gaps)),
            "mains_hz": _num(analysis.mains_hz),
        },
        "config": analysis.config.to_dict(),
        "config_hash": analysis.config.hash(),
        "involvement_rule": rule.to_dict(),
        "event_counts": {k: int((kinds == k).sum()) for k in sorted(set(kinds))},
        "sites": sites,
        "regions": regions,
        "spread": spread,
        "quality": {
            "mains_hz": _num(analysis.mains_hz),
            "excluded_s_by_reason": {k: _num(v, 3) for k, v in sorted(excluded_total.items())},
            "channels": _jsonable(analysis.channel_quality),
        },
        "warnings": warnings,
    }
    if analysis.identity:
        out["identity"] = _jsonable(analysis.identity)
        if src.get("file"):
            out["recording"]["file"] = str(src["file"])
    return out


def _jsonable(x):
    """Plain JSON types: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return _num(x)
    if x is None or isinstance(x, str):
        return x
    return str(x)
