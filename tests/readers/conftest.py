"""Fixtures for the reader tests: valid files with a sample counter, and raw EDF bytes.

``build_edf`` writes EDF/BDF bytes field by field, so the bad-input corpus
can break exactly one thing at a time (the valid files themselves come from
real writers: edfio through ``emgtool.io.write`` and ``EdfStreamWriter``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from emgtool.io.edf_stream import EdfStreamWriter
from emgtool.io.write import write_csv
from emgtool.recording import Recording

LABELS = ["Counter", "Biceps L", "TA R"]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def counter_data(n: int, seed: int = 0) -> np.ndarray:
    """(3, n) µV: channel 0 counts samples, the others are random on a 1/8 µV grid."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-800, 800, (3, n)) * 8) / 8
    x[0] = np.arange(n)
    return x.astype(np.float32)


def write_counter_edf(path: Path, n: int, fs: float, *, bdf: bool = False, record_s: float = 1.0):
    """EDF+C/BDF+C via EdfStreamWriter; the counter channel has gain 1 (exact integers)."""
    dig = (-(2**23), 2**23 - 1) if bdf else (-32768, 32767)
    ranges = [(float(dig[0]), float(dig[1])), (-1000.0, 1000.0), (-1000.0, 1000.0)]
    data = counter_data(n)
    with EdfStreamWriter(
        path, fs, LABELS, bdf=bdf, physical_range_uv=ranges, record_s=record_s, fsync=False
    ) as w:
        w.write(data)
    return data


def write_counter_csv(path: Path, n: int, fs: float) -> np.ndarray:
    data = counter_data(n)
    write_csv(path, Recording.from_array(data, fs, LABELS), decimals=3)
    return data


@pytest.fixture(autouse=True)
def _quiet_unknown_site_warnings(recwarn):
    """Readers warn about the 'Counter' label; tests that care use their own catch."""
    yield


# ---------------------------------------------------------------------- raw EDF bytes
def build_edf(
    signals: list[dict],
    records: list[list[np.ndarray]],
    *,
    bdf: bool = False,
    reserved: str = "",
    n_records: str | None = None,
    duration: str = "1",
    header_bytes: str | None = None,
    patient: bytes = b"X X X X",
    recording: bytes = b"Startdate 01-JAN-2020 X X X",
) -> bytes:
    """EDF/BDF file bytes.

    ``signals``: dicts with label, dim, pmin, pmax, dmin, dmax, spr (strings or numbers).
    ``records``: per record, one int array (digital values) or bytes per signal.
    """
    ns = len(signals)

    def f(v, w):
        b = v if isinstance(v, bytes) else str(v).encode("latin-1")
        return b.ljust(w, b" ")[:w]

    hdr = [
        b"\xffBIOSEMI" if bdf else f("0", 8),
        f(patient, 80),
        f(recording, 80),
        f("01.01.20", 8),
        f("10.00.00", 8),
        f(header_bytes if header_bytes is not None else 256 * (ns + 1), 8),
        f(reserved, 44),
        f(n_records if n_records is not None else len(records), 8),
        f(duration, 8),
        f(ns, 4),
    ]
    fields = [
        ("label", 16, ""),
        ("transducer", 80, ""),
        ("dim", 8, "uV"),
        ("pmin", 8, -1000),
        ("pmax", 8, 1000),
        ("dmin", 8, -32768 if not bdf else -8388608),
        ("dmax", 8, 32767 if not bdf else 8388607),
        ("prefilter", 80, ""),
        ("spr", 8, 1),
        ("reserved", 32, ""),
    ]
    for key, width, default in fields:
        for s in signals:
            hdr.append(f(s.get(key, default), width))
    out = [b"".join(hdr)]
    for rec in records:
        for sig, x in zip(signals, rec, strict=True):
            if isinstance(x, bytes):
                nbytes = int(sig["spr"]) * (3 if bdf else 2)
                out.append(x.ljust(nbytes, b"\x00")[:nbytes])
            elif bdf:
                v = np.asarray(x, dtype=np.int32)
                b = np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=-1)
                out.append(b.astype(np.uint8).tobytes())
            else:
                out.append(np.asarray(x, dtype="<i2").tobytes())
    return b"".join(out)


def tal(onset: float, texts=(), duration: float | None = None) -> bytes:
    head = f"+{onset:g}".encode()
    if duration is not None:
        head += b"\x15" + f"{duration:g}".encode()
    body = b"".join(t.encode() + b"\x14" for t in texts) if texts else b"\x14"
    return head + b"\x14" + body + b"\x00"


@pytest.fixture
def counter_edf(tmp_path):
    p = tmp_path / "counter.edf"
    return p, write_counter_edf(p, 10_000, 1000.0)


@pytest.fixture
def counter_bdf(tmp_path):
    p = tmp_path / "counter.bdf"
    return p, write_counter_edf(p, 10_000, 1000.0, bdf=True)


@pytest.fixture
def counter_csv(tmp_path):
    p = tmp_path / "counter.csv"
    return p, write_counter_csv(p, 10_000, 1000.0)
