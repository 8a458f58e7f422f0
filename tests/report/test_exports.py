"""Exports: EDF+ round trip through MNE, BIDS-EMG sidecars, MNE annotations, DataFrame."""

from __future__ import annotations

import json
import warnings

import mne
import numpy as np
import pandas as pd
import pytest

from emgtool.errors import EmgtoolError
from emgtool.events import read_events_tsv
from emgtool.io.write import edf_labels
from emgtool.recording import Recording
from emgtool.report.exports import (
    edf_annotations,
    export_edf,
    to_dataframe,
    to_mne_annotations,
    write_bids,
)


@pytest.fixture
def small(factory, spec):
    art = dict(
        onset=30.5,
        duration=0.2,
        trial_type="artifact",
        sample=15250,
        site="unknown",
        side="n/a",
        region="unknown",
        channel="biceps L|tibialis_anterior R",
        reason="common-mode",
    )
    a = factory(
        [
            spec("biceps", "L", "cervical", 20, n_channels=2),
            spec("tibialis_anterior", "R", "lumbosacral", 10, cramps=[(20.0, 6.5)]),
        ],
        duration_s=60.0,
        fs=500.0,
        seed=4,
        extra_events=[art],
    )
    rng = np.random.default_rng(0)
    rec = Recording(
        rng.normal(0, 20, (len(a.channels), a.n_samples)).astype(np.float32), a.fs, a.channels
    )
    return a, rec


def test_edf_roundtrip_through_mne(small, tmp_path):
    a, rec = small
    path = export_edf(a, rec, tmp_path / "out.edf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
    ann = raw.annotations
    expect = edf_annotations(a)
    assert len(ann) == len(a.events) == len(expect) > 20
    order = np.argsort([o for o, _d, _t in expect], kind="stable")
    np.testing.assert_allclose(ann.onset, np.array([expect[i][0] for i in order]), atol=1e-4)
    np.testing.assert_allclose(ann.duration, np.array([expect[i][1] for i in order]), atol=1e-4)
    assert list(ann.description) == [expect[i][2] for i in order]
    assert "cramp tibialis_anterior R" in set(ann.description)
    assert raw.n_times == a.n_samples and raw.info["sfreq"] == a.fs
    # EDF labels hold 16 characters; cut labels keep their side ("tibialis_anter R").
    assert raw.ch_names == edf_labels([c.label for c in a.channels])
    assert all(n.endswith(("L", "R", "01", "02")) or len(n) < 16 for n in raw.ch_names)


def test_edf_refuses_other_recording(small, tmp_path):
    a, rec = small
    with pytest.raises(EmgtoolError, match="not the one analysed"):
        export_edf(a, rec.slice(0, 1000), tmp_path / "x.edf")


def test_mne_annotations_and_dataframe(small):
    a, _rec = small
    ann = to_mne_annotations(a)
    assert len(ann) == len(a.events)
    i = int(np.flatnonzero(ann.description == "artifact")[0])
    assert ann.ch_names[i] == ("biceps L", "tibialis_anterior R")
    assert ann.onset[i] == pytest.approx(30.5)
    fasc = to_mne_annotations(a, kinds=["fasciculation"])
    assert set(fasc.description) == {"fasciculation"}
    df = to_dataframe(a)
    assert isinstance(df, pd.DataFrame) and len(df) == len(a.events)
    assert list(df.columns[:4]) == ["onset", "duration", "trial_type", "sample"]
    assert df["onset"].is_monotonic_increasing
    assert set(df["site_label"]) == {"biceps L", "tibialis_anterior R", "unknown"}


def test_bids_derivatives(small, tmp_path):
    a, rec = small
    paths = write_bids(a, tmp_path / "bids", subject="p01", session="v1", recording=rec)
    folder = tmp_path / "bids" / "sub-p01" / "ses-v1" / "emg"
    assert paths["events_tsv"] == folder / "sub-p01_ses-v1_task-rest_events.tsv"
    for p in paths.values():
        assert p.exists(), p
    emg = json.loads(paths["emg_json"].read_text(encoding="utf-8"))
    for k in (
        "EMGPlacementScheme",
        "EMGReference",
        "SamplingFrequency",
        "PowerLineFrequency",
        "SoftwareFilters",
        "TaskName",
    ):
        assert k in emg and emg[k] not in (None, "")
    assert emg["SamplingFrequency"] == 500.0 and emg["PowerLineFrequency"] == 50.0
    assert emg["EMGPlacementScheme"] in ("Measured", "ChannelSpecific", "Other")
    ch = pd.read_csv(paths["channels_tsv"], sep="\t", keep_default_na=False)
    assert list(ch.columns[:5]) == ["name", "type", "units", "target_muscle", "group"]
    assert (ch["type"] == "EMG").all() and len(ch) == len(a.channels)
    assert (
        ch.loc[ch["name"] == "tibialis_anterior R", "target_muscle"].item()
        == "Tibialis anterior (right)"
    )
    assert ch.loc[ch["name"] == "biceps L 02", "group"].item() == "biceps L"
    ev = read_events_tsv(paths["events_tsv"])
    assert len(ev) == len(a.events)
    assert (
        json.loads(paths["events_json"].read_text(encoding="utf-8"))["channel"]["Delimiter"] == "|"
    )
    desc = json.loads(paths["dataset_description"].read_text(encoding="utf-8"))
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "emgtool"
    # default subject label: pseudonymous recording id, alphanumeric only
    p2 = write_bids(a, tmp_path / "b2")
    assert p2["emg_json"].name.startswith("sub-0123456789ab_task-rest")
