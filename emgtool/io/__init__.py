"""File input and output: one registry of readers keyed by file suffix.

Every reader opens a file lazily and returns a :class:`Source`: the
sampling rate, channels and length are known at once, samples are read on
demand in half-open ranges.  Iterating chunks never loads the whole file.

Examples
--------
>>> import emgtool.io as eio
>>> sorted(eio.READERS)  # doctest: +SKIP
['.bdf', '.csv', '.edf', '.tsv', '.txt']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from emgtool.errors import ConfigError, ReadError
from emgtool.recording import DTYPE, Channel, Recording

__all__ = [
    "Source",
    "READERS",
    "register_reader",
    "open_source",
    "as_source",
    "read",
    "iter_chunks",
    "DEFAULT_CHUNK_S",
]

#: Default chunk length for offline iteration.  Chosen by measurement
#: (benchmarks/bench_layout.py): sosfilt throughput reaches its plateau from
#: a few thousand samples per call, and 1 s at 2 kHz × 64 channels is 0.5 MB.
DEFAULT_CHUNK_S = 2.0


@dataclass(eq=False)
class Source:
    """A lazily read recording.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    channels : tuple of Channel
        Channel metadata.
    n_samples : int
        Number of samples per channel.
    read_block : callable
        ``read_block(start, stop) -> ndarray (n_channels, stop - start)``, float32 µV;
        ``0 <= start <= stop <= n_samples``.
    start_time : datetime or None
        Wall-clock time of sample 0.
    meta : dict
        Facts from the reader: ``path``, ``format``, ``warnings`` (list of str),
        ``subject`` (identifiers; never written to outputs unless asked), etc.
    """

    fs: float
    channels: tuple[Channel, ...]
    n_samples: int
    read_block: Callable[[int, int], NDArray[np.float32]]
    start_time: datetime | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def read(self, start: int = 0, stop: int | None = None) -> Recording:
        """Samples ``[start, stop)`` as a :class:`Recording` chunk."""
        stop = self.n_samples if stop is None else min(int(stop), self.n_samples)
        start = max(0, min(int(start), stop))
        data = self.read_block(start, stop)
        return Recording(
            np.ascontiguousarray(data, dtype=DTYPE),
            self.fs,
            self.channels,
            first_sample=start,
            start_time=self.start_time,
            meta=self.meta,
        )

    def chunks(self, chunk_samples: int | None = None) -> Iterator[Recording]:
        """Consecutive chunks covering the whole source."""
        if chunk_samples is None:
            chunk_samples = max(1, int(round(DEFAULT_CHUNK_S * self.fs)))
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples}")
        for a in range(0, self.n_samples, chunk_samples):
            yield self.read(a, a + chunk_samples)

    def with_channels(self, channels: Sequence[Channel]) -> Source:
        """The same source with other channel metadata (sites from a montage)."""
        return Source(
            self.fs, tuple(channels), self.n_samples, self.read_block, self.start_time, self.meta
        )

    @classmethod
    def from_recording(cls, rec: Recording) -> Source:
        """Wrap an in-memory recording."""
        off = rec.first_sample

        def read_block(a: int, b: int) -> NDArray[np.float32]:
            return rec.data[:, a:b]

        src = cls(rec.fs, rec.channels, rec.n_samples, read_block, rec.start_time, dict(rec.meta))
        src.meta.setdefault("first_sample", off)
        return src


#: suffix → opener(path, **options) -> Source
READERS: dict[str, Callable[..., Source]] = {}


def register_reader(*suffixes: str) -> Callable:
    """Decorator registering an opener for file suffixes (lower case, with dot)."""

    def deco(fn: Callable[..., Source]) -> Callable[..., Source]:
        for s in suffixes:
            READERS[s.lower()] = fn
        return fn

    return deco


def _load_readers() -> None:
    # Imported for their registration side effect.
    from emgtool.io import csvfile, edf  # noqa: F401


def open_source(
    path: str | Path,
    *,
    sites: Sequence[str] | str | None = None,
    montage: str | Path | dict | None = None,
    **options,
) -> Source:
    """Open a recording file lazily.

    Parameters
    ----------
    path : str or Path
        EDF/EDF+/BDF/BDF+ or CSV file.
    sites : list of str or str, optional
        One site per channel (``"Biceps L,Biceps R"``); overrides the labels.
    montage : path or dict, optional
        TOML montage (see :func:`emgtool.sites.load_montage`).
    **options
        Reader options, e.g. ``fs=`` and ``unit=`` for CSV.
    """
    from emgtool.sites import assign_sites, load_montage

    _load_readers()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise ReadError(
            path,
            f"unsupported file type {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(sorted(READERS))}",
        )
    if not path.exists():
        raise ReadError(path, "file not found")
    if path.is_dir():
        raise ReadError(path, "is a folder, expected a recording file")
    src = READERS[suffix](path, **options)
    if sites is not None or montage is not None:
        if montage is not None and not isinstance(montage, dict):
            montage = load_montage(montage)
        src = src.with_channels(
            assign_sites([c.label for c in src.channels], sites, montage=montage)
        )
    return src


def as_source(obj, **kw) -> Source:
    """A :class:`Source` from a path, a :class:`Source`, a :class:`Recording`,
    an ``mne.io.Raw``, or an array (``as_source(data, fs=2000, labels=[...])``).

    ``sites=`` / ``montage=`` apply to every kind; other keywords go to the
    file reader (paths) or to :func:`emgtool.io.arrays.source_from_array`.
    """
    from emgtool.sites import assign_sites, load_montage

    if isinstance(obj, (str, Path)):
        return open_source(obj, **kw)
    sites = kw.pop("sites", None)
    montage = kw.pop("montage", None)
    if isinstance(obj, Source):
        src = obj
    elif isinstance(obj, Recording):
        src = Source.from_recording(obj)
    elif isinstance(obj, np.ndarray) or (isinstance(obj, (list, tuple)) and "fs" in kw):
        from emgtool.io.arrays import source_from_array

        if "fs" not in kw:
            raise ConfigError(
                "an array needs a sampling rate: as_source(data, fs=..., labels=...)"
            )
        return source_from_array(obj, sites=sites, **kw)
    else:
        try:
            import mne

            is_raw = isinstance(obj, mne.io.BaseRaw)
        except ImportError:  # pragma: no cover
            is_raw = False
        if not is_raw:
            raise TypeError(f"cannot make a recording source from {type(obj).__name__}")
        from emgtool.io.arrays import source_from_raw

        src = source_from_raw(obj)
    if kw:
        raise ConfigError(f"options {', '.join(sorted(kw))} apply to files or arrays only")
    if sites is not None or montage is not None:
        if montage is not None and not isinstance(montage, dict):
            montage = load_montage(montage)
        src = src.with_channels(
            assign_sites([c.label for c in src.channels], sites, montage=montage)
        )
    return src


def read(path: str | Path, **kw) -> Recording:
    """Read a whole recording file into memory (see :func:`open_source`)."""
    return open_source(path, **kw).read()


def iter_chunks(
    path: str | Path, *, chunk_s: float = DEFAULT_CHUNK_S, **kw
) -> Iterator[Recording]:
    """Iterate a recording file in chunks of ``chunk_s`` seconds without loading it whole."""
    src = open_source(path, **kw)
    yield from src.chunks(max(1, int(round(chunk_s * src.fs))))
