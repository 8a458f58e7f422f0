"""A potential whose phases repeat is one potential, not a doublet of itself.

The doublet test (doublets.py) recovers one discharge from a window holding the
same waveform twice; a polyphasic potential that repeats its own pattern looks
just like that, every time its unit fires.  Two discharges of a unit are a
small part of its firing, so when most of a site's potentials come as "doublets"
at one lag, they are taken for one potential each.
"""

import numpy as np

from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording

from .conftest import lobes

FS = 2048.0
LABELS = ["Tib ant L", "Gastroc med R", "FDI R", "Vastus lat L"]
LAG_MS = 9.0


def _recording(seed: int = 7) -> tuple[Recording, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(90 * FS)
    x = rng.normal(0.0, 4.0, (len(LABELS), n))  # ~2.6 µV in band
    p = lobes([60.0, -90.0, 40.0], [2.0, 2.5, 2.0], FS)  # a triphasic potential, ~6.5 ms
    lag = int(round(LAG_MS * FS / 1000))
    pattern = np.zeros(len(p) + lag)
    pattern[: len(p)] += p
    pattern[lag:] += p  # its phases repeat once, 9 ms later: every discharge
    # Site A (Tib ant L): a unit whose every potential is the repeating pattern.
    t_a = np.sort(rng.choice(np.arange(10, 85, 1.5), 40, replace=False))
    for t in t_a:
        i = int(t * FS)
        x[0, i : i + len(pattern)] += pattern
    # Site B (Gastroc med R): single discharges, a few of them doublets 9 ms apart.
    t_b = np.arange(10.77, 85, 1.7)[:40]  # never within 5 ms of site A (common mode)
    dbl = np.zeros(len(t_b), bool)
    dbl[::8] = True
    for t, d in zip(t_b, dbl, strict=True):
        i = int(t * FS)
        w = pattern if d else p
        x[1, i : i + len(w)] += w
    return Recording.from_array(x.astype(np.float32), fs=FS, labels=LABELS), t_a, t_b, dbl


def _fasc(ev, label):
    return ev[(ev["trial_type"] == "fasciculation") & (ev["channel"] == label)]


def test_a_repeating_pattern_is_one_potential_once_it_is_most_of_a_site():
    rec, t_a, _, _ = _recording()
    f = _fasc(analyze(rec).events, "Tib ant L")
    # Taken for doublets at first (the pattern must be seen ten times), then one each.
    assert len(t_a) <= len(f) <= len(t_a) + 12, len(f)
    late = f[f["onset"] > t_a[20] + 0.1]
    assert len(late) == np.sum(t_a > t_a[20] + 0.1), late
    assert (late["multiplet"] == 0).all()


def test_occasional_doublets_at_one_lag_stay_doublets():
    rec, _, t_b, dbl = _recording()
    f = _fasc(analyze(rec).events, "Gastroc med R")
    assert len(f) == len(t_b) + dbl.sum(), (len(f), len(t_b), dbl.sum())
