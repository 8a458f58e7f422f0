"""The event table: one row per fasciculation, cramp or rejected artefact.

Events travel through the API as a pandas DataFrame with the columns of
``events.tsv`` (BIDS-style, tab separated).  The first ten columns are a
contract other tools read; more may follow.  Truth files written by the
simulator (``*.truth.tsv``) use the same columns.

Examples
--------
>>> from emgtool.events import empty_events, EVENT_COLUMNS
>>> list(empty_events().columns)[:4]
['onset', 'duration', 'trial_type', 'sample']
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from emgtool.errors import ReadError

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "empty_events",
    "write_events_tsv",
    "read_events_tsv",
    "events_json",
]

FASCICULATION = "fasciculation"
CRAMP = "cramp"
ARTIFACT = "artifact"
VOLUNTARY = "voluntary"
#: trial_type values.  Only ``fasciculation`` and ``cramp`` are ever counted.
EVENT_KINDS = (FASCICULATION, CRAMP, ARTIFACT, VOLUNTARY)

#: column → (dtype, description, unit or None).  Order is the file's column order.
EVENT_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "onset": (
        "float64",
        "Onset of the event in seconds from the first sample of the recording.",
        "s",
    ),
    "duration": ("float64", "Duration of the event.", "s"),
    "trial_type": (
        "string",
        "Kind of event: fasciculation, cramp, artifact (rejected, never counted) or voluntary (sustained activity that is not a cramp).",
        None,
    ),
    "sample": (
        "int64",
        "Index of the onset sample (0-based, at the recording's sampling rate).",
        None,
    ),
    "site": ("string", "Canonical muscle name (emgtool.sites vocabulary), or 'unknown'.", None),
    "side": ("string", "Body side: L, R or n/a.", None),
    "region": ("string", "Body region: bulbar, cervical, thoracic, lumbosacral or unknown.", None),
    "channel": ("string", "Channel label(s) that saw the event, '|'-separated.", None),
    "amplitude_uv": (
        "float64",
        "Peak-to-peak amplitude on the channel where it is largest (fasciculation), or peak envelope amplitude (cramp, voluntary).",
        "uV",
    ),
    "duration_ms": ("float64", "Duration of the potential (fasciculation) or burst.", "ms"),
    "phases": ("Int64", "Number of phases (baseline crossings + 1) of the potential.", None),
    "turns": (
        "Int64",
        "Number of turns (direction changes larger than the noise) of the potential.",
        None,
    ),
    "area_uv_ms": ("float64", "Area under the rectified potential.", "uV*ms"),
    "shape": (
        "Int64",
        "Shape cluster within the site (a proxy for the motor unit); -1 if unassigned.",
        None,
    ),
    "multiplet": (
        "Int64",
        "Position within a doublet/multiplet (repeat of the same shape < 20 ms): 0 = first or single.",
        None,
    ),
    "pair": (
        "boolean",
        "True if the same shape repeats 10-110 ms before or after (F-wave-like pair).",
        None,
    ),
    "discharge": (
        "string",
        "isolated (no fasciculation within 250 ms on either side at the site), continual, or n/a.",
        None,
    ),
    "mean_amplitude_uv": (
        "float64",
        "Mean envelope amplitude over the burst (cramp, voluntary).",
        "uV",
    ),
    "peak_s": ("float64", "Time of the largest deflection, seconds from the first sample.", "s"),
    "reason": (
        "string",
        "Why an artefact was rejected (common-mode, ecg, clipped, ...), or n/a.",
        None,
    ),
}

_INT_COLS = [c for c, (t, *_rest) in EVENT_COLUMNS.items() if t in ("int64", "Int64")]


def empty_events() -> pd.DataFrame:
    """An event table with no rows and the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, (t, *_r) in EVENT_COLUMNS.items()})


def normalise_events(df: pd.DataFrame) -> pd.DataFrame:
    """Add missing columns (as n/a), order columns, sort by onset then site."""
    out = df.copy()
    for c, (t, *_r) in EVENT_COLUMNS.items():
        if c not in out.columns:
            dtype = "Int64" if t == "int64" else t  # a missing integer column holds NA
            out[c] = pd.Series(
                [np.nan if t == "float64" else pd.NA] * len(out), dtype=dtype, index=out.index
            )
    extra = [c for c in out.columns if c not in EVENT_COLUMNS]
    out = out[list(EVENT_COLUMNS) + extra]
    order = ["sample" if out["sample"].notna().all() else "onset", "site", "side", "trial_type"]
    out = out.sort_values(order, kind="stable").reset_index(drop=True)
    return out


def write_events_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``events.tsv`` (and ``events.json`` beside it)."""
    path = Path(path)
    df = normalise_events(df)
    df.to_csv(path, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    path.with_suffix(".json").write_text(
        json.dumps(events_json(), indent=2) + "\n", encoding="utf-8"
    )


def read_events_tsv(path: str | Path) -> pd.DataFrame:
    """Read an ``events.tsv`` or ``*.truth.tsv`` written by emgtool (or a compatible tool)."""
    path = Path(path)
    try:
        df = pd.read_csv(
            path,
            sep="\t",
            na_values=["n/a"],
            keep_default_na=False,
            dtype={"site": str, "side": str, "region": str, "channel": str},
        )
    except FileNotFoundError:
        raise ReadError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ReadError(path, f"not a valid events table: {e}") from None
    missing = [c for c in ("onset", "duration", "trial_type") if c not in df.columns]
    if missing:
        raise ReadError(path, f"missing column(s) {', '.join(missing)}")
    for c in ("site", "side", "region", "channel"):
        if c in df.columns:
            df[c] = df[c].fillna("n/a" if c == "side" else "unknown" if c != "channel" else "")
    if "sample" in df.columns:
        df["sample"] = df["sample"].astype("Int64")
    return df


def events_json() -> dict:
    """BIDS sidecar describing each column of ``events.tsv``."""
    out: dict = {}
    for c, (_t, desc, unit) in EVENT_COLUMNS.items():
        entry: dict = {"Description": desc}
        if unit:
            entry["Units"] = unit
        if c == "channel":
            entry["Delimiter"] = "|"
        if c == "trial_type":
            entry["Levels"] = {
                "fasciculation": "A single spontaneous motor-unit potential (fasciculation potential).",
                "cramp": "Involuntary sustained burst of high-rate motor-unit firing at rest.",
                "artifact": "Rejected: motion/electrical artefact, ECG, clipping. Never counted.",
                "voluntary": "Sustained activity that is not classified as cramp. Never counted.",
            }
        out[c] = entry
    return out


def as_int_array(values) -> np.ndarray:
    """Integer numpy array from a possibly-nullable column (NA → -1)."""
    return pd.Series(values).astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
