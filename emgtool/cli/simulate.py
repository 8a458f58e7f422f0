"""``emgtool simulate OUT.edf|OUT.csv``: a synthetic recording plus its exact ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]

_SCENARIO_HELP = """\
scenarios:
  als-widespread  fasciculations at every site (3-4 regions, both sides), 5-60/min per site
  bfs-focal       fasciculations confined to the calves (one or both sides), 5-30/min
  healthy         no fasciculations; nuisances only (plus occasional voluntary movement)
  cramps          several cramps (5 s to 3 min) at 1-2 leg sites, some fasciculations
  hd-grid         64-electrode 8x8 grid "Biceps L 01".."Biceps L 64"; each potential
                  spreads over neighbouring electrodes with small propagation delays

nuisances (comma list, 'default' = all, or 'none'):
  pink, white     background noise; its RMS in 20-450 Hz sets the SNR
  mains           50/60 Hz with harmonics 2, 3, 5
  ecg             QRS complexes at 55-90 bpm on trunk and proximal channels
  wander          slow baseline wander below 1 Hz
  motion          electrode-motion spikes common to many channels (truth: artifact)

The truth file OUT.truth.tsv has the columns of events.tsv (onset, duration,
trial_type, sample, site, side, region, channel, amplitude_uv, ...).

examples:
  emgtool simulate rec.edf --scenario als-widespread --duration 120 --seed 1
  emgtool simulate grid.edf --scenario hd-grid --duration 60 --snr-db 6
  emgtool simulate quiet.csv --scenario healthy --nuisances none --duration 10
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from emgtool.simulate import SCENARIOS

    p = sub.add_parser(
        "simulate",
        help="write a synthetic recording with exact ground truth (OUT + OUT.truth.tsv)",
        description=(
            "Simulate resting surface EMG with fasciculations, cramps, voluntary movement and "
            "nuisances, and write it (EDF, BDF or CSV by suffix) together with a ground-truth "
            "event table <OUT stem>.truth.tsv."
        ),
        epilog=_SCENARIO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", metavar="OUT", help="output file: .edf, .bdf or .csv")
    p.add_argument(
        "--scenario",
        default="als-widespread",
        choices=SCENARIOS,
        metavar="NAME",
        help="scenario (default: %(default)s; see the list below)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="S",
        help="duration in seconds (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="random seed; the same seed gives the same file (default: %(default)s)",
    )
    p.add_argument(
        "--fs",
        type=float,
        default=2048.0,
        metavar="HZ",
        help="sampling rate in Hz (default: %(default)s)",
    )
    p.add_argument(
        "--snr-db",
        type=float,
        default=None,
        metavar="X",
        help="SNR = 20*log10((50 uV / 2) / noise RMS in 20-450 Hz), 50 uV being the smallest "
        "fasciculation p-p (the median is 200 uV): every potential is at least this far above "
        "the noise; 0 dB = 25 uV noise, 20 dB = 2.5 uV (default: noise 3-8 uV per channel, "
        "i.e. 10-18 dB)",
    )
    p.add_argument(
        "--nuisances",
        default="default",
        metavar="LIST",
        help="comma list of pink,white,mains,ecg,wander,motion, 'default' (all) or 'none'",
    )
    p.add_argument(
        "--mains-hz",
        type=float,
        default=50.0,
        choices=(50.0, 60.0),
        metavar="50|60",
        help="mains frequency (default: 50)",
    )
    dis = p.add_mutually_exclusive_group()
    dis.add_argument(
        "--flat-channel",
        dest="flat_channel",
        action="store_const",
        const="flat",
        default=False,
        help="make one channel flat (disconnected electrode)",
    )
    dis.add_argument(
        "--hum-channel",
        dest="flat_channel",
        action="store_const",
        const="mains",
        help="make one channel a disconnected electrode that picks up only mains (200-1000 uV)",
    )
    p.add_argument(
        "--clipped-channel",
        action="store_true",
        help="make one channel saturate at its rail during 1-2 stretches",
    )
    p.add_argument(
        "--sites",
        metavar="LIST",
        help='channel labels instead of the scenario montage, e.g. "Biceps L,Biceps R,TA R"',
    )
    p.add_argument(
        "--cramps",
        type=int,
        default=None,
        metavar="N",
        help="number of cramps (default: as the scenario says)",
    )
    p.add_argument(
        "--fp-rate",
        type=float,
        default=None,
        metavar="PER_MIN",
        help="fasciculation rate at every fasciculating site (default: drawn per site)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import time

    from emgtool.simulate import simulate_to_file, truth_path
    from emgtool.sites import parse_sites_option

    sites = parse_sites_option(args.sites) if args.sites else None
    n_ch = len(sites) if sites else (64 if args.scenario == "hd-grid" else 16)
    # A progress bar only when the run will take more than a few seconds.
    progress = n_ch * args.duration * args.fs > 16 * 600 * 2048
    t0 = time.perf_counter()
    rec, truth = simulate_to_file(
        Path(args.out),
        args.scenario,
        args.duration,
        args.seed,
        fs=args.fs,
        snr_db=args.snr_db,
        nuisances=args.nuisances,
        mains_hz=args.mains_hz,
        flat_channel=args.flat_channel,
        clipped_channel=args.clipped_channel,
        sites=sites,
        n_cramps=args.cramps,
        fp_rate_per_min=args.fp_rate,
        progress=progress,
    )
    counts = truth["trial_type"].value_counts()
    parts = ", ".join(
        f"{counts.get(k, 0)} {k}" for k in ("fasciculation", "cramp", "voluntary", "artifact")
    )
    print(
        f"wrote {args.out} ({rec.n_channels} channels, {rec.duration_s:g} s at {rec.fs:g} Hz) "
        f"and {truth_path(args.out)} ({parts}) in {time.perf_counter() - t0:.1f} s"
    )
    return 0
