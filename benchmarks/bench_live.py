"""Live-path cost: per-chunk latency, CPU share of one core, and event delay.

Streams a simulated recording through exactly what ``emgtool record`` does
per block (CSV-v1 text decoding, scaling, EDF quantisation, the append-only
EDF writer with fsync, the detection pipeline ``step``) in 80-ms chunks as if
they arrived in real time, and prints medians.

Targets (issue 5): ≤ 25 % of one core for 16 channels at 2 kHz; events
≤ 100 ms after the last sample of the potential arrives.

Run:  python benchmarks/bench_live.py [--seconds 30] [--chunk-ms 80]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def run(n_ch: int, fs: float, seconds: float, chunk_ms: float, tmp: Path) -> dict:
    from emgtool.acquisition import live, protocols
    from emgtool.acquisition.protocols import csvline
    from emgtool.io.edf_stream import EdfStreamWriter
    from emgtool.pipeline import flush, init_state, step
    from emgtool.pipeline.core import PROBE_S, provisional
    from emgtool.recording import Recording
    from emgtool.simulate import simulate

    rec, _ = simulate("als-widespread", seconds, 1, fs=fs)
    data = np.tile(rec.data, (-(-n_ch // rec.n_channels), 1))[:n_ch]
    labels = (rec.labels * (-(-n_ch // rec.n_channels)))[:n_ch]
    channels = [c for c in (rec.channels * (-(-n_ch // rec.n_channels)))[:n_ch]]
    channels = [
        type(c)(f"{c.label[:12]}{i:02d}", c.site, c.side, c.region) for i, c in enumerate(channels)
    ]
    chunk_n = int(round(chunk_ms / 1000 * fs))
    # the bytes a CSV-v1 device would send, cut into the chunks that arrive
    payload = [
        csvline.encode(data[:, a : a + chunk_n], fs, a, decimals=1)
        for a in range(0, data.shape[1], chunk_n)
    ]
    header = csvline.encode_header(
        fs, n_ch, "uV", labels=",".join(x.replace(" ", "_") for x in labels)
    )
    dec = protocols.make_decoder("csv", at_line_start=True)
    _x, _c, dec = protocols.feed(header, dec)
    writer = EdfStreamWriter(
        tmp / f"bench{n_ch}.edf",
        fs,
        [c.label for c in channels],
        physical_range_uv=live.PHYSICAL_RANGE_UV,
        fsync=True,
        annotation_bytes=live.ANNOTATION_BYTES,
        overwrite=True,
    )
    st = init_state(fs, channels)
    t_dec, t_write, t_step, t_total = [], [], [], []
    delays, delays_arrived = [], []  # after the last sample was sampled / arrived
    prov, prov_arrived = [], []  # the same for provisional display
    shown: dict = {}  # key -> delay after arrival when first shown (s)
    first_shown = []  # per decided fasciculation: that delay
    n_withdrawn = n_confirmed = 0
    open_keys: set = set()
    cpu0 = time.process_time()
    done = 0
    for blob in payload:
        t0 = time.perf_counter()
        x, _c, dec = protocols.feed(blob, dec)
        off, scale = protocols.scale_uv(dec)
        uv = live.quantize_like_edf((x - off[:, None]) * scale[:, None], live.PHYSICAL_RANGE_UV)
        t1 = time.perf_counter()
        writer.write(uv)
        t2 = time.perf_counter()
        evs, st = step(Recording(uv, fs, tuple(channels), first_sample=done), st)
        t3 = time.perf_counter()
        done += uv.shape[1]
        t_dec.append(t1 - t0)
        t_write.append(t2 - t1)
        t_step.append(t3 - t2)
        t_total.append(t3 - t0)
        arrival_of_chunk_end = done / fs  # in stream time
        now = arrival_of_chunk_end + (t3 - t0)

        def arrived(stop: int) -> float:  # the chunk holding sample stop - 1 has arrived
            return -(-stop // chunk_n) * chunk_n / fs

        for e in evs:
            if e["kind"] == "fasciculation" and e["stop"] > PROBE_S * fs:
                delays.append(now - e["stop"] / fs)
                delays_arrived.append(now - arrived(e["stop"]))
        cur = {(p["site_i"], p["peak"]): p for p in provisional(st)}
        decided = {(e["site_i"], e["peak"]): e for e in evs if e["kind"] == "fasciculation"}
        for key, p in [*cur.items(), *decided.items()]:
            if key not in shown:
                shown[key] = now - arrived(p["stop"])
                open_keys.add(key)
                if p["stop"] > PROBE_S * fs:
                    prov.append(now - p["stop"] / fs)
                    prov_arrived.append(now - arrived(p["stop"]))
        for key in list(open_keys):
            if key in decided:
                n_confirmed += 1
                if decided[key]["stop"] > PROBE_S * fs:
                    first_shown.append(shown[key])
                open_keys.discard(key)
            elif key not in cur:
                n_withdrawn += 1
                open_keys.discard(key)
    cpu = time.process_time() - cpu0
    flush(st)
    writer.close()
    ms = lambda v: float(np.median(v) * 1e3)  # noqa: E731
    d = np.array(delays) * 1e3
    da, pv, pva = (np.array(v) * 1e3 for v in (delays_arrived, prov, prov_arrived))
    med = lambda v: float(np.median(v)) if v.size else float("nan")  # noqa: E731
    return {
        "channels": n_ch,
        "fs": fs,
        "chunk_ms": chunk_ms,
        "decode_ms": ms(t_dec),
        "write_ms": ms(t_write),
        "step_ms": ms(t_step),
        "total_ms_median": ms(t_total),
        "total_ms_p95": float(np.percentile(t_total, 95) * 1e3),
        "cpu_share_of_one_core": cpu / seconds,
        "events": len(delays),
        "event_delay_ms_median": float(np.median(d)) if d.size else float("nan"),
        "event_delay_ms_p95": float(np.percentile(d, 95)) if d.size else float("nan"),
        "event_delay_after_arrival_ms_median": med(da),
        "provisional_delay_ms_median": med(pv),
        "provisional_delay_ms_p95": float(np.percentile(pv, 95)) if pv.size else float("nan"),
        "provisional_delay_after_arrival_ms_median": med(pva),
        "provisional_delay_after_arrival_ms_p95": (
            float(np.percentile(pva, 95)) if pva.size else float("nan")
        ),
        "decided_shown_within_100ms_after_arrival": (
            float(np.mean(np.array(first_shown) <= 0.1)) if first_shown else float("nan")
        ),
        "provisional_confirmed": n_confirmed,
        "provisional_withdrawn": n_withdrawn,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--chunk-ms", type=float, default=80.0)
    ap.add_argument("--fs", type=float, default=2000.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n_ch in (16, 64):
            r = run(n_ch, args.fs, args.seconds, args.chunk_ms, Path(tmp))
            print(
                f"{r['channels']:3d} ch @ {r['fs']:g} Hz, {r['chunk_ms']:g}-ms chunks: "
                f"median per chunk {r['total_ms_median']:.2f} ms (decode {r['decode_ms']:.2f}, "
                f"EDF write+fsync {r['write_ms']:.2f}, pipeline {r['step_ms']:.2f}; "
                f"p95 {r['total_ms_p95']:.1f}) | CPU {100 * r['cpu_share_of_one_core']:.1f} % of one core | "
                f"fasciculation delay after last sample: median {r['event_delay_ms_median']:.0f} ms, "
                f"p95 {r['event_delay_ms_p95']:.0f} ms ({r['events']} events); "
                f"after it arrived: median {r['event_delay_after_arrival_ms_median']:.0f} ms | "
                f"provisional display: median {r['provisional_delay_ms_median']:.0f} ms "
                f"(p95 {r['provisional_delay_ms_p95']:.0f}) after the last sample, "
                f"{r['provisional_delay_after_arrival_ms_median']:.0f} ms "
                f"(p95 {r['provisional_delay_after_arrival_ms_p95']:.0f}) after it arrived; "
                f"{r['provisional_confirmed']} confirmed, {r['provisional_withdrawn']} withdrawn; "
                f"{100 * r['decided_shown_within_100ms_after_arrival']:.0f} % of fasciculations "
                "on screen <= 100 ms after their last sample arrived"
            )


if __name__ == "__main__":
    main()
