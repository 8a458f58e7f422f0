"""Signal-level bad inputs through ``emgtool analyze FILE --out DIR``.

Each case either works with a visible warning (``emgtool: warning: …`` on
stderr) and correct output, or exits with status 2 and one line naming the
file and the problem.  docs/troubleshooting.md has one row per case.

Several cases guard detector fixes: a clipped, stuck or absurd stretch of one
channel must not collapse its noise floor into a false cramp, and a lone
disconnected (pure-mains) electrode must be found among clean channels.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emgtool.io.write import write_csv, write_edf
from emgtool.pipeline.analyze import analyze

from .conftest import (
    FS,
    LABELS,
    assert_one_line_error,
    recording,
    run_cli,
    run_subprocess,
    simulated,
)

TOL_S = 0.02  # an event matches a reference event within 20 ms


# ---------------------------------------------------------------------- helpers
def analyze_file(tmp_path, name, data, fs=FS, *, fmt="edf", record_s=1.0, extra=()):
    """Write ``data`` as EDF/CSV, run the CLI; returns (run, summary, events)."""
    path = tmp_path / f"{name}.{fmt}"
    rec = recording(data, fs)
    if fmt == "edf":
        write_edf(path, rec, record_s=record_s)
    else:
        write_csv(path, rec)
    out = tmp_path / f"out_{name}"
    r = run_cli(["analyze", path, "--out", out, *extra])
    assert "Traceback" not in r.err, r.err
    if r.rc != 0:
        return r, None, None
    summary = json.loads((out / "summary.json").read_text())
    events = pd.read_csv(out / "events.tsv", sep="\t")
    return r, summary, events


def on_channel(events: pd.DataFrame, label: str, kind: str | None = None) -> pd.DataFrame:
    ch = events["channel"].astype(str).str.split("|")
    sel = ch.apply(lambda cs: label in cs)
    if kind is not None:
        sel &= events["trial_type"] == kind
    return events[sel]


def recall(found: pd.DataFrame, ref: pd.DataFrame, tol: float = TOL_S) -> float:
    """Fraction of ``ref`` onsets with a ``found`` onset within ``tol`` seconds."""
    if len(ref) == 0:
        return 1.0
    f = np.sort(found["onset"].to_numpy(float))
    if f.size == 0:
        return 0.0
    r = ref["onset"].to_numpy(float)
    j = np.clip(np.searchsorted(f, r), 1, f.size - 1) if f.size > 1 else np.zeros(r.size, int)
    d = np.minimum(np.abs(f[j] - r), np.abs(f[np.maximum(j - 1, 0)] - r))
    return float(np.mean(d <= tol))


def site(summary: dict, label: str) -> dict:
    return next(s for s in summary["sites"] if label in s["channels"])


def warned(r, *needles) -> bool:
    return any(all(n in w for n in needles) for w in r.warnings)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, base_signal):
    """The untouched recording through the CLI: what the other cases are compared with."""
    data, truth = base_signal
    r, summary, events = analyze_file(tmp_path_factory.mktemp("ref"), "clean", data)
    assert r.rc == 0, r.err
    return summary, events


# ---------------------------------------------------------------------- clean
def test_clean_recording_finds_the_simulated_fasciculations(reference, base_signal):
    """The baseline is right, so comparisons with it mean something."""
    _, truth = base_signal
    summary, events = reference
    for label in LABELS:
        t = truth[(truth["trial_type"] == "fasciculation") & (truth["channel"] == label)]
        got = on_channel(events, label, "fasciculation")
        assert len(t) >= 5
        assert recall(got, t) >= 0.6, label
    assert not (events["trial_type"] == "cramp").any()


def _untouched_kept(events, ref_events, touched="Biceps R"):
    for label in LABELS:
        if label == touched:
            continue
        ref = on_channel(ref_events, label, "fasciculation")
        got = on_channel(events, label, "fasciculation")
        assert recall(got, ref) >= 0.9, label


# ---------------------------------------------------------------------- clipped
def stuck_at_rail(data: np.ndarray) -> np.ndarray:
    """Biceps R saturates at +3 mV (the amplifier's rail) from 4 s to 7 s."""
    d = np.array(data)
    d[1, 4000:7000] = 3000.0
    return d


def gain_clipped(data: np.ndarray) -> np.ndarray:
    """Biceps R amplified ×8 against rails at its median |x|: half the samples at the rail."""
    d = np.array(data)
    x = d[1] * 8
    rail = float(np.median(np.abs(x)))
    d[1] = np.clip(x, -rail, rail)
    return d


def test_clipped_channel_warns_and_reports_the_clipped_time(tmp_path, base_signal, reference):
    r, summary, events = analyze_file(tmp_path, "stuck", stuck_at_rail(base_signal[0]))
    assert r.rc == 0, r.err
    assert warned(r, "clipped", "Biceps R"), r.err
    q = summary["quality"]["channels"]["Biceps R"]
    assert "clipped" in q["flags"]
    assert q["clipped_s"] == pytest.approx(3.0, abs=0.05)
    assert "clipped" in " ".join(summary["warnings"])
    # Nothing is detected inside the clipped span.
    ev = on_channel(events, "Biceps R")
    inside = (ev["onset"] < 7.0) & (ev["onset"] + ev["duration"].fillna(0) > 4.0)
    assert not inside.any(), ev[inside]
    _untouched_kept(events, reference[1])


def test_clipped_span_does_not_become_a_cramp(base_signal, reference):
    an = analyze(recording(stuck_at_rail(base_signal[0])))
    ev = on_channel(an.events, "Biceps R")
    assert not ev["trial_type"].isin(["cramp", "voluntary"]).any(), ev
    ref = on_channel(reference[1], "Biceps R", "fasciculation")
    after = ref[ref["onset"] > 8.0]
    assert recall(on_channel(an.events, "Biceps R", "fasciculation"), after) >= 0.8


def test_heavily_clipped_channel_gives_no_cramp(base_signal):
    an = analyze(recording(gain_clipped(base_signal[0])))
    ev = on_channel(an.events, "Biceps R")
    assert not (ev["trial_type"] == "cramp").any(), ev


def test_single_absurd_sample_is_masked(base_signal, reference):
    d = np.array(base_signal[0])
    d[1, 5000] = 1e30
    an = analyze(recording(d))
    assert any("10 V" in w and "missing" in w for w in an.warnings), an.warnings
    ev = on_channel(an.events, "Biceps R")
    assert not ev["trial_type"].isin(["cramp", "voluntary"]).any(), ev
    ref = on_channel(reference[1], "Biceps R", "fasciculation")
    assert recall(on_channel(an.events, "Biceps R", "fasciculation"), ref) >= 0.8


# ---------------------------------------------------------------------- flat
def test_flat_channel_is_excluded_with_a_warning(tmp_path, base_signal, reference):
    d = np.array(base_signal[0])
    d[1] = 1234.5  # constant DC: electrode off, amplifier settled at an offset
    r, summary, events = analyze_file(tmp_path, "flat", d)
    assert r.rc == 0, r.err
    assert warned(r, "flat", "Biceps R"), r.err
    assert len(on_channel(events, "Biceps R")) == 0  # never fasciculations on a flat line
    s = site(summary, "Biceps R")
    assert s["status"] == "insufficient" and s["rest_s"] == 0
    assert s["fasciculation_rate_per_min"] is None
    assert "flat" in summary["quality"]["channels"]["Biceps R"]["flags"]
    _untouched_kept(events, reference[1])


@pytest.mark.parametrize("value", [0.0, 17.0])
def test_all_channels_constant(tmp_path, base_signal, value):
    d = np.full_like(base_signal[0], value)
    r, summary, events = analyze_file(tmp_path, f"const{value:g}", d, fmt="csv")
    assert r.rc == 0, r.err
    assert warned(r, "flat", *LABELS), r.err
    assert len(events) == 0
    assert {s["status"] for s in summary["sites"]} == {"insufficient"}
    assert summary["spread"]["complete"] is False


# ---------------------------------------------------------------------- mains
def mains(n: int, fs: float = FS, amp_uv: float = 200.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n) / fs
    return (amp_uv * np.sin(2 * np.pi * 50.0 * t + phase)).astype(np.float32)


def test_disconnected_electrode_pure_mains(tmp_path, base_signal, reference):
    """The simulated recording carries mains on every channel; Biceps R carries only mains."""
    d = np.array(base_signal[0])
    rng = np.random.default_rng(5)
    d[1] = mains(d.shape[1]) + rng.normal(0, 1.0, d.shape[1])
    r, summary, events = analyze_file(tmp_path, "mains1", d)
    assert r.rc == 0, r.err
    assert warned(r, "mains-dominated", "Biceps R"), r.err
    assert len(on_channel(events, "Biceps R")) == 0
    assert site(summary, "Biceps R")["status"] == "insufficient"
    assert "mains-dominated" in summary["quality"]["channels"]["Biceps R"]["flags"]
    _untouched_kept(events, reference[1])


def test_all_channels_pure_mains(tmp_path, base_signal):
    n = base_signal[0].shape[1]
    d = np.stack([mains(n, phase=k) for k in range(3)])
    r, summary, events = analyze_file(tmp_path, "mains_all", d)
    assert r.rc == 0, r.err
    assert warned(r, "mains-dominated", *LABELS), r.err
    assert len(events) == 0
    assert summary["recording"]["mains_hz"] == 50.0
    assert {s["status"] for s in summary["sites"]} == {"insufficient"}


def test_disconnected_electrode_among_clean_channels():
    data, _ = simulated(20, seed=4, nuisances="pink,white")
    data[1] = mains(data.shape[1]) + np.random.default_rng(1).normal(0, 1.0, data.shape[1])
    an = analyze(recording(data))
    assert "mains-dominated" in an.channel_quality["Biceps R"]["flags"]


# ---------------------------------------------------------------------- short
def test_one_sample_edf_warns(tmp_path, base_signal):
    r, summary, events = analyze_file(tmp_path, "one", base_signal[0][:, :1], record_s=1 / FS)
    assert r.rc == 0, r.err
    assert warned(r, "only 1 samples", "not meaningful"), r.err
    assert len(events) == 0 and summary["recording"]["n_samples"] == 1
    assert {s["status"] for s in summary["sites"]} == {"insufficient"}


def test_one_sample_csv_needs_fs(tmp_path, base_signal):
    path = tmp_path / "one.csv"
    write_csv(path, recording(base_signal[0][:, :1]))
    r = run_cli(["analyze", path, "--out", tmp_path / "o"])
    assert_one_line_error(r, str(path), "--fs")
    assert not (tmp_path / "o").exists()
    r = run_cli(["analyze", path, "--out", tmp_path / "o", "--fs", "1000"])
    assert r.rc == 0 and warned(r, "only 1 samples"), r.err


def test_half_second_recording_warns(tmp_path, base_signal):
    r, summary, events = analyze_file(tmp_path, "half", base_signal[0][:, :500], record_s=0.5)
    assert r.rc == 0, r.err
    assert warned(r, "only 500 samples"), r.err
    assert summary["recording"]["duration_s"] == 0.5
    assert not (events["trial_type"] == "cramp").any()
    assert {s["status"] for s in summary["sites"]} == {"insufficient"}


# ---------------------------------------------------------------------- low fs
def test_250_hz_openbci_like(tmp_path):
    data, truth = simulated(20, seed=1, fs=250.0)
    r, summary, events = analyze_file(tmp_path, "fs250", data, fs=250.0, fmt="csv")
    assert r.rc == 0, r.err
    assert warned(r, "250 Hz", "below 1 kHz", "band-pass stops at 112 Hz"), r.err
    assert summary["recording"]["fs"] == 250.0
    assert all("low_fs" in s["quality_flags"] for s in summary["sites"])
    # Degraded, not meaningless: most simulated potentials are still found.
    t = truth[truth["trial_type"] == "fasciculation"]
    assert recall(events[events["trial_type"] == "fasciculation"], t, tol=0.03) >= 0.5
    assert not (events["trial_type"] == "cramp").any()


# ---------------------------------------------------------------------- subprocess
def test_as_a_user_runs_it(tmp_path, base_signal):
    """The same outcome through ``python -m emgtool`` in a child process."""
    d = np.array(base_signal[0])
    d[1] = 1234.5
    flat = tmp_path / "flat.edf"
    write_edf(flat, recording(d))
    (tmp_path / "cwd").mkdir()
    (tmp_path / "tmp").mkdir()
    r = run_subprocess(
        ["analyze", flat, "--out", tmp_path / "o1"], cwd=tmp_path / "cwd", tmpdir=tmp_path / "tmp"
    )
    assert r.rc == 0, r.err
    # Nothing beside the input, in the working directory or left in temp space.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "flat.edf", "o1", "tmp"]
    assert list((tmp_path / "cwd").iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []
    assert "Traceback" not in r.err
    assert r.warnings == [
        "emgtool: warning: flat channel(s) (no signal: electrode off or amplifier "
        "saturated), excluded from detection: Biceps R"
    ]
    assert (tmp_path / "o1" / "summary.json").exists()
