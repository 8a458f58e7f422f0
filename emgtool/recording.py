"""The one data type for samples: :class:`Recording` (a whole file or a chunk).

Layout
------
``data`` is a C-contiguous ``(n_channels, n_samples)`` float32 array in µV.
Channel-major keeps each channel's samples contiguous, which is the layout
``scipy.signal.sosfilt(..., axis=-1)`` is fastest on and the one MNE returns,
so no transpose copy is ever made on the hot path (see
``benchmarks/bench_layout.py``).  Missing samples (gaps, dropped packets)
are NaN; the pipeline masks them.

Sample ranges are half-open ``[start, stop)`` and absolute: a chunk is simply
a ``Recording`` whose ``first_sample`` is not 0.

Examples
--------
>>> import numpy as np
>>> from emgtool.recording import Recording
>>> rec = Recording.from_array(np.zeros((2, 2000)), fs=2000, labels=["Biceps L", "Biceps R"])
>>> rec.duration_s
1.0
>>> rec.slice(500, 1500).first_sample
500
>>> [c.site for c in rec.channels]
['biceps', 'biceps']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Channel", "Recording", "DTYPE"]

#: Storage dtype of samples.  float32 holds 24-bit ADC data exactly enough
#: (7 significant digits) and halves memory traffic against float64.
DTYPE = np.float32


@dataclass(frozen=True)
class Channel:
    """Metadata of one channel.

    Parameters
    ----------
    label : str
        The label as it appears in the file (``"EMG Biceps L"``).
    site : str
        Canonical muscle name (``"biceps"``), ``"unknown"`` if not recognised.
    side : str
        ``"L"``, ``"R"`` or ``"n/a"``.
    region : str
        ``"bulbar"``, ``"cervical"``, ``"thoracic"``, ``"lumbosacral"`` or ``"unknown"``.
    unit : str
        Unit of ``Recording.data`` for this channel; always ``"uV"`` once read.
    electrode : int or None
        Electrode number within a site (HD-sEMG grids: ``"Biceps L 07"`` → 7).
    """

    label: str
    site: str = "unknown"
    side: str = "n/a"
    region: str = "unknown"
    unit: str = "uV"
    electrode: int | None = None

    @property
    def site_key(self) -> tuple[str, str]:
        """``(site, side)``: the unit reports are grouped by."""
        return (self.site, self.side)

    @property
    def site_label(self) -> str:
        """Readable site name, e.g. ``"biceps L"``."""
        return self.site if self.side == "n/a" else f"{self.site} {self.side}"


@dataclass(frozen=True, eq=False)
class Recording:
    """Samples of one continuous run at one sampling rate.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Samples in µV, float32, read-only.
    fs : float
        Sampling rate in Hz.
    channels : tuple of Channel
        One per row of ``data``.
    first_sample : int
        Absolute index of the first sample (0 for a whole recording).
    start_time : datetime or None
        Wall-clock time of sample 0 of the whole recording (not of this chunk).
    meta : dict
        Free-form facts from the reader (file name, warnings, subject id).
    """

    data: NDArray[np.float32]
    fs: float
    channels: tuple[Channel, ...]
    first_sample: int = 0
    start_time: datetime | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = self.data
        if not (isinstance(data, np.ndarray) and data.dtype == DTYPE and data.flags.c_contiguous):
            data = np.ascontiguousarray(data, dtype=DTYPE)
        if data.ndim != 2:
            raise ValueError(f"data must be 2-D (n_channels, n_samples), got shape {data.shape}")
        if data.shape[0] != len(self.channels):
            raise ValueError(f"got {data.shape[0]} rows of data but {len(self.channels)} channels")
        if not (np.isfinite(self.fs) and self.fs > 0):
            raise ValueError(f"fs must be a positive number, got {self.fs!r}")
        if data.flags.writeable:
            data = data.view()
            data.setflags(write=False)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "fs", float(self.fs))
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "first_sample", int(self.first_sample))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_array(
        cls,
        data: ArrayLike,
        fs: float,
        labels: Sequence[str] | None = None,
        *,
        unit: str = "uV",
        sites: Sequence[str] | str | None = None,
        first_sample: int = 0,
        start_time: datetime | None = None,
        meta: dict | None = None,
    ) -> Recording:
        """Build a recording from a ``(n_channels, n_samples)`` array.

        ``unit`` (``"uV"``, ``"mV"``, ``"V"``) scales the values to µV.  Channel
        labels are parsed into sites; ``sites`` overrides them (see
        :func:`emgtool.sites.assign_sites`).
        """
        from emgtool.sites import assign_sites, unit_scale_to_uv

        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr[np.newaxis, :]
        if labels is None:
            labels = [f"EMG{i + 1}" for i in range(arr.shape[0])]
        scale = unit_scale_to_uv(unit)
        arr = np.ascontiguousarray(arr, dtype=np.float64 if scale != 1 else DTYPE)
        if scale != 1:
            arr = (arr * scale).astype(DTYPE)
        channels = assign_sites(list(labels), sites)
        return cls(arr, fs, channels, first_sample, start_time, dict(meta or {}))

    # ------------------------------------------------------------------ properties
    @property
    def n_channels(self) -> int:
        return self.data.shape[0]

    @property
    def n_samples(self) -> int:
        return self.data.shape[1]

    @property
    def stop_sample(self) -> int:
        """Absolute index one past the last sample (half-open end)."""
        return self.first_sample + self.n_samples

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.channels]

    def times_s(self) -> NDArray[np.float64]:
        """Time of each sample in seconds from the start of the whole recording."""
        return np.arange(self.first_sample, self.stop_sample) / self.fs

    # ------------------------------------------------------------------ operations
    def slice(self, start: int, stop: int) -> Recording:
        """Samples ``[start, stop)`` in absolute indices (clipped to what is here)."""
        a = max(int(start), self.first_sample) - self.first_sample
        b = min(int(stop), self.stop_sample) - self.first_sample
        b = max(a, b)
        return dataclasses.replace(
            self, data=self.data[:, a:b], first_sample=self.first_sample + a
        )

    def select(self, picks: Iterable[int | str]) -> Recording:
        """Channels by index or label, in the order given."""
        idx = []
        labels = self.labels
        for p in picks:
            if isinstance(p, str):
                if p not in labels:
                    raise KeyError(f"no channel labelled {p!r}; have {labels}")
                idx.append(labels.index(p))
            else:
                idx.append(int(p))
        return dataclasses.replace(
            self,
            data=np.ascontiguousarray(self.data[idx]),
            channels=tuple(self.channels[i] for i in idx),
        )

    def with_channels(self, channels: Sequence[Channel]) -> Recording:
        """The same samples with other channel metadata (e.g. a montage)."""
        return dataclasses.replace(self, channels=tuple(channels))

    @staticmethod
    def concat(parts: Sequence[Recording]) -> Recording:
        """Join consecutive chunks, checking that they are contiguous and alike."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for prev, nxt in zip(parts, parts[1:], strict=False):
            if nxt.first_sample != prev.stop_sample:
                raise ValueError(
                    f"chunks are not contiguous: one ends at sample {prev.stop_sample}, "
                    f"the next starts at {nxt.first_sample}"
                )
            if nxt.fs != first.fs or nxt.channels != first.channels:
                raise ValueError("chunks differ in sampling rate or channels")
        data = np.concatenate([p.data for p in parts], axis=1)
        return dataclasses.replace(first, data=data)

    def chunks(self, chunk_samples: int) -> Iterator[Recording]:
        """Consecutive chunks of at most ``chunk_samples`` samples."""
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples}")
        for a in range(self.first_sample, self.stop_sample, chunk_samples):
            yield self.slice(a, a + chunk_samples)

    def __repr__(self) -> str:
        return (
            f"<Recording {self.n_channels} ch × {self.n_samples} samples at {self.fs:g} Hz"
            f" ({self.duration_s:.3f} s) from sample {self.first_sample}>"
        )
