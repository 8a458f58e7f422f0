"""Property-based tests (hypothesis) for the readers."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgtool.errors import ReadError
from emgtool.io import open_source
from emgtool.io.edf_header import read_header
from emgtool.io.write import write_csv
from emgtool.recording import Recording

from .conftest import write_counter_edf

# Hypothesis examples share one folder (function-scoped tmp_path does not mix with @given).
_TMP = Path(tempfile.mkdtemp(prefix="emgtool-prop-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(bdf: bool) -> tuple[bytes, np.ndarray, int, int]:
    p = _TMP / ("valid.bdf" if bdf else "valid.edf")
    if not p.exists():
        write_counter_edf(p, 1000, 500.0, bdf=bdf, record_s=0.2)  # 10 records of 100 samples
    h = read_header(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = open_source(p).read().data
    return p.read_bytes(), ref, h.header_bytes, h.record_bytes


@_SETTINGS
@given(bdf=st.booleans(), frac=st.floats(0, 1), data=st.data())
def test_any_truncation_loads_complete_records_or_fails(bdf, frac, data):
    raw, ref, hdr, rec = _valid(bdf)
    # Bias towards the interesting places: near record boundaries and inside the header.
    cut = data.draw(
        st.one_of(
            st.just(int(frac * len(raw))),
            st.integers(0, 10).map(lambda k: hdr + k * rec + data.draw(st.integers(-2, 2))),
        )
    )
    cut = max(0, min(len(raw), cut))
    p = _TMP / f"cut_{'b' if bdf else 'e'}df_{cut}.{'bdf' if bdf else 'edf'}"
    p.write_bytes(raw[:cut])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = open_source(p)
            got = src.read().data
    except ReadError as e:
        assert p.name in str(e)
        assert cut < hdr + rec  # only files without one complete record may fail
        return
    finally:
        p.unlink()
    k = (cut - hdr) // rec
    assert k >= 1
    assert src.meta["records_loaded"] == k
    n = min(k * 100, ref.shape[1])  # the last record of the intact file carries padding
    assert got.shape == (3, n)
    assert np.array_equal(got, ref[:, :n])
    assert np.array_equal(got[0], np.arange(n))


@_SETTINGS
@given(blob=st.binary(min_size=0, max_size=1200), keep=st.integers(0, 256))
def test_garbage_in_edf_never_crashes(blob, keep):
    """Random bytes, or a valid header prefix followed by random bytes: ReadError or data."""
    raw, *_ = _valid(False)
    p = _TMP / "garbage.edf"
    p.write_bytes(raw[:keep] + blob)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = open_source(p)
            x = src.read(0, min(src.n_samples, 50)).data
        assert x.dtype == np.float32
    except ReadError as e:
        assert "garbage.edf" in str(e)


@_SETTINGS
@given(
    n_ch=st.integers(1, 4),
    n=st.integers(2, 300),
    fs=st.sampled_from([250.0, 500.0, 1000.0, 2000.0, 2048.0, 4000.0]),
    seed=st.integers(0, 2**31 - 1),
    time_column=st.booleans(),
)
def test_csv_write_read_round_trip(n_ch, n, fs, seed, time_column):
    rng = np.random.default_rng(seed)
    # Values on the writer's 3-decimal grid, so the text holds them exactly.
    data = (rng.integers(-8_000_000, 8_000_000, (n_ch, n)) / 1000).astype(np.float32)
    labels = [f"Biceps {'LR'[i % 2]} {i + 1:02d}" for i in range(n_ch)]
    p = _TMP / "rt.csv"
    write_csv(p, Recording.from_array(data, fs, labels), time_column=time_column)
    src = open_source(p, **({} if time_column else {"fs": fs}))
    assert src.fs == fs
    assert [c.label for c in src.channels] == labels
    assert np.array_equal(src.read().data, data)


def test_csv_full_float32_precision(tmp_path):
    """Any float32 written with 9 significant digits reads back bit-exact."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, 2000)) * 10.0 ** rng.integers(-6, 6, (2, 2000))).astype(
        np.float32
    )
    p = tmp_path / "f32.csv"
    with open(p, "w") as fh:
        fh.write("A (uV),B (uV)\n")
        for a, b in x.T:
            fh.write(f"{a:.9g},{b:.9g}\n")
    assert np.array_equal(open_source(p, fs=1000).read().data, x)
