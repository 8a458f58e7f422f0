"""Privacy (issue 8 item 4) and safety (item 5) through every command that writes.

The input EDF's header names the patient, birth date, patient code, hospital
code and technician.  Every output file (text and binary, recursively) is
searched for each of them; ``--keep-identity`` is the only way in.  No command
writes to its input, outside its output folder, or over earlier results.
"""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import (
    HOSPITAL_CODE,
    NAME,
    PATIENT_CODE,
    START_FORMS,
    assert_one_line_error,
    find_secrets,
    run_cli,
    secrets,
    sha256,
    simulated,
    tree,
    write_identified_edf,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An identified EDF+ in ``in/``, analysed once with and once without identity."""
    root = tmp_path_factory.mktemp("privacy")
    (root / "in").mkdir()
    (root / "cwd").mkdir()
    data, _ = simulated(12.0, seed=3)
    src = write_identified_edf(root / "in" / "rec.edf", data)
    digest = sha256(src)
    runs = {}
    for name, extra in (("plain", []), ("kept", ["--keep-identity"])):
        runs[name] = run_cli(
            ["analyze", src, "--out", root / name, "--export-edf", "--bids", *extra],
            cwd=root / "cwd",
        )
    return root, src, digest, runs


def test_analyze_outputs_carry_no_identity(world):
    root, src, digest, runs = world
    r = runs["plain"]
    assert r.rc == 0, r.err
    out = root / "plain"
    names = set(tree(out))
    assert {"events.tsv", "events.json", "summary.json", "report.html", "recording.edf"} <= names
    assert any(n.startswith("bids/") for n in names)
    # Header fields, and the input's own free-text annotations, stay out.
    assert find_secrets(out, [*secrets(), *START_FORMS, "electrodes checked"]) == []
    for stream in (r.out, r.err):
        assert not [s for s in secrets() if s.lower() in stream.lower()]
    summary = json.loads((out / "summary.json").read_text())
    assert "identity" not in summary and summary["recording"]["start_time"] is None


def test_export_edf_is_anonymous_and_readable(world):
    root, *_ = world
    import mne

    raw = mne.io.read_raw_edf(root / "plain" / "recording.edf", preload=False, verbose="error")
    info = raw.info.get("subject_info") or {}
    assert NAME not in json.dumps(info, default=str)
    assert raw.n_times == 12000 and len(raw.annotations) > 0


def test_keep_identity_keeps_it(world):
    root, src, digest, runs = world
    assert runs["kept"].rc == 0, runs["kept"].err
    summary = (root / "kept" / "summary.json").read_text()
    report = (root / "kept" / "report.html").read_text()
    for s in (NAME, PATIENT_CODE, HOSPITAL_CODE, "14-MAR-1950"):
        assert s in summary and s in report, s
    assert json.loads(summary)["recording"]["start_time"].startswith("2023-05-17")


def test_recording_id_is_pseudonymous(world, tmp_path):
    """Derived from the content, never from the file name or the header text."""
    root, src, *_ = world
    rid = json.loads((root / "plain" / "summary.json").read_text())["recording"]["recording_id"]
    renamed = tmp_path / "Doeberg_Jane_1950-03-14.edf"
    shutil.copyfile(src, renamed)
    r = run_cli(["analyze", renamed, "--out", tmp_path / "o"])
    assert r.rc == 0, r.err
    rid2 = json.loads((tmp_path / "o" / "summary.json").read_text())["recording"]["recording_id"]
    assert rid == rid2
    assert "rec" != rid.split("-")[-1] and "doeberg" not in rid.lower()
    # analyze never copies the file name into its outputs either
    assert find_secrets(tmp_path / "o", ["Doeberg"]) == []


def test_info_and_report_and_batch(world, tmp_path):
    root, src, digest, runs = world
    r = run_cli(["info", src], cwd=root / "cwd")
    assert r.rc == 0 and not [s for s in secrets() if s.lower() in (r.out + r.err).lower()]
    r = run_cli(["info", src, "--keep-identity"], cwd=root / "cwd")
    assert NAME in r.out
    analysed = tree(root / "plain")
    r = run_cli(
        ["report", root / "plain", root / "plain", "--out", tmp_path / "rep"], cwd=root / "cwd"
    )
    assert r.rc == 0, r.err
    assert tree(root / "plain") == analysed  # report reads its input folders only
    assert find_secrets(tmp_path / "rep", secrets() + list(START_FORMS)) == []
    r = run_cli(
        ["batch", src, "--out", tmp_path / "batch", "--engine", "serial", "--no-progress"],
        cwd=root / "cwd",
    )
    assert r.rc == 0, r.err
    assert find_secrets(tmp_path / "batch", secrets() + list(START_FORMS)) == []
    # nothing written to the input, its folder or the working directory
    assert sha256(src) == digest
    assert sorted(p.name for p in (root / "in").iterdir()) == ["rec.edf"]
    assert list((root / "cwd").iterdir()) == []


@pytest.mark.slow
def test_batch_with_dask_worker_writes_only_its_folder(world, tmp_path):
    root, src, digest, _ = world
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = run_cli(
        ["batch", src, "--out", tmp_path / "b", "--workers", "1", "--no-progress"], cwd=cwd
    )
    assert r.rc == 0, r.err
    assert find_secrets(tmp_path / "b", secrets()) == []
    assert list(cwd.iterdir()) == [] and sha256(src) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "cwd"]


# ---------------------------------------------------------------------- safety
def test_no_overwrite_without_flag(world, tmp_path):
    root, src, digest, _ = world
    out = tmp_path / "o"
    assert run_cli(["analyze", src, "--out", out]).rc == 0
    before = tree(out)
    r = run_cli(["analyze", src, "--out", out])
    assert_one_line_error(r, str(out), "--overwrite")
    assert tree(out) == before
    r = run_cli(["analyze", src, "--out", out, "--overwrite"])
    assert r.rc == 0 and sha256(src) == digest


def test_report_does_not_overwrite_without_flag(world, tmp_path):
    root, *_ = world
    assert run_cli(["report", root / "plain", "--out", tmp_path / "rep"]).rc == 0
    before = tree(tmp_path / "rep")
    r = run_cli(["report", root / "plain", "--out", tmp_path / "rep"])
    assert_one_line_error(r, "--overwrite")
    assert tree(tmp_path / "rep") == before
    r = run_cli(["report", root / "plain", "--out", tmp_path / "rep", "--overwrite"])
    assert r.rc == 0, r.err


def test_exports_never_replace_the_input(tmp_path):
    """An input called recording.edf analysed into its own folder with --export-edf."""
    data, _ = simulated(6.0, seed=5)
    src = write_identified_edf(tmp_path / "recording.edf", data)
    digest = sha256(src)
    for extra in ([], ["--overwrite"]):
        r = run_cli(["analyze", src, "--out", tmp_path, "--export-edf", *extra])
        assert_one_line_error(r, "overwrite the input")
        assert sha256(src) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recording.edf"]


def test_failed_analysis_leaves_nothing(tmp_path):
    bad = tmp_path / "in" / "bad.edf"
    bad.parent.mkdir()
    bad.write_bytes(b"0       " + b"x" * 300)
    r = run_cli(["analyze", bad, "--out", tmp_path / "o"])
    assert_one_line_error(r, "bad.edf")
    assert not (tmp_path / "o").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_demo_never_replaces_other_results(world, tmp_path):
    """``emgtool demo --out DIR`` refuses a folder holding another recording's results."""
    root, *_ = world
    out = tmp_path / "mine"
    shutil.copytree(root / "plain", out)
    before = tree(out)
    r = run_cli(["demo", "--out", out], cwd=tmp_path)
    assert_one_line_error(r, str(out), "--overwrite")
    assert tree(out) == before


def test_non_ascii_name_is_not_echoed(tmp_path):
    """A Latin-1 name (not allowed by EDF, common in practice) stays out of warnings and files."""
    data, _ = simulated(6.0, seed=6)
    src = write_identified_edf(tmp_path / "rec.edf", data)
    raw = src.read_bytes()
    latin = "Jäne_Q_Döeberg".encode("latin-1")
    assert len(latin) == len(NAME)
    src.write_bytes(raw.replace(NAME.encode(), latin, 1))
    r = run_cli(["analyze", src, "--out", tmp_path / "o"])
    assert r.rc == 0, r.err
    assert any("non-ASCII" in w and "patient" in w for w in r.warnings), r.err
    for text in (r.out, r.err):
        assert "Döeberg" not in text and "D\\xf6eberg" not in text
    assert find_secrets(tmp_path / "o", ["Döeberg", "Jäne", PATIENT_CODE]) == []
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert any("non-ASCII" in w for w in summary["warnings"])
