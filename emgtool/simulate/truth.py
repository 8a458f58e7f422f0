"""The ground-truth table: events the simulator placed, in the events.tsv columns.

Rows are plain dicts collected by the engine; :func:`truth_frame` turns them
into the event table of :mod:`emgtool.events` and fills the columns that
follow from the whole set of fasciculations at a site: ``pair`` (the same
unit again 10-110 ms before or after) and ``discharge`` (``isolated`` if no
other fasciculation at the site within 250 ms on either side, else
``continual``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emgtool.events import EVENT_COLUMNS, normalise_events

__all__ = ["truth_frame", "PAIR_MS", "ISOLATED_MS"]

PAIR_MS = (10.0, 110.0)
ISOLATED_MS = 250.0

#: Extra truth-only columns (after the events.tsv ones).
EXTRA_COLUMNS = {"snr_db": "float64", "unit": "Int64"}


def _fill_fp_context(df: pd.DataFrame) -> None:
    n = len(df)
    pair = np.zeros(n, dtype=bool)
    discharge = np.full(n, "n/a", dtype=object)
    fp = (df["trial_type"] == "fasciculation").to_numpy()
    if fp.any():
        t_all = df["onset"].to_numpy(dtype=float) * 1000.0
        shape_all = df["shape"].fillna(-1).to_numpy(dtype=np.int64)
        keys = (df["site"].astype(str) + "\0" + df["side"].astype(str)).to_numpy()
        for key in np.unique(keys[fp]):
            idx = np.flatnonzero(fp & (keys == key))
            idx = idx[np.argsort(t_all[idx], kind="stable")]
            t = t_all[idx]
            gap_prev = np.diff(t, prepend=-np.inf)
            gap_next = np.diff(t, append=np.inf)
            isolated = (gap_prev > ISOLATED_MS) & (gap_next > ISOLATED_MS)
            discharge[idx] = np.where(isolated, "isolated", "continual")
            shape = shape_all[idx]
            for u in np.unique(shape):
                m = idx[shape == u]
                d = np.diff(t_all[m])
                ok = (d >= PAIR_MS[0]) & (d <= PAIR_MS[1])
                pair[m[:-1][ok]] = True
                pair[m[1:][ok]] = True
    df["pair"] = (
        pd.array(np.where(fp, pair, pd.NA), dtype="boolean")
        if n
        else pd.array([], dtype="boolean")
    )
    df["discharge"] = pd.array(discharge, dtype="string")


def truth_frame(rows: list[dict]) -> pd.DataFrame:
    """Event table (events.tsv columns + ``snr_db``, ``unit``) from the engine's rows."""
    df = pd.DataFrame(rows)
    for c, (t, *_r) in EVENT_COLUMNS.items():
        if c not in df.columns:
            fill = np.nan if t == "float64" else pd.NA
            df[c] = pd.Series([fill] * len(df), dtype=t, index=df.index)
        elif t in ("Int64", "string", "boolean"):
            df[c] = df[c].astype(t)
        elif t == "int64":
            df[c] = df[c].astype("int64")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c, t in EXTRA_COLUMNS.items():
        if c in df.columns:
            df[c] = df[c].astype(t)
        else:
            df[c] = pd.Series(
                [np.nan if t == "float64" else pd.NA] * len(df), dtype=t, index=df.index
            )
    _fill_fp_context(df)
    df["reason"] = df["reason"].fillna("n/a")
    return normalise_events(df)
