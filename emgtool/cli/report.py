"""``emgtool report DIR1 DIR2 … --out DIR``: compare analyses of one subject over visits."""

from __future__ import annotations

import argparse

HELP = "compare analysis folders of one subject over visits (rate trends, spread, cramps)"

DESCRIPTION = """\
Compare the analyses of one subject recorded at several visits.

Each DIR is an output folder of `emgtool analyze` (it must hold summary.json;
events.tsv is read too when present, to cross-check counts). Visits are
ordered by the recording start time when every summary has one (only kept
with --keep-identity), otherwise in the order the folders are given.

Writes into --out:
  longitudinal.json   per-site rates with 95 % intervals at each visit, the
                      rate change between consecutive visits (exact Poisson
                      test), sites and regions newly involved, cramps per visit
  longitudinal.html   the same as a self-contained page with figures

A site or region is "newly involved" at a visit when it is involved there and
was assessed but not involved before; one involved the first time it was
adequately examined is listed separately (that is not evidence of spread).
This is a research tool; it reports findings, never a diagnosis.
"""

EPILOG = """\
example:
  emgtool analyze visit1.edf --out v1 && emgtool analyze visit2.edf --out v2
  emgtool report v1 v2 --out compare
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="analysis output folders (each with summary.json), one per visit",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for longitudinal.json and longitudinal.html (created if needed)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace longitudinal.json/.html already in --out"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emgtool.errors import EmgtoolError
    from emgtool.report.longitudinal import write_longitudinal

    existing = [
        n for n in ("longitudinal.json", "longitudinal.html") if (Path(args.out) / n).exists()
    ]
    if existing and not args.overwrite:
        raise EmgtoolError(
            f"{args.out}: already holds {', '.join(existing)}; use --overwrite to replace"
        )
    paths = write_longitudinal(args.dirs, args.out)
    for p in paths.values():
        print(p)
    return 0
