"""The mains notch rings longer after a long polyphasic potential than after a short one:
that ringing is still bounded (ringing.py), so it is neither an event nor activity."""

import numpy as np
import pytest

from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording
from emgtool.scoring import evaluate
from emgtool.simulate import simulate
from emgtool.sites import assign_sites

from .conftest import lobes

FS = 2048.0


@pytest.mark.parametrize("lobes_uv", [[400, -500, 450, -350, 250], [-300, 500, -450, 350, -200]])
def test_long_polyphasic_potential_gives_one_event_not_its_ringing(lobes_uv):
    wave = lobes(lobes_uv, [4] * 5)  # 20 ms, five phases, ~1 mV p-p
    rng = np.random.default_rng(0)
    seconds = 40.0
    t = np.arange(int(seconds * FS)) / FS
    # 2.5 µV of noise (the simulator's 20 dB) and 50 Hz mains, so the notches are on
    x = (
        rng.normal(0, 2.5, len(t))
        + 30 * np.sin(2 * np.pi * 50 * t)
        + 8 * np.sin(2 * np.pi * 150 * t)
    )
    starts = (np.round((6.0 + np.cumsum(rng.uniform(0.63, 1.17, 36))) * FS)).astype(int)
    starts = starts[starts < len(t) - FS]
    for s in starts:
        x[s : s + len(wave)] += wave
    rec = Recording(x[None].astype(np.float32), FS, assign_sites(["FDI R"]))
    ev = analyze(rec).events
    ev = ev[(ev.trial_type == "fasciculation") & (ev.onset >= 5.5)]
    peaks = np.round(ev["peak_s"].to_numpy() * FS).astype(int)
    per = [int(((peaks >= s) & (peaks < s + len(wave))).sum()) for s in starts]
    assert len(peaks) == sum(per)  # nothing counted on the ringing
    assert np.mean(np.array(per) == 1) >= 0.95, per


def test_ringing_after_long_potentials_on_a_grid_is_not_counted():
    """A 19-ms, 660 µV unit rang through the 50 Hz notch above the Gaussian probes'
    envelope 60-70 ms after its peak, and on a grid the ringing's largest electrode
    made a candidate: three false fasciculations in these two minutes."""
    rec, truth = simulate(
        "hd-grid",
        120.0,
        seed=1441,
        snr_db=20.0,
        nuisances={"pink", "white", "mains", "ecg", "motion"},
        mains_hz=50.0,
    )
    f = evaluate(analyze(rec).events, truth, duration_s=rec.duration_s)["fasciculation"]
    assert f["overall"]["n_true"] >= 80
    assert f["overall"]["fp"] == 0, f["overall"]
    assert f["overall"]["sensitivity"] >= 0.97
