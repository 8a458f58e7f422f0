"""Ground-truth simulator: resting surface EMG with fasciculations, cramps and nuisances.

:func:`simulate` returns a :class:`~emgtool.recording.Recording` and a truth
table with the columns of ``events.tsv`` (:data:`emgtool.events.EVENT_COLUMNS`,
plus ``snr_db`` and ``unit``), listing every fasciculation, cramp, voluntary
burst and injected artefact exactly where it is in the signal.  The truth is
what a perfect detector should report: fasciculations are never placed
within 0.5 s of a cramp or voluntary burst at their site, within 20 ms of an
electrode-motion artefact, within 80 ms of an R peak at sites that carry
ECG, nor on a disconnected channel or a clipped stretch.

Model details, the SNR definition and measured speed: docs/simulator.md.

Examples
--------
>>> from emgtool.simulate import simulate
>>> rec, truth = simulate("bfs-focal", duration_s=10, seed=1)
>>> rec.fs, rec.n_channels
(2048.0, 16)
>>> sorted(set(truth.loc[truth.trial_type == "fasciculation", "site"]))  # doctest: +SKIP
['gastrocnemius_medial', 'soleus']
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emgtool.errors import ConfigError
from emgtool.recording import Recording
from emgtool.simulate.engine import (
    MEDIAN_FP_PP_UV,
    SNR_REF_PP_UV,
    Simulation,
    parse_nuisances,
    simulate_parts,
)
from emgtool.simulate.nuisances import NUISANCES
from emgtool.simulate.scenarios import SCENARIOS, default_labels

__all__ = [
    "simulate",
    "simulate_parts",
    "simulate_to_file",
    "truth_path",
    "Simulation",
    "SCENARIOS",
    "NUISANCES",
    "MEDIAN_FP_PP_UV",
    "SNR_REF_PP_UV",
    "default_labels",
    "parse_nuisances",
]

#: EDF allows 16 characters per channel label.
EDF_LABEL_MAX = 16


def simulate(
    scenario: str = "als-widespread",
    duration_s: float = 60.0,
    seed: int = 0,
    *,
    fs: float = 2048.0,
    snr_db: float | None = None,
    nuisances: set[str] | str | None = "default",
    mains_hz: float = 50.0,
    flat_channel: bool | str = False,
    clipped_channel: bool = False,
    sites: list[str] | str | None = None,
    n_cramps: int | None = None,
    n_voluntary: int | None = None,
    fp_rate_per_min: float | None = None,
    doublet_prob: float = 0.08,
    progress: bool = False,
) -> tuple[Recording, pd.DataFrame]:
    """Simulate a resting sEMG recording with exact ground truth.

    Parameters
    ----------
    scenario : str
        One of :data:`SCENARIOS`: ``als-widespread``, ``bfs-focal``,
        ``healthy``, ``cramps``, ``hd-grid``.
    duration_s : float
        Length in seconds.
    seed : int
        Seed of ``numpy.random.SeedSequence``; the same seed gives the same output.
    fs : float
        Sampling rate in Hz (2048 by default).
    snr_db : float, optional
        ``20·log10((SNR_REF_PP_UV / 2) / σ)``: σ is the in-band (20-450 Hz)
        RMS of the pink + white background, the same on every channel, and
        ``SNR_REF_PP_UV`` = 50 µV is the smallest fasciculation the model
        makes, so every potential is at least ``snr_db`` above the noise
        (the median one 12 dB more): 0 dB → σ = 25 µV, 20 dB → σ = 2.5 µV.
        Default: σ drawn per channel in 3-8 µV (≈ 10-18 dB).
    nuisances : set or str
        ``"default"`` (all), ``"none"``, or names from :data:`NUISANCES`
        (``pink, white, mains, ecg, wander, motion``), as a set or comma list.
    mains_hz : 50 or 60
    flat_channel : bool or {"flat", "mains"}
        Disconnect one channel: ``True``/``"flat"`` makes it flat (0.05 µV
        noise), ``"mains"`` leaves only 200-1000 µV of mains on it (an open
        electrode picking up hum).  Truth: an ``artifact`` row with reason
        ``flat`` / ``disconnected``.
    clipped_channel : bool
        Make one channel saturate at its rail during 1-2 stretches of 1-4 s
        (truth: ``artifact`` rows with reason ``clipped``).
    sites : list of str, optional
        Channel labels (e.g. ``["Biceps L", "TA R"]``) instead of the scenario's montage.
    n_cramps, n_voluntary : int, optional
        Override the scenario's number of cramps / voluntary bursts.
    fp_rate_per_min : float, optional
        Use this fasciculation rate at every site the scenario makes fasciculate.
    doublet_prob : float
        Mean probability that a discharge is followed by a second one 5-15 ms later.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    recording : Recording
        Samples in µV (float32); ``recording.meta`` records scenario, seed,
        nuisances, per-channel noise RMS and the emgtool version.
    truth : DataFrame
        Event table (``emgtool.events`` columns, plus ``snr_db`` and ``unit``).
    """
    sim = simulate_parts(
        scenario,
        duration_s,
        seed,
        fs=fs,
        snr_db=snr_db,
        nuisances=nuisances,
        mains_hz=mains_hz,
        flat_channel=flat_channel,
        clipped_channel=clipped_channel,
        sites=sites,
        n_cramps=n_cramps,
        n_voluntary=n_voluntary,
        fp_rate_per_min=fp_rate_per_min,
        doublet_prob=doublet_prob,
        progress=progress,
    )
    return sim.recording, sim.truth


def _record_s(n: int, fs: float) -> float:
    """Longest EDF data-record duration ≤ 1 s that divides the recording exactly.

    The duration must fit EDF's 8-character field exactly, or readers would
    derive a wrong sampling rate; if none does, 1 s (edfio pads the end).
    """
    for r in range(min(n, int(fs)), 0, -1):
        d = r / fs
        if n % r == 0 and r == round(d * fs) and len(f"{d:.8g}") <= 8 and float(f"{d:.8g}") == d:
            return d
    return 1.0


def truth_path(path: str | Path) -> Path:
    """``rec.edf`` → ``rec.truth.tsv`` (next to the recording)."""
    path = Path(path)
    return path.with_name(path.stem + ".truth.tsv")


def simulate_to_file(
    path: str | Path,
    scenario: str = "als-widespread",
    duration_s: float = 60.0,
    seed: int = 0,
    **kwargs,
) -> tuple[Recording, pd.DataFrame]:
    """Simulate and write ``path`` (.edf, .bdf or .csv) plus ``<stem>.truth.tsv`` beside it.

    The truth's onsets refer to the written file's first sample.  EDF labels
    are limited to 16 characters; longer labels raise :class:`ConfigError`
    rather than being cut (a cut label could name another muscle).
    """
    from emgtool.events import write_events_tsv
    from emgtool.io.write import write_csv, write_edf

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".edf", ".bdf", ".csv"):
        raise ConfigError(f"{path}: output must end in .edf, .bdf or .csv")
    if not path.parent.exists():
        raise ConfigError(f"{path}: folder {path.parent} does not exist")
    rec, truth = simulate(scenario, duration_s, seed, **kwargs)
    if suffix in (".edf", ".bdf"):
        long = [lab for lab in rec.labels if len(lab) > EDF_LABEL_MAX]
        if long:
            raise ConfigError(
                f"{path}: EDF channel labels have at most {EDF_LABEL_MAX} characters; "
                f"shorten {', '.join(repr(x) for x in long)} or write CSV"
            )
        write_edf(path, rec, record_s=_record_s(rec.n_samples, rec.fs))
    else:
        write_csv(path, rec)
    write_events_tsv(truth, truth_path(path))
    return rec, truth
