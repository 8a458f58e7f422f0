"""``emgtool analyze FILE --out DIR``: detect fasciculations and cramps in one recording."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emgtool.cli import add_input_options, input_kwargs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="detect fasciculations and cramps in a recording",
        description=(
            "Detect fasciculation potentials and cramps in a resting surface-EMG recording "
            "(EDF/EDF+/BDF/BDF+ or CSV) and write events.tsv, events.json, summary.json and "
            "report.html into --out. Sites come from the channel labels unless --sites or "
            "--montage is given."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="recording (.edf, .bdf, .csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--config", metavar="FILE", help="TOML file with detector parameters")
    p.add_argument("--overwrite", action="store_true", help="replace existing results in --out")
    p.add_argument(
        "--keep-identity",
        action="store_true",
        help="keep patient identifiers from the file header in the outputs",
    )
    p.add_argument(
        "--export-edf",
        action="store_true",
        help="also write recording.edf (EDF+ copy with the events as annotations)",
    )
    p.add_argument("--bids", action="store_true", help="also write BIDS-EMG derivative files")
    add_input_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from emgtool.config import load_config
    from emgtool.pipeline.analyze import analyze_to_dir

    cfg = load_config(args.config)
    out = Path(args.out)
    _check_exports(args, out)
    an = analyze_to_dir(
        args.file,
        out,
        config=cfg,
        overwrite=args.overwrite,
        keep_identity=args.keep_identity,
        progress=sys.stderr.isatty(),
        **input_kwargs(args),
    )
    _show_warnings(an)
    if args.export_edf or args.bids:
        from dataclasses import replace

        from emgtool.io import read
        from emgtool.report import exports

        if args.export_edf:
            rec = read(args.file, **input_kwargs(args))
            if not args.keep_identity:
                # The start date/time is identifying; dropped like in summary.json.
                rec = replace(rec, start_time=None, meta={})
            exports.export_edf(an, rec, out / EXPORT_EDF)
        if args.bids:
            exports.write_bids(an, out / BIDS_DIR)
    print(summary_line(an, out))
    return 0


EXPORT_EDF = "recording.edf"
BIDS_DIR = "bids"


def _check_exports(args, out: Path) -> None:
    """Refuse, before analysing, exports that would replace the input or earlier results."""
    from emgtool.errors import EmgtoolError

    inp = Path(args.file)
    targets = ([out / EXPORT_EDF] if args.export_edf else []) + (
        [out / BIDS_DIR] if args.bids else []
    )
    for t in targets:
        if inp.exists() and t.exists() and (t == inp or t.is_file() and t.samefile(inp)):
            raise EmgtoolError(
                f"{t}: the export would overwrite the input file; choose another --out"
            )
        if t.exists() and not args.overwrite:
            raise EmgtoolError(f"{t}: already exists; use --overwrite to replace")


def _show_warnings(an) -> None:
    """Print the analysis warnings (the reader's were printed when the file was opened)."""
    import warnings

    from emgtool.errors import EmgtoolWarning

    shown = set((an.source or {}).get("reader_warnings") or [])
    for msg in dict.fromkeys(an.warnings):
        if msg not in shown:
            warnings.warn(msg, EmgtoolWarning, stacklevel=2)


def summary_line(an, out: Path) -> str:
    """One line for the terminal: counts and where the outputs are."""
    ev = an.events
    n_f = int((ev["trial_type"] == "fasciculation").sum())
    n_c = int((ev["trial_type"] == "cramp").sum())
    sites = sorted(
        {
            f"{s} {d}".replace(" n/a", "")
            for s, d in ev.loc[ev["trial_type"] == "fasciculation", ["site", "side"]].itertuples(
                index=False
            )
        }
    )
    where = ", ".join(sites[:6]) + (" …" if len(sites) > 6 else "")
    return (
        f"{an.duration_s:.0f} s, {len(an.channels)} channels: {n_f} fasciculations"
        f"{' at ' + where if where else ''}; {n_c} cramps → {out}"
    )
