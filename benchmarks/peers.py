"""Peer EMG libraries on the shared benchmark signal: NeuroKit2 and BioSPPy.

Neither library detects fasciculations; both find activity bursts, one
channel at a time.  This module builds the deterministic burst signal of the
benchmark recipe (16 channels x 10 min x 2 kHz of unit noise with 23 bursts
per channel: 20 twitches of 30 ms and 3 "cramps" of 5 s), runs a peer on it
channel by channel and scores the burst onsets it reports.

It imports neither emgtool nor anything but numpy at module level, so it runs
in any environment that has the peer installed: NeuroKit2 0.2.13 requires
pandas < 3, so ``benchmarks/performance.py`` can run it under a separate
interpreter (``--peers-python``).

Run alone (prints JSON)::

    python benchmarks/peers.py biosppy --channels 0-15
    python benchmarks/peers.py neurokit2 --channels 0,1

Timing: wall (``perf_counter``) and CPU (``process_time``) per channel call;
imports and signal generation are excluded.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

SEED = 20240601
FS_HZ = 2000
DURATION_S = 600
N_CHANNELS = 16
N_BURSTS = 23
#: A hit is a detected onset within [true onset - 100 ms, true offset].
HIT_PRE_S = 0.100


def make_signal(
    n_channels: int = N_CHANNELS, fs: int = FS_HZ, duration_s: int = DURATION_S, seed: int = SEED
) -> tuple[np.ndarray, list[list[tuple[float, float, str]]]]:
    """The benchmark recipe's signal and its bursts.

    Returns
    -------
    x : ndarray, shape (n_channels, fs * duration_s), float64, unit-variance noise
    bursts : per channel, a list of ``(onset_s, offset_s, kind)`` with kind
        ``"cramp"`` (5 s, x4 gain) or ``"twitch"`` (30 ms, x8 gain).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(n_channels, fs * duration_s))
    bursts: list[list[tuple[float, float, str]]] = []
    for ch in range(n_channels):
        slots = np.sort(rng.choice(np.arange(1, duration_s // 10), size=N_BURSTS, replace=False))
        slots = slots * 10.0
        mine = []
        for i, t0 in enumerate(slots):
            t0 += rng.uniform(0, 3)
            length, gain = (0.030, 8.0) if i % 8 else (5.0, 4.0)  # twitch / cramp
            x[ch, int(t0 * fs) : int((t0 + length) * fs)] *= gain
            mine.append((float(t0), float(t0 + length), "twitch" if i % 8 else "cramp"))
        bursts.append(mine)
    return x, bursts


def score_onsets(onsets_s: np.ndarray, bursts: list[tuple[float, float, str]]) -> dict:
    """True bursts hit (each at most once) and detections that hit nothing."""
    onsets_s = np.sort(np.asarray(onsets_s, dtype=float))
    lo = np.array([b[0] - HIT_PRE_S for b in bursts])
    hi = np.array([b[1] for b in bursts])
    kind = np.array([b[2] for b in bursts])
    a = np.searchsorted(onsets_s, lo, side="left")
    b = np.searchsorted(onsets_s, hi, side="right")
    hit = b > a
    inside = np.zeros(len(onsets_s), bool)
    for s, e in zip(a, b, strict=True):
        inside[s:e] = True
    return {
        "detections": int(len(onsets_s)),
        "hits": int(hit.sum()),
        "hits_twitch": int(hit[kind == "twitch"].sum()),
        "hits_cramp": int(hit[kind == "cramp"].sum()),
        "false_detections": int((~inside).sum()),
    }


def run_biosppy(x1: np.ndarray, fs: float) -> np.ndarray:
    """``biosppy.signals.emg.emg`` on one channel → burst onsets (s)."""
    from biosppy.signals import emg

    _ts, _filtered, onsets = emg.emg(signal=x1, sampling_rate=float(fs), show=False)
    # BioSPPy returns onsets and offsets interleaved: onsets are the even entries.
    return np.asarray(onsets)[0::2] / fs


def run_neurokit2(x1: np.ndarray, fs: float) -> np.ndarray:
    """``neurokit2.emg_process`` (defaults) on one channel → burst onsets (s)."""
    import neurokit2 as nk

    signals, _info = nk.emg_process(x1, sampling_rate=int(fs))
    return np.flatnonzero(signals["EMG_Onsets"].to_numpy() > 0) / fs


RUNNERS = {"biosppy": run_biosppy, "neurokit2": run_neurokit2}


def _versions(tool: str) -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for pkg in ("scipy", "pandas", tool):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _parse_channels(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tool", choices=sorted(RUNNERS))
    p.add_argument("--channels", default="0-15", help="channel indices, e.g. 0-15 or 0,3")
    p.add_argument("--duration", type=int, default=DURATION_S, help="signal length in s")
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    channels = _parse_channels(args.channels)
    x, bursts = make_signal(duration_s=args.duration)
    runner = RUNNERS[args.tool]
    runner(x[0, : FS_HZ * 2].copy(), FS_HZ)  # warm-up: imports, caches
    per = []
    for ch in channels:
        sig = np.ascontiguousarray(x[ch])
        t0, c0 = time.perf_counter(), time.process_time()
        onsets = runner(sig, FS_HZ)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        per.append(
            {"channel": ch, "wall_s": wall, "cpu_s": cpu, **score_onsets(onsets, bursts[ch])}
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    json.dump(
        {
            "tool": args.tool,
            "duration_s": args.duration,
            "fs_hz": FS_HZ,
            "channels": per,
            "peak_rss_mb": rss_mb,
            "versions": _versions(args.tool),
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
