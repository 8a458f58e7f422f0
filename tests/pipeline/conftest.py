"""Simulated recordings shared by the pipeline tests (made once per run)."""

import numpy as np
import pandas as pd
import pytest

from emgtool.pipeline import finalize, flush, init_state, step
from emgtool.pipeline.analyze import analyze
from emgtool.recording import Recording
from emgtool.simulate import simulate


def lobes(amps_uv, lobe_ms, fs: float = 2048.0) -> np.ndarray:
    """Consecutive half-sine lobes of the given amplitudes (µV; 0: a silent stretch) and
    lengths (ms): a synthetic potential."""
    parts = []
    for a, ms in zip(amps_uv, lobe_ms, strict=True):
        n = max(2, int(round(ms * fs / 1000)))
        parts.append(a * np.sin(np.pi * (np.arange(n) + 0.5) / n))
    return np.concatenate(parts)


def run_chunked(rec: Recording, cuts) -> pd.DataFrame:
    """Events of ``rec`` fed to the pipeline in chunks cut at ``cuts`` (sample indices)."""
    st = init_state(rec.fs, rec.channels)
    edges = [0, *sorted(set(int(c) for c in cuts if 0 < c < rec.n_samples)), rec.n_samples]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        _, st = step(rec.slice(a, b), st)
    _, st = flush(st)
    return finalize(st).events


@pytest.fixture(scope="session")
def als_60s():
    rec, truth = simulate("als-widespread", 60, seed=11)
    return rec, truth, analyze(rec)


@pytest.fixture(scope="session")
def cramps_60s():
    rec, truth = simulate("cramps", 60, seed=12)
    return rec, truth, analyze(rec)


@pytest.fixture(scope="session")
def healthy_120s():
    rec, truth = simulate("healthy", 120, seed=13)
    return rec, truth, analyze(rec)
