"""The memory benchmark script still runs (a few seconds of data, not 24 hours).

It runs in its own interpreter: peak RSS is a per-process figure, and this test
process already holds whatever earlier tests loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_read_memory_smoke(tmp_path):
    out = tmp_path / "r.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_read_memory.py"),
            "--hours",
            "0.005",
            "--path",
            str(tmp_path / "b.edf"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["counter_ok"] and res["peak_under_500mb"]
    assert res["n_samples_per_channel"] == int(0.005 * 3600 * 2048)
