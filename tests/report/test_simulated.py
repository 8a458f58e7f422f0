"""Simulated scenarios: spread pattern and regions match the truth; intervals cover the true rate."""

from __future__ import annotations

import json

import pytest
from scipy.stats import binom

from emgtool.report import summarize, write_report
from emgtool.simulate import simulate

from .conftest import analysis_from_truth

RATE = 20.0  # fixed true rate of every fasciculating site (per minute)

EXPECTED = {
    "als-widespread": ("widespread", ["bulbar", "cervical", "thoracic", "lumbosacral"], True),
    "bfs-focal": ("focal", ["lumbosacral"], None),  # one or both calves
    "healthy": ("none", [], False),
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_truth_pattern_and_intervals(scenario):
    """A perfect detector (the truth table): pattern/regions exact at every seed; the 95 %
    intervals miss the true rate no more often than 95 % coverage allows."""
    covered = missed = 0
    for seed in (1, 2, 3):
        rec, truth = simulate(
            scenario,
            duration_s=120,
            seed=seed,
            fs=1000,
            nuisances="none",
            n_voluntary=0,
            fp_rate_per_min=RATE,
            doublet_prob=0.0,
        )
        s = summarize(analysis_from_truth(rec, truth))
        pattern, regions, bilateral = EXPECTED[scenario]
        assert s["spread"]["pattern"] == pattern
        assert s["spread"]["regions_with_fasciculations"] == regions
        if bilateral is not None:
            assert s["spread"]["bilateral"] is bilateral
        f = truth[truth.trial_type == "fasciculation"]
        counts = f.groupby(["site", "side"]).size()
        for site in s["sites"]:
            n_true = int(counts.get((site["site"], site["side"]), 0))
            assert site["fasciculation_count"] == n_true
            lo, hi = site["fasciculation_rate_ci95_per_min"]
            if n_true:
                ok = lo <= RATE <= hi
                covered += ok
                missed += not ok
                assert site["status"] == "involved"
            else:
                assert site["status"] == "not_involved"
    n = covered + missed
    # Each exact interval covers with probability >= 95 %; allow what a fair 5 % miss
    # rate produces with probability 0.999 (one-sided binomial bound).
    assert missed <= binom.ppf(0.999, n, 0.05), (missed, n)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_detector_end_to_end_pattern(scenario, tmp_path):
    """With the real detector (default nuisances): the written summary.json has the
    pattern and regions of the truth, and the report renders from a real Analysis."""
    analyze = pytest.importorskip("emgtool.pipeline.analyze").analyze
    rec, truth = simulate(scenario, duration_s=120, seed=1)
    paths = write_report(analyze(rec), tmp_path)
    s = json.loads(paths["summary_json"].read_text(encoding="utf-8"))
    pattern, regions, _bilateral = EXPECTED[scenario]
    assert s["spread"]["pattern"] == pattern
    assert s["spread"]["regions_with_fasciculations"] == regions
    html = paths["report_html"].read_text(encoding="utf-8")
    assert f'data-key="spread.pattern">{pattern}<' in html


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_detector_rates_and_intervals(scenario):
    """The real detector, nuisances on (mains, ECG, motion, wander, pink/white noise):
    pattern and regions match the truth, and each site's 95 % interval contains the
    true (generating) rate as often as 95 % coverage allows."""
    from emgtool.pipeline.analyze import analyze

    covered = missed = 0
    for seed in (1, 2):
        rec, truth = simulate(
            scenario,
            duration_s=120,
            seed=seed,
            n_voluntary=0,
            fp_rate_per_min=RATE,
            doublet_prob=0.0,
        )
        s = summarize(analyze(rec))
        pattern, regions, bilateral = EXPECTED[scenario]
        assert s["spread"]["pattern"] == pattern, (seed, s["spread"])
        assert s["spread"]["regions_with_fasciculations"] == regions
        if bilateral is not None:
            assert s["spread"]["bilateral"] is bilateral
        f = truth[truth.trial_type == "fasciculation"]
        involved = set(map(tuple, f[["site", "side"]].drop_duplicates().to_numpy()))
        for site in s["sites"]:
            if (site["site"], site["side"]) not in involved:
                continue
            lo, hi = site["fasciculation_rate_ci95_per_min"]
            ok = lo <= RATE <= hi
            covered += ok
            missed += not ok
    n = covered + missed
    if n:
        assert missed <= binom.ppf(0.999, n, 0.05), (missed, n)
