"""Command-line interface: ``emgtool <command> …`` (also ``python -m emgtool``).

The CLI is thin: each command module parses its options and calls the
library.  Problems with the input print one line, ``emgtool: error: …``,
and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from emgtool._version import __version__
from emgtool.errors import EmgtoolError, EmgtoolWarning

__all__ = ["main", "COMMANDS"]

#: Subcommand modules under ``emgtool.cli``; each defines ``add_parser(subparsers)``.
COMMANDS = (
    "demo",
    "info",
    "simulate",
    "analyze",
    "evaluate",
    "report",
    "record",
    "recover",
    "fake_device",
    "batch",
)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, EmgtoolWarning):
        print(f"emgtool: warning: {message}", file=sys.stderr)
    else:
        logging.getLogger("emgtool").debug(
            "%s: %s (%s:%s)", category.__name__, message, filename, lineno
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emgtool",
        description=(
            "Find fasciculations and cramps in surface EMG and report how often they occur "
            "and how they spread over body sites and regions. A research tool, not a diagnosis."
        ),
    )
    parser.add_argument("--version", action="version", version=f"emgtool {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"emgtool.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(message)s")
    if not debug:
        warnings.showwarning = _show_warning
        # Third-party chatter (MNE, edfio) is handled by the readers; keep stderr readable.
        logging.getLogger("mne").setLevel(logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", EmgtoolWarning)
            rc = args.func(args)
        return int(rc or 0)
    except EmgtoolError as e:
        if debug:
            raise
        print(f"emgtool: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emgtool: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Options every command that reads a recording shares."""
    g = p.add_argument_group("input")
    sites = g.add_mutually_exclusive_group()
    sites.add_argument(
        "--sites",
        metavar="LIST",
        help='one site per channel, in order, e.g. "Biceps L,Biceps R,TA R"',
    )
    sites.add_argument(
        "--montage",
        metavar="FILE",
        help="TOML montage mapping channel labels to sites (see docs/montage.md)",
    )
    g.add_argument(
        "--fs", type=float, metavar="HZ", help="sampling rate for CSV files without a time column"
    )
    g.add_argument(
        "--unit",
        metavar="UNIT",
        help="unit of CSV values when the header does not say (uV, mV, V)",
    )


def input_kwargs(args: argparse.Namespace) -> dict:
    """Reader keyword arguments from :func:`add_input_options`."""
    kw: dict = {}
    if getattr(args, "sites", None):
        kw["sites"] = args.sites
    if getattr(args, "montage", None):
        kw["montage"] = args.montage
    if getattr(args, "fs", None) is not None:
        kw["fs"] = args.fs
    if getattr(args, "unit", None):
        kw["unit"] = args.unit
    return kw
