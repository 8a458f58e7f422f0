"""Common-mode artefacts whose deflections are mostly below the counting floor.

At high SNR a motion artefact can be 30-45 µV peak to peak on most channels:
beyond the noise-adaptive threshold but below ``fasc_min_pp_uv`` (50 µV), so
only the two or three channels where it is larger give counted candidates,
fewer than the common-mode rule's number of sites.  The small deflections
still witness it once they reach a third of the sites.
"""

import numpy as np

from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording
from emgtool.simulate.scenarios import DEFAULT_LABELS

from .conftest import lobes

FS = 2048.0
AT_S = 30.0
LARGE = ("Tib ant R", "Gastroc med R")  # counted candidates (~90 µV p-p): two sites
# Limb and bulbar sites (no heart beats there): small deflections (~36 µV p-p).
SMALL = ("Tongue", "Masseter R", "FDI L", "FDI R", "Vastus lat L", "Tib ant L")


def _recording(small: tuple[str, ...], seed: int = 3) -> Recording:
    labels = list(DEFAULT_LABELS)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 4.0, (len(labels), int(40 * FS))).astype(np.float32)  # ~2.6 µV in band
    for k, name in enumerate(LARGE + small):
        amp = 45.0 if name in LARGE else 18.0
        w = lobes([amp, -amp], [6.0, 6.0], FS)
        i = int(AT_S * FS) + 2 * k  # a transient reaches the electrodes within a few ms
        x[labels.index(name), i : i + len(w)] += w
    return Recording.from_array(x, fs=FS, labels=labels)


def _near(ev, kind):
    sel = ev[(ev["trial_type"] == kind) & ev["onset"].between(AT_S - 0.05, AT_S + 0.05)]
    return sel


def test_small_deflections_at_many_sites_make_it_common_mode():
    ev = analyze(_recording(SMALL)).events
    assert len(_near(ev, "fasciculation")) == 0, _near(ev, "fasciculation")
    art = _near(ev, "artifact")
    assert "common-mode" in set(art["reason"])
    assert {"tibialis_anterior", "gastrocnemius_medial"} <= set(art["site"])


def test_two_sites_with_few_small_witnesses_stay_fasciculations():
    # The same two potentials with small deflections at two more sites only
    # (4 of 16 sites, fewer than a third): coincidence, not an artefact.
    ev = analyze(_recording(SMALL[:2])).events
    f = _near(ev, "fasciculation")
    assert set(f["site"]) == {"tibialis_anterior", "gastrocnemius_medial"}, f
