"""Append-only EDF+C / BDF+C writer for long and live recordings.

:class:`EdfStreamWriter` writes the header at once with ``number of data
records = -1`` (the EDF+ convention for "still recording"), then appends
whole data records as samples arrive, each followed by an ``EDF Annotations``
signal that carries the record's time-keeping TAL and any annotations added
since.  With ``fsync=True`` every record is flushed to the disk before
:meth:`~EdfStreamWriter.write` returns, so after a crash, a SIGKILL or a
power cut the file holds every acknowledged record and MNE, edfio and
emgtool's reader open it (they infer the record count from the file size).
:meth:`~EdfStreamWriter.close` pads the last partial record, writes the final
record count into the header and fsyncs the file and its folder.

Padding on close
    The last partial record is completed by repeating each channel's last
    value (so filters see no step).  The padded span is marked by the
    annotation ``"emgtool:padding N samples"`` (onset = end of the real data,
    duration = N / fs) in the last record; emgtool's reader trims it, other
    readers show it as an annotation.

Annotations
    The annotation signal holds ``annotation_bytes`` per record (default 512,
    about 15 short annotations).  Annotations that do not fit wait for the
    next record, in order; none is dropped.  On close, records of padding are
    appended until every pending annotation is written.

Clipping
    Values outside the physical range are clipped to it and counted per
    channel (``writer.meta["clipped"]``); NaN samples are written as the
    digital value nearest 0 µV and counted (``writer.meta["nonfinite"]``).

Examples
--------
>>> import numpy as np
>>> from emgtool.io.edf_stream import EdfStreamWriter
>>> with EdfStreamWriter("live.edf", 2000, ["Biceps L", "TA R"]) as w:  # doctest: +SKIP
...     w.write(np.zeros((2, 1500)))
...     w.add_annotation(0.5, 0.0, "cramp start")
...     w.write(np.zeros((2, 2500)))
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from emgtool._fsutil import fsync_dir
from emgtool.recording import Channel

__all__ = ["EdfStreamWriter"]

#: Bytes reserved for the padding TAL written on close.
_PAD_TAL_BYTES = 80
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _field(value: str, width: int, what: str) -> bytes:
    raw = value.encode("ascii", "strict") if value.isascii() else None
    if raw is None:
        raise ValueError(f"{what} {value!r} must be ASCII (EDF header)")
    if len(raw) > width:
        raise ValueError(f"{what} {value!r} is longer than {width} characters (EDF header)")
    return raw.ljust(width, b" ")


def _num8(x: float) -> str:
    """Shortest decimal text of ``x`` that fits 8 characters."""
    if float(x).is_integer() and abs(x) < 1e7:
        return str(int(x))
    for p in range(8, 0, -1):
        s = f"{x:.{p}g}"
        if len(s) <= 8 and "e" not in s:
            return s
    raise ValueError(f"physical range value {x!r} does not fit the 8-character EDF field")


def _onset(x: float) -> bytes:
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return (s if s.startswith("-") else "+" + s).encode("ascii")


class EdfStreamWriter:
    """Append-only EDF+C (or BDF+C) writer; see the module docstring.

    Parameters
    ----------
    path : str or Path
        Output file.  An existing file is never overwritten unless ``overwrite``.
    fs : float
        Sampling rate in Hz; ``fs * record_s`` must be a whole number.
    channels : sequence of str or Channel
        Channel labels (at most 16 ASCII characters each).
    record_s : float
        Data-record duration in seconds (the unit of crash safety).
    bdf : bool
        Write 24-bit BDF+ instead of 16-bit EDF+.
    physical_range_uv : (float, float) or list of them
        Physical range in µV, for all channels or one per channel.  The
        quantisation step is ``range / 65535`` (EDF) or ``range / 16777215`` (BDF).
    fsync : bool
        fsync every record (default) — survives an OS crash, costs a few ms per record.
    start_time : datetime, optional
        Wall-clock start (default: now).
    annotation_bytes : int
        Bytes of the annotation signal per record.
    """

    def __init__(
        self,
        path: str | Path,
        fs: float,
        channels: Sequence[str | Channel],
        *,
        record_s: float = 1.0,
        bdf: bool = False,
        physical_range_uv: tuple[float, float] | Sequence[tuple[float, float]] = (-5000.0, 5000.0),
        fsync: bool = True,
        start_time: datetime | None = None,
        annotation_bytes: int = 512,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fs = float(fs)
        self.record_s = float(record_s)
        spr = self.fs * self.record_s
        if not (spr >= 1 and abs(spr - round(spr)) < 1e-9):
            raise ValueError(f"fs * record_s = {spr:g} must be a whole number of samples")
        self.spr = int(round(spr))
        self.labels = [c.label if isinstance(c, Channel) else str(c) for c in channels]
        if not self.labels:
            raise ValueError("need at least one channel")
        self.n_channels = len(self.labels)
        self.bdf = bool(bdf)
        self.fsync = bool(fsync)
        self._bps = 3 if self.bdf else 2
        self._dig = (-(2**23), 2**23 - 1) if self.bdf else (-32768, 32767)
        ranges = np.asarray(physical_range_uv, dtype=np.float64)
        if ranges.shape == (2,):
            ranges = np.tile(ranges, (self.n_channels, 1))
        if ranges.shape != (self.n_channels, 2):
            raise ValueError("physical_range_uv must be (min, max) or one (min, max) per channel")
        # Quantise with the values as written in the header (8-character fields).
        self._phys_txt = [(_num8(a), _num8(b)) for a, b in ranges]
        phys = np.array([[float(a), float(b)] for a, b in self._phys_txt])
        if np.any(phys[:, 0] >= phys[:, 1]):
            raise ValueError("physical_range_uv: min must be < max")
        self._pmin, self._pmax = phys[:, 0], phys[:, 1]
        self._gain = (self._pmax - self._pmin) / (self._dig[1] - self._dig[0])  # µV per step
        self._zero = np.clip(np.round(self._dig[0] - self._pmin / self._gain), *self._dig)
        if annotation_bytes < 128:
            raise ValueError("annotation_bytes must be at least 128")
        self._ann_spr = -(-int(annotation_bytes) // self._bps)
        self._ann_bytes = self._ann_spr * self._bps
        self._rec_bytes = (self.n_channels * self.spr + self._ann_spr) * self._bps
        self.start_time = (start_time or datetime.now()).replace(microsecond=0)

        self._buf = np.empty((self.n_channels, self.spr), dtype=np.float64)
        self._fill = 0
        self._pending: deque[bytes] = deque()
        self.n_records = 0
        self.n_samples = 0  # real samples accepted
        self.clipped = np.zeros(self.n_channels, dtype=np.int64)
        self.nonfinite = np.zeros(self.n_channels, dtype=np.int64)
        self.n_annotations = 0
        self.padding_samples = 0
        self.closed = False

        header = self._header()
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        self._fd = os.open(self.path, flags | getattr(os, "O_BINARY", 0), 0o644)
        try:
            self._write_all(header)
            if self.fsync:
                os.fsync(self._fd)
                fsync_dir(self.path.parent)
        except BaseException:
            os.close(self._fd)
            raise

    # ------------------------------------------------------------------ header
    def _header(self) -> bytes:
        ns = self.n_channels + 1
        t = self.start_time
        date = f"{t.day:02d}-{_MONTHS[t.month - 1]}-{t.year:04d}"
        ann_label = "BDF Annotations" if self.bdf else "EDF Annotations"
        out = [
            b"\xffBIOSEMI" if self.bdf else b"0".ljust(8),
            _field("X X X X", 80, "patient"),
            _field(f"Startdate {date} X X emgtool", 80, "recording"),
            _field(f"{t.day:02d}.{t.month:02d}.{t.year % 100:02d}", 8, "start date"),
            _field(f"{t.hour:02d}.{t.minute:02d}.{t.second:02d}", 8, "start time"),
            _field(str(256 * (ns + 1)), 8, "header bytes"),
            _field("BDF+C" if self.bdf else "EDF+C", 44, "reserved"),
            _field("-1", 8, "number of records"),
            _field(_num8(self.record_s), 8, "record duration"),
            _field(str(ns), 4, "number of signals"),
        ]
        labels = [*self.labels, ann_label]
        dig = (str(self._dig[0]), str(self._dig[1]))
        cols = {
            "label": (labels, 16),
            "transducer": (["AgAgCl electrode"] * self.n_channels + [""], 80),
            "physical dimension": (["uV"] * self.n_channels + [""], 8),
            "physical minimum": ([a for a, _ in self._phys_txt] + ["-1"], 8),
            "physical maximum": ([b for _, b in self._phys_txt] + ["1"], 8),
            "digital minimum": ([dig[0]] * ns, 8),
            "digital maximum": ([dig[1]] * ns, 8),
            "prefiltering": ([""] * ns, 80),
            "samples per record": ([str(self.spr)] * self.n_channels + [str(self._ann_spr)], 8),
            "reserved": ([""] * ns, 32),
        }
        for what, (vals, width) in cols.items():
            out.extend(_field(v, width, what) for v in vals)
        return b"".join(out)

    # ------------------------------------------------------------------ API
    def add_annotation(self, onset_s: float, duration_s: float | None, text: str) -> None:
        """Queue an annotation (onset from the start of the file) for the next record."""
        self._check_open()
        if any(c in text for c in "\x00\x14\x15"):
            raise ValueError("annotation text must not contain the bytes 0x00, 0x14 or 0x15")
        tal = _onset(float(onset_s))
        if duration_s:
            tal += b"\x15" + _onset(float(duration_s))[1:]
        tal += b"\x14" + text.encode("utf-8") + b"\x14\x00"
        room = self._ann_bytes - len(self._timekeeping(10**7)) - 1
        if len(tal) > room:
            raise ValueError(
                f"annotation of {len(tal)} bytes does not fit the annotation signal "
                f"({room} bytes per record); shorten the text or raise annotation_bytes"
            )
        self._pending.append(tal)
        self.n_annotations += 1

    def write(self, block_uv: ArrayLike) -> None:
        """Append samples ``(n_channels, n)`` in µV; writes every completed record."""
        self._check_open()
        x = np.asarray(block_uv, dtype=np.float64)
        if x.ndim == 1 and self.n_channels == 1:
            x = x[np.newaxis, :]
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(f"expected shape ({self.n_channels}, n), got {x.shape}")
        n = x.shape[1]
        self.n_samples += n
        pos = 0
        if self._fill:
            take = min(n, self.spr - self._fill)
            self._buf[:, self._fill : self._fill + take] = x[:, :take]
            self._fill += take
            pos = take
            if self._fill < self.spr:
                return
            self._emit(self._buf)
            self._fill = 0
        n_full = (n - pos) // self.spr
        if n_full:
            self._emit(x[:, pos : pos + n_full * self.spr])
            pos += n_full * self.spr
        rest = n - pos
        if rest:
            self._buf[:, :rest] = x[:, pos:]
            self._fill = rest

    def close(self) -> None:
        """Pad the last record, write pending annotations, fix the header, fsync."""
        if self.closed:
            return
        try:
            if self._fill or self._pending:
                last = (
                    self._buf[:, self._fill - 1 : self._fill].copy()
                    if self._fill
                    else getattr(self, "_last", np.zeros((self.n_channels, 1)))
                )
                pad = self.spr - self._fill if self._fill else 0
                n_partial = 1 if self._fill else 0
                # Enough records for every pending TAL plus the padding TAL, which then
                # lands in the last record (greedy packing puts it last).  Its length
                # depends on the count, so iterate to the fixed point.
                n_extra, tal = 0, b""
                for _ in range(5):
                    total_pad = pad + n_extra * self.spr
                    tal = self._padding_tal(total_pad) if total_pad else b""
                    need = self._records_for_pending(reserve=len(tal))
                    if max(0, need - n_partial) == n_extra:
                        break
                    n_extra = max(0, need - n_partial)
                if tal:
                    self._pending.append(tal)
                self.padding_samples = total_pad
                if self._fill:
                    self._buf[:, self._fill :] = last
                    self._emit(self._buf, count=False)
                    self._fill = 0
                if n_extra:
                    self._emit(np.repeat(last, n_extra * self.spr, axis=1), count=False)
                assert not self._pending
            os.lseek(self._fd, 236, os.SEEK_SET)
            self._write_all(str(self.n_records).ljust(8).encode("ascii"))
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self.closed = True
        fsync_dir(self.path.parent)

    @property
    def meta(self) -> dict:
        """Counts for the recording's sidecar: records, samples, clipping, annotations."""
        return {
            "path": str(self.path),
            "format": "BDF+C" if self.bdf else "EDF+C",
            "n_records": self.n_records,
            "n_samples": self.n_samples,
            "clipped": self.clipped.tolist(),
            "nonfinite": self.nonfinite.tolist(),
            "n_annotations": self.n_annotations,
            "pending_annotations": len(self._pending),
            "padding_samples": self.padding_samples,
            "physical_range_uv": [[float(a), float(b)] for a, b in self._phys_txt],
        }

    def __enter__(self) -> EdfStreamWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self.path.name}: writer is closed")

    def _timekeeping(self, k: int) -> bytes:
        return _onset(k * self.record_s) + b"\x14\x14\x00"

    def _padding_tal(self, total_pad: int) -> bytes:
        return (
            _onset(self.n_samples / self.fs)
            + b"\x15"
            + _onset(total_pad / self.fs)[1:]
            + f"\x14emgtool:padding {total_pad} samples\x14\x00".encode()
        )

    def _records_for_pending(self, reserve: int = 0) -> int:
        """Records the pending TALs (plus one of ``reserve`` bytes) need, packed like
        :meth:`_annotation_signal` packs them."""
        sizes = [len(t) for t in self._pending] + ([reserve] if reserve else [])
        n, i = 0, 0
        while i < len(sizes):
            used = len(self._timekeeping(self.n_records + n))
            while i < len(sizes) and used + sizes[i] <= self._ann_bytes - 1:
                used += sizes[i]
                i += 1
            n += 1
        return n

    def _emit(self, x: np.ndarray, *, count: bool = True) -> None:
        """Quantise whole records ``x`` (n_channels, k * spr) and append them."""
        k = x.shape[1] // self.spr
        self._last = x[:, -1:].copy()
        finite = np.isfinite(x)
        if count:
            bad = ~finite
            if bad.any():
                self.nonfinite += bad.sum(axis=1)
            with np.errstate(invalid="ignore"):
                self.clipped += ((x < self._pmin[:, None]) | (x > self._pmax[:, None])).sum(axis=1)
        d = np.round((x - self._pmin[:, None]) / self._gain[:, None] + self._dig[0])
        d = np.where(finite, d, self._zero[:, None])
        np.clip(d, self._dig[0], self._dig[1], out=d)
        d = d.astype(np.int32)
        # (n_ch, k, spr) → (k, n_ch, spr): the record layout.
        d = d.reshape(self.n_channels, k, self.spr).transpose(1, 0, 2)
        rec = np.zeros((k, self._rec_bytes), dtype=np.uint8)
        nd = self.n_channels * self.spr * self._bps
        if self.bdf:
            v = d.reshape(k, -1)
            b = rec[:, :nd].reshape(k, -1, 3)
            b[..., 0] = v & 0xFF
            b[..., 1] = (v >> 8) & 0xFF
            b[..., 2] = (v >> 16) & 0xFF
        else:
            rec[:, :nd] = d.reshape(k, -1).astype("<i2").view(np.uint8)
        for j in range(k):
            rec[j, nd:] = np.frombuffer(self._annotation_signal(self.n_records + j), np.uint8)
            if self.fsync:
                self._write_all(rec[j].tobytes())
                os.fsync(self._fd)
        if not self.fsync:
            self._write_all(rec.tobytes())
        self.n_records += k

    def _annotation_signal(self, k: int) -> bytes:
        out = bytearray(self._timekeeping(k))
        while self._pending and len(out) + len(self._pending[0]) <= self._ann_bytes - 1:
            out += self._pending.popleft()
        return bytes(out.ljust(self._ann_bytes, b"\x00"))

    def _write_all(self, data: bytes) -> None:
        mv = memoryview(data)
        while mv:
            n = os.write(self._fd, mv)
            mv = mv[n:]
