"""Bad-input corpus: every case either loads correctly with a visible warning
or fails with one ReadError naming the file and the problem.

The documented behaviour of each case is the table in docs/troubleshooting-input.md;
the ids below match its rows.  Through the CLI the failures exit with status 2
and one line on stderr, and no input file is ever modified.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from emgtool.cli import main
from emgtool.errors import ConfigError, EmgtoolWarning, ReadError
from emgtool.io import open_source

from .conftest import build_edf, sha256, tal, write_counter_csv, write_counter_edf

FS = 1000.0
ROOT = Path(__file__).resolve().parents[2]


def _sig(label="EMG Biceps L", spr=100, **kw):
    return {"label": label, "spr": spr, **kw}


def _records(n_rec, spr=100, n_sig=1, ann=False, onsets=None):
    recs = []
    for r in range(n_rec):
        row = [np.arange(r * spr, (r + 1) * spr) % 30000 for _ in range(n_sig)]
        if ann:
            onset = r * 0.1 if onsets is None else onsets[r]
            row.append(tal(onset))
        recs.append(row)
    return recs


def _valid_edf_bytes(n_rec=10, **kw) -> bytes:
    return build_edf([_sig(), _sig("EMG TA R")], _records(n_rec, n_sig=2), duration="0.1", **kw)


# ---------------------------------------------------------------------- EDF cases
def _edf_cut_mid_record(p):
    b = _valid_edf_bytes()
    p.write_bytes(b[: len(b) - 400 - 150])  # 8.625 records left of 10 (400 bytes each)


def _edf_records_minus_one(p):
    p.write_bytes(_valid_edf_bytes(n_records="-1"))


def _edf_too_many(p):
    p.write_bytes(_valid_edf_bytes(n_records="20"))


def _edf_too_few(p):
    p.write_bytes(_valid_edf_bytes(n_records="4"))


def _edf_header_size(p):
    p.write_bytes(_valid_edf_bytes(header_bytes=str(256 * 4)))


def _edf_phys_equal(p):
    p.write_bytes(
        build_edf(
            [_sig(), _sig("EMG TA R", pmin=100, pmax=100)], _records(3, n_sig=2), duration="0.1"
        )
    )


def _edf_dig_equal(p):
    p.write_bytes(
        build_edf([_sig(), _sig("EMG TA R", dmin=5, dmax=5)], _records(3, n_sig=2), duration="0.1")
    )


def _edf_plus_d_gap(p):
    sigs = [_sig(), {"label": "EDF Annotations", "spr": 30, "dim": "", "pmin": -1, "pmax": 1}]
    recs = _records(4, ann=True, onsets=[0.0, 0.1, 0.5, 0.6])  # 0.3 s gap after record 1
    p.write_bytes(build_edf(sigs, recs, duration="0.1", reserved="EDF+D"))


def _edf_plus_d_contiguous(p):
    sigs = [_sig(), {"label": "EDF Annotations", "spr": 30, "dim": "", "pmin": -1, "pmax": 1}]
    p.write_bytes(build_edf(sigs, _records(4, ann=True), duration="0.1", reserved="EDF+D"))


def _edf_plus_d_overlap(p):
    sigs = [_sig(), {"label": "EDF Annotations", "spr": 30, "dim": "", "pmin": -1, "pmax": 1}]
    recs = _records(3, ann=True, onsets=[0.0, 0.05, 0.2])
    p.write_bytes(build_edf(sigs, recs, duration="0.1", reserved="EDF+D"))


def _edf_mixed_rates(p):
    # The low-rate channel sits between the kept ones (non-adjacent decode path).
    sigs = [_sig(), _sig("Accel", spr=10), _sig("EMG TA R")]
    recs = [[np.arange(100) + r * 100, np.arange(10), -np.arange(100) - r * 100] for r in range(3)]
    p.write_bytes(build_edf(sigs, recs, duration="0.1"))


def _edf_not_edf(p):
    p.write_text("time_s,Biceps L (uV)\n0.000,1.0\n0.001,2.0\n" * 20)


def _edf_empty(p):
    p.write_bytes(b"")


def _edf_header_only(p):
    b = _valid_edf_bytes()
    p.write_bytes(b[: 256 * 3])


def _edf_header_cut(p):
    p.write_bytes(_valid_edf_bytes()[:400])


def _edf_non_ascii_patient(p):
    p.write_bytes(_valid_edf_bytes(patient="X M 01-JAN-1950 Jürgen_Müller".encode("latin-1")))


def _edf_non_ascii_number(p):
    b = bytearray(_valid_edf_bytes())
    b[244:252] = "0,1µ".encode("latin-1").ljust(8)
    p.write_bytes(bytes(b))


def _edf_duration_zero(p):
    p.write_bytes(_valid_edf_bytes().replace(b"0.1     ", b"0       ", 1))


def _edf_ns_garbage(p):
    b = bytearray(_valid_edf_bytes())
    b[252:256] = b"ab  "
    p.write_bytes(bytes(b))


def _edf_unknown_dim(p):
    sigs = [_sig(), _sig("Temp", dim="degC")]
    p.write_bytes(build_edf(sigs, _records(3, n_sig=2), duration="0.1"))


def _bdf_truncated(p):
    b = build_edf([_sig(dmin=-8388608, dmax=8388607)], _records(10), duration="0.1", bdf=True)
    p.write_bytes(b[:-450])  # 1.5 records of 300 bytes cut


def _edf_annotations_only(p):
    sigs = [{"label": "EDF Annotations", "spr": 30, "dim": "", "pmin": -1, "pmax": 1}]
    p.write_bytes(build_edf(sigs, [[tal(0)]], duration="0.1", reserved="EDF+C"))


EDF_ERRORS = {
    "wrong header-size field": (_edf_header_size, "header bytes (byte 184)"),
    "physical min == max": (_edf_phys_equal, "physical minimum == physical maximum"),
    "digital min == max": (_edf_dig_equal, "digital minimum 5 >= digital maximum 5"),
    "EDF+D overlapping records": (_edf_plus_d_overlap, "overlaps the previous record"),
    "non-EDF file named .edf": (_edf_not_edf, "not an EDF/BDF file"),
    "empty file": (_edf_empty, "empty file"),
    "header only": (_edf_header_only, "no complete data record"),
    "file ends inside the header": (_edf_header_cut, "ends inside the signal headers"),
    "non-ASCII in a numeric field": (_edf_non_ascii_number, "non-ASCII"),
    "record duration 0": (_edf_duration_zero, "data record duration (byte 244)"),
    "number of signals not a number": (_edf_ns_garbage, "number of signals (byte 252)"),
    "annotations only": (_edf_annotations_only, "only annotations"),
}


@pytest.mark.parametrize("case", list(EDF_ERRORS))
def test_edf_errors(case, tmp_path):
    make, needle = EDF_ERRORS[case]
    p = tmp_path / "bad.edf"
    make(p)
    with pytest.raises(ReadError) as ei:
        open_source(p)
    msg = str(ei.value)
    assert needle in msg
    assert "bad.edf" in msg and "\n" not in msg


def _open_warn(p, needle):
    with pytest.warns(EmgtoolWarning, match=needle):
        return open_source(p)


def test_edf_cut_mid_record(tmp_path):
    p = tmp_path / "cut.edf"
    _edf_cut_mid_record(p)
    src = _open_warn(p, "truncated")
    m = src.meta
    assert (m["records_in_header"], m["records_on_disk"], m["bytes_dropped"]) == (10, 8, 250)
    assert m["truncated"] and any("records_on_disk=8" in w for w in m["warnings"])
    assert src.n_samples == 800
    ref = (np.arange(800) + 32768) * 2000 / 65535 - 1000
    assert np.allclose(src.read().data[0], ref, rtol=0, atol=1e-4)


def test_edf_values_scaled_exactly(tmp_path):
    # Digital d → physical (d - dmin) * (pmax - pmin) / (dmax - dmin) + pmin.
    p = tmp_path / "v.edf"
    _edf_records_minus_one(p)
    x = open_source(p).read(0, 300).data[0].astype(np.float64)
    ref = (np.arange(300) + 32768) * 2000 / 65535 - 1000
    assert np.allclose(x, ref, rtol=0, atol=1e-4)


def test_edf_records_minus_one(tmp_path):
    p = tmp_path / "m1.edf"
    _edf_records_minus_one(p)
    src = _open_warn(p, "-1 in the header")
    assert src.n_samples == 1000 and src.meta["records_in_header"] == -1


def test_edf_too_many_records(tmp_path):
    p = tmp_path / "many.edf"
    _edf_too_many(p)
    src = _open_warn(p, "records_in_header=20, records_on_disk=10")
    assert src.n_samples == 1000


def test_edf_too_few_records(tmp_path):
    p = tmp_path / "few.edf"
    _edf_too_few(p)
    src = _open_warn(p, "ignored")
    assert src.n_samples == 400  # the header's count is authoritative
    assert src.meta["bytes_dropped"] == 6 * 400


def test_edf_plus_d_gap_is_nan(tmp_path):
    p = tmp_path / "d.edf"
    _edf_plus_d_gap(p)
    src = _open_warn(p, "EDF\\+D")
    assert src.meta["format"] == "EDF+D" and src.meta["n_gaps"] == 1
    x = src.read().data[0]
    assert x.size == 700  # 0.7 s: 4 records + 0.3 s gap
    assert (
        np.all(np.isnan(x[200:500]))
        and np.all(np.isfinite(x[:200]))
        and np.all(np.isfinite(x[500:]))
    )
    whole = src.read().data
    cat = np.concatenate([c.data for c in src.chunks(97)], axis=1)
    assert np.array_equal(np.isnan(cat), np.isnan(whole))
    assert np.array_equal(cat[~np.isnan(cat)], whole[~np.isnan(whole)])


def test_edf_plus_d_contiguous_reads_continuous(tmp_path):
    p = tmp_path / "dc.edf"
    _edf_plus_d_contiguous(p)
    src = open_source(p)
    assert src.meta["format"] == "EDF+D" and src.meta["n_gaps"] == 0
    assert src.n_samples == 400 and np.all(np.isfinite(src.read().data))


def test_edf_mixed_rates_keeps_highest(tmp_path):
    p = tmp_path / "mixed.edf"
    _edf_mixed_rates(p)
    src = _open_warn(p, "mixed sampling rates")
    assert [c.label for c in src.channels] == ["EMG Biceps L", "EMG TA R"]
    assert src.fs == 1000.0 and src.meta["dropped_channels"] == ["Accel"]
    x = src.read().data.astype(np.float64)
    gain, off = 2000 / 65535, -1000 + 32768 * 2000 / 65535
    assert np.allclose(x[0], np.arange(300) * gain + off, atol=1e-4)
    assert np.allclose(x[1], -np.arange(300) * gain + off, atol=1e-4)


def test_edf_non_ascii_patient_is_private(tmp_path, capsys):
    p = tmp_path / "name.edf"
    _edf_non_ascii_patient(p)
    src = _open_warn(p, "non-ASCII")
    assert "Müller" in src.meta["identity"]["patient_field"]
    assert all("Müller" not in w for w in src.meta["warnings"])
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr()
    assert "Müller" not in out.out + out.err and "1950" not in out.out + out.err
    assert main(["info", str(p), "--keep-identity"]) == 0
    assert "Müller" in capsys.readouterr().out


def test_edf_non_voltage_channel_dropped(tmp_path):
    p = tmp_path / "temp.edf"
    _edf_unknown_dim(p)
    src = _open_warn(p, "not a voltage")
    assert [c.label for c in src.channels] == ["EMG Biceps L"]


def test_bdf_truncated(tmp_path):
    p = tmp_path / "cut.bdf"
    _bdf_truncated(p)
    src = _open_warn(p, "truncated")
    assert src.meta["format"] == "BDF" and src.n_samples == 800
    assert src.meta["bytes_dropped"] == 150
    assert np.all(np.diff(src.read().data[0]) > 0)


def test_edf_options_for_csv_only(tmp_path):
    p = tmp_path / "ok.edf"
    _edf_records_minus_one(p)
    with pytest.raises(ConfigError, match="CSV files only"):
        open_source(p, fs=2000)


def test_stream_writer_file_killed_is_readable(tmp_path):
    """Written but never closed (as after SIGKILL): header says -1, data is all there."""
    from emgtool.io.edf_stream import EdfStreamWriter

    p = tmp_path / "live.edf"
    w = EdfStreamWriter(p, FS, ["Biceps L"], record_s=0.5)
    w.write(np.arange(1700)[None, :] % 4000.0)
    w.add_annotation(0.2, 0.0, "cramp")
    w.write(np.zeros((1, 400)))
    os_fd = w._fd  # simulate the kill: the process ends without close()
    import os

    os.close(os_fd)
    src = _open_warn(p, "-1 in the header")
    assert src.n_samples == 2000  # four complete 0.5-s records
    import mne

    raw = mne.io.read_raw_edf(p, verbose="error")
    assert raw.n_times == 2000
    assert [a["description"] for a in raw.annotations] == ["cramp"]


# ---------------------------------------------------------------------- CSV cases
HEAD = "time_s,Biceps L (uV),TA R (uV)\n"


def _rows(n=50, fs=FS, fmt="{t:.6f},{a:.3f},{b:.3f}\n"):
    return "".join(fmt.format(t=i / fs, a=i * 0.5, b=-i * 0.25) for i in range(n))


CSV_ERRORS = {
    "ragged row": (HEAD + _rows(5) + "0.005000,1.0\n" + _rows(3), "line 7: expected 3 fields"),
    "long ragged row": (HEAD + _rows(5) + "0.005000,1.0,2.0,3.0\n", "line 7: expected 3 fields"),
    "non-numeric cell": (
        HEAD + _rows(3) + "0.003000,abc,1.0\n",
        "line 5, column 2 ('Biceps L (uV)'): 'abc' is not a number",
    ),
    "empty cell": (
        HEAD + _rows(3) + "0.003000,,1.0\n",
        "line 5, column 2 ('Biceps L (uV)'): empty cell",
    ),
    "empty line inside": (HEAD + _rows(3) + "\n" + _rows(3), "line 5 is empty"),
    "infinite value": (HEAD + _rows(3) + "0.003000,inf,1.0\n", "not a finite number"),
    "no header": (_rows(20), "line 1: no header row"),
    "decimal comma with comma delimiter": (
        HEAD + "0,000,1,5,2,5\n",
        "line 2: expected 3 fields as in the header, found 6 (decimal commas",
    ),
    "decimal comma mixed with point": (
        "time_s;Biceps L (uV)\n0,000;1,5\n0,001;2.5\n",
        "line 3, column 2 ('Biceps L (uV)'): '2.5' has a '.'",
    ),
    "decreasing time": (
        HEAD + _rows(5) + "0.003000,1,1\n",
        "line 7, column 1: time 0.003 is not after the previous 0.004",
    ),
    "irregular time": (
        HEAD + _rows(5) + "0.0054,1,1\n" + "".join(f"{i / FS:.6f},1,1\n" for i in range(6, 20)),
        "line 7, column 1: time 0.0054 is off the regular",
    ),
    "cut-off last line": (
        HEAD + _rows(10) + "0.010000,1.",
        "line 12: expected 3 fields as in the header, found 2 (the last line looks cut off)",
    ),
    "empty file": ("", "empty file"),
    "header only": (HEAD, "no data rows"),
    "only comments": ("# device X\n% v1\n", "no header row"),
    "unknown unit": (
        "time_s,Biceps L (furlongs)\n0,1\n0.001,2\n",
        "column 2: unknown unit 'furlongs'",
    ),
    "no time column and no fs": ("Biceps L (uV)\n1\n2\n", "no time column and no sampling rate"),
    "one row, no fs": (HEAD + "0,1,2\n", "one data row"),
}


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_csv_errors(case, tmp_path):
    text, needle = CSV_ERRORS[case]
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(ReadError) as ei:
        open_source(p)
    msg = str(ei.value)
    assert needle in msg, msg
    assert "bad.csv" in msg and "\n" not in msg


def test_csv_utf16_refused(tmp_path):
    p = tmp_path / "u16.csv"
    p.write_bytes((HEAD + _rows(3)).encode("utf-16"))
    with pytest.raises(ReadError, match="UTF-16"):
        open_source(p)


def test_csv_ten_megabyte_line(tmp_path):
    p = tmp_path / "huge.csv"
    with open(p, "w") as fh:
        fh.write(HEAD + _rows(3))
        fh.write("0.003000," + "1" * 10_000_000 + ",2\n")
    t0 = time.perf_counter()
    with pytest.raises(ReadError, match="line 5 is longer than 1048576 bytes"):
        open_source(p)
    assert time.perf_counter() - t0 < 5


def test_csv_ten_megabyte_header(tmp_path):
    p = tmp_path / "hugeh.csv"
    p.write_text("x" * 10_000_000 + "\n1\n")
    with pytest.raises(ReadError, match="line 1 is longer"):
        open_source(p)


def test_csv_semicolons(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text(HEAD.replace(",", ";") + _rows(20, fmt="{t:.6f};{a:.3f};{b:.3f}\n"))
    src = open_source(p)
    assert src.meta["delimiter"] == ";" and not src.meta["decimal_comma"]
    assert np.allclose(src.read().data[0], np.arange(20) * 0.5)


def test_csv_decimal_comma(tmp_path):
    p = tmp_path / "dec.csv"
    rows = _rows(20, fmt="{t:.6f};{a:.3f};{b:.3f}\n").replace(".", ",")
    p.write_text(HEAD.replace(",", ";") + rows)
    src = open_source(p)
    assert src.meta["decimal_comma"] and src.fs == FS
    assert np.array_equal(src.read().data[1], (-np.arange(20) * 0.25).astype(np.float32))


def test_csv_bom_and_crlf(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (HEAD + _rows(10)).replace("\n", "\r\n").encode())
    src = open_source(p)
    assert [c.label for c in src.channels] == ["Biceps L", "TA R"]
    assert src.fs == FS and src.n_samples == 10


def test_csv_tsv_units_and_time_ms(tmp_path):
    p = tmp_path / "rec.tsv"
    p.write_text(
        "Time (ms)\tBiceps L [mV]\tTA R\n" + "".join(f"{i * 0.5}\t{i}\t{i}\n" for i in range(10))
    )
    src = _open_warn(p, "assumed uV")
    assert src.fs == 2000.0 and src.meta["format"] == "TSV"
    assert np.allclose(src.read().data[0], np.arange(10) * 1000.0)
    assert np.allclose(src.read().data[1], np.arange(10))
    q = tmp_path / "v.tsv"
    q.write_text("t\tTA R\n" + "".join(f"{i / 500}\t{i * 1e-6}\n" for i in range(10)))
    assert np.allclose(open_source(q, unit="V").read().data[0], np.arange(10), atol=1e-6)


def test_csv_unit_conflict(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text(HEAD + _rows(5))
    with pytest.raises(ConfigError, match="header says 'uV'"):
        open_source(p, unit="mV")


def test_csv_no_unit_warns_and_nan_is_gap(tmp_path):
    p = tmp_path / "nan.csv"
    p.write_text("time,EMG1,EMG2\n" + "0,1,2\n0.001,nan,3\n0.002,4,NaN\n")
    src = _open_warn(p, "assumed uV")
    x = src.read().data
    assert np.isnan(x[0, 1]) and np.isnan(x[1, 2]) and x[0, 2] == 4


def test_csv_no_time_column_with_fs(tmp_path):
    p = tmp_path / "nt.csv"
    p.write_text("Biceps L (uV),TA R (uV)\n" + "".join(f"{i},{-i}\n" for i in range(7)))
    src = open_source(p, fs=250)
    assert src.fs == 250 and src.n_samples == 7


def test_csv_fs_disagrees_with_time(tmp_path):
    p = tmp_path / "fsd.csv"
    p.write_text(HEAD + _rows(20))
    with pytest.raises(ReadError, match="disagrees"):
        open_source(p, fs=2000)


def test_csv_missing_final_newline_warns(tmp_path):
    p = tmp_path / "nonl.csv"
    p.write_text(HEAD + _rows(5).rstrip("\n"))
    src = _open_warn(p, "no line break")
    assert src.n_samples == 5


def test_csv_trailing_blank_lines_ok(tmp_path):
    p = tmp_path / "tb.csv"
    p.write_text(HEAD + _rows(5) + "\n\n")
    assert open_source(p).n_samples == 5


def test_csv_epoch_timestamps_give_start_time(tmp_path):
    p = tmp_path / "epoch.csv"
    p.write_text(
        "timestamp,Biceps L (uV)\n" + "".join(f"{1.7e9 + i / 500:.6f},{i}\n" for i in range(100))
    )
    src = open_source(p)
    assert src.fs == 500 and src.start_time is not None and src.start_time.year == 2023


# ---------------------------------------------------------------------- through the CLI
CLI_ERROR_CASES = [(f"{k}.edf", make) for k, (make, _) in EDF_ERRORS.items()] + [
    (f"{k}.csv", text) for k, (text, _) in CSV_ERRORS.items()
]


@pytest.mark.parametrize("name,make", CLI_ERROR_CASES, ids=[n for n, _ in CLI_ERROR_CASES])
def test_cli_info_error_one_line(name, make, tmp_path, capsys):
    p = tmp_path / name.replace(" ", "_").replace("==", "eq").replace("+", "p")
    if callable(make):
        make(p)
    else:
        p.write_text(make, encoding="utf-8", newline="")
    before = sha256(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["info", str(p)])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("emgtool: error: "), err
    assert p.name in lines[0] and "Traceback" not in err
    assert sha256(p) == before


WARN_CASES = {
    "cut.edf": _edf_cut_mid_record,
    "minus1.edf": _edf_records_minus_one,
    "d.edf": _edf_plus_d_gap,
    "mixed.edf": _edf_mixed_rates,
    "cut.bdf": _bdf_truncated,
}


@pytest.mark.parametrize("name", list(WARN_CASES))
def test_cli_info_warning_cases(name, tmp_path, capsys):
    p = tmp_path / name
    WARN_CASES[name](p)
    before = sha256(p)
    assert main(["info", str(p), "--json"]) == 0
    out = capsys.readouterr()
    import json

    info = json.loads(out.out)
    assert info["warnings"] and "emgtool: warning:" in out.err
    assert "Traceback" not in out.err
    assert sha256(p) == before


def test_cli_low_fs_note(tmp_path, capsys):
    p = tmp_path / "low.csv"
    p.write_text("Biceps L (uV)\n" + "1\n" * 500)
    assert main(["info", str(p), "--fs", "250"]) == 0
    out = capsys.readouterr().out
    assert "low sampling rate (250 Hz" in out and "cramp detection still works" in out


def test_cli_info_good_file_and_sites(tmp_path, capsys):
    p = tmp_path / "ok.edf"
    write_counter_edf(p, 2000, FS)
    assert main(["info", str(p), "--sites", "Deltoid L,Biceps L,TA R"]) == 0
    out = capsys.readouterr().out
    assert "deltoid" in out and "EDF+C" in out and "2000 per channel" in out
    assert "low sampling rate" not in out


def test_cli_subprocess_error(tmp_path):
    p = tmp_path / "trunc.csv"
    write_counter_csv(p, 100, FS)
    b = p.read_bytes()
    p.write_bytes(b[: b.rstrip(b"\n").rfind(b",")])  # cut the last line inside a field
    before = sha256(p)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "emgtool", "info", str(p)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2
    lines = r.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and "trunc.csv" in lines[0] and "cut off" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert sha256(p) == before


def test_edf_trailing_junk_ignored(tmp_path):
    p = tmp_path / "junk.edf"
    p.write_bytes(_valid_edf_bytes() + b"\x01" * 123)
    src = _open_warn(p, "123 bytes after the 10 data records")
    assert src.n_samples == 1000 and src.meta["bytes_dropped"] == 123


def test_edf_invalid_start_date_warns(tmp_path):
    p = tmp_path / "date.edf"
    b = bytearray(_valid_edf_bytes())
    b[168:176] = b"45.13.99"
    p.write_bytes(bytes(b))
    src = _open_warn(p, "start time unknown")
    assert src.start_time is None and src.n_samples == 1000


def test_edf_empty_dimension_assumed_uv(tmp_path):
    p = tmp_path / "nodim.edf"
    p.write_bytes(build_edf([_sig(dim="")], _records(2), duration="0.1"))
    src = _open_warn(p, "no physical dimension; assumed uV")
    assert src.n_samples == 200


def test_edf_mv_dimension_scaled(tmp_path):
    p = tmp_path / "mv.edf"
    p.write_bytes(build_edf([_sig(dim="mV", pmin=-1, pmax=1)], _records(2), duration="0.1"))
    x = open_source(p).read().data[0].astype(np.float64)
    assert np.allclose(x, ((np.arange(200) + 32768) * 2 / 65535 - 1) * 1000, atol=1e-3)


def test_edf_digital_range_beyond_16_bit(tmp_path):
    p = tmp_path / "dig.edf"
    p.write_bytes(build_edf([_sig(dmin=-40000, dmax=40000)], _records(2), duration="0.1"))
    with pytest.raises(ReadError, match="exceeds the 16-bit range"):
        open_source(p)


def test_edf_content_named_bdf(tmp_path):
    p = tmp_path / "really_edf.bdf"
    p.write_bytes(_valid_edf_bytes())
    src = _open_warn(p, "named .bdf but holds EDF data")
    assert src.meta["format"] == "EDF" and src.n_samples == 1000


def test_csv_one_sample_long_with_fs(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("Biceps L (uV)\n42.5\n")
    src = open_source(p, fs=2000)
    assert src.n_samples == 1 and src.read().data.tolist() == [[42.5]]


def test_cli_info_montage(tmp_path, capsys):
    p = tmp_path / "m.csv"
    p.write_text("EMG1 (uV),EMG2 (uV)\n1,2\n3,4\n")
    m = tmp_path / "montage.toml"
    m.write_text('[channels]\n"EMG1" = "Tibialis anterior R"\n"EMG2" = "Gastroc med L"\n')
    assert main(["info", str(p), "--fs", "2000", "--montage", str(m), "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert [(c["site"], c["side"]) for c in info["channels"]] == [
        ("tibialis_anterior", "R"),
        ("gastrocnemius_medial", "L"),
    ]
    assert info["regions"] == ["lumbosacral"] and "identity" not in info
