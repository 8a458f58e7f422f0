"""``emgtool recover DIR``: rebuild a live recording's files after a crash or SIGKILL."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "recover",
        help="rebuild recording.edf and the results of an interrupted 'emgtool record'",
        description=(
            "After a crash, SIGKILL or power cut during 'emgtool record', DIR holds every complete "
            "1-s record but no closed header and no results. This keeps the file as found "
            "(recording.partial.edf), writes a properly closed recording.edf with every complete "
            "record, and re-runs detection offline to write events.tsv, summary.json and report.html."
        ),
    )
    p.add_argument("dir", metavar="DIR", help="the --out folder of the interrupted recording")
    p.add_argument(
        "--force",
        action="store_true",
        help="re-run the analysis even if the recording was closed properly",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emgtool.acquisition.recovery import recover

    res = recover(args.dir, force=args.force)
    msg = f"emgtool: recovered {res['n_samples'] / res['fs']:.1f} s at {res['fs']:g} Hz"
    if "records" in res:
        msg += f" ({res['records']} complete records; {res['dropped_bytes']} bytes of an unfinished record left out)"
    print(msg)
    if "n_events" in res:
        print(
            f"emgtool: {res['n_events']} events; wrote events.tsv, summary.json, report.html in {args.dir}"
        )
    for m in res.get("missing", []):
        print(f"emgtool: note: {m} not written (module not available)")
    return 0
