"""Peak memory and throughput of iterating a 24-hour EDF in chunks.

Creates (with :class:`emgtool.io.edf_stream.EdfStreamWriter`, in a child
process and in bounded memory) a 24-hour, 16-channel, 2048 Hz EDF+ file
(about 5.7 GB), then iterates it with ``Source.chunks`` computing a trivial
reduction (per-channel sum of squares) and checking a sample-counter channel,
so a lost or duplicated sample would fail the run.  Reports peak RSS
(psutil, sampled per chunk, and ``ru_maxrss``) and throughput; the issue's
target is a peak under 500 MB.

Usage::

    python benchmarks/bench_read_memory.py                 # temp dir, deleted afterwards
    python benchmarks/bench_read_memory.py --path big.edf  # keep/reuse this file
    python benchmarks/bench_read_memory.py --hours 1       # quicker run

Writes ``benchmarks/results/read_memory.json``.  The generated file is
written with ``fsync=False`` (per-record fsync would add ~86 400 syncs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import peak_rss_mb  # noqa: E402

FS = 2048
N_CH = 16
COUNTER_RANGE = (-32768.0, 32767.0)  # physical == digital: the counter is exact


def write_file(path: Path, hours: float, block_s: int = 60) -> None:
    """Write the test recording block by block (memory bounded by one block)."""
    from emgtool.io.edf_stream import EdfStreamWriter

    rng = np.random.default_rng(0)
    n_total = int(hours * 3600 * FS)
    n_blk = block_s * FS
    noise = rng.normal(0, 30, (N_CH, n_blk))  # reused: content does not matter here
    labels = ["Counter"] + [f"Ch {i:02d}" for i in range(1, N_CH)]
    ranges = [COUNTER_RANGE] + [(-1000.0, 1000.0)] * (N_CH - 1)
    with EdfStreamWriter(path, FS, labels, physical_range_uv=ranges, fsync=False) as w:
        for a in range(0, n_total, n_blk):
            m = min(n_blk, n_total - a)
            blk = noise[:, :m].copy()
            blk[0] = (np.arange(a, a + m) % 65536) - 32768
            w.write(blk)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def ru_maxrss_mb() -> float:
    return peak_rss_mb()


def iterate(path: Path, chunk_s: float) -> dict:
    import warnings

    from emgtool.io import open_source

    base = rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "Counter" label is not a muscle
        src = open_source(path)
    chunk = int(round(chunk_s * src.fs))
    sumsq = np.zeros(src.n_channels)
    peak = rss_mb()
    expected_next = 0
    ok = True
    t_read = 0.0
    it = src.chunks(chunk)
    t0 = time.perf_counter()
    for k in range(src.n_samples):  # bounded; breaks at the end of the source
        t1 = time.perf_counter()
        rec = next(it, None)
        t_read += time.perf_counter() - t1
        if rec is None:
            break
        x = rec.data
        sumsq += np.einsum("ij,ij->i", x, x)
        want = (np.arange(expected_next, expected_next + x.shape[1]) % 65536) - 32768
        ok &= bool(np.array_equal(x[0], want))
        expected_next += x.shape[1]
        if k % 50 == 0:
            peak = max(peak, rss_mb())
    dt = time.perf_counter() - t0
    peak = max(peak, rss_mb())
    n = src.n_samples * src.n_channels
    return {
        "n_samples_per_channel": src.n_samples,
        "n_channels": src.n_channels,
        "fs_hz": src.fs,
        "chunk_s": chunk_s,
        "total_s": round(dt, 2),
        "read_s": round(t_read, 2),
        "read_msamples_per_s": round(n / t_read / 1e6, 1),
        "read_mb_per_s": round(os.path.getsize(path) / t_read / 1e6, 1),
        "total_msamples_per_s": round(n / dt / 1e6, 1),
        "rss_before_open_mb": round(base, 1),
        "peak_rss_mb": round(peak, 1),
        "ru_maxrss_mb": round(ru_maxrss_mb(), 1),
        "counter_ok": ok and expected_next == src.n_samples,
        "rms_uv_ch1": round(float(np.sqrt(sumsq[1] / src.n_samples)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", type=Path, help="EDF to create (if missing) and read; kept")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--chunk-s", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "read_memory.json")
    ap.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write_only:
        write_file(args.path, args.hours)
        return 0

    tmp = None
    path = args.path
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="emgtool-bench-")
        path = Path(tmp.name) / "day.edf"
    try:
        write_s = None
        if not path.exists():
            t0 = time.perf_counter()
            # A child process, so the writer's memory does not count in our peak.
            env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
            cmd = [
                sys.executable,
                __file__,
                "--write-only",
                "--path",
                str(path),
                "--hours",
                str(args.hours),
            ]
            subprocess.run(cmd, check=True, env=env)
            write_s = round(time.perf_counter() - t0, 1)
        res = {
            "file_gb": round(os.path.getsize(path) / 1e9, 2),
            "hours": args.hours,
            "write_s": write_s,
            **iterate(path, args.chunk_s),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        }
        res["peak_under_500mb"] = max(res["peak_rss_mb"], res["ru_maxrss_mb"]) < 500
    finally:
        if tmp is not None:
            tmp.cleanup()
    for k, v in res.items():
        print(f"{k:28s} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if res["peak_under_500mb"] and res["counter_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
