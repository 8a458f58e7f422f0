"""Every reader: whole == concatenated chunks, slices across boundaries, metadata kept.

Channel 0 of every file is a sample counter (0, 1, 2, ... exactly representable),
so a lost or duplicated sample at a chunk or record boundary shows up at once.
"""

from __future__ import annotations

import warnings

import mne
import numpy as np
import pytest

import emgtool.io.csvfile as csvfile
from emgtool.errors import EmgtoolWarning
from emgtool.io import as_source, open_source
from emgtool.io.arrays import source_from_array, source_from_raw
from emgtool.recording import Recording

from .conftest import LABELS, counter_data, write_counter_csv, write_counter_edf

N = 10_500  # 10.5 records of 1 s at 1 kHz: the writer pads and the reader trims
FS = 1000.0


def _make(kind: str, tmp_path, n: int = N, record_s: float = 1.0):
    if kind in ("edf", "bdf"):
        p = tmp_path / f"c.{kind}"
        data = write_counter_edf(p, n, FS, bdf=kind == "bdf", record_s=record_s)
        return open_source(p), data
    if kind == "csv":
        p = tmp_path / "c.csv"
        data = write_counter_csv(p, n, FS)
        return open_source(p), data
    if kind == "array":
        data = counter_data(n)
        return source_from_array(data, FS, LABELS), data
    if kind == "mne":
        data = counter_data(n)
        info = mne.create_info(LABELS, FS, "emg")
        return source_from_raw(
            mne.io.RawArray(data.astype(np.float64) * 1e-6, info, verbose=False)
        ), data
    raise AssertionError(kind)


KINDS = ["edf", "bdf", "csv", "array", "mne"]


def _tol(kind: str) -> float:
    # EDF: ±1000 µV over 16 bits → step 0.0305 µV; BDF 24 bits; text/arrays exact.
    return {"edf": 2000 / 65535 / 2 + 1e-4, "bdf": 2000 / 16777215 / 2 + 1e-4}.get(kind, 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_whole_equals_chunks(kind, tmp_path):
    src, data = _make(kind, tmp_path)
    assert src.n_samples == N
    assert src.fs == FS
    assert [c.label for c in src.channels] == LABELS
    whole = src.read()
    assert whole.data.dtype == np.float32 and whole.data.flags.c_contiguous
    assert np.array_equal(whole.data[0], np.arange(N, dtype=np.float32))
    assert np.max(np.abs(whole.data - data)) <= _tol(kind)
    for size in (997, 4096, N, N + 5):
        parts = list(src.chunks(size))
        assert [p.first_sample for p in parts] == list(range(0, N, size))
        for p in parts:
            assert p.fs == src.fs and p.channels == src.channels
            assert p.meta is src.meta or p.meta == src.meta
            assert p.data.flags.c_contiguous
        cat = Recording.concat(parts)
        assert np.array_equal(cat.data, whole.data), size
        assert np.array_equal(cat.data[0], np.arange(N))


@pytest.mark.parametrize("kind", KINDS)
def test_one_sample_chunks_short_file(kind, tmp_path):
    # 0.1-s records so a short file still has several record boundaries.
    n = 257
    if kind in ("edf", "bdf"):
        src, data = _make(kind, tmp_path, n=n, record_s=0.1)
    else:
        src, data = _make(kind, tmp_path, n=n)
    parts = list(src.chunks(1))
    assert len(parts) == n
    cat = np.concatenate([p.data for p in parts], axis=1)
    assert np.array_equal(cat[0], np.arange(n))
    assert np.array_equal(cat, src.read().data)


@pytest.mark.parametrize("kind", KINDS)
def test_slices_across_boundaries(kind, tmp_path):
    src, _ = _make(kind, tmp_path)
    whole = src.read().data
    rng = np.random.default_rng(3)
    bounds = [(999, 1001), (0, 1), (N - 1, N), (4095, 4097), (1000, 3000), (2, 9_999), (N, N)]
    bounds += [tuple(sorted(rng.integers(0, N + 1, 2))) for _ in range(20)]
    for a, b in bounds:
        got = src.read(a, b)
        assert got.first_sample == a and got.n_samples == b - a
        assert np.array_equal(got.data, whole[:, a:b]), (a, b)


@pytest.mark.parametrize("bdf", [False, True])
def test_edf_equals_mne(bdf, tmp_path):
    """The fast reader gives MNE's values within float32 precision."""
    p = tmp_path / ("m.bdf" if bdf else "m.edf")
    write_counter_edf(p, 5000, 2048.0, bdf=bdf)
    ours = open_source(p).read().data
    reader = mne.io.read_raw_bdf if bdf else mne.io.read_raw_edf
    raw = reader(p, preload=False, verbose="error")
    ref = raw.get_data(picks=LABELS)[:, :5000] * 1e6
    scale = np.max(np.abs(ref), axis=1, keepdims=True)
    assert np.all(np.abs(ours - ref) <= 2e-7 * scale + 1e-9)


def test_edfio_written_file_equals_mne(tmp_path):
    """A file from another writer (edfio via write_edf), mV dimension patched in."""
    from emgtool.io.write import write_edf

    p = tmp_path / "edfio.edf"
    data = counter_data(4000)
    write_edf(p, Recording.from_array(data, 2000, LABELS), record_s=0.5)
    src = open_source(p)
    assert src.meta["format"] == "EDF+C"
    raw = mne.io.read_raw_edf(p, preload=False, verbose="error")
    ref = raw.get_data(picks=LABELS) * 1e6
    assert np.allclose(src.read().data, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_csv_reparse_path_small_blocks(tmp_path, monkeypatch):
    """Large-file mode: blocks not kept, parsed again on demand, many block boundaries."""
    monkeypatch.setattr(csvfile, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(csvfile, "KEEP_BYTES", 0)
    p = tmp_path / "big.csv"
    data = write_counter_csv(p, 3000, FS)
    src = open_source(p)
    assert src.n_samples == 3000
    cat = np.concatenate([c.data for c in src.chunks(997)], axis=1)
    assert np.array_equal(cat, data)
    assert np.array_equal(src.read(37, 2961).data, data[:, 37:2961])


def test_as_source_accepts_everything(tmp_path):
    p = tmp_path / "c.edf"
    data = write_counter_edf(p, 2000, FS)
    rec = Recording.from_array(data, FS, LABELS)
    raw = mne.io.RawArray(
        data.astype(np.float64) * 1e-6, mne.create_info(LABELS, FS, "emg"), verbose=False
    )
    for obj, kw in [
        (p, {}),
        (str(p), {}),
        (rec, {}),
        (raw, {}),
        (data, {"fs": FS, "labels": LABELS}),
    ]:
        src = as_source(obj, **kw)
        assert src.n_samples == 2000 and src.fs == FS
        assert np.array_equal(src.read(0, 2000).data[0], np.arange(2000))
    src = as_source(data * 1e-3, fs=FS, labels=LABELS, unit="mV", sites="Deltoid L,Biceps L,TA R")
    assert src.channels[0].site == "deltoid"
    assert np.allclose(src.read().data, data, atol=1e-3)


def test_mne_raw_picks_emg_and_eeg_only():
    info = mne.create_info(["EMG Biceps L", "ECG", "STI 014"], 500.0, ["emg", "ecg", "stim"])
    raw = mne.io.RawArray(np.ones((3, 100)) * 1e-6, info, verbose=False)
    src = source_from_raw(raw)
    assert [c.label for c in src.channels] == ["EMG Biceps L"]
    assert src.channels[0].site == "biceps"
    assert np.allclose(src.read().data, 1.0)


def test_no_mne_or_third_party_warnings_escape(tmp_path):
    p = tmp_path / "c.edf"
    write_counter_edf(p, 1000, FS)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        open_source(p).read()
    assert got, "the unknown 'Counter' label should warn"
    assert all(issubclass(w.category, EmgtoolWarning) for w in got), [str(w.message) for w in got]
