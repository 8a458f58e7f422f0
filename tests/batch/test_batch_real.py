"""emgtool batch with the real per-file analysis on a short simulated recording."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from emgtool.batch import run_batch

from .conftest import result_folders


def test_real_analysis_end_to_end(tmp_path):
    analyze = pytest.importorskip("emgtool.pipeline.analyze")
    if not hasattr(analyze, "analyze_to_dir"):
        pytest.skip("analyze_to_dir not available")
    from emgtool.io.write import write_edf
    from emgtool.simulate import simulate

    rec, _truth = simulate("bfs-focal", duration_s=10.0, seed=3)
    data = tmp_path / "data"
    data.mkdir()
    write_edf(data / "visit1.edf", rec, patient="Jane Roe-Secret")
    out = tmp_path / "out"
    res = run_batch([data], out, engine="serial")
    assert (res.done, res.failed) == (1, 0), res.failures
    (folder,) = result_folders(out)
    names = {p.name for p in folder.iterdir()}
    assert {"events.tsv", "events.json", "summary.json", "report.html", "batch.json"} <= names
    summary = json.loads((folder / "summary.json").read_text())
    df = pd.read_csv(out / "cohort.csv", keep_default_na=False, na_values=[""])
    assert len(df) == len(summary["sites"])
    for site in summary["sites"]:
        row = df[(df["site"] == site["site"]) & (df["side"] == site["side"])].iloc[0]
        for key in ("fasciculation_count", "fasciculation_rate_per_min", "rest_s"):
            want = site[key]
            if want is None:  # e.g. a site with no usable rest: empty in the table
                assert pd.isna(row[key]), key
            else:
                assert row[key] == pytest.approx(want), key
    assert (df["spread_pattern"] == summary["spread"]["pattern"]).all()
    # the patient name in the EDF header reaches no output
    for p in out.rglob("*"):
        if p.is_file() and p.suffix in (".csv", ".html", ".json", ".tsv", ".parquet"):
            assert b"Secret" not in p.read_bytes(), p
