"""The chunked detection pipeline: ``init_state`` → ``step`` … → ``flush`` → ``finalize``.

One loop serves offline files, batch jobs and live recording.  Every
decision depends only on the samples and on absolute sample positions
(noise blocks of 1 s, activity bins of 10 ms, all aligned to sample 0), so
the events are identical for any chunking of the same recording, down to
1-sample chunks.

Stages per chunk (all vectorised over channels and samples):

1. *Gaps*: NaN samples are masked; the filter restarts after a gap.
2. *Clipping*: runs of ≥ 5 identical samples at the channel's extreme.
3. *Filter*: causal band-pass + mains notches (one SOS cascade, carried state).
   The first ``probe_s`` seconds are buffered once to detect the mains
   frequency and the cardiac rhythm before anything is decided.
4. *Noise floor*: robust SD (median |x| / 0.6745) per channel per 1-s block;
   the threshold of block *b* uses the 25th percentile of the previous ten
   blocks' SDs, so it follows slow changes but not bursts of activity.
5. *Candidates*: samples above ``max(k·σ, floor)`` on any channel of a site,
   bridged over the refractory period, or over a short gap that is not quiet
   (a potential's phases) → one segment per potential per site.
6. *Features* on the channel where the potential is largest.
7. *Activity*: 10-ms RMS bins above 2σ (not the ringing of a larger bin);
   runs of them merged over gaps < ``sustained_merge_s``; runs spanning
   ≥ ``sustained_min_s`` or firing ≥ ``isolated_ms`` are sustained activity,
   with the sparse discharges chained to their edges (cramp if ≥
   ``cramp_min_s`` and confined, else voluntary).
8. *Decisions*: a candidate inside sustained activity is dropped; one seen
   at the same instant at many sites is a common-mode artefact; one on the
   heart rhythm is ECG; else it is a fasciculation.
"""

from __future__ import annotations

import bisect
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import special

from emgtool.config import DetectorConfig
from emgtool.pipeline import _kernels, dsp
from emgtool.pipeline.doublets import comb_inverse, find_doublets
from emgtool.pipeline.ecg import (
    AMP_RATIO,
    ECG_SITES,
    CardiacTracker,
    bootstrap,
    classify,
    reference,
)
from emgtool.pipeline.features import waveform_features
from emgtool.pipeline.grid import grid_tests, support_bound
from emgtool.pipeline.noise_change import (
    CHANGE_MIN_S,
    REST_EVERY,
    bin_spread,
    looks_like_noise,
    noise_spread,
)
from emgtool.pipeline.ringing import ringing_envelope
from emgtool.pipeline.runs import find_runs
from emgtool.pipeline.store import EventStore, WaveStore
from emgtool.pipeline.wavelets import (
    noise_level,
    probe_gains,
    reach_samples,
    wavelet_bank,
    wavelet_score,
    white_gains,
)
from emgtool.recording import Channel, Recording

__all__ = ["PipelineState", "init_state", "step", "flush", "site_groups"]

PROBE_S = 5.0  # buffered at the start to find mains and the cardiac rhythm
BLOCK_S = 1.0  # noise-floor block
BIN_S = 0.01  # activity bin
# A segment's phases are one potential unless the gap between them is quiet: no
# channel of the site beyond what noise exceeds on the site this rarely per sample
# (3 SDs on one channel; more on several, which exceed it more often together).
QUIET_P = 0.0027
NOISE_PCT = 25.0  # percentile of recent block SDs used as the noise floor
NOISE_STEP = 4  # a block's robust SD is taken from every 4th sample
ACTIVE_BLOCK_FRACTION = 0.2  # blocks more active than this keep the previous noise estimate
ACTIVE_NOISE_P = 3e-5  # a bin is active above cfg.activity_sd or what noise reaches in 1 of 30000
TAIL_FRACTION = 0.1  # filter ringing after a potential stays below this x its bin RMS
POTENTIAL_MS = 20.0  # longest fasciculation potential (surface, polyphasic)
PHASES_MS = 5.0  # a potential's main phases lie within this of its peak
MAX_POTENTIAL_MS = 60.0  # longer supra-threshold segments (incl. ringing) are not one potential
GRID_MIN_CHANNELS = 8  # a site with this many electrodes is a grid
SUPPORT_LAG_MS = 3.0  # grid: conduction across one electrode spacing (<= 10 mm at >= 3.5 m/s)
HALF_WINDOW_MS = 25.0  # waveform window: peak ± this (holds both potentials of a doublet)
DOUBLET_MS = (4.0, 16.0)  # lags tried for same-unit doublets
DOUBLET_MIN_PP_SD = 8.0  # doublet test only where the peak (p-p/2) is >= this many noise SDs
CLIP_RUN = 5  # identical consecutive samples at the extreme = clipped
CLIPPED_EPISODE_FRACTION = 0.1  # sustained activity clipped this much is an artifact
MAX_ABS_UV = 1e7  # |x| above 10 V is not a voltage an EMG amplifier can report: masked as missing
DISCONNECTED_MAINS_UV = 50.0  # mains RMS above which a mains-dominated channel is disconnected
SUSTAINED_MARGIN_S = 0.25  # candidates this close to sustained activity are dropped
EPISODE_GAP_S = 1.0  # sustained runs of a site closer than this are one episode (one cramp)
SUSTAINED_AFTER_S = 0.3  # ... and after it (its last discharges thin out)
RING_S = 900.0  # activity history kept for cramp statistics (15 min)
MAX_WAVEFORMS_PER_SITE = 20000
RING_MS = 40.0  # a candidate this soon after a potential at least twice its size is a phase of it
RING_RATIO = 0.5  # (and anything below the filter's ringing after it: see ringing.py)
REPEAT_ENERGY_RATIO = 1.0  # a doublet's comb inverse has less energy than its window
RING_NOISE_PP_SD = 4.0  # p-p that the noise adds to ringing over a short segment, in noise SDs
QRS_MS = (80.0, 60.0)  # candidates this close (before, after) to a heart beat belong to it
LONG_QRS_MS = 150.0  # a trunk segment too long for a potential but this short may be a QRS
BEAT_LOOKAHEAD_MS = 30.0  # a tracked beat this much later still explains a candidate (S wave)
ARTEFACT_MS = (
    30.0,
    100.0,
)  # same-site candidates this close (before, after) to a common-mode artefact


def site_groups(channels: tuple[Channel, ...]) -> tuple[list[tuple[str, str]], NDArray]:
    """Site keys in first-seen order and the site index of each channel.

    Channels with an unrecognised muscle are each their own site, named by
    their label, so two unknown channels are never merged.
    """
    keys: list[tuple[str, str]] = []
    idx = np.zeros(len(channels), np.int64)
    for i, c in enumerate(channels):
        key = (c.site, c.side) if c.site != "unknown" else (f"unknown:{c.label}", c.side)
        if key not in keys:
            keys.append(key)
        idx[i] = keys.index(key)
    return keys, idx


@dataclass
class PipelineState:
    """Everything the pipeline carries between chunks (treat as opaque)."""

    cfg: DetectorConfig
    fs: float
    channels: tuple[Channel, ...]
    site_keys: list
    site_region: list
    site_of_ch: NDArray
    site_chs: list  # channel indices per site
    site_ch_table: NDArray  # (n_sites, max channels per site), -1 padded
    ecg_site: NDArray  # bool per site
    grid_site: NDArray  # bool per site: an electrode grid (GRID_MIN_CHANNELS or more)
    # sample constants
    block_n: int
    floor_blocks: int  # the noise floor's history, in blocks (cfg.noise_window_s)
    bin_n: int
    probe_n: int
    warmup_n: int
    bridge_n: int
    half_n: int
    half_pot_n: int  # half a potential's span (POTENTIAL_MS / 2)
    support_lag_n: int  # conduction lag between grid electrodes (SUPPORT_LAG_MS)
    max_pot_n: int
    cm_n: int
    merge_bins: int
    sustained_bins: int
    margin_bins: int
    after_bins: int
    episode_bins: int
    ring_n: int
    ring_n_samples: int
    qrs_n: tuple
    beat_ahead_n: int
    long_qrs_n: int
    art_n: tuple
    doublet_lags: range
    # progress
    n_in: int = 0  # raw samples received
    fe_pos: int = 0  # samples filtered (signal side, may run a chunk ahead)
    pos: int = 0  # samples taken in by detection
    probe: list | None = field(default_factory=list)
    started: bool = False
    # filtering
    sos: NDArray | None = None
    zi: NDArray | None = None
    ring_env: NDArray | None = None  # the filter's ringing after a peak, per lag (ringing.py)
    tail_frac: NDArray | None = None  # ringing it leaves 1 … w activity bins later (_not_ringing)
    wav_bank: NDArray | None = None  # matched-filter bank of the noise test (wavelets.py)
    wav_gain: NDArray | None = None  # (n_ch, n_filters) each filter's noise SD over the channel's
    wav_level: float = 0.0  # a candidate's matched output must reach this (filter noise SDs)
    quiet_sd: NDArray | None = None  # per channel: above this many SDs a sample is not quiet
    loud_gap_n: NDArray | None = None  # per site: loud gaps this short join segments
    clear_peaks: list = field(default_factory=list)  # per site: counted potentials above it
    busy_window_n: int = 0  # samples over which a site's rate of clear potentials is counted
    floor_bias: float = 1.0  # expected noise floor / noise SD (dsp.floor_bias)
    active_sd: float = 2.0  # an activity bin's RMS level, in noise-floor SDs (_start)
    onset_win_bins: int = 0  # an episode's rising edge is traced in windows of this many bins
    onset_reach_bins: int = 0  # ... back this far at most
    onset_base_bins: int = 0  # ... against this many bins before that
    onset_median_ratio: float = 1.0  # median / mean of a noise bin's mean square
    onset_ms_level: float = 1.0  # a window's mean square / the noise's, exceeded with ONSET_P
    mains_hz: float | None = None
    harmonics: tuple = ()
    mains_ratio: NDArray | None = None
    disconnected: NDArray | None = None
    n_absurd: int = 0  # samples beyond MAX_ABS_UV, masked as missing
    # raw-side carry for clipping
    raw_tail: NDArray | None = None
    raw_absmax: NDArray | None = None
    # filtered buffer
    buf: NDArray | None = None
    buf_start: int = 0
    seg_frontier: int = 0
    seg_done_until: NDArray | None = None  # per site: end of the last segment taken
    # noise
    block_sd: list = field(default_factory=list)  # one (n_ch,) per finished block
    block_acc: list = field(default_factory=list)
    probe_sd: NDArray | None = None
    block_active: dict = field(default_factory=dict)  # block -> active bins per channel
    sd_floor: list = field(default_factory=list)  # block -> noise SD in force (final ones)
    block_bins: dict = field(default_factory=dict)  # block -> bins counted
    block_bin_rms: dict = field(default_factory=dict)  # block -> its bins' RMS (noise_change.py)
    # A lasting change of a channel's noise level (noise_change.py): per channel, the
    # length of its run of busy blocks, their bin spreads and SDs (rings of
    # ``change_blocks``), and its spread at rest (ring of ``floor_blocks`` samples,
    # one per REST_EVERY blocks).
    change_spread_noise: float | None = None  # Gaussian bin spread; None: rule off
    change_blocks: int = 0
    change_len: NDArray | None = None
    change_spread: NDArray | None = None
    change_sd: NDArray | None = None
    rest_spread: NDArray | None = None
    rest_spread_n: NDArray | None = None
    noise_changes: list = field(default_factory=list)  # (channel, a, b, new / old noise SD)
    n_probe_blocks: int = 0
    # bins
    bin_acc: NDArray | None = None
    bin_acc_n: int = 0
    n_bins: int = 0
    ring_rms: NDArray | None = None  # (n_sites, ring_n)
    ring_coact: NDArray | None = None  # (ring_n,) number of active sites
    run_start: NDArray | None = None  # per site, -1 = none (bin index)
    run_last: NDArray | None = None
    last_active: NDArray | None = None  # per channel: last active bin (busy bridging)
    run_active: NDArray | None = None  # per site: bins of the open run that count as firing
    short_chain: NDArray | None = None  # per site [first, last] bin of chained short runs
    sustained: list = field(default_factory=list)  # per site list of [start_bin, stop_bin)
    episode: list = field(
        default_factory=list
    )  # per site [start_bin, stop_bin) still open, or None
    # exclusions (absolute samples), per channel
    excl: list = field(default_factory=list)  # per channel list of (a, b, reason), recent
    excl_done: list = field(default_factory=list)  # per channel, spans that can no longer matter
    gaps: list = field(default_factory=list)  # (a, b) where every channel is NaN
    nan_open: NDArray | None = None  # per channel start of an open NaN run, -1 if none
    fe_nan_open: NDArray | None = None  # the same, signal side (may run a chunk ahead)
    nan_tail: NDArray | None = None  # per channel: last sample seen was NaN
    # decisions
    pending: list = field(default_factory=list)
    recent_peaks: list = field(default_factory=list)  # (peak, site, candidate) of all candidates
    # (peak, site) of candidates below the counting floor (fasc_min_pp_uv): witnesses of
    # common-mode artefacts only (_seen_widely), never events
    witnesses: list = field(default_factory=list)
    # (ring peak, site, ring amp, onset, ring amp per grid electrode or None), recent
    ring_sources: list = field(default_factory=list)
    trackers: list = field(default_factory=list)
    beat_obs: list = field(default_factory=list)  # long trunk segments waiting for the tracker
    long_beats: list = field(default_factory=list)  # peaks of long segments taken as beats
    decisions_on: bool = False
    # output
    out: list = field(default_factory=list)  # event dicts decided during the current call
    events: EventStore | None = None  # every event decided so far (compact columns)
    waveforms: list = field(default_factory=list)  # per site WaveStore (for shape clustering)
    emitted: list = field(default_factory=list)  # per site, peaks of the last fasciculations
    splits: list = field(default_factory=list)  # per site, (peak, lag) of recent doublet splits
    cm_peaks: list = field(default_factory=list)  # per site, sorted peaks flagged common-mode
    site_peaks: list = field(default_factory=list)  # per site, sorted peaks of recent candidates
    flushed: bool = False


def _site_table(site_of_ch: NDArray, n_sites: int) -> NDArray:
    """(n_sites, k_max) channel indices of each site in order, padded with -1."""
    k_max = max([int((site_of_ch == s).sum()) for s in range(n_sites)] + [1])
    tab = np.full((n_sites, k_max), -1, np.int64)
    for s in range(n_sites):
        chs = np.flatnonzero(site_of_ch == s)
        tab[s, : len(chs)] = chs
    return tab


def init_state(fs: float, channels, config: DetectorConfig | None = None) -> PipelineState:
    """A fresh pipeline state for ``channels`` sampled at ``fs``."""
    cfg = config or DetectorConfig()
    channels = tuple(channels)
    keys, site_of_ch = site_groups(channels)
    regions = []
    for k in keys:
        ch = channels[int(np.flatnonzero(site_of_ch == keys.index(k))[0])]
        regions.append(ch.region)
    n_sites = len(keys)
    ms = fs / 1000.0
    bin_n = max(1, int(round(BIN_S * fs)))
    st = PipelineState(
        cfg=cfg,
        fs=float(fs),
        channels=channels,
        site_keys=keys,
        site_region=regions,
        site_of_ch=site_of_ch,
        site_chs=[np.flatnonzero(site_of_ch == s) for s in range(n_sites)],
        site_ch_table=_site_table(site_of_ch, n_sites),
        ecg_site=np.array(
            [k[0] in ECG_SITES or r == "thoracic" for k, r in zip(keys, regions, strict=True)]
        ),
        grid_site=np.bincount(site_of_ch, minlength=n_sites) >= GRID_MIN_CHANNELS,
        block_n=max(1, int(round(BLOCK_S * fs))),
        floor_blocks=max(1, int(round(cfg.noise_window_s / BLOCK_S))),
        bin_n=bin_n,
        probe_n=int(round(PROBE_S * fs)),
        warmup_n=int(round(cfg.warmup_s * fs)),
        bridge_n=max(1, int(round(cfg.refractory_ms * ms))),
        half_n=max(2, int(round(HALF_WINDOW_MS * ms))),
        half_pot_n=max(1, int(round(POTENTIAL_MS / 2 * ms))),
        support_lag_n=max(1, int(round(SUPPORT_LAG_MS * ms))),
        max_pot_n=max(2, int(round(MAX_POTENTIAL_MS * ms))),
        cm_n=max(1, int(round(cfg.common_mode_ms * ms))),
        merge_bins=max(1, int(round(cfg.sustained_merge_s / (bin_n / fs)))),
        sustained_bins=max(1, int(round(cfg.sustained_min_s / (bin_n / fs)))),
        margin_bins=max(1, int(round(SUSTAINED_MARGIN_S / (bin_n / fs)))),
        episode_bins=max(1, int(round(EPISODE_GAP_S / (bin_n / fs)))),
        after_bins=max(1, int(round(SUSTAINED_AFTER_S / (bin_n / fs)))),
        ring_n=int(round(RING_S / (bin_n / fs))),
        ring_n_samples=int(round(RING_MS * ms)),
        qrs_n=(int(round(QRS_MS[0] * ms)), int(round(QRS_MS[1] * ms))),
        beat_ahead_n=int(round(BEAT_LOOKAHEAD_MS * ms)),
        long_qrs_n=int(round(LONG_QRS_MS * ms)),
        art_n=(int(round(ARTEFACT_MS[0] * ms)), int(round(ARTEFACT_MS[1] * ms))),
        doublet_lags=range(
            max(2, int(round(DOUBLET_MS[0] * ms))), int(round(DOUBLET_MS[1] * ms)) + 1
        ),
    )
    n_ch = len(channels)
    st.raw_tail = np.zeros((n_ch, 0), np.float32)
    st.raw_absmax = np.zeros(n_ch, np.float32)
    st.buf = np.zeros((n_ch, 0), np.float32)
    st.bin_acc = np.zeros(n_ch, np.float64)
    st.ring_rms = np.zeros((n_sites, st.ring_n), np.float32)
    st.ring_coact = np.zeros(st.ring_n, np.int16)
    st.run_start = np.full(n_sites, -1, np.int64)
    st.run_last = np.full(n_sites, -1, np.int64)
    st.last_active = np.full(n_ch, -(2**40), np.int64)
    st.run_active = np.zeros(n_sites, np.int64)
    st.short_chain = np.full((n_sites, 2), -(2**40), np.int64)
    st.sustained = [[] for _ in range(n_sites)]
    st.episode = [None] * n_sites
    st.excl = [[] for _ in range(n_ch)]
    st.excl_done = [[] for _ in range(n_ch)]
    st.nan_open = np.full(n_ch, -1, np.int64)
    st.fe_nan_open = np.full(n_ch, -1, np.int64)
    st.nan_tail = np.zeros(n_ch, bool)
    st.seg_done_until = np.zeros(n_sites, np.int64)
    n_site_chs = np.bincount(site_of_ch, minlength=n_sites)[site_of_ch]
    st.quiet_sd = special.ndtri(1.0 - QUIET_P / (2.0 * n_site_chs)).astype(np.float32)
    # Gaps up to half a potential are bridged when loud, but not on grids: a gap loud
    # on some electrodes may be another unit's potential on others (a unit 9.5 ms
    # after another, in the far corner, was merged into it); the grid tests tell a
    # potential's phases apart (_one_potential).
    st.loud_gap_n = np.where(st.grid_site, 0, st.half_pot_n).astype(np.int64)
    st.trackers = [CardiacTracker() for _ in range(n_sites)]
    st.events = EventStore(site_chs=st.site_chs)
    st.waveforms = [WaveStore(2 * st.half_n, MAX_WAVEFORMS_PER_SITE) for _ in range(n_sites)]
    st.emitted = [[] for _ in range(n_sites)]
    st.splits = [[] for _ in range(n_sites)]
    st.cm_peaks = [[] for _ in range(n_sites)]
    st.site_peaks = [[] for _ in range(n_sites)]
    st.clear_peaks = [[] for _ in range(n_sites)]
    st.busy_window_n = int(round(BUSY_WINDOW_S * st.fs))
    st.change_blocks = max(st.floor_blocks, int(round(CHANGE_MIN_S / BLOCK_S)))
    st.change_len = np.zeros(n_ch, np.int64)
    st.change_spread = np.zeros((n_ch, st.change_blocks))
    st.change_sd = np.zeros((n_ch, st.change_blocks))
    st.rest_spread = np.full((n_ch, st.floor_blocks), np.nan)
    st.rest_spread_n = np.zeros(n_ch, np.int64)
    return st


# ---------------------------------------------------------------------------- public steps
def step(chunk: Recording, state: PipelineState) -> tuple[list[dict], PipelineState]:
    """Process one chunk; returns the events decided during this call and the state.

    ``chunk.first_sample`` must continue where the previous chunk ended.  The
    state is updated in place and returned (pass the returned one on).
    """
    st = state
    raw = _take_in(st, chunk)
    if not st.started:
        st.probe.append(np.array(raw, dtype=np.float32))
        if st.n_in >= st.probe_n:
            # Exactly probe_n samples decide mains and rhythm, whatever the chunking.
            buffered = np.concatenate(st.probe, axis=1)
            _start(st, buffered[:, : st.probe_n], final=False)
            if buffered.shape[1] > st.probe_n:
                _process(st, buffered[:, st.probe_n :], final=False)
    else:
        _process(st, raw, final=False)
    return _take_out(st), st


def step_ahead(chunk: Recording, state: PipelineState) -> SignalChunk:
    """The signal side of :func:`step`, for a pipeline that has started.

    Offline analysis filters chunk k + 1 with this on another thread while
    :func:`step_detect` works on chunk k; the pair gives exactly the events of
    :func:`step`.  Call them in chunk order, each side one chunk at a time.
    """
    if not state.started:
        raise RuntimeError("step_ahead needs a started pipeline (use step until then)")
    return filter_chunk(state, _take_in(state, chunk))


def step_detect(sig: SignalChunk, state: PipelineState) -> tuple[list[dict], PipelineState]:
    """The detection side of :func:`step` for a chunk from :func:`step_ahead`."""
    detect_chunk(state, sig)
    return _take_out(state), state


def _take_in(st: PipelineState, chunk: Recording) -> NDArray:
    if st.flushed:
        raise RuntimeError("pipeline already flushed")
    if chunk.first_sample != st.n_in:
        raise ValueError(
            f"chunk starts at sample {chunk.first_sample}, expected {st.n_in} (chunks must be contiguous)"
        )
    if chunk.n_channels != len(st.channels):
        raise ValueError(f"chunk has {chunk.n_channels} channels, expected {len(st.channels)}")
    st.n_in += chunk.data.shape[1]
    return chunk.data


def flush(state: PipelineState) -> tuple[list[dict], PipelineState]:
    """Close everything still open at the end of the recording; returns the last events."""
    st = state
    if not st.started:
        probe = (
            np.concatenate(st.probe, axis=1)
            if st.probe
            else np.zeros((len(st.channels), 0), np.float32)
        )
        _start(st, probe, final=True)
    else:
        _process(st, np.zeros((len(st.channels), 0), np.float32), final=True)
    st.flushed = True
    return _take_out(st), st


def _take_out(st: PipelineState) -> list[dict]:
    """The events decided during this call; they move into the compact store (bounded memory)."""
    evs = st.out
    st.events.extend(evs)
    st.out = []
    return evs


# ---------------------------------------------------------------------------- internals
def _start(st: PipelineState, probe: NDArray, final: bool) -> None:
    cfg = st.cfg
    clean = probe[:, st.warmup_n :] if probe.shape[1] > 4 * st.warmup_n else probe
    clean = np.where(np.abs(clean) <= MAX_ABS_UV, clean, np.nan)
    found_hz, found_h, st.mains_ratio, mains_rms = dsp.detect_mains(clean, st.fs)
    if cfg.mains_hz is None:
        st.mains_hz, st.harmonics = found_hz, found_h
    elif cfg.mains_hz:
        st.mains_hz = float(cfg.mains_hz)
        st.harmonics = tuple(range(1, cfg.mains_harmonics + 1))
    else:
        st.mains_hz, st.harmonics = None, ()
    st.harmonics = tuple(h for h in st.harmonics if h <= cfg.mains_harmonics)
    st.sos = dsp.design_filters(
        st.fs, cfg.band_hz, cfg.filter_order, mains_hz=st.mains_hz, harmonics=st.harmonics
    )
    st.zi = dsp.init_filter_state(st.sos, len(st.channels))
    st.ring_env = ringing_envelope(st.sos, st.fs)
    st.tail_frac = _tail_fractions(st, _brief_bins(st))
    st.wav_bank = wavelet_bank(st.fs, st.half_n)
    st.wav_gain = np.tile(white_gains(st.wav_bank, st.sos, st.fs), (len(st.channels), 1))
    rate = cfg.fasc_noise_per_h
    st.wav_level = noise_level(st.wav_bank, st.sos, st.fs, rate) if rate else 0.0
    st.change_spread_noise = noise_spread(st.fs, cfg.band_hz, st.bin_n)
    # The noise floor sits a few % below the noise SD (a low percentile of scattered
    # block estimates); the noise test's level is calibrated on the true SD.
    st.floor_bias = dsp.floor_bias(
        st.sos, st.fs, st.block_n, NOISE_STEP, st.floor_blocks, NOISE_PCT
    )
    # Bins of few samples (2 at 250 Hz) scatter widely: at 2σ noise alone would make
    # one bin in 50 active there, and chains of them sustained activity.
    noise_rms = dsp.rms_level(st.sos, st.fs, st.bin_n, ACTIVE_NOISE_P) / st.floor_bias
    st.active_sd = max(cfg.activity_sd, noise_rms)
    st.onset_win_bins = max(1, int(round(ONSET_WINDOW_S / BIN_S)))
    st.onset_reach_bins = st.onset_win_bins * max(1, int(round(ONSET_REACH_S / ONSET_WINDOW_S)))
    st.onset_base_bins = int(round(ONSET_BASELINE_S / BIN_S))
    # A bin's and a window's mean square in noise mean squares (chi-square, rms_level):
    # the median bin, and what a window exceeds with probability ONSET_P.
    st.onset_median_ratio = dsp.rms_level(st.sos, st.fs, st.bin_n, 0.5) ** 2
    win_n = st.bin_n * st.onset_win_bins
    st.onset_ms_level = dsp.rms_level(st.sos, st.fs, win_n, ONSET_P) ** 2
    # Channels that are essentially pure, strong mains are disconnected electrodes
    # (a few µV of hum on a quiet channel is removed by the notches, not a fault).
    st.disconnected = (st.mains_ratio > 0.8) & (mains_rms >= DISCONNECTED_MAINS_UV)
    for c in np.flatnonzero(st.disconnected):
        st.excl[c].append((0, 2**62, "mains-dominated"))
    st.started = True
    st.probe = None
    st.decisions_on = False
    _process(st, probe, final=final, probe=True)
    _bootstrap_ecg(st)
    st.decisions_on = True
    _decide(st, final=final)


def _bootstrap_ecg(st: PipelineState) -> None:
    """Find each trunk site's rhythm in the start-up probe (candidates and long segments)."""
    obs, st.beat_obs = st.beat_obs, []
    if not st.cfg.ecg_reject:
        return
    for s in np.flatnonzero(st.ecg_site):
        cands = [p for p in st.pending if p["site_i"] == s]
        seen = sorted([*cands, *(o for o in obs if o["site_i"] == s)], key=lambda p: p["peak"])
        # On a grid only far-field candidates may show the rhythm (_may_start_rhythm).
        may = [_may_start_rhythm(st, p) for p in seen]
        for p, ok in zip(seen, may, strict=True):
            if not ok and "seg_start" not in p:
                p["ecg"], p["ecg_done"] = False, True
        seen = [p for p, ok in zip(seen, may, strict=True) if ok]
        if len(seen) < 3:
            for p in seen:
                beat = classify(st.trackers[s], p["peak"], p["wave"], st.fs)
                if "seg_start" in p:
                    if beat:
                        st.long_beats.append(p["peak"])
                else:
                    p["ecg_done"] = True
            continue
        peaks = np.array([p["peak"] for p in seen])
        waves = np.stack([p["wave"] for p in seen])
        tr, is_ecg = bootstrap(peaks, waves, st.fs)
        st.trackers[s] = tr
        for p, e in zip(seen, is_ecg, strict=True):
            if "seg_start" in p:
                if e:
                    st.long_beats.append(p["peak"])
                continue
            p["ecg"] = bool(e)
            p["ecg_done"] = True


def _mark_nan(st: PipelineState, raw: NDArray, a0: int, sink: list) -> None:
    """Append NaN runs as (channel, gap exclusion) to ``sink``; track runs still open."""
    bad = ~np.isfinite(raw)
    n = raw.shape[1]
    nan_open = st.fe_nan_open
    if not bad.any() and not (nan_open >= 0).any():
        return
    # Open runs that ended exactly at this chunk's start (decided before the loop,
    # which may open new runs on the same channels).
    closed = (nan_open >= 0) & ~bad[:, 0] if n else np.zeros(len(nan_open), bool)
    for r in np.flatnonzero(closed):
        sink.append((int(r), (int(nan_open[r]), a0 + st.warmup_n, "gap")))
        nan_open[r] = -1
    rows, starts, stops = find_runs(bad)
    for r, s, e in zip(rows, starts, stops, strict=True):
        a, b = a0 + int(s), a0 + int(e)
        if s == 0 and nan_open[r] >= 0:
            a = int(nan_open[r])
            nan_open[r] = -1
        if e == n:
            nan_open[r] = a  # still open: record when it closes
            continue
        sink.append((int(r), (a, b + st.warmup_n, "gap")))


def _filter(st: PipelineState, raw: NDArray, a0: int, any_bad: bool = True) -> tuple[NDArray, int]:
    """Band-pass + notch, restarting the filter of a channel after each of its NaN runs.

    Returns the output and the free columns in front of it in ``y.base``: in the
    common case (no gap anywhere) ``HEAD_ROOM``, for the samples detection still
    holds (:func:`_joined`); else 0.
    """
    if not any_bad and raw.shape[1] and a0 > 0 and not st.nan_tail.any():
        y, st.zi = dsp.filter_step(st.sos, raw, st.zi, HEAD_ROOM)
        return y, HEAD_ROOM
    bad = ~np.isfinite(raw)
    if raw.shape[1] == 0:
        return raw.astype(np.float32), 0
    if a0 == 0:
        first = np.where(bad[:, 0], 0.0, raw[:, 0])
        st.zi = dsp.init_filter_state(st.sos, raw.shape[0], first)
    restart = st.nan_tail & ~bad[:, 0]  # a gap ended exactly at this chunk's start
    if restart.any():
        z = dsp.init_filter_state(st.sos, raw.shape[0], np.where(bad[:, 0], 0.0, raw[:, 0]))
        st.zi[:, restart, :] = z[:, restart, :]
    st.nan_tail = bad[:, -1].copy()
    if not bad.any():
        y, st.zi = dsp.filter_step(st.sos, raw, st.zi)
        return y, 0
    # Split where any channel's NaN status changes; inside a piece it is constant.
    change = np.flatnonzero((bad[:, 1:] != bad[:, :-1]).any(axis=0)) + 1
    edges = np.r_[0, change, raw.shape[1]]
    out = np.empty(raw.shape, np.float32)
    x = np.where(bad, np.float32(0), raw)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        y, st.zi = dsp.filter_step(st.sos, x[:, a:b], st.zi)
        nanch = bad[:, a]
        y[nanch] = 0.0
        if b < raw.shape[1]:
            # Restart channels whose gap ends here from the next valid sample's steady state.
            restart = nanch & ~bad[:, b]
            if restart.any():
                z = dsp.init_filter_state(st.sos, raw.shape[0], raw[:, b])
                st.zi[:, restart, :] = z[:, restart, :]
        out[:, a:b] = y
    return out, 0


def _scan_raw(st: PipelineState, raw: NDArray, a0: int, sink: list) -> tuple[NDArray, bool]:
    """Mask absurd samples and record clipped runs; returns (raw, any sample missing).

    A run of >= CLIP_RUN identical samples at the channel's extreme is clipped.
    The extreme is the running maximum of |x| up to the run (not the chunk's),
    so the decision is the same for any chunking.  |x| > MAX_ABS_UV is not a
    voltage an amplifier reports: it becomes NaN (missing) and is counted.
    """
    k = CLIP_RUN - 1
    ctx = st.raw_tail
    absmax, n_bad, n_absurd, runs = _kernels.scan_raw(ctx, raw, k, st.raw_absmax, MAX_ABS_UV)
    if n_absurd.any():
        st.n_absurd += int(n_absurd.sum())
        raw = np.where(np.abs(raw) > MAX_ABS_UV, np.float32(np.nan), raw)
    st.raw_absmax = absmax.astype(np.float32)
    if len(runs):
        c0 = a0 - ctx.shape[1]
        keep = (runs[:, 3] > 0) & (runs[:, 3] >= 0.9 * runs[:, 4])
        for r, a, b in runs[keep, :3].astype(np.int64):
            sink.append((int(r), (c0 + int(a), c0 + int(b), "clipped")))
    if raw.shape[1] >= k:
        st.raw_tail = np.array(raw[:, -k:], dtype=np.float32)
    elif raw.shape[1]:
        st.raw_tail = np.concatenate([ctx, raw], axis=1)[:, -k:].astype(np.float32)
    return raw, bool(n_bad.any())


@dataclass
class SignalChunk:
    """The signal side of one chunk, ready for detection (see :func:`filter_chunk`)."""

    a0: int  # first sample
    y: NDArray  # band-passed, notched (n_ch, n)
    room: int  # free columns in front of y in y.base (_filter), 0 if none
    excl: list  # (channel, (start, stop, reason)) found in this chunk, in order
    nan_open: NDArray  # per channel start of a NaN run still open after the chunk
    bin_sums: NDArray  # (n_ch, nb) sums of squares of the bins completed
    bin_counts: NDArray  # (nb,) samples in each of those bins
    blocks: list  # (block, robust SD) of the 1-s blocks completed; block -1 = final partial
    final: bool


def filter_chunk(st: PipelineState, raw: NDArray, final: bool = False) -> SignalChunk:
    """Signal side of a chunk: clipping and gaps, filtering, bin and block sums.

    It reads and writes only signal-side state (filter, clipping and gap
    carries, bin and block accumulators), so offline analysis runs it one chunk
    ahead, on another thread, while :func:`detect_chunk` works on the previous
    chunk; ``detect_chunk(st, filter_chunk(st, raw))`` is one step.
    """
    raw = np.asarray(raw, np.float32)
    a0 = st.fe_pos
    sink: list = []
    raw, any_bad = _scan_raw(st, raw, a0, sink)
    if any_bad or (st.fe_nan_open >= 0).any():
        _mark_nan(st, raw, a0, sink)
    y, room = _filter(st, raw, a0, any_bad)
    st.fe_pos += y.shape[1]
    sums, st.bin_acc, st.bin_acc_n = _kernels.bin_sumsq(y, st.bin_n, st.bin_acc, st.bin_acc_n)
    counts = np.full(sums.shape[1], st.bin_n)
    if final and st.bin_acc_n:
        sums = np.concatenate([sums, st.bin_acc[:, None]], axis=1)
        counts = np.r_[counts, st.bin_acc_n]
        st.bin_acc = np.zeros(len(st.channels))
        st.bin_acc_n = 0
    return SignalChunk(
        a0,
        y,
        room,
        sink,
        st.fe_nan_open.copy(),
        sums,
        counts,
        _update_noise(st, y, a0, final),
        final,
    )


def detect_chunk(st: PipelineState, sig: SignalChunk, probe: bool = False) -> None:
    """Detection side of a chunk (noise floor, activity, candidates, decisions)."""
    if sig.a0 != st.pos:
        raise ValueError(f"signal chunk starts at {sig.a0}, detection is at {st.pos}")
    for c, span in sig.excl:
        st.excl[c].append(span)
    st.nan_open = sig.nan_open
    y, final = sig.y, sig.final
    st.pos += y.shape[1]
    st.buf = _joined(st.buf, y, sig.room)
    if probe:
        _probe_noise(st, y)
    _update_bins(st, sig)  # noise blocks too, in time order with the bins
    _segment(st, final=final)
    if st.decisions_on:
        _decide(st, final=final)
    _archive_exclusions(st)
    keep_from = st.seg_frontier - st.half_n
    if keep_from > st.buf_start:
        st.buf = st.buf[:, keep_from - st.buf_start :]
        st.buf_start = keep_from


HEAD_ROOM = 4096  # columns left free in front of a filtered chunk (_filter, _joined)


def _joined(held: NDArray, y: NDArray, room: int) -> NDArray:
    """``held`` followed by ``y`` (along time): written into the ``room`` free columns
    in front of ``y`` in ``y.base`` when it fits (no copy of ``y``), else concatenated."""
    r = held.shape[1]
    if r == 0:
        return y
    if r <= room:
        out = y.base[:, room - r :]
        out[:, :r] = held
        return out
    return np.concatenate([held, y], axis=1)


def _process(st: PipelineState, raw: NDArray, final: bool, probe: bool = False) -> None:
    detect_chunk(st, filter_chunk(st, raw, final), probe=probe)


# ---------------------------------------------------------------------------- noise floor
def _update_noise(st: PipelineState, y: NDArray, a0: int, final: bool) -> list[tuple]:
    """Robust SD of every 1-s block this chunk completes (signal side).

    Returns ``(block number, sd)`` per completed block, in order;
    :func:`_close_block` turns each into the block's noise estimate once the
    activity of its bins is known.  With ``final``, a last partial block of at
    least a quarter block comes last, as block -1.
    """
    st.block_acc.append(y)
    acc_n = sum(a.shape[1] for a in st.block_acc)
    if acc_n < st.block_n and not final:
        return []
    acc = np.concatenate(st.block_acc, axis=1) if len(st.block_acc) > 1 else st.block_acc[0]
    first_abs = a0 + y.shape[1] - acc.shape[1]
    n_full = acc.shape[1] // st.block_n
    # Every 4th sample (512 of 2048 at 2 kHz): ~5 % precision, a quarter of the work.
    sds = _kernels.block_robust_sd(acc, st.block_n, n_full, NOISE_STEP)
    span = n_full * st.block_n
    out = []
    for i in range(n_full):
        b_abs = first_abs + i * st.block_n
        sd = sds[i]
        if b_abs < st.warmup_n:  # drop the filter's settling transient
            blk = acc[:, i * st.block_n : (i + 1) * st.block_n][:, st.warmup_n - b_abs :]
            sd = dsp.robust_sd(blk[:, ::NOISE_STEP]).astype(np.float32)
        out.append((b_abs // st.block_n, sd))
    rest = acc[:, span:]
    if final and rest.shape[1] >= max(8, st.block_n // 4):
        out.append((-1, dsp.robust_sd(rest).astype(np.float32)))
        rest = rest[:, :0]
    st.block_acc = [rest] if rest.shape[1] else []
    return out


def _block_exclusions(st: PipelineState, blocks: list) -> list:
    """Per completed block: channels whose block is largely excluded (None: none/warm-up).

    A channel whose block is largely excluded (gap, clipping) has zero-filled or
    railed samples that would pull the noise floor, and every threshold, down.
    """
    full = [blk for blk, _ in blocks if blk >= 0]
    out = [None] * len(blocks)
    if not full:
        return out
    a, b = full[0] * st.block_n, (full[-1] + 1) * st.block_n
    if (
        a >= st.warmup_n
        and not (st.nan_open >= 0).any()
        and not any(e > a and s0 < b for spans in st.excl for s0, e, _ in spans)
    ):
        return out  # the common case: nothing excluded
    n_ch = len(st.channels)
    frac = _excluded_mask(st, a, b).reshape(n_ch, len(full), st.block_n).mean(axis=2)
    for i, blk in enumerate(full):
        if blk * st.block_n >= st.warmup_n:
            excluded = frac[:, i] > ACTIVE_BLOCK_FRACTION
            if st.disconnected is not None:
                excluded &= ~np.asarray(st.disconnected, bool)
            out[i] = excluded
    return out


def _close_block(st: PipelineState, blk: int, sd: NDArray, excluded: NDArray | None) -> None:
    """Append one block's noise estimate (its bins' activity is known) and its floor."""
    measured, busy = sd, None
    if blk >= 0:
        # A block mostly in activity (cramp, voluntary) says nothing about the
        # noise: carry the previous rest estimate so thresholds do not drift up.
        n_bins = st.block_bins.pop(blk, 0)
        busy = st.block_active.pop(blk, np.zeros(len(sd))) > ACTIVE_BLOCK_FRACTION * max(n_bins, 1)
        if excluded is not None:
            busy = busy | excluded
        if busy.any():
            prev = st.block_sd[-1] if st.block_sd else st.probe_sd
            if prev is not None:
                sd = np.where(busy, prev, sd).astype(np.float32)
    st.block_sd.append(sd)
    parts = st.block_bin_rms.pop(blk, None) if blk >= 0 else None
    if parts:  # collected only while the noise-change rule is on (_active_bins)
        ok = busy if excluded is None else busy & ~excluded
        # Most blocks have nothing to follow: the spread is measured while a run of
        # busy blocks goes on or starts, and every REST_EVERY-th block for the rest
        # reference (a sort per block was 18 % of a 16-channel analysis).
        rest_ref = blk % REST_EVERY == 0
        if ok.any() or st.change_len.any() or rest_ref:
            # Only the spreads that are read: of the busy channels (a run goes on or
            # starts) and, on a reference block, of those at rest.
            need = ok | ~busy if rest_ref else ok
            spread = np.full(len(measured), np.nan, np.float32)
            if need.any():
                rows = parts if need.all() else [r[need] for r in parts]
                rms = np.concatenate(rows, axis=1) if len(rows) > 1 else rows[0]
                spread[need] = bin_spread(rms)
            _follow_noise_change(st, blk, measured, spread, busy, ok)
    _extend_floor(st)


def _follow_noise_change(
    st: PipelineState, blk: int, sd: NDArray, spread: NDArray, busy: NDArray, run: NDArray
) -> None:
    """Re-base the floor of channels whose noise level has changed (noise_change.py).

    ``sd``: block ``blk``'s measured SD per channel, ``spread``: its bin spread,
    ``busy``: carried as activity, ``run``: busy and not excluded (gaps, clipping).
    Called in block order as each block closes, so the answer does not depend on
    chunking.  The floor of the blocks after ``blk`` is computed from the SDs
    written back here.
    """
    n = st.change_blocks
    run = run & np.isfinite(spread)
    if run.any() or st.change_len.any():
        st.change_len = np.where(run, st.change_len + 1, 0)
        st.change_spread[:, blk % n] = spread
        st.change_sd[:, blk % n] = sd
    if blk % REST_EVERY == 0:
        rest = np.flatnonzero(~busy & np.isfinite(spread))
        st.rest_spread[rest, st.rest_spread_n[rest] % st.floor_blocks] = spread[rest]
        st.rest_spread_n[rest] += 1
    due = np.flatnonzero(st.change_len >= n)
    if not len(due):
        return
    with warnings.catch_warnings():  # a channel never at rest has no reference: not re-based
        warnings.simplefilter("ignore", RuntimeWarning)
        spread_rest = np.nanmedian(st.rest_spread[due], axis=1)
    # The noise SD the run was judged against (the floor is a low percentile: biased low).
    old = _sd_for_block(st, blk)[due] / st.floor_bias
    ok = looks_like_noise(
        st.change_spread[due], st.change_sd[due], spread_rest, st.change_spread_noise, old
    )
    due, old = due[ok], old[ok]
    if not len(due):
        return
    for b in range(blk - n + 1, blk + 1):
        row = st.block_sd[b].copy()
        row[due] = st.change_sd[due, b % n]
        st.block_sd[b] = row
    for c, o in zip(due.tolist(), old.tolist(), strict=True):
        ratio = float(np.median(st.change_sd[c]) / o) if o > 0 else math.inf
        st.noise_changes.append((c, (blk - n + 1) * st.block_n, (blk + 1) * st.block_n, ratio))
    st.change_len[due] = 0


def _extend_floor(st: PipelineState) -> None:
    """Noise floor in force in every block whose history is now final.

    The floor of block ``b`` is the ``NOISE_PCT`` percentile of the SDs of the
    ``st.floor_blocks`` blocks before it (fewer at the start).
    """
    n = len(st.block_sd)  # the floor of every block b <= n is final
    b = len(st.sd_floor)
    while b <= n and b < st.floor_blocks:  # the first blocks have a shorter history
        hist = st.block_sd[:b]
        st.sd_floor.append(dsp.percentile_last_axis(np.array(hist).T, NOISE_PCT) if hist else None)
        b += 1
    if b > n:
        return
    if b == n:  # the usual case, one block closed: no sliding-window view needed
        hist = np.array(st.block_sd[n - st.floor_blocks : n]).T  # (n_ch, floor_blocks)
        st.sd_floor.append(dsp.percentile_last_axis(hist, NOISE_PCT))
        return
    hist = np.array(st.block_sd[b - st.floor_blocks : n])  # (n - b + st.floor_blocks, n_ch)
    win = np.lib.stride_tricks.sliding_window_view(hist, st.floor_blocks, axis=0)
    st.sd_floor.extend(dsp.percentile_last_axis(win, NOISE_PCT))


def _probe_noise(st: PipelineState, y: NDArray) -> None:
    """Noise floor of the probe (the first seconds), from its own 1-s blocks."""
    y = y[:, min(st.warmup_n, max(0, y.shape[1] - 8)) :]
    n_full = y.shape[1] // st.block_n
    if n_full:
        blocks = y[:, : n_full * st.block_n].reshape(len(st.channels), n_full, st.block_n)
        sds = dsp.robust_sd(blocks[:, :, ::2], axis=2).T
    elif y.shape[1]:
        sds = dsp.robust_sd(y)[None, :]
    else:
        sds = np.ones((1, len(st.channels)))
    st.probe_sd = np.percentile(sds, NOISE_PCT, axis=0).astype(np.float32)
    st.n_probe_blocks = max(1, n_full)
    # The noise colour differs between electrodes: each matched filter's noise SD
    # is measured here; channels too short or too quiet to tell keep white-noise gains.
    # A probe busy with activity measures the EMG's colour, not the noise's: the
    # gains stay within a factor 2 of white noise's (noise colours measured 0.7-1.5).
    if n_full:
        g = probe_gains(y[:, : n_full * st.block_n], st.wav_bank)
        ok = np.isfinite(g).all(axis=1) & (st.probe_sd >= st.cfg.flat_uv) & (g > 0).all(axis=1)
        g = np.clip(np.where(ok[:, None], g, st.wav_gain), 0.5 * st.wav_gain, 2.0 * st.wav_gain)
        st.wav_gain = g


def _sd_for_block(st: PipelineState, b: int) -> NDArray:
    """Noise SD governing block ``b`` (from earlier blocks only, causal)."""
    if b < st.n_probe_blocks or len(st.block_sd) == 0:
        return st.probe_sd
    if b < len(st.sd_floor) and st.sd_floor[b] is not None:
        return st.sd_floor[b]
    hist = st.block_sd[max(0, b - st.floor_blocks) : b]  # not final yet: not kept
    if not hist:
        return st.probe_sd
    return dsp.percentile_last_axis(np.array(hist).T, NOISE_PCT)


def _sd_matrix(st: PipelineState, samples: NDArray) -> NDArray:
    """Noise SD of every channel at each sample: shape (n_ch, len(samples))."""
    blocks = np.asarray(samples) // st.block_n
    ub, inv = np.unique(blocks, return_inverse=True)
    if len(ub) == 0:
        return np.zeros((len(st.channels), 0), np.float32)
    return np.stack([_sd_for_block(st, int(b)) for b in ub], axis=1)[:, inv]


# ---------------------------------------------------------------------------- exclusions
def _excluded_mask(st: PipelineState, a: int, b: int, reasons=None, chans=None) -> NDArray:
    """(n_ch, b - a) True where a channel is excluded (gap, clipped, flat, mains...)."""
    m = np.zeros((len(st.channels), b - a), bool)
    for c in range(len(st.channels)) if chans is None else chans:
        for s, e, why in st.excl[c]:
            if e > a and s < b and (reasons is None or why in reasons):
                m[c, max(s, a) - a : min(e, b) - a] = True
        if st.nan_open[c] >= 0 and reasons is None:
            m[c, max(int(st.nan_open[c]), a) - a :] = True
    if a < st.warmup_n and reasons is None:
        m[:, : st.warmup_n - a] = True
    return m


def _excluded_bins(st: PipelineState, first_sample: int, nb: int) -> NDArray:
    """(n_ch, nb) True where a bin's first sample is excluded."""
    m = np.zeros((len(st.channels), nb), bool)
    bn = st.bin_n
    end = first_sample + nb * bn

    def idx(sample):  # first bin whose start >= sample
        return int(np.clip(-(-(sample - first_sample) // bn), 0, nb))

    def idx_floor(sample):  # bin containing sample
        return int(np.clip((sample - first_sample) // bn, 0, nb))

    for c, spans in enumerate(st.excl):
        for s, e, why in spans:
            if why == "clipped":  # rail-to-rail transitions next to it are not signal either
                s, e = s - bn, e + bn
            if e > first_sample and s < end:
                m[c, idx_floor(s) : idx(e)] = True
        if st.nan_open[c] >= 0:
            m[c, idx(int(st.nan_open[c])) :] = True
    if first_sample < st.warmup_n:
        m[:, : idx(st.warmup_n)] = True
    return m


def _archive_exclusions(st: PipelineState) -> None:
    """Move exclusion spans that can no longer matter out of the working lists."""
    limit = min(st.seg_frontier, st.n_bins * st.bin_n) - 2 * st.block_n - st.art_n[1]
    for c, spans in enumerate(st.excl):
        if spans and spans[0][1] < limit:
            st.excl_done[c].extend(sp for sp in spans if sp[1] < limit)
            st.excl[c] = [sp for sp in spans if sp[1] >= limit]


def all_exclusions(st: PipelineState, c: int) -> list:
    """Every exclusion span recorded for channel ``c``."""
    return st.excl_done[c] + st.excl[c]


# ---------------------------------------------------------------------------- candidates
def _threshold(cfg: DetectorConfig, sd: NDArray) -> NDArray:
    """Candidate threshold (µV) for noise SD ``sd``: ``max(k·σ, floor)``."""
    return np.maximum(cfg.fasc_threshold_sd * sd, cfg.fasc_floor_uv)


def _segment(st: PipelineState, final: bool) -> None:
    a = st.seg_frontier
    b = st.pos
    if b <= a:
        return
    cfg = st.cfg
    # Thresholds per channel and 1-s noise block (constant within a block).
    blk0, blk1 = a // st.block_n, (b - 1) // st.block_n
    thr = np.empty((len(st.channels), blk1 - blk0 + 1), np.float32)
    low = np.empty_like(thr)
    for i, blk in enumerate(range(blk0, blk1 + 1)):
        sd = _sd_for_block(st, blk)
        flat = (st.block_sd[blk] if blk < len(st.block_sd) else sd) < cfg.flat_uv
        thr[:, i] = np.where(flat, np.inf, _threshold(cfg, sd))
        low[:, i] = np.where(flat, np.inf, np.minimum(thr[:, i], st.quiet_sd * sd))
    blk_of = np.arange(a, b) // st.block_n - blk0
    ys = st.buf[:, a - st.buf_start : b - st.buf_start]
    # Segments per site: supra-threshold samples of any of its channels (not excluded
    # there), a new segment where the gap reaches the bridge, unless it is short and
    # loud (beyond ``low`` on some channel: a potential's phases, _kernels.site_segments).
    rows, s0, s1 = _kernels.site_segments(
        ys,
        thr,
        low,
        blk_of,
        _excluded_mask(st, a, b),
        st.site_of_ch,
        len(st.site_keys),
        st.bridge_n,
        st.loud_gap_n,
        2 * st.half_pot_n,
    )
    site_ids = np.arange(len(st.site_keys))
    guard = max(st.bridge_n, st.half_n)
    done = (s1 + a + guard <= b) | final
    if final:
        new_frontier = b
    elif (~done).any():
        new_frontier = a + int(s0[~done].min())
    else:
        new_frontier = b
    # Only segments before the new frontier are taken now; later ones (at other
    # sites) will be found again from the frontier.  A taken segment may reach
    # past the frontier: its tail, found again next time, is dropped by site.
    site_all = site_ids[rows]
    done &= (s0 + a) < new_frontier
    done &= (s0 + a) >= st.seg_done_until[site_all]
    rows, s0, s1 = rows[done], s0[done] + a, s1[done] + a
    st.seg_frontier = new_frontier
    if len(rows) == 0:
        return
    site_idx = site_ids[rows]
    np.maximum.at(st.seg_done_until, site_idx, s1)
    # Over-long, but not longer than a potential and the filter's ringing can be:
    long_ = np.flatnonzero(
        ((s1 - s0) > st.max_pot_n) & ((s1 - s0) <= st.max_pot_n + len(st.ring_env))
    )
    if len(long_):
        s1 = s1.copy()
        s1[long_] = _end_before_ringing(st, site_idx[long_], s0[long_], s1[long_])
    ok = (s1 - s0) <= st.max_pot_n
    _observe_long_beats(st, site_idx[~ok], s0[~ok], s1[~ok])
    # Longer segments are sustained activity, handled by the activity bins.
    site_idx, s0, s1 = site_idx[ok], s0[ok], s1[ok]
    if len(s0):
        _measure(st, site_idx, s0, s1)
    elif st.beat_obs:
        _track_beats(st)


def _end_before_ringing(st: PipelineState, sites: NDArray, s0: NDArray, s1: NDArray) -> NDArray:
    """Where each over-long segment ends if it is one potential and its filter ringing.

    Far above the noise the ringing of a large potential stays above the
    threshold, and within the refractory bridge, for longer than a potential
    lasts: the segment would be taken for sustained activity and the potential
    lost (with its ringing then counted after it).  If, on every channel of the
    site, each supra-threshold sample after the channel's own peak (conduction
    delays differ across a grid) stays within the ringing bound of that peak
    (``ringing.py``, plus two noise SDs), the segment ends where that bound is
    last exceeded; otherwise (real activity) it is left as it is.  Only
    over-long segments come here (a few per minute at most).
    """
    env = st.ring_env
    cfg = st.cfg
    out = s1.copy()
    for i, (s, a, b) in enumerate(zip(sites.tolist(), s0.tolist(), s1.tolist(), strict=True)):
        chs = st.site_chs[s]
        x = st.buf[chs, a - st.buf_start : b - st.buf_start].astype(np.float64)
        head = x[:, : st.max_pot_n]
        pp = np.maximum(head.max(axis=1), 0) - np.minimum(head.min(axis=1), 0)
        pk = np.abs(head).argmax(axis=1)  # each channel's own peak
        lag = np.arange(x.shape[1])[None, :] - pk[:, None]
        e = np.where(lag < len(env), env[np.clip(lag, 0, len(env) - 1)], 0.0)
        sd = _sd_for_block(st, a // st.block_n)[chs].astype(np.float64)
        thr = _threshold(cfg, sd)
        bound = np.maximum(0.5 * pp[:, None] * e + 2.0 * sd[:, None], thr[:, None])
        bound = np.where(lag >= 0, bound, np.inf)  # before its peak: the potential itself
        end = _ringing_end(x, bound, pk)
        if end > st.max_pot_n:
            end = _ringing_end_of_several(st, x, 0.5 * pp[:, None] * e, lag, pk, sd, thr)
        if end <= st.max_pot_n:
            out[i] = a + end
    return out


EXTRA_RING_SOURCES = 2  # potentials after the first within one over-long segment (a triplet)


def _ringing_end(x: NDArray, bound: NDArray, pk: NDArray) -> int:
    """One past the last sample of any channel above its ringing bound (at least the peaks)."""
    over = (np.abs(x) > bound).any(axis=0)
    return max(int(np.flatnonzero(over)[-1]) + 1 if over.any() else 0, int(pk.max()) + 1)


def _ringing_end_of_several(
    st: PipelineState,
    x: NDArray,
    ring: NDArray,
    lag: NDArray,
    pk: NDArray,
    sd: NDArray,
    thr: NDArray,
) -> int:
    """``_end_before_ringing`` for a segment holding up to three potentials.

    A doublet of a large unit (two discharges 5-15 ms apart) is above the
    ringing bound of its first discharge by nature, and its second discharge
    rings as much as the first: the segment ran past ``MAX_POTENTIAL_MS`` and
    both discharges were lost to sustained activity (simulated grid at 20 dB,
    10 min: 12 of 17 missed fasciculations).  Where a channel still exceeds its
    bound after the segment's first ``max_pot_n`` samples, its largest sample
    above the bound within them is taken as one more potential, whose ringing
    (``ringing.py``, from its own local peak to peak) adds to the bound of what
    follows (the filter is linear: ringings add up).  Activity that goes on
    after ``max_pot_n`` stays above every bound and the segment stays long.

    ``ring``: the first potential's ringing bound per channel and sample (µV,
    without noise), ``lag``: samples from each channel's peak.
    """
    env = st.ring_env
    head_n = min(st.max_pot_n, x.shape[1])
    half = st.half_pot_n
    ax = np.abs(x)
    t = np.arange(x.shape[1])
    rows = np.arange(x.shape[0])
    before = lag < 0  # the first potential itself
    end = head_n + 1
    bound = np.where(before, np.inf, np.maximum(ring + 2.0 * sd[:, None], thr[:, None]))
    for _ in range(EXTRA_RING_SOURCES):
        over = ax > bound
        late = over[:, head_n:].any(axis=1)
        cand = np.where(over[:, :head_n], ax[:, :head_n], -1.0)
        q = cand.argmax(axis=1)
        late &= cand[rows, q] > 0
        if not late.any():
            break
        lo = np.clip(q - half, 0, head_n)
        hi = np.clip(q + half + 1, 0, head_n)
        win = (t[None, :] >= lo[:, None]) & (t[None, :] < hi[:, None])
        pp_q = np.maximum(np.where(win, x, -np.inf).max(axis=1), 0) - np.minimum(
            np.where(win, x, np.inf).min(axis=1), 0
        )
        lag_q = t[None, :] - q[:, None]
        e_q = np.where(
            (lag_q >= 0) & (lag_q < len(env)), env[np.clip(lag_q, 0, len(env) - 1)], 0.0
        )
        ring = ring + np.where(late[:, None], 0.5 * pp_q[:, None] * e_q, 0.0)
        before |= late[:, None] & (lag_q < 0) & (t[None, :] >= lo[:, None])  # its rise
        bound = np.where(before, np.inf, np.maximum(ring + 2.0 * sd[:, None], thr[:, None]))
        end = _ringing_end(x, bound, pk)
        if end <= head_n:
            break
    return end


def _own_onset(
    wave: NDArray, sd: NDArray, amp: NDArray, centre: int, fs: float, look_ms: float = 15.0
) -> NDArray:
    """Onset of each candidate: its first clear deflection (> max(3σ, 20 % of its own
    p-p)) within 15 ms before its own peak (the window's centre).

    As the features' onset, but anchored at the candidate's peak: its window may
    hold a larger neighbour, whose onset (after this candidate's peak) it then got.
    """
    look = int(round(look_ms / 1000.0 * fs))
    lo = max(0, centre - look)
    seg = np.abs(wave[:, lo : centre + 1])
    strong = seg > np.maximum(3.0 * sd, 0.2 * amp)[:, None]
    return np.where(strong.any(axis=1), lo + strong.argmax(axis=1), centre)


def _doublet_parts(
    st: PipelineState, recs: list[dict], lags: NDArray, sds: NDArray
) -> list[list[dict] | None]:
    """The two events of each doublet candidate (decided later, like any candidate).

    Both carry the recovered single potential, centred on its peak: the unit's own
    shape, for features and shape clustering.  ``None`` where that potential is
    too small to count.  Vectorised over the candidates (one comb inverse per lag).
    """
    n = len(recs)
    if n == 0:
        return []
    w = np.stack([r["wave"] for r in recs])
    n_w = w.shape[1]
    single = np.empty(w.shape, np.float32)
    for d in np.unique(lags):
        g = lags == d
        single[g] = comb_inverse(w[g], int(d)).astype(np.float32)
    i_pk = np.abs(single).argmax(axis=1)
    amp1 = (single.max(axis=1) - single.min(axis=1)).astype(np.float64)
    # Shift each row so that its peak sits at the window's centre (zeros where nothing moves in).
    src = np.arange(n_w)[None, :] - (st.half_n - i_pk)[:, None]
    inside = (src >= 0) & (src < n_w)
    centred = np.where(
        inside, single[np.arange(n)[:, None], np.clip(src, 0, n_w - 1)], np.float32(0)
    )
    f1 = waveform_features(centred, sds, st.fs)
    p1 = [r["peak"] - st.half_n + int(i) for r, i in zip(recs, i_pk, strict=True)]
    out: list[list[dict] | None] = []
    for j, rec in enumerate(recs):
        if amp1[j] < st.cfg.fasc_min_pp_uv:
            out.append(None)
            continue
        parts = []
        for pk in (p1[j], p1[j] + int(lags[j])):
            part = dict(rec)
            part.update(
                start=int(pk - st.half_n + f1["onset"][j]),
                stop=int(max(pk + 1, pk - st.half_n + f1["last"][j] + 1)),
                peak=int(pk),
                amplitude_uv=float(amp1[j]),
                duration_ms=float(f1["duration_ms"][j]),
                phases=int(f1["phases"][j]),
                turns=int(f1["turns"][j]),
                area_uv_ms=float(f1["area_uv_ms"][j]),
                wave=centred[j],
                doublet=None,
            )
            parts.append(part)
        out.append(parts)
    return out


def _potential_score(
    st: PipelineState, wave: NDArray, sd: NDArray, best_ch: NDArray, test: NDArray
) -> NDArray:
    """Largest matched output of each tested candidate, in its noise SDs (wavelets.py).

    Candidates not tested (already inside sustained activity, too small to
    count, or the test is off) score ``inf``: they pass whatever the level.
    """
    out = np.full(len(wave), np.inf)
    if not st.wav_level or not test.any():
        return out
    rows = np.flatnonzero(test)
    score = wavelet_score(
        wave[rows],
        sd[rows],
        st.wav_gain[best_ch[rows]] / st.floor_bias,  # the floor's SD, unbiased
        st.wav_bank,
        st.half_n,
        reach_samples(st.fs, st.half_n),
    )
    out[rows] = score
    return out


def _potential_pp(
    st: PipelineState,
    wave: NDArray,
    seg_pp: NDArray,
    peak: NDArray,
    s0: NDArray,
    s1: NDArray,
    sd: NDArray,
) -> NDArray:
    """Peak to peak of each candidate's potential on its best channel.

    A weak potential's segment may hold only the phase that crossed the
    threshold: its p-p about the baseline is then about half the potential's,
    and true 50-70 uV potentials would fall under the 50-uV rule.  So the p-p is
    taken over the phases within ``PHASES_MS`` of the peak, if the candidate
    stands alone: no other supra-threshold excursion within half a potential's
    length (``POTENTIAL_MS``) of its peak.  Otherwise the window may also hold a
    neighbouring potential, or the main phase of which this segment is a small
    first phase (whose rising flank alone would lift the p-p), and only the
    segment's own p-p is the candidate's.  Depends only on the filtered samples
    around the peak and the peak's noise SD, so it is the same for any chunking.
    """
    reach = max(1, int(round(PHASES_MS * st.fs / 1000.0)))
    alone = min(st.half_n, max(reach, st.half_pot_n))
    lo, hi = st.half_n - alone, st.half_n + alone + 1
    t = peak[:, None] - st.half_n + np.arange(lo, hi)[None, :]  # absolute sample of each
    own = (t >= s0[:, None]) & (t < s1[:, None])
    thr = _threshold(st.cfg, sd)[:, None]
    other = ((np.abs(wave[:, lo:hi]) > thr) & ~own).any(axis=1)
    near = wave[:, st.half_n - reach : st.half_n + reach + 1]
    window_pp = near.max(axis=1) - near.min(axis=1)
    return np.where(other, seg_pp, np.maximum(seg_pp, window_pp)).astype(np.float32)


def _gather(st: PipelineState, chans: NDArray, starts: NDArray, length: int) -> NDArray:
    """Samples [start, start + length) of each (channel, start) from the buffer, zero-padded."""
    first = np.asarray(starts) - st.buf_start
    n_buf = st.buf.shape[1]
    if len(first) and 0 <= first.min() and first.max() <= n_buf - length:
        # The usual case, every window inside the buffer: one gather of rows of
        # windows (a view), several times faster than a gather of samples.
        return np.lib.stride_tricks.sliding_window_view(st.buf, length, axis=1)[chans, first]
    rel = starts[:, None] - st.buf_start + np.arange(length)[None, :]
    valid = (rel >= 0) & (rel < st.buf.shape[1])
    out = st.buf[chans[:, None], np.clip(rel, 0, st.buf.shape[1] - 1)]
    return np.where(valid, out, np.float32(0))


def _measure(st, site_idx, s0, s1) -> None:
    """Features of final candidate segments (all sites at once); queue them for decision.

    Work is done on (segment, channel) pairs: each segment with every channel of
    its site, so that sites of different sizes share one set of array operations.
    Segments come in (site, time) order and are queued in that order.
    """
    cfg = st.cfg
    n = len(s0)
    idx_n = np.arange(n)
    tab = st.site_ch_table[site_idx]  # (n, k_max) channel of each site slot, -1 = none
    pj, pk = np.nonzero(tab >= 0)  # pairs, segment-major, channels in site order
    pc = tab[pj, pk]
    k_max = tab.shape[1]
    # Extremes of each segment on each channel of its site (compiled: no
    # segments x channels x samples array, which HD grids would make large).
    lo_s = st.buf_start
    hi_s = st.buf_start + st.buf.shape[1]
    a_ = np.clip(s0, lo_s, hi_s)
    b_ = np.clip(np.minimum(s1, s0 + st.max_pot_n), a_, hi_s)
    seg_hi, seg_lo, seg_at = _kernels.segment_extrema(st.buf, lo_s, tab, a_, b_)
    # Peak to peak about the baseline (0 included: a one-signed segment counts from 0).
    valid = tab >= 0
    pp = np.where(valid, np.maximum(seg_hi, 0) - np.minimum(seg_lo, 0), -np.inf).astype(np.float32)
    best_k = pp.argmax(axis=1)
    best_ch = tab[idx_n, best_k]
    peak = a_ + seg_at[idx_n, best_k]
    # Which channels saw it: their own peak above their own threshold.
    sdm = _sd_matrix(st, peak)
    thr = _threshold(cfg, sdm[pc, pj])
    saw = np.zeros((n, k_max), bool)
    saw[pj, pk] = np.maximum(np.maximum(seg_hi[pj, pk], -seg_lo[pj, pk]), 0) > thr
    wave = _gather(st, best_ch, peak - st.half_n, 2 * st.half_n)
    sd = sdm[best_ch, idx_n]
    # Candidates already known to lie in sustained activity are dropped at decision
    # whatever their shape, so their shape is not measured.  They still serve as
    # neighbours of other candidates (peak, amplitude), and at ECG sites every
    # candidate still feeds the cardiac tracker, in order; elsewhere they are only
    # neighbours ("light") and never pending.
    covered = _known_sustained(st, site_idx, peak)
    light = covered & ~st.ecg_site[site_idx]
    # Only candidates large enough to be recorded at all (``keep`` below) are
    # measured further (on a 64-electrode grid, one candidate in ten): the
    # far-field test reads every electrode's window, ~40x the work otherwise.
    amp_pp = _potential_pp(st, wave, pp[idx_n, best_k], peak, s0, s1, sdm[best_ch, idx_n])
    recorded = amp_pp.astype(np.float64) >= cfg.fasc_min_pp_uv  # as keep
    if len(st.site_keys) > 1:
        # Below the counting floor a candidate is still a deflection beyond the noise:
        # a witness of an artefact seen at many sites at once (a motion artefact is
        # often 30-45 µV on most channels at 20 dB, and only two or three of its
        # candidates are counted).  Heart beats at trunk sites are no witnesses.
        small = np.flatnonzero(~recorded & ~st.ecg_site[site_idx])
        st.witnesses += zip(peak[small].tolist(), site_idx[small].tolist(), strict=True)
    full = np.flatnonzero(~covered & recorded)
    row = np.full(n, -1, np.int64)
    row[full] = np.arange(len(full))
    f = waveform_features(wave[full], sd[full], st.fs)
    uniform = np.zeros(n, bool)
    lone = np.zeros(n, bool)  # grids: a noise crossing on one electrode (_grid_tests)
    field: dict = {}  # grids: each electrode's share of the candidate (_one_potential)
    elec_pp: dict = {}  # grids: p-p on every electrode (_outsizes_neighbours, ringing)
    n_chs = (tab >= 0).sum(axis=1)
    for k in np.unique(n_chs[(n_chs >= GRID_MIN_CHANNELS) & recorded]):
        rows = np.flatnonzero((n_chs == k) & recorded)
        ppk = pp[rows, :k]
        elec_pp.update(zip(rows.tolist(), ppk.astype(np.float32), strict=True))
        uniform[rows] = dsp.percentile_last_axis(ppk, 25.0) >= 0.5 * ppk.max(axis=1)
        w = _grid_windows(st, tab[rows, :k], peak[rows])  # every electrode, once
        uniform[rows] |= _far_field(w)
        # The grid tests (grid.py) decide what is counted: candidates already inside
        # sustained activity (most of a cramp's discharges) only serve as neighbours.
        heavy = ~light[rows]
        rows, w = rows[heavy], w[heavy]
        if not len(rows):
            continue
        sd_k = sdm[tab[rows, :k], rows[:, None]]  # (n, k) noise SD of every electrode
        lone_k, far_k, field_k = _grid_tests(st, w, sd_k, best_k[rows])
        field.update(zip(rows.tolist(), field_k.astype(np.float32), strict=True))
        uniform[rows] |= far_k
        lone[rows] = lone_k & (saw[rows, :k].sum(axis=1) <= 1)
    # Doublets: the window holds the same potential twice (see doublets.py).
    amp_all = pp[idx_n, best_k]
    lag = np.zeros(n, np.int64)
    big = (amp_all >= DOUBLET_MIN_PP_SD * 2 * sd) & ~covered & recorded
    if big.any():
        lag[big], _ = find_doublets(wave[big], sd[big], st.doublet_lags)
    amp64 = amp_pp.astype(np.float64)
    # Noise crossings stay candidates (witnesses of artefacts, heart beats, neighbours)
    # but are never counted as fasciculations.
    score = _potential_score(st, wave, sd, best_ch, recorded & ~light)
    noise = score < st.wav_level
    keep = np.flatnonzero(recorded)
    start = (peak - st.half_n + _own_onset(wave, sd, amp_all, st.half_n, st.fs)).tolist()
    # For "one potential or two" the look-back spans a whole potential (≤ 20 ms).
    start_far = peak - st.half_n + _own_onset(wave, sd, amp_all, st.half_n, st.fs, POTENTIAL_MS)
    start_far = start_far.tolist()
    last = np.zeros(n, np.int64)  # extent measured only where the shape is (see above)
    last[full] = f["last"]
    stop = np.maximum(s1, peak - st.half_n + last + 1).tolist()
    cols = {
        k: v.tolist()
        for k, v in f.items()
        if k in ("duration_ms", "phases", "turns", "area_uv_ms")
    }
    peak_l, best_l, slot_l, amp_l, uni_l = (
        peak.tolist(),
        best_ch.tolist(),
        best_k.tolist(),
        amp64.tolist(),
        uniform.tolist(),
    )
    site_l = site_idx.tolist()
    light_l, row_l = light.tolist(), row.tolist()
    sd_l = sd.tolist()
    many_sites = len(st.site_keys) > 1  # only then can a movement be seen (_in_movement)
    new = []
    for j in keep.tolist():
        if many_sites:  # every recorded candidate is one of its site's discharges
            bisect.insort(st.site_peaks[site_l[j]], peak_l[j])
        if light_l[j]:  # a neighbour only (see above): never pending, never an event
            rec = {
                "amplitude_uv": amp_l[j],
                "uniform": uni_l[j],
                "ecg": False,
                "start_far": start_far[j],  # it may still be part of a neighbour's potential
                "elec_pp": elec_pp.get(j),
                "near_wave": wave[j],
                "noise_uv": sd_l[j],
            }
            st.recent_peaks.append((peak_l[j], site_l[j], rec))
            # ... and its filter ringing still bounds what follows it
            st.ring_sources.append((peak_l[j], site_l[j], amp_l[j], start_far[j], elec_pp.get(j)))
            continue
        chans = tab[j][saw[j]].tolist() or [best_l[j]]
        i = row_l[j]  # -1: covered (dropped at decision): no shape measures
        rec = {
            "site_i": site_l[j],
            "start": start[j],
            "start_far": start_far[j],
            "stop": stop[j],
            "peak": peak_l[j],
            "best_ch": best_l[j],
            "best_slot": slot_l[j],  # its column in the site's channel table (grids)
            "channels": chans,
            "amplitude_uv": amp_l[j],
            "duration_ms": cols["duration_ms"][i] if i >= 0 else math.nan,
            "phases": cols["phases"][i] if i >= 0 else 0,
            "turns": cols["turns"][i] if i >= 0 else 0,
            "area_uv_ms": cols["area_uv_ms"][i] if i >= 0 else math.nan,
            "uniform": uni_l[j],
            "lone": bool(lone[j]),
            "field": field.get(j),
            "elec_pp": elec_pp.get(j),
            "ring_peak": peak_l[j],  # where its filter ringing starts, and how large
            "ring_amp": amp_l[j],  # (a doublet rings twice: see below)
            "noise_uv": sd_l[j],
            "wave": wave[j],
            "near_wave": wave[j],  # kept while neighbours may still ask (_one_potential)
            "ecg": False,
            "ecg_done": False,
            "doublet": None,
            "noise": bool(noise[j]),
            "score": float(score[j]),
        }
        new.append(rec)
        st.pending.append(rec)
        st.recent_peaks.append((rec["peak"], rec["site_i"], rec))
    kept = [j for j in keep.tolist() if not light_l[j]]  # the rows of ``new``
    dbl = [i for i, j in enumerate(kept) if lag[j]]
    if dbl:
        jj = np.asarray(kept)[dbl]
        parts = _doublet_parts(st, [new[i] for i in dbl], lag[jj], sd[jj])
        for i, pr in zip(dbl, parts, strict=True):
            new[i]["doublet"] = pr
            if pr:
                # the doublet's span, kept after "doublet" is consumed (_one_potential)
                new[i]["resolved"] = (pr[0]["start"], pr[-1]["stop"])
                # both discharges ring: bound it from the later one with their sum
                new[i]["ring_peak"] = max([new[i]["peak"]] + [q["peak"] for q in pr])
                new[i]["ring_amp"] = sum(q["amplitude_uv"] for q in pr)
    st.ring_sources += [
        (
            r["ring_peak"],
            r["site_i"],
            r["ring_amp"],
            r.get("start_far", r["start"]),
            None if r["elec_pp"] is None else r["elec_pp"] * (r["ring_amp"] / r["amplitude_uv"]),
        )
        for r in new
    ]
    _track_beats(st)


def _track_beats(st: PipelineState) -> None:
    """Cardiac tracking of the candidates just measured (and long trunk segments).

    Runs as candidates appear, in time order per site.  Each site's beats must
    agree with the steady rhythm of the other ECG sites, as known from beats
    that are surely tracked already whatever the chunking: segments are taken
    in start order, so every beat whose peak precedes a segment's start (for a
    candidate: its peak less ``max_pot_n``) has been seen.
    """
    if not (st.decisions_on and st.cfg.ecg_reject):
        return  # the start-up probe: _bootstrap_ecg takes them all at once
    obs, st.beat_obs = st.beat_obs, []
    ecg_sites = np.flatnonzero(st.ecg_site).tolist()
    todo = [*(p for p in st.pending if not p["ecg_done"]), *obs]
    for rec in sorted(todo, key=lambda p: p["peak"]):
        s = rec["site_i"]
        long = "seg_start" in rec
        if st.ecg_site[s]:
            before = rec["seg_start"] - 1 if long else rec["peak"] - st.max_pot_n
            refs = [reference(st.trackers[t], before) for t in ecg_sites if t != s]
            refs = [r for r in refs if r is not None]
            learn = _may_start_rhythm(st, rec)
            beat = classify(st.trackers[s], rec["peak"], rec["wave"], st.fs, refs, learn=learn)
            if long:
                if beat:
                    st.long_beats.append(rec["peak"])
                continue
            rec["ecg"] = beat
            tr = st.trackers[s]
            rec["beat_pp"] = tr.amp_ref if tr.locked else 0.0
        rec["ecg_done"] = True


def _may_start_rhythm(st: PipelineState, rec: dict) -> bool:
    """May this candidate (or long segment) start a site's cardiac rhythm?

    On a grid the QRS is a far-field source, present on nearly every electrode
    (``uniform``), whereas a motor unit's potential is local.  A unit that
    fires three times at a steady interval locks a tracker on its own, and on
    a grid that is its own only ECG site no other site's rhythm can overrule
    it (simulated 64-electrode biceps grid at 12 dB: a unit held the tracker
    and 23 of 102 fasciculations in two minutes were taken for heart beats).
    So on a grid only far-field candidates start a rhythm; once it is locked,
    a local candidate on the predicted beat with the QRS's shape and size is
    still a beat (the QRS may fail the far-field test in noise).
    """
    if not st.grid_site[rec["site_i"]]:
        return True
    return bool(rec.get("uniform", False))


def _observe_long_beats(st: PipelineState, site_idx: NDArray, s0: NDArray, s1: NDArray) -> None:
    """Show the cardiac tracker the trunk segments too long to be a potential.

    At high SNR the QRS of a trunk site (rectus abdominis: a few hundred µV over
    a few µV of noise) stays above threshold, ringing included, for more than
    ``MAX_POTENTIAL_MS``: the segment is not a candidate, the tracker never
    saw most beats and could not lock, and the few beats that noise split into
    shorter segments were counted as fasciculations (simulated cramps at 20 dB:
    37 false ones in 10 min).  Such a segment up to ``LONG_QRS_MS`` is passed
    to the tracker as a possible beat (never counted); one taken as a beat
    blanks its window like any beat.
    """
    if not st.cfg.ecg_reject or len(s0) == 0:
        return
    sel = st.ecg_site[site_idx] & ((s1 - s0) <= st.long_qrs_n)
    if not sel.any():
        return
    site_idx, s0, s1 = site_idx[sel], s0[sel], s1[sel]
    tab = st.site_ch_table[site_idx]
    lo_s, hi_s = st.buf_start, st.buf_start + st.buf.shape[1]
    a_ = np.clip(s0, lo_s, hi_s)
    b_ = np.clip(s1, a_, hi_s)
    seg_hi, seg_lo, seg_at = _kernels.segment_extrema(st.buf, lo_s, tab, a_, b_)
    pp = np.where(tab >= 0, np.maximum(seg_hi, 0) - np.minimum(seg_lo, 0), -np.inf)
    n = np.arange(len(s0))
    k = pp.argmax(axis=1)
    peak = a_ + seg_at[n, k]
    wave = _gather(st, tab[n, k], peak - st.half_n, 2 * st.half_n)
    for j in range(len(s0)):
        st.beat_obs.append(
            {
                "peak": int(peak[j]),
                "site_i": int(site_idx[j]),
                "wave": wave[j],
                "seg_start": int(s0[j]),
            }
        )


# ---------------------------------------------------------------------------- activity
def _update_bins(st: PipelineState, sig: SignalChunk) -> None:
    """Judge the chunk's 10-ms RMS bins and close its 1-s noise blocks in time order.

    A bin is judged against the noise floor of the blocks before its own, and
    a block's noise estimate needs the activity of its bins; so within a chunk
    the bins up to each block's end are judged before that block is closed.
    Every bin then sees a final floor, the same for any chunking.
    """
    final, sums, counts = sig.final, sig.bin_sums, sig.bin_counts
    rms = np.sqrt(sums / counts[None, :]).astype(np.float32)
    blocks = sig.blocks
    b0 = st.n_bins
    # Excluded channel-bins (gaps, clipping, warm-up, disconnected) are neither active nor rest.
    excl = _excluded_bins(st, b0 * st.bin_n, rms.shape[1])
    bin_end = b0 * st.bin_n + np.cumsum(counts)  # exclusive end sample of each bin
    parts, lo = [], 0
    for (blk, sd), excluded in zip(blocks, _block_exclusions(st, blocks), strict=True):
        if blk >= 0:
            hi = int(np.searchsorted(bin_end, (blk + 1) * st.block_n, side="right"))
            if hi > lo:
                parts.append(_active_bins(st, rms[:, lo:hi], excl[:, lo:hi], b0 + lo))
                lo = hi
        elif lo < rms.shape[1]:  # the final partial block comes after every bin
            parts.append(_active_bins(st, rms[:, lo:], excl[:, lo:], b0 + lo))
            lo = rms.shape[1]
        _close_block(st, blk, sd, excluded)
    if lo < rms.shape[1]:
        parts.append(_active_bins(st, rms[:, lo:], excl[:, lo:], b0 + lo))
    if not parts:
        if final:
            _close_runs(st, final=True)
        return
    active = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    _activity(st, rms, active, excl, final)


def _active_bins(st: PipelineState, rms: NDArray, excl: NDArray, b0: int) -> NDArray:
    """Active channel-bins of bins ``b0 …`` (not excluded); counts busy bins per block."""
    nb = rms.shape[1]
    bin_start = (b0 + np.arange(nb)) * st.bin_n
    blk = bin_start // st.block_n
    b_lo, b_hi = int(blk[0]), int(blk[-1]) + 1
    # Bins are in time order: each block's bins are one slice (1-2 blocks per call).
    cut = np.searchsorted(blk, np.arange(b_lo, b_hi + 1)).tolist()
    active = np.empty(rms.shape, bool)
    for b in range(b_lo, b_hi):
        a, e = cut[b - b_lo], cut[b - b_lo + 1]
        sd = _sd_for_block(st, b)[:, None]  # the floor of the block each bin starts in
        np.greater(rms[:, a:e], st.active_sd * sd, out=active[:, a:e])
    active &= ~excl
    # Per-channel busy bins per noise block (bins wholly inside one block).  A bin
    # is busy when it is active or follows an active bin of its channel by no more
    # than the run merge gap: weak activity (a cramp's quiet phase) is active only
    # in some bins, but the same bridging makes it one run of sustained activity,
    # and its blocks must not feed the noise floor, or the floor climbs into the
    # cramp within seconds and the rest of it becomes "rest" (causal: only earlier
    # bins bridge, so the count is the same for any chunking).
    busy = _bridge_active(st, active, b0)
    for b in range(b_lo, b_hi):
        a, e = cut[b - b_lo], cut[b - b_lo + 1]
        if e > a and (bin_start[e - 1] + st.bin_n - 1) // st.block_n != b:
            e -= 1  # the block's last bin runs into the next block: in neither
        if e <= a:
            continue
        st.block_active[b] = st.block_active.get(b, 0) + np.count_nonzero(busy[:, a:e], axis=1)
        st.block_bins[b] = st.block_bins.get(b, 0) + (e - a)
        if st.change_spread_noise is not None:  # the noise-change rule is on (_close_block)
            st.block_bin_rms.setdefault(b, []).append(rms[:, a:e])
    return active


def _activity(
    st: PipelineState, rms: NDArray, active: NDArray, excl: NDArray, final: bool
) -> None:
    """Sustained-activity runs per site from the chunk's judged bins."""
    n_ch, nb = rms.shape
    b0 = st.n_bins
    n_sites = len(st.site_keys)
    site_active = np.zeros((n_sites, nb), bool)
    site_rms = np.zeros((n_sites, nb), np.float32)
    for s, chs in enumerate(st.site_chs):
        site_active[s] = active[chs].any(axis=0)
        site_rms[s] = np.where(excl[chs], 0, rms[chs]).max(axis=0)
    coact = site_active.sum(axis=0).astype(np.int16)
    # Runs are made of firing bins: active, and not the filter ringing of a larger
    # potential just before (that tail would stretch one potential into a run).
    firing = site_active & _not_ringing(st, site_rms, b0)  # reads the ring: before writing it
    ring_idx = (b0 + np.arange(nb)) % st.ring_n
    st.ring_rms[:, ring_idx] = site_rms
    st.ring_coact[ring_idx] = coact
    st.n_bins += nb
    # Runs of active bins per site, continuing the open run.
    for s in range(n_sites):
        act = np.flatnonzero(firing[s]) + b0
        if len(act) == 0:
            continue
        if st.run_start[s] >= 0:
            starts_all = np.r_[st.run_last[s], act]
        else:
            starts_all = act
        brk = np.flatnonzero(np.diff(starts_all) > st.merge_bins)
        firsts = np.r_[0, brk + 1]
        lasts = np.r_[brk, len(starts_all) - 1]
        for i, (f, l_) in enumerate(zip(firsts, lasts, strict=True)):
            run_s = int(starts_all[f])
            n_act = int(l_ - f + 1)  # firing bins of this run piece
            if i == 0 and st.run_start[s] >= 0:
                run_s = int(st.run_start[s])
                n_act += int(st.run_active[s]) - 1  # run_last was counted already
            else:  # a new run: the episode before it may have ended in the pause
                _close_episode_before(st, s, run_s)
            run_l = int(starts_all[l_])
            if i < len(firsts) - 1:
                _finish_run(st, s, run_s, run_l, n_act)
            else:
                st.run_start[s], st.run_last[s], st.run_active[s] = run_s, run_l, n_act
    _close_runs(st, final=final)


def _bridge_active(st: PipelineState, active: NDArray, b0: int) -> NDArray:
    """(n_ch, nb) active bins plus the bins up to ``merge_bins`` after an active one."""
    n_ch, nb = active.shape
    idx = np.arange(nb, dtype=np.int64) + b0
    # Index of the latest active bin at or before each bin (carried across chunks).
    last = np.where(active, idx[None, :], st.last_active[:, None])
    last = np.maximum.accumulate(last, axis=1)
    st.last_active = last[:, -1].copy()
    return (idx[None, :] - last) <= st.merge_bins


def _close_runs(st: PipelineState, final: bool) -> None:
    for s in range(len(st.site_keys)):
        if st.run_start[s] >= 0 and (final or st.run_last[s] + st.merge_bins < st.n_bins):
            _finish_run(st, s, int(st.run_start[s]), int(st.run_last[s]), int(st.run_active[s]))
            st.run_start[s] = st.run_last[s] = -1
            st.run_active[s] = 0
        if st.episode[s] is None:
            continue
        if final:
            _emit_episode(st, s, *st.episode[s])
            st.episode[s] = None
        elif st.run_start[s] < 0:
            # Exclusions are complete up to CLIP_RUN samples before the chunk's end
            # (a clipped run is recorded once CLIP_RUN samples long).
            _close_episode_before(st, s, st.n_bins - 1 - math.ceil(CLIP_RUN / st.bin_n))


def _close_episode_before(st: PipelineState, s: int, upto_bin: int) -> None:
    """End site ``s``'s episode at the first bin ``t <= upto_bin`` where its pause ends it.

    An episode (one cramp) goes on through a pause shorter than the episode gap,
    and through a longer one while most of the pause so far is excluded on every
    channel of the site (clipping, gaps: not a pause of the muscle).  The bins are
    taken in time order, so where the episode ends does not depend on where the
    chunks end (a check at each chunk's end let a 20-s chunk carry an episode
    through a clipped pause that 1-s chunks ended).
    """
    ep = st.episode[s]
    if ep is None or upto_bin < ep[1] + st.episode_bins + 1:
        return
    lo = ep[1] + st.episode_bins + 1  # the first bin at which the gap is long enough
    out = _site_excluded(st, s, ep[1] * st.bin_n, (upto_bin + 1) * st.bin_n)
    # Excluded fraction of the pause [ep stop, t) for every candidate end bin t.
    cum = np.r_[0, np.cumsum(out.reshape(-1, st.bin_n).sum(axis=1))]
    t = np.arange(lo, upto_bin + 1)
    frac = cum[t - ep[1]] / ((t - ep[1]) * st.bin_n)
    if (frac < 0.5).any():
        _emit_episode(st, s, *ep)
        st.episode[s] = None


def _not_ringing(st: PipelineState, site_rms: NDArray, b0: int) -> NDArray:
    """(n_sites, nb) True where a bin is not the filter ringing of a larger one before it.

    Ringing (the band-pass for a few bins, the mains notches for ~0.2 s) after
    a potential is a small fraction of it: a bin below ``TAIL_FRACTION`` x the
    largest bin of the preceding ``isolated_ms`` is a tail, not new firing.
    The bins before this chunk come from the envelope ring, so the answer is
    the same for any chunking.
    """
    n_sites, nb = site_rms.shape
    w = _brief_bins(st)
    prev_idx = (b0 - w + np.arange(w)) % st.ring_n
    prev = st.ring_rms[:, prev_idx] if b0 >= w else np.zeros((n_sites, w), np.float32)
    if 0 < b0 < w:
        prev[:, w - b0 :] = st.ring_rms[:, :b0]
    ext = np.concatenate([prev, site_rms], axis=1)
    # A bin j bins after a larger one may hold its ringing: TAIL_FRACTION of it, or
    # what the filter in use can ring that soon (ringing.py, relative to the p-p,
    # which for a bin of a potential is about its RMS times 2 sqrt 2, as the
    # ringing's p-p is its RMS times 2 sqrt 2): a mains notch rings after a large
    # doublet at 10-20 % for ~0.1 s, and two or three such doublets within a
    # quarter of a second were taken for a brief voluntary run (hd-grid 20 dB).
    frac = st.tail_frac
    tail = np.zeros(site_rms.shape, np.float64)
    for j in range(1, w + 1):
        tail = np.maximum(tail, frac[j - 1] * ext[:, w - j : w - j + nb])
    return site_rms >= tail


def _tail_fractions(st: PipelineState, w: int) -> NDArray:
    """Largest RMS, relative to a bin's, that ringing can leave 1 … w bins later.

    Only beyond a potential's span (``POTENTIAL_MS``): closer, the envelope is the
    potential's own late phases (up to its full size), and a bin of continual
    firing that is smaller than the one before it is firing all the same.
    """
    env = st.ring_env
    lag = np.arange(1, w + 1) * st.bin_n  # from the start of that bin
    ring = np.where(lag < len(env), env[np.clip(lag, 0, len(env) - 1)], 0.0)
    ring[lag < POTENTIAL_MS * st.fs / 1000.0] = 0.0
    return np.maximum(TAIL_FRACTION, ring)


def _brief_bins(st: PipelineState) -> int:
    """Firing bins that make even a short run activity: ``isolated_ms`` worth.

    A potential with its ringing is at most ``MAX_POTENTIAL_MS`` of firing, so
    a run that fires for 250 ms in total is continual firing of overlapping
    units (by the 250-ms rule none of its discharges is isolated), e.g. a
    brief voluntary twitch, even when it spans less than ``sustained_min_s``.
    A chain of a few fasciculations < 0.1 s apart spans as much but fires for
    a fraction of it.
    """
    return max(1, int(round(st.cfg.isolated_ms / 1000.0 * st.fs / st.bin_n)))


def _finish_run(
    st: PipelineState, s: int, first_bin: int, last_bin: int, n_firing: int = 0
) -> None:
    """A run of activity at site ``s`` has ended; record it if it was sustained.

    Sustained: spans at least ``sustained_min_s``, or fires for at least
    ``isolated_ms`` in total (see ``_brief_bins``).  Cramps wax and wane:
    sustained runs of one site less than ``EPISODE_GAP_S`` apart are one
    episode (one cramp), the pause included.
    """
    brief = _brief_bins(st)
    ep = st.episode[s]
    if last_bin - first_bin + 1 < st.sustained_bins and n_firing < brief:
        # Not sustained, but discharges less than isolated_ms apart are continual
        # firing: right after an episode they are its thinning tail (extend it);
        # before one, its sparse first discharges (remembered as a chain).
        if ep is not None and first_bin - ep[1] <= brief:
            ep[1] = last_bin + 1
            st.sustained[s][-1] = (ep[0], ep[1])
        elif first_bin - st.short_chain[s, 1] <= brief:
            st.short_chain[s, 1] = last_bin
        else:
            st.short_chain[s] = first_bin, last_bin
        return
    if ep is not None:  # still open: its pause did not end it (_close_episode_before)
        ep[1] = ep[3] = last_bin + 1
        st.sustained[s][-1] = (ep[0], ep[1])
        st.short_chain[s] = -(2**40), -(2**40)
        return
    if ep is not None:
        _emit_episode(st, s, *ep)
    core = first_bin
    if 0 <= first_bin - st.short_chain[s, 1] <= brief:
        first_bin = int(st.short_chain[s, 0])  # the sparse discharges that led into it
        if st.sustained[s] and st.sustained[s][-1][1] > first_bin:
            first_bin = st.sustained[s][-1][1]  # never back into the previous episode
    st.short_chain[s] = -(2**40), -(2**40)
    # [start, stop, core start, core stop]: the core (sustained runs, without the
    # chained sparse edges) is what must last cramp_min_s.
    st.episode[s] = [first_bin, last_bin + 1, core, last_bin + 1]
    st.sustained[s].append((first_bin, last_bin + 1))


def _site_excluded(st: PipelineState, s: int, a: int, b: int, reasons=None) -> NDArray:
    """Samples [a, b) in which every channel of site ``s`` is excluded.

    With ``reasons`` only spans of those kinds count; without, a gap still open
    counts too.
    """
    out = np.ones(b - a, bool)
    for c in st.site_chs[s]:
        m = np.zeros(b - a, bool)
        for x, y, why in all_exclusions(st, c):
            if y > a and x < b and (reasons is None or why in reasons):
                m[max(x, a) - a : min(y, b) - a] = True
        if reasons is None and st.nan_open[c] >= 0:
            m[max(int(st.nan_open[c]), a) - a :] = True
        out &= m
    return out


def _excluded_fraction(st: PipelineState, s: int, b0: int, b1: int, reasons=None) -> float:
    """Fraction of bins [b0, b1) in which every channel of site ``s`` is excluded."""
    if b1 <= b0:
        return 1.0
    return float(_site_excluded(st, s, b0 * st.bin_n, b1 * st.bin_n, reasons).mean())


def _emit_episode(
    st: PipelineState,
    s: int,
    first_bin: int,
    stop_bin: int,
    core_first: int | None = None,
    core_stop: int | None = None,
) -> None:
    """Classify a finished episode of sustained activity as cramp or voluntary.

    The duration that must reach ``cramp_min_s`` is the core's (its sustained
    runs): the sparse discharges chained to its edges set onset and offset but
    do not make a short voluntary burst long enough to be a cramp.
    """
    last_bin = stop_bin - 1
    cfg = st.cfg
    core_first = first_bin if core_first is None else core_first
    core_stop = stop_bin if core_stop is None else core_stop
    dur_s = (core_stop - core_first) * st.bin_n / st.fs
    lo = max(first_bin, st.n_bins - st.ring_n)
    idx = np.arange(lo, last_bin + 1) % st.ring_n
    env = st.ring_rms[s, idx].astype(np.float64)
    n_sites = len(st.site_keys)
    if n_sites > 1:
        others = (st.ring_coact[idx].astype(np.float64) - 1.0) / (n_sites - 1)
        coact = float(np.clip(others, 0, 1).mean()) if len(idx) else 0.0
    else:
        coact = 0.0
    is_cramp = dur_s >= cfg.cramp_min_s and coact <= cfg.cramp_max_sites_fraction
    # Clipped for a good part of it on every channel of the site: amplitude and shape
    # are the amplifier's, not the muscle's, so it is flagged rather than counted.
    clipped = (
        _excluded_fraction(st, s, first_bin, stop_bin, ("clipped",)) >= CLIPPED_EPISODE_FRACTION
    )
    chs = st.site_chs[s]
    onset = _rising_edge(st, s, first_bin) * st.bin_n
    if clipped:
        kind, reason = "artifact", "clipped"
    elif _made_by_noise_change(st, s, first_bin, stop_bin):
        kind, reason = "artifact", "noise-change"
    elif is_cramp:
        kind, reason = "cramp", "n/a"
    else:
        kind = "voluntary"
        reason = "widespread" if coact > cfg.cramp_max_sites_fraction else "short"
    st.out.append(
        {
            "kind": kind,
            "site_i": s,
            "start": onset,
            "stop": (last_bin + 1) * st.bin_n,
            "peak": onset + int(np.argmax(env)) * st.bin_n if len(env) else onset,
            "channels": [int(c) for c in chs],
            "amplitude_uv": float(env.max() * math.sqrt(2)) if len(env) else float("nan"),
            "mean_amplitude_uv": float(env.mean()) if len(env) else float("nan"),
            "reason": reason,
        }
    )


def _made_by_noise_change(st: PipelineState, s: int, first_bin: int, stop_bin: int) -> bool:
    """Does a noise change of a channel of site ``s`` cover half of this episode or more?

    Only changes found by the time the episode ends through a pause count (its
    stop plus the episode gap), whatever the chunking: the episode is often
    emitted later, but never earlier.
    """
    a, b = first_bin * st.bin_n, stop_bin * st.bin_n
    known = (stop_bin + st.episode_bins + 1) * st.bin_n
    chs = set(st.site_chs[s].tolist())
    cover = max(
        (min(y, b) - max(x, a) for c, x, y, _ in st.noise_changes if c in chs and y <= known),
        default=0,
    )
    return 2 * cover >= b - a


ONSET_WINDOW_S = 0.1  # an episode's onset is traced back in windows of this length ...
ONSET_REACH_S = 1.0  # ... at most this far ...
ONSET_BASELINE_S = 2.0  # ... against the site's bins of the preceding 2 s ...
ONSET_P = 1e-3  # ... as long as each window's mean square is beyond what noise gives this rarely


def _rising_edge(st: PipelineState, s: int, first_bin: int) -> int:
    """First bin of an episode's rising edge, at or before its first firing bin.

    A cramp waxes in: for its first few hundred ms its units can stay below the
    activity level of single 10-ms bins (at 0 dB a simulated cramp's RMS was
    ~1 noise SD for 0.5 s), yet over 100 ms their energy stands out of the noise
    (a mean square of ~100 degrees of freedom instead of ~10).  Windows of
    ``ONSET_WINDOW_S`` just before the first firing bin are taken into the
    episode while their mean square exceeds what the noise gives with
    probability ``ONSET_P`` (chi-square with the filter's Satterthwaite degrees
    of freedom; the noise's level is the median bin of the ``ONSET_BASELINE_S``
    before, robust to sparse potentials), one after the other (one window below
    is bridged: the units fire in bursts), up to ``ONSET_REACH_S``, never into
    the previous episode, an excluded bin or beyond the kept history.  A lone
    potential before the cramp (which with its notch ringing can fill a window
    at high SNR) is not joined on across the quiet windows between.
    """
    w, reach = st.onset_win_bins, st.onset_reach_bins
    base_n = st.onset_base_bins
    lo_limit = max(st.n_bins - st.ring_n + 1, 0)
    if len(st.sustained[s]) >= 2:
        lo_limit = max(lo_limit, st.sustained[s][-2][1])
    base_lo = first_bin - reach - base_n
    if base_lo < lo_limit:
        return first_bin
    idx = np.arange(base_lo, first_bin) % st.ring_n
    ms = st.ring_rms[s, idx].astype(np.float64) ** 2
    base = ms[:base_n]
    base = base[base > 0]  # excluded bins read 0
    if len(base) < base_n // 2:
        return first_bin
    mean0 = float(np.median(base)) / st.onset_median_ratio  # the noise's mean square
    n_win = reach // w
    tail = ms[len(ms) - n_win * w :].reshape(n_win, w)[::-1]  # windows going back
    if (tail <= 0).any():  # an excluded bin: go back no further than it
        n_win = int(np.argmax((tail <= 0).any(axis=1)))
        tail = tail[:n_win]
    above = tail.mean(axis=1) >= st.onset_ms_level * mean0
    # Windows above the level, one after the other (a cramp's units fire in bursts:
    # one window below it is bridged when the one before it is above it again).
    # A potential before the cramp, ringing a window or two, is not joined on.
    k = 0
    while k < n_win and (above[k] or (k + 1 < n_win and above[k + 1] and k > 0)):
        k += 1
    while k > 0 and not above[k - 1]:
        k -= 1
    return first_bin - k * w


# ---------------------------------------------------------------------------- decisions
def _known_sustained(st: PipelineState, site_idx: NDArray, peaks: NDArray) -> NDArray:
    """True where :func:`_covered_by_sustained` already answers True (vectorised).

    Those answers are final: sustained runs are only ever extended or added.
    Only its first two rules are applied (recorded runs, and an open run that is
    already sustained); a False here means "measure it", not "not covered".
    """
    out = np.zeros(len(peaks), bool)
    if not len(peaks):
        return out
    pb = peaks // st.bin_n
    m, m_after, brief = st.margin_bins, st.after_bins, _brief_bins(st)
    for s in np.unique(site_idx).tolist():
        sel = site_idx == s
        p = pb[sel]
        lo_pb = int(p.min())
        hit = np.zeros(len(p), bool)
        for a, b in reversed(st.sustained[s]):
            if b + m_after <= lo_pb:
                break
            hit |= (a - m <= p) & (p < b + m_after)
        rs, rl = int(st.run_start[s]), int(st.run_last[s])
        if rs >= 0 and (rl - rs + 1 >= st.sustained_bins or st.run_active[s] >= brief):
            # Up to where the run will be recorded whenever it closes (final).
            hit |= (rs - m <= p) & (p < rl + 1 + m_after)
        out[sel] = hit
    return out


def _covered_by_sustained(st: PipelineState, s: int, peak: int) -> bool | None:
    """True/False if known whether ``peak`` lies in sustained activity (± margin); None if not yet."""
    pb = peak // st.bin_n
    m = st.margin_bins
    m_after = st.after_bins  # the last discharges of a cramp thin out before it stops
    # Runs are in time order with non-decreasing ends (each starts where the last
    # one ended or later), so walk back from the newest and stop at the first run
    # that ended before this peak: the cost no longer grows with recording length.
    for a, b in reversed(st.sustained[s]):
        if b + m_after <= pb:
            break
        if a - m <= pb:
            return True
    ep = st.episode[s]
    if st.run_start[s] >= 0:
        rs, rl = int(st.run_start[s]), int(st.run_last[s])
        if rs - m <= pb:
            if rl - rs + 1 >= st.sustained_bins or st.run_active[s] >= _brief_bins(st):
                return True  # open run is already sustained and reaches back to here
            return None  # may still become sustained
    c0, c1 = (int(v) for v in st.short_chain[s])
    if c0 - m <= pb <= c1 + m:
        # Among discharges < isolated_ms apart (continual firing): a cramp's sparse
        # first discharges, if the chain leads into sustained activity.
        brief = _brief_bins(st)
        rs = int(st.run_start[s])
        if rs >= 0 and rs - c1 <= brief:
            rl = int(st.run_last[s])
            if rl - rs + 1 >= st.sustained_bins or st.run_active[s] >= brief:
                return True
            return None
        if st.n_bins <= c1 + brief + st.merge_bins:
            return None  # the chain may still go on into sustained activity
    if ep is not None and ep[1] + m_after <= pb:
        return None  # in a pause of an episode that may go on (then this is inside it)
    if st.n_bins <= pb + m + st.merge_bins:
        return None  # activity soon after may still start a run that reaches back
    return False


def provisional(st: PipelineState) -> list[dict]:
    """Fasciculation candidates measured but not yet decided, for a live display.

    A candidate is measured as soon as its potential is complete (about
    ``HALF_WINDOW_MS`` after its last sample); the decision waits for what may
    follow it (a cramp starting, a heart beat or a common-mode artefact seen on
    other channels a little later).  This applies the decision's tests to what
    is known already, so most provisional candidates are later confirmed;
    :func:`step` returns the decided events.  Each item holds ``site_i``,
    ``start``, ``stop``, ``peak`` and ``amplitude_uv``.
    """
    if not st.pending:
        return []
    ix = _recent_index(st)
    n_p = len(st.pending)
    pk_p = np.fromiter((p["peak"] for p in st.pending), np.int64, n_p)
    site_p = np.fromiter((p["site_i"] for p in st.pending), np.int64, n_p)
    ring_lim, beat_near, _ = _neighbour_tests(st, ix, pk_p, site_p)
    wide = _seen_widely(st, ix, pk_p)  # the common-mode rule, on what is known so far
    out = []
    for i, p in enumerate(st.pending):
        s = p["site_i"]
        if p.get("ecg") or p.get("uniform") or _covered_by_sustained(st, s, p["peak"]):
            continue
        if ring_lim[i] > p["amplitude_uv"]:
            continue  # ringing of a larger potential
        if st.cfg.ecg_reject and st.ecg_site[s] and beat_near[i] and not _outsizes_beat(p):
            continue  # a heart beat seen on another trunk channel
        if wide[i] or _in_movement(st, s, p["peak"]):
            continue  # the same instant on many sites: common-mode artefact (or a movement)
        if _near_clipping(st, p):
            continue  # the tail of a clipped run
        parts = p.get("doublet")
        if parts and _looks_repeated(st, s, p["peak"], parts[1]["peak"] - parts[0]["peak"]):
            parts = None  # a polyphasic potential (_repeating_pattern)
        for q in parts or (p,):
            out.append({k: q[k] for k in ("site_i", "start", "stop", "peak", "amplitude_uv")})
    return out


def _window_any(sorted_keys: NDArray, flags: NDArray, lo_key: NDArray, hi_key: NDArray) -> NDArray:
    """For each [lo_key, hi_key] (inclusive): is any flag set among keys in it?"""
    cums = np.r_[0, np.cumsum(flags, dtype=np.int64)]
    lo = np.searchsorted(sorted_keys, lo_key, side="left")
    hi = np.searchsorted(sorted_keys, hi_key, side="right")
    return cums[hi] > cums[lo]


def _window_max(
    sorted_keys: NDArray, values: NDArray, lo_key: NDArray, hi_key: NDArray
) -> NDArray:
    """For each [lo_key, hi_key] (inclusive): the largest value among keys in it (-inf if none).

    Windows hold a few candidates, so a loop over offsets is short.
    """
    lo = np.searchsorted(sorted_keys, lo_key, side="left")
    hi = np.searchsorted(sorted_keys, hi_key, side="right")
    out = np.full(len(lo), -np.inf)
    for o in range(int((hi - lo).max(initial=0))):
        idx = lo + o
        ok = idx < hi
        out[ok] = np.maximum(out[ok], values[idx[ok]])
    return out


def _repeats(wave: NDArray, lag: int) -> bool:
    """Does the window hold the same waveform twice, ``lag`` apart (a doublet)?

    Two discharges of one unit that the threshold sees as two segments share
    an onset like the halves of one potential do, but they repeat: the comb
    inverse at their lag explains part of the window (less energy than the
    window), whereas for two phases of one potential it only adds echoes (on
    simulated pairs, ratios 0.6-1.1 against 2-7, at 12 and 20 dB).  Both
    candidates' windows must say so: one centred on a small first phase may
    hold a larger later phase that the inverse happens to reduce.  Below
    ~6 dB the echoes of the noise alone exceed that, so split doublets are
    merged there (subtracting the expected noise energy let split potentials
    through instead: the estimate is too noisy for a short window).
    """
    if not 0 < lag < len(wave):
        return False
    w = np.asarray(wave, np.float64)
    inv = comb_inverse(w, int(lag))
    return float((inv * inv).sum()) < REPEAT_ENERGY_RATIO * float((w * w).sum())


def _one_potential(st: PipelineState, ix: _RecentIndex, key: NDArray) -> tuple[NDArray, NDArray]:
    """For each candidate key (``site · _SITE_KEY + peak``): (is it the smaller part of a
    potential cut in two, the largest p-p the filter can ring at it after its site's
    earlier potentials).

    *Cut in two*: a potential whose middle phases dip below the threshold for
    longer than the refractory bridge gives two segments; the second one's onset
    (its first clear deflection before its peak, on its own best channel) then
    is the potential's start, the first one's onset.  A potential that follows
    starts later (its onset may be pulled back into the tail or ringing of the
    one before, not to its start).  The larger candidate stands for the
    potential, unless the two are one waveform repeated (``_repeats``: a
    doublet whose discharges the threshold separated).

    *Ringing*: ``ring_amp · env[lag]`` (``env`` from ringing.py, the filter in
    use) from each earlier candidate of the site that is not part of the same
    potential, the lag counted from its ``ring_peak`` (a doublet's later discharge).
    """
    rp = st.recent_peaks
    n = len(rp)
    shadowed = np.zeros(len(key), bool)
    bound = np.zeros(len(key))
    if n == 0:
        return shadowed, bound
    # Neighbours recorded without shape measures (if any) take no part in this test.
    start = np.fromiter((r.get("start_far", -1) for _, _, r in rp), np.int64, n)
    known = np.fromiter(("start_far" in r for _, _, r in rp), bool, n)
    # Span of the doublet a candidate's window was resolved into (-1: none).
    res = [r.get("resolved") or (-1, -1) for _, _, r in rp]
    res_lo = np.fromiter((a for a, _ in res), np.int64, n)
    res_hi = np.fromiter((b for _, b in res), np.int64, n)
    me = ix.by_key[np.searchsorted(ix.k_sorted, key)]  # each key is a recent candidate
    # Cut in two: same-site candidates whose peaks are close enough to overlap.
    reach = st.max_pot_n + st.half_n
    lo = np.searchsorted(ix.k_sorted, key - reach, side="left")
    hi = np.searchsorted(ix.k_sorted, key + reach, side="right")
    pairs = []
    maybe = []  # grid pairs close enough to be one potential, if on shared electrodes
    grid = st.grid_site[ix.sites]
    for o in range(int((hi - lo).max(initial=0))):
        ok = np.flatnonzero(lo + o < hi)
        j, m = ix.by_key[lo[ok] + o], me[ok]
        # one potential: the later one's onset at or before the earlier one's
        later_j = ix.peaks[j] > ix.peaks[m]
        overlap = np.where(later_j, start[j] <= start[m], start[m] <= start[j])
        overlap |= (res_lo[j] <= ix.peaks[m]) & (ix.peaks[m] < res_hi[j])
        overlap &= (j != m) & known[j] & known[m]
        larger = (ix.amps[j] > ix.amps[m]) | (
            (ix.amps[j] == ix.amps[m]) & (ix.peaks[j] < ix.peaks[m])
        )
        hit = np.flatnonzero(overlap & larger)
        pairs += zip(ok[hit].tolist(), j[hit].tolist(), m[hit].tolist(), strict=True)
        near = (j != m) & known[j] & known[m] & larger & ~overlap & grid[m]
        near &= np.abs(ix.peaks[j] - ix.peaks[m]) <= st.half_pot_n
        hit = np.flatnonzero(near)
        maybe += zip(ok[hit].tolist(), j[hit].tolist(), m[hit].tolist(), strict=True)
    # Grids: a potential's first phase may cross the threshold on one electrode
    # and its main phase, a few ms later (conduction), on others: two candidates
    # whose onsets, each measured on its own best electrode, do not overlap.
    # Peaks less than half a potential apart on shared electrodes are one
    # potential (two potentials there overlap too much to be told apart).
    for i, j, m in maybe:
        if _same_place(st, rp[j][2], rp[m][2]):
            pairs.append((i, j, m))
    for i, j, m in pairs:  # rare: a few per minute
        lag = abs(int(ix.peaks[j] - ix.peaks[m]))
        if shadowed[i]:
            continue
        if rp[j][2].get("lone") or rp[j][2].get("noise"):
            continue  # a noise crossing stands for no potential (see _decide)
        # A larger candidate already resolved into both discharges of a doublet
        # stands for both: a smaller one within it is one of them found again (on a
        # grid, from another electrode, a few ms off: both were counted twice).
        if res_lo[j] <= ix.peaks[m] < res_hi[j] or not (
            _repeats(rp[m][2]["near_wave"], lag) and _repeats(rp[j][2]["near_wave"], lag)
        ):
            shadowed[i] = True
    # Ringing of earlier potentials (strictly before, by their ring peak), plus the
    # noise riding on it where it is large enough to be found at all.
    env = st.ring_env
    srcs = np.array([r[:4] for r in st.ring_sources], np.float64).reshape(-1, 4)
    src = srcs[:, 1].astype(np.int64) * _SITE_KEY + srcs[:, 0].astype(np.int64)
    amp, src_start = srcs[:, 2], srcs[:, 3].astype(np.int64)
    # On a grid the filter rings on each electrode with what that electrode saw: a
    # source's ringing on the candidate's electrode is bounded by its p-p there.
    elec = [r[4] for r in st.ring_sources]
    slot = np.array([rp[k][2]["best_slot"] for k in me.tolist()], np.int64)
    slot[~st.grid_site[ix.sites[me]]] = -1
    order = np.argsort(src, kind="stable")
    src_k = src[order]
    lo = np.searchsorted(src_k, key - (len(env) - 1), side="left")
    hi = np.searchsorted(src_k, key, side="left")
    for o in range(int((hi - lo).max(initial=0))):
        ok = np.flatnonzero(lo + o < hi)
        j, m = order[lo[ok] + o], me[ok]
        apart = start[m] > src_start[j]  # not the same potential (as above)
        # ... nor a discharge of the doublet this candidate was resolved into
        src_pk = srcs[j, 0].astype(np.int64)
        apart &= ~((res_lo[m] <= src_pk) & (src_pk < res_hi[m]))
        lag = key[ok] - src_k[lo[ok] + o]
        amp_j = amp[j]
        for q in np.flatnonzero(slot[ok] >= 0).tolist():  # same site: a grid source
            amp_j[q] = elec[j[q]][slot[ok[q]]]
        bound[ok] = np.maximum(bound[ok], np.where(apart, amp_j * env[lag], 0.0))
    # Noise rides on the ringing, but only matters where the ringing with a
    # common noise peak (2 SDs) can reach the threshold at all; below that, a
    # candidate is a potential (at 6 dB a flat allowance lost potentials after
    # large ones that ringing could never have made).
    sd = np.array([rp[k][2]["noise_uv"] for k in me.tolist()], np.float64)
    thr = _threshold(st.cfg, sd)
    reach = bound / 2 + 2 * sd >= thr
    bound = np.where(reach, bound + RING_NOISE_PP_SD * sd, bound)
    return shadowed, bound


BUSY_WINDOW_S = 300.0  # a site's rate of clear potentials is counted over the last 5 min
BUSY_MIN_COUNT = 10  # ... and trusted from this many on
BUSY_MIN_SPAN_S = 60.0  # ... over at least this long


def _busy_level(st: PipelineState, s: int, peak: int) -> float:
    """Noise-test level for a candidate at site ``s``, given how busy the site is.

    The strict level (``fasc_noise_per_h``) lets noise through about once per
    channel-hour, whatever the site does.  Where a site fires clear potentials
    (those passing the strict level) at ``R`` per hour, noise crossings at
    ``λ`` per channel-hour on its ``k`` electrodes are a share ``k·λ / R`` of
    what is counted there; holding that share at ``fasc_fdr`` (a false
    discovery rate, as Benjamini & Hochberg's) allows
    ``λ = fasc_fdr · R / k``, and Rice's formula ``λ ∝ exp(-u²/2)`` gives the
    lower level ``u = √(u₁² − 2 ln(λ/λ₁))``.  A quiet site (a healthy muscle)
    keeps the strict level; only the potentials before ``peak`` count, so the
    result does not depend on chunking (decisions at a site run in time order).
    """
    u1 = st.wav_level
    r1 = st.cfg.fasc_noise_per_h or 0.0
    if not st.cfg.fasc_fdr or not r1:
        return u1
    pks = st.clear_peaks[s]
    n = bisect.bisect_left(pks, peak) - bisect.bisect_left(pks, peak - st.busy_window_n)
    if n < BUSY_MIN_COUNT:
        return u1
    # Early in a recording the window reaches back to its start only (at least a minute).
    span_s = min(BUSY_WINDOW_S, max(BUSY_MIN_SPAN_S, peak / st.fs))
    rate_h = n * 3600.0 / span_s
    allowed = st.cfg.fasc_fdr * rate_h / max(1, len(st.site_chs[s]))
    if allowed <= r1:
        return u1
    return float(np.sqrt(max(u1 * u1 - 2.0 * np.log(allowed / r1), 0.0)))


def _same_place(st: PipelineState, a: dict, b: dict) -> bool:
    """Do two grid candidates lie under the same electrodes?

    Each one's waveform is carried, beyond the noise, by the other's largest
    electrode (``field``, from ``_grid_tests``; the same bound as the support
    test), or they share an electrode that saw them.
    """
    if set(a.get("channels", ())) & set(b.get("channels", ())):
        return True
    fa, fb = a.get("field"), b.get("field")
    if fa is None or fb is None:
        return False
    bound = support_bound(len(st.site_chs[a["site_i"]]), st.support_lag_n)
    return bool(fa[b["best_slot"]] >= bound or fb[a["best_slot"]] >= bound)


_SITE_KEY = np.int64(2**40)  # site * _SITE_KEY + sample orders candidates by site, then time


@dataclass
class _RecentIndex:
    """Recent candidates (``st.recent_peaks``) as arrays, sorted for window queries."""

    peaks: NDArray
    sites: NDArray
    amps: NDArray
    by_time: NDArray  # order by peak
    t_sorted: NDArray
    by_key: NDArray  # order by (site, peak)
    k_sorted: NDArray


def _recent_index(st: PipelineState) -> _RecentIndex:
    rp = st.recent_peaks
    n = len(rp)
    peaks = np.fromiter((p for p, _, _ in rp), np.int64, n)
    sites = np.fromiter((s for _, s, _ in rp), np.int64, n)
    amps = np.fromiter((r["amplitude_uv"] for _, _, r in rp), np.float64, n)
    by_time = np.argsort(peaks, kind="stable")
    key = sites * _SITE_KEY + peaks
    by_key = np.argsort(key, kind="stable")
    return _RecentIndex(peaks, sites, amps, by_time, peaks[by_time], by_key, key[by_key])


FAR_FIELD_RATIO = 0.3  # grid: a quarter of the electrodes see >= this share of the largest


def _grid_windows(st: PipelineState, tab: NDArray, peak: NDArray) -> NDArray:
    """(n, k, 2 half_n) window of every electrode ``tab`` of each candidate around its peak."""
    n, k = tab.shape
    w = _gather(st, tab.ravel(), np.repeat(peak, k) - st.half_n, 2 * st.half_n)
    return w.reshape(n, k, -1)


def _far_field(w: NDArray) -> NDArray:
    """Grid candidates whose waveform is present on nearly every electrode.

    Each electrode's window around the peak is projected on the grid's mean
    waveform (a matched filter: it integrates the whole complex, so noise
    matters much less than in a p-p).  A far-field source (the QRS over a
    proximal muscle, a motion artefact) projects about equally on all
    electrodes; a motor unit's field decays within a few electrode spacings,
    so the electrodes of the lower quarter see a small fraction of the
    largest.  At 6 dB a 30-50 µV QRS crosses 5σ on one electrode or another
    at nearly every beat; its p-p on the other electrodes is mostly noise,
    but its projection is not.
    """
    w = w.astype(np.float64)
    m = w.mean(axis=1)
    norm = np.sqrt((m * m).sum(axis=1))
    proj = np.einsum("nkl,nl->nk", w, m) / np.where(norm > 0, norm, 1.0)[:, None]
    top = proj.max(axis=1)
    return (norm > 0) & (np.percentile(proj, 25, axis=1) >= FAR_FIELD_RATIO * top)


def _grid_tests(st: PipelineState, w: NDArray, sd: NDArray, best: NDArray) -> tuple:
    """(lone noise crossing, far field with any sign, field) of grid candidates (grid.py).

    ``w``: their electrode windows (``_grid_windows``), ``sd``: (n, k) noise SD of
    each electrode, ``best``: slot of the largest electrode.
    """
    # The candidate's waveform is its peak +- half a potential.
    thr = _threshold(st.cfg, sd[np.arange(len(w)), best])
    return grid_tests(w, sd, best, st.half_pot_n, st.support_lag_n, thr)


def _outsizes_beat(p: dict) -> bool:
    """Is a candidate in a heart beat's window too large to be part of that beat?

    The QRS keeps its size at a site from beat to beat (``ecg.AMP_RATIO``);
    a potential more than that much larger than the site's tracked beats
    (their p-p over the whole complex) is a potential of its own that
    happens to fall on the beat, and is judged like any other.  Without a
    tracked rhythm at the site its QRS size is unknown and the window holds.
    """
    pp = p.get("beat_pp", 0.0)
    return pp > 0 and p["amplitude_uv"] > AMP_RATIO * pp


def _heart_explained(st: PipelineState, ix: _RecentIndex) -> NDArray:
    """Per recent candidate (``ix`` order): part of a heart beat the trackers found.

    A candidate on an ECG site counts when a tracked beat of any ECG site lies
    within ``qrs_n[0]`` before to ``BEAT_LOOKAHEAD_MS`` after it (the QRS is
    one event for the whole trunk; a site's tracker may have taken the R or the
    S wave as its peak), and it is not too large to be its site's QRS
    (``_outsizes_beat``: a motion artefact that happens to fall on a beat).  Only labels already final are read: beats up to the
    look-ahead are measured once the common-mode flag is due (``_decide``).
    """
    n = len(ix.peaks)
    if n == 0 or not st.cfg.ecg_reject:
        return np.zeros(n, bool)
    on_ecg = st.ecg_site[ix.sites]
    ecg_arr = np.fromiter((r["ecg"] for _, _, r in st.recent_peaks), bool, n)
    tracked = on_ecg & ecg_arr
    lo, hi = ix.peaks - st.qrs_n[0], ix.peaks + st.beat_ahead_n
    near = _near_long_beat(st, lo, hi)
    if tracked.any():
        near |= _window_any(ix.t_sorted, tracked[ix.by_time], lo, hi)
    big = np.fromiter((_outsizes_beat(r) for _, _, r in st.recent_peaks), bool, n)
    return on_ecg & near & ~big


def _near_long_beat(st: PipelineState, lo: NDArray, hi: NDArray) -> NDArray:
    """For each [lo, hi] (inclusive): does a long trunk segment taken as a beat lie in it?"""
    if not st.long_beats:
        return np.zeros(len(lo), bool)
    t = np.asarray(st.long_beats, np.int64)  # appended in time order per site: sort
    t.sort()
    return _window_any(t, np.ones(len(t), bool), lo, hi)


def _in_ongoing_activity(st: PipelineState, s: int, peak: int) -> bool | None:
    """Is ``peak`` a discharge of sustained activity already going on at site ``s``?

    Covered by sustained activity (``_covered_by_sustained``) that started at
    least ``isolated_ms`` before it.  Activity that starts with the potential
    may be the artefact itself (a large motion transient rings the filters for
    long enough to make a short run of activity) and explains nothing.  None
    while unknown: an open run may still be chained back to earlier discharges.
    """
    cov = _covered_by_sustained(st, s, peak)
    if not cov:
        return cov
    first = peak // st.bin_n - _brief_bins(st)
    m_after = st.after_bins
    for a, b in reversed(st.sustained[s]):
        if b + m_after <= first:
            break
        if a <= first:
            return True
    rs = int(st.run_start[s])
    if rs >= 0:
        return True if rs <= first else None
    return False


def _seen_widely(
    st: PipelineState, ix: _RecentIndex, pk: NDArray, final: bool = True
) -> list[bool | None]:
    """For each peak: candidates at >= the common-mode number of sites within ±cm_n,
    or, counting those below the counting floor too (``st.witnesses``), at a third
    of the sites.

    Only potentials nothing else explains are witnesses of a common-mode
    artefact:

    - not heart beats (``_heart_explained``): the QRS is seen at the same
      instant on every trunk site by nature, and a fasciculation elsewhere
      that happens to coincide with it (about 1 % of the time at 70 bpm) is
      not made common-mode by it.  A QRS the trackers missed still counts, so
      untracked beats on several trunk sites are still rejected;
    - not discharges of sustained activity going on at their own site
      (``_in_ongoing_activity``): a cramp fires tens of potentials per second,
      so a fasciculation elsewhere coincides with discharges at the cramping
      sites within milliseconds many times a minute (simulated calf cramp
      spreading to a second calf site: half the missed fasciculations of the
      run).

    Whether a witness lies in sustained activity is known a little later
    than the candidates; until it is, the answer may be None (undecided),
    unless ``final``.  Only a window holding enough candidates can qualify;
    those few are checked one by one.
    """
    n_sites = len(st.site_keys)
    cm_need = max(2, min(st.cfg.common_mode_sites, math.ceil(n_sites / 2)))
    # Counting the candidates below the counting floor too (st.witnesses), the
    # artefact must reach a third of the sites: those small deflections include
    # late phases and filter ringing of potentials, which stretch each site's
    # chance of coinciding (at 3 sites, simulated ALS at 12-20 dB lost 0.4 % of
    # its potentials to them).
    wide_need = max(cm_need + 1, math.ceil(n_sites / 3))
    wit = np.array(st.witnesses, np.int64).reshape(-1, 2)
    t_all = np.concatenate([ix.t_sorted, wit[:, 0]])
    order = np.argsort(t_all, kind="stable")
    t_all = t_all[order]
    lo = np.searchsorted(t_all, pk - st.cm_n, side="left")
    hi = np.searchsorted(t_all, pk + st.cm_n, side="right")
    n_rec = np.searchsorted(ix.t_sorted, pk + st.cm_n, side="right") - np.searchsorted(
        ix.t_sorted, pk - st.cm_n, side="left"
    )
    wide = (n_rec >= cm_need) | (hi - lo >= wide_need)  # enough witnesses to qualify
    lo, hi = lo.tolist(), hi.tolist()
    if n_sites < 2 or not wide.any():
        return [False] * len(lo)
    # Witness sites in time order; heart beats get site -1 (never a witness).
    s_rec = np.where(_heart_explained(st, ix), -1, ix.sites)[ix.by_time]
    s_sorted = np.concatenate([s_rec, wit[:, 1]])[order].tolist()
    small = (order >= len(s_rec)).tolist()  # below the counting floor
    p_sorted = t_all.tolist()
    out: list[bool | None] = []
    for a, b, w in zip(lo, hi, wide.tolist(), strict=True):
        if w:
            # Sites free of activity count fully; sites in ongoing sustained activity
            # count half (or, undecided, up to half): they fire constantly, so their
            # coincidence is weak evidence on its own.  Tallied for the counted
            # candidates alone and for all of them.
            tally = [(set(), set(), set()), (set(), set(), set())]
            for s, t, sm in zip(s_sorted[a:b], p_sorted[a:b], small[a:b], strict=True):
                if s < 0 or (s in tally[1][0] and (sm or s in tally[0][0])):
                    continue
                on = _in_ongoing_activity(st, s, t)
                kind = 2 if on is None and not final else 1 if on else 0
                for free_busy_maybe in tally[1:] if sm else tally:
                    free_busy_maybe[kind].add(s)
            w = False
            for (free, busy, maybe), need in zip(tally, (cm_need, wide_need), strict=True):
                busy -= free
                maybe -= free | busy
                low = len(free) + 0.5 * len(busy)
                if low >= need:
                    w = True
                    break
                if low + len(maybe) >= need:
                    w = None  # depends on witnesses whose activity is not yet known
        out.append(w)
    return out


def _neighbour_tests(
    st: PipelineState, ix: _RecentIndex, pk_p: NDArray, site_p: NDArray
) -> tuple[list, list, list]:
    """Per candidate: (the amplitude below which it is a phase or the ringing of a larger
    same-site potential, a heart beat within the QRS window, a common-mode candidate of
    its site within the artefact window).
    Beats and common-mode flags are those known now (``r["cm"]``); a beat or
    artefact only counts if it could have made the candidate (``_outsizes_neighbours``)."""
    rp = st.recent_peaks
    n_rp = len(rp)
    cm_arr = np.fromiter((r.get("cm", False) for _, _, r in rp), bool, n_rp)
    ecg_arr = np.fromiter((r["ecg"] for _, _, r in rp), bool, n_rp)
    beat = st.ecg_site[ix.sites] & (ecg_arr | cm_arr) if n_rp else np.zeros(0, bool)
    qrs_pre, qrs_post = st.qrs_n
    kp = site_p * _SITE_KEY + pk_p
    # Phases after a larger peak (its phases before it are found by their onset,
    # see _one_potential).
    ring_max = _window_max(ix.k_sorted, ix.amps[ix.by_key], kp - st.ring_n_samples, kp - 1)
    shadowed, ringing = _one_potential(st, ix, kp)
    ring_lim = np.maximum(ring_max * RING_RATIO, ringing)
    ring_lim[shadowed] = np.inf
    beat_near = _window_any(ix.t_sorted, beat[ix.by_time], pk_p - qrs_pre, pk_p + qrs_post)
    long_near = _near_long_beat(st, pk_p - qrs_pre, pk_p + qrs_post)
    cm_near = _window_any(ix.k_sorted, cm_arr[ix.by_key], kp - st.art_n[1], kp + st.art_n[0])
    on_grid = st.grid_site[site_p]
    for i in np.flatnonzero((beat_near | cm_near) & ~long_near & on_grid).tolist():
        if _outsizes_neighbours(st, ix, beat, cm_arr, st.pending[i]):
            beat_near[i] = cm_near[i] = False
    return ring_lim.tolist(), (beat_near | long_near).tolist(), cm_near.tolist()


def _outsizes_neighbours(
    st: PipelineState, ix: _RecentIndex, beat: NDArray, cm: NDArray, p: dict
) -> bool:
    """Is a grid candidate too large to be part of the beats and artefacts around it?

    Only a grid can tell.  The tail of a common-mode artefact (its later
    phases, its ringing) and the waves of a heart beat are not much larger
    than the artefact or the beat itself on the same electrode (``AMP_RATIO``,
    as ``_outsizes_beat``), and a grid measures the neighbour's p-p on the
    candidate's own electrode: a QRS is seen by every electrode at a similar,
    small size, while a motor unit's potential is focal, so a potential
    several times the QRS on its electrodes is a potential that happens to
    fall near a beat.  On one or two electrodes an artefact's later phases
    may well outgrow its first crossing (allowing it there added 7 false
    fasciculations per 10 min on simulated healthy and cramp recordings with
    motion artefacts), and a beat of another site tells nothing of the size
    here: both still explain the candidate.
    """
    pk, s, amp = p["peak"], p["site_i"], p["amplitude_uv"]
    qrs_pre, qrs_post = st.qrs_n
    lo = int(np.searchsorted(ix.t_sorted, pk - max(qrs_pre, st.art_n[1]), side="left"))
    hi = int(np.searchsorted(ix.t_sorted, pk + max(qrs_post, st.art_n[0]), side="right"))
    largest = 0.0
    for o in ix.by_time[lo:hi].tolist():
        d = int(ix.peaks[o]) - pk
        is_beat = beat[o] and -qrs_pre <= d <= qrs_post
        is_art = cm[o] and -st.art_n[1] <= d <= st.art_n[0] and ix.sites[o] == s
        if not (is_beat or is_art):
            continue
        if ix.sites[o] != s:
            return False  # a beat of another site: its size here is unknown
        r = st.recent_peaks[o][2]
        if r is p:
            continue
        # every recorded candidate of a grid site carries its p-p per electrode (_measure)
        largest = max(largest, float(r["elec_pp"][p["best_slot"]]))
    return amp > AMP_RATIO * largest


SPLIT_MIN_COUNT = 10  # doublet splits at one lag (in the busy window) before it is a pattern
SPLIT_LAG_MS = 0.5  # ... within this of each other
SPLIT_SHARE = 0.5  # ... at least this share of the site's splits
SPLIT_OF_COUNTED = 0.3  # ... and their two parts this share of the site's counted potentials


def _repeating_pattern(st: PipelineState, s: int, peak: int, lag: int) -> bool:
    """Is a doublet split at site ``s`` the repeating pattern of one polyphasic potential?

    The comb inverse (doublets.py) takes a potential whose phases repeat at
    some period for two discharges that period apart.  Two discharges of a
    unit follow at intervals that vary from one doublet to the next (5-20 ms,
    jitter of a millisecond or more), and doublets are a small part of a unit's
    discharges, while a potential's own pattern repeats at the same lag every
    time the unit fires: a simulated 9-phase unit was split 8.8 ms apart in 130
    of its ~140 discharges, and those parts were 46-74 % of the potentials
    counted at its site.  When the site's recent splits (over the busy window,
    decided in time order: the same for any chunking) are mostly at this lag,
    at least ``SPLIT_MIN_COUNT`` of them, and their parts are a large share of
    what the site counts, the candidate is one potential.  (Simulated units
    whose long potentials make every doublet 15 ms apart reach the count but
    only 8-16 % of their site's potentials: their doublets stay.)  The split
    is recorded either way.
    """
    hist = st.splits[s]
    since = peak - st.busy_window_n
    while hist and hist[0][0] < since:
        hist.pop(0)
    one = _looks_repeated(st, s, peak, lag)
    hist.append((peak, lag))
    return one


def _looks_repeated(st: PipelineState, s: int, peak: int, lag: int) -> bool:
    """``_repeating_pattern``'s answer from the splits recorded so far (nothing recorded)."""
    since = peak - st.busy_window_n
    hist = [d for p, d in st.splits[s] if p >= since]
    tol = int(round(SPLIT_LAG_MS * 1e-3 * st.fs))
    same = sum(abs(d - lag) <= tol for d in hist)
    if same < SPLIT_MIN_COUNT or same < SPLIT_SHARE * len(hist):
        return False
    pks = st.clear_peaks[s]
    counted = bisect.bisect_left(pks, peak) - bisect.bisect_left(pks, since)
    return 2 * same >= SPLIT_OF_COUNTED * counted


MOVEMENT_MIN_ARTEFACTS = 3  # common-mode artefacts of a site in continual succession: a movement


def _movement_window(st: PipelineState) -> tuple[int, int]:
    """Samples before and after a candidate whose site's candidates ``_in_movement`` reads.

    A run that covers the candidate has its first (or last)
    ``MOVEMENT_MIN_ARTEFACTS`` members within two links (``isolated_ms``) of
    the margins around it.  The flags that make those members tails reach
    ``ARTEFACT_MS`` further: 100 ms before, 30 ms after.
    """
    link = 2 * _brief_bins(st) * st.bin_n
    return st.after_bins * st.bin_n + link, st.margin_bins * st.bin_n + link


def _movement_reach(st: PipelineState) -> int:
    """How far after a candidate the common-mode flags must be known for ``_in_movement``
    (0 with one site: no candidate is flagged across sites there)."""
    if len(st.site_keys) < 2:
        return 0
    return _movement_window(st)[1] + st.art_n[0]


def _in_movement(st: PipelineState, s: int, peak: int) -> bool:
    """Does ``peak`` lie in a movement at site ``s``, seen as a run of common-mode artefacts?

    A movement of the body makes several muscles fire for a few hundred ms.
    Their motor units fire independently, so only some of a site's discharges
    coincide with discharges elsewhere and are taken for common-mode
    artefacts; the others, before, between and after those, look like
    fasciculations.  A site's artefacts are its candidates flagged
    common-mode and those within such a flag's window (``ARTEFACT_MS``, its
    tail).  When they follow one another as continual firing
    (``MOVEMENT_MIN_ARTEFACTS`` or more, each less than ``isolated_ms`` after
    the last, by the 250-ms rule), the span they cover is treated like
    sustained activity, with its margins (``SUSTAINED_MARGIN_S`` before,
    ``SUSTAINED_AFTER_S`` after).  The run must last longer than one
    artefact's window: a motion transient and its ringing are flagged
    several times within ~50 ms at each site (simulated, 3-4 flags spanning
    50-56 ms) and are no movement.  Needs the site's flags up to
    ``_movement_reach`` after ``peak``.
    """
    flags = st.cm_peaks[s]
    if not flags:
        return False
    link = _brief_bins(st) * st.bin_n
    before, after = st.margin_bins * st.bin_n, st.after_bins * st.bin_n
    pre, post = st.art_n
    back, ahead = _movement_window(st)
    lo_t, hi_t = peak - back, peak + ahead
    f = flags[bisect.bisect_left(flags, lo_t - post) : bisect.bisect_right(flags, hi_t + pre)]
    if not f:
        return False
    pks = st.site_peaks[s]
    cand = np.array(pks[bisect.bisect_left(pks, lo_t) : bisect.bisect_right(pks, hi_t)], np.int64)
    fa = np.array(f, np.int64)
    # Candidates in a flag's window, from ``pre`` before it to ``post`` after it:
    # a flag from ``post`` before the candidate to ``pre`` after it.
    k = np.searchsorted(fa, cand - post, side="left")
    tail = (k < len(fa)) & (fa[np.minimum(k, len(fa) - 1)] <= cand + pre)
    w = np.union1d(cand[tail], fa[(fa >= lo_t) & (fa <= hi_t)]).tolist()
    first = 0
    for k in range(1, len(w) + 1):
        if k == len(w) or w[k] - w[k - 1] > link:
            long = w[k - 1] - w[first] > pre + post  # more than one artefact's window
            if (
                k - first >= MOVEMENT_MIN_ARTEFACTS
                and long
                and w[first] - before <= peak < w[k - 1] + after
            ):
                return True
            first = k
    return False


def _near_clipping(st: PipelineState, p: dict) -> bool:
    """Does candidate ``p`` touch a clipped run of its channel, or lie within its tail?

    A clipped run bends the signal where it meets and leaves the rail: the
    filter's response there is the artefact's tail, as after a common-mode one
    (a simulated swing into the rail left a 60-µV "potential" as it came out,
    0.08 s before the swing ended).
    """
    a, b = p["start"] - st.art_n[1], p["stop"] + st.art_n[0]
    return any(e > a and x < b and why == "clipped" for x, e, why in st.excl[p["best_ch"]])


def _decide(st: PipelineState, final: bool) -> None:
    if not st.pending:
        return
    st.pending.sort(key=lambda p: p["peak"])
    cfg = st.cfg
    # Common-mode flags are due once every candidate within cm_n, and the heart
    # beats that may explain those (``_heart_explained``), have been measured.
    cm_known = st.seg_frontier - st.cm_n - st.max_pot_n - st.beat_ahead_n
    horizon = cm_known - max(st.qrs_n[1], st.art_n[0])
    rp = st.recent_peaks
    ix = _recent_index(st)
    # Common-mode flag of every candidate whose neighbourhood is fully segmented.
    todo = [i for i, (pk, _s, r) in enumerate(rp) if "cm" not in r and (pk <= cm_known or final)]
    if todo:
        wide = _seen_widely(st, ix, ix.peaks[todo], final)
        for i, w in zip(todo, wide, strict=True):
            if w is not None or rp[i][2]["uniform"]:
                rp[i][2]["cm"] = bool(w or rp[i][2]["uniform"])
                if w:  # seen at other sites (not a grid's far field): _in_movement
                    bisect.insort(st.cm_peaks[rp[i][1]], int(rp[i][0]))
    # A decision reads the flags of its neighbours (tail of an artefact, heart beat):
    # it waits for any of them still undecided.
    ready = np.fromiter(("cm" in r for _, _, r in rp), bool, len(rp))
    # ... and for the site's flags far enough ahead to see a movement (_in_movement).
    flagged_to = int(ix.peaks[~ready].min()) if not ready.all() else cm_known
    move_horizon = min(cm_known, flagged_to) - _movement_reach(st)
    # Neighbourhood tests of every pending candidate at once (they only read rp).
    n_p = len(st.pending)
    pk_p = np.fromiter((p["peak"] for p in st.pending), np.int64, n_p)
    site_p = np.fromiter((p["site_i"] for p in st.pending), np.int64, n_p)
    ring_lim, beat_near, cm_near = _neighbour_tests(st, ix, pk_p, site_p)
    waiting = np.zeros(n_p, bool)
    if not ready.all():
        before, after = max(st.art_n[1], st.qrs_n[0]), max(st.art_n[0], st.qrs_n[1])
        waiting = _window_any(ix.t_sorted, ~ready[ix.by_time], pk_p - before, pk_p + after)
    waiting = waiting.tolist()
    keep = []
    blocked_sites: set = set()
    for i, p in enumerate(st.pending):
        s = p["site_i"]
        if s in blocked_sites:
            keep.append(p)
            continue
        cov = _covered_by_sustained(st, s, p["peak"])
        if cov is None and final:
            cov = False
        late = p["peak"] > horizon or p["peak"] > move_horizon or waiting[i]
        if cov is None or (not final and late):
            keep.append(p)
            blocked_sites.add(s)  # keep time order per site
            continue
        if cov:
            continue  # inside sustained activity: not a fasciculation, not counted
        if p.get("lone"):
            continue  # a grid's noise crossing on one electrode (_grid_tests): no potential
        if ring_lim[i] > p["amplitude_uv"]:
            continue  # a phase or the ringing of a larger potential next to it: same potential
        reason = None
        if cfg.ecg_reject and st.ecg_site[s]:
            if p["ecg"] or (beat_near[i] and not _outsizes_beat(p)):
                reason = "ecg"
        if reason is None and (p.get("cm", False) or cm_near[i] or _in_movement(st, s, p["peak"])):
            reason = "common-mode"
        if reason is None and _near_clipping(st, p):
            reason = "clipped"
        if reason is None and p["noise"] and p["score"] < _busy_level(st, s, p["peak"]):
            continue  # a noise crossing, not a potential (wavelets.py): not an event
        p["kind"] = "fasciculation" if reason is None else "artifact"
        p["reason"] = reason or "n/a"
        p.pop("ecg_done", None)
        parts = p.pop("doublet", None)
        if p["kind"] != "fasciculation":
            parts = None  # an artefact is one event, whatever its shape
        elif parts and _repeating_pattern(st, s, p["peak"], parts[1]["peak"] - parts[0]["peak"]):
            parts = None  # a polyphasic potential, not two discharges
        for q in parts or [p]:
            q["kind"], q["reason"] = p["kind"], p["reason"]
            q.pop("ecg_done", None)
            if q["kind"] == "fasciculation":
                # A potential found again from a neighbouring segment (one copy of a
                # doublet seen on its own) is counted once.
                recent = st.emitted[s]
                if any(abs(q["peak"] - r) <= st.bridge_n for r in recent):
                    continue
                recent.append(q["peak"])
                del recent[:-16]
                if not q["noise"]:
                    bisect.insort(st.clear_peaks[s], q["peak"])
                st.waveforms[s].add(len(st.events) + len(st.out), q["wave"])
            q.pop("doublet", None)
            q.pop("wave", None)  # decided: the waveform is no longer needed (bounded memory)
            st.out.append(q)
    st.pending = keep
    # Forget candidate peaks that can no longer be coincident with anything undecided.
    first = min((p["peak"] for p in keep), default=st.seg_frontier)
    oldest = first - 4 * st.cm_n - max(st.qrs_n[0], st.art_n[1])
    if st.recent_peaks and st.recent_peaks[0][0] < oldest:
        st.recent_peaks = [rp for rp in st.recent_peaks if rp[0] >= oldest]
    if st.witnesses:
        st.witnesses = [w for w in st.witnesses if w[0] >= oldest]
    oldest_move = first - _movement_window(st)[0] - st.art_n[1]
    for pks in st.cm_peaks + st.site_peaks:
        if pks and pks[0] < oldest_move:
            del pks[: bisect.bisect_left(pks, oldest_move)]
    oldest_ring = first - len(st.ring_env)  # a source can ring on this far
    if st.ring_sources and st.ring_sources[0][0] < oldest_ring:
        st.ring_sources = [r for r in st.ring_sources if r[0] >= oldest_ring]
    if st.long_beats and min(st.long_beats) < oldest:
        st.long_beats = [t for t in st.long_beats if t >= oldest]
    # Clear potentials count toward a site's rate over the window before any undecided one.
    clear_from = first - st.busy_window_n
    for pks in st.clear_peaks:
        if pks and pks[0] < clear_from:
            del pks[: bisect.bisect_left(pks, clear_from)]
