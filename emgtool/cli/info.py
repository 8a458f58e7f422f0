"""``emgtool info FILE``: what a recording holds, before analysing it.

Prints the channels (label, site, side, region, unit), the sampling rate,
duration, number of samples, file format and the reader's warnings.  Patient
identifiers from the file header are printed only with ``--keep-identity``.

Examples
--------
::

    emgtool info rec.edf
    emgtool info rec.csv --fs 2000 --unit mV
    emgtool info rec.edf --sites "Biceps L,Biceps R" --json
"""

from __future__ import annotations

import argparse
import json
import sys

from emgtool.cli import add_input_options, input_kwargs

#: Below this rate fasciculation waveforms are degraded (surface MUAP energy reaches ~500 Hz).
LOW_FS_HZ = 1000.0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="show channels, sites, sampling rate, duration and warnings of a recording",
        description=(
            "Show what a recording holds: channels with their body site, side, region and "
            "unit; sampling rate; duration; file format; and any reader warnings (truncated "
            "file, dropped channels, ...). Nothing is written. Patient identifiers in the "
            "file header are not shown unless --keep-identity is given."
        ),
    )
    p.add_argument("file", metavar="FILE", help="EDF/EDF+/BDF/BDF+ or CSV/TSV recording")
    add_input_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--keep-identity",
        action="store_true",
        help="also show patient/recording identification from the header (private data)",
    )
    p.set_defaults(func=run)


def describe(src, *, keep_identity: bool = False) -> dict:
    """The facts ``emgtool info`` shows, as a JSON-ready dict."""
    meta = src.meta
    out = {
        "file": meta.get("file"),
        "format": meta.get("format"),
        "fs_hz": src.fs,
        "n_samples": src.n_samples,
        "duration_s": src.duration_s,
        # The recording's date and time identify the visit: shown only with --keep-identity.
        "start_time": meta.get("start_time") if keep_identity else None,
        "n_channels": src.n_channels,
        "channels": [
            {
                "label": c.label,
                "site": c.site,
                "side": c.side,
                "region": c.region,
                "unit": c.unit,
                **({"electrode": c.electrode} if c.electrode is not None else {}),
            }
            for c in src.channels
        ],
        "regions": sorted({c.region for c in src.channels}),
        "warnings": list(meta.get("warnings", [])),
        "notes": [],
    }
    for k in ("records_in_header", "records_on_disk", "bytes_dropped", "dropped_channels"):
        if k in meta:
            out[k] = meta[k]
    if src.fs < LOW_FS_HZ:
        out["notes"].append(
            f"low sampling rate ({src.fs:g} Hz < {LOW_FS_HZ:g} Hz): fasciculation waveforms are "
            "degraded and their detection is less sensitive; cramp detection still works"
        )
    if keep_identity:
        out["identity"] = dict(meta.get("identity", {}))
    return out


def _fmt_duration(s: float) -> str:
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{sec:06.3f}" if h else f"{int(m)}:{sec:06.3f}"


def run(args: argparse.Namespace) -> int:
    from emgtool.io import open_source

    src = open_source(args.file, **input_kwargs(args))
    info = describe(src, keep_identity=args.keep_identity)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    w = sys.stdout.write
    w(f"file:      {info['file']}\n")
    w(f"format:    {info['format']}\n")
    w(f"fs:        {info['fs_hz']:g} Hz\n")
    w(f"duration:  {_fmt_duration(info['duration_s'])} ({info['duration_s']:g} s)\n")
    w(f"samples:   {info['n_samples']} per channel\n")
    if info["start_time"]:
        w(f"start:     {info['start_time']}\n")
    w(f"channels:  {info['n_channels']} (regions: {', '.join(info['regions'])})\n")
    rows = [("#", "label", "site", "side", "region", "unit")] + [
        (str(i + 1), c["label"], c["site"], c["side"], c["region"], c["unit"])
        for i, c in enumerate(info["channels"])
    ]
    widths = [max(len(r[k]) for r in rows) for k in range(6)]
    for r in rows:
        w("  " + "  ".join(v.ljust(widths[k]) for k, v in enumerate(r)).rstrip() + "\n")
    for k in ("records_in_header", "records_on_disk", "bytes_dropped"):
        if k in info and info.get("warnings"):
            w(f"{k}: {info[k]}\n")
    for msg in info["warnings"]:
        w(f"warning:   {msg}\n")
    for msg in info["notes"]:
        w(f"note:      {msg}\n")
    if "identity" in info:
        for k, v in info["identity"].items():
            w(f"identity:  {k} = {v}\n")
    return 0
