"""``emgtool record``: live recording and detection from a serial EMG board (or a replayed file)."""

from __future__ import annotations

import argparse
import signal
import threading
import warnings
from pathlib import Path

from emgtool.errors import ConfigError, EmgtoolWarning

PROTOCOL_CHOICES = ("cyton", "cyton-daisy", "p2", "spikershield", "csv")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "record",
        help="record from a serial EMG board with live detection (crash-safe)",
        description=(
            "Record surface EMG from a serial board, detect fasciculations and cramps live, and\n"
            "write DIR/recording.edf (EDF+, events as annotations), events.tsv, summary.json and\n"
            "report.html when stopped (duration reached, Ctrl-C or SIGTERM). Samples reach the\n"
            "disk every second; after a crash run 'emgtool recover DIR'.\n"
            "Without hardware: 'emgtool fake-device --protocol csv' prints a port for --port."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  emgtool record --port /dev/ttyUSB0 --protocol cyton --sites 'Biceps L,Biceps R,...' --out rec1\n"
            "  emgtool record --port COM4 --protocol csv --baud 921600 --duration 600 --out rec2\n"
            "  emgtool record --replay old.edf --speed 0 --out replayed\n"
            "device notes: firmware_notes/ in the source tree; docs/live-recording.md"
        ),
    )
    src = p.add_argument_group("source")
    src.add_argument(
        "--port",
        metavar="PORT",
        help="serial port (/dev/ttyUSB0, /dev/cu.usbserial-…, COM4) or a pyserial URL "
        "(socket://host:port)",
    )
    src.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        help="device protocol (required with --port; with --replay it means the file "
        "is a raw byte capture of that device)",
    )
    src.add_argument(
        "--baud",
        type=int,
        metavar="N",
        help="baud rate (default: the device's: cyton 115200, p2 57600, "
        "spikershield 230400, csv 921600)",
    )
    src.add_argument(
        "--replay",
        metavar="FILE",
        help="run a recording file (EDF/BDF/CSV) through the live path instead of a port",
    )
    src.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="replay pace: 1 = real time (default), 10 = ten times faster, 0 = as fast as possible",
    )
    src.add_argument(
        "--no-reconnect",
        action="store_true",
        help="stop cleanly when the device is unplugged instead of waiting for it",
    )
    dev = p.add_argument_group("device settings (uncalibrated boards and headerless CSV)")
    dev.add_argument(
        "--channels",
        type=int,
        metavar="N",
        help="channels streamed (spikershield: 1-6, fs = 10 kHz/N; csv without header)",
    )
    dev.add_argument(
        "--fs", type=float, metavar="HZ", help="sampling rate of a CSV device that sends no header"
    )
    dev.add_argument(
        "--gain",
        type=float,
        metavar="G",
        help="analog gain from electrodes to ADC (p2, spikershield, csv counts); "
        "the default is nominal, not a calibration",
    )
    dev.add_argument(
        "--vref", type=float, metavar="V", help="ADC reference voltage (p2, spikershield, csv)"
    )
    dev.add_argument("--bits", type=int, metavar="N", help="ADC bits (spikershield 10 or 14; csv)")
    g = p.add_argument_group("sites and detection")
    sites = g.add_mutually_exclusive_group()
    sites.add_argument(
        "--sites",
        metavar="LIST",
        help='one site per channel, in order, e.g. "Biceps L,Biceps R,TA R"',
    )
    sites.add_argument(
        "--montage", metavar="FILE", help="TOML montage mapping channel labels to sites"
    )
    g.add_argument("--config", metavar="FILE", help="detector configuration (TOML)")
    out = p.add_argument_group("output")
    out.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (must not hold a recording)"
    )
    out.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of signal")
    out.add_argument(
        "--view",
        choices=("auto", "tty", "lines", "off"),
        default="auto",
        help="live view: redrawn on a terminal, a line every 5 s otherwise (default auto)",
    )
    out.add_argument(
        "--no-report",
        action="store_true",
        help="skip report.html (stops faster; 'emgtool report' can make it later)",
    )
    out.add_argument(
        "--chunk-ms",
        type=float,
        default=40.0,
        metavar="MS",
        help="detection block length: provisional twitches appear within about this delay "
        "after their last sample (default 40)",
    )
    p.set_defaults(func=run)


def decoder_params(args: argparse.Namespace) -> dict:
    """Decoder keyword arguments from the device options."""
    kw: dict = {}
    proto = args.protocol
    if proto in ("p2", "spikershield", "csv"):
        if args.gain is not None:
            kw["gain"] = args.gain
        if args.vref is not None:
            kw["vref"] = args.vref
    if proto in ("spikershield", "csv") and args.bits is not None:
        kw["bits"] = args.bits
    if proto == "spikershield" and args.channels:
        kw["n_channels"] = args.channels
    if proto == "csv":
        if args.channels:
            kw["n_channels"] = args.channels
        if args.fs:
            kw["fs"] = args.fs
    return kw


def run(args: argparse.Namespace) -> int:
    from emgtool.acquisition import live
    from emgtool.acquisition.protocols import PROTOCOLS
    from emgtool.config import load_config

    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be positive")
    if bool(args.port) == bool(args.replay):
        raise ConfigError("give either --port (a device) or --replay FILE")
    if args.port and not args.protocol:
        raise ConfigError(f"--port needs --protocol ({', '.join(PROTOCOL_CHOICES)})")
    cfg = load_config(args.config)
    params = decoder_params(args) if args.protocol else {}
    if args.protocol and PROTOCOLS[args.protocol].uncalibrated and args.gain is None:
        warnings.warn(
            EmgtoolWarning(
                f"{args.protocol}: the board sends uncalibrated ADC counts; µV use a nominal gain. "
                "Amplitudes (and the ≥50 µV rule) are approximate until you pass --gain from a calibration"
            ),
            stacklevel=2,
        )
    if args.protocol in ("cyton", "cyton-daisy", "p2"):
        warnings.warn(
            EmgtoolWarning(
                f"{args.protocol} samples at ≤ 256 Hz: enough for cramps, too slow for fasciculation "
                "waveforms (they need ≥ 1 kHz); fasciculation counts will be unreliable"
            ),
            stacklevel=2,
        )
    info = {
        "protocol": args.protocol,
        "port": args.port,
        "replay": Path(args.replay).name if args.replay else None,
        "decoder_params": params,
    }
    live._preload()  # before the port opens (see there)
    if args.replay:
        if args.protocol:
            source = live.byte_file_source(args.replay, args.protocol, decoder_params=params)
        else:
            source = live.sample_file_source(args.replay, speed=args.speed)
    else:
        source = live.serial_source(
            args.port,
            args.protocol,
            baud=args.baud,
            reconnect=not args.no_reconnect,
            decoder_params=params,
        )
    opts = live.LiveOptions(
        out_dir=Path(args.out),
        duration_s=args.duration,
        chunk_s=args.chunk_ms / 1000.0,
        sites=args.sites,
        montage=args.montage,
        config=cfg,
        view=args.view,
        write_report=not args.no_report,
        info=info,
    )
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        res = live.run_live(source, opts, stop)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    out = Path(args.out)
    print(
        f"emgtool: recorded {res['n_samples'] / res['fs']:.1f} s at {res['fs']:g} Hz "
        f"({res['stop_reason']}); {len(res['gaps'])} gap(s), {res['reconnects']} reconnect(s)"
    )
    written = [
        n
        for n in ("recording.edf", "events.tsv", "summary.json", "report.html")
        if (out / n).exists()
    ]
    print(f"emgtool: wrote {', '.join(str(out / n) for n in written)}")
    for m in res.get("missing", []):
        if not (m == "report.html" and args.no_report):
            print(f"emgtool: note: {m} not written (the report module is not available)")
    return 0
