"""emgtool batch: inputs, resume rules, cohort outputs (fast; mostly the serial engine)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pandas as pd
import pytest

from emgtool.batch import discover, run_batch
from emgtool.batch.catalog import Catalog
from emgtool.batch.cohort import rows_from_summary
from emgtool.batch.inputs import bids_montage, entities, folder_name
from emgtool.cli import main
from emgtool.errors import EmgtoolError

from .conftest import FAKE, call_threads, calls, catalog_rows, result_folders, write_recording


def _bids(root, subject, session, labels, muscles, seed):
    folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "") / "emg"
    stem = f"sub-{subject}" + (f"_ses-{session}" if session else "") + "_task-rest"
    rec = write_recording(folder / f"{stem}_emg.edf", seed, labels=labels)
    rows = ["name\ttype\tunits\ttarget_muscle"]
    rows += [f"{lab}\tEMG\tuV\t{m}" for lab, m in zip(labels, muscles, strict=True)]
    (folder / f"{stem}_channels.tsv").write_text("\n".join(rows) + "\n")
    return rec


def test_bids_discovery_takes_sites_from_channels_tsv(tmp_path):
    root = tmp_path / "bids"
    (root).mkdir()
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.11.0"}')
    labels = ["EMG1", "EMG2", "EMG3"]
    _bids(root, "01", "1", labels, ["tibialis anterior", "Biceps brachii R", "n/a"], 1)
    _bids(root, "02", None, labels, ["soleus L", "soleus R", "deltoid L"], 2)
    # not BIDS EMG: ignored
    write_recording(root / "sub-01" / "ses-1" / "eeg" / "sub-01_ses-1_task-rest_eeg.edf", 3)
    items = discover([root])
    assert [(it.subject, it.session) for it in items] == [("01", "1"), ("02", "")]
    m = items[0].input_kwargs["montage"]["channels"]
    # a side-less target_muscle is left without side; n/a rows fall back to the label
    assert m == {"EMG1": "tibialis anterior", "EMG2": "Biceps brachii R"}

    out = tmp_path / "out"
    res = run_batch([root], out, engine="serial", analyze=FAKE)
    assert (res.done, res.failed) == (2, 0)
    df = pd.read_csv(out / "cohort.csv", dtype=str, keep_default_na=False)
    got = set(zip(df["subject"], df["site"], df["side"], strict=True))
    assert {("01", "tibialis_anterior", "n/a"), ("01", "biceps", "R")} <= got
    assert {("02", "soleus", "L"), ("02", "soleus", "R"), ("02", "deltoid", "L")} <= got
    assert ("01", "unknown", "n/a") in got  # EMG3: no muscle anywhere
    # folder names: readable (BIDS stem) and unique (hash)
    names = [p.name for p in result_folders(out)]
    assert len(names) == 2 and all(n.startswith("sub-0") and "_task-rest_emg_" in n for n in names)


def test_bids_side_from_channel_name(tmp_path):
    tsv = tmp_path / "x_channels.tsv"
    tsv.write_text("name\ttype\tunits\ttarget_muscle\nTA_L\tEMG\tuV\ttibialis anterior\n")
    assert bids_montage(tsv)["channels"] == {"TA_L": "tibialis anterior L"}


def test_entities_and_folder_names(tmp_path):
    assert entities("sub-3_ses-b_run-1_emg.bdf") == {"sub": "3", "ses": "b", "run": "1"}
    items = discover([write_recording(tmp_path / "patient 7" / "visit.edf", 1)])
    assert items[0].subject == "visit"
    a = folder_name(items[0], "a" * 64)
    b = folder_name(items[0], "b" * 64)
    assert a != b and " " not in a and a.startswith("visit_")


def test_inputs_errors(tmp_path):
    with pytest.raises(EmgtoolError, match="no such file"):
        discover([tmp_path / "missing.edf"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmgtoolError, match="no recordings found"):
        discover([tmp_path / "empty"])
    with pytest.raises(EmgtoolError, match="no file matches"):
        discover([str(tmp_path / "*.bdf")])


def test_glob_and_dedup(recordings, tmp_path):
    files = recordings(3)
    items = discover([str(tmp_path / "data" / "*.edf"), files[0], tmp_path / "data"])
    assert [it.path for it in items] == sorted(f.resolve() for f in files)


def test_resume_rename_copy_and_config_change(recordings, tmp_path, monkeypatch):
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("EMGTOOL_TEST_LOG", str(log))
    files = recordings(3)
    data, out = tmp_path / "data", tmp_path / "out"

    res = run_batch([data], out, engine="serial", analyze=FAKE)
    assert (res.done, res.skipped, res.failed) == (3, 0, 0)
    assert sorted(calls(log)) == sorted(f.name for f in files)

    # unchanged: nothing recomputed
    res = run_batch([data], out, engine="serial", analyze=FAKE)
    assert (res.done, res.skipped) == (0, 3) and len(calls(log)) == 3

    # renamed and copied files are recognised by content
    files[0].rename(data / "renamed.edf")
    shutil.copy(files[1], data / "copy.edf")
    res = run_batch([data], out, engine="serial", analyze=FAKE)
    assert (res.done, res.skipped, res.failed) == (0, 4, 0) and len(calls(log)) == 3

    # an edited file is new content
    write_recording(files[2], seed=99)
    res = run_batch([data], out, engine="serial", analyze=FAKE)
    assert res.done == 1 and calls(log)[-1] == files[2].name

    # a changed configuration reprocesses everything, once
    cfg = tmp_path / "det.toml"
    cfg.write_text("fasc_threshold_sd = 7.0\n")
    rc = main(
        [
            "batch",
            str(data),
            "--out",
            str(out),
            "--config",
            str(cfg),
            "--engine",
            "serial",
            "--analyze",
            FAKE,
            "--no-progress",
        ]
    )
    assert rc == 0 and len(calls(log)) == 4 + 3
    rows = catalog_rows(out)
    assert len({r["params_hash"] for r in rows}) == 2
    assert len(rows) == len({(r["file_sha256"], r["params_hash"]) for r in rows})
    df = pd.read_csv(out / "cohort.csv")
    assert df["file"].nunique() == 3  # one row set per content, copies not doubled
    # folders hold the new configuration's results (marker says so)
    new_ph = rows[-1]["params_hash"]
    live = [json.loads((p / "batch.json").read_text())["params_hash"] for p in result_folders(out)]
    assert live.count(new_ph) == 3


def test_missing_result_folder_is_redone(recordings, tmp_path, monkeypatch):
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("EMGTOOL_TEST_LOG", str(log))
    recordings(2)
    out = tmp_path / "out"
    run_batch([tmp_path / "data"], out, engine="serial", analyze=FAKE)
    shutil.rmtree(result_folders(out)[0])
    res = run_batch([tmp_path / "data"], out, engine="serial", analyze=FAKE)
    assert (res.done, res.skipped) == (1, 1) and len(calls(log)) == 3
    assert len(result_folders(out)) == 2


def test_errors_are_kept_until_retry_errors(recordings, tmp_path, monkeypatch, capsys):
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("EMGTOOL_TEST_LOG", str(log))
    recordings(2)
    bad = tmp_path / "data" / "bad.edf"
    bad.write_bytes(b"not an edf at all")
    out = tmp_path / "out"
    args = [
        "batch",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--engine",
        "serial",
        "--analyze",
        FAKE,
        "--no-progress",
    ]
    assert main(args) == 1
    assert "done 2, skipped 0, failed 1" in capsys.readouterr().out
    assert calls(log).count("bad.edf") == 2  # retried once on its own
    assert main(args) == 1 and calls(log).count("bad.edf") == 2  # not retried by default
    assert main([*args, "--retry-errors"]) == 1 and calls(log).count("bad.edf") == 4
    fails = pd.read_csv(out / "failures.tsv", sep="\t")
    assert list(fails["path"]) == [str(bad.resolve())]
    assert "256-byte" in fails["reason"][0] or "header" in fails["reason"][0]


def test_catalog_is_durable_wal(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    assert cat.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cat.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    cat.commit_result("a" * 64, "p", path="x", status="ok", result={"rows": []})
    cat.commit_result("a" * 64, "p", path="y", status="ok")  # same key: replaced, not duplicated
    db = sqlite3.connect(tmp_path / "c.sqlite")  # visible to another connection at once
    assert db.execute("SELECT path FROM results").fetchall() == [("y",)]
    with pytest.raises(ValueError):
        cat.commit_result("b" * 64, "p", path="z", status="weird")


def test_rows_from_summary_flattens_whatever_keys_exist():
    rows, rec = rows_from_summary(
        {
            "schema_version": 1,
            "recording": {"duration_s": 90.0, "fs": 2000.0, "file": "secret-name.edf"},
            "sites": [
                {
                    "site": "biceps",
                    "side": "L",
                    "region": "cervical",
                    "amplitude_uv": {"median": 120.0, "iqr": [80.0, 200.0]},
                    "fasciculation_rate_ci95_per_min": [0.5, 3.0],
                    "quality": ["mains", "flat:EMG2"],
                    "ifi_s": {"values": [{"a": 1}]},
                }
            ],
            "spread": {"pattern": "focal", "bilateral": False},
        }
    )
    r = rows[0]
    assert r["amplitude_uv_median"] == 120.0 and r["amplitude_uv_iqr"] == "80.0;200.0"
    assert (r["fasciculation_rate_ci95_per_min_lo"], r["fasciculation_rate_ci95_per_min_hi"]) == (
        0.5,
        3.0,
    )
    assert r["quality"] == "mains;flat:EMG2"
    assert (
        "file" not in rec and rec["spread_pattern"] == "focal" and rec["spread_bilateral"] is False
    )


def test_cohort_outputs(recordings, tmp_path):
    recordings(3)
    out = tmp_path / "out"
    run_batch([tmp_path / "data"], out, engine="serial", analyze=FAKE)
    csv = pd.read_csv(out / "cohort.csv")
    pq = pd.read_parquet(out / "cohort.parquet")
    assert len(csv) == len(pq) == 3 * 4  # 3 recordings × 4 sites
    assert list(csv.columns[:12]) == [
        "subject",
        "session",
        "file",
        "file_sha256",
        "out_dir",
        "site",
        "side",
        "region",
        "fasciculation_count",
        "fasciculation_rate_per_min",
        "cramp_count",
        "rest_s",
    ]
    # cohort numbers equal those in each per-file summary.json
    for _, r in csv.iterrows():
        summ = json.loads((out / r["out_dir"] / "summary.json").read_text())
        site = next(s for s in summ["sites"] if (s["site"], s["side"]) == (r["site"], r["side"]))
        assert site["fasciculation_count"] == r["fasciculation_count"]
    html = (out / "cohort.html").read_text()
    # rate per site, per region, spread patterns, pattern per subject: inline SVG
    assert html.count("<svg ") == html.count("</svg>") == 4
    assert html.count("<circle ") == 2 * 3 * 4  # one dot per recording x site, twice
    assert "http://" not in html and "https://" not in html  # self-contained
    assert (out / "failures.tsv").read_text().startswith("path\tfile_sha256\tstatus")


def test_import_emgtool_does_not_import_dask():
    import subprocess
    import sys

    code = "import sys, emgtool, emgtool.cli; print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_driver_per_results_folder(recordings, tmp_path):
    from emgtool.batch.engine import _lock

    recordings(1)
    out = tmp_path / "out"
    out.mkdir()
    held = _lock(out)
    try:
        with pytest.raises(EmgtoolError, match="another emgtool batch"):
            run_batch([tmp_path / "data"], out, engine="serial", analyze=FAKE)
    finally:
        held.close()
    assert run_batch([tmp_path / "data"], out, engine="serial", analyze=FAKE).done == 1


def test_progress_bar_and_final_line(recordings, tmp_path, capsys):
    recordings(2)
    rc = main(
        [
            "batch",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "out"),
            "--engine",
            "serial",
            "--analyze",
            FAKE,
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0
    assert "emgtool batch: 100%" in cap.err and "2/2" in cap.err  # tqdm bar with elapsed<ETA
    assert cap.out.splitlines()[0] == "done 2, skipped 0, failed 0"


def test_largest_files_run_first_and_phases_are_timed(tmp_path, monkeypatch):
    # Longest first balances the end of a batch: the last files to finish are short.
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("EMGTOOL_TEST_LOG", str(log))
    monkeypatch.delenv("EMGTOOL_NUM_THREADS", raising=False)
    data = tmp_path / "data"
    for name, seconds in (("a", 2.0), ("b", 6.0), ("c", 4.0), ("d", 8.0)):
        write_recording(data / f"{name}.edf", seed=len(name) + int(seconds), seconds=seconds)
    res = run_batch([data], tmp_path / "out", engine="serial", analyze=FAKE)
    assert res.done == 4
    assert calls(log) == ["d.edf", "b.edf", "c.edf", "a.edf"]
    assert sum(res.timings.values()) == pytest.approx(res.seconds, abs=0.05)
    assert res.timings["run"] > 0 and res.timings["outputs"] > 0
    assert len(res.tasks) == 4
    assert all(t["seconds"] > 0 and t["cpu_s"] >= 0 for t in res.tasks)
    # The serial engine analyses in the caller's process: its thread settings stay as
    # they were (one thread per file is for Dask workers, where files run in parallel).
    assert {t.split()[0] for t in call_threads(log)} == {"emgtool=-"}
    assert "EMGTOOL_NUM_THREADS" not in os.environ


def test_hash_file_stops_between_blocks(recordings, tmp_path):
    import threading

    from emgtool.batch.engine import _Hasher
    from emgtool.batch.tasks import hash_file

    paths = [str(p) for p in recordings(2)]
    stop = threading.Event()
    stop.set()
    assert hash_file(paths[0], stop=stop) is None
    assert "error" in hash_file(str(tmp_path / "missing.edf"))
    h = _Hasher(paths)
    h.thread.join()
    assert h.stop() == {p: hash_file(p) for p in paths}
