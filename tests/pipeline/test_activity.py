"""Sustained activity: brief bursts, filter ringing, and the noise floor during weak activity."""

import numpy as np
import pytest

from emgtool.pipeline import core
from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording
from emgtool.sites import assign_sites

FS = 2048.0


def _spike(n_ms: float = 8.0) -> np.ndarray:
    """A biphasic potential of 1 µV peak-to-peak."""
    t = np.linspace(-2.5, 2.5, int(n_ms * FS / 1000))
    w = -t * np.exp(-(t**2))
    return w / (w.max() - w.min())


def _rec(x: np.ndarray) -> Recording:
    return Recording(x[None].astype(np.float32), FS, assign_sites(["Gastroc med L"]))


def _base(seconds: float, sigma_uv: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    # White noise plus a little 50 Hz hum, so the mains notches (which ring) are on.
    hum = 4.0 * np.sin(2 * np.pi * 50 * t) + 2.0 * np.sin(2 * np.pi * 150 * t)
    return rng.normal(0, sigma_uv, n) + hum


def _events(x):
    ev = analyze(_rec(x)).events
    return ev[ev["trial_type"] == "fasciculation"], ev[ev["trial_type"] == "voluntary"]


@pytest.fixture(scope="module")
def brief_twitch():
    rng = np.random.default_rng(3)
    x = _base(40.0, 15.0, seed=1)
    w = _spike()
    # A brief voluntary twitch: 12 units firing at ~15 pps for 0.35 s (shorter
    # than sustained_min_s, but continual firing throughout).
    a = int(20.0 * FS)
    for _ in range(12):
        amp = rng.uniform(100, 400)
        t = a + int(rng.uniform(0, 0.06) * FS)
        while t < a + int(0.35 * FS):
            x[t : t + len(w)] += amp * w
            t += int(rng.uniform(0.055, 0.075) * FS)
    return x


def test_brief_twitch_is_activity_not_fasciculations(brief_twitch):
    fasc, vol = _events(brief_twitch)
    inside = fasc["onset"].between(19.9, 20.45)
    assert not inside.any(), fasc[inside]
    assert ((vol["onset"] <= 20.05) & (vol["onset"] + vol["duration"] >= 20.3)).any(), vol


def test_single_large_potentials_still_count():
    """Their filter ringing (mains notches ring for ~0.2 s) is not continual firing."""
    x = _base(40.0, 2.0, seed=4)
    w = _spike()
    singles = [6.0, 10.0, 12.5, 16.2, 20.0, 24.4, 30.0, 33.3]
    for s in singles:
        i = int(s * FS)
        x[i : i + len(w)] += 1200.0 * w
    fasc, vol = _events(x)
    for s in singles:
        assert (np.abs(fasc["onset"] - s) < 0.02).any(), (s, fasc)
        assert not ((vol["onset"] <= s + 0.1) & (vol["onset"] + vol["duration"] >= s)).any()


def _weak_firing(x: np.ndarray, a: int, b: int, n_units: int, amp_uv: float, seed: int) -> None:
    """Add ``n_units`` motor units firing at 8-12 pps (jittered) over samples [a, b)."""
    rng = np.random.default_rng(seed)
    w = _spike()
    for _ in range(n_units):
        rate = rng.uniform(8.0, 12.0)
        t = a + int(rng.uniform(0, 1 / rate) * FS)
        amp = amp_uv * rng.uniform(0.7, 1.3)
        while t + len(w) < b:
            x[t : t + len(w)] += amp * w
            t += int(rng.normal(1 / rate, 0.1 / rate) * FS)


def test_noise_floor_does_not_climb_into_weak_activity():
    """Weak dense activity (active in only some 10-ms bins) keeps the rest noise floor."""
    sigma = 10.0
    x = _base(40.0, sigma, seed=2)
    a, b = int(10 * FS), int(38 * FS)
    # Six units firing at ~10 pps, each potential 4 sigma peak to peak: the 10-ms
    # RMS passes 2 sigma in ~1 bin of 10, and the SD of the 1-s blocks rises ~1.3x.
    _weak_firing(x, a, b, n_units=6, amp_uv=4 * sigma, seed=5)
    st = core.init_state(FS, assign_sites(["Gastroc med L"]))
    step = int(FS * 0.37)
    rec = _rec(x)
    for i in range(0, rec.n_samples, step):
        core.step(rec.slice(i, min(rec.n_samples, i + step)), st)
    core.flush(st)
    rest = float(core._sd_for_block(st, 9)[0])
    late = float(core._sd_for_block(st, 37)[0])
    # (white noise keeps ~430/1024 of its power in the 20-450 Hz band)
    assert rest == pytest.approx(sigma * np.sqrt(430 / 1024), rel=0.15)
    assert late < 1.2 * rest, (rest, late)


def test_cramp_edges_include_its_sparse_first_and_last_discharges():
    """A cramp starts and ends with single units firing ~6/s: continual, not isolated."""
    rng = np.random.default_rng(8)
    x = _base(40.0, 3.0, seed=6)
    w = _spike()
    first, last = 15.0, 23.0
    times = list(np.arange(first, first + 0.8, 0.16))  # recruitment: one unit at ~6 pps
    for _ in range(15):  # the full cramp: many units at 8-20 pps
        t = first + 0.8 + rng.uniform(0, 0.1)
        while t < last - 0.8:
            times.append(t)
            t += rng.uniform(0.05, 0.12)
    times += list(np.arange(last - 0.8, last, 0.16))  # derecruitment
    for t in times:
        i = int(t * FS)
        x[i : i + len(w)] += rng.uniform(150, 300) * w
    ev = analyze(_rec(x)).events
    cramp = ev[ev["trial_type"] == "cramp"]
    assert len(cramp) == 1, ev[ev["trial_type"] != "fasciculation"]
    onset, offset = cramp["onset"].iloc[0], cramp["onset"].iloc[0] + cramp["duration"].iloc[0]
    assert abs(onset - first) <= 0.1 and abs(offset - max(times)) <= 0.1, (onset, offset)
    fasc = ev[ev["trial_type"] == "fasciculation"]
    assert not fasc["onset"].between(first - 0.1, last + 0.1).any()


@pytest.mark.parametrize("fs", [250.0, 500.0])
def test_noise_is_not_sustained_activity_at_low_sampling_rates(fs):
    """A 10-ms bin holds 2 samples at 250 Hz: at a fixed 2σ its RMS crossed the level
    in one bin of 50 from noise alone, and with fasciculations among them a
    quarter of a quiet ALS recording became "sustained" (tibialis anterior: cramps
    for most of 5 minutes).  The level now follows the bin's degrees of freedom."""
    from emgtool.simulate import simulate

    rec, truth = simulate(
        "als-widespread", duration_s=120.0, seed=5, snr_db=12.0, fs=fs, nuisances={"pink", "white"}
    )
    ev = analyze(rec).events
    sustained = ev[ev.trial_type.isin(["cramp", "voluntary"])]
    true_s = truth[truth.trial_type.isin(["cramp", "voluntary"])].duration.sum()
    assert sustained.duration.sum() <= true_s + 2.0, sustained[["onset", "duration", "site"]]


@pytest.mark.parametrize("fs", [250.0, 2048.0])
def test_cramps_are_still_found_at_low_sampling_rates(fs):
    from emgtool.scoring import evaluate
    from emgtool.simulate import simulate

    rec, truth = simulate("cramps", duration_s=120.0, seed=3, snr_db=6.0, fs=fs)
    r = evaluate(analyze(rec).events, truth, duration_s=rec.duration_s)["cramp"]["overall"]
    assert r["n_true"] >= 2
    assert r["sensitivity"] == 1.0 and r["precision"] == 1.0, r


def test_activity_sd_sets_what_counts_as_sustained_activity():
    """``activity_sd`` is the level a 10-ms bin's RMS must exceed: weak, continual
    firing at ~3 noise SDs of RMS for 6 s is a cramp at the default 2, and nothing
    sustained once the level is raised above it."""
    from emgtool.config import DetectorConfig

    rng = np.random.default_rng(8)
    x = _base(30.0, 5.0, seed=2)
    a, b = int(12.0 * FS), int(18.0 * FS)
    x[a:b] += rng.normal(0, 14.0, b - a)  # in-band RMS ~3x the noise's: dense firing
    rec = _rec(x)

    def sustained(cfg):
        ev = analyze(rec, config=cfg).events
        return ev[ev["trial_type"].isin(["cramp", "voluntary"])]

    default = sustained(DetectorConfig())
    assert ((default["onset"] < 12.5) & (default["onset"] + default["duration"] > 17.5)).any()
    assert sustained(DetectorConfig(activity_sd=8.0)).empty


def test_noise_window_s_sets_how_fast_the_floor_follows_the_noise():
    """The floor is a low percentile of the 1-s block SDs within ``noise_window_s``:
    on noise that grows slowly (electrodes drying), a 3-s window follows it closely,
    the default 10-s window lags several seconds behind."""
    from emgtool.config import DetectorConfig

    rng = np.random.default_rng(9)
    n = int(40.0 * FS)
    t = np.arange(n) / FS
    sd = 4.0 * (1.0 + np.clip(t - 15.0, 0.0, None) * 0.06)  # +6 % of the start per second
    rec = _rec(rng.normal(0.0, 1.0, n) * sd)

    def floor_at(cfg, t_s):
        st = core.init_state(FS, rec.channels, cfg)
        core.step(rec, st)
        core.flush(st)
        return float(core._sd_for_block(st, int(t_s))[0])

    start = floor_at(DetectorConfig(), 12.0)
    short = floor_at(DetectorConfig(noise_window_s=3.0), 35.0)
    long_ = floor_at(DetectorConfig(), 35.0)
    growth = (1.0 + (35.0 - 15.0) * 0.06) * start  # the noise's SD at 35 s, ~2.2x
    assert short > 0.85 * growth, (start, short, long_)
    assert long_ < 0.85 * short, (start, short, long_)


def test_noise_window_s_below_one_block_is_rejected():
    from emgtool.config import DetectorConfig
    from emgtool.errors import ConfigError

    with pytest.raises(ConfigError, match="noise_window_s"):
        DetectorConfig(noise_window_s=0.5)


def _waxing_cramp(weak_rms_uv: float, seed: int) -> tuple[np.ndarray, float]:
    """Noise (σ 15 µV) and a cramp from 20 s: many small units (weak_rms_uv in total)
    for its first 0.5 s, below the single bins' activity level, then 6 s at full force."""
    rng = np.random.default_rng(seed)
    x = _base(40.0, 15.0, seed=seed)
    w = _spike()
    first = 20.0
    for start, stop, n_units, amp in ((first, first + 0.5, 40, 1.0), (first + 0.5, 26.5, 25, 4.0)):
        for _ in range(n_units):
            t = start + rng.uniform(0, 0.08)
            while t < stop:
                i = int(t * FS)
                x[i : i + len(w)] += amp * rng.uniform(0.7, 1.3) * w
                t += rng.uniform(0.05, 0.1)
    # Scale the weak part to the wanted RMS (its units' sum, band-passed by nothing).
    a, b = int(first * FS), int((first + 0.5) * FS)
    clean = x[a:b] - _base(40.0, 15.0, seed=seed)[a:b]
    x[a:b] = _base(40.0, 15.0, seed=seed)[a:b] + clean * weak_rms_uv / clean.std()
    c, d = int((first + 0.5) * FS), int(26.5 * FS)
    strong = x[c:d] - _base(40.0, 15.0, seed=seed)[c:d]
    x[c:d] = _base(40.0, 15.0, seed=seed)[c:d] + strong * 60.0 / strong.std()
    return x, first


@pytest.mark.parametrize("seed", [14, 15, 16])
def test_a_waxing_cramp_starts_where_its_energy_rises_out_of_the_noise(seed):
    """Its first 0.5 s (RMS 0.7σ) fire few single 10-ms bins, but 100-ms windows stand
    out of the noise: the onset is traced back to them (without: 0.22-0.5 s late)."""
    x, first = _waxing_cramp(weak_rms_uv=10.5, seed=seed)
    ev = analyze(_rec(x)).events
    cramp = ev[ev["trial_type"] == "cramp"]
    assert len(cramp) == 1, ev[ev["trial_type"] != "fasciculation"]
    assert abs(cramp["onset"].iloc[0] - first) <= 0.2, cramp["onset"].iloc[0]


def test_noise_or_a_lone_potential_before_a_crisp_cramp_does_not_move_its_onset():
    x, first = _waxing_cramp(weak_rms_uv=0.0, seed=13)
    x[int(first * FS) : int((first + 0.5) * FS)] = _base(40.0, 15.0, seed=13)[
        int(first * FS) : int((first + 0.5) * FS)
    ]
    # A large fasciculation 0.7 s before it: with its notch ringing it fills a
    # window or two, but quiet windows lie between it and the cramp.
    i = int((first - 0.2) * FS)
    x[i : i + len(_spike())] += 3000.0 * _spike()
    ev = analyze(_rec(x)).events
    onset = ev[ev["trial_type"] == "cramp"]["onset"]
    assert len(onset) == 1
    assert first + 0.5 - 0.05 <= onset.iloc[0] <= first + 0.5 + 0.05, onset.iloc[0]
