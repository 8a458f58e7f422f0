"""Gaps and NaN (issue 8 item 2): masked, filter restarted, never wiping a channel,
reported in summary.json (``recording.gaps``: start_s, stop_s, duration_s)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emgtool.io import Source
from emgtool.io.write import write_csv
from emgtool.pipeline.analyze import analyze, analyze_source
from emgtool.report.summary import summarize

from .conftest import FS, LABELS, recording, run_cli, write_edf_plus_d
from .test_signals import on_channel, recall

GAP_CH, GAP_ROW = "TA R", 2  # the channel with the most simulated potentials


@pytest.fixture(scope="module")
def reference(base_signal):
    return analyze(recording(base_signal[0])).events


def overlaps(ev, a_s, b_s):
    end = ev["onset"] + ev["duration"].fillna(0)
    return ev[(ev["onset"] < b_s) & (end > a_s)]


def with_nan(data, rows, a, b):
    d = np.array(data)
    d[rows, a:b] = np.nan
    return d


def test_gap_in_one_channel_is_masked(base_signal, reference):
    an = analyze(recording(with_nan(base_signal[0], GAP_ROW, 6000, 9000)))
    ev_r = on_channel(an.events, GAP_CH)
    assert overlaps(ev_r, 6.0, 9.0).empty  # nothing inside or across the gap
    # Causal pipeline: everything on that channel before the gap is unchanged.
    before = an.events[an.events["onset"] + an.events["duration"].fillna(0) < 5.9]
    ref_before = reference[reference["onset"] + reference["duration"].fillna(0) < 5.9]
    assert sorted(on_channel(before, GAP_CH)["onset"]) == sorted(
        on_channel(ref_before, GAP_CH)["onset"]
    )
    # The other channels are not affected.
    for label in ("Biceps L", "Biceps R"):
        ref = on_channel(reference, label, "fasciculation")
        assert recall(on_channel(an.events, label, "fasciculation"), ref) >= 0.9, label
    s = summarize(an)
    site_r = next(x for x in s["sites"] if GAP_CH in x["channels"])
    assert site_r["excluded_s"]["gap"] >= 3.0
    # Not a gap of the recording: the other channels have data.
    assert s["recording"]["gaps"] == []
    json.dumps(s, allow_nan=False)


def test_gap_in_one_channel_does_not_wipe_what_follows(base_signal, reference):
    an = analyze(recording(with_nan(base_signal[0], GAP_ROW, 6000, 9000)))
    ev_r = on_channel(an.events, GAP_CH)
    assert not ev_r["trial_type"].isin(["cramp", "voluntary"]).any(), ev_r
    ref = on_channel(reference, GAP_CH, "fasciculation")
    after = ref[ref["onset"] > 9.5]
    assert len(after) >= 3
    assert recall(on_channel(an.events, GAP_CH, "fasciculation"), after) >= 0.8


def test_gap_in_all_channels_via_csv_nan_cells(tmp_path, base_signal, reference):
    """``nan`` cells in a CSV are gaps; a gap on every channel is listed in summary.json."""
    path = tmp_path / "gap.csv"
    write_csv(path, recording(with_nan(base_signal[0], slice(None), 12000, 13500)))
    r = run_cli(["analyze", path, "--out", tmp_path / "o"])
    assert r.rc == 0 and "Traceback" not in r.err, r.err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["recording"]["gaps"] == [{"start_s": 12.0, "stop_s": 13.5, "duration_s": 1.5}]
    assert s["recording"]["gap_total_s"] == 1.5
    assert s["recording"]["n_samples"] == base_signal[0].shape[1]  # never concatenated
    ev = pd.read_csv(tmp_path / "o" / "events.tsv", sep="\t")
    assert overlaps(ev, 12.0, 13.5).empty
    early = ev[ev["onset"] + ev["duration"].fillna(0) < 11.9]
    ref_early = reference[reference["onset"] + reference["duration"].fillna(0) < 11.9]
    assert sorted(early["onset"]) == sorted(ref_early["onset"].round(6))
    for label in LABELS:
        assert s["sites"][LABELS.index(label)]["excluded_s"]["gap"] >= 1.5


def _edf_plus_d(tmp_path, data, missing):
    keep = [k for k in range(data.shape[1] // int(FS)) if k not in missing]
    body = np.concatenate([data[:, k * 1000 : (k + 1) * 1000] for k in keep], axis=1)
    return write_edf_plus_d(tmp_path / "disc.edf", body, FS, [float(k) for k in keep])


@pytest.mark.parametrize("first", [12, 8])  # 8-10 s ends at an offline chunk boundary
def test_edf_plus_d_gap_is_reported(tmp_path, base_signal, first):
    path = _edf_plus_d(tmp_path, base_signal[0], missing={first, first + 1})
    r = run_cli(["analyze", path, "--out", tmp_path / "o"])
    assert r.rc == 0, r.err
    assert any("EDF+D" in w and "gap" in w for w in r.warnings), r.err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    gap = {"start_s": float(first), "stop_s": first + 2.0, "duration_s": 2.0}
    assert s["recording"]["gaps"] == [gap]
    assert s["recording"]["duration_s"] == 20.0


def test_gap_is_reported_whatever_the_chunking(base_signal):
    d = with_nan(base_signal[0], slice(None), 8000, 10000)
    for chunk_s in (7.0, 3.0, 10.0):
        an = analyze_source(Source.from_recording(recording(d)), chunk_s=chunk_s)
        assert an.gaps == [(8000, 10000)], chunk_s
