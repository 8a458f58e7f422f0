"""Movements: many sites firing for a few hundred ms, seen as runs of common-mode artefacts.

A movement of the body makes several muscles fire at once for a few hundred
ms.  Their motor units fire independently: some discharges coincide across
sites and are taken for common-mode artefacts, the others look like
fasciculations.  Too short and too weak to be sustained activity (at 0 dB a
simulated 0.4-s movement left 6 such potentials counted), it still shows as
a run of common-mode artefacts at each site (``_in_movement``).
"""

import numpy as np
import pandas as pd

from emgtool.pipeline import init_state
from emgtool.pipeline.analyze import analyze
from emgtool.pipeline.core import _in_movement
from emgtool.recording import Recording
from emgtool.simulate.scenarios import DEFAULT_LABELS

from .conftest import lobes, run_chunked

FS = 2048.0
MOVE_S = (30.0, 30.4)
# Limb and bulbar sites (no heart beats there) take part in the movement.
HEART = ("Deltoid L", "Biceps L", "Biceps R", "Thoracic PSP L", "Thoracic PSP R", "Rectus abd R")
MOVING = tuple(x for x in DEFAULT_LABELS if x not in HEART)
LONE = ("Tib ant R", 33.0)  # a fasciculation well after the movement
TRANSIENT_S = 40.0  # a single motion transient at every site
BEFORE_S = 0.2  # ... with a fasciculation this long before it


def _recording(seed: int = 5, movement: bool = True) -> Recording:
    labels = list(DEFAULT_LABELS)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 30.0, (len(labels), int(45 * FS))).astype(np.float32)  # ~20 µV in band
    w = lobes([90.0, -90.0], [4.0, 4.0], FS)  # ~180 µV p-p motor-unit potential
    if movement:
        for name in MOVING:
            for _unit in range(2):  # two units per site, 8-15 Hz, independent phases
                t = MOVE_S[0] + rng.uniform(0.0, 0.05)
                while t < MOVE_S[1]:
                    i = int(t * FS)
                    x[labels.index(name), i : i + len(w)] += w * rng.uniform(0.8, 1.2)
                    t += 1.0 / rng.uniform(8.0, 15.0)
    name, at = LONE
    x[labels.index(name), int(at * FS) : int(at * FS) + len(w)] += w
    x[labels.index("Tib ant L"), int((TRANSIENT_S - BEFORE_S) * FS) :][: len(w)] += w
    step = lobes([150.0, -150.0], [15.0, 15.0], FS)
    for k in range(len(labels)):
        i = int(TRANSIENT_S * FS) + 2 * k
        x[k, i : i + len(step)] += step
    return Recording.from_array(x, fs=FS, labels=labels)


def _fasc(ev, a, b):
    return ev[(ev["trial_type"] == "fasciculation") & ev["onset"].between(a, b)]


def test_a_movement_counts_no_fasciculation():
    ev = analyze(_recording()).events
    inside = _fasc(ev, MOVE_S[0] - 0.1, MOVE_S[1] + 0.1)
    assert len(inside) == 0, inside[["onset", "site", "side", "amplitude_uv"]]
    art = ev[(ev["trial_type"] == "artifact") & ev["onset"].between(*MOVE_S)]
    assert len(art) >= 20 and set(art["reason"]) <= {"common-mode"}
    # Potentials away from the movement are still counted.
    assert len(_fasc(ev, LONE[1] - 0.01, LONE[1] + 0.01)) == 1


def test_one_transient_is_no_movement():
    # A single motion transient is flagged at every site, with its ringing, within
    # a few tens of ms: the fasciculation 0.2 s before it is still counted.
    ev = analyze(_recording(movement=False)).events
    f = _fasc(ev, TRANSIENT_S - BEFORE_S - 0.01, TRANSIENT_S - BEFORE_S + 0.01)
    assert list(f["site"]) == ["tibialis_anterior"], f
    assert len(_fasc(ev, TRANSIENT_S - 0.05, TRANSIENT_S + 0.15)) == 0


def test_movement_is_chunk_invariant():
    # Decisions wait for the flags a run needs; chunk edges inside the movement
    # and around it change nothing.
    full = _recording()
    data = np.asarray(full.data)[:, int(25 * FS) : int(35 * FS)]
    rec = Recording.from_array(data, fs=FS, labels=[c.label for c in full.channels])
    whole = run_chunked(rec, [])
    assert (whole["reason"] == "common-mode").sum() >= 20
    rng = np.random.default_rng(3)
    cuts = np.r_[rng.choice(rec.n_samples, 60, replace=False), np.arange(5 * 2048, 6 * 2048, 37)]
    pd.testing.assert_frame_equal(whole, run_chunked(rec, cuts))


def test_a_flags_tail_follows_it():
    # A site's artefacts are its flagged candidates and those up to 30 ms before or
    # 100 ms after a flag (the common-mode window). Two flags 300 ms apart are no run
    # (> 250 ms); a candidate 90 ms after the first links them, one 80 ms before
    # the second does not.
    st = init_state(FS, _recording(movement=False).channels)
    s = 0
    f1, f2 = int(10.0 * FS), int(10.3 * FS)
    for cand_s, linked in ((10.09, True), (10.22, False)):
        c = int(cand_s * FS)
        st.cm_peaks[s] = [f1, f2]
        st.site_peaks[s] = sorted([f1, c, f2])
        assert _in_movement(st, s, int(10.15 * FS)) is linked, cand_s
