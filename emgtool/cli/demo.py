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
    p.set_defaults(func=run)


def run(args) -> int:
    import shutil

    from emgtool.cli.analyze import summary_line
    from emgtool.pipeline.analyze import analyze_to_dir

    src = demo_recording()
    out = Path(args.out)
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
