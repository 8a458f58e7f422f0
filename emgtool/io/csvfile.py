"""CSV/TSV reader for emgtool's documented dialect (docs/csv-format.md).

Dialect in short: optional ``#``/``%`` comment lines, then one header row of
channel labels with optional units (``Biceps L (uV)``, ``Biceps L [mV]``),
an optional time column first (``time``, ``time_s``, ``t``, ``timestamp``,
``Time (s)``, ``time_ms``...), then one row per sample.  The delimiter is
``,`` (``.csv``/``.txt``) or tab (``.tsv``), or ``;`` / tab when the header
uses it.  With ``;`` or tab a decimal comma is accepted if the first data row
uses it; then every number must.  A UTF-8 BOM is accepted.  ``nan`` cells
mark missing samples (gaps).

Strict: an empty line or cell, a non-numeric or infinite cell, a row with
another number of fields than the header, a line over 1 MiB, a time column
that decreases or is irregular is a :class:`~emgtool.errors.ReadError`
naming the file, line and column.

Reading is streamed: the file is parsed block by block (about 4 MB of text
each) at open, which validates it completely, finds the sampling rate, and
records where each block starts.  Blocks are kept as float32 while the total
stays under :data:`KEEP_BYTES` (256 MB); for larger files they are parsed
again on demand, so memory stays at a few blocks whatever the file size.

Examples
--------
>>> from emgtool.io import open_source
>>> src = open_source("rec.csv")  # doctest: +SKIP
>>> src.fs, [c.label for c in src.channels]  # doctest: +SKIP
(2000.0, ['Biceps L', 'Biceps R'])
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from emgtool.errors import ConfigError, EmgtoolWarning, ReadError
from emgtool.io import Source, register_reader
from emgtool.recording import DTYPE

__all__ = ["open_csv", "TIME_NAMES", "MAX_LINE_BYTES", "BLOCK_BYTES", "KEEP_BYTES", "JITTER_TOL"]

#: Header names (lower case, unit removed) recognised as a time column in first position.
TIME_NAMES = {
    "time": 1.0,
    "time_s": 1.0,
    "times": 1.0,
    "t": 1.0,
    "timestamp": 1.0,
    "sec": 1.0,
    "seconds": 1.0,
    "time_sec": 1.0,
    "time_ms": 1e-3,
    "ms": 1e-3,
}
_TIME_UNITS = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
#: Longest accepted line; a longer one is an error (no unbounded buffering).
MAX_LINE_BYTES = 1 << 20
#: Text bytes parsed per block.
BLOCK_BYTES = 4 << 20
#: Keep parsed blocks in memory while their float32 total stays below this.
KEEP_BYTES = 256 << 20
#: A time stamp may deviate from the regular grid by this fraction of a sample period.
JITTER_TOL = 0.1
_NAN_TOKENS = ("nan", "NaN", "NAN")
_UNIT_RE = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]*?)\s*[\)\]]\s*$")
NL = b"\n"
#: Rates preferred when a short time column fits several (see _sampling_rate).
COMMON_FS_HZ = (
    100,
    125,
    200,
    250,
    256,
    500,
    512,
    1000,
    1024,
    2000,
    2048,
    2500,
    4000,
    4096,
    5000,
    8000,
    8192,
    10000,
    16384,
    20000,
    25600,
    30000,
    32768,
    40000,
    48000,
)
_EPOCH_MIN_S = 1e8  # time stamps above this are taken as Unix time (1973 onwards)


@dataclass
class _Block:
    offset: int  # byte offset of the block's first line
    size: int  # bytes
    first_row: int
    n_rows: int
    first_line: int  # 1-based line number in the file


@dataclass
class _Dialect:
    delimiter: str
    decimal_comma: bool
    n_fields: int
    time_col: bool
    names: list[str]  # column names as in the header


def _float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _split_label(text: str) -> tuple[str, str | None]:
    m = _UNIT_RE.match(text)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return text.strip(), None


def _check_options(path: Path, options: dict) -> tuple[float | None, str | None]:
    fs = options.pop("fs", None)
    unit = options.pop("unit", None)
    if options:
        raise ConfigError(f"{path.name}: unknown reader option(s) {', '.join(sorted(options))}")
    if fs is not None:
        try:
            fs = float(fs)
        except (TypeError, ValueError):
            raise ConfigError(f"--fs must be a number, got {fs!r}") from None
        if not (np.isfinite(fs) and fs > 0):
            raise ConfigError(f"--fs must be a positive number, got {fs!r}")
    return fs, unit


def _read_header(path: Path, fh) -> tuple[_Dialect, list[str], int, int]:
    """Parse BOM, comments and header; returns (dialect, labels, data_offset, header_line)."""
    first = fh.read(4)
    if not first:
        raise ReadError(path, "empty file (0 bytes)")
    if first[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ReadError(path, "file is UTF-16 encoded; save it as UTF-8 (see docs/csv-format.md)")
    pos = 3 if first[:3] == b"\xef\xbb\xbf" else 0
    fh.seek(pos)
    line_no = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        line_no += 1
        if not raw:
            raise ReadError(path, "no header row: the file is empty or holds only comments")
        if len(raw) > MAX_LINE_BYTES:
            raise ReadError(path, f"line {line_no} is longer than {MAX_LINE_BYTES} bytes")
        pos += len(raw)
        if raw.lstrip()[:1] in (b"#", b"%"):
            continue
        if not raw.strip():
            raise ReadError(path, f"line {line_no} is empty; expected the header row")
        break
    try:
        header = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        header = raw.decode("latin-1").rstrip("\r\n")
    if path.suffix.lower() == ".tsv" or "\t" in header:
        delim = "\t"
    elif ";" in header:
        delim = ";"
    else:
        delim = ","
    names = [c.strip().strip('"').strip() for c in header.split(delim)]
    if all(_float(c) is not None for c in names):
        raise ReadError(
            path,
            f"line {line_no}: no header row (the first line holds numbers); add a line of "
            "channel labels, e.g. 'time_s,Biceps L (uV),Biceps R (uV)' (see docs/csv-format.md)",
        )
    for j, c in enumerate(names):
        if not c:
            raise ReadError(
                path, f"line {line_no}, column {j + 1}: empty column name in the header"
            )
    # Peek at the first data row for the decimal separator.
    here = fh.tell()
    peek = fh.readline(MAX_LINE_BYTES + 1)
    fh.seek(here)
    decimal_comma = delim != "," and b"," in peek
    time_col = _split_label(names[0])[0].lower() in TIME_NAMES
    dialect = _Dialect(delim, decimal_comma, len(names), time_col, names)
    return dialect, names, pos, line_no


def _diagnose(path: Path, text: bytes, first_line: int, d: _Dialect, *, last: bool) -> None:
    """Find the first bad line/cell of a block that failed the fast parse; raise ReadError."""
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, raw in enumerate(lines):
        ln = first_line + i
        s = raw.decode("utf-8", "replace").rstrip("\r")
        if not s.strip():
            raise ReadError(path, f"line {ln} is empty")
        cells = s.split(d.delimiter)
        if len(cells) != d.n_fields:
            hint = ""
            if d.delimiter == "," and len(cells) > d.n_fields and re.search(r"\d,\d", s):
                hint = " (decimal commas need ';' or tab as the delimiter)"
            is_last = last and i == len(lines) - 1
            cut = " (the last line looks cut off)" if is_last and len(cells) < d.n_fields else ""
            raise ReadError(
                path,
                f"line {ln}: expected {d.n_fields} fields as in the header, found {len(cells)}"
                + (cut or hint),
            )
        for j, c in enumerate(cells):
            col = f"line {ln}, column {j + 1} ({d.names[j]!r})"
            c = c.strip()
            if not c:
                raise ReadError(path, f"{col}: empty cell")
            if d.decimal_comma:
                if "." in c:
                    raise ReadError(
                        path, f"{col}: {c!r} has a '.' but this file uses decimal commas"
                    )
                c = c.replace(",", ".")
            v = _float(c)
            if v is None:
                raise ReadError(path, f"{col}: {c!r} is not a number")
            if np.isinf(v):
                raise ReadError(path, f"{col}: {c!r} is not a finite number")
            if np.isnan(v) and c not in _NAN_TOKENS:
                raise ReadError(path, f"{col}: {c!r} is not a number")


def _parse_block(path: Path, text: bytes, first_line: int, d: _Dialect, *, last: bool):
    """Text block (whole lines) → float64 array (n_rows, n_fields)."""
    import pandas as pd

    body = text.replace(b",", b".") if d.decimal_comma else text
    if d.decimal_comma and b"." in text:
        _diagnose(path, text, first_line, d, last=last)
    try:
        arr = pd.read_csv(
            io.BytesIO(body),
            sep=d.delimiter,
            header=None,
            dtype=np.float64,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=list(_NAN_TOKENS),
            engine="c",
            quoting=3,
        ).to_numpy(dtype=np.float64)
    except Exception:  # pandas raises several types; find the exact cell ourselves
        _diagnose(path, text, first_line, d, last=last)
        raise ReadError(path, f"lines {first_line}..: cannot parse") from None
    if arr.ndim != 2 or arr.shape[1] != d.n_fields or np.isinf(arr).any():
        _diagnose(path, text, first_line, d, last=last)
        raise ReadError(path, f"lines {first_line}..: unexpected number of fields")
    if np.isnan(arr).any():
        _diagnose(path, text, first_line, d, last=last)  # nan tokens are fine, others are not
    return arr


def _iter_blocks(path: Path, fh, start: int, first_line: int):
    """Yield (offset, text, first_line) of whole-line blocks from ``start``."""
    fh.seek(start)
    carry = b""
    off = start
    line = first_line
    while True:
        chunk = fh.read(BLOCK_BYTES)
        if not chunk:
            if carry:
                yield off, carry, line
            return
        buf = carry + chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) > MAX_LINE_BYTES:
                raise ReadError(
                    path, f"line {line} is longer than {MAX_LINE_BYTES} bytes (no line break)"
                )
            carry = buf
            continue
        text, carry = buf[: cut + 1], buf[cut + 1 :]
        if len(carry) > MAX_LINE_BYTES:
            raise ReadError(
                path,
                f"line {line + text.count(NL)} is longer than {MAX_LINE_BYTES} bytes",
            )
        yield off, text, line
        off += len(text)
        line += text.count(NL)


@register_reader(".csv", ".tsv", ".txt")
def open_csv(path: str | Path, **options) -> Source:
    """Open a CSV/TSV recording (see the module docstring and docs/csv-format.md).

    Parameters
    ----------
    fs : float, optional
        Sampling rate; needed when there is no time column.
    unit : str, optional
        Unit of columns whose header gives none (``uV``, ``mV``, ``V``).
    """
    from emgtool.sites import assign_sites, unit_scale_to_uv

    path = Path(path)
    fs_opt, unit_opt = _check_options(path, dict(options))
    warns: list[str] = []
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise ReadError(path, f"cannot read: {e.strerror or e}") from None
    with fh:
        d, names, data_off, header_line = _read_header(path, fh)
        # Units and labels.
        ch_names = names[1:] if d.time_col else names
        if not ch_names:
            raise ReadError(path, f"line {header_line}: only a time column, no channels")
        labels, scales, no_unit = [], [], []
        for j, name in enumerate(ch_names):
            label, unit = _split_label(name)
            col = j + 1 + d.time_col
            if unit is None or unit == "":
                no_unit.append(label)
                unit = unit_opt or "uV"
            elif unit_opt is not None and unit_scale_to_uv(unit_opt) != _scale(path, unit, col):
                raise ConfigError(
                    f"{path.name}: unit={unit_opt} given, but the header says {unit!r} "
                    f"for column {col} ({label!r})"
                )
            labels.append(label or f"EMG{j + 1}")
            scales.append(_scale(path, unit, col))
        if no_unit and unit_opt is None:
            warns.append(
                f"no unit in the header for {len(no_unit)} channel(s); assumed uV "
                "(write 'Label (uV)' or give --unit)"
            )
        time_scale = 1.0
        if d.time_col:
            tname, tunit = _split_label(names[0])
            time_scale = TIME_NAMES.get(tname.lower(), 1.0)
            if tunit:
                if tunit.lower() not in _TIME_UNITS:
                    raise ReadError(path, f"time column {names[0]!r}: unknown time unit {tunit!r}")
                time_scale = _TIME_UNITS[tunit.lower()]

        # One pass: validate everything, index the blocks, gather the time column.
        size = fh.seek(0, 2)
        ends_with_newline = True
        if size > data_off:
            fh.seek(size - 1)
            ends_with_newline = fh.read(1) == b"\n"
        blocks: list[_Block] = []
        kept: list[NDArray[np.float32]] | None = []
        kept_bytes = 0
        times: list[NDArray[np.float64]] = []
        n_rows = 0
        for off, text, line in _iter_blocks(path, fh, data_off, header_line + 1):
            last = off + len(text) >= size
            if last:
                stripped = text.rstrip(b"\r\n \t")
                if not stripped:
                    continue  # only trailing blank lines
                text = stripped
            arr = _parse_block(path, text, line, d, last=last)
            blocks.append(_Block(off, len(text), n_rows, arr.shape[0], line))
            n_rows += arr.shape[0]
            if d.time_col:
                times.append(arr[:, 0] * time_scale)
            if kept is not None:
                data = _to_channels(arr, d.time_col, scales)
                kept_bytes += data.nbytes
                kept.append(data)
                if kept_bytes > KEEP_BYTES:
                    kept = None
    if n_rows == 0:
        raise ReadError(path, f"no data rows after the header (line {header_line})")
    if not ends_with_newline:
        warns.append("the last line has no line break; check that the file is complete")

    fs, start_time = _sampling_rate(path, d, times, blocks, fs_opt, header_line)
    times.clear()
    reader = _CsvBlocks(path, d, blocks, kept, scales)
    for w in warns:
        warnings.warn(f"{path.name}: {w}", EmgtoolWarning, stacklevel=3)
    meta = {
        "path": str(path),
        "file": path.name,
        "format": "TSV" if d.delimiter == "\t" else "CSV",
        "warnings": warns,
        "identity": {},
        "start_time": start_time.isoformat() if start_time else None,
        "delimiter": d.delimiter,
        "decimal_comma": d.decimal_comma,
        "time_column": names[0] if d.time_col else None,
        "header_line": header_line,
    }
    return Source(fs, assign_sites(labels), n_rows, reader, start_time, meta)


def _scale(path: Path, unit: str, col: int) -> float:
    from emgtool.sites import unit_scale_to_uv

    try:
        return unit_scale_to_uv(unit)
    except ConfigError:
        raise ReadError(
            path, f"column {col}: unknown unit {unit!r}; expected uV, mV or V"
        ) from None


def _to_channels(arr: NDArray[np.float64], time_col: bool, scales) -> NDArray[np.float32]:
    x = arr[:, 1:] if time_col else arr
    sc = np.asarray(scales, dtype=np.float64)
    if np.all(sc == 1.0):
        return np.ascontiguousarray(x.T, dtype=DTYPE)
    return np.ascontiguousarray((x * sc).T, dtype=DTYPE)


def _line_of_row(blocks: list[_Block], row: int) -> int:
    for b in blocks:
        if b.first_row <= row < b.first_row + b.n_rows:
            return b.first_line + row - b.first_row
    return -1


def _sampling_rate(path, d, times, blocks, fs_opt, header_line):
    """fs from the option or from the time column, checked for regularity."""
    if not d.time_col:
        if fs_opt is None:
            raise ReadError(
                path,
                f"line {header_line}: no time column and no sampling rate; give --fs "
                "(or a first column named time_s)",
            )
        return fs_opt, None
    t = np.concatenate(times)
    start_time = datetime.fromtimestamp(float(t[0]), tz=UTC) if t[0] > _EPOCH_MIN_S else None
    if t.size < 2:
        if fs_opt is None:
            raise ReadError(path, "one data row: the sampling rate cannot be derived; give --fs")
        return fs_opt, start_time
    dt = np.diff(t)
    bad = np.flatnonzero(dt <= 0)
    if bad.size:
        r = int(bad[0]) + 1
        raise ReadError(
            path,
            f"line {_line_of_row(blocks, r)}, column 1: time {t[r]:.9g} is not after the "
            f"previous {t[r - 1]:.9g}; the time column must increase",
        )
    fs_est = (t.size - 1) / (t[-1] - t[0])
    k = np.arange(t.size)
    # Timestamps are rounded text, so several rates may fit a short file: prefer a
    # common device rate, then a whole number, then the raw estimate; the grid check decides.
    near = [float(r) for r in COMMON_FS_HZ if abs(r - fs_est) <= 0.01 * fs_est]
    near.sort(key=lambda r: abs(r - fs_est))
    candidates = [*near, float(max(1, round(fs_est))), fs_est]
    for fs in candidates:
        dev = np.abs(t - t[0] - k / fs) * fs  # in sample periods
        if dev.max() <= JITTER_TOL:
            break
    else:
        r = int(np.argmax(dev > JITTER_TOL))
        raise ReadError(
            path,
            f"line {_line_of_row(blocks, r)}, column 1: time {t[r]:.9g} is off the regular "
            f"{fs_est:.6g} Hz grid by {dev[r]:.2g} sample periods (tolerance {JITTER_TOL}); "
            "irregular time column (drop it and give --fs if the samples are regular)",
        )
    if fs_opt is not None:
        if abs(fs_opt - fs) > 1e-3 * fs:
            raise ReadError(path, f"--fs {fs_opt:g} disagrees with the time column ({fs:.6g} Hz)")
        fs = fs_opt
    return float(fs), start_time


class _CsvBlocks:
    """``read_block(start, stop)``: from kept blocks or by re-parsing the needed blocks."""

    def __init__(self, path, d, blocks, kept, scales) -> None:
        self.path, self.d, self.blocks, self.kept, self.scales = path, d, blocks, kept, scales
        self.starts = np.array([b.first_row for b in blocks], dtype=np.int64)
        self._cache: dict[int, NDArray[np.float32]] = {}

    def _block(self, i: int) -> NDArray[np.float32]:
        if self.kept is not None:
            return self.kept[i]
        if i not in self._cache:
            b = self.blocks[i]
            with open(self.path, "rb") as fh:
                fh.seek(b.offset)
                text = fh.read(b.size)
            if len(text) != b.size:
                raise ReadError(self.path, "file changed while reading")
            arr = _parse_block(self.path, text, b.first_line, self.d, last=False)
            if arr.shape[0] != b.n_rows:
                raise ReadError(self.path, "file changed while reading")
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = _to_channels(arr, self.d.time_col, self.scales)
        return self._cache[i]

    def __call__(self, start: int, stop: int) -> NDArray[np.float32]:
        n_ch = len(self.scales)
        if stop <= start:
            return np.empty((n_ch, 0), dtype=DTYPE)
        i0 = int(np.searchsorted(self.starts, start, side="right")) - 1
        i1 = int(np.searchsorted(self.starts, stop, side="left"))
        if i1 - i0 == 1:
            b = self.blocks[i0]
            return np.ascontiguousarray(
                self._block(i0)[:, start - b.first_row : stop - b.first_row]
            )
        out = np.empty((n_ch, stop - start), dtype=DTYPE)
        for i in range(i0, i1):
            b = self.blocks[i]
            a, z = max(start, b.first_row), min(stop, b.first_row + b.n_rows)
            out[:, a - start : z - start] = self._block(i)[:, a - b.first_row : z - b.first_row]
        return out
