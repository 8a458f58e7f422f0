"""A small but real per-file analysis with the contract of ``analyze_to_dir``.

Used by the batch tests so they exercise the engine in a few seconds,
independent of the detector: it reads the file with emgtool's reader
(a corrupt file raises ReadError), counts threshold crossings per site and
writes a summary.json with the issue-4 keys.

Test hooks (environment, inherited by Dask workers):
- ``EMGTOOL_TEST_SLEEP_S``: extra seconds per file (so kills land mid-run);
- ``EMGTOOL_TEST_LOG``: folder; one line per call is appended to calls.txt:
  file name, pid, ``emgtool=<EMGTOOL_NUM_THREADS> blas=<most BLAS/OpenMP threads>``;
- ``EMGTOOL_TEST_POISON=1``: a file whose name contains "poison" kills its worker.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np


def _threads() -> str:
    """What this analysis may use: the pipeline's thread setting and BLAS/OpenMP threads."""
    from threadpoolctl import threadpool_info

    pools = max((p["num_threads"] for p in threadpool_info()), default=0)
    return f"emgtool={os.environ.get('EMGTOOL_NUM_THREADS', '-')} blas={pools}"


def analyze_to_dir(path, out_dir, *, config, overwrite=False, keep_identity=False, **input_kwargs):
    from emgtool.io import open_source

    path = Path(path)
    if os.environ.get("EMGTOOL_TEST_LOG"):
        with open(Path(os.environ["EMGTOOL_TEST_LOG"]) / "calls.txt", "a") as f:
            f.write(f"{path.name} {os.getpid()} {_threads()}\n")
    if os.environ.get("EMGTOOL_TEST_POISON") == "1" and "poison" in path.name:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(os.environ.get("EMGTOOL_TEST_SLEEP_S", "0")))
    src = open_source(path, **input_kwargs)
    x = src.read().data.astype(np.float64)
    sd = np.median(np.abs(x - np.median(x, axis=1, keepdims=True)), axis=1) / 0.6745
    thr = config.fasc_threshold_sd * np.maximum(sd, 1e-9)
    above = x > thr[:, None]
    onsets = (above[:, 1:] & ~above[:, :-1]).sum(axis=1)
    groups: dict = {}
    for ch, n in zip(src.channels, onsets, strict=True):
        g = groups.setdefault(
            (ch.site, ch.side),
            {
                "site": ch.site,
                "side": ch.side,
                "region": ch.region,
                "channels": [],
                "fasciculation_count": 0,
            },
        )
        g["channels"].append(ch.label)
        g["fasciculation_count"] = max(g["fasciculation_count"], int(n))
    rest_s = src.duration_s
    sites = []
    for g in groups.values():
        g["rest_s"] = rest_s
        g["fasciculation_rate_per_min"] = g["fasciculation_count"] / (rest_s / 60)
        g["rate_ci95_per_min"] = [0.0, g["fasciculation_rate_per_min"] * 2]
        g["cramp_count"] = 0
        g["quality"] = []
        sites.append(g)
    regions = sorted({s["region"] for s in sites if s["fasciculation_count"] > 0})
    pattern = "none" if not regions else ("focal" if len(regions) == 1 else "widespread")
    summary = {
        "recording": {"duration_s": rest_s, "fs": src.fs, "file": path.name},
        "sites": sites,
        "spread": {"regions_with_fasciculations": regions, "pattern": pattern},
        "config": config.to_dict(),
    }
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "events.tsv").write_text("onset\tduration\ttrial_type\n")
