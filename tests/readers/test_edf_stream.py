"""EdfStreamWriter: read back by MNE, edfio and emgtool; annotations never dropped;
readable after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import datetime
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest

from emgtool.io import open_source
from emgtool.io.edf import read_annotations
from emgtool.io.edf_header import read_header
from emgtool.io.edf_stream import EdfStreamWriter

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["Biceps L", "Biceps R", "TA L"]
FS = 512.0
RANGE = 3000.0


def _write(path, data, rng, *, bdf=False, n_ann=0, annotation_bytes=256):
    """Write ``data`` in random-size blocks with ``n_ann`` annotations spread over it."""
    n = data.shape[1]
    anns = []
    t0 = datetime(2024, 5, 6, 7, 8, 9)
    w = EdfStreamWriter(
        path,
        FS,
        LABELS,
        bdf=bdf,
        physical_range_uv=(-RANGE, RANGE),
        annotation_bytes=annotation_bytes,
        start_time=t0,
    )
    pos = 0
    while pos < n:
        m = int(min(rng.integers(1, 1500), n - pos))
        w.write(data[:, pos : pos + m])
        pos += m
        for _ in range(int(rng.poisson(n_ann * m / n))):
            a = (round(float(rng.uniform(0, pos / FS)), 6), 0.25, f"event {len(anns)}")
            w.add_annotation(*a)
            anns.append(a)
    w.close()
    return w, anns


@pytest.mark.parametrize("bdf", [False, True])
def test_round_trip_mne_edfio_emgtool(bdf, tmp_path):
    rng = np.random.default_rng(11)
    n = int(10 * FS) + 123  # 10 s and a partial record
    data = rng.uniform(-2900, 2900, (3, n))
    p = tmp_path / ("s.bdf" if bdf else "s.edf")
    w, anns = _write(p, data, rng, bdf=bdf, n_ann=60, annotation_bytes=128)
    assert len(anns) > 30  # more than one record can hold: they must be carried over
    step = 2 * RANGE / (2**24 - 1 if bdf else 2**16 - 1)
    h = read_header(p)
    assert h.n_records_header == w.n_records == h.n_records_on_disk
    assert h.format == ("BDF+C" if bdf else "EDF+C")

    src = open_source(p)
    assert src.n_samples == n and src.fs == FS  # padding trimmed
    assert src.start_time == datetime(2024, 5, 6, 7, 8, 9)
    assert np.max(np.abs(src.read().data - data)) <= step / 2 + 1e-3

    raw = (mne.io.read_raw_bdf if bdf else mne.io.read_raw_edf)(p, verbose="error")
    x = raw.get_data(picks=LABELS)[:, :n] * 1e6
    assert np.max(np.abs(x - data)) <= step / 2 + 1e-3
    got = sorted((round(a["onset"], 6), a["description"]) for a in raw.annotations)
    want = sorted(
        [(o, t) for o, _, t in anns]
        + [(round(n / FS, 6), f"emgtool:padding {w.padding_samples} samples")]
    )
    assert got == want

    ours = sorted((round(o, 6), t) for o, _, t in read_annotations(p))
    assert ours == want

    if not bdf:
        e = edfio.read_edf(p)
        for i, sig in enumerate(e.signals):
            assert np.max(np.abs(sig.data[:n] - data[i])) <= step / 2 + 1e-3
        assert len(e.annotations) == len(want)


def test_readable_after_every_record(tmp_path):
    p = tmp_path / "live.edf"
    w = EdfStreamWriter(p, FS, LABELS, record_s=0.5, fsync=False)
    data = np.random.default_rng(2).uniform(-100, 100, (3, int(3 * FS)))
    for k in range(6):
        w.write(data[:, k * 256 : (k + 1) * 256])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = open_source(p)
        assert src.n_samples == (k + 1) * 256
        assert mne.io.read_raw_edf(p, verbose="error").n_times == (k + 1) * 256
    w.close()
    assert read_header(p).n_records_header == 6


def test_sigkill_mid_recording(tmp_path):
    """A real child process is SIGKILLed while writing: every fsynced record survives."""
    p = tmp_path / "killed.edf"
    child = textwrap.dedent(
        f"""
        import sys, time, numpy as np
        from emgtool.io.edf_stream import EdfStreamWriter
        w = EdfStreamWriter({str(p)!r}, 1000.0, ["Biceps L"], record_s=0.1)
        k = 0
        while True:
            w.write(np.arange(k * 100, (k + 1) * 100, dtype=float)[None, :] % 2000)
            k += 1
            if k % 5 == 0:
                w.add_annotation(k * 0.1, 0, f"mark {{k}}")
            print(k, flush=True)
            time.sleep(0.002)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, env=env, text=True
    )
    acked = 0
    deadline = time.monotonic() + 60
    while acked < 40 and time.monotonic() < deadline:
        acked = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert acked >= 40
    with pytest.warns(Warning, match="-1 in the header"):
        src = open_source(p)
    assert src.n_samples >= acked * 100  # nothing acknowledged is lost
    x = src.read().data[0]
    assert np.allclose(x, np.arange(src.n_samples) % 2000, atol=2000 / 65535 * 5000 / 1000)
    raw = mne.io.read_raw_edf(p, verbose="error")
    assert raw.n_times == src.n_samples
    assert {a["description"] for a in raw.annotations} >= {f"mark {k}" for k in range(5, acked, 5)}


def test_clipping_and_nan_counted(tmp_path):
    p = tmp_path / "clip.edf"
    x = np.zeros((3, 512))
    x[0, :10] = 5000.0  # above +3000
    x[1, 5] = -1e9
    x[2, 7] = np.nan
    with EdfStreamWriter(p, FS, LABELS, physical_range_uv=(-RANGE, RANGE)) as w:
        w.write(x)
    assert w.meta["clipped"] == [10, 1, 0] and w.meta["nonfinite"] == [0, 0, 1]
    got = open_source(p).read().data
    assert np.allclose(got[0, :10], RANGE) and np.isclose(got[1, 5], -RANGE)
    assert abs(got[2, 7]) < 0.1  # NaN → nearest code to 0 µV


def test_pending_annotations_written_on_close(tmp_path):
    p = tmp_path / "many.edf"
    with EdfStreamWriter(p, FS, LABELS, annotation_bytes=128) as w:
        w.write(np.zeros((3, 100)))
        for i in range(40):
            w.add_annotation(0.01 * i, None, f"a{i}")
    texts = [t for _, _, t in read_annotations(p)]
    assert [t for t in texts if not t.startswith("emgtool:")] == [f"a{i}" for i in range(40)]
    src = open_source(p)
    assert src.n_samples == 100  # padding records holding the annotations are trimmed
    assert mne.io.read_raw_edf(p, verbose="error").n_times >= 100


def test_refuses_to_overwrite_and_bad_args(tmp_path):
    p = tmp_path / "x.edf"
    p.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        EdfStreamWriter(p, FS, LABELS)
    assert p.read_bytes() == b"keep me"
    with pytest.raises(ValueError, match="whole number"):
        EdfStreamWriter(tmp_path / "y.edf", 333.3, LABELS)
    with pytest.raises(ValueError, match="longer than 16"):
        EdfStreamWriter(tmp_path / "z.edf", FS, ["a very long channel label"])
    with EdfStreamWriter(tmp_path / "w.edf", FS, LABELS) as w:
        with pytest.raises(ValueError, match="does not fit"):
            w.add_annotation(0, None, "x" * 600)
        with pytest.raises(ValueError, match="expected shape"):
            w.write(np.zeros((2, 10)))
