"""Exports of an analysis: EDF+ with annotations, BIDS-EMG derivatives, MNE, pandas.

- :func:`export_edf`: a copy of the recording as EDF+ (or BDF+) whose
  annotations are the events, so EDF viewers (EDFbrowser, MNE) show them.
  It writes through :func:`emgtool.io.write.write_edf` (edfio), which needs the
  whole recording in memory: about ``4 × n_channels × n_samples`` bytes for
  the float32 data plus a float64 copy of one channel at a time (a 64-channel,
  2048 Hz, 30-minute recording is ~0.9 GB).  For longer recordings, export
  per segment (``recording.slice``) or keep events.tsv beside the original file.
- :func:`write_bids`: ``*_events.tsv``/``.json``, ``*_channels.tsv`` (with
  ``target_muscle`` and ``group``), ``*_emg.json`` (all REQUIRED fields of
  BIDS-EMG) and ``dataset_description.json``; optionally the data as ``_emg.edf``.
- :func:`to_mne_annotations`: :class:`mne.Annotations` with ``ch_names`` per event.
- :func:`to_dataframe`: the event table as a pandas DataFrame.

Examples
--------
>>> from emgtool.report.exports import annotation_text
>>> annotation_text("fasciculation", "biceps", "L")
'fasciculation biceps L'
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from emgtool._version import __version__
from emgtool.errors import EmgtoolError
from emgtool.events import EVENT_KINDS, normalise_events, write_events_tsv
from emgtool.report.summary import site_label

__all__ = [
    "annotation_text",
    "edf_annotations",
    "export_edf",
    "to_mne_annotations",
    "to_dataframe",
    "write_bids",
    "bids_label",
]


def annotation_text(kind: str, site: str, side: str) -> str:
    """Annotation text of one event: ``"<trial_type> <site> [<side>]"``."""
    return f"{kind} {site_label(site, side)}"


def _select(analysis, kinds) -> pd.DataFrame:
    ev = normalise_events(analysis.events)
    kinds = tuple(kinds) if kinds is not None else EVENT_KINDS
    return ev[ev["trial_type"].astype(str).isin(kinds)]


def edf_annotations(analysis, kinds=None) -> list[tuple[float, float, str]]:
    """``(onset_s, duration_s, text)`` for every event of ``kinds`` (default: all)."""
    ev = _select(analysis, kinds)
    on = ev["onset"].to_numpy(dtype=float)
    du = np.nan_to_num(ev["duration"].to_numpy(dtype=float), nan=0.0)
    txt = [
        annotation_text(k, s, d)
        for k, s, d in zip(
            ev["trial_type"].astype(str),
            ev["site"].astype(str),
            ev["side"].astype(str),
            strict=True,
        )
    ]
    return list(zip(on.tolist(), du.tolist(), txt, strict=True))


def export_edf(
    analysis, recording, path: str | Path, *, kinds=None, bdf: bool | None = None
) -> Path:
    """Write ``recording`` with the analysis events as EDF+ (BDF+ for ``.bdf``) annotations.

    Parameters
    ----------
    analysis : Analysis
        Must come from this recording (same sampling rate and length).
    recording : Recording
        The whole recording (``emgtool.read(path)``), held in memory.
    path : path
        Output file; never the input file.
    kinds : iterable of str, optional
        Which trial types to annotate (default: all, including artefacts).

    Returns
    -------
    Path
    """
    from emgtool.io.write import write_edf

    path = Path(path)
    if recording.fs != analysis.fs or recording.n_samples != analysis.n_samples:
        raise EmgtoolError(
            f"{path}: the recording ({recording.n_samples} samples at {recording.fs:g} Hz) is not the "
            f"one analysed ({analysis.n_samples} samples at {analysis.fs:g} Hz)"
        )
    src = (analysis.source or {}).get("path")
    if src and Path(src).resolve() == path.resolve():
        raise EmgtoolError(f"{path}: refusing to overwrite the input recording")
    # Whole data records are required; a record of 1/fs·k seconds that divides the
    # length avoids padding when possible.
    record_s = 1.0
    n_rec = int(round(recording.fs))
    if recording.n_samples % n_rec:
        for k in (0.5, 0.25, 0.2, 0.1):
            if (recording.fs * k).is_integer() and recording.n_samples % int(
                recording.fs * k
            ) == 0:
                record_s = k
                break
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write_edf(
        tmp,
        recording,
        annotations=edf_annotations(analysis, kinds),
        bdf=bdf if bdf is not None else path.suffix.lower() == ".bdf",
        record_s=record_s,
    )
    tmp.replace(path)
    return path


def to_mne_annotations(analysis, kinds=None):
    """Events as :class:`mne.Annotations` (description = trial_type, ch_names from ``channel``).

    ``orig_time`` is None: onsets are seconds from the first sample, as in events.tsv.
    """
    import mne

    ev = _select(analysis, kinds)
    chans = [
        tuple(c for c in str(x).split("|") if c) if isinstance(x, str) else ()
        for x in ev["channel"]
    ]
    return mne.Annotations(
        onset=ev["onset"].to_numpy(dtype=float),
        duration=np.nan_to_num(ev["duration"].to_numpy(dtype=float), nan=0.0),
        description=ev["trial_type"].astype(str).to_numpy(),
        ch_names=chans,
    )


def to_dataframe(analysis, kinds=None) -> pd.DataFrame:
    """The event table (columns of events.tsv, sorted) plus ``site_label``; a copy."""
    ev = _select(analysis, kinds).copy()
    ev["site_label"] = [
        site_label(s, d)
        for s, d in zip(ev["site"].astype(str), ev["side"].astype(str), strict=True)
    ]
    return ev.reset_index(drop=True)


# ---------------------------------------------------------------------- BIDS
def bids_label(text: str) -> str:
    """A BIDS entity label: letters and digits only."""
    out = re.sub(r"[^A-Za-z0-9]", "", str(text))
    return out or "01"


def _channels_tsv(analysis) -> pd.DataFrame:
    from emgtool.sites import muscle

    lo, hi = analysis.config.band_hz
    rows = []
    for ch in analysis.channels:
        m = muscle(ch.site)
        side = {"L": "left", "R": "right"}.get(ch.side)
        target = (m.name if m else ch.site) + (f" ({side})" if side else "")
        q = (
            analysis.channel_quality.get(ch.label, {})
            if isinstance(analysis.channel_quality, dict)
            else {}
        )
        flags = [str(f) for f in (q.get("flags") or [])] if isinstance(q, dict) else []
        bad = any(f.split(":")[0] in ("flat", "disconnected", "clipped") for f in flags)
        rows.append(
            {
                "name": ch.label,
                "type": "EMG",
                "units": "µV",
                "target_muscle": target if ch.site != "unknown" else "n/a",
                "group": site_label(ch.site, ch.side),
                "sampling_frequency": analysis.fs,
                "low_cutoff": "n/a",
                "high_cutoff": "n/a",
                "notch": "n/a",
                "status": "bad" if bad else "good",
                "status_description": ", ".join(flags) if flags else "n/a",
                "description": f"region: {ch.region}"
                + (f"; electrode {ch.electrode}" if ch.electrode else ""),
            }
        )
    return pd.DataFrame(rows)


def _emg_json(analysis, task: str) -> dict:
    lo, hi = analysis.config.band_hz
    return {
        "TaskName": task,
        "TaskDescription": "Resting surface-EMG recording analysed for fasciculations and cramps.",
        "EMGPlacementScheme": "Other",
        "EMGPlacementSchemeDescription": (
            "Surface electrodes over the muscles named per channel in channels.tsv "
            "(target_muscle, group); exact electrode positions were not recorded by emgtool."
        ),
        "EMGReference": "n/a (not recorded in the source file)",
        "SamplingFrequency": float(analysis.fs),
        "PowerLineFrequency": float(analysis.mains_hz) if analysis.mains_hz else "n/a",
        # The exported data are the unfiltered samples; emgtool's detection filters
        # (band-pass, mains notch) are described in dataset_description.json.
        "SoftwareFilters": "n/a",
        "EMGChannelCount": len(analysis.channels),
        "RecordingDuration": float(analysis.duration_s),
        "RecordingType": "continuous",
        "SoftwareVersions": f"emgtool {__version__}",
    }


def write_bids(
    analysis,
    out_dir: str | Path,
    *,
    subject: str | None = None,
    session: str | None = None,
    task: str = "rest",
    recording=None,
) -> dict[str, Path]:
    """Write BIDS-EMG derivatives of an analysis under ``out_dir``.

    Parameters
    ----------
    subject : str, optional
        BIDS subject label; default: derived from the pseudonymous ``recording_id``.
    session : str, optional
    task : str
        BIDS task label (``rest``).
    recording : Recording, optional
        If given, the data are also written as ``*_emg.edf`` (EDF+, events as annotations).

    Returns
    -------
    dict
        Paths by kind: ``events_tsv``, ``events_json``, ``channels_tsv``, ``emg_json``,
        ``dataset_description`` and, with ``recording``, ``emg_edf``.
    """
    from emgtool.report import write_json_atomic, write_text_atomic

    out_dir = Path(out_dir)
    sub = bids_label(subject if subject is not None else str(analysis.recording_id)[-12:])
    parts = (
        [f"sub-{sub}"]
        + ([f"ses-{bids_label(session)}"] if session else [])
        + [f"task-{bids_label(task)}"]
    )
    folder = out_dir / f"sub-{sub}" / (f"ses-{bids_label(session)}" if session else "") / "emg"
    folder.mkdir(parents=True, exist_ok=True)
    stem = "_".join(parts)
    paths: dict[str, Path] = {}
    ev_path = folder / f"{stem}_events.tsv"
    write_events_tsv(analysis.events, ev_path)
    paths["events_tsv"] = ev_path
    paths["events_json"] = ev_path.with_suffix(".json")
    ch = _channels_tsv(analysis)
    paths["channels_tsv"] = write_text_atomic(
        folder / f"{stem}_channels.tsv", ch.to_csv(sep="\t", index=False, lineterminator="\n")
    )
    paths["emg_json"] = write_json_atomic(folder / f"{stem}_emg.json", _emg_json(analysis, task))
    lo, hi = analysis.config.band_hz
    desc = {
        "Name": "emgtool fasciculation and cramp events",
        "BIDSVersion": "1.11.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "emgtool",
                "Version": __version__,
                "Description": (
                    f"Events detected on causally band-pass filtered data ({lo:g}-{hi:g} Hz, order "
                    f"{analysis.config.filter_order}) with mains ({analysis.mains_hz or 'none'} Hz) and "
                    "harmonics removed. A research tool, not a diagnosis."
                ),
            }
        ],
    }
    paths["dataset_description"] = write_json_atomic(out_dir / "dataset_description.json", desc)
    if recording is not None:
        paths["emg_edf"] = export_edf(analysis, recording, folder / f"{stem}_emg.edf")
    return paths
