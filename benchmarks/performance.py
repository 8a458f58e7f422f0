"""Performance benchmark suite: end to end, per stage, peers, memory, live and batch.

One command, run from the repository root::

    python benchmarks/performance.py [--quick] [--peers-python PY] [--skip SECTIONS]

Sections (all in one run, so ratios compare like with like):

``e2e``
    :func:`emgtool.analyze` of a 64-channel, 2048 Hz, 30-minute EDF (the
    ``hd-grid`` scenario, generated once into ``--cache``), median of
    ``--repeats`` runs; the *floor* in the same run: reading the same file in
    the same chunks plus one 4th-order 20-450 Hz ``sosfilt`` pass in float32;
    and the ``emgtool analyze FILE --out DIR`` command (interpreter start-up,
    imports and report included).
``stages``
    One instrumented run: exclusive time per pipeline stage (read, clipping/
    gaps, filter, noise floor, detection, features, activity, ECG, clustering,
    finalize, report), as M samples/s.
``peers``
    The benchmark recipe's burst signal (16 ch x 10 min x 2 kHz): BioSPPy
    ``emg.emg`` on every channel, NeuroKit2 ``emg_process`` on a subset (it
    is slow), and emgtool on all 16 channels at once; per-channel times,
    ratios and burst hits (the subtask all three share).
``memory``
    Peak RSS of a child process analysing a long 16-channel EDF
    (``--memory-hours``, 24 by default).
``live``
    ``step`` latency on 40-ms chunks (the live loop's block) at 16 and 64
    channels, and CPU share; plus the live loop itself (``run_live`` replaying
    a file as fast as possible: quantisation, EDF writing with fsync, detection).
``batch``
    ``benchmarks/bench_batch.py`` (1 vs 2 Dask workers).

Writes ``benchmarks/results/performance.json`` and regenerates the table in
``docs/performance.md`` between its markers.  NeuroKit2 0.2.13 requires
pandas < 3: if the project's environment has pandas 3, install the peers into
another environment and pass its interpreter with ``--peers-python``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from _common import json_safe, peak_rss_mb, replace_marked_block  # noqa: E402

FS = 2048
MARK_START = "<!-- performance-table:start -->"
MARK_END = "<!-- performance-table:end -->"
TARGETS = {
    "e2e_msamples_per_s": 50.0,
    "e2e_vs_floor_max": 5.0,
    "vs_biosppy_min": 20.0,
    "vs_neurokit2_min": 500.0,
    "peak_memory_mb_max": 1024.0,
}
SECTIONS = ("e2e", "stages", "peers", "memory", "live", "batch")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _quiet() -> None:
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("mne").setLevel(logging.ERROR)


# --------------------------------------------------------------------------- test files
def write_edf_from_sim(
    path: Path,
    scenario: str,
    minutes: float,
    seed: int,
    piece_s: float = 300.0,
    tile: bool = False,
) -> None:
    """Simulate ``scenario`` and stream it into an EDF, piece by piece (bounded memory).

    With ``tile`` one piece is simulated and written again and again (for very
    long files, where only the size matters).
    """
    from emgtool.io.edf_stream import EdfStreamWriter
    from emgtool.simulate import simulate

    total = int(round(minutes * 60 * FS))
    n_piece = int(round(piece_s * FS))
    tmp = path.with_name(path.name + ".part")
    writer = None
    piece = None
    try:
        done = 0
        i = 0
        while done < total:
            if piece is None or not tile:
                rec, _truth = simulate(scenario, duration_s=piece_s, seed=seed + i)
                piece = rec
            if writer is None:
                writer = EdfStreamWriter(
                    tmp,
                    FS,
                    list(piece.channels),
                    physical_range_uv=(-5000.0, 5000.0),
                    fsync=False,
                    overwrite=True,
                )
            m = min(n_piece, total - done)
            writer.write(piece.data[:, :m])
            done += m
            i += 1
        writer.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def cached_edf(cache: Path, scenario: str, n_ch: int, minutes: float, tile: bool = False) -> Path:
    path = cache / f"perf-{scenario}-{n_ch}ch-{FS}hz-{minutes:g}min{'-tiled' if tile else ''}.edf"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        log(f"generating {path.name} (once) …")
        t0 = time.perf_counter()
        write_edf_from_sim(
            path, scenario, minutes, seed=7, piece_s=300.0 if not tile else 600.0, tile=tile
        )
        log(f"  {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s")
    return path


# --------------------------------------------------------------------------- e2e + floor
def floor_pass(path: Path, chunk_s: float, do_filter: bool = True) -> dict:
    """Read the file in ``chunk_s`` chunks (+ one float32 20-450 Hz sosfilt pass)."""
    from scipy import signal

    from emgtool.io import open_source

    src = open_source(path)
    n = int(round(chunk_s * src.fs))
    sos = signal.butter(4, [20.0, 450.0], "bandpass", fs=src.fs, output="sos").astype(np.float32)
    zi = np.zeros((sos.shape[0], src.n_channels, 2), np.float32)
    t_read = t_filt = 0.0
    t0 = time.perf_counter()
    for a in range(0, src.n_samples, n):
        t1 = time.perf_counter()
        x = src.read_block(a, min(a + n, src.n_samples))
        t2 = time.perf_counter()
        if do_filter:
            _y, zi = signal.sosfilt(sos, x, axis=-1, zi=zi)
        t_read += t2 - t1
        t_filt += time.perf_counter() - t2
    total = time.perf_counter() - t0
    return {
        "wall_s": total,
        "read_s": t_read,
        "filter_s": t_filt,
        "n_samples_total": src.n_samples * src.n_channels,
    }


def time_analyze(path: Path) -> dict:
    from emgtool.pipeline.analyze import analyze

    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    an = analyze(path)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    kinds = {str(k): int(v) for k, v in an.events["trial_type"].value_counts().items()}
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "n_samples_total": an.n_samples * len(an.channels),
        "events": kinds,
    }


def time_cli(path: Path) -> float | str:
    """Wall time of ``emgtool analyze FILE --out DIR`` in a fresh interpreter (or its error)."""
    with tempfile.TemporaryDirectory(prefix="perf-cli-") as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "emgtool", "analyze", str(path), "--out", out],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if res.returncode != 0:
            return f"exit {res.returncode}: " + (res.stderr.strip().splitlines() or [""])[-1][:200]
        return time.perf_counter() - t0


def section_e2e(path: Path, repeats: int, with_cli: bool) -> dict:
    from emgtool.pipeline.analyze import OFFLINE_CHUNK_S

    floor_pass(path, OFFLINE_CHUNK_S, do_filter=False)  # warm the page cache
    runs_e2e, runs_floor, runs_read = [], [], []
    for r in range(repeats):  # interleaved, so a busy spell on the machine hits all
        runs_read.append(floor_pass(path, OFFLINE_CHUNK_S, do_filter=False))
        runs_floor.append(floor_pass(path, OFFLINE_CHUNK_S))
        runs_e2e.append(time_analyze(path))
        log(
            f"  repeat {r + 1}: analyze {runs_e2e[-1]['wall_s']:.2f} s, "
            f"read+filter {runs_floor[-1]['wall_s']:.2f} s, read {runs_read[-1]['wall_s']:.2f} s"
        )
    n = runs_e2e[0]["n_samples_total"]
    med_e2e = statistics.median(r["wall_s"] for r in runs_e2e)
    med_floor = statistics.median(r["wall_s"] for r in runs_floor)
    med_read = statistics.median(r["wall_s"] for r in runs_read)
    out = {
        "file": path.name,
        "file_mb": path.stat().st_size / 1e6,
        "n_samples_total": n,
        "chunk_s": OFFLINE_CHUNK_S,
        "repeats": repeats,
        "analyze_wall_s": [r["wall_s"] for r in runs_e2e],
        "analyze_cpu_s": [r["cpu_s"] for r in runs_e2e],
        "floor_wall_s": [r["wall_s"] for r in runs_floor],
        "floor_filter_s": [r["filter_s"] for r in runs_floor],
        "read_wall_s": [r["wall_s"] for r in runs_read],
        "analyze_median_s": med_e2e,
        "floor_median_s": med_floor,
        "read_median_s": med_read,
        "analyze_msamples_per_s": n / med_e2e / 1e6,
        "floor_msamples_per_s": n / med_floor / 1e6,
        "read_msamples_per_s": n / med_read / 1e6,
        "sosfilt_msamples_per_s": n / statistics.median(r["filter_s"] for r in runs_floor) / 1e6,
        "analyze_vs_floor": med_e2e / med_floor,
        "analyze_cpu_over_wall": statistics.median(r["cpu_s"] / r["wall_s"] for r in runs_e2e),
        "events": runs_e2e[0]["events"],
    }
    if with_cli:
        cli = [time_cli(path) for _ in range(max(1, repeats // 2))]
        ok = [c for c in cli if isinstance(c, float)]
        out["cli_wall_s"] = cli
        if ok:
            out["cli_median_s"] = statistics.median(ok)
            out["cli_vs_floor"] = out["cli_median_s"] / med_floor
        else:
            out["cli_error"] = cli[0]
    return out


# --------------------------------------------------------------------------- per stage
class StageTimer:
    """Exclusive wall time per stage, from wrappers around module functions."""

    def __init__(self) -> None:
        self.excl: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[float] = []
        self._patched: list[tuple[object, str, object]] = []

    def wrap(self, fn, stage: str):
        def timed(*a, **k):
            t0 = time.perf_counter()
            self._stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                child = self._stack.pop()
                self.excl[stage] += dt - child
                self.calls[stage] += 1
                if self._stack:
                    self._stack[-1] += dt

        return timed

    def patch(self, module, name: str, stage: str) -> bool:
        fn = getattr(module, name, None)
        if fn is None:
            return False
        self._patched.append((module, name, fn))
        setattr(module, name, self.wrap(fn, stage))
        return True

    def restore(self) -> None:
        for module, name, fn in reversed(self._patched):
            setattr(module, name, fn)
        self._patched.clear()


#: (module, function, stage) wrapped in the instrumented run; missing ones are skipped.
STAGE_FUNCS = [
    ("emgtool.pipeline.core", "_scan_raw", "clipping + gaps"),
    ("emgtool.pipeline.core", "_mark_nan", "clipping + gaps"),
    ("emgtool.pipeline.core", "_filter", "filter (band-pass + mains)"),
    ("emgtool.pipeline.dsp", "detect_mains", "mains detection"),
    ("emgtool.pipeline.core", "_update_noise", "noise floor"),
    ("emgtool.pipeline.core", "_probe_noise", "noise floor"),
    ("emgtool.pipeline.core", "_close_block", "noise floor"),
    ("emgtool.pipeline.core", "_segment", "detection (candidates)"),
    ("emgtool.pipeline.core", "_measure", "features"),
    ("emgtool.pipeline.core", "_decide", "detection (decisions)"),
    ("emgtool.pipeline.core", "_bootstrap_ecg", "ECG"),
    ("emgtool.pipeline.core", "_update_bins", "activity (sustained/cramps)"),
    ("emgtool.pipeline.finalize", "cluster_shapes", "clustering"),
    ("emgtool.pipeline.finalize", "finalize", "finalize (other)"),
    ("emgtool.pipeline.analyze", "recording_id", "file hash (recording id)"),
]


def section_stages(path: Path) -> dict:
    import importlib

    from emgtool.io import open_source
    from emgtool.pipeline import _kernels
    from emgtool.pipeline import analyze as analyze_mod

    timer = StageTimer()
    wrapped = []
    # One thread: the timer's exclusive times are per call stack, and the stages
    # then add up to the run (the end-to-end section measures the threaded run).
    real_threads = _kernels.n_threads
    _kernels.n_threads = lambda: 1
    for mod_name, fn, stage in STAGE_FUNCS:
        if timer.patch(importlib.import_module(mod_name), fn, stage):
            wrapped.append(f"{mod_name}.{fn}")
    try:
        gc.collect()
        t0 = time.perf_counter()
        src = open_source(path)
        src.read_block = timer.wrap(src.read_block, "read")
        an = analyze_mod.analyze_source(src)
        t_an = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="perf-report-") as out:
            write = timer.wrap(analyze_mod.write_outputs, "report (events.tsv, summary, html)")
            t1 = time.perf_counter()
            write(an, out)
            t_rep = time.perf_counter() - t1
    finally:
        timer.restore()
        _kernels.n_threads = real_threads
    n = an.n_samples * len(an.channels)
    total = t_an + t_rep
    stages = {}
    for k, v in sorted(timer.excl.items(), key=lambda kv: -kv[1]):
        stages[k] = {
            "s": v,
            "share": v / total,
            "msamples_per_s": n / v / 1e6 if v > 0 else None,
            "calls": timer.calls[k],
        }
    other = total - sum(timer.excl.values())
    stages["other (chunking, bookkeeping)"] = {
        "s": other,
        "share": other / total,
        "msamples_per_s": n / other / 1e6 if other > 0 else None,
        "calls": None,
    }
    return {
        "n_samples_total": n,
        "total_s": total,
        "analyze_s": t_an,
        "stages": stages,
        "wrapped": wrapped,
    }


# --------------------------------------------------------------------------- peers
def _peer_subprocess(python: str, tool: str, channels: str) -> dict:
    cmd = [python, str(HERE / "peers.py"), tool, "--channels", channels]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1], "tool": tool}
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    doc["process_wall_s"] = time.perf_counter() - t0
    return doc


def _emgtool_on_peer_signal(repeats: int) -> dict:
    from benchmarks_peers import make_signal, score_onsets  # type: ignore[import-not-found]

    from emgtool.pipeline.analyze import analyze
    from emgtool.recording import Recording
    from emgtool.simulate.scenarios import DEFAULT_LABELS

    x, bursts = make_signal()
    fs = 2000
    uv_per_unit = 5.0  # the recipe's unit noise as 5 µV RMS, a quiet surface electrode
    rec = Recording.from_array(
        (x * uv_per_unit).astype(np.float32), fs=fs, labels=list(DEFAULT_LABELS)
    )
    del x
    walls, cpus = [], []
    an = None
    for _ in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        an = analyze(rec)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    ev = an.events
    per_ch, per_ch_sus = [], []
    for i, ch in enumerate(rec.channels):
        mine = ev[(ev["site"] == ch.site) & (ev["side"] == ch.side)]
        per_ch.append(score_onsets(mine["onset"].to_numpy(), bursts[i]))
        sus = mine[mine["trial_type"].isin(["cramp", "voluntary"])]
        per_ch_sus.append(score_onsets(sus["onset"].to_numpy(), bursts[i]))
    n_ch = rec.n_channels
    return {
        "tool": "emgtool",
        "uv_per_unit": uv_per_unit,
        "n_channels": n_ch,
        "wall_s_all_channels": walls,
        "cpu_s_all_channels": cpus,
        "wall_s_per_channel": statistics.median(walls) / n_ch,
        "cpu_s_per_channel": statistics.median(cpus) / n_ch,
        "scores_all_events": _sum_scores(per_ch),
        "scores_sustained_only": _sum_scores(per_ch_sus),
        "events": {str(k): int(v) for k, v in ev["trial_type"].value_counts().items()},
    }


def _sum_scores(rows: list[dict]) -> dict:
    keys = ("detections", "hits", "hits_twitch", "hits_cramp", "false_detections")
    out = {k: int(sum(r[k] for r in rows)) for k in keys}
    out["n_true"] = 23 * len(rows)
    out["n_channels"] = len(rows)
    return out


def section_peers(
    python: str, nk_channels: str, bio_channels: str, repeats: int, skip_nk: bool
) -> dict:
    sys.path.insert(0, str(HERE))
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmarks_peers", HERE / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_peers"] = mod
    spec.loader.exec_module(mod)
    log("  emgtool on the recipe signal …")
    emg = _emgtool_on_peer_signal(repeats)
    log(f"  emgtool: {emg['wall_s_per_channel'] * 1e3:.1f} ms/channel")
    log(f"  BioSPPy on channels {bio_channels} …")
    bio = _peer_subprocess(python, "biosppy", bio_channels)
    out = {
        "signal": "16 ch x 600 s x 2000 Hz, seed 20240601 (ecosystem.md §4)",
        "emgtool": emg,
        "biosppy": bio,
    }
    if not skip_nk:
        log(f"  NeuroKit2 on channels {nk_channels} (slow) …")
        out["neurokit2"] = _peer_subprocess(python, "neurokit2", nk_channels)
    for tool in ("biosppy", "neurokit2"):
        doc = out.get(tool)
        if not doc or "error" in doc:
            continue
        chans = doc["channels"]
        doc["wall_s_per_channel_median"] = statistics.median(c["wall_s"] for c in chans)
        doc["cpu_s_per_channel_median"] = statistics.median(c["cpu_s"] for c in chans)
        doc["scores"] = _sum_scores(chans)
        doc["ratio_wall_vs_emgtool"] = doc["wall_s_per_channel_median"] / emg["wall_s_per_channel"]
        doc["ratio_cpu_vs_emgtool"] = doc["cpu_s_per_channel_median"] / emg["cpu_s_per_channel"]
        log(
            f"  {tool}: {doc['wall_s_per_channel_median']:.2f} s/channel = {doc['ratio_wall_vs_emgtool']:.0f}x emgtool"
        )
    return out


# --------------------------------------------------------------------------- memory
def memory_worker(path: str, hours: float | None = None) -> int:
    """Child process: analyse ``path`` (its first ``hours``), print peak RSS and timings as JSON."""
    _quiet()
    import threading

    import psutil

    from emgtool.pipeline.analyze import analyze

    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], proc.memory_info().rss)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    base = proc.memory_info().rss
    t0 = time.perf_counter()
    target = path
    if hours is not None:
        import dataclasses

        from emgtool.io import open_source

        src = open_source(path)
        # The first `hours` of the long file: one cached file serves every length.
        n = min(src.n_samples, int(round(hours * 3600 * src.fs)))
        if n < src.n_samples:
            # Without the path, the recording id hashes the samples, not the whole long file.
            target = dataclasses.replace(src, n_samples=n, meta={**src.meta, "path": None})
    an = analyze(target)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    ru = peak_rss_mb()  # not ru_maxrss: on Linux it carries the parent's peak across exec
    doc = {
        "rss_after_imports_mb": base / 2**20,
        "peak_rss_sampled_mb": peak[0] / 2**20,
        "ru_maxrss_mb": ru,
        "wall_s": wall,
        "n_samples_total": an.n_samples * len(an.channels),
        "hours": an.duration_s / 3600.0,
        "events": {str(k): int(v) for k, v in an.events["trial_type"].value_counts().items()},
    }
    print(json.dumps(doc))
    return 0


#: The child is stopped above this RSS, so a leak cannot starve the (shared) machine.
MEMORY_KILL_MB = 4096.0


def _memory_run(path: Path, hours: float | None = None, timeout_s: float | None = None) -> dict:
    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker-memory", str(path)]
            + ([] if hours is None else ["--worker-hours", str(hours)]),
            stdout=out,
            stderr=err,
            env=env,
        )
        ps = psutil.Process(proc.pid)
        t0 = time.perf_counter()
        peak, killed = 0.0, None
        while proc.poll() is None:
            try:
                peak = max(peak, ps.memory_info().rss / 2**20)
            except psutil.Error:
                pass
            if peak > MEMORY_KILL_MB:
                killed = f"stopped: RSS passed {MEMORY_KILL_MB:.0f} MB after {time.perf_counter() - t0:.0f} s"
            elif timeout_s is not None and time.perf_counter() - t0 > timeout_s:
                killed = (
                    f"stopped: still running after {timeout_s:.0f} s (RSS so far {peak:.0f} MB)"
                )
            if killed:
                proc.kill()
                proc.wait()
                return {"error": killed, "peak_mb": peak, "file": path.name}
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        return {"error": (stderr.strip().splitlines() or ["failed"])[-1]}
    doc = json.loads(stdout.strip().splitlines()[-1])
    doc["file"] = path.name
    doc["file_gb"] = doc["n_samples_total"] * 2 / 1e9  # EDF bytes of the part analysed
    doc["msamples_per_s"] = doc["n_samples_total"] / doc["wall_s"] / 1e6
    doc["peak_rss_parent_poll_mb"] = peak
    doc["peak_mb"] = max(doc["ru_maxrss_mb"], doc["peak_rss_sampled_mb"])
    return doc


#: Lengths tried for the long recording, longest first.
MEMORY_HOURS = (24.0, 12.0, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25)


def section_memory(cache: Path, hours: float, budget_s: float) -> dict:
    """Peak RSS analysing a long 16-ch file; shortened (and said so) if it cannot finish in time.

    A 6-minute probe first measures speed and memory; the long run is the
    longest of :data:`MEMORY_HOURS` (up to ``hours``) predicted to finish
    within ``budget_s``.  Comparing the two peaks shows whether memory grows
    with the length of the recording.
    """
    long_file = cached_edf(cache, "als-widespread", 16, hours * 60, tile=True)
    probe = _memory_run(long_file, hours=0.1)
    out: dict = {"probe_0_1h": probe, "hours_requested": hours, "budget_s": budget_s}
    if "error" in probe:
        out["error"] = probe["error"]
        return out
    n_per_hour = 16 * FS * 3600
    fits = [
        h
        for h in MEMORY_HOURS
        if h <= hours and h * n_per_hour / (probe["msamples_per_s"] * 1e6) <= budget_s
    ]
    if not fits:
        out["note"] = "even 15 min would not finish within the time budget; probe only"
        out.update({k: probe[k] for k in ("peak_mb", "msamples_per_s", "hours", "file_gb")})
        return out
    h = fits[0]
    if h < hours:
        out["note"] = (
            f"{hours:g} h would take ~{hours * n_per_hour / (probe['msamples_per_s'] * 1e6) / 60:.0f} min "
            f"at the probe's {probe['msamples_per_s']:.1f} M samples/s; ran {h:g} h instead"
        )
    log(f"  {h:g} h run …")
    out.update(_memory_run(long_file, hours=h, timeout_s=2.5 * budget_s))
    return out


# --------------------------------------------------------------------------- live
def _step_latency(scenario: str, seconds: float, chunk_s: float) -> dict:
    from emgtool.pipeline import flush, init_state, step
    from emgtool.simulate import simulate

    rec, _ = simulate(scenario, duration_s=seconds, seed=11)
    n = max(1, int(round(chunk_s * rec.fs)))
    st = init_state(rec.fs, rec.channels)
    lat = []
    c0 = time.process_time()
    for a in range(0, rec.n_samples, n):
        chunk = rec.slice(a, min(a + n, rec.n_samples))
        t0 = time.perf_counter()
        _evs, st = step(chunk, st)
        lat.append(time.perf_counter() - t0)
    flush(st)
    cpu = time.process_time() - c0
    lat_ms = np.array(lat) * 1e3
    # The first PROBE_S seconds are buffered, then processed at once (mains and
    # heart-rhythm detection): that one step is the start-up cost, reported apart.
    startup = int(np.argmax(lat_ms))
    steady = np.delete(lat_ms, startup)
    return {
        "channels": rec.n_channels,
        "seconds": seconds,
        "chunk_ms": n / rec.fs * 1e3,
        "steps": len(lat_ms),
        "step_ms_median": float(np.median(steady)),
        "step_ms_p95": float(np.percentile(steady, 95)),
        "step_ms_p99": float(np.percentile(steady, 99)),
        "step_ms_max_steady": float(steady.max()),
        "startup_step_ms": float(lat_ms[startup]),
        "cpu_share": float(lat_ms.sum() / 1e3 / seconds),
        "cpu_share_process_time": float(cpu / seconds),
    }


def _live_loop(scenario: str, seconds: float) -> dict:
    import threading

    from emgtool.acquisition.live import LiveOptions, run_live, sample_file_source
    from emgtool.io.write import write_edf
    from emgtool.simulate import simulate

    with tempfile.TemporaryDirectory(prefix="perf-live-") as tmp:
        rec, _ = simulate(scenario, duration_s=seconds, seed=12)
        path = Path(tmp) / "in.edf"
        write_edf(path, rec)
        src = sample_file_source(path, speed=0.0, chunk_s=0.05)
        opts = LiveOptions(out_dir=Path(tmp) / "out", view="off", write_report=False, fsync=True)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_live(src, opts, threading.Event())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "channels": rec.n_channels,
        "seconds": seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "realtime_factor": seconds / wall,
        "cpu_share": cpu / seconds,
        "step_ms_median": res.get("step_ms_median"),
        "latency_ms_median": res.get("latency_ms_median"),
    }


def _bench_live_run(n_ch: int, seconds: float) -> dict | None:
    """The live helper's per-block path (benchmarks/bench_live.py), if present."""
    script = HERE / "bench_live.py"
    if not script.exists():
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmarks_bench_live", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with tempfile.TemporaryDirectory(prefix="perf-live-") as tmp:
        r = mod.run(n_ch, float(FS), seconds, LIVE_CHUNK_MS, Path(tmp))
    r["source"] = "benchmarks/bench_live.py: CSV decode, EDF quantise, EDF write + fsync, step"
    r["cpu_share"] = r.get("cpu_share_of_one_core")
    return r


#: The live loop's block (emgtool record --chunk-ms default).
LIVE_CHUNK_MS = 40.0


def section_live(seconds: float) -> dict:
    out = {}
    for scn, ch in (("als-widespread", 16), ("hd-grid", 64)):
        log(f"  step latency, {ch} channels …")
        out[f"step_{ch}ch"] = _step_latency(scn, seconds, LIVE_CHUNK_MS / 1000)
        try:
            log(f"  live path per block, {ch} channels …")
            r = _bench_live_run(ch, seconds)
            out[f"loop_{ch}ch"] = r if r is not None else _live_loop(scn, seconds)
        except Exception as e:  # the live helper's code may be missing or changed
            out[f"loop_{ch}ch"] = {"error": f"{type(e).__name__}: {e}"}
    return out


# --------------------------------------------------------------------------- batch
def section_batch(files: int, repeats: int) -> dict:
    script = HERE / "bench_batch.py"
    if not script.exists():
        return {"skipped": "benchmarks/bench_batch.py not in this checkout"}
    with tempfile.TemporaryDirectory(prefix="perf-batch-") as tmp:
        out = Path(tmp) / "batch.json"
        args = ["--files", str(files), "--repeats", str(repeats)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        res = subprocess.run(
            [sys.executable, str(script), *args, "--out", str(out)],
            capture_output=True,
            text=True,
            env=env,
        )
        if res.returncode != 0 or not out.exists():
            return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- report
def _f(v, d: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:,.{d}f}"


def _ok(cond) -> str:
    if cond is None:
        return "–"
    return "pass" if cond else "**FAIL**"


def summary_rows(res: dict) -> list[list[str]]:
    rows: list[list[str]] = []
    e = res.get("e2e")
    if e:
        rows.append(
            [
                f"End to end: `analyze` 64 ch × 2048 Hz × {e['n_samples_total'] / 64 / FS / 60:g} min EDF",
                f"{_f(e['analyze_msamples_per_s'])} M samples/s (median {_f(e['analyze_median_s'], 2)} s of {e['repeats']})",
                f"≥ {TARGETS['e2e_msamples_per_s']:g} M samples/s",
                _ok(e["analyze_msamples_per_s"] >= TARGETS["e2e_msamples_per_s"]),
            ]
        )
        rows.append(
            [
                "Floor, same run: read + one 20–450 Hz sosfilt pass (float32)",
                f"{_f(e['floor_msamples_per_s'])} M samples/s (read alone {_f(e['read_msamples_per_s'])}, sosfilt alone {_f(e['sosfilt_msamples_per_s'])})",
                "",
                "",
            ]
        )
        rows.append(
            [
                "`analyze` / floor",
                f"{_f(e['analyze_vs_floor'], 2)}×",
                f"≤ {TARGETS['e2e_vs_floor_max']:g}×",
                _ok(e["analyze_vs_floor"] <= TARGETS["e2e_vs_floor_max"]),
            ]
        )
        if "cli_error" in e:
            rows.append(
                ["`emgtool analyze FILE --out DIR`", "error: " + e["cli_error"][:100], "", "–"]
            )
        if "cli_median_s" in e:
            rows.append(
                [
                    "`emgtool analyze FILE --out DIR` (start-up, imports, report) / floor",
                    f"{_f(e['cli_vs_floor'], 2)}× ({_f(e['n_samples_total'] / e['cli_median_s'] / 1e6)} M samples/s)",
                    "",
                    "",
                ]
            )
    p = res.get("peers")
    if p:
        emg = p["emgtool"]
        for tool, key in (
            ("BioSPPy `emg.emg`", "biosppy"),
            ("NeuroKit2 `emg_process`", "neurokit2"),
        ):
            doc = p.get(key)
            target = TARGETS["vs_biosppy_min"] if key == "biosppy" else TARGETS["vs_neurokit2_min"]
            if not doc:
                continue
            if "error" in doc:
                rows.append([f"vs {tool}", "error: " + doc["error"][:80], f"≥ {target:g}×", "–"])
                continue
            rows.append(
                [
                    f"vs {tool}, per channel, 16 ch × 10 min × 2 kHz ({len(doc['channels'])} ch timed)",
                    f"{_f(doc['ratio_wall_vs_emgtool'], 0)}× faster wall, {_f(doc['ratio_cpu_vs_emgtool'], 0)}× CPU",
                    f"≥ {target:g}×",
                    _ok(doc["ratio_wall_vs_emgtool"] >= target),
                ]
            )
        s = emg["scores_all_events"]
        rows.append(
            [
                "Burst hits on that signal (23 per channel)",
                "emgtool "
                + f"{s['hits']}/{s['n_true']} ({s['false_detections']} false)"
                + "".join(
                    f"; {k} {p[k]['scores']['hits']}/{p[k]['scores']['n_true']} ({p[k]['scores']['false_detections']} false)"
                    for k in ("biosppy", "neurokit2")
                    if p.get(k) and "scores" in p[k]
                ),
                "",
                "",
            ]
        )
    m = res.get("memory")
    if m:
        if "error" in m:
            over = m.get("peak_mb") and m["peak_mb"] > TARGETS["peak_memory_mb_max"]
            rows.append(
                [
                    "Peak memory, long 16-ch recording"
                    + (f" ({m['file']})" if m.get("file") else ""),
                    m["error"][:120],
                    "≤ 1 GB",
                    "**FAIL**" if over else "–",
                ]
            )
        else:
            rows.append(
                [
                    f"Peak memory, `analyze` of a {m['hours']:g}-h 16-ch 2048 Hz EDF ({m['file_gb']:.2f} GB)",
                    f"{_f(m['peak_mb'], 0)} MB ({_f(m['msamples_per_s'])} M samples/s"
                    + (
                        f"; 6-min probe {_f(m['probe_0_1h']['peak_mb'], 0)} MB"
                        if m.get("probe_0_1h")
                        and m["probe_0_1h"] is not m
                        and "peak_mb" in m["probe_0_1h"]
                        else ""
                    )
                    + ")"
                    + (f". {m['note']}" if m.get("note") else ""),
                    "≤ 1 GB",
                    # A short probe alone cannot show that memory is bounded.
                    _ok(m["peak_mb"] <= TARGETS["peak_memory_mb_max"])
                    if "probe only" not in m.get("note", "")
                    or m["peak_mb"] > TARGETS["peak_memory_mb_max"]
                    else "–",
                ]
            )
    lv = res.get("live")
    if lv:
        for ch in (16, 64):
            s = lv.get(f"step_{ch}ch")
            if s:
                rows.append(
                    [
                        f"Live `step`, {ch} ch, {s['chunk_ms']:.0f}-ms chunks",
                        f"median {_f(s['step_ms_median'], 2)} ms, p99 {_f(s['step_ms_p99'], 2)} ms "
                        f"({_f(s['step_ms_median'] / s['chunk_ms'] * 100, 1)} % of the chunk); CPU share {_f(s['cpu_share'] * 100, 1)} %",
                        "",
                        "",
                    ]
                )
            lp = lv.get(f"loop_{ch}ch")
            if lp and "error" not in lp:
                if "total_ms_median" in lp:  # bench_live.py
                    text = (
                        f"median {_f(lp['total_ms_median'], 2)} ms per {lp['chunk_ms']:g}-ms block "
                        f"(decode {_f(lp['decode_ms'], 2)}, EDF write+fsync "
                        f"{_f(lp['write_ms'], 2)}, step {_f(lp['step_ms'], 2)}); "
                        f"CPU {_f(lp['cpu_share'] * 100, 1)} % of one core; provisional display "
                        f"median {_f(lp.get('provisional_delay_ms_median'), 0)} ms after the "
                        f"last sample ({_f(100 * lp.get('decided_shown_within_100ms_after_arrival', float('nan')), 0)} % "
                        f"of fasciculations on screen ≤ 100 ms after it arrived, "
                        f"{lp.get('provisional_withdrawn', '?')} withdrawn); decision median "
                        f"{_f(lp['event_delay_ms_median'], 0)} ms"
                    )
                else:
                    text = (
                        f"CPU share {_f(lp['cpu_share'] * 100, 1)} % of real time; "
                        f"{_f(lp['realtime_factor'], 0)}× faster than real time"
                    )
                rows.append(
                    [f"Live path (decode → EDF with fsync → detect), {ch} ch", text, "", ""]
                )
            elif lp:
                rows.append([f"Live path, {ch} ch", "error: " + lp["error"][:80], "", "–"])
    b = res.get("batch")
    if b:
        if "speedup_2_vs_1" in b:
            rows.append(
                [
                    f"Batch, {b['files']} files, 1 → 2 Dask workers",
                    f"{_f(b['speedup_2_vs_1'], 2)}× speed-up",
                    "≥ 1.7× (issue 6)",
                    _ok(b["speedup_2_vs_1"] >= 1.7),
                ]
            )
        else:
            rows.append(
                [
                    "Batch, 1 → 2 workers",
                    b.get("skipped") or "error: " + b.get("error", "")[:80],
                    "",
                    "–",
                ]
            )
    return rows


def stage_rows(res: dict) -> list[list[str]]:
    st = res.get("stages")
    if not st:
        return []
    return [
        [k, _f(v["share"] * 100, 1) + " %", _f(v["msamples_per_s"], 0)]
        for k, v in st["stages"].items()
    ]


def md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def text_table(head: list[str], rows: list[list[str]]) -> str:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda r: "  ".join(c.ljust(x) for c, x in zip(r, w, strict=False))  # noqa: E731
    return "\n".join([fmt(head), "  ".join("-" * x for x in w), *(fmt(r) for r in rows)])


def update_docs(doc: Path, res: dict) -> None:
    meta = res["meta"]
    parts = [
        MARK_START,
        "",
        f"Measured {meta['date']} with `{meta['command']}` (emgtool {meta['version']}, Python "
        f"{meta['python']}, numpy {meta['numpy']}, scipy {meta['scipy']}; {meta['cpus']} CPUs, "
        f"load average {meta['load_start']:.1f} at the start, {meta['load_end']:.1f} at the end)"
        + (
            "; from earlier runs: "
            + ", ".join(
                f"{k} ({meta['section_dates'].get(k, '?')})"
                for k in meta["merged_from_earlier_run"]["sections"]
            )
            + "."
            if meta.get("merged_from_earlier_run")
            else "."
        ),
        "",
        md_table(["Measure", "Result", "Target", ""], summary_rows(res)),
        "",
    ]
    if res.get("stages"):
        st = res["stages"]
        parts += [
            f"Per stage (one instrumented run over the same 64-channel file, {st['n_samples_total'] / 1e6:.0f} M samples; "
            "exclusive time, so the shares add up to 100 %):",
            "",
            md_table(["Stage", "Share of time", "M samples/s"], stage_rows(res)),
            "",
        ]
    p = res.get("peers")
    if p:
        rows = []
        emg = p["emgtool"]
        rows.append(
            [
                "emgtool (all 16 channels in one call)",
                _f(emg["wall_s_per_channel"], 3),
                _f(emg["cpu_s_per_channel"], 3),
                "1",
                f"{emg['scores_all_events']['hits']}/{emg['scores_all_events']['n_true']}",
                str(emg["scores_all_events"]["false_detections"]),
            ]
        )
        for key, name in (
            ("biosppy", "BioSPPy `emg.emg(show=False)`"),
            ("neurokit2", "NeuroKit2 `emg_process` (defaults)"),
        ):
            d = p.get(key)
            if not d or "error" in d:
                continue
            rows.append(
                [
                    f"{name}, {len(d['channels'])} ch one by one",
                    _f(d["wall_s_per_channel_median"], 2),
                    _f(d["cpu_s_per_channel_median"], 2),
                    _f(d["ratio_wall_vs_emgtool"], 0),
                    f"{d['scores']['hits']}/{d['scores']['n_true']}",
                    str(d["scores"]["false_detections"]),
                ]
            )
        parts += [
            "Peers on the benchmark recipe's signal (ecosystem.md §4; the recipe's unit noise "
            f"fed to emgtool as {emg['uv_per_unit']:g} µV RMS). Per-channel medians; a hit is an "
            "onset within [true onset − 100 ms, true offset] (emgtool: any event; its sustained-activity "
            f"detector alone found {emg['scores_sustained_only']['hits_cramp']}/{3 * emg['scores_sustained_only']['n_channels']} cramps "
            f"with {emg['scores_sustained_only']['false_detections']} false):",
            "",
            md_table(["Tool", "Wall s/ch", "CPU s/ch", "× emgtool", "Hits", "False"], rows),
            "",
        ]
        vers = {
            k: p[k].get("versions")
            for k in ("biosppy", "neurokit2")
            if p.get(k) and "versions" in p[k]
        }
        if vers:
            parts += [
                "Peer environment: "
                + "; ".join(
                    f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items() if b)
                    for k, v in vers.items()
                )
                + ".",
                "",
            ]
    parts.append(MARK_END)
    block = "\n".join(parts)
    replace_marked_block(doc, block, MARK_START, MARK_END)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="fewer repeats, 1-h memory file, fewer peer channels"
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "emgtool-bench-cache",
        help="folder for the generated EDF files (kept between runs)",
    )
    p.add_argument("--repeats", type=int, help="end-to-end repeats (default 3, quick 1)")
    p.add_argument(
        "--minutes",
        type=float,
        default=30.0,
        help="length of the 64-channel end-to-end file (default 30)",
    )
    p.add_argument(
        "--peers-python",
        default=os.environ.get("EMGTOOL_PEERS_PYTHON", sys.executable),
        help="interpreter with neurokit2/biosppy/peakutils installed (default: this one)",
    )
    p.add_argument("--nk-channels", default=None, help="NeuroKit2 channels (default 0,1; quick 0)")
    p.add_argument(
        "--memory-hours",
        type=float,
        default=None,
        help="long-recording length (default 24; quick 1)",
    )
    p.add_argument(
        "--memory-budget-s",
        type=float,
        default=900.0,
        help="longest allowed long-recording run; the length is reduced to fit (default 900)",
    )
    p.add_argument(
        "--live-seconds",
        type=float,
        default=None,
        help="signal per live test (default 120; quick 30)",
    )
    p.add_argument(
        "--skip",
        default="",
        help=f"comma list of sections to skip: {','.join(SECTIONS)},neurokit2,cli",
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "performance.json")
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the sections skipped in this run from the existing --out file (rerun one section)",
    )
    p.add_argument("--batch-files", type=int, help="files in the batch test (default 20; quick 8)")
    p.add_argument("--batch-repeats", type=int, help="batch repeats (default 3; quick 1)")
    p.add_argument("--worker-memory", help=argparse.SUPPRESS)
    p.add_argument("--worker-hours", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker_memory:
        return memory_worker(args.worker_memory, args.worker_hours)
    _quiet()
    import scipy

    from emgtool._version import __version__

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    repeats = args.repeats or (1 if args.quick else 3)
    mem_h = args.memory_hours or (1.0 if args.quick else 24.0)
    live_s = args.live_seconds or (30.0 if args.quick else 120.0)
    nk_ch = args.nk_channels or ("0" if args.quick else "0,1")
    res: dict = {}
    res["meta"] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/performance.py"
        + (" --quick" if args.quick else "")
        + (f" --skip {args.skip}" if args.skip else "")
        + (" --merge" if args.merge else ""),
        "version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_start": os.getloadavg()[0],
        "targets": TARGETS,
    }
    t_all = time.perf_counter()
    big = None
    if {"e2e", "stages"} - skip:
        big = cached_edf(args.cache, "hd-grid", 64, args.minutes)
    if "e2e" not in skip:
        log("end to end vs floor …")
        res["e2e"] = section_e2e(big, repeats, with_cli="cli" not in skip)
    if "stages" not in skip:
        log("per-stage run …")
        res["stages"] = section_stages(big)
    if "peers" not in skip:
        log("peers …")
        res["peers"] = section_peers(
            args.peers_python,
            nk_ch,
            "0-3" if args.quick else "0-15",
            repeats=max(repeats, 3),
            skip_nk="neurokit2" in skip,
        )
    if "memory" not in skip:
        log(f"memory ({mem_h:g} h, 16 ch) …")
        res["memory"] = section_memory(args.cache, mem_h, args.memory_budget_s)
    if "live" not in skip:
        log("live …")
        res["live"] = section_live(live_s)
    if "batch" not in skip:
        log("batch 1 vs 2 workers …")
        res["batch"] = section_batch(
            args.batch_files or (8 if args.quick else 20),
            args.batch_repeats or (1 if args.quick else 3),
        )
    res["meta"]["wall_s"] = time.perf_counter() - t_all
    res["meta"]["section_dates"] = {k: res["meta"]["date"] for k in SECTIONS if k in res}
    res["meta"]["load_end"] = os.getloadavg()[0]
    print(text_table(["Measure", "Result", "Target", ""], summary_rows(res)))
    if res.get("stages"):
        print()
        print(text_table(["Stage", "Share", "M samples/s"], stage_rows(res)))
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text())
        kept = [k for k in SECTIONS if k in old and k not in res]
        old_meta = old.get("meta", {})
        old_dates = old_meta.get("section_dates", {})
        for k in kept:
            res[k] = old[k]
            res["meta"]["section_dates"][k] = old_dates.get(k, old_meta.get("date"))
        res["meta"]["merged_from_earlier_run"] = {"sections": kept}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(json_safe(res), indent=1) + "\n")
    log(f"wrote {args.out}")
    if not args.no_docs:
        update_docs(ROOT / "docs" / "performance.md", res)
        log("updated docs/performance.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
