"""Strict EDF/EDF+/BDF/BDF+ header validator, run before any sample is trusted.

MNE and edfio accept several broken headers and return wrong numbers
(a flat line for physical min == max, shifted garbage for a wrong header
size; see the project's reliability notes).  :func:`read_header` parses the
fixed-width ASCII header itself, checks every field and the size arithmetic,
and raises :class:`~emgtool.errors.ReadError` naming the field and its byte
offset.  Recoverable problems (a file cut mid-record, ``n_records = -1``
from a writer that never closed the file) become warnings in
:attr:`EdfHeader.warnings` and the counts are kept in the header object.

Byte layout (0-based offsets; ``ns`` = number of signals)::

    0 version (8)   8 patient (80)   88 recording (80)   168 start date (8)
    176 start time (8)   184 header bytes (8)   192 reserved (44)
    236 number of data records (8)   244 record duration (8)   252 ns (4)
    then per signal, field by field: label 16, transducer 80, physical
    dimension 8, physical min 8, physical max 8, digital min 8, digital max 8,
    prefiltering 80, samples per record 8, reserved 32.

Examples
--------
>>> from emgtool.io.edf_header import read_header
>>> h = read_header("rec.edf")  # doctest: +SKIP
>>> h.format, h.n_records_loaded, [s.label for s in h.signals]  # doctest: +SKIP
('EDF+C', 60, ['EMG Biceps L', 'EDF Annotations'])
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from emgtool.errors import ReadError

__all__ = ["EdfSignalHeader", "EdfHeader", "read_header", "ANNOTATION_LABELS", "SIGNAL_FIELDS"]

ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")

#: (name, width) of the per-signal fields, in file order.
SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("physical dimension", 8),
    ("physical minimum", 8),
    ("physical maximum", 8),
    ("digital minimum", 8),
    ("digital maximum", 8),
    ("prefiltering", 80),
    ("samples per record", 8),
    ("reserved", 32),
)

_EDF_DIGITAL = (-32768, 32767)
_BDF_DIGITAL = (-(2**23), 2**23 - 1)
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class EdfSignalHeader:
    """One signal's header fields (already validated)."""

    index: int
    label: str
    transducer: str
    physical_dimension: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    prefiltering: str
    samples_per_record: int

    @property
    def is_annotation(self) -> bool:
        return self.label in ANNOTATION_LABELS

    @property
    def gain(self) -> float:
        """Physical units per digital step."""
        return (self.physical_max - self.physical_min) / (self.digital_max - self.digital_min)

    @property
    def offset(self) -> float:
        """Physical value of digital 0."""
        return self.physical_min - self.digital_min * self.gain


@dataclass
class EdfHeader:
    """A validated EDF/BDF header plus the size arithmetic of the file."""

    path: Path
    bdf: bool
    patient: str
    recording: str
    startdate: str
    starttime: str
    header_bytes: int
    reserved: str
    n_records_header: int
    record_duration_s: float
    signals: tuple[EdfSignalHeader, ...]
    file_size: int
    n_records_on_disk: int = 0
    n_records_loaded: int = 0
    bytes_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.bdf else 2

    @property
    def samples_per_record(self) -> int:
        """Samples of all signals in one data record."""
        return sum(s.samples_per_record for s in self.signals)

    @property
    def record_bytes(self) -> int:
        return self.samples_per_record * self.bytes_per_sample

    @property
    def plus(self) -> bool:
        """EDF+ / BDF+ (reserved field starts with ``EDF+`` or ``BDF+``)."""
        return self.reserved[:4] in ("EDF+", "BDF+")

    @property
    def discontinuous(self) -> bool:
        return self.plus and self.reserved[4:5] == "D"

    @property
    def format(self) -> str:
        """``"EDF"``, ``"EDF+C"``, ``"EDF+D"``, ``"BDF"``, ``"BDF+C"``, ``"BDF+D"``."""
        base = "BDF" if self.bdf else "EDF"
        if not self.plus:
            return base
        return f"{base}+{'D' if self.discontinuous else 'C'}"

    def signal_offset(self, i: int) -> int:
        """Offset of signal ``i`` within a data record, in samples."""
        return sum(s.samples_per_record for s in self.signals[:i])

    def start_time(self) -> datetime | None:
        """Start of the recording from the header, or None if the fields are invalid."""
        return _start_time(self)

    def identity(self) -> dict:
        """Patient and recording identification, as found (private data)."""
        ident: dict = {
            "patient_field": self.patient,
            "recording_field": self.recording,
            "startdate_field": self.startdate,
        }
        if self.plus:
            parts = self.patient.split()
            keys = ("patient_id", "sex", "birthdate", "name")
            for k, v in zip(keys, parts, strict=False):
                ident[k] = v.replace("_", " ")
            if len(parts) > 4:
                ident["patient_additional"] = " ".join(parts[4:])
        return ident


def _text(raw: bytes, what: str, offset: int, warn: list[str]) -> str:
    """Decode a free-text field; non-ASCII is accepted as Latin-1 with a warning."""
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        warn.append(
            f"header field {what} (byte {offset}) has non-ASCII characters (not allowed by EDF); "
            "decoded as Latin-1"
        )
        return raw.decode("latin-1").strip()


def _number(raw: bytes, what: str, offset: int, path: Path, *, integer: bool) -> float:
    try:
        s = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ReadError(
            path,
            f"header field {what} (byte {offset}) has non-ASCII bytes {raw!r}, expected a number",
        ) from None
    ok = _INT_RE.match(s) if integer else (_FLOAT_RE.match(s) or _INT_RE.match(s))
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ReadError(path, f"header field {what} (byte {offset}) is {s!r}, expected {kind}")
    return int(s) if integer else float(s)


def read_header(path: str | Path) -> EdfHeader:
    """Read and validate the header of an EDF/EDF+/BDF/BDF+ file.

    Raises
    ------
    ReadError
        On anything that would make the samples wrong: not an EDF/BDF file,
        a field that does not parse, an inconsistent header size, a zero
        physical or digital range, no complete data record, ...
    """
    path = Path(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            fixed = fh.read(256)
            if size == 0:
                raise ReadError(path, "empty file (0 bytes), not an EDF/BDF recording")
            if len(fixed) < 256:
                raise ReadError(
                    path, f"file is {size} bytes, shorter than the 256-byte EDF/BDF header"
                )
            version = fixed[0:8]
            if version == b"\xffBIOSEMI":
                bdf = True
            elif version.strip() == b"0":
                bdf = False
            else:
                shown = version.decode("latin-1").encode("unicode_escape").decode("ascii")
                raise ReadError(
                    path,
                    f"not an EDF/BDF file: version field (byte 0) is {shown!r}, "
                    "expected '0' (EDF) or '\\xffBIOSEMI' (BDF)",
                )
            warn: list[str] = []

            def num(a: int, b: int, what: str, integer: bool) -> float:
                return _number(fixed[a:b], what, a, path, integer=integer)

            ns = int(num(252, 256, "number of signals", True))
            if ns < 1:
                raise ReadError(
                    path, f"header field number of signals (byte 252) is {ns}, expected >= 1"
                )
            header_bytes = int(num(184, 192, "header bytes", True))
            if header_bytes != 256 * (ns + 1):
                raise ReadError(
                    path,
                    f"header field header bytes (byte 184) is {header_bytes}, but {ns} signals "
                    f"need 256*({ns}+1) = {256 * (ns + 1)}",
                )
            if size < header_bytes:
                raise ReadError(
                    path,
                    f"file is {size} bytes, it ends inside the signal headers "
                    f"({header_bytes} bytes for {ns} signals)",
                )
            sig_raw = fh.read(256 * ns)
    except OSError as e:
        raise ReadError(path, f"cannot read: {e.strerror or e}") from None

    patient = _text(fixed[8:88], "patient identification", 8, warn)
    recording = _text(fixed[88:168], "recording identification", 88, warn)
    startdate = _text(fixed[168:176], "start date", 168, warn)
    starttime = _text(fixed[176:184], "start time", 176, warn)
    reserved = _text(fixed[192:236], "reserved", 192, warn)
    n_records = int(num(236, 244, "number of data records", True))
    duration = float(num(244, 252, "data record duration", False))
    if n_records < -1:
        raise ReadError(path, f"header field number of data records (byte 236) is {n_records}")
    if not duration > 0:
        raise ReadError(
            path, f"header field data record duration (byte 244) is {duration:g}, must be > 0"
        )

    # Per-signal fields are stored field by field: all labels, then all transducers, ...
    cols: dict[str, list] = {}
    pos = 0
    for name, width in SIGNAL_FIELDS:
        vals = []
        for i in range(ns):
            raw = sig_raw[pos + width * i : pos + width * (i + 1)]
            off = 256 + pos + width * i
            what = f"{name} of signal {i + 1}"
            if name in ("physical minimum", "physical maximum"):
                vals.append(_number(raw, what, off, path, integer=False))
            elif name in ("digital minimum", "digital maximum", "samples per record"):
                vals.append(int(_number(raw, what, off, path, integer=True)))
            else:
                vals.append((_text(raw, what, off, warn), off))
        cols[name] = vals
        pos += width * ns

    dig_lim = _BDF_DIGITAL if bdf else _EDF_DIGITAL
    signals = []
    for i in range(ns):
        label = cols["label"][i][0]
        pmin, pmax = cols["physical minimum"][i], cols["physical maximum"][i]
        dmin, dmax = cols["digital minimum"][i], cols["digital maximum"][i]
        spr = cols["samples per record"][i]
        is_ann = label in ANNOTATION_LABELS
        where = f"signal {i + 1} ({label!r})"
        if spr < 1:
            raise ReadError(
                path,
                f"samples per record of {where} (byte {256 + ns * 216 + 8 * i}) is {spr}, must be >= 1",
            )
        if not is_ann:
            if not dmin < dmax:
                raise ReadError(
                    path,
                    f"digital minimum {dmin} >= digital maximum {dmax} for {where} "
                    f"(bytes {256 + ns * 120 + 8 * i}, {256 + ns * 128 + 8 * i}); "
                    "its samples cannot be scaled",
                )
            if pmin == pmax:
                raise ReadError(
                    path,
                    f"physical minimum == physical maximum ({pmin:g}) for {where} "
                    f"(bytes {256 + ns * 104 + 8 * i}, {256 + ns * 112 + 8 * i}); "
                    "its samples cannot be scaled",
                )
            if dmin < dig_lim[0] or dmax > dig_lim[1]:
                raise ReadError(
                    path,
                    f"digital range [{dmin}, {dmax}] of {where} exceeds the "
                    f"{'24' if bdf else '16'}-bit range [{dig_lim[0]}, {dig_lim[1]}]",
                )
        signals.append(
            EdfSignalHeader(
                index=i,
                label=label,
                transducer=cols["transducer"][i][0],
                physical_dimension=cols["physical dimension"][i][0],
                physical_min=pmin,
                physical_max=pmax,
                digital_min=dmin,
                digital_max=dmax,
                prefiltering=cols["prefiltering"][i][0],
                samples_per_record=spr,
            )
        )

    h = EdfHeader(
        path=path,
        bdf=bdf,
        patient=patient,
        recording=recording,
        startdate=startdate,
        starttime=starttime,
        header_bytes=header_bytes,
        reserved=reserved,
        n_records_header=n_records,
        record_duration_s=duration,
        signals=tuple(signals),
        file_size=size,
        warnings=warn,
    )
    if h.reserved[:4] in ("EDF+", "BDF+") and h.reserved[4:5] not in ("C", "D"):
        raise ReadError(
            path, f"reserved field (byte 192) is {h.reserved!r}, expected 'EDF+C' or 'EDF+D'"
        )
    _size_arithmetic(h)
    return h


def _size_arithmetic(h: EdfHeader) -> None:
    """Records on disk vs. header; fills the counts and warnings, or raises."""
    data_bytes = h.file_size - h.header_bytes
    rb = h.record_bytes
    on_disk, partial = divmod(data_bytes, rb)
    h.n_records_on_disk = on_disk
    n_hdr = h.n_records_header
    if n_hdr == -1:
        loaded = on_disk
        h.warnings.append(
            f"number of data records is -1 in the header (file was not closed by its writer); "
            f"{on_disk} complete records found from the file size"
            + (f"; {partial} bytes of an incomplete last record ignored" if partial else "")
        )
        dropped = partial
    elif n_hdr > on_disk:
        loaded = on_disk
        dropped = partial
        h.warnings.append(
            f"file is truncated: records_in_header={n_hdr}, records_on_disk={on_disk}, "
            f"bytes_dropped={dropped}; loaded the {on_disk} complete records "
            f"({on_disk * h.record_duration_s:g} s)"
        )
    else:
        loaded = n_hdr
        dropped = data_bytes - n_hdr * rb
        if dropped:
            h.warnings.append(
                f"{dropped} bytes after the {n_hdr} data records declared in the header "
                f"(records_in_header={n_hdr}, records_on_disk={on_disk}) were ignored"
            )
    if loaded == 0:
        raise ReadError(
            h.path,
            f"no complete data record: header only ({data_bytes} data bytes; "
            f"one record needs {rb} bytes)",
        )
    h.n_records_loaded = loaded
    h.bytes_dropped = dropped


def _start_time(h: EdfHeader) -> datetime | None:
    try:
        d, m, y = (int(x) for x in h.startdate.split("."))
        hh, mm, ss = (int(x) for x in h.starttime.split("."))
    except ValueError:
        return None
    year = 1900 + y if y >= 85 else 2000 + y
    if h.plus:
        # EDF+ carries the 4-digit year in the recording field: "Startdate 02-MAR-2002 ..."
        parts = h.recording.split()
        if len(parts) >= 2 and parts[0] == "Startdate":
            mt = re.match(r"^(\d{2})-([A-Z]{3})-(\d{4})$", parts[1].upper())
            if mt and mt.group(2) in _MONTHS:
                year = int(mt.group(3))
    if y >= 100:
        return None
    try:
        return datetime(year, m, d, hh, mm, ss)
    except ValueError:
        return None
