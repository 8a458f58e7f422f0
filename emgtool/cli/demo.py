"""``emgtool demo``: analyse the bundled recording end to end."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

DEFAULT_OUT = "emgtool-demo"


def demo_recording() -> Path:
    """Path of the bundled demo recording (simulated, with exact ground truth)."""
    return Path(str(resources.files("emgtool") / "data" / "demo.edf"))


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="analyse the bundled demo recording and write a report",
        description=(
            "Analyse the bundled demo recording (a simulated multi-site resting sEMG with "
            "fasciculations in several regions, a cramp and realistic nuisances; its ground "
            "truth is bundled too) and write events.tsv, summary.json and report.html. "
            "Then compare with the truth: emgtool evaluate DIR/events.tsv DIR/truth.tsv"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="output folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace other results in --out (an earlier demo output is always replaced)",
    )
    p.set_defaults(func=run)


def _earlier_demo(out: Path, src: Path) -> bool:
    """True when ``out`` holds no results, or the results of this demo recording."""
    import json

    from emgtool.io import open_source
    from emgtool.pipeline.analyze import OUTPUT_NAMES, recording_id

    if not any((out / n).exists() for n in OUTPUT_NAMES):
        return True
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        rid = summary["recording"]["recording_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return rid == recording_id(open_source(src))


def run(args) -> int:
    import shutil

    from emgtool.cli.analyze import summary_line
    from emgtool.errors import EmgtoolError
    from emgtool.pipeline.analyze import analyze_to_dir

    src = demo_recording()
    out = Path(args.out)
    if not (args.overwrite or _earlier_demo(out, src)):
        # Rerunning the demo replaces its own output, never someone's results.
        raise EmgtoolError(
            f"{out}: already holds results of another recording; use --overwrite or another --out"
        )
    an = analyze_to_dir(src, out, overwrite=True, progress=sys.stderr.isatty())
    truth = src.with_name("demo.truth.tsv")
    if truth.exists():
        shutil.copyfile(truth, out / "truth.tsv")
    print(summary_line(an, out))
    print(
        f"open {out / 'report.html'} in a browser; "
        f"score against the truth: emgtool evaluate {out / 'events.tsv'} {out / 'truth.tsv'}"
    )
    return 0
