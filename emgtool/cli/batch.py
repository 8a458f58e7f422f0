"""``emgtool batch``: analyse many recordings, resumably, on a Dask cluster.

Exit status: 0 when every recording has a result, 1 when any failed (listed
in failures.tsv), 2 for bad input (no recordings found, bad options).
"""

from __future__ import annotations

import argparse

from emgtool.cli import add_input_options, input_kwargs

HELP = "analyse many recordings (folders, globs, BIDS) into a cohort table; resumable"

EPILOG = """\
examples:
  emgtool batch data/ --out results/                 # local cluster, one worker per CPU
  emgtool batch bids_root/ --out results/ --workers 4
  emgtool batch 'visits/**/*.bdf' --out results/ --config detector.toml
  emgtool batch data/ --out results/ --scheduler-file /shared/scheduler.json

Rerunning the same command resumes: finished files are skipped (by content
hash, so renamed or copied files too); a changed configuration reprocesses.
--scheduler tcp://... sends data unencrypted and lets whoever reaches the
scheduler run code on its workers: use it on trusted networks only (see
docs/batch.md).

exit status: 0 all recordings analysed, 1 some failed (see failures.tsv),
2 bad input.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "batch",
        help=HELP,
        description=HELP[0].upper() + HELP[1:] + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="recording files, folders (searched for .edf/.bdf), globs or BIDS roots",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="results folder (catalog, per-file folders, cohort tables); created if needed",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes of the local cluster (default: number of CPUs)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 "
        "(trusted networks only; tls:// needs a Dask security config)",
    )
    where.add_argument(
        "--scheduler-file",
        metavar="FILE",
        help="scheduler file written by 'dask scheduler --scheduler-file FILE'",
    )
    p.add_argument("--config", metavar="FILE", help="detector configuration (TOML)")
    p.add_argument(
        "--retry-errors",
        action="store_true",
        help="re-run files that failed in an earlier run (crashed files are always retried once)",
    )
    p.add_argument(
        "--engine",
        choices=("dask", "serial"),
        default="dask",
        help="dask (default; worker processes) or serial (in this process, for debugging)",
    )
    p.add_argument(
        "--keep-identity",
        action="store_true",
        help="keep patient identifiers from file headers in the outputs",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--analyze", default=None, metavar="MODULE:FUNCTION", help=argparse.SUPPRESS)
    add_input_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys

    from emgtool.batch.engine import run_batch
    from emgtool.batch.tasks import DEFAULT_ANALYZE
    from emgtool.config import load_config
    from emgtool.errors import EmgtoolError

    if args.workers is not None and args.workers < 1:
        raise EmgtoolError(f"--workers must be at least 1, got {args.workers}")
    if args.engine == "serial" and (args.scheduler or args.scheduler_file):
        raise EmgtoolError("--scheduler/--scheduler-file need --engine dask")
    if args.workers is not None and (args.scheduler or args.scheduler_file):
        import warnings

        from emgtool.errors import EmgtoolWarning

        warnings.warn(
            "--workers applies to the local cluster only; the existing cluster keeps its workers",
            EmgtoolWarning,
            stacklevel=2,
        )
    res = run_batch(
        args.inputs,
        args.out,
        config=load_config(args.config),
        input_kwargs=input_kwargs(args),
        workers=args.workers,
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        engine=args.engine,
        retry_errors=args.retry_errors,
        analyze=args.analyze or DEFAULT_ANALYZE,
        keep_identity=args.keep_identity,
        progress=not args.no_progress,
        debug=bool(getattr(args, "debug", False)),
    )
    for f in res.failures[:20]:
        print(f"emgtool: failed: {f['path']}: {f['reason']}", file=sys.stderr)
    if len(res.failures) > 20:
        print(f"emgtool: … and {len(res.failures) - 20} more (see failures.tsv)", file=sys.stderr)
    print(res.line())
    print(f"results in {res.out_dir}")
    return res.exit_status
