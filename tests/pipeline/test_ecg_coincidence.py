"""Heart beats and coincident potentials: a fasciculation that happens on a heart beat
elsewhere is still a fasciculation, and a unit firing near the heart rate is not the heart."""

import numpy as np
import pytest

from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording
from emgtool.simulate.engine import simulate_parts
from emgtool.simulate.muaps import make_muap

SITES = ["Thoracic PSP L", "Thoracic PSP R", "Rectus abd R", "Deltoid L", "Tib ant L", "FDI R"]
FS = 2048.0


def _with_spikes(rec: Recording, ch: int, samples: np.ndarray, wave: np.ndarray) -> Recording:
    data = np.array(rec.data)
    for s in samples:
        data[ch, s : s + len(wave)] += wave
    return Recording(np.ascontiguousarray(data, np.float32), rec.fs, rec.channels)


@pytest.fixture(scope="module")
def quiet_with_ecg():
    sim = simulate_parts(
        "healthy", 60.0, seed=3, snr_db=20.0, nuisances={"pink", "white", "ecg"}, sites=SITES
    )
    return sim


def _potential(amp_uv: float, seed: int = 1) -> tuple[np.ndarray, int]:
    m = make_muap(np.random.default_rng(seed), FS, n_phases=3, duration_ms=10.0)
    return (m.wave * amp_uv).astype(np.float32), m.peak_index


def test_fasciculation_on_a_heart_beat_at_a_limb_site_is_counted(quiet_with_ecg):
    sim = quiet_with_ecg
    rec = sim.recording
    # Beats whose QRS peaks at the same sample (± 2 ms) on two trunk sites: a third
    # potential there is what the common-mode rule looks for.
    ev0 = analyze(rec).events
    beats = ev0[(ev0.reason == "ecg") & (ev0.onset > 8.0) & (ev0.onset < 55.0)]
    pk_s = np.round(beats.peak_s.to_numpy() * FS).astype(int)
    site = beats.site.to_numpy() + beats.side.to_numpy()
    o = np.argsort(pk_s)
    pk_s, site = pk_s[o], site[o]
    twin = (np.diff(pk_s) <= 0.002 * FS) & (site[1:] != site[:-1])
    r = pk_s[1:][twin]
    r = r[np.r_[True, np.diff(r) > FS]][:10]
    assert len(r) >= 5
    w, pk = _potential(200.0)
    tib = [i for i, c in enumerate(rec.channels) if c.site == "tibialis_anterior"][0]
    rec2 = _with_spikes(rec, tib, r - pk, w)  # the potential's peak on the R peak
    ev = analyze(rec2).events
    tib_ev = ev[ev.site == "tibialis_anterior"]
    on_beat = [tib_ev[np.abs(tib_ev["sample"] - s) < 0.03 * FS] for s in r]
    kinds = [set(e.trial_type) for e in on_beat]
    # Every injected potential is found, and counted as a fasciculation: the QRS seen
    # at the same instant on the trunk sites is a heart beat, not a common-mode artefact.
    assert all(k == {"fasciculation"} for k in kinds), kinds
    # The beats themselves stay artefacts on the trunk.
    trunk = ev[ev.site.isin(["rectus_abdominis", "thoracic_paraspinals"])]
    assert (trunk.trial_type == "fasciculation").sum() <= 2
    assert (trunk.reason == "ecg").sum() >= 50


def test_fasciculation_during_a_cramp_elsewhere_is_counted():
    # A calf cramp at two sites fires tens of potentials per second; a fasciculation
    # at another site that coincides with discharges at both is not a common-mode
    # artefact, since those discharges are the cramp's.
    sites = ["Gastroc med L", "Soleus L", "Tib ant R", "FDI R", "Vastus lat L", "Biceps R"]
    sim = simulate_parts(
        "healthy", 40.0, seed=4, snr_db=20.0, nuisances={"pink", "white"}, sites=sites
    )
    rec = sim.recording
    data = np.array(rec.data)
    rng = np.random.default_rng(2)
    t0, t1 = int(10 * FS), int(30 * FS)  # the cramp
    fire = {0: [], 1: []}
    for ch in (0, 1):
        for _unit in range(8):
            m = make_muap(rng, FS)
            w = (m.wave * rng.uniform(80, 200)).astype(np.float32)
            t = t0 + int(rng.uniform(0, 0.1) * FS)
            while t < t1 - len(w):
                data[ch, t : t + len(w)] += w
                fire[ch].append(t + m.peak_index)
                t += int(FS / rng.uniform(8, 15))
    # Instants where both cramping sites discharge within 1 ms of each other.
    a, b = np.sort(fire[0]), np.sort(fire[1])
    j = np.clip(np.searchsorted(b, a), 0, len(b) - 1)
    both = a[np.abs(b[j] - a) <= 2]
    both = both[(both > t0 + 2 * FS) & (both < t1 - 2 * FS)]
    picked: list = []
    for s in both.tolist():
        if not picked or s - picked[-1] > FS:
            picked.append(s)
    both = np.array(picked[:8])
    assert len(both) >= 5
    w, pk = _potential(250.0, seed=5)
    for s in both:
        data[2, s - pk : s - pk + len(w)] += w
    ev = analyze(Recording(np.ascontiguousarray(data), rec.fs, rec.channels)).events
    sustained = ev[ev.trial_type.isin(["cramp", "voluntary"])]
    assert set(sustained.site) >= {"gastrocnemius_medial", "soleus"}
    tib = ev[ev.site == "tibialis_anterior"]
    kinds = [set(tib[np.abs(tib["sample"] - s) < 0.02 * FS].trial_type) for s in both]
    assert all(k == {"fasciculation"} for k in kinds), kinds


def test_grid_qrs_crossing_on_one_electrode_or_another_is_not_counted():
    # A 64-electrode grid over the biceps at 6 dB: the QRS (tens of µV on every
    # electrode) crosses 5 sigma on some electrode at most beats, each time another.
    sim = simulate_parts(
        "hd-grid", 60.0, seed=1422, snr_db=6.0, nuisances={"pink", "white", "ecg"}
    )
    ev = analyze(sim.recording).events
    f = ev[ev.trial_type == "fasciculation"]
    r = np.sort(sim.ecg_r_samples)
    r = r[r > 5 * FS]
    j = np.clip(np.searchsorted(r, f["sample"].to_numpy()), 1, len(r) - 1)
    d = np.minimum(
        np.abs(f["sample"].to_numpy() - r[j - 1]), np.abs(f["sample"].to_numpy() - r[j])
    )
    on_beat = int((d < 0.06 * FS).sum())  # no true fasciculation lies within 80 ms of an R peak
    assert on_beat <= 0.1 * len(r), (on_beat, len(r))
