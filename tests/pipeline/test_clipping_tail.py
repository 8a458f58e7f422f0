"""The filter's response where a clipped signal leaves the rail is part of the clipping.

An offset swing that drives an amplifier into its rail bends the signal
sharply where it meets the rail and where it leaves it; the band-pass turns
each bend into a brief deflection just outside the clipped run, which looks
like a potential (simulated: a 60-µV one, 0.08 s before the swing ended).
"""

import numpy as np

from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording

from .conftest import lobes

FS = 2048.0
LABELS = ["Biceps R", "Tib ant L", "FDI R", "Gastroc med R"]
RAIL_UV = 1000.0  # a rail well above the noise (baseline wander, electrode offsets)
SWING_S = (20.0, 22.5)  # offset swing, raised-cosine edges of 0.2 s
POTENTIAL_S = 30.0  # a potential on the same channel, well after the swing


def _recording(seed: int = 5) -> Recording:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 4.0, (len(LABELS), int(40 * FS)))  # ~2.6 µV in band
    a, z = (int(t * FS) for t in SWING_S)
    edge = int(0.2 * FS)
    bump = np.ones(z - a)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    bump[:edge], bump[-edge:] = ramp, ramp[::-1]
    x[0, a:z] += 3.0 * RAIL_UV * bump
    w = lobes([40.0, -40.0], [4.0, 4.0], FS)
    i = int(POTENTIAL_S * FS)
    x[0, i : i + len(w)] += w
    x[0] = np.clip(x[0], -RAIL_UV, RAIL_UV)
    return Recording.from_array(x.astype(np.float32), fs=FS, labels=LABELS)


def test_no_fasciculation_where_the_signal_meets_or_leaves_the_rail():
    ev = analyze(_recording()).events
    ch = ev[ev["channel"].astype(str).str.contains("Biceps R")]
    near = ch[ch["onset"].between(SWING_S[0] - 0.3, SWING_S[1] + 0.2)]
    assert not (near["trial_type"] == "fasciculation").any(), near
    # The channel is still analysed outside the clipped run and its tail.
    later = ch[(ch["trial_type"] == "fasciculation") & (ch["onset"] > SWING_S[1] + 0.2)]
    assert np.abs(later["onset"] - POTENTIAL_S).min() < 0.01, later
