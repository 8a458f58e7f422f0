"""The ground-truth simulator: reproducibility, scenario properties, truth ↔ signal, EDF round trip."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import signal

from emgtool.errors import ConfigError
from emgtool.events import EVENT_COLUMNS, read_events_tsv
from emgtool.simulate import (
    SCENARIOS,
    SNR_REF_PP_UV,
    simulate,
    simulate_parts,
    simulate_to_file,
    truth_path,
)
from emgtool.simulate.muaps import count_phases, count_turns, make_muap

CALF = {"gastrocnemius_medial", "gastrocnemius_lateral", "gastrocnemius", "soleus"}


def _fp(truth):
    return truth[truth.trial_type == "fasciculation"]


def _highpass(x, fs, lo=20.0, hi=450.0):
    sos = signal.butter(4, [lo, min(hi, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)


@pytest.fixture(scope="module")
def als():
    return simulate_parts("als-widespread", 60.0, seed=11, keep_parts=True)


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_output_different_seed_differs():
    r1, t1 = simulate("als-widespread", 8.0, seed=5)
    r2, t2 = simulate("als-widespread", 8.0, seed=5)
    r3, t3 = simulate("als-widespread", 8.0, seed=6)
    assert np.array_equal(r1.data, r2.data)
    assert t1.equals(t2)
    assert not np.allclose(r1.data, r3.data)
    assert not np.array_equal(_fp(t1)["sample"].to_numpy()[:5], _fp(t3)["sample"].to_numpy()[:5])


@pytest.mark.parametrize("snr", [0.0, 6.0, 20.0])
def test_snr_is_a_floor_for_every_fasciculation(snr):
    sim = simulate_parts("als-widespread", 20.0, seed=4, snr_db=snr)
    fp = _fp(sim.truth)
    sigma = SNR_REF_PP_UV / 2 / 10 ** (snr / 20)
    assert np.allclose(sim.noise_rms_uv, sigma)
    assert (fp["snr_db"] >= snr - 1e-6).all()
    assert np.allclose(fp["snr_db"], 20 * np.log10(fp["amplitude_uv"] / 2 / sigma))
    # the median potential is about 12 dB above the floor (200 vs 50 µV p-p)
    assert 8.0 < fp["snr_db"].median() - snr < 16.0


def test_snr_and_nuisances_do_not_move_the_events():
    # The benchmark sweeps SNR over identical events: only the noise level changes.
    _, lo = simulate("bfs-focal", 20.0, seed=3, snr_db=3.0)
    _, hi = simulate("bfs-focal", 20.0, seed=3, snr_db=20.0)
    assert len(_fp(lo)) > 0
    assert np.array_equal(_fp(lo)["sample"].to_numpy(), _fp(hi)["sample"].to_numpy())
    assert np.allclose(_fp(lo)["amplitude_uv"], _fp(hi)["amplitude_uv"])


def test_truth_has_event_columns(als):
    cols = list(als.truth.columns)
    assert cols[: len(EVENT_COLUMNS)] == list(EVENT_COLUMNS)
    fp = _fp(als.truth)
    assert fp["phases"].between(2, 5).all()
    assert (fp["turns"] >= fp["phases"]).all()
    assert fp["duration_ms"].between(5.0, 22.0).all()
    assert fp["amplitude_uv"].between(45.0, 1100.0).all()
    assert set(fp["multiplet"]) <= {0, 1}
    assert set(fp["discharge"]) <= {"isolated", "continual"}
    assert (fp["peak_s"] >= fp["onset"]).all()
    assert (fp["peak_s"] <= fp["onset"] + fp["duration"]).all()


# ----------------------------------------------------------------------------- scenarios
def test_als_widespread_spans_regions_and_sides(als):
    fp = _fp(als.truth)
    assert set(fp["region"]) == {"bulbar", "cervical", "thoracic", "lumbosacral"}
    assert {"L", "R"} <= set(fp["side"])
    per_site = fp.groupby(["site", "side"]).size()
    assert len(per_site) >= 12  # 16 sites at 5-60/min: nearly all fire within a minute
    assert per_site.max() <= 90  # ≤ 60/min nominal (+ doublets + Poisson spread)
    assert (fp["multiplet"] == 1).sum() >= 1  # some doublets
    dbl = fp[fp["multiplet"] == 1]
    for _, d in dbl.iterrows():
        prev = fp[
            (fp["site"] == d.site)
            & (fp["side"] == d.side)
            & (fp["unit"] == d.unit)
            & (fp["sample"] < d["sample"])
        ].iloc[-1]
        assert 5.0 - 1e-6 <= (d.onset - prev.onset) * 1000 <= 15.0 + 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bfs_focal_confined_to_calves(seed):
    _, truth = simulate("bfs-focal", 30.0, seed=seed)
    fp = _fp(truth)
    assert len(fp) > 0
    assert set(fp["site"]) <= CALF
    assert set(fp["region"]) == {"lumbosacral"}


@pytest.mark.parametrize("seed", [0, 1])
def test_healthy_has_no_fasciculations(seed):
    rec, truth = simulate("healthy", 30.0, seed=seed)
    assert len(_fp(truth)) == 0
    assert set(truth["trial_type"]) <= {"voluntary", "artifact"}
    assert rec.n_channels == 16


def test_cramps_scenario():
    sim = simulate_parts("cramps", 120.0, seed=4, keep_parts=True)
    truth, rec = sim.truth, sim.recording
    cr = truth[truth.trial_type == "cramp"]
    assert len(cr) >= 2
    assert cr["duration"].between(4.0, 120.0 / 4 + 1).all()
    assert cr["site"].nunique() <= 3  # confined to one or a few sites
    assert (cr["mean_amplitude_uv"] < cr["amplitude_uv"]).all()
    # Cramps raise the band-passed RMS well above the resting level of their channel.
    fs = rec.fs
    for _, c in cr.iterrows():
        ch = rec.labels.index(c.channel.split("|")[0])
        x = _highpass(rec.data[ch], fs)
        a, z = int(c["sample"]), int(c["sample"] + c.duration * fs)
        busy = np.zeros(rec.n_samples, bool)
        for _, b in truth[truth.trial_type.isin(["cramp", "voluntary", "artifact"])].iterrows():
            busy[max(0, int(b["sample"] - fs)) : int(b["sample"] + b.duration * fs + fs)] = True
        rest = x[~busy]
        assert np.sqrt(np.mean(x[a:z] ** 2)) > 4 * np.sqrt(np.mean(rest**2))
    # Some fasciculations, none within 0.5 s of a cramp at the same site.
    fp = _fp(truth)
    assert len(fp) > 0
    for _, c in cr.iterrows():
        same = fp[(fp.site == c.site) & (fp.side == c.side)]
        assert not (
            (same.onset + same.duration > c.onset - 0.5)
            & (same.onset < c.onset + c.duration + 0.5)
        ).any()


def test_fasciculations_avoid_bursts_and_motion():
    sim = simulate_parts(
        "als-widespread", 240.0, seed=8, n_voluntary=3, n_cramps=1, keep_parts=True
    )
    truth, rec, burst = sim.truth, sim.recording, sim.parts["burst"]
    fp = _fp(truth)
    # Every burst is in the signal exactly where the truth puts it, and nowhere else.
    inside = np.zeros(burst.shape, bool)
    for _, b in truth[truth.trial_type.isin(["cramp", "voluntary"])].iterrows():
        a, z = int(b["sample"]), int(round((b.onset + b.duration) * rec.fs))
        for lab in b.channel.split("|"):
            ch = rec.labels.index(lab)
            inside[ch, a:z] = True
            rms = np.sqrt(np.mean(burst[ch, a:z].astype(float) ** 2))
            assert rms > 0.2 * b.amplitude_uv
            assert np.max(np.abs(burst[ch, a:z])) > 0
    assert np.all(burst[~inside] == 0)
    bursts = truth[truth.trial_type.isin(["cramp", "voluntary"])]
    assert set(bursts.trial_type) == {"cramp", "voluntary"}
    for _, b in bursts.iterrows():
        same = fp[(fp.site == b.site) & (fp.side == b.side)]
        overlap = (same.onset + same.duration > b.onset - 0.5) & (
            same.onset < b.onset + b.duration + 0.5
        )
        assert not overlap.any()
    motion = truth[(truth.trial_type == "artifact") & (truth.reason == "motion")]
    assert len(motion) >= 1
    for _, m in motion.iterrows():
        near = (fp.onset + fp.duration > m.onset - 0.02) & (fp.onset < m.onset + m.duration + 0.02)
        assert not near.any()
        assert m.channel.count("|") >= 2  # common to many channels


def test_hd_grid_spreads_over_neighbouring_electrodes():
    sim = simulate_parts("hd-grid", 30.0, seed=2, snr_db=20.0, keep_parts=True)
    rec, fp = sim.recording, _fp(sim.truth)
    assert (
        rec.n_channels == 64 and rec.labels[0] == "Biceps L 01" and rec.labels[-1] == "Biceps L 64"
    )
    assert set(fp["site"]) == {"biceps"} and len(fp) > 5
    n_listed = fp["channel"].str.count(r"\|") + 1
    assert (n_listed >= 2).mean() > 0.8  # most potentials are seen by several electrodes
    assert n_listed.max() < 64
    for _, e in fp.iterrows():
        idx = np.array([int(lab.split()[-1]) - 1 for lab in e.channel.split("|")])
        cells = {(i % 8, i // 8) for i in idx}
        # connected on the grid (8-neighbourhood): a potential spreads, it does not jump
        seen, todo = set(), [next(iter(cells))]
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            todo += [
                (c[0] + dx, c[1] + dy)
                for dx in (-1, 0, 1)
                for dy in (-1, 0, 1)
                if (c[0] + dx, c[1] + dy) in cells
            ]
        assert seen == cells
    # Propagation: some potentials reach distant rows later than the largest electrode.
    fasc = sim.parts["fasciculation"]
    e = fp.iloc[int(np.argmax(n_listed.to_numpy()))]
    labs = e.channel.split("|")
    a = int(e["sample"])
    seg = fasc[[rec.labels.index(lab) for lab in labs], a : a + int(e.duration * rec.fs) + 1]
    t_peak = np.argmax(np.abs(seg), axis=1)
    assert t_peak.max() - t_peak.min() >= 2  # ≥ 1 ms across the listed electrodes


# ----------------------------------------------------------------------------- truth ↔ signal
def test_every_fasciculation_is_in_the_signal(als):
    rec, truth, fasc = als.recording, als.truth, als.parts["fasciculation"]
    fs = rec.fs
    fp = _fp(truth)
    x_bp = _highpass(rec.data, fs)
    checked = 0
    for key, site in fp.groupby(["site", "side"]):
        site = site.sort_values("sample")
        starts = site["sample"].to_numpy()
        ends = starts + np.round(site["duration"].to_numpy() * fs).astype(int)
        for i, (_, e) in enumerate(site.iterrows()):
            ch = rec.labels.index(e.channel.split("|")[0])
            a, z = starts[i], ends[i]
            seg = fasc[ch, a:z]
            alone = (i == 0 or ends[i - 1] <= a) and (i == len(site) - 1 or starts[i + 1] >= z)
            if alone:  # not overlapped by a doublet partner: exact peak and amplitude
                assert a + int(np.argmax(np.abs(seg))) == round(e.peak_s * fs), key
                assert np.ptp(seg) == pytest.approx(e.amplitude_uv, rel=1e-4)
                # and the recorded signal shows a deflection of that size
                assert np.ptp(x_bp[ch, a:z]) > 0.6 * e.amplitude_uv
                checked += 1
    assert checked > 100
    # and nothing else: outside truth spans the fasciculation component is zero
    mask = np.zeros(fasc.shape, bool)
    for _, e in fp.iterrows():
        for lab in e.channel.split("|"):
            ch = rec.labels.index(lab)
            mask[ch, int(e["sample"]) : int(e["sample"] + round(e.duration * fs))] = True
    assert np.all(fasc[~mask] == 0)


def test_motion_artifacts_are_in_the_signal(als):
    rec, truth = als.recording, als.truth
    nuis = als.parts["nuisance"]
    for _, m in truth[truth.reason == "motion"].iterrows():
        a, z = int(m["sample"]), int(m["sample"] + m.duration * rec.fs)
        chans = [rec.labels.index(lab) for lab in m.channel.split("|")]
        assert np.max(np.abs(nuis[chans, a:z])) > 0.9 * m.amplitude_uv


def test_noise_rms_in_band_is_exact():
    snr = 12.0
    sim = simulate_parts(
        "healthy", 20.0, seed=1, snr_db=snr, nuisances={"pink", "white"}, n_voluntary=0
    )
    rec = sim.recording
    sigma = SNR_REF_PP_UV / 2 / 10 ** (snr / 20)
    x = rec.data.astype(np.float64)
    spec = np.fft.rfft(x, axis=1)
    f = np.fft.rfftfreq(rec.n_samples, 1 / rec.fs)
    band = (f >= 20) & (f <= 450)
    rms_band = np.sqrt(2 * np.sum(np.abs(spec[:, band]) ** 2, axis=1)) / rec.n_samples
    assert np.allclose(rms_band, sigma, rtol=0.02)
    assert np.allclose(sim.noise_rms_uv, sigma)


def test_no_fasciculation_on_top_of_a_qrs():
    sim = simulate_parts("als-widespread", 60.0, seed=12)
    r_s = sim.ecg_r_samples / sim.recording.fs
    assert 50 <= len(r_s) <= 95  # 55-90 bpm
    fp = _fp(sim.truth)
    ecg_sites = {"rectus_abdominis", "thoracic_paraspinals", "deltoid", "biceps", "trapezius"}
    at_ecg = fp[fp.site.isin(ecg_sites)]
    assert len(at_ecg) > 20
    for _, e in at_ecg.iterrows():
        assert np.all((e.onset > r_s + 0.08 - 1e-3) | (e.onset + e.duration < r_s - 0.08 + 1e-3))
    # elsewhere potentials may coincide with heart beats
    others = fp[~fp.site.isin(ecg_sites)]
    near = [np.min(np.abs(r_s - t)) < 0.08 for t in others.onset]
    assert any(near)


def test_mains_frequency_and_ecg_distribution():
    sim = simulate_parts(
        "healthy", 20.0, seed=2, nuisances={"mains"}, mains_hz=60.0, n_voluntary=0, keep_parts=True
    )
    x = sim.parts["nuisance"][0].astype(np.float64)
    f, p = signal.welch(x, fs=sim.recording.fs, nperseg=4096)
    assert abs(f[np.argmax(p)] - 60.0) < 1.0
    sim = simulate_parts(
        "healthy", 20.0, seed=2, nuisances={"ecg"}, n_voluntary=0, keep_parts=True
    )
    amp = {lab: np.ptp(sim.parts["nuisance"][i]) for i, lab in enumerate(sim.recording.labels)}
    assert amp["Rectus abd R"] > amp["Biceps R"] > 0
    assert amp["Tib ant L"] == 0 and amp["Tongue"] == 0


def test_flat_and_clipped_channels():
    rec, truth = simulate("als-widespread", 30.0, seed=9, flat_channel=True, clipped_channel=True)
    flat = truth[truth.reason == "flat"]
    clipped = truth[truth.reason == "clipped"]
    assert len(flat) == 1 and len(clipped) >= 1
    fl = rec.labels.index(flat.channel.iloc[0])
    assert np.std(rec.data[fl]) < 0.2
    assert not _fp(truth)["channel"].str.split("|").apply(lambda c: rec.labels[fl] in c).any()
    cl = rec.labels.index(clipped.channel.iloc[0])
    x = rec.data[cl]
    rail = np.max(np.abs(x))
    at_rail = np.abs(x) >= rail - 1e-3
    for _, c in clipped.iterrows():
        a, z = int(c["sample"]), int(c["sample"] + c.duration * rec.fs)
        assert at_rail[a:z].mean() > 0.5
    assert at_rail.sum() <= sum(int(d * rec.fs) for d in clipped.duration) + 10


def test_disconnected_channel_with_mains_hum():
    rec, truth = simulate("als-widespread", 10.0, seed=9, flat_channel="mains", mains_hz=60.0)
    row = truth[truth.reason == "disconnected"]
    assert len(row) == 1
    ch = rec.labels.index(row.channel.iloc[0])
    f, p = signal.welch(rec.data[ch].astype(float), fs=rec.fs, nperseg=4096)
    assert abs(f[np.argmax(p)] - 60.0) < 1.0
    assert 150 < np.ptp(rec.data[ch]) / 2 < 1500
    assert not _fp(truth)["channel"].str.split("|").apply(lambda c: rec.labels[ch] in c).any()
    # the other channels are the same recording as with a flat channel
    rec_flat, _ = simulate("als-widespread", 10.0, seed=9, flat_channel=True, mains_hz=60.0)
    others = [i for i in range(rec.n_channels) if i != ch]
    assert np.array_equal(rec.data[others], rec_flat.data[others])
    with pytest.raises(ConfigError, match="flat_channel"):
        simulate("healthy", 2.0, flat_channel="wobbly")


# ----------------------------------------------------------------------------- files
def _edf_steps(path):
    """Quantisation step (µV) per signal from the EDF header's physical/digital ranges."""
    raw = open(path, "rb").read()
    ns = int(raw[252:256])
    h = raw[256 : 256 + ns * 256]

    def field(offset, width):
        return [
            h[offset + i * width : offset + (i + 1) * width].decode().strip() for i in range(ns)
        ]

    o = ns * (16 + 80 + 8)
    pmin = np.array(field(o, 8), float)
    pmax = np.array(field(o + ns * 8, 8), float)
    dmin = np.array(field(o + ns * 16, 8), float)
    dmax = np.array(field(o + ns * 24, 8), float)
    labels = field(0, 16)
    return labels, (pmax - pmin) / (dmax - dmin)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_edf_reads_back_through_mne(tmp_path, scenario):
    mne = pytest.importorskip("mne")
    path = tmp_path / f"{scenario}.edf"
    sites = (
        None
        if scenario == "hd-grid"
        else ["Tongue", "Biceps L", "Thoracic PSP R", "Gastroc med R"]
    )
    rec, truth = simulate_to_file(
        path, scenario, 6.0, seed=1, sites=sites, n_cramps=1 if scenario == "cramps" else None
    )
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert raw.ch_names == rec.labels
    assert raw.info["sfreq"] == rec.fs
    x = raw.get_data() * 1e6  # V → µV
    assert x.shape == rec.data.shape
    labels, step = _edf_steps(path)
    step = np.array([step[labels.index(lab)] for lab in rec.labels])
    err = np.abs(x - rec.data.astype(np.float64)).max(axis=1)
    assert np.all(err <= 0.5 * step + 1e-3 * step + 1e-6)
    back = read_events_tsv(truth_path(path))
    assert len(back) == len(truth)
    assert np.array_equal(
        back["sample"].to_numpy(dtype=np.int64), truth["sample"].to_numpy(dtype=np.int64)
    )


def test_bdf_output(tmp_path):
    mne = pytest.importorskip("mne")
    path = tmp_path / "rec.bdf"
    rec, _ = simulate_to_file(path, "bfs-focal", 3.0, seed=2, sites=["Gastroc med L", "Soleus R"])
    raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
    labels, step = _edf_steps(path)
    step = np.array([step[labels.index(lab)] for lab in rec.labels])
    err = np.abs(raw.get_data() * 1e6 - rec.data).max(axis=1)
    assert np.all(err <= 0.51 * step + 1e-6)
    assert step.max() < 1e-3  # 24 bits


def test_csv_output_and_errors(tmp_path):
    path = tmp_path / "rec.csv"
    rec, truth = simulate_to_file(path, "healthy", 2.0, seed=0, sites=["Biceps L", "TA R"])
    header = path.read_text().splitlines()[0]
    assert header == "time_s,Biceps L (uV),TA R (uV)"
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    assert np.allclose(data[:, 1:].T, rec.data, atol=0.0006)
    assert truth_path(path).exists()
    with pytest.raises(ConfigError, match="16 characters"):
        simulate_to_file(tmp_path / "x.edf", "healthy", 2.0, sites=["Thoracic paraspinals L"])
    with pytest.raises(ConfigError, match="scenario"):
        simulate("nope", 2.0)
    with pytest.raises(ConfigError, match="nuisance"):
        simulate("healthy", 2.0, nuisances="pink,buzz")
    with pytest.raises(ConfigError, match="snr_db"):
        simulate("healthy", 2.0, snr_db=6, nuisances="mains")


def test_cli_simulate(tmp_path, capsys):
    from emgtool.cli import main

    out = tmp_path / "s.edf"
    assert (
        main(
            [
                "simulate",
                str(out),
                "--scenario",
                "bfs-focal",
                "--duration",
                "4",
                "--seed",
                "2",
                "--nuisances",
                "pink,white,mains",
                "--mains-hz",
                "60",
            ]
        )
        == 0
    )
    assert out.exists() and (tmp_path / "s.truth.tsv").exists()
    assert "bfs-focal" not in capsys.readouterr().err
    out = tmp_path / "c.csv"
    argv = [
        "simulate",
        str(out),
        "--scenario",
        "cramps",
        "--duration",
        "30",
        "--cramps",
        "1",
        "--sites",
        "Gastroc med L,Biceps R",
        "--fp-rate",
        "30",
        "--fs",
        "1000",
    ]
    assert main(argv) == 0
    truth = read_events_tsv(tmp_path / "c.truth.tsv")
    assert (truth.trial_type == "cramp").sum() == 1
    assert set(truth.site) <= {"gastrocnemius_medial", "biceps", "unknown"}
    assert out.read_text().splitlines()[0] == "time_s,Gastroc med L (uV),Biceps R (uV)"
    assert main(["simulate", str(tmp_path / "h.edf"), "--duration", "2", "--hum-channel"]) == 0
    assert (read_events_tsv(tmp_path / "h.truth.tsv").reason == "disconnected").sum() == 1
    assert main(["simulate", str(tmp_path / "t.edf"), "--nuisances", "hum"]) == 2
    assert "unknown nuisance" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    helptext = capsys.readouterr().out
    for name in SCENARIOS:
        assert name in helptext


# ----------------------------------------------------------------------------- waveforms and speed
def test_muap_templates_are_physiological():
    rng = np.random.default_rng(0)
    muaps = [make_muap(rng, 2048.0) for _ in range(200)]
    assert all(2 <= m.phases <= 5 for m in muaps)
    assert all(5.0 <= m.duration_ms <= 22.0 for m in muaps)
    assert all(np.ptp(m.wave) == pytest.approx(1.0) for m in muaps)
    assert all(m.wave[0] == 0 and m.wave[-1] == 0 for m in muaps)
    assert len({m.phases for m in muaps}) == 4
    assert any(m.turns > m.phases for m in muaps)  # serrated (complex) potentials exist
    assert count_phases(np.sin(np.linspace(0, 3 * np.pi, 60))) == 3
    assert count_turns(np.sin(np.linspace(0, np.pi, 30))) == 1


def test_faster_than_real_time():
    simulate("als-widespread", 2.0, seed=0)  # warm up imports
    # CPU time of this process: other jobs on a shared machine do not count against us.
    t0 = time.process_time()
    rec, _ = simulate("als-widespread", 60.0, seed=1)
    elapsed = time.process_time() - t0
    assert rec.n_channels == 16
    # ≥ 100× on this machine (docs/simulator.md); generous here for slower CI cores.
    assert 60.0 / elapsed >= 50.0, f"only {60.0 / elapsed:.0f}x real time"


def test_bundled_truth_is_reproducible(tmp_path):
    """The committed datasets/ and demo truth tables are what the simulator makes today."""
    from pathlib import Path

    from emgtool.simulate.regenerate import DATASETS, regenerate

    repo = Path(__file__).resolve().parents[1]
    for only in ("faults_8ch_20s", "4ch_5s_60hz.csv", "hd-grid"):
        (path,) = regenerate(tmp_path, only=only, verbose=False)
        rel = path.relative_to(tmp_path)
        committed = read_events_tsv(truth_path(repo / rel))
        fresh = read_events_tsv(truth_path(path))
        assert committed.equals(fresh), rel
    assert {d.path for d in DATASETS} >= {"emgtool/data/demo.edf"}
    demo = read_events_tsv(repo / "emgtool/data/demo.truth.tsv")
    fp = _fp(demo)
    assert fp["region"].nunique() == 4 and {"L", "R"} <= set(fp["side"])
    assert (demo.trial_type == "cramp").sum() >= 1
    assert (repo / "emgtool/data/demo.edf").stat().st_size < 6.5e6


def test_edf_of_fractional_duration_is_not_padded(tmp_path):
    mne = pytest.importorskip("mne")
    path = tmp_path / "short.edf"
    rec, _ = simulate_to_file(path, "healthy", 2.5, seed=0, sites=["Biceps L"], nuisances="white")
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert raw.n_times == rec.n_samples == 5120
    assert raw.info["sfreq"] == 2048.0


def test_datasets_readme_matches_files():
    """datasets/README.md lists every bundled file with the counts of its truth table."""
    from pathlib import Path

    from emgtool.simulate.regenerate import DATASETS

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "datasets" / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    for d in DATASETS:
        name = d.path.split("/", 1)[1] if d.path.startswith("datasets/") else "../" + d.path
        assert name in rows, name
        cells = rows[name]
        assert d.cli() in text
        assert (cells[1], float(cells[3]), int(cells[4])) == (d.scenario, d.duration_s, d.seed)
        truth = read_events_tsv(truth_path(repo / d.path))
        counts = truth["trial_type"].value_counts()
        got = [int(c) for c in cells[5:9]]
        want = [int(counts.get(k, 0)) for k in ("fasciculation", "cramp", "voluntary", "artifact")]
        assert got == want, name
        assert (repo / d.path).exists()


def test_bundled_demo_file_has_every_truth_event(tmp_path):
    """End to end on the shipped file: read demo.edf through MNE, find each truth event in it."""
    from pathlib import Path

    mne = pytest.importorskip("mne")
    repo = Path(__file__).resolve().parents[1]
    raw = mne.io.read_raw_edf(repo / "emgtool/data/demo.edf", preload=True, verbose="error")
    fs = raw.info["sfreq"]
    x = _highpass(raw.get_data() * 1e6, fs)
    labels = raw.ch_names
    truth = read_events_tsv(repo / "emgtool/data/demo.truth.tsv")
    fp = _fp(truth)
    n_ok = n = 0
    for _, site in fp.groupby(["site", "side"]):
        on = site["sample"].to_numpy()
        off = on + np.round(site["duration"].to_numpy() * fs).astype(int)
        for i, (_, e) in enumerate(site.iterrows()):
            if (i > 0 and off[i - 1] > on[i]) or (i + 1 < len(site) and on[i + 1] < off[i]):
                continue  # overlapped by a doublet partner
            ch = labels.index(e.channel.split("|")[0])
            n += 1
            n_ok += np.ptp(x[ch, on[i] : off[i]]) > 0.6 * e.amplitude_uv
    assert n > 400 and n_ok == n
    busy = np.zeros(x.shape[1], bool)
    for _, b in truth[truth.trial_type != "fasciculation"].iterrows():
        busy[max(0, int(b["sample"] - fs)) : int(b["sample"] + (b.duration + 1) * fs)] = True
    for _, c in truth[truth.trial_type == "cramp"].iterrows():
        ch = labels.index(c.channel.split("|")[0])
        a, z = int(c["sample"]), int(c["sample"] + c.duration * fs)
        assert np.sqrt(np.mean(x[ch, a:z] ** 2)) > 3 * np.sqrt(np.mean(x[ch, ~busy] ** 2))
    for _, m in truth[truth.reason == "motion"].iterrows():
        a = int(m["sample"])
        chans = [labels.index(lab) for lab in m.channel.split("|")]
        assert np.max(np.abs(x[chans, a : a + int(m.duration * fs) + 1])) > 0.3 * m.amplitude_uv
