"""The memory benchmark script still runs (a few seconds of data, not 24 hours)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_read_memory_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "bench", ROOT / "benchmarks" / "bench_read_memory.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    rc = bench.main(["--hours", "0.005", "--path", str(tmp_path / "b.edf"), "--out", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0 and res["counter_ok"] and res["peak_under_500mb"]
    assert res["n_samples_per_channel"] == int(0.005 * 3600 * 2048)
