"""emgtool batch on real Dask clusters: killed workers, a killed driver, an external scheduler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from emgtool.batch import run_batch
from emgtool.cli import main
from emgtool.errors import EmgtoolError

from .conftest import (
    FAKE,
    ROOT,
    call_threads,
    calls,
    catalog_rows,
    result_folders,
    write_recording,
)


def _no_orphans(children: list[psutil.Process]) -> None:
    # Worker processes the killed driver had started must not run on (they are
    # re-parented when the driver dies, so follow the processes themselves).
    deadline = time.time() + 20
    while time.time() < deadline:
        left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            return
        time.sleep(0.3)
    for p in left:
        p.kill()
    raise AssertionError(f"orphaned worker processes: {[p.pid for p in left]}")


def test_worker_killed_mid_batch_loses_nothing(recordings, tmp_path, monkeypatch):
    monkeypatch.setenv("EMGTOOL_TEST_SLEEP_S", "0.3")
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("EMGTOOL_TEST_LOG", str(log))
    # the driver's own thread settings must not reach the workers, nor be lost
    monkeypatch.setenv("EMGTOOL_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    files = recordings(6)
    killed: list[int] = []

    def kill_one(pool, n_finished):
        if n_finished == 1 and not killed:
            pids = pool.client.run(os.getpid)  # worker address → pid
            victim = sorted(pids.values())[0]
            assert victim != os.getpid()
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    out = tmp_path / "out"
    res = run_batch([tmp_path / "data"], out, workers=2, analyze=FAKE, on_result=kill_one)
    assert killed, "the kill hook never ran"
    assert (res.done, res.failed) == (6, 0)
    rows = catalog_rows(out)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert len(result_folders(out)) == 6
    df = pd.read_csv(out / "cohort.csv")
    assert sorted(df["file"].unique()) == sorted(f.name for f in files)
    # one thread per file in every worker, the restarted one included
    assert call_threads(log) == {"emgtool=1 blas=1"}
    assert len(calls(log)) >= 6
    assert os.environ["EMGTOOL_NUM_THREADS"] == "2" and os.environ["OPENBLAS_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in os.environ
    assert set(res.timings) >= {"start", "hash", "run", "outputs", "stop"}
    assert sum(res.timings.values()) == pytest.approx(res.seconds, abs=0.05)
    assert len(res.tasks) >= 6 and all(t["cpu_s"] >= 0 for t in res.tasks)


def test_workers_that_cannot_import_the_analysis_stop_the_batch_at_start(recordings, tmp_path):
    recordings(2)
    out = tmp_path / "out"
    with pytest.raises(EmgtoolError, match="no_such_module_xyz"):
        run_batch([tmp_path / "data"], out, workers=1, analyze="no_such_module_xyz:analyze")
    assert catalog_rows(out) == []  # no file was recorded as failed


def test_driver_killed_then_resumed_without_redo_or_duplicates(recordings, tmp_path):
    files = recordings(8)
    out, log = tmp_path / "out", tmp_path / "log"
    log.mkdir()
    env = {**os.environ, "EMGTOOL_TEST_SLEEP_S": "0.5", "EMGTOOL_TEST_LOG": str(log)}
    cmd = [
        sys.executable,
        "-m",
        "emgtool",
        "batch",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--workers",
        "1",
        "--analyze",
        FAKE,
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if (out / "catalog.sqlite").exists() and len(catalog_rows(out)) >= 3:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the local cluster should run worker processes"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = catalog_rows(out)
    assert 3 <= len(first) < 8, "the kill must land mid-batch"
    _no_orphans(children)
    committed = {os.path.basename(r["path"]) for r in first}

    os.environ["EMGTOOL_TEST_LOG"] = str(log)
    try:
        # the resume logic does not depend on the engine; serial keeps the test short
        res = run_batch([tmp_path / "data"], out, engine="serial", analyze=FAKE)
    finally:
        del os.environ["EMGTOOL_TEST_LOG"]
    assert res.failed == 0 and res.skipped == len(first)
    rows = catalog_rows(out)
    assert len(rows) == 8  # no duplicate: one row per (content, params)
    assert len({(r["file_sha256"], r["params_hash"]) for r in rows}) == 8
    assert sorted(os.path.basename(r["path"]) for r in rows) == sorted(f.name for f in files)
    assert len(result_folders(out)) == 8
    for folder in result_folders(out):
        marker = json.loads((folder / "batch.json").read_text())
        assert folder.name.endswith(marker["file_sha256"][:10])
    # committed files were never analysed again
    n = pd.Series(calls(log)).value_counts()
    assert all(n[name] == 1 for name in committed), n
    assert len(pd.read_csv(out / "cohort.csv")) == 8 * 4


def test_corrupt_and_crashing_files_among_good_ones(recordings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMGTOOL_TEST_POISON", "1")
    good = recordings(4)
    data = tmp_path / "data"
    (data / "corrupt.edf").write_bytes(b"0" * 300 + b"\x00garbage" * 50)
    (data / "truncated.edf").write_bytes(good[0].read_bytes()[:1000])
    write_recording(data / "poison.edf", seed=50)  # kills its worker every time
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in good}
    listing = sorted(p.name for p in data.iterdir())
    out = tmp_path / "out"
    rc = main(
        [
            "batch",
            str(data),
            "--out",
            str(out),
            "--workers",
            "2",
            "--analyze",
            FAKE,
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 1  # documented: 1 when any file failed
    assert "done 4, skipped 0, failed 3" in captured.out
    fails = pd.read_csv(out / "failures.tsv", sep="\t").set_index("path")
    fails.index = [os.path.basename(p) for p in fails.index]
    assert sorted(fails.index) == ["corrupt.edf", "poison.edf", "truncated.edf"]
    assert fails.loc["corrupt.edf", "status"] == fails.loc["truncated.edf", "status"] == "error"
    assert fails.loc["poison.edf", "status"] == "crashed"
    assert "worker process died" in fails.loc["poison.edf", "reason"]
    assert fails["reason"].str.len().min() > 10 and (fails["attempts"] == 2).all()
    assert "corrupt.edf" in captured.err
    assert len(result_folders(out)) == 4
    html = (out / "cohort.html").read_text()
    assert all(name in html for name in fails.index)
    # inputs untouched, nothing written next to them or outside --out
    assert sorted(p.name for p in data.iterdir()) == listing
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in good} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_external_scheduler_on_loopback(recordings, tmp_path):
    recordings(3)
    sched_file = tmp_path / "scheduler.json"
    py = sys.executable
    sched_cmd = [py, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(sched_file)]
    sched_cmd += "--host 127.0.0.1 --port 0 --no-dashboard".split()
    # the worker waits for the scheduler file itself, so both start at once
    worker_cmd = [py, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched_file)]
    worker_cmd += "--nthreads 1 --nworkers 1 --no-nanny --no-dashboard --host 127.0.0.1".split()
    worker_cmd += ["--local-directory", str(tmp_path / "worker-space")]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # A worker started without any thread settings (and without a nanny, which would
    # set the BLAS ones): the task itself must keep each analysis on one thread.
    unset = ("EMGTOOL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    log = tmp_path / "log"
    log.mkdir()
    worker_env = {k: v for k, v in os.environ.items() if k not in unset}
    worker_env["EMGTOOL_TEST_LOG"] = str(log)
    procs = [
        subprocess.Popen(sched_cmd, **quiet),
        subprocess.Popen(worker_cmd, env=worker_env, **quiet),
    ]
    try:
        deadline = time.time() + 30
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert time.time() < deadline and procs[0].poll() is None, "scheduler did not start"
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        out = tmp_path / "out"
        common = [str(tmp_path / "data"), "--out", str(out), "--analyze", FAKE, "--no-progress"]
        assert main(["batch", *common, "--scheduler-file", str(sched_file)]) == 0
        rows = catalog_rows(out)
        assert len(rows) == 3 and len(result_folders(out)) == 3
        assert call_threads(log) == {"emgtool=1 blas=1"}
        # the same cluster by address; everything is already done
        assert main(["batch", *common, "--scheduler", address]) == 0
        assert catalog_rows(out) == rows
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_hashes_from_the_driver_and_the_workers_combine(recordings, tmp_path, monkeypatch):
    # The driver hashes while the cluster starts; files it has not reached by then are
    # hashed on the workers.  Force the split: the driver keeps only its first file.
    from emgtool.batch import engine
    from emgtool.batch.tasks import hash_file

    files = recordings(3)
    real_stop = engine._Hasher.stop

    def stop_after_one(self):
        self.thread.join()
        got = real_stop(self)
        return {p: got[p] for p in self.paths[:1]}

    monkeypatch.setattr(engine._Hasher, "stop", stop_after_one)
    out = tmp_path / "out"
    seen = {}

    def on_result(pool, n):
        # the local cluster's workers got the quick-exit plugin (_plugins.py)
        seen.update(pool.client.run(_quick_exit_registered))

    res = run_batch([tmp_path / "data"], out, workers=1, analyze=FAKE, on_result=on_result)
    assert (res.done, res.failed) == (3, 0), res.failures
    assert list(seen.values()) == [True]
    want = sorted(hash_file(str(f))["sha256"] for f in files)
    assert sorted(r["file_sha256"] for r in catalog_rows(out)) == want


def _quick_exit_registered() -> bool:
    from emgtool.batch import _plugins

    return _plugins._registered
