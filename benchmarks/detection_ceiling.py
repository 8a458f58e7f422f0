"""How many simulated potentials could any detector find at one false detection per hour?

An upper bound for the accuracy benchmark's hardest runs.  The simulator knows
every potential's unit, and its noise-free fasciculation component gives each
unit's exact waveform.  For each unit, this script runs the matched filter of
that exact waveform (the optimal linear detector for a known shape in
Gaussian noise) over the unit's best electrode, and counts a potential as
findable when the filter's output within ±5 samples of its peak reaches the
level that the noise alone crosses once per hour through that one filter
(Rice's formula, from the output's own zero-crossing rate), and, in a
second column, the lower level that the pipeline's busy-site rule
(``fasc_fdr``) would allow that site given its true rate of potentials.
The bound is optimistic: a real detector does not know which unit fires, nor its shape,
and must hold its false rate over all the shapes it tries (a larger bank
needs a higher level).

Run it as ``python benchmarks/detection_ceiling.py`` (the 6 dB runs with
nuisances, ~1 min each) or ``--runs als-widespread:6:all``; seeds and
nuisance sets are those of ``benchmarks/accuracy.py``, so the runs are the
same recordings as its table's.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import NUISANCE_SETS, SNRS_DB, WITH_NUISANCES, make_cases  # noqa: E402

from emgtool.config import DetectorConfig  # noqa: E402
from emgtool.pipeline import dsp  # noqa: E402
from emgtool.simulate import SCENARIOS  # noqa: E402
from emgtool.simulate.engine import simulate_parts  # noqa: E402

TEMPLATE_HALF_S = 0.012  # each unit's waveform: its peak ± 12 ms (a whole potential)
PEAK_SEARCH_N = 5  # the filter's output is read within ± this many samples of the peak
FALSE_PER_H = 1.0
FDR = DetectorConfig().fasc_fdr


def rice_level(y: np.ndarray, fs: float, rate_per_h: float) -> float:
    """Level (robust SDs of ``y``) that Gaussian noise like ``y`` crosses ``rate_per_h``
    times an hour, both polarities (Rice: ``2·ν0·exp(-u²/2)``, ν0 from ``y``'s slope)."""
    nu0 = dsp.robust_sd(np.diff(y)) * fs / dsp.robust_sd(y) / (2 * np.pi)
    return float(np.sqrt(2.0 * np.log(2.0 * 3600.0 * nu0 / rate_per_h)))


def ceiling(case: dict) -> dict:
    """Share of the run's fasciculation potentials that the per-unit matched filter finds."""
    nz = NUISANCE_SETS[case["nuisances"]]
    sim = simulate_parts(
        case["scenario"],
        duration_s=case["duration_s"],
        seed=case["seed"],
        snr_db=case["snr_db"],
        keep_parts=True,
        **nz,
    )
    rec, truth = sim.recording, sim.truth
    fs = rec.fs
    # The detector's view: band-pass and notches at the run's mains frequency.
    sos = dsp.design_filters(
        fs, (20.0, 450.0), 2, mains_hz=nz["mains_hz"], harmonics=tuple(range(1, 9))
    )
    raw = np.nan_to_num(np.asarray(rec.data, np.float64))
    fasc = np.asarray(sim.parts["fasciculation"], np.float64)
    noise = raw - fasc - sim.parts["burst"]
    x = signal.sosfilt(sos, raw, axis=1)
    n_f = signal.sosfilt(sos, noise, axis=1)
    f_f = signal.sosfilt(sos, fasc, axis=1)
    ch_of = {c.label: i for i, c in enumerate(rec.channels)}
    half = int(round(TEMPLATE_HALF_S * fs))
    seg_n = int(round(0.03 * fs))
    tf = truth[truth["trial_type"] == "fasciculation"]
    hours = rec.duration_s / 3600.0
    n_site = tf.groupby(["site", "side"]).size()
    k_site = {}
    for c in rec.channels:
        k_site[(c.site, c.side)] = k_site.get((c.site, c.side), 0) + 1
    found = found_busy = total = 0
    for (site, side, _u), g in tf.groupby(["site", "side", "unit"]):
        chans = {ch_of[lab] for labs in g["channel"] for lab in labs.split("|") if lab in ch_of}
        onsets = g["sample"].to_numpy()
        best = max(chans, key=lambda c: np.mean([np.ptp(f_f[c, s : s + seg_n]) for s in onsets]))
        peaks = [s + int(np.argmax(np.abs(f_f[best, s : s + seg_n]))) for s in onsets]
        peaks = [p for p in peaks if half <= p < x.shape[1] - half]
        if not peaks:
            continue
        tpl = np.mean([f_f[best, p - half : p + half + 1] for p in peaks], axis=0)
        tpl /= np.sqrt((tpl * tpl).sum())
        out = signal.fftconvolve(x[best], tpl[::-1], mode="same")
        out_noise = signal.fftconvolve(n_f[best], tpl[::-1], mode="same")
        sd = dsp.robust_sd(out_noise)
        level = rice_level(out_noise, fs, FALSE_PER_H)
        allowed = FDR * n_site[(site, side)] / hours / k_site[(site, side)]
        busy = rice_level(out_noise, fs, max(FALSE_PER_H, allowed))
        z = np.array(
            [np.abs(out[p - PEAK_SEARCH_N : p + PEAK_SEARCH_N + 1]).max() / sd for p in peaks]
        )
        found += int((z >= level).sum())
        found_busy += int((z >= busy).sum())
        total += len(peaks)
    n = max(total, 1)
    return {**case, "potentials": total, "findable": found / n, "busy": found_busy / n}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--runs",
        help="comma list of scenario:snr_db:nuisances (default: every scenario at 6 dB "
        "with each nuisance set that includes mains, ECG and motion)",
    )
    p.add_argument("--duration", type=float, default=600.0, help="recording length in s")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    cases = make_cases(a.duration, list(SCENARIOS), SNRS_DB, list(NUISANCE_SETS))
    if a.runs:
        want = [tuple(r.split(":")) for r in a.runs.split(",")]
        pick = [c for c in cases if (c["scenario"], f"{c['snr_db']:g}", c["nuisances"]) in want]
    else:
        pick = [
            c
            for c in cases
            if c["snr_db"] == 6.0
            and c["nuisances"] in WITH_NUISANCES
            and c["scenario"] != "healthy"
        ]
    print(
        "| Scenario | SNR dB | Nuisances | Potentials | Findable at 1 false per hour "
        f"| ... at the busy-site level ({FDR:g}) |"
    )
    print("|---|---|---|---|---|---|")
    for c in pick:
        r = ceiling(c)
        print(
            f"| {r['scenario']} | {r['snr_db']:g} | {r['nuisances']} | {r['potentials']} "
            f"| {r['findable']:.3f} | {r['busy']:.3f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
