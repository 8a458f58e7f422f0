"""`emgtool report DIR… --out DIR`: trends, newly involved sites and regions, errors."""

from __future__ import annotations

import json
import shutil

import pytest

from emgtool.cli import main
from emgtool.events import write_events_tsv
from emgtool.report import summarize, write_json_atomic
from emgtool.report.longitudinal import rate_change_p


@pytest.fixture(scope="module")
def _visit_dirs(tmp_path_factory):
    from .conftest import S, make_analysis

    calves = [
        S("gastrocnemius_medial", "L", "lumbosacral", 6),
        S("gastrocnemius_medial", "R", "lumbosacral", 5),
    ]
    v1 = make_analysis(calves + [S("biceps", "L", "cervical", 0)], duration_s=300, seed=1)
    v2 = make_analysis(
        calves + [S("biceps", "L", "cervical", 12, cramps=[(50.0, 8.0)])], duration_s=300, seed=2
    )
    v3 = make_analysis(
        calves
        + [
            S("biceps", "L", "cervical", 20, cramps=[(50.0, 8.0), (150.0, 5.0)]),
            S("tongue", "n/a", "bulbar", 8),
        ],
        duration_s=300,
        seed=3,
    )
    root = tmp_path_factory.mktemp("visits")
    for i, a in enumerate((v1, v2, v3), 1):
        d = root / f"visit{i}"
        write_json_atomic(d / "summary.json", summarize(a))  # the HTML is not needed here
        write_events_tsv(a.events, d / "events.tsv")
    return root


@pytest.fixture
def visits(_visit_dirs, tmp_path):
    """A fresh copy per test (some tests edit the files)."""
    dst = tmp_path / "in"
    shutil.copytree(_visit_dirs, dst)
    return [dst / f"visit{i}" for i in (1, 2, 3)]


def test_three_visits_newly_involved(visits, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["report", *map(str, visits), "--out", str(out)]) == 0
    doc = json.loads((out / "longitudinal.json").read_text(encoding="utf-8"))
    assert doc["visit_order"] == "argument"
    assert [v["pattern"] for v in doc["visits"]] == ["focal", "multifocal", "widespread"]
    new = {n["visit"]: n for n in doc["new_involvement"]}
    assert new[2]["regions"] == ["cervical"] and new[2]["sites"] == ["biceps L"]
    # the tongue was never examined before: involved on first assessment, not "new"
    assert new[3]["regions"] == [] and new[3]["regions_first_assessed"] == ["bulbar"]
    assert new[3]["sites_first_assessed"] == ["tongue"]
    assert [v["cramp_count"] for v in doc["visits"]] == [0, 1, 2]
    assert doc["visits"][2]["cramps_per_hour"] == pytest.approx(2 / (300 / 3600))
    biceps = next(s for s in doc["sites"] if s["label"] == "biceps L")
    assert [r["status"] for r in biceps["visits"]] == ["not_involved", "involved", "involved"]
    assert biceps["changes"][0]["p_value"] < 0.001  # 0 → ~12/min
    tongue = next(s for s in doc["sites"] if s["label"] == "tongue")
    assert [r["examined"] for r in tongue["visits"]] == [False, False, True]
    assert doc["warnings"] == []
    html = (out / "longitudinal.html").read_text(encoding="utf-8")
    assert "not a diagnosis" in html.lower() and "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") == 3
    assert str(out / "longitudinal.html") in capsys.readouterr().out


def test_order_by_start_time(visits, tmp_path):
    for d, t in zip(
        visits, ["2024-03-01T10:00:00", "2024-01-01T10:00:00", "2024-02-01T10:00:00"], strict=True
    ):
        doc = json.loads((d / "summary.json").read_text(encoding="utf-8"))
        doc["recording"]["start_time"] = t
        (d / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    assert main(["report", *map(str, visits), "--out", str(tmp_path / "o")]) == 0
    doc = json.loads((tmp_path / "o" / "longitudinal.json").read_text(encoding="utf-8"))
    assert doc["visit_order"] == "start_time"
    assert [v["label"] for v in doc["visits"]] == ["visit2", "visit3", "visit1"]


def test_events_mismatch_warns(visits, tmp_path):
    doc = json.loads((visits[0] / "summary.json").read_text(encoding="utf-8"))
    doc["sites"][0]["fasciculation_count"] += 5
    (visits[0] / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    assert main(["report", *map(str, visits[:2]), "--out", str(tmp_path / "o")]) == 0
    out = json.loads((tmp_path / "o" / "longitudinal.json").read_text(encoding="utf-8"))
    assert len(out["warnings"]) == 1 and "events.tsv" in out["warnings"][0]


@pytest.mark.parametrize("problem", ["missing", "file", "no_summary", "bad_json", "not_summary"])
def test_bad_folder_one_line_exit_2(visits, tmp_path, capsys, problem):
    bad = tmp_path / "bad"
    if problem == "file":
        bad.write_text("x")
    elif problem != "missing":
        bad.mkdir()
        if problem == "bad_json":
            (bad / "summary.json").write_text("{not json")
        elif problem == "not_summary":
            (bad / "summary.json").write_text('{"hello": 1}')
    rc = main(["report", str(visits[0]), str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("emgtool: error: ") and err.count("\n") == 1 and "bad" in err
    assert not (tmp_path / "o" / "longitudinal.json").exists()


def test_rate_change_p():
    assert rate_change_p(10, 60, 10, 60) == pytest.approx(1.0)
    assert rate_change_p(5, 60, 50, 60) < 1e-6
    assert rate_change_p(0, 60, 0, 60) is None


def test_help_mentions_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = capsys.readouterr().out
    assert "longitudinal.json" in out and "--out" in out and "start time" in out
