"""``emgtool evaluate DETECTED.tsv TRUTH.tsv``: score detections against ground truth."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from emgtool.errors import EmgtoolError, ReadError

HELP = "score detected events against a truth file (sensitivity, precision, F1, rates per site)"

DESCRIPTION = """\
Match the events of DETECTED.tsv (written by `emgtool analyze`) one to one with
those of TRUTH.tsv (e.g. the *.truth.tsv written by `emgtool simulate`), per site
(site + side), and print sensitivity, precision, F1 and rates per kind and site.

A detected fasciculation matches a true one when its onset lies within the true
potential's span [onset, onset + duration] widened by --tolerance-ms on each side;
a detected cramp matches a true one when their intersection-over-union is at least
--iou.  Only the kinds fasciculation and cramp are scored; true artifacts are used
to count artefacts detected as fasciculations.
"""

EPILOG = """\
examples:
  emgtool simulate rec.edf --scenario als-widespread --duration 120 --seed 1
  emgtool analyze rec.edf --out res
  emgtool evaluate res/events.tsv rec.truth.tsv --duration 120 --json scores.json
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("detected", metavar="DETECTED.tsv", help="detected events (events.tsv)")
    p.add_argument("truth", metavar="TRUTH.tsv", help="true events (same columns)")
    p.add_argument(
        "--json", metavar="OUT", dest="json_out", help="also write all scores as JSON to OUT"
    )
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="recording duration in seconds, for rates (default: the summary.json "
        "beside DETECTED.tsv, else the end of the last event, with a warning)",
    )
    p.add_argument(
        "--channels",
        type=int,
        metavar="N",
        help="number of channels recorded, to report false fasciculations per channel-hour",
    )
    p.add_argument(
        "--tolerance-ms",
        type=float,
        default=15.0,
        metavar="MS",
        help="fasciculation onset tolerance around the true span (default 15)",
    )
    p.add_argument(
        "--iou",
        type=float,
        default=0.5,
        help="minimum intersection-over-union for cramps to match (default 0.5)",
    )
    p.set_defaults(func=run)
    return p


def _duration_from_summary(detected: Path) -> float | None:
    """Duration recorded by ``emgtool analyze`` in summary.json, if there is one."""
    summary = detected.with_name("summary.json")
    if not summary.is_file():
        return None
    try:
        doc = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("duration_s",):
        for where in (doc, doc.get("recording", {}) if isinstance(doc, dict) else {}):
            v = where.get(key) if isinstance(where, dict) else None
            if isinstance(v, (int, float)) and v > 0:
                return float(v)
    return None


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from emgtool.events import read_events_tsv
    from emgtool.scoring import evaluate, format_evaluation

    if args.duration is not None and not args.duration > 0:
        raise EmgtoolError(f"--duration must be a positive number of seconds, got {args.duration}")
    if args.channels is not None and args.channels < 1:
        raise EmgtoolError(f"--channels must be >= 1, got {args.channels}")
    tables = []
    for path in (Path(args.detected), Path(args.truth)):
        if path.is_dir():
            raise ReadError(path, "is a directory, not an events table")
        df = read_events_tsv(path)
        onset = pd.to_numeric(df["onset"], errors="coerce")
        bad = onset.isna() | ~np.isfinite(onset.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
            raise ReadError(
                path, f"line {line}: onset {df['onset'].iloc[line - 2]!r} is not a number"
            )
        if (
            pd.to_numeric(df["duration"], errors="coerce").isna().sum()
            > df["duration"].isna().sum()
        ):
            raise ReadError(path, "column duration holds values that are not numbers")
        tables.append(df)
    duration = (
        args.duration if args.duration is not None else _duration_from_summary(Path(args.detected))
    )
    result = evaluate(
        tables[0],
        tables[1],
        duration_s=duration,
        n_channels=args.channels,
        fasc_tol_ms=args.tolerance_ms,
        cramp_iou=args.iou,
    )
    print(format_evaluation(result))
    if args.json_out:
        out = Path(args.json_out)
        try:
            out.write_text(json.dumps(_json_safe(result), indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            raise EmgtoolError(f"{out}: cannot write ({e.strerror})") from None
    return 0
