"""Sources from in-memory objects: an ``mne.io.Raw`` or a numpy array.

Examples
--------
>>> import numpy as np
>>> from emgtool.io.arrays import source_from_array
>>> src = source_from_array(np.zeros((2, 4000)), fs=2000, labels=["Biceps L", "TA R"])
>>> src.n_samples, [c.site for c in src.channels]
(4000, ['biceps', 'tibialis_anterior'])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emgtool.errors import ConfigError
from emgtool.io import Source
from emgtool.recording import DTYPE, Recording

__all__ = ["source_from_raw", "source_from_array"]


def source_from_raw(raw, *, sites: Sequence[str] | str | None = None) -> Source:
    """Wrap an ``mne.io.BaseRaw`` lazily (EMG and EEG channels, V → µV).

    MNE types every EDF channel ``eeg`` unless told otherwise, so both EMG and
    EEG channels are taken; other types (stim, misc, ECG) are left out.
    ``raw.get_data(picks, start, stop)`` is called per block, so an unloaded
    Raw stays unloaded.
    """
    import mne

    from emgtool.sites import assign_sites

    if not isinstance(raw, mne.io.BaseRaw):
        raise TypeError(f"expected an mne.io.Raw, got {type(raw).__name__}")
    picks = mne.pick_types(raw.info, emg=True, eeg=True, exclude=[])
    if len(picks) == 0:
        types = sorted(set(raw.get_channel_types()))
        raise ConfigError(f"the MNE Raw has no EMG or EEG channel (channel types: {types})")
    labels = [raw.ch_names[i] for i in picks]
    fs = float(raw.info["sfreq"])
    n = int(raw.n_times)

    def read_block(a: int, b: int) -> NDArray[np.float32]:
        if b <= a:
            return np.empty((len(picks), 0), dtype=DTYPE)
        x = raw.get_data(picks=picks, start=a, stop=b, verbose="error")
        return np.ascontiguousarray(x * 1e6, dtype=DTYPE)

    meas = raw.info.get("meas_date")
    start_time: datetime | None = meas.replace(tzinfo=None) if meas is not None else None
    fname = raw.filenames[0] if getattr(raw, "filenames", None) and raw.filenames[0] else None
    meta = {
        "file": getattr(fname, "name", None) if fname is not None else None,
        "format": "mne.io.Raw",
        "warnings": [],
        "identity": {k: str(v) for k, v in (raw.info.get("subject_info") or {}).items()},
        "start_time": start_time.isoformat() if start_time else None,
    }
    return Source(fs, assign_sites(labels, sites), n, read_block, start_time, meta)


def source_from_array(
    data: ArrayLike,
    fs: float,
    labels: Sequence[str] | None = None,
    unit: str = "uV",
    *,
    sites: Sequence[str] | str | None = None,
    start_time: datetime | None = None,
) -> Source:
    """A source over a ``(n_channels, n_samples)`` array (1-D = one channel).

    ``unit`` scales to µV (``"mV"`` → ×1000).  The array is copied once to
    float32 µV; the source then hands out slices of it.
    """
    arr = np.asarray(data)
    if arr.ndim not in (1, 2):
        raise ConfigError(
            f"data must be 1-D or 2-D (n_channels, n_samples), got shape {arr.shape}"
        )
    if arr.ndim == 2 and labels is not None and len(labels) != arr.shape[0]:
        if len(labels) == arr.shape[1]:
            raise ConfigError(
                f"data has shape {arr.shape} but {len(labels)} labels: pass (n_channels, n_samples) "
                "(transpose the array)"
            )
        raise ConfigError(f"data has {arr.shape[0]} channels but {len(labels)} labels")
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise ConfigError(f"fs must be a number, got {fs!r}") from None
    if not (np.isfinite(fs) and fs > 0):
        raise ConfigError(f"fs must be a positive number, got {fs!r}")
    rec = Recording.from_array(
        arr,
        fs,
        labels,
        unit=unit,
        sites=sites,
        start_time=start_time,
        meta={
            "format": "array",
            "warnings": [],
            "identity": {},
            "file": None,
            "start_time": start_time.isoformat() if start_time else None,
        },
    )
    return Source.from_recording(rec)
