"""Scoring: one-to-one event matching and metrics on cases with known answers."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from emgtool.cli import main
from emgtool.errors import EmgtoolError, EmgtoolWarning
from emgtool.events import empty_events, write_events_tsv
from emgtool.scoring import evaluate, format_evaluation, match_events


def ev(onsets, kind="fasciculation", dur=0.01, site="biceps", side="L"):
    onsets = np.atleast_1d(np.asarray(onsets, dtype=float))
    return pd.DataFrame(
        {
            "onset": onsets,
            "duration": np.broadcast_to(np.asarray(dur, dtype=float), onsets.shape),
            "trial_type": kind,
            "site": site,
            "side": side,
            "sample": np.round(onsets * 2000).astype(np.int64),
        }
    )


def fasc(r):
    return r["fasciculation"]["overall"]


def cramp(r):
    return r["cramp"]["overall"]


def score(det, truth, **kw):
    kw.setdefault("duration_s", 60.0)
    return evaluate(det, truth, **kw)


# ----------------------------------------------------------------- fasciculations
def test_perfect_detection_scores_one():
    t = ev(np.arange(1, 31) * 1.7)
    r = score(t.copy(), t)
    o = fasc(r)
    assert (o["tp"], o["fp"], o["fn"]) == (30, 0, 0)
    assert o["sensitivity"] == o["precision"] == o["f1"] == 1.0
    assert o["true_rate_per_min"] == pytest.approx(30.0)
    assert o["rate_error_per_min"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("det_onset", "matched"),
    [
        (1.000, True),  # exact
        (1.005, True),  # inside the span
        (1.024, True),  # after the span end (1.010) by 14 ms
        (0.986, True),  # before the onset by 14 ms
        (1.026, False),  # 16 ms after the end
        (0.984, False),  # 16 ms before the onset
    ],
)
def test_tolerance_is_span_plus_15_ms(det_onset, matched):
    r = score(ev([det_onset]), ev([1.0], dur=0.010))
    assert fasc(r)["tp"] == int(matched)
    assert fasc(r)["fp"] == int(not matched)
    assert fasc(r)["fn"] == int(not matched)


def test_tolerance_option_changes_window():
    assert fasc(score(ev([1.03]), ev([1.0]), fasc_tol_ms=15))["tp"] == 0
    assert fasc(score(ev([1.03]), ev([1.0]), fasc_tol_ms=25))["tp"] == 1


def test_duplicates_count_once():
    r = score(ev([1.000, 1.002, 1.004]), ev([1.0]))
    o = fasc(r)
    assert (o["tp"], o["fp"], o["fn"]) == (1, 2, 0)
    assert o["precision"] == pytest.approx(1 / 3)


def test_one_detection_cannot_match_two_truths():
    r = score(ev([1.010]), ev([1.000, 1.012]))
    assert (fasc(r)["tp"], fasc(r)["fn"]) == (1, 1)


def test_assignment_is_optimal_not_greedy():
    # Det 1.020 is closest to truth B (1.030) but must go to A so that det 1.050
    # (only within B's window) can match B: the best matching has 2 pairs.
    truth = ev([1.000, 1.030])
    det = ev([1.020, 1.050])
    m = match_events(det, truth)
    assert sorted(m.pairs["fasciculation"].tolist()) == [[0, 0], [1, 1]]
    assert fasc(score(det, truth))["tp"] == 2


def test_closest_detection_wins_among_equals():
    m = match_events(ev([1.012, 1.001]), ev([1.0]))
    assert m.pairs["fasciculation"].tolist() == [[1, 0]]
    assert m.false_positives("fasciculation").tolist() == [0]


def test_sites_and_sides_are_separate():
    truth = pd.concat(
        [ev([1.0], site="biceps", side="L"), ev([2.0], site="tibialis_anterior", side="R")]
    )
    det = pd.concat(
        [
            ev([1.0], site="biceps", side="R"),  # wrong side
            ev([2.0], site="biceps", side="L"),  # wrong site
            ev([2.0], site="tibialis_anterior", side="R"),  # right
        ]
    )
    r = score(det, truth.reset_index(drop=True))
    assert (fasc(r)["tp"], fasc(r)["fp"], fasc(r)["fn"]) == (1, 2, 1)
    sites = r["fasciculation"]["sites"]
    assert set(sites) == {"biceps L", "biceps R", "tibialis_anterior R"}
    assert sites["biceps L"]["fn"] == 1 and sites["biceps L"]["fp"] == 1
    assert sites["biceps R"]["fp"] == 1 and sites["biceps R"]["n_true"] == 0
    assert sites["tibialis_anterior R"]["tp"] == 1
    assert np.isnan(sites["biceps R"]["sensitivity"])


def test_side_na_site_key():
    r = score(ev([1.0], site="tongue", side="n/a"), ev([1.0], site="tongue", side="n/a"))
    assert list(r["fasciculation"]["sites"]) == ["tongue"]
    assert fasc(r)["tp"] == 1


def test_other_kinds_are_ignored():
    det = pd.concat([ev([1.0]), ev([5.0], kind="artifact"), ev([9.0], kind="voluntary", dur=2.0)])
    truth = pd.concat([ev([1.0]), ev([5.0], kind="artifact")])
    r = score(det.reset_index(drop=True), truth.reset_index(drop=True))
    assert (fasc(r)["tp"], fasc(r)["fp"], fasc(r)["fn"]) == (1, 0, 0)
    assert cramp(r)["n_detected"] == cramp(r)["n_true"] == 0


def test_rates_and_rate_error():
    truth = ev(np.arange(10) + 0.5)  # 10 in 120 s = 5/min
    det = ev(np.r_[np.arange(10) + 0.5, [50.0, 60.0]])  # 12 detected = 6/min
    o = fasc(score(det, truth, duration_s=120.0))
    assert o["true_rate_per_min"] == pytest.approx(5.0)
    assert o["detected_rate_per_min"] == pytest.approx(6.0)
    assert o["rate_error_per_min"] == pytest.approx(1.0)
    assert o["rate_error_rel"] == pytest.approx(0.2)


def test_duration_inferred_with_warning():
    with pytest.warns(EmgtoolWarning, match="duration"):
        r = evaluate(ev([1.0, 29.99]), ev([1.0]))
    assert r["duration_inferred"] is True
    assert r["duration_s"] == pytest.approx(30.0)


# ----------------------------------------------------------------- cramps
@pytest.mark.parametrize(
    ("d0", "d1", "matched"),
    [
        (10.0, 20.0, True),  # IoU 1
        (10.0, 15.0, True),  # IoU exactly 0.5
        (10.0, 14.9, False),  # IoU 0.49
        (15.0, 25.0, False),  # IoU 1/3
        (7.5, 20.0, True),  # IoU 0.8
        (5.0, 25.0, True),  # IoU exactly 0.5, detection contains truth
        (4.9, 25.0, False),
    ],
)
def test_cramp_iou_boundary(d0, d1, matched):
    r = score(ev([d0], kind="cramp", dur=d1 - d0), ev([10.0], kind="cramp", dur=10.0))
    assert cramp(r)["tp"] == int(matched)


def test_cramp_onset_offset_errors():
    truth = ev([10.0, 100.0], kind="cramp", dur=20.0)
    det = ev([10.4, 99.8], kind="cramp", dur=[19.0, 20.5])  # ends 29.4 / 120.3
    o = cramp(score(det, truth, duration_s=600.0))
    assert o["tp"] == 2
    assert o["onset_error_max_s"] == pytest.approx(0.4)
    assert o["onset_error_median_s"] == pytest.approx(0.3)
    assert o["offset_error_max_s"] == pytest.approx(0.6)
    assert o["offset_error_median_s"] == pytest.approx(0.45)
    assert o["onset_bias_s"] == pytest.approx(0.1)
    assert o["true_rate_per_min"] == pytest.approx(0.2)


def test_split_cramp_counts_once():
    # One true cramp detected in two pieces: the 6 s piece (IoU 0.6) matches, the
    # 3.5 s piece (IoU 0.35) is a false positive; the cramp is counted once.
    r = score(ev([10.0, 16.5], kind="cramp", dur=[6.0, 3.5]), ev([10.0], kind="cramp", dur=10.0))
    assert (cramp(r)["tp"], cramp(r)["fp"], cramp(r)["fn"]) == (1, 1, 0)


def test_long_cramp_elsewhere_does_not_let_sites_mix():
    # A 200-s cramp on a third site widens the candidate search; a detection on
    # site "a" that overlaps a true cramp on site "b" (IoU 0.6) must still not match.
    det = pd.concat(
        [
            ev([0.0], kind="cramp", dur=200.0, site="c"),
            ev([112.0], kind="cramp", dur=18.0, site="a"),
        ]
    ).reset_index(drop=True)
    truth = ev([100.0], kind="cramp", dur=30.0, site="b")
    r = score(det, truth)
    assert cramp(r)["tp"] == 0
    assert cramp(r)["fn"] == 1


def test_cramps_on_other_site_do_not_match():
    r = score(
        ev([10.0], kind="cramp", dur=5.0, site="gastrocnemius"),
        ev([10.0], kind="cramp", dur=5.0, site="soleus"),
    )
    assert (cramp(r)["tp"], cramp(r)["fp"], cramp(r)["fn"]) == (0, 1, 1)
    assert np.isnan(cramp(r)["onset_error_median_s"])


# ----------------------------------------------------------------- checks
def test_artifacts_detected_as_fasciculations_are_counted():
    truth = pd.concat(
        [
            ev([1.0]),
            ev([5.0, 7.0, 8.0], kind="artifact", site="unknown", side="n/a"),  # motion
            ev([20.0], kind="artifact", dur=10.0, site="soleus", side="R"),  # flat channel
        ]
    ).reset_index(drop=True)
    det = pd.concat(
        [
            ev([1.0, 5.005, 7.0, 9.0, 22.0], site="biceps"),  # 5.005 and 7.0 on motion artefacts
            ev([5.0, 25.0], site="soleus", side="R"),  # motion again; in its own flat stretch
        ]
    ).reset_index(drop=True)
    r = score(det, truth)
    c = r["checks"]
    assert c["true_artifacts"] == 4
    assert c["false_fasciculations_on_artifacts"] == 4  # not 22.0: another site's flat stretch
    assert c["artifacts_detected_as_fasciculation"] == 3  # 5.0 (twice), 7.0, the flat one
    assert fasc(r)["fp"] == 6


def test_fasciculations_inside_sustained_activity_are_counted():
    truth = pd.concat(
        [
            ev([10.0], kind="cramp", dur=5.0),
            ev([30.0], kind="voluntary", dur=2.0),
            ev([40.0], kind="cramp", dur=5.0, site="soleus"),
        ]
    )
    # biceps L: inside the cramp, inside the voluntary span, other site's cramp, nothing
    det = ev([12.0, 31.0, 41.0, 50.0])
    r = score(det, truth.reset_index(drop=True))
    assert r["checks"]["fasciculations_in_sustained"] == 2


def test_false_fasciculations_per_channel_hour():
    r = evaluate(ev([10.0, 20.0, 30.0]), empty_events(), duration_s=1800.0, n_channels=4)
    assert r["checks"]["false_fasc_per_channel_hour"] == pytest.approx(3 / (4 * 0.5))
    assert np.isnan(fasc(r)["sensitivity"])
    assert fasc(r)["precision"] == 0.0


# ----------------------------------------------------------------- empty input
@pytest.mark.parametrize("which", ["both", "detected", "truth"])
def test_empty_inputs(which):
    full = pd.concat([ev([1.0, 2.0]), ev([10.0], kind="cramp", dur=5.0)]).reset_index(drop=True)
    det = empty_events() if which in ("both", "detected") else full
    truth = empty_events() if which in ("both", "truth") else full
    r = score(det, truth)
    o = fasc(r)
    assert o["tp"] == 0
    assert o["fn"] == (2 if which == "detected" else 0)
    assert o["fp"] == (2 if which == "truth" else 0)
    assert cramp(r)["fn"] == (1 if which == "detected" else 0)
    text = format_evaluation(r)
    assert "fasciculation" in text and "cramp" in text


def test_table_without_trial_rows_or_site_columns():
    det = pd.DataFrame({"onset": [1.0], "duration": [0.01], "trial_type": ["fasciculation"]})
    truth = pd.DataFrame({"onset": [1.001], "duration": [0.01], "trial_type": ["fasciculation"]})
    r = score(det, truth)
    assert list(r["fasciculation"]["sites"]) == ["unknown"]
    assert fasc(r)["tp"] == 1


def test_bad_values_raise_user_error():
    bad = ev([1.0])
    bad["onset"] = ["soon"]
    with pytest.raises(EmgtoolError, match="onset"):
        score(bad, ev([1.0]))
    with pytest.raises(EmgtoolError, match="cramp_iou"):
        match_events(ev([1.0]), ev([1.0]), cramp_iou=0.0)


# ----------------------------------------------------------------- optimality and speed
def _max_matching_size(det_on, truth_on, truth_dur, tol_s):
    """Brute force: maximum bipartite matching over the dense feasibility graph."""
    lo = truth_on[None, :] - tol_s
    hi = truth_on[None, :] + truth_dur[None, :] + tol_s
    ok = (det_on[:, None] >= lo) & (det_on[:, None] <= hi)
    match = maximum_bipartite_matching(csr_matrix(ok.astype(np.int8)), perm_type="column")
    return int((match >= 0).sum())


@pytest.mark.parametrize("seed", range(6))
def test_matching_size_is_maximum_on_dense_random_events(seed):
    rng = np.random.default_rng(seed)
    truth_on = np.sort(rng.uniform(0, 2.0, 60))  # ~30/s: windows overlap a lot
    truth_dur = rng.uniform(0.005, 0.02, 60)
    det_on = np.sort(np.r_[truth_on + rng.normal(0.0, 0.012, 60), rng.uniform(0, 2.0, 20)])
    truth = ev(truth_on, dur=truth_dur)
    det = ev(det_on)
    m = match_events(det, truth)
    pairs = m.pairs["fasciculation"]
    # one-to-one and every pair allowed
    assert len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))
    d, t = det_on[pairs[:, 0]], pairs[:, 1]
    assert np.all((d >= truth_on[t] - 0.015) & (d <= truth_on[t] + truth_dur[t] + 0.015))
    assert len(pairs) == _max_matching_size(det_on, truth_on, truth_dur, 0.015)


def test_many_events_are_fast():
    rng = np.random.default_rng(1)
    n = 40_000
    sites = np.array(["biceps", "triceps", "deltoid", "tibialis_anterior"])
    truth_on = np.sort(rng.uniform(0, 3600.0, n))
    truth = ev(truth_on, dur=0.012, site=sites[rng.integers(0, 4, n)])
    keep = rng.random(n) < 0.9
    det = (
        pd.concat(
            [
                truth[keep].assign(onset=truth_on[keep] + rng.uniform(-0.01, 0.01, keep.sum())),
                ev(rng.uniform(0, 3600.0, 2000), site="biceps"),
            ]
        )
        .sample(frac=1.0, random_state=0)
        .reset_index(drop=True)
    )
    t0 = time.perf_counter()
    r = score(det, truth, duration_s=3600.0)
    elapsed = time.perf_counter() - t0
    o = fasc(r)
    # Every kept detection is within tolerance of its own truth, so all of them match
    # (random extras may take a free truth too, never reduce the count).
    assert o["tp"] >= keep.sum()
    assert o["tp"] + o["fn"] == n and o["tp"] + o["fp"] == len(det)
    assert elapsed < 5.0, f"scoring {n} events took {elapsed:.1f} s"


# ----------------------------------------------------------------- CLI
def test_cli_prints_tables_and_writes_json(tmp_path, capsys):
    truth = pd.concat(
        [ev([1.0, 2.0, 3.0]), ev([1.5], site="triceps"), ev([20.0], kind="cramp", dur=8.0)]
    ).reset_index(drop=True)
    det = pd.concat([ev([1.004, 2.0, 9.0]), ev([20.5], kind="cramp", dur=7.0)]).reset_index(
        drop=True
    )
    write_events_tsv(det, tmp_path / "events.tsv")
    write_events_tsv(truth, tmp_path / "rec.truth.tsv")
    rc = main(
        [
            "evaluate",
            str(tmp_path / "events.tsv"),
            str(tmp_path / "rec.truth.tsv"),
            "--duration",
            "60",
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "biceps L" in out and "triceps" in out and "ALL" in out
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["fasciculation"]["overall"]["tp"] == 2
    assert doc["fasciculation"]["overall"]["fn"] == 2
    assert doc["fasciculation"]["sites"]["triceps L"]["sensitivity"] == 0.0
    assert doc["fasciculation"]["sites"]["triceps L"]["precision"] is None  # NaN → null
    assert doc["cramp"]["overall"]["tp"] == 1
    assert doc["duration_s"] == 60.0


@pytest.mark.parametrize("problem", ["missing", "garbage", "no_onset_column", "bad_onset"])
def test_cli_bad_file_is_one_line_exit_2(tmp_path, capsys, problem):
    good = tmp_path / "good.tsv"
    write_events_tsv(ev([1.0]), good)
    bad = tmp_path / "bad.tsv"
    if problem == "garbage":
        bad.write_bytes(b"\xff\xfe\x00binary\x00\x01")
    elif problem == "no_onset_column":
        bad.write_text("time\tkind\n1.0\tfasciculation\n")
    elif problem == "bad_onset":
        bad.write_text("onset\tduration\ttrial_type\n1.0\t0.01\tfasciculation\nabc\t0.01\tcramp\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["evaluate", str(bad), str(good), "--duration", "10"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("emgtool: error:") and "bad.tsv" in err
    assert len(err.splitlines()) == 1


def test_cli_takes_duration_from_summary_json(tmp_path, capsys):
    write_events_tsv(ev([1.0, 2.0]), tmp_path / "events.tsv")
    write_events_tsv(ev([1.0]), tmp_path / "truth.tsv")
    (tmp_path / "summary.json").write_text(json.dumps({"recording": {"duration_s": 120.0}}))
    rc = main(
        [
            "evaluate",
            str(tmp_path / "events.tsv"),
            str(tmp_path / "truth.tsv"),
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "warning" not in captured.err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["duration_s"] == 120.0 and doc["duration_inferred"] is False
    assert doc["fasciculation"]["overall"]["detected_rate_per_min"] == pytest.approx(1.0)


def test_events_tsv_written_without_sample_column(tmp_path):
    """A table from another tool may lack `sample`: it is written as n/a, sorted by onset."""
    from emgtool.events import read_events_tsv, write_events_tsv

    df = pd.DataFrame(
        {"onset": [2.0, 1.0], "duration": [0.01, 0.02], "trial_type": ["fasciculation", "cramp"]}
    )
    write_events_tsv(df, tmp_path / "e.tsv")
    back = read_events_tsv(tmp_path / "e.tsv")
    assert list(back["onset"]) == [1.0, 2.0] and back["sample"].isna().all()
