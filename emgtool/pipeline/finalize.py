"""Turn the pipeline's decided events into an :class:`~emgtool.analysis.Analysis`.

Work that needs the whole event list of a site runs here, once, the same way
for offline and live analysis: shape clusters (scikit-learn), doublets and
multiplets, F-wave-like pairs, isolated vs continual discharges, and the
artefact-free rest time of each site.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from emgtool.analysis import Analysis, SiteResult
from emgtool.events import EVENT_COLUMNS, normalise_events
from emgtool.pipeline import dsp
from emgtool.pipeline.core import BIN_S, PipelineState, all_exclusions
from emgtool.pipeline.noise_change import noise_spread
from emgtool.pipeline.runs import union_length
from emgtool.pipeline.store import KINDS

__all__ = ["finalize", "cluster_shapes"]

MAX_CLUSTER_FIT = 1000  # waveforms used to fit the clusters (the rest are assigned)


_CONTROLLER = None


def _one_thread():
    """Limit BLAS/OpenMP pools to one thread (a context manager).

    One controller is reused: building it inspects every loaded native library,
    which costs ~10 ms per call, twice per site.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def cluster_shapes(waves: NDArray, max_shapes: int, seed: int = 0) -> NDArray[np.int64]:
    """Shape cluster of each waveform (rows aligned on their peak).

    PCA to a few components, then a Gaussian mixture whose number of
    components is chosen by BIC (1 … ``max_shapes``).  Deterministic for a
    given input (fixed seed).
    """
    from sklearn.decomposition import PCA

    n = len(waves)
    if n == 0:
        return np.zeros(0, np.int64)
    if n < 4:
        return np.zeros(n, np.int64)
    x = np.asarray(waves, np.float64)
    rng = np.random.default_rng(seed)
    fit_idx = (
        np.sort(rng.choice(n, MAX_CLUSTER_FIT, replace=False))
        if n > MAX_CLUSTER_FIT
        else np.arange(n)
    )
    n_comp = int(min(4, x.shape[1], len(fit_idx) - 1))
    with _one_thread():
        pca = PCA(n_components=n_comp, random_state=seed).fit(x[fit_idx])
        z = pca.transform(x)
    with _one_thread():  # tiny matrices: thread start-up costs more than it saves
        return _fit_predict(x, z, fit_idx, max_shapes, seed)


def _fit_predict(x, z, fit_idx, max_shapes, seed):
    from sklearn.mixture import GaussianMixture

    fit = z[fit_idx]
    reg = 1e-3 * float(np.var(fit)) + 1e-6
    best, best_bic = None, _one_shape_bic(fit, reg)  # None: one shape
    for k in range(2, min(max_shapes, max(1, len(fit_idx) // 5)) + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(
                k, covariance_type="full", random_state=seed, n_init=1, reg_covar=reg
            ).fit(fit)
        bic = gm.bic(fit)
        # A new shape must clearly improve the fit; once it does not, more shapes
        # only split real ones.  Stopping at the first k that does not improve
        # (not the second) saves a third of the fits, and on six simulated
        # recordings shapes match the true motor units as well (median adjusted
        # Rand index 0.70 vs 0.66).
        if bic >= best_bic - 10.0:
            break
        best, best_bic = gm, bic
    if best is None:
        return np.zeros(len(z), np.int64)
    labels = best.predict(z)
    # Number shapes by size (0 = most frequent) for stable, readable labels.
    counts = np.bincount(labels, minlength=best.n_components)
    rank = np.argsort(-counts, kind="stable")
    remap = np.empty_like(rank)
    remap[rank] = np.arange(len(rank))
    return remap[labels].astype(np.int64)


def _one_shape_bic(z: NDArray, reg: float) -> float:
    """BIC of a one-component full-covariance Gaussian mixture, in closed form.

    Its maximum-likelihood fit is the mean and the (1/n) covariance plus
    ``reg`` on the diagonal, which is what scikit-learn's ``GaussianMixture(1)``
    converges to; its ``bic`` agrees to ~1e-13, without the cost of a fit.
    """
    n, d = z.shape
    c = z - z.mean(axis=0)
    cov = c.T @ c / n + reg * np.eye(d)
    _, logdet = np.linalg.slogdet(cov)
    maha = float(np.einsum("ij,ij->", c @ np.linalg.inv(cov), c)) / n
    loglik = -0.5 * (d * np.log(2 * np.pi) + logdet + maha)
    return -2.0 * loglik * n + (d * (d + 1) / 2 + d) * np.log(n)


def _intervals_for_site(
    st: PipelineState, s: int, block_sd: NDArray | None = None
) -> dict[str, list[tuple[float, float]]]:
    """Excluded time spans (s) of site ``s`` by reason (``block_sd``: ``st.block_sd`` as an array)."""
    fs = st.fs
    out: dict[str, list] = {"warmup": [(0.0, min(st.warmup_n, st.pos) / fs)]}
    chs = st.site_chs[s]
    per_reason: dict[str, list] = {}
    for c in chs:
        for a, b, why in all_exclusions(st, c):
            per_reason.setdefault(why, []).append((c, a / fs, min(b, st.pos) / fs))
    for why, spans in per_reason.items():
        if why in ("gap", "mains-dominated"):
            # Excluded only where every channel of the site is out.
            if len({c for c, _, _ in spans}) == len(chs):
                if len(chs) == 1:
                    out.setdefault(why, []).extend((a, b) for _, a, b in spans)
                else:
                    common = _intersect_all(
                        [[(a, b) for c2, a, b in spans if c2 == c] for c in chs]
                    )
                    out.setdefault(why, []).extend(common)
        else:
            if len(chs) <= 2:
                out.setdefault(why, []).extend((a, b) for _, a, b in spans)
    margin = st.margin_bins * st.bin_n / fs
    for a, b in st.sustained[s]:
        out.setdefault("sustained", []).append(
            (
                max(0.0, a * st.bin_n / fs - margin),
                min(st.pos / fs, b * st.bin_n / fs + st.after_bins * st.bin_n / fs),
            )
        )
    # Blocks in which every channel of the site is flat.
    flat = []
    if block_sd is None and st.block_sd:
        block_sd = np.array(st.block_sd)
    if block_sd is not None:
        for blk in np.flatnonzero((block_sd[:, chs] < st.cfg.flat_uv).all(axis=1)).tolist():
            flat.append((blk * st.block_n / fs, min((blk + 1) * st.block_n, st.pos) / fs))
    if flat:
        out["flat"] = flat
    return out


def _intersect_all(lists: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    cur = sorted(lists[0]) if lists else []
    for other in lists[1:]:
        nxt = []
        for a, b in cur:
            for c, d in sorted(other):
                lo, hi = max(a, c), min(b, d)
                if hi > lo:
                    nxt.append((lo, hi))
        cur = nxt
    return cur


def _discharge_codes(peaks_s: NDArray, isolated_s: float) -> NDArray[np.int8]:
    """0 n/a, 1 isolated (nothing within ``isolated_s`` either side), 2 continual (both sides)."""
    n = len(peaks_s)
    out = np.zeros(n, np.int8)
    if n == 0:
        return out
    before = np.r_[np.inf, np.diff(peaks_s)]
    after = np.r_[np.diff(peaks_s), np.inf]
    out[(before > isolated_s) & (after > isolated_s)] = 1
    out[(before <= isolated_s) & (after <= isolated_s)] = 2
    return out


def _multiplets(peaks_s: NDArray, shapes: NDArray, doublet_s: float, pair_s: tuple) -> tuple:
    """Position within same-shape multiplets (< doublet_s) and pair flags (pair window)."""
    n = len(peaks_s)
    mult = np.zeros(n, np.int64)
    pair = np.zeros(n, bool)
    for sh in np.unique(shapes):
        idx = np.flatnonzero(shapes == sh)
        t = peaks_s[idx]
        d = np.diff(t)
        for k in range(1, len(idx)):
            if d[k - 1] < doublet_s:
                mult[idx[k]] = mult[idx[k - 1]] + 1
        close = (d >= pair_s[0]) & (d <= pair_s[1])
        pair[idx[1:][close]] = True
        pair[idx[:-1][close]] = True
    return mult, pair


def _nullable(values: NDArray, valid: NDArray, dtype: str = "Int64"):
    """A pandas nullable array: ``values`` where ``valid``, NA elsewhere."""
    arr = pd.array(
        np.where(valid, values, 0).astype("bool" if dtype == "boolean" else np.int64), dtype=dtype
    )
    arr[~valid] = pd.NA
    return arr


def _site_names(st: PipelineState) -> list[str]:
    return [
        site.split(":", 1)[1] if site.startswith("unknown:") else site for site, _ in st.site_keys
    ]


_DISCHARGE = np.array(["n/a", "isolated", "continual"], dtype=object)


def _channel_labels(st: PipelineState) -> NDArray:
    """Channel column of every event (event-number order), one shared string per channel set."""
    ev = st.events
    n = len(ev)
    if n == 0:
        return np.zeros(0, object)
    key = np.column_stack([ev.column("site_i").astype(np.uint64), ev.column("chmask")])
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    labels = np.array(
        ["|".join(st.channels[c].label for c in ev.channels_of(int(i))) for i in first],
        dtype=object,
    )
    channel = labels[inv.reshape(-1)]
    for no, chs in ev.odd_channels.items():
        channel[no] = "|".join(st.channels[c].label for c in chs)
    return channel


def _row_order(st: PipelineState) -> NDArray:
    """Event numbers in the row order of :func:`~emgtool.events.normalise_events`.

    That is by sample, site, side and trial_type (as strings), stably; ranks of
    the few distinct strings stand in for the strings.
    """
    ev = st.events

    def rank(strings: list[str]) -> NDArray:  # equal strings share a rank
        _, inv = np.unique(np.array(strings, dtype=str), return_inverse=True)
        return inv.reshape(-1)

    site_i = ev.column("site_i")
    return np.lexsort(
        (
            rank(list(KINDS))[ev.column("kind")],
            rank([side for _, side in st.site_keys])[site_i],
            rank(_site_names(st))[site_i],
            ev.column("start"),
        )
    )


def _event_frame(st: PipelineState, order: NDArray, per_event: dict[str, NDArray]) -> pd.DataFrame:
    """The event table (events.tsv columns), rows in ``order``, built column by column.

    Every column is made from the compact store already permuted, and the
    DataFrame takes the arrays without consolidating them, so a million-event
    table costs little more than its own size.  ``per_event`` holds what
    finalize worked out per event (``shape``, ``multiplet``, ``pair``,
    ``discharge`` codes and ``is_fasc``), in event-number order.
    """
    ev = st.events
    fs = st.fs

    def col(name):
        return ev.column(name)[order]

    site_i = col("site_i")
    start, stop = col("start"), col("stop")
    is_fasc = per_event["is_fasc"][order]
    out = {}
    for name, (dtype, *_r) in EVENT_COLUMNS.items():
        if name == "onset":
            v = start / fs
        elif name == "duration":
            v = (stop - start) / fs
        elif name == "trial_type":
            v = np.array(KINDS, dtype=object)[col("kind")]
        elif name == "sample":
            v = start.astype(np.int64)
        elif name == "site":
            v = np.array(_site_names(st), dtype=object)[site_i]
        elif name == "side":
            v = np.array([side for _, side in st.site_keys], dtype=object)[site_i]
        elif name == "region":
            v = np.array(st.site_region, dtype=object)[site_i]
        elif name == "channel":
            v = _channel_labels(st)[order]
        elif name == "duration_ms":
            d = col("duration_ms")
            v = np.where(np.isnan(d), (stop - start) / fs * 1e3, d)
        elif name in ("phases", "turns"):
            x = col(name)
            v = _nullable(x, x >= 0, dtype)
        elif name in ("shape", "multiplet", "pair"):
            v = _nullable(per_event[name][order], is_fasc, dtype)
        elif name == "discharge":
            v = _DISCHARGE[per_event["discharge"][order]]
        elif name == "peak_s":
            v = col("peak") / fs
        elif name == "reason":
            v = np.array(ev.reasons, dtype=object)[col("reason")]
        else:  # amplitude_uv, area_uv_ms, mean_amplitude_uv
            v = col(name)
        out[name] = pd.array(v, dtype="str") if dtype == "string" else v
    return pd.DataFrame(out, copy=False)


LOW_RATE_PREFIX = "is below 1 kHz"


def low_rate_warning(fs: float, band_hz: tuple[float, float]) -> str:
    """What degrades below 1 kHz, with the band in use and measured figures.

    Figures: simulated ALS recordings (300 s, mains, ECG and motion), the share of
    true potentials found (``benchmarks``-style scoring), per sampling rate.

    >>> "the band-pass stops at 112 Hz" in low_rate_warning(250.0, (20.0, 450.0))
    True
    """
    hi = dsp.effective_band(fs, band_hz)[1]
    return (
        f"sampling rate {fs:g} Hz {LOW_RATE_PREFIX}: the band-pass stops at {hi:.0f} Hz "
        "(potentials carry energy up to ~450 Hz), so waveform measures (duration, phases, "
        "shapes) are degraded and weak potentials are missed (simulated ALS recordings "
        "with nuisances: 93 % of potentials found at 12 dB and 70 % at 6 dB at 250 Hz, "
        "97 % and 89 % at 500 Hz, against 98 % and 92 % at 2 kHz); cramp and "
        "sustained-activity detection remain valid"
        + (
            "; a lasting rise of a channel's noise cannot be told from sustained "
            "activity at this rate (noise_change.py) and is reported as such"
            if noise_spread(fs, band_hz, max(1, int(round(BIN_S * fs)))) is None
            else ""
        )
    )


def finalize(st: PipelineState, *, recording_id: str = "", source: dict | None = None) -> Analysis:
    """Build the :class:`Analysis` from a flushed pipeline state."""
    fs = st.fs
    cfg = st.cfg
    if st.out:  # decided but not yet handed out (finalize without flush)
        st.events.extend(st.out)
        st.out = []
    ev = st.events
    n_ev = len(ev)
    sites: list[SiteResult] = []
    n_sites = len(st.site_keys)
    names = _site_names(st)
    site_col = ev.column("site_i")
    is_fasc = ev.column("kind") == KINDS.index("fasciculation")
    is_ecg = ev.column("reason") == (ev.reasons.index("ecg") if "ecg" in ev.reasons else -1)
    shape = np.full(n_ev, -1, np.int32)
    mult = np.zeros(n_ev, np.int32)
    pair = np.zeros(n_ev, bool)
    discharge = np.zeros(n_ev, np.int8)  # codes into _DISCHARGE
    block_sd = np.array(st.block_sd) if st.block_sd else None
    for s in range(n_sites):
        site_out = names[s]
        side = st.site_keys[s][1]
        chs = st.site_chs[s]
        excl = _intervals_for_site(st, s, block_sd)
        total = st.pos / fs
        excluded = union_length([iv for v in excl.values() for iv in v])
        res = SiteResult(
            site=site_out,
            side=side,
            region=st.site_region[s],
            channels=[st.channels[c].label for c in chs],
            rest_s=max(0.0, total - excluded),
            excluded_s={k: round(union_length(v), 3) for k, v in excl.items()},
        )
        flags = set()
        for c in chs:
            reasons = {why for _, _, why in all_exclusions(st, c)}
            for why in reasons - {"gap"}:
                flags.add(f"{why}:{st.channels[c].label}")
            if any(ch == c for ch, *_ in st.noise_changes):
                flags.add(f"noise-change:{st.channels[c].label}")
            if st.mains_ratio is not None and st.mains_ratio[c] > 0.5:
                flags.add(f"mains:{st.channels[c].label}")
        if excl.get("flat"):
            flags.add("flat")
        if block_sd is not None:
            res.noise_uv = float(np.median(block_sd[:, chs]))
        if n_ev:
            on_site = site_col == s
            if st.cfg.ecg_reject and (on_site & is_ecg).any():
                flags.add("ecg")
            idx = np.flatnonzero(on_site & is_fasc)
            if len(idx):
                nos = idx  # event numbers
                have, waves = st.waveforms[s].lookup(nos)
                labels = np.full(len(idx), -1, np.int64)
                labels[have] = cluster_shapes(waves, cfg.max_shapes)
                peaks_s = ev.column("peak")[idx] / fs
                m, pr = _multiplets(
                    peaks_s,
                    labels,
                    cfg.doublet_ms / 1e3,
                    (cfg.pair_ms[0] / 1e3, cfg.pair_ms[1] / 1e3),
                )
                shape[idx], mult[idx], pair[idx] = labels, m, pr
                discharge[idx] = _discharge_codes(peaks_s, cfg.isolated_ms / 1e3)
                # Keep up to 300 representative waveforms for the report.
                sel = np.flatnonzero(have)[:300]
                res.waveforms = waves[: len(sel)].astype(np.float32)
                res.waveform_event_index = nos[sel]  # event numbers; mapped to rows below
        res.quality = sorted(flags)
        sites.append(res)
    df = pd.DataFrame()
    if n_ev:
        order = _row_order(st)
        per_event = dict(shape=shape, multiplet=mult, pair=pair, discharge=discharge)
        df = _event_frame(st, order, {**per_event, "is_fasc": is_fasc})
        row_of_no = np.empty(n_ev, np.int64)
        row_of_no[order] = np.arange(n_ev)
        for res in sites:
            res.waveform_event_index = row_of_no[np.asarray(res.waveform_event_index, np.int64)]
    warn = []
    if fs < 1000:
        warn.append(low_rate_warning(fs, st.cfg.band_hz))
    if st.disconnected is not None and st.disconnected.any():
        warn_ch = [st.channels[c].label for c in np.flatnonzero(st.disconnected)]
        warn.append("mains-dominated channel(s), excluded as disconnected: " + ", ".join(warn_ch))
    if st.n_absurd:
        warn.append(
            f"{st.n_absurd} sample(s) beyond ±10 V were treated as missing (not EMG values)"
        )

    gaps = _global_gaps(st)
    an = Analysis(
        events=df if len(df) else normalise_events(pd.DataFrame(columns=["onset"])),
        sites=sites,
        fs=fs,
        n_samples=st.pos,
        channels=st.channels,
        recording_id=recording_id,
        source=dict(source or {}),
        config=cfg,
        warnings=warn,
        gaps=gaps,
        channel_quality=_channel_quality(st),
        mains_hz=st.mains_hz,
    )
    return an


def _global_gaps(st: PipelineState) -> list[tuple[int, int]]:
    per_ch = [
        [(a, min(b - st.warmup_n, st.pos)) for a, b, why in spans if why == "gap"]
        for spans in (all_exclusions(st, c) for c in range(len(st.channels)))
    ]
    if not per_ch or any(len(p) == 0 for p in per_ch):
        return []
    common = _intersect_all([[(float(a), float(b)) for a, b in p] for p in per_ch])
    return [(int(a), int(b)) for a, b in common if b > a]


def _channel_quality(st: PipelineState) -> dict:
    out = {}
    sds = np.array(st.block_sd) if st.block_sd else np.zeros((0, len(st.channels)))
    for c, ch in enumerate(st.channels):
        spans = all_exclusions(st, c)
        clipped = sum(min(b, st.pos) - a for a, b, why in spans if why == "clipped") / st.fs
        changes = [(a, r) for c2, a, _b, r in st.noise_changes if c2 == c]
        flags = sorted(
            ({why for _, _, why in spans} - {"gap"}) | ({"noise-change"} if changes else set())
        )
        if len(sds) and np.median(sds[:, c]) < st.cfg.flat_uv:
            flags.append("flat")
        out[ch.label] = {
            "noise_uv": float(np.median(sds[:, c])) if len(sds) else None,
            "mains_ratio": float(st.mains_ratio[c]) if st.mains_ratio is not None else None,
            "clipped_s": round(float(clipped), 3),
            "flags": flags,
            # lasting changes of the noise level (noise_change.py): where the span
            # of evidence began, and the new noise SD over the one it replaced
            "noise_changes": [
                {"onset_s": round(a / st.fs, 3), "ratio": round(r, 3)} for a, r in changes
            ],
        }
    return out
