"""``emgtool fake-device``: a simulated EMG board on a pseudo-terminal (no hardware needed)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from emgtool.errors import EmgtoolError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fake-device",
        help="stream simulated EMG as a real board's bytes on a pseudo-terminal",
        description=(
            "Open a pseudo-terminal, print its path, and stream simulated EMG in real time as the "
            "chosen device's bytes, answering its commands (Cyton: v, d, b, s, x...X; CSV: v, b, s). "
            "Point 'emgtool record --port PATH' at it. Linux and macOS only."
        ),
        epilog="example:  emgtool fake-device --protocol csv --scenario als-widespread --link /tmp/emg0",
    )
    p.add_argument(
        "--protocol", required=True, choices=("cyton", "cyton-daisy", "p2", "spikershield", "csv")
    )
    p.add_argument(
        "--scenario",
        default="als-widespread",
        help="simulator scenario (als-widespread, bfs-focal, healthy, cramps, …)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulated signal")
    p.add_argument("--channels", type=int, metavar="N", help="channels (spikershield 1-6, csv)")
    p.add_argument("--fs", type=float, metavar="HZ", help="sampling rate (csv only; default 2000)")
    p.add_argument(
        "--garbage-every",
        type=int,
        default=0,
        metavar="N",
        help="insert 7 garbage bytes after every N-th frame",
    )
    p.add_argument(
        "--drop-every",
        type=int,
        default=0,
        metavar="N",
        help="drop one byte from every N-th frame",
    )
    p.add_argument(
        "--wrap-counter", action="store_true", help="start the counter just before it wraps"
    )
    p.add_argument(
        "--disconnect-after", type=float, metavar="S", help="simulate a USB unplug after S seconds"
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--link",
        metavar="PATH",
        help="also create a symlink PATH to the pty (stable name across restarts)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if sys.platform == "win32":
        raise EmgtoolError(
            "fake-device needs a pseudo-terminal (Linux or macOS); on Windows use "
            "a socket:// URL or a com0com pair"
        )
    from emgtool.acquisition.fakedevice import FakeDevice

    dev = FakeDevice(
        args.protocol,
        scenario=args.scenario,
        seed=args.seed,
        n_channels=args.channels,
        fs=args.fs,
        garbage_every=args.garbage_every,
        drop_every=args.drop_every,
        wrap_counter=args.wrap_counter,
        disconnect_after=args.disconnect_after,
        duration=args.duration,
        link=args.link,
    )
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    print(dev.path, flush=True)
    print(
        f"emgtool: fake {args.protocol} ({dev.n_channels} ch, {dev.fs:g} Hz) streaming "
        f"'{args.scenario}'; try: emgtool record --port {dev.path} --protocol {args.protocol} "
        f"--out DIR   (Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    dev.start()
    try:
        while not stop.is_set() and dev._thread.is_alive():
            time.sleep(0.1)
    finally:
        dev.stop()
    if dev.closed and args.disconnect_after is not None:
        print("emgtool: fake device unplugged", file=sys.stderr)
    print(
        f"emgtool: sent {dev.samples_sent} samples; {dev.overrun_bytes} bytes dropped "
        "(nobody reading)",
        file=sys.stderr,
    )
    return 0
