"""Simulated recordings shared by the pipeline tests (made once per run)."""

import pytest

from emgtool.pipeline.analyze import analyze
from emgtool.simulate import simulate


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
