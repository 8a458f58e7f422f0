"""The simulator's engine: plan → bursts → fasciculations → nuisances → faults → truth.

Every random draw comes from child generators of one
``numpy.random.SeedSequence(seed)``, one per concern (plan, units, timing,
noise, ...).  So a seed gives the same recording, and switching a nuisance
or changing the SNR leaves the fasciculations and cramps where they were —
the accuracy benchmark sweeps SNR over identical events.

Speed: spike trains are built with numpy, templates are added with
``np.add.at`` and the noise is one FFT per channel, so 16 channels at
2048 Hz simulate several hundred times faster than real time
(docs/simulator.md has the measured numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from emgtool._version import __version__
from emgtool.errors import ConfigError
from emgtool.recording import DTYPE, Channel, Recording
from emgtool.simulate import nuisances as nz
from emgtool.simulate.muaps import Muap, make_muap
from emgtool.simulate.scenarios import SCENARIOS, Burst, Group, default_labels, make_plan
from emgtool.simulate.truth import truth_frame
from emgtool.sites import assign_sites

__all__ = [
    "simulate",
    "simulate_parts",
    "Simulation",
    "parse_nuisances",
    "MEDIAN_FP_PP_UV",
    "SNR_REF_PP_UV",
]

#: Median of the fasciculation peak-to-peak amplitude distribution (lognormal).
MEDIAN_FP_PP_UV = 200.0
#: Log-standard deviation of that distribution: 90 % of units fall in ~90-450 µV.
FP_PP_LOG_SD = 0.5
FP_PP_RANGE_UV = (50.0, 1000.0)
#: ``snr_db`` refers to the weakest potential the model makes (the floor of the
#: amplitude distribution): at X dB every fasciculation's peak (p-p / 2) is at
#: least X dB above the in-band noise RMS.  The median potential is 12 dB higher.
SNR_REF_PP_UV = FP_PP_RANGE_UV[0]
#: Default in-band noise RMS range per channel when ``snr_db`` is not given.
DEFAULT_NOISE_UV = (3.0, 8.0)
#: Fasciculations are kept this far from cramps and voluntary bursts at their site...
BURST_GUARD_S = 0.5
#: ...and from electrode-motion artefacts anywhere.
MOTION_GUARD_S = 0.020
#: ...and from R peaks (QRS plus margin) on every site that carries ECG: a potential
#: on top of a QRS is ambiguous to any detector, which must blank those windows.
ECG_GUARD_S = 0.080
#: Two potentials of one site are at least this far apart (end to start), doublets aside.
MIN_GAP_S = 0.010
#: Conduction: 8 mm inter-electrode distance, 4 m/s → 2 ms per grid row.
GRID_ROW_DELAY_S = 0.002
#: A potential is listed on a channel if its p-p there is ≥ this × channel noise RMS
#: (and ≥ VISIBLE_REL × the largest channel's p-p).
VISIBLE_SIGMAS = 6.0
VISIBLE_REL = 0.1
#: Bursts draw their units' shapes from a bank this large (interference patterns
#: do not need a unique shape per unit, and templates cost ~1 ms each).
BURST_TEMPLATES = 48


@dataclass
class Simulation:
    """Result of :func:`simulate_parts`."""

    recording: Recording
    truth: pd.DataFrame
    #: noise-free components (µV), only with ``keep_parts=True``: "fasciculation", "burst", "nuisance"
    parts: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    #: in-band (20-450 Hz) RMS of the pink+white noise per channel, µV
    noise_rms_uv: NDArray[np.float64] | None = None
    #: sample index of every ECG R peak (empty without the ``ecg`` nuisance)
    ecg_r_samples: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


def parse_nuisances(nuisances: set[str] | str | None) -> set[str]:
    """``"default"``/None → all; ``"none"``/"" → none; ``"pink,mains"`` or a set → those."""
    if nuisances is None or nuisances == "default":
        return set(nz.NUISANCES)
    if isinstance(nuisances, str):
        text = nuisances.strip().lower()
        if text in ("none", ""):
            return set()
        names = {s.strip() for s in text.split(",") if s.strip()}
    else:
        names = {str(s).strip().lower() for s in nuisances}
    if "default" in names:
        names = (names - {"default"}) | set(nz.NUISANCES)
    unknown = sorted(names - set(nz.NUISANCES))
    if unknown:
        raise ConfigError(
            f"unknown nuisance(s) {', '.join(unknown)}; choose from {', '.join(nz.NUISANCES)} or 'none'"
        )
    return names


# ---------------------------------------------------------------------------- groups and units
def _groups(channels: tuple[Channel, ...]) -> list[Group]:
    """Channels grouped by site (muscle and side); unknown labels stay alone."""
    by_key: dict[tuple, Group] = {}
    for i, ch in enumerate(channels):
        key = (ch.site, ch.side) if ch.site != "unknown" else ("unknown", ch.label)
        g = by_key.setdefault(key, Group(ch.site, ch.side, ch.region, [], []))
        g.chans.append(i)
        g.labels.append(ch.label)
    out = list(by_key.values())
    for g in out:
        n = len(g.chans)
        if n < 2:
            continue
        elec = [channels[c].electrode for c in g.chans]
        if n >= 4 and all(e is not None for e in elec):
            ncols = int(np.ceil(np.sqrt(max(elec))))
            e0 = np.asarray(elec) - 1
            g.xy = np.stack([e0 % ncols, e0 // ncols], axis=1).astype(float)
        else:  # a few electrodes on one muscle: a line, 3 spacings apart
            g.xy = np.stack([3.0 * np.arange(n), np.zeros(n)], axis=1)
    return out


@dataclass
class _Unit:
    muap: Muap
    amp_uv: float
    gains: NDArray[np.float64]  # per channel of the group, max 1
    delays: NDArray[np.int64]  # per channel of the group, samples


def _spatial(rng: np.random.Generator, g: Group, fs: float) -> tuple[NDArray, NDArray]:
    """Gains (max 1) and propagation delays of one unit over the group's electrodes."""
    if g.xy is None:
        return np.ones(1), np.zeros(1, dtype=np.int64)
    lo, hi = g.xy.min(axis=0) - 0.5, g.xy.max(axis=0) + 0.5
    centre = rng.uniform(lo, hi)
    lam = rng.uniform(0.8, 2.0)  # spread in electrode spacings (deeper units spread more)
    d = np.hypot(*(g.xy - centre).T)
    gains = (1.0 + (d / lam) ** 2) ** -1.5
    gains /= gains.max()
    endplate_row = centre[1] + rng.uniform(-1.0, 1.0)
    delays = np.round(np.abs(g.xy[:, 1] - endplate_row) * GRID_ROW_DELAY_S * fs).astype(np.int64)
    return gains, delays - delays.min()


def _unit(
    rng: np.random.Generator, g: Group, fs: float, median_uv: float, bank: list[Muap] | None = None
) -> _Unit:
    """A motor unit: its own template, or one drawn from ``bank`` (bursts need hundreds)."""
    # Lognormal truncated to FP_PP_RANGE_UV (inverse CDF, so no pile-up at the limits).
    lo, hi = (ndtr(np.log(b / median_uv) / FP_PP_LOG_SD) for b in FP_PP_RANGE_UV)
    amp = float(median_uv * np.exp(FP_PP_LOG_SD * ndtri(rng.uniform(lo, hi))))
    gains, delays = _spatial(rng, g, fs)
    muap = bank[int(rng.integers(len(bank)))] if bank else make_muap(rng, fs)
    return _Unit(muap, amp, gains, delays)


def _place(
    out: NDArray[np.float32], row: int, starts: NDArray[np.int64], wave: NDArray, amps: NDArray
) -> None:
    """``out[row, s:s+L] += a·wave`` for each start (overlaps add; clipped at the edges)."""
    if starts.size == 0:
        return
    idx = starts[:, None] + np.arange(len(wave))[None, :]
    ok = (idx >= 0) & (idx < out.shape[1])
    np.add.at(out[row], idx[ok], (amps[:, None] * wave[None, :])[ok].astype(np.float32))


def _forbid(mask: NDArray[np.bool_], a: int, b: int) -> None:
    mask[max(0, a) : max(0, min(len(mask), b))] = True


def _moving_rms(x: NDArray, win: int) -> NDArray[np.float64]:
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    win = max(1, min(win, len(x)))
    ms = (c[win:] - c[:-win]) / win
    # centre the window: pad so the output has len(x) samples
    pad_l = (win - 1) // 2
    ms = np.concatenate([np.full(pad_l, ms[0]), ms, np.full(len(x) - len(ms) - pad_l, ms[-1])])
    return np.sqrt(np.maximum(ms, 0.0))


# ---------------------------------------------------------------------------- bursts
def _schedule(bursts: list[Burst], duration_s: float, rng: np.random.Generator) -> list[Burst]:
    """Give each burst an onset so that no two overlap (≥ 2 s apart); drop what does not fit."""
    placed: list[Burst] = []
    for b in sorted(bursts, key=lambda b: -b.duration_s):
        dur = min(b.duration_s, max(0.5, duration_s - 3.0))
        for _ in range(200):
            t0 = rng.uniform(1.0, max(1.0, duration_s - dur - 1.0))
            if all(
                t0 + dur + 2.0 <= p.onset_s or t0 >= p.onset_s + p.duration_s + 2.0 for p in placed
            ):
                b.onset_s, b.duration_s = float(t0), float(dur)
                placed.append(b)
                break
    return sorted(placed, key=lambda b: b.onset_s)


def _burst_envelope(rng: np.random.Generator, kind: str, m: int, fs: float) -> NDArray[np.float64]:
    t = np.arange(m) / fs
    dur = m / fs
    if kind == "cramp":
        rise, fall = rng.uniform(0.5, 1.5), rng.uniform(0.5, 2.0)
        trap = np.clip(np.minimum(t / rise, (dur - t) / fall), 0.0, 1.0)
        # Waxing and waning: common drive modulated at ~1.4 Hz, plus a slow swell.
        mod = 1.0 + 0.25 * np.sin(
            2 * np.pi * rng.uniform(1.2, 1.6) * t + rng.uniform(0, 2 * np.pi)
        )
        mod *= 1.0 + 0.1 * np.sin(
            2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi)
        )
        return trap * mod / 1.375
    rise, fall = rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3)
    trap = np.clip(np.minimum(t / rise, (dur - t) / fall), 0.0, 1.0)
    return trap * rng.uniform(0.5, 1.0)


def _spike_trains(
    rng: np.random.Generator,
    env: NDArray,
    fs: float,
    n_units: int,
    r_min: float,
    r_max: float,
    cv: float,
) -> list[NDArray[np.int64]]:
    """Onion-skin recruitment: unit i fires when env > θ_i at r_min…r_max pps (gamma ISIs)."""
    theta = np.sort(rng.uniform(0.03, 0.75, n_units))
    k = 1.0 / cv**2
    trains = []
    for th in theta:
        rate = np.where(env > th, r_min + (r_max - r_min) * (env - th) / max(1e-9, 1.0 - th), 0.0)
        lam = np.cumsum(rate) / fs  # expected spike count so far (operational time)
        total = lam[-1]
        if total < 1.0:
            trains.append(np.zeros(0, dtype=np.int64))
            continue
        n = int(total * 1.5) + 5
        isi = rng.gamma(k, 1.0 / k, n)
        ops = np.cumsum(isi) - rng.uniform(0.0, 1.0) * isi[0]
        ops = ops[(ops > 0) & (ops < total)]
        trains.append(np.searchsorted(lam, ops).astype(np.int64))
    return trains


# ---------------------------------------------------------------------------- main entry
def simulate_parts(
    scenario: str = "als-widespread",
    duration_s: float = 60.0,
    seed: int = 0,
    *,
    fs: float = 2048.0,
    snr_db: float | None = None,
    nuisances: set[str] | str | None = "default",
    mains_hz: float = 50.0,
    flat_channel: bool | str = False,
    clipped_channel: bool = False,
    sites: list[str] | str | None = None,
    n_cramps: int | None = None,
    n_voluntary: int | None = None,
    fp_rate_per_min: float | None = None,
    doublet_prob: float = 0.08,
    keep_parts: bool = False,
    progress: bool = False,
) -> Simulation:
    """Simulate a recording and its exact ground truth; see :func:`emgtool.simulate.simulate`.

    With ``keep_parts=True`` the noise-free fasciculation and burst
    components and the nuisance sum are returned too (tests use them).
    """
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"duration must be a positive number of seconds, got {duration_s!r}")
    if not (np.isfinite(fs) and fs >= 100):
        raise ConfigError(f"sampling rate must be at least 100 Hz, got {fs!r}")
    if mains_hz not in (50, 60, 50.0, 60.0):
        raise ConfigError(f"mains frequency must be 50 or 60 Hz, got {mains_hz!r}")
    flat_mode = {False: "", None: "", True: "flat"}.get(flat_channel, flat_channel)
    if flat_mode not in ("", "flat", "mains"):
        raise ConfigError(
            f"flat_channel must be 'flat' or 'mains' (or True/False), got {flat_channel!r}"
        )
    flat_channel = bool(flat_mode)
    active = parse_nuisances(nuisances)
    if snr_db is not None and not ({"pink", "white"} & active):
        raise ConfigError(
            "snr_db needs background noise: keep 'pink' or 'white' among the nuisances"
        )
    if isinstance(sites, str):
        sites = [s.strip() for s in sites.split(",") if s.strip()]
    labels = list(sites) if sites else default_labels(scenario)
    channels = assign_sites(labels)
    n_ch, n = len(channels), int(round(duration_s * fs))
    if n < int(fs * 0.5):
        raise ConfigError(f"duration must be at least 0.5 s, got {duration_s!r}")
    if (flat_channel + clipped_channel) > n_ch:
        raise ConfigError("need at least two channels for both a flat and a clipped channel")

    streams = np.random.SeedSequence(seed).spawn(12)
    (
        r_plan,
        r_units,
        r_time,
        r_noise,
        r_mains,
        r_ecg,
        r_motion,
        r_burst,
        r_fault,
        r_sched,
        r_jit,
        r_wander,
    ) = (np.random.default_rng(s) for s in streams)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_ch + 5, unit="step", desc="simulate", leave=False)

    def tick(k: int = 1) -> None:
        if bar is not None:
            bar.update(k)

    groups = _groups(channels)
    plan = make_plan(
        scenario,
        groups,
        duration_s,
        r_plan,
        n_cramps=n_cramps,
        n_voluntary=n_voluntary,
        fp_rate_per_min=fp_rate_per_min,
    )
    bursts = _schedule(plan.bursts, duration_s, r_sched)

    # Noise level per channel (in-band RMS, µV): from the SNR, or a plausible spread.
    # (Always drawn, so the noise stream is the same whatever the SNR.)
    default_sigma = r_noise.uniform(*DEFAULT_NOISE_UV, n_ch)
    if not ({"pink", "white"} & active):
        sigma = np.zeros(n_ch)
    elif snr_db is not None:
        sigma = np.full(n_ch, SNR_REF_PP_UV / 2.0 / 10.0 ** (snr_db / 20.0))
    else:
        sigma = default_sigma

    # Channel faults are chosen up front so the truth can leave them out.
    flat_idx = int(r_fault.integers(n_ch)) if flat_channel else -1
    clip_idx = -1
    clip_segs: list[tuple[int, int]] = []
    if clipped_channel:
        choices = [c for c in range(n_ch) if c != flat_idx]
        clip_idx = int(r_fault.choice(choices))
        n_seg = 1 if duration_s < 20 else 2
        for k in range(n_seg):
            seg = r_fault.uniform(1.0, 4.0) * fs
            lo = n * k / n_seg + 0.1 * n / n_seg
            a = int(r_fault.uniform(lo, max(lo, n * (k + 1) / n_seg - seg - 0.1 * n / n_seg)))
            clip_segs.append((a, min(n, a + int(seg))))

    data = np.zeros((n_ch, n), dtype=DTYPE)
    fasc = np.zeros_like(data) if keep_parts else None
    burst_sig = np.zeros_like(data) if keep_parts else None
    rows: list[dict] = []
    forbidden = [np.zeros(n, dtype=bool) for _ in groups]
    dead = np.zeros(n_ch, dtype=bool)
    if flat_idx >= 0:
        dead[flat_idx] = True

    def visible(g: Group, ptp: NDArray) -> NDArray[np.bool_]:
        chans = np.asarray(g.chans)
        vis = (
            (ptp >= VISIBLE_SIGMAS * sigma[chans])
            & (ptp >= VISIBLE_REL * ptp.max())
            & ~dead[chans]
        )
        live = np.flatnonzero(~dead[chans])
        if not vis.any() and live.size:
            vis[live[np.argmax(ptp[live])]] = True  # always the largest live channel
        return vis

    def group_row(g: Group, chans_vis: NDArray[np.bool_]) -> dict:
        return {
            "site": g.site,
            "side": g.side,
            "region": g.region,
            "channel": "|".join(lab for lab, v in zip(g.labels, chans_vis, strict=True) if v),
        }

    # ------------------------------------------------------------ cramps and voluntary bursts
    bank: list[Muap] = []
    for b in bursts:
        m = int(b.duration_s * fs)
        env = _burst_envelope(r_burst, b.kind, m, fs)
        start = int(b.onset_s * fs)
        for j, gi in enumerate(b.groups):
            g = groups[gi]
            if b.kind == "cramp":
                nu, rmin, rmax, cv, scale = int(r_burst.integers(15, 31)), 6.0, 25.0, 0.3, 150.0
                if j > 0:
                    scale *= 0.5  # the spread part of a cramp is weaker
            else:
                nu, rmin, rmax, cv, scale = int(r_burst.integers(10, 21)), 8.0, 20.0, 0.2, 120.0
            if not bank:
                bank += [make_muap(r_burst, fs) for _ in range(BURST_TEMPLATES)]
            units = [_unit(r_burst, g, fs, scale, bank) for _ in range(nu)]
            trains = _spike_trains(r_burst, env, fs, nu, rmin, rmax, cv)
            span = m + max(len(u.muap.wave) + int(u.delays.max()) for u in units)
            buf = np.zeros((len(g.chans), span), dtype=DTYPE)
            first, last = span, 0
            for u, tr in zip(units, trains, strict=True):
                if tr.size == 0:
                    continue
                amps = u.amp_uv * (1.0 + 0.05 * r_burst.standard_normal(tr.size))
                for ci in range(len(g.chans)):
                    _place(buf, ci, tr + u.delays[ci], u.muap.wave, amps * u.gains[ci])
                first = min(first, int(tr.min() + u.delays.min()))
                last = max(last, int(tr.max() + u.delays.max() + len(u.muap.wave)))
            if last <= first:
                continue
            stop = min(n, start + span)
            data[g.chans, start:stop] += buf[:, : stop - start]
            if burst_sig is not None:
                burst_sig[g.chans, start:stop] += buf[:, : stop - start]
            rms = np.stack([_moving_rms(x, int(0.1 * fs)) for x in buf])
            peak = rms.max(axis=1)
            vis = (peak >= 2.0 * sigma[g.chans]) & ~dead[g.chans]
            if not vis.any():
                if dead[g.chans].all():
                    continue  # invisible: on a disconnected channel only
                vis[np.argmax(np.where(dead[g.chans], -1.0, peak))] = True
            best = int(np.argmax(np.where(vis, peak, -1.0)))
            a, z = start + first, min(n, start + last)
            _forbid(forbidden[gi], a - int(BURST_GUARD_S * fs), z + int(BURST_GUARD_S * fs))
            seg = rms[best, first : z - start]
            rows.append(
                {
                    "onset": a / fs,
                    "duration": (z - a) / fs,
                    "trial_type": b.kind,
                    "sample": a,
                    **group_row(g, vis),
                    "amplitude_uv": float(seg.max()),
                    "mean_amplitude_uv": float(seg.mean()),
                    "duration_ms": (z - a) / fs * 1000.0,
                    "peak_s": (a + int(np.argmax(seg))) / fs,
                    "reason": "n/a",
                }
            )
    tick()

    # ------------------------------------------------------------ motion artefacts and ECG (times)
    # Nuisances go straight into data unless the parts are wanted (halves peak memory).
    nuis = np.zeros_like(data) if keep_parts else data
    motion_events: list[dict] = []
    if "motion" in active:
        k = int(r_motion.poisson(duration_s / 30.0))
        k = max(k, 1) if duration_s >= 10 else k
        onsets = np.sort(
            r_motion.integers(int(0.5 * fs), max(int(0.5 * fs) + 1, n - int(0.5 * fs)), k)
        )
        motion_events = nz.add_motion(nuis, r_motion, fs, onsets)
        for ev in motion_events:
            for f in forbidden:
                _forbid(
                    f,
                    ev["sample"] - int(MOTION_GUARD_S * fs),
                    ev["sample"] + ev["n_samples"] + int(MOTION_GUARD_S * fs),
                )
            chans = [c for c in ev["channels"] if not dead[c]]
            rows.append(
                {
                    "onset": ev["sample"] / fs,
                    "duration": ev["n_samples"] / fs,
                    "trial_type": "artifact",
                    "sample": ev["sample"],
                    "site": "unknown",
                    "side": "n/a",
                    "region": "unknown",
                    "channel": "|".join(labels[c] for c in chans),
                    "amplitude_uv": ev["amplitude_uv"],
                    "duration_ms": ev["n_samples"] / fs * 1000.0,
                    "reason": "motion",
                }
            )
    r_peaks = np.zeros(0, dtype=np.int64)
    if "ecg" in active:
        gains = np.zeros(n_ch)
        for g in groups:
            g0 = nz.ecg_gain(r_ecg, g.site, g.side)
            gains[g.chans] = g0 * r_ecg.uniform(0.8, 1.2, len(g.chans))
        r_peaks = nz.add_ecg(nuis, r_ecg, fs, gains)
        w = int(ECG_GUARD_S * fs)
        for gi, g in enumerate(groups):
            if np.any(gains[g.chans] != 0):
                for r in r_peaks:
                    _forbid(forbidden[gi], r - w, r + w)
    for gi, g in enumerate(groups):
        if clip_idx in g.chans:
            for a, z in clip_segs:
                _forbid(forbidden[gi], a - int(BURST_GUARD_S * fs), z + int(BURST_GUARD_S * fs))
    tick()

    # ------------------------------------------------------------ fasciculations
    fp_rows = []
    for gi, g in enumerate(groups):
        rate = plan.fp_rate_per_min.get(gi, 0.0) / 60.0
        nu = plan.n_units.get(gi, 0)
        if rate <= 0 or nu == 0:
            continue
        units = [_unit(r_units, g, fs, MEDIAN_FP_PP_UV) for _ in range(nu)]
        share = r_units.dirichlet(np.ones(nu))
        p_doublet = r_units.uniform(0.0, 2.0 * doublet_prob, nu)
        # candidate clusters (unit, start, second start or -1)
        cand = []
        for ui, u in enumerate(units):
            k = int(r_time.poisson(rate * share[ui] * duration_s))
            starts = np.sort(r_time.integers(0, n, k))
            dbl = r_time.random(k) < p_doublet[ui]
            lo_ms = max(5.0, 0.6 * u.muap.duration_ms)
            iv = np.round(r_time.uniform(min(lo_ms, 15.0), 15.0, k) * 1e-3 * fs).astype(np.int64)
            second = np.where(dbl, starts + iv, -1)
            cand += [(int(s), ui, int(s2)) for s, s2 in zip(starts, second, strict=True)]
        cand.sort()
        cs = np.concatenate([[0], np.cumsum(forbidden[gi])])
        kept = []
        last_end = -(10**12)
        gap = int(MIN_GAP_S * fs)
        for s, ui, s2 in cand:  # a few per second: a plain loop is fine
            u = units[ui]
            ext = len(u.muap.wave) + int(u.delays.max())
            end = (s2 if s2 >= 0 else s) + ext
            if s < 0 or end > n or s < last_end + gap:
                continue
            if cs[end] - cs[s] > 0:
                continue
            kept.append((s, ui, 0))
            if s2 >= 0:
                kept.append((s2, ui, 1))
            last_end = end
        if not kept:
            continue
        kept_arr = np.array(kept, dtype=np.int64)
        amps = np.array([units[ui].amp_uv for _s, ui, _m in kept]) * (
            1.0 + 0.05 * r_jit.standard_normal(len(kept))
        )
        amps = np.clip(amps, *FP_PP_RANGE_UV)  # jitter never leaves the model's range (SNR floor)
        for ui, u in enumerate(units):
            sel = kept_arr[:, 1] == ui
            if not sel.any():
                continue
            for ci, c in enumerate(g.chans):
                _place(
                    data, c, kept_arr[sel, 0] + u.delays[ci], u.muap.wave, amps[sel] * u.gains[ci]
                )
                if fasc is not None:
                    _place(
                        fasc,
                        c,
                        kept_arr[sel, 0] + u.delays[ci],
                        u.muap.wave,
                        amps[sel] * u.gains[ci],
                    )
        for (s, ui, mult), a_e in zip(kept, amps, strict=True):
            u = units[ui]
            ptp = a_e * u.gains
            vis = visible(g, ptp)
            if not vis.any():
                continue  # the only channel is disconnected
            live_ptp = np.where(vis, ptp, -1.0)
            best = int(np.argmax(live_ptp))
            on = s + int(u.delays[vis].min())
            off = s + int(u.delays[vis].max()) + len(u.muap.wave)
            sig_best = sigma[g.chans[best]]
            fp_rows.append(
                {
                    "onset": on / fs,
                    "duration": (off - on) / fs,
                    "trial_type": "fasciculation",
                    "sample": on,
                    **group_row(g, vis),
                    "amplitude_uv": float(ptp[best]),
                    "duration_ms": u.muap.duration_ms,
                    "phases": u.muap.phases,
                    "turns": u.muap.turns,
                    "area_uv_ms": float(np.abs(u.muap.wave).sum() * ptp[best] / fs * 1000.0),
                    "shape": ui,
                    "unit": ui,
                    "multiplet": mult,
                    "peak_s": (s + int(u.delays[best]) + u.muap.peak_index) / fs,
                    "snr_db": float(20 * np.log10(ptp[best] / 2.0 / sig_best))
                    if sig_best > 0
                    else np.inf,
                    "reason": "n/a",
                }
            )
    rows += fp_rows
    tick()

    # ------------------------------------------------------------ background, mains, wander
    nz.add_background(
        nuis,
        r_noise,
        fs,
        sigma,
        pink="pink" in active,
        white="white" in active,
        wander_rms_uv=r_wander.uniform(10.0, 50.0, n_ch) if "wander" in active else None,
        progress=tick,
    )
    if "mains" in active:
        amp = np.exp(r_mains.uniform(np.log(2.0), np.log(20.0), n_ch))
        nz.add_mains(nuis, r_mains, fs, float(mains_hz), amp)
    if keep_parts:
        data += nuis
    tick()

    # ------------------------------------------------------------ channel faults
    if flat_idx >= 0:
        data[flat_idx] = (0.05 * r_fault.standard_normal(n)).astype(DTYPE)
        if flat_mode == "mains":
            # A disconnected electrode picks up mains (hundreds of µV) and nothing else.
            hum = np.zeros((1, n), dtype=DTYPE)
            nz.add_mains(hum, r_fault, fs, float(mains_hz), np.array([r_fault.uniform(200, 1000)]))
            data[flat_idx] += hum[0]
        rows.append(
            {
                "onset": 0.0,
                "duration": n / fs,
                "trial_type": "artifact",
                "sample": 0,
                "site": channels[flat_idx].site,
                "side": channels[flat_idx].side,
                "region": channels[flat_idx].region,
                "channel": labels[flat_idx],
                "reason": "flat" if flat_mode == "flat" else "disconnected",
            }
        )
    if clip_idx >= 0:
        x = data[clip_idx]
        outside = np.ones(n, dtype=bool)
        for a, z in clip_segs:
            outside[a:z] = False
        rail = (
            float(np.ceil(1.05 * np.max(np.abs(x[outside])) / 10.0) * 10.0)
            if outside.any()
            else 1000.0
        )
        sign = r_fault.choice([-1.0, 1.0])
        for a, z in clip_segs:
            # An offset swing (raised-cosine edges, 0.2 s) that drives the amplifier into its rail.
            edge = min(int(0.2 * fs), (z - a) // 2)
            bump = np.ones(z - a)
            ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / max(1, edge))
            bump[:edge], bump[len(bump) - edge :] = ramp, ramp[::-1]
            x[a:z] += (sign * 3.0 * rail * bump).astype(DTYPE)
            rows.append(
                {
                    "onset": a / fs,
                    "duration": (z - a) / fs,
                    "trial_type": "artifact",
                    "sample": a,
                    "site": channels[clip_idx].site,
                    "side": channels[clip_idx].side,
                    "region": channels[clip_idx].region,
                    "channel": labels[clip_idx],
                    "reason": "clipped",
                    "amplitude_uv": 2 * rail,
                }
            )
        np.clip(x, -rail, rail, out=x)
    tick()
    if bar is not None:
        bar.close()

    meta = {
        "simulated": True,
        "scenario": scenario,
        "seed": seed,
        "emgtool_version": __version__,
        "snr_db": snr_db,
        "nuisances": sorted(active),
        "mains_hz": float(mains_hz) if "mains" in active else None,
        "noise_rms_uv": [float(s) for s in sigma],
        "flat_channel": labels[flat_idx] if flat_idx >= 0 else None,
        "flat_mode": flat_mode or None,
        "clipped_channel": labels[clip_idx] if clip_idx >= 0 else None,
    }
    rec = Recording(data, fs, channels, meta=meta)
    parts = {}
    if keep_parts:
        parts = {"fasciculation": fasc, "burst": burst_sig, "nuisance": nuis}
    return Simulation(rec, truth_frame(rows), parts, sigma, r_peaks)


def simulate(
    scenario: str = "als-widespread", duration_s: float = 60.0, seed: int = 0, **kwargs
) -> tuple[Recording, pd.DataFrame]:
    """Recording and truth table; see :func:`emgtool.simulate.simulate` for the parameters."""
    sim = simulate_parts(scenario, duration_s, seed, **kwargs)
    return sim.recording, sim.truth
