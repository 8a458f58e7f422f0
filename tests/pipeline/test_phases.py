"""A potential whose phases are separated by a gap below the threshold is one potential.

Far above the noise the candidate threshold is the absolute floor
(``fasc_floor_uv``, 20 µV), many noise SDs up: a 70-80-µV potential then
crosses it only near the peak of each main phase, and between two phases the
signal can stay below it for longer than the refractory bridge (4 ms).  Each
phase alone is below the 50-µV counting floor, so the potential was lost
(simulated BFS at 20 dB: 22 of one unit's 37 discharges, the others found only
when noise happened to bridge the gap).  The gap is not quiet, though: the
signal stays beyond what the noise reaches, except where it crosses zero.
"""

import numpy as np

from emgtool.pipeline._kernels import site_segments
from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording

from .conftest import lobes

FS = 2048.0
TIMES_S = np.arange(8.0, 58.0, 1.7)


def _recording(shape: np.ndarray, seed: int = 4) -> Recording:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.5, (1, int(60 * FS))).astype(np.float32)  # ~2.5 µV in band
    for t in TIMES_S:
        i = int(t * FS)
        x[0, i : i + len(shape)] += shape
    return Recording.from_array(x, fs=FS, labels=["Gastroc med R"])


def _found(ev) -> np.ndarray:
    f = ev[ev["trial_type"] == "fasciculation"]
    on = f["onset"].to_numpy()
    return np.array([np.sum(np.abs(on - t - 0.005) < 0.02) for t in TIMES_S])


def test_phases_apart_below_the_floor_make_one_potential():
    # -20, +32, +7, -48, +11 µV (the simulated unit): a 3.4-ms stretch between the
    # two main phases stays below 20 µV but mostly beyond 3 noise SDs.
    shape = lobes([-20.0, 32.0, 7.0, -48.0, 11.0], [1.5, 2.5, 2.5, 2.5, 1.5], FS)
    ev = analyze(_recording(shape)).events
    n = _found(ev)
    assert (n == 1).all(), n  # each potential once, none lost, none split
    f = ev[ev["trial_type"] == "fasciculation"]
    assert f["amplitude_uv"].min() > 60.0


def _segments(y, bridge=8, span=20, pot=40):
    y = np.asarray(y, np.float32)[None, :]
    args = (y, np.full((1, 1), 20, np.float32), np.full((1, 1), 7.5, np.float32))
    rest = (np.zeros(y.shape[1], np.int64), np.zeros(y.shape, bool), np.zeros(1, np.int64), 1)
    return site_segments(*args, *rest, bridge, np.array([span]), pot)


def test_segments_bridge_loud_gaps_only():
    loud = [30.0] * 3 + [10.0] * 10 + [-30.0] * 3  # 10 samples below 20 µV, none quiet
    quiet = [30.0] * 3 + [0.0] * 10 + [-30.0] * 3
    assert len(_segments(loud)[0]) == 1
    assert len(_segments(quiet)[0]) == 2
    # ... within half a potential (span) and while the segment spans less than a
    # potential (pot): a long wobble is cut into potential-sized segments.
    assert len(_segments(loud, span=10)[0]) == 2
    wobble = ([30.0] * 3 + [10.0] * 10 + [-30.0] * 3 + [-10.0] * 10) * 3  # phases 13 apart
    assert len(_segments(wobble, pot=1000)[0]) == 1
    assert _segments(wobble, pot=30)[1].tolist() == [0, 39]
