"""Shared helpers for the robustness tests: signals, files and CLI runs.

Every recording here is generated in the test (simulator or plain numpy), so
each case says exactly what is wrong with it.  Runs are short (≤ 20 s,
3 channels, 1 kHz) to keep the whole package well under a minute and a half.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from emgtool.cli import main
from emgtool.recording import Recording
from emgtool.simulate import simulate

LABELS = ["Biceps L", "Biceps R", "TA R"]
FS = 1000.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliRun:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]

    @property
    def warnings(self) -> list[str]:
        return [ln for ln in self.err_lines if ln.startswith("emgtool: warning: ")]


def run_cli(argv: list[str], cwd: Path | None = None) -> CliRun:
    """``emgtool.cli.main(argv)`` in this process, capturing stdout/stderr.

    A traceback escaping ``main`` fails the test (it would reach the user).
    """
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in argv])
    finally:
        os.chdir(old)
    return CliRun(rc, out.getvalue(), err.getvalue())


def run_subprocess(
    argv: list[str], cwd: Path | None = None, timeout: float = 120, tmpdir: Path | None = None
) -> CliRun:
    """``python -m emgtool argv`` in a child process (what a user runs).

    ``tmpdir`` becomes the child's TMPDIR, to see what it leaves in temp space.
    """
    env = dict(os.environ)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run(
        [sys.executable, "-m", "emgtool", *[str(a) for a in argv]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliRun(p.returncode, p.stdout, p.stderr)


def assert_one_line_error(r: CliRun, *needles: str) -> str:
    """Exit 2 and exactly one stderr line ``emgtool: error: …`` containing ``needles``."""
    assert r.rc == 2, (r.rc, r.err)
    assert "Traceback" not in r.err, r.err
    errors = [ln for ln in r.err_lines if not ln.startswith("emgtool: warning: ")]
    assert len(errors) == 1, r.err
    line = errors[0]
    assert line.startswith("emgtool: error: "), line
    for n in needles:
        assert n in line, (n, line)
    return line


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root``."""
    root = Path(root)
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- signals
def simulated(duration_s: float = 20.0, seed: int = 1, fs: float = FS, **kw):
    """A 3-channel resting recording with fasciculations at every site, and its truth."""
    kw.setdefault("fp_rate_per_min", 60)
    rec, truth = simulate(
        "als-widespread", duration_s, seed, fs=fs, sites=LABELS, n_cramps=0, n_voluntary=0, **kw
    )
    return np.array(rec.data, dtype=np.float32), truth


def recording(data: np.ndarray, fs: float = FS, **kw) -> Recording:
    return Recording.from_array(np.asarray(data, dtype=np.float32), fs, LABELS, **kw)


@pytest.fixture(scope="session")
def base_signal():
    """(data, truth) of 20 s × 3 channels at 1 kHz, shared read-only by the signal tests."""
    data, truth = simulated()
    data.setflags(write=False)
    return data, truth


# ---------------------------------------------------------------------- identity
#: Identifiers written into the header of the privacy fixture.
NAME = "Jane_Q_Doeberg"
NAME_PARTS = ("Doeberg", "Jane Q")
BIRTHDATE = dt.date(1950, 3, 14)
BIRTHDATE_FORMS = ("1950-03-14", "14-MAR-1950", "14.03.1950", "14.03.50", "14-mar-1950")
PATIENT_CODE = "MRN-4711-XZ"
HOSPITAL_CODE = "HOSP-99812"
TECHNICIAN = "TECH-Smithers"
EQUIPMENT = "AMP-SN-5551"
STARTDATE = dt.date(2023, 5, 17)
START_FORMS = ("2023-05-17", "17-MAY-2023", "17.05.23", "17.05.2023")


def secrets() -> list[str]:
    """Every identifying string that must not leak (start date handled separately)."""
    return [NAME, *NAME_PARTS, *BIRTHDATE_FORMS, PATIENT_CODE, HOSPITAL_CODE, TECHNICIAN]


def write_identified_edf(path: Path, data: np.ndarray, fs: float = FS, *, plus: bool = True):
    """EDF(+) via edfio whose header names the patient, hospital and start date.

    ``plus`` adds one annotation, which makes edfio write EDF+C (structured
    patient field); without it the file is plain EDF with the same text.
    """
    import edfio

    sigs = [
        edfio.EdfSignal(
            np.asarray(data[i], dtype=np.float64),
            fs,
            label=lab,
            physical_dimension="uV",
            physical_range=(-5000.0, 5000.0),
        )
        for i, lab in enumerate(LABELS)
    ]
    edf = edfio.Edf(
        sigs,
        patient=edfio.Patient(code=PATIENT_CODE, sex="F", birthdate=BIRTHDATE, name=NAME),
        recording=edfio.Recording(
            startdate=STARTDATE,
            hospital_administration_code=HOSPITAL_CODE,
            investigator_technician_code=TECHNICIAN,
            equipment_code=EQUIPMENT,
        ),
        starttime=dt.time(9, 41, 7),
        annotations=[edfio.EdfAnnotation(1.0, None, "electrodes checked")] if plus else (),
    )
    edf.write(path)
    return path


def find_secrets(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in any file under root (bytes, any case)."""
    hits = []
    for p in sorted(Path(root).rglob("*")):
        if not p.is_file():
            continue
        blob = p.read_bytes().lower()
        for n in needles:
            for enc in ("utf-8", "latin-1", "utf-16-le"):
                if n.lower().encode(enc) in blob:
                    hits.append((str(p.relative_to(root)), n))
                    break
    return hits


# ---------------------------------------------------------------------- EDF+D
def write_edf_plus_d(
    path: Path, data: np.ndarray, fs: float, onsets_s: list[float], record_s: float = 1.0
) -> Path:
    """EDF+D file: record ``k`` holds ``data[:, k*spr:(k+1)*spr]`` and starts at ``onsets_s[k]``.

    Written field by field (edfio does not write EDF+D); physical range ±5 mV.
    """
    spr = int(round(fs * record_s))
    n_rec = len(onsets_s)
    n_ch = data.shape[0]
    ann_spr = 32  # 64 bytes per record for the time-keeping TAL
    labels = [*LABELS[:n_ch], "EDF Annotations"]
    ns = len(labels)

    def f(v, w):
        return str(v).encode("ascii").ljust(w, b" ")[:w]

    hdr = [
        f("0", 8),
        f("X X X X", 80),
        f("Startdate X X X X", 80),
        f("01.01.20", 8),
        f("10.00.00", 8),
        f(256 * (ns + 1), 8),
        f("EDF+D", 44),
        f(n_rec, 8),
        f(f"{record_s:g}", 8),
        f(ns, 4),
    ]
    sig = {
        "label": (16, labels),
        "transducer": (80, [""] * ns),
        "dim": (8, ["uV"] * n_ch + [""]),
        "pmin": (8, [-5000] * n_ch + [-1]),
        "pmax": (8, [5000] * n_ch + [1]),
        "dmin": (8, [-32768] * ns),
        "dmax": (8, [32767] * ns),
        "prefilter": (80, [""] * ns),
        "spr": (8, [spr] * n_ch + [ann_spr]),
        "reserved": (32, [""] * ns),
    }
    for width, values in sig.values():
        hdr += [f(v, width) for v in values]
    digital = np.clip(
        np.round(np.asarray(data, np.float64) / 5000.0 * 32767.5 - 0.5), -32768, 32767
    )
    body = []
    for k, onset in enumerate(onsets_s):
        for c in range(n_ch):
            body.append(digital[c, k * spr : (k + 1) * spr].astype("<i2").tobytes())
        tal = f"+{onset:g}".encode() + b"\x14\x14\x00"
        body.append(tal.ljust(2 * ann_spr, b"\x00"))
    Path(path).write_bytes(b"".join(hdr) + b"".join(body))
    return path
