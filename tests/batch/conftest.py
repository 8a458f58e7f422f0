"""Shared fixtures of the batch tests: tiny EDF recordings and a fast analysis."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FAKE = "fake_analyze:analyze_to_dir"
LABELS = ["TA L", "TA R", "Biceps L", "Gastrocnemius R"]

# Dask workers (spawned processes, external workers) import the package and
# the fake analysis by module name.
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(autouse=True)
def _workers_find_the_code(monkeypatch):
    # Subprocesses (a driver, `dask worker`) find the package and the fake analysis.
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(HERE), *old]))


def write_recording(
    path: Path,
    seed: int,
    *,
    seconds: float = 4.0,
    fs: float = 1000.0,
    labels=LABELS,
    spikes: int = 5,
) -> Path:
    """A tiny EDF: noise plus a few large spikes (different per seed)."""
    from emgtool.io.write import write_edf
    from emgtool.recording import Recording

    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    data = rng.normal(0, 5.0, (len(labels), n))
    for ch in range(len(labels)):
        for t in rng.integers(100, n - 100, spikes * (ch + 1)):
            data[ch, t : t + 3] += [150.0, -120.0, 40.0]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_edf(path, Recording.from_array(data.astype(np.float32), fs, labels))
    return path


@pytest.fixture
def recordings(tmp_path):
    """``make(n, folder='data')`` → list of n distinct tiny EDF files."""

    def make(n: int, folder: str = "data", prefix: str = "rec") -> list[Path]:
        return [
            write_recording(tmp_path / folder / f"{prefix}{i:02d}.edf", seed=i) for i in range(n)
        ]

    return make


def catalog_rows(out: Path) -> list[dict]:
    db = sqlite3.connect(out / "catalog.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM results")]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def result_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


def calls(log: Path) -> list[str]:
    f = log / "calls.txt"
    return [ln.split()[0] for ln in f.read_text().splitlines()] if f.exists() else []


def call_threads(log: Path) -> set[str]:
    """The distinct thread settings the fake analysis saw (``emgtool=1 blas=1``)."""
    lines = (log / "calls.txt").read_text().splitlines()
    return {" ".join(ln.split()[2:]) for ln in lines}
