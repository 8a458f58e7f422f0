"""summarize(): numbers per site, intervals, spread patterns, JSON validity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import gamma

from emgtool.report.summary import InvolvementRule, poisson_interval, summarize


def _site(summary, label):
    return next(s for s in summary["sites"] if s["label"] == label)


def test_required_keys_and_valid_json(als_analysis):
    s = summarize(als_analysis)
    text = json.dumps(s, allow_nan=False)  # raises on NaN/inf
    doc = json.loads(text)
    assert doc["schema_version"]
    assert doc["recording"]["duration_s"] == pytest.approx(300.0)
    assert doc["recording"]["fs"] == 2000.0
    for site in doc["sites"]:
        for k in (
            "site",
            "side",
            "region",
            "fasciculation_count",
            "fasciculation_rate_per_min",
            "cramp_count",
            "rest_s",
        ):
            assert k in site
    assert isinstance(doc["spread"]["regions_with_fasciculations"], list)
    assert doc["spread"]["pattern"] in ("none", "focal", "multifocal", "widespread")
    assert doc["config"] == als_analysis.config.to_dict()
    assert "identity" not in doc


def test_rate_and_garwood_interval(factory, spec):
    on = np.linspace(5, 295, 37)
    a = factory([spec("biceps", "L", "cervical", onsets=on, rest_s=240.0)], duration_s=300)
    s = _site(summarize(a), "biceps L")
    assert s["fasciculation_count"] == 37
    assert s["fasciculation_rate_per_min"] == pytest.approx(37 / 4.0)
    lo, hi = s["fasciculation_rate_ci95_per_min"]
    # Garwood via the gamma distribution (chi2(2k)/2 == gamma(k)), an independent route.
    assert lo == pytest.approx(gamma.ppf(0.025, 37) / 4.0, rel=1e-6)
    assert hi == pytest.approx(gamma.ppf(0.975, 38) / 4.0, rel=1e-6)
    assert poisson_interval(0)[0] == 0.0


def test_interval_covers_true_rate(factory, spec):
    # 150 independent sites with the same true rate in one analysis (one summarize call).
    true = 4.0
    sites = [spec(f"site{i}", "L", "cervical", true) for i in range(150)]
    s = summarize(factory(sites, duration_s=120, seed=11))
    hits = [
        lo <= true <= hi for lo, hi in (x["fasciculation_rate_ci95_per_min"] for x in s["sites"])
    ]
    assert np.mean(hits) >= 0.92  # exact interval is conservative: nominal >= 95 %


def test_amplitude_iqr_duration_phases(factory, spec):
    a = factory([spec("biceps", "L", "cervical", 30)], duration_s=200, seed=3)
    f = a.events_of("fasciculation")
    s = _site(summarize(a), "biceps L")
    q25, q50, q75 = np.percentile(f["amplitude_uv"].astype(float), [25, 50, 75])
    assert s["amplitude_uv_median"] == pytest.approx(q50, rel=1e-5)
    assert s["amplitude_uv_iqr"] == pytest.approx(q75 - q25, rel=1e-5)
    assert s["duration_ms_median"] == pytest.approx(
        np.median(f["duration_ms"].astype(float)), rel=1e-5
    )
    ph = f["phases"].astype(float).to_numpy()
    assert s["phases_median"] == pytest.approx(np.median(ph))
    assert s["polyphasic_pct"] == pytest.approx(100 * np.mean(ph > 4), abs=1e-3)
    assert s["n_shapes"] == f["shape"].nunique()


def test_doublets_from_column_and_fallback(factory, spec):
    on = [10.0, 10.005, 30.0, 30.004, 30.009, 60.0, 90.0, 120.0]
    a = factory([spec("biceps", "L", "cervical", onsets=on, n_shapes=1)], duration_s=150)
    ev = a.events
    f = ev["trial_type"] == "fasciculation"
    ev.loc[f, "shape"] = 0
    ev.loc[f, "multiplet"] = [0, 1, 0, 1, 2, 0, 0, 0]
    s = _site(summarize(a), "biceps L")
    assert s["doublet_pct"] == pytest.approx(100 * 5 / 8)  # 2 + 3 potentials in multiplets
    ev["multiplet"] = pd.array([pd.NA] * len(ev), dtype="Int64")
    s2 = _site(summarize(a), "biceps L")
    assert s2["doublet_pct"] == pytest.approx(100 * 5 / 8)


def test_isolated_pct(factory, spec):
    on = [10.0, 10.1, 10.2, 20.0, 30.0, 40.0]  # 3 continual, 3 isolated
    a = factory([spec("biceps", "L", "cervical", onsets=on)], duration_s=60)
    s = _site(summarize(a), "biceps L")
    assert s["isolated_pct"] == pytest.approx(50.0)
    a.events["discharge"] = pd.array(
        [pd.NA] * len(a.events), dtype="string"
    )  # 250 ms rule fallback
    assert _site(summarize(a), "biceps L")["isolated_pct"] == pytest.approx(50.0)


def test_ifi_excludes_gaps_cramps_artifacts(factory, spec):
    on = [10.0, 20.0, 30.0, 50.0, 60.0, 80.0, 95.0, 110.0, 125.0]
    art = dict(
        onset=117.0,
        duration=0.5,
        trial_type="artifact",
        sample=234000,
        site="unknown",
        side="n/a",
        region="unknown",
        channel="biceps L",
        reason="common-mode",
    )
    a = factory(
        [spec("biceps", "L", "cervical", onsets=on, cramps=[(65.0, 10.0)])],
        duration_s=150,
        gaps_s=[(35.0, 45.0)],
        extra_events=[art],
    )
    s = _site(summarize(a), "biceps L")
    # kept: 10-20, 20-30, 50-60, 80-95, 95-110 ; dropped: over the gap, the cramp, the artefact
    assert s["ifi_count"] == 5
    assert s["ifi_median_ms"] == pytest.approx(10000.0)
    assert s["ifi_q75_ms"] == pytest.approx(15000.0)
    assert s["fasciculation_count"] == len(on)  # the artefact is never counted
    assert s["cramp_count"] == 1
    assert s["cramp_total_s"] == pytest.approx(10.0)
    observed = 150 - 10
    assert s["cramps_per_hour"] == pytest.approx(3600 / observed)


def test_artifact_and_voluntary_never_counted(factory, spec):
    extra = [
        dict(
            onset=t,
            duration=0.01,
            trial_type=k,
            sample=int(t * 2000),
            site="biceps",
            side="L",
            region="cervical",
            channel="biceps L",
        )
        for t, k in [(1.0, "artifact"), (2.0, "voluntary"), (3.0, "artifact")]
    ]
    a = factory(
        [spec("biceps", "L", "cervical", onsets=[50.0, 60.0])], duration_s=100, extra_events=extra
    )
    s = summarize(a)
    assert _site(s, "biceps L")["fasciculation_count"] == 2
    assert _site(s, "biceps L")["cramp_count"] == 0
    assert s["event_counts"]["artifact"] == 2


def test_short_rest_warning_and_nulls(factory, spec):
    a = factory(
        [
            spec("biceps", "L", "cervical", onsets=[], rest_s=0.0),
            spec("tibialis_anterior", "R", "lumbosacral", onsets=[1.0], rest_s=40.0),
        ],
        duration_s=60,
    )
    s = summarize(a)
    json.dumps(s, allow_nan=False)
    b = _site(s, "biceps L")
    assert b["fasciculation_rate_per_min"] is None
    assert b["fasciculation_rate_ci95_per_min"] == [None, None]
    assert b["amplitude_uv_median"] is None and b["status"] == "insufficient"
    assert "short_rest" in b["quality_flags"]
    assert sum("biceps L" in w and "90" in w for w in s["warnings"]) == 1
    assert sum("tibialis_anterior R" in w for w in s["warnings"]) == 1


# ---------------------------------------------------------------------- spread
def test_single_false_positive_is_none(factory, spec):
    a = factory(
        [
            spec("biceps", "L", "cervical", onsets=[100.0]),
            spec("tibialis_anterior", "R", "lumbosacral", onsets=[]),
            spec("gastrocnemius_medial", "L", "lumbosacral", onsets=[10.0, 200.0]),
        ],
        duration_s=600,
    )
    s = summarize(a)
    assert s["spread"]["pattern"] == "none"
    assert s["spread"]["regions_with_fasciculations"] == []
    assert [r["status"] for r in s["regions"] if r["region"] == "cervical"] == ["not_involved"]


def test_focal_bilateral_calves(factory, spec):
    a = factory(
        [
            spec("gastrocnemius_medial", "L", "lumbosacral", 6),
            spec("gastrocnemius_medial", "R", "lumbosacral", 5),
            spec("biceps", "L", "cervical", 0),
            spec("biceps", "R", "cervical", 0),
            spec("tibialis_anterior", "R", "lumbosacral", 0),
        ],
        duration_s=600,
        seed=2,
    )
    sp = summarize(a)["spread"]
    assert sp["pattern"] == "focal"
    assert sp["regions_with_fasciculations"] == ["lumbosacral"]
    assert sp["bilateral"] is True


def test_multifocal_and_widespread(factory, spec):
    multi = factory(
        [
            spec("biceps", "L", "cervical", 10),
            spec("tibialis_anterior", "L", "lumbosacral", 10),
            spec("biceps", "R", "cervical", 0),
        ],
        duration_s=300,
    )
    sp = summarize(multi)["spread"]
    assert sp["pattern"] == "multifocal" and sp["bilateral"] is False
    assert sp["n_regions_with_fasciculations"] == 2
    four_limbs = factory(
        [
            spec("biceps", "L", "cervical", 10),
            spec("biceps", "R", "cervical", 10),
            spec("tibialis_anterior", "L", "lumbosacral", 10),
            spec("tibialis_anterior", "R", "lumbosacral", 10),
        ],
        duration_s=300,
    )
    assert summarize(four_limbs)["spread"]["pattern"] == "widespread"


def test_als_widespread(als_analysis):
    s = summarize(als_analysis)
    sp = s["spread"]
    assert sp["pattern"] == "widespread"
    assert sp["regions_with_fasciculations"] == ["bulbar", "cervical", "thoracic", "lumbosacral"]
    assert sp["bilateral"] is True and sp["complete"] is True
    for site in s["sites"]:
        lo, hi = site["fasciculation_rate_ci95_per_min"]
        assert lo > 0 and hi > lo


def test_unobserved_site_not_called_free(factory, spec):
    a = factory(
        [
            spec("gastrocnemius_medial", "L", "lumbosacral", 8),
            spec("biceps", "L", "cervical", onsets=[], rest_s=30.0),
        ],
        duration_s=300,
    )
    s = summarize(a)
    assert _site(s, "biceps L")["status"] == "insufficient"
    cerv = next(r for r in s["regions"] if r["region"] == "cervical")
    assert cerv["status"] == "insufficient"
    assert "cervical" in s["spread"]["regions_not_assessed"]
    assert "bulbar" in s["spread"]["regions_not_assessed"]  # not examined at all
    assert s["spread"]["pattern"] == "focal" and s["spread"]["complete"] is False


def test_rule_parameters_change_involvement(factory, spec):
    a = factory(
        [spec("biceps", "L", "cervical", onsets=[10.0, 50.0, 90.0, 130.0])], duration_s=600
    )
    assert summarize(a)["spread"]["pattern"] == "none"  # 4 in 10 min: LB 0.11/min < 0.2
    loose = InvolvementRule(min_count=3, background_per_min=0.05)
    assert summarize(a, loose)["spread"]["pattern"] == "focal"


def test_identity_only_when_present(factory, spec):
    a = factory([spec("biceps", "L", "cervical", 1)], identity={"subject": "X"})
    s = summarize(a)
    assert s["identity"] == {"subject": "X"}
    assert s["recording"]["file"] == "rec.edf"


def test_brief_ecg_blanks_do_not_break_intervals(factory, spec):
    on = [10.0, 12.0, 14.0, 16.0]
    ecg = [
        dict(
            onset=t,
            duration=0.03,
            trial_type="artifact",
            sample=int(t * 2000),
            site="biceps",
            side="L",
            region="cervical",
            channel="biceps L",
            reason="ecg",
        )
        for t in np.arange(10.5, 16.0, 1.0)
    ]
    a = factory([spec("biceps", "L", "cervical", onsets=on)], duration_s=30, extra_events=ecg)
    s = _site(summarize(a), "biceps L")
    assert s["ifi_count"] == 3 and s["ifi_median_ms"] == pytest.approx(2000.0)


def test_schema_doc_describes_every_key(als_analysis):
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "summary-schema.md").read_text(encoding="utf-8")
    s = summarize(als_analysis)
    keys = set(s) | set(s["recording"]) | set(s["sites"][0]) | set(s["regions"][0])
    keys |= set(s["spread"]) | set(s["quality"]) | set(s["involvement_rule"])
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert missing == []


def test_numpy_and_nan_in_quality_are_valid_json(factory, spec):
    a = factory([spec("biceps", "L", "cervical", 2)], duration_s=60)
    a.channel_quality["biceps L"] = {
        "noise_uv": np.float32("nan"),
        "hist": np.arange(3),
        "flags": ("mains",),
    }
    a.sites[0].excluded_s["artifact"] = np.float64(1.5)
    s = json.loads(json.dumps(summarize(a), allow_nan=False))
    assert s["quality"]["channels"]["biceps L"] == {
        "noise_uv": None,
        "hist": [0, 1, 2],
        "flags": ["mains"],
    }
    assert s["sites"][0]["excluded_s"]["artifact"] == 1.5


def test_pair_column_from_text(factory, spec):
    a = factory([spec("biceps", "L", "cervical", onsets=[1.0, 2.0, 3.0, 4.0])], duration_s=60)
    f = a.events["trial_type"] == "fasciculation"
    a.events["pair"] = a.events["pair"].astype(object)
    a.events.loc[f, "pair"] = ["True", "false", pd.NA, True]
    assert _site(summarize(a), "biceps L")["pair_pct"] == pytest.approx(100 * 2 / 3, abs=1e-3)


def test_cramp_rate_denominator_excludes_unusable_time(factory, spec):
    a = factory(
        [spec("tibialis_anterior", "R", "lumbosacral", 0, cramps=[(10.0, 5.0)])], duration_s=150
    )
    a.sites[0].excluded_s["flat"] = 60.0
    s = _site(summarize(a), "tibialis_anterior R")
    assert s["observed_s"] == pytest.approx(90.0)
    assert s["cramps_per_hour"] == pytest.approx(3600 / 90)


def test_foot_muscles_only_warns(factory, spec):
    a = factory(
        [
            spec("abductor_hallucis", "L", "lumbosacral", 10),
            spec("tibialis_anterior", "L", "lumbosacral", 0),
        ],
        duration_s=300,
    )
    s = summarize(a)
    assert s["spread"]["pattern"] == "focal" and s["spread"]["foot_muscles_only"] is True
    assert any("foot muscles" in w for w in s["warnings"])
    b = factory(
        [
            spec("abductor_hallucis", "L", "lumbosacral", 10),
            spec("tibialis_anterior", "L", "lumbosacral", 10),
        ],
        duration_s=300,
    )
    assert summarize(b)["spread"]["foot_muscles_only"] is False
