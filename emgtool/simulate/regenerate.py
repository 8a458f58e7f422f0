"""Regenerate the bundled simulated recordings: ``python -m emgtool.simulate.regenerate``.

Writes every file of ``datasets/`` and ``emgtool/data/demo.edf`` (+ their
``.truth.tsv``) under a repository root (default: the current directory).
The same emgtool version and seed give byte-identical samples; the list
below is the single source of the commands quoted in datasets/README.md.

Examples
--------
::

    python -m emgtool.simulate.regenerate            # from the repository root
    python -m emgtool.simulate.regenerate --list     # print the equivalent CLI commands
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DATASETS", "Dataset", "regenerate", "main"]

_EIGHT = "Tongue,Biceps L,Biceps R,FDI R,Thoracic PSP L,Tib ant L,Gastroc med L,Gastroc med R"
_LEGS = "Biceps L,Biceps R,Thoracic PSP R,Tib ant L,Tib ant R,Gastroc med L,Gastroc med R,Soleus R"
_DEMO = (
    "Tongue,Deltoid R,Biceps L,Biceps R,FDI L,FDI R,Thoracic PSP L,Rectus abd R,"
    "Tib ant L,Tib ant R,Gastroc med L,Gastroc med R"
)


@dataclass(frozen=True)
class Dataset:
    path: str  # relative to the repository root
    scenario: str
    duration_s: float
    seed: int
    options: dict = field(default_factory=dict)  # CLI option name → value (True = flag)
    about: str = ""

    def cli(self) -> str:
        parts = [
            f"emgtool simulate {self.path} --scenario {self.scenario}",
            f"--duration {self.duration_s:g} --seed {self.seed}",
        ]
        for k, v in self.options.items():
            parts.append(
                f"--{k}"
                if v is True
                else f'--{k} "{v}"'
                if "," in str(v) or " " in str(v)
                else f"--{k} {v}"
            )
        return " ".join(parts)

    def kwargs(self) -> dict:
        kw: dict = {}
        for k, v in self.options.items():
            name = k.replace("-", "_")
            if name == "cramps":
                name = "n_cramps"
            elif name == "fp_rate":
                name = "fp_rate_per_min"
            elif name == "sites":
                v = [s.strip() for s in str(v).split(",")]
            kw[name] = v
        return kw


DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "datasets/als-widespread_8ch_60s.edf",
        "als-widespread",
        60,
        1,
        {"sites": _EIGHT},
        "fasciculations at all 8 sites, 4 regions, both sides",
    ),
    Dataset(
        "datasets/bfs-focal_8ch_60s.edf",
        "bfs-focal",
        60,
        2,
        {"sites": _EIGHT},
        "fasciculations in the calves only",
    ),
    Dataset(
        "datasets/healthy_8ch_30s.edf",
        "healthy",
        30,
        3,
        {"sites": _EIGHT},
        "no fasciculations; nuisances only",
    ),
    Dataset(
        "datasets/cramps_8ch_60s.edf",
        "cramps",
        60,
        4,
        {"sites": _LEGS},
        "two or more leg cramps and some fasciculations",
    ),
    Dataset(
        "datasets/hd-grid_64ch_8s.edf",
        "hd-grid",
        8,
        5,
        {"fp-rate": 60},
        "8x8 grid over biceps L; potentials spread over neighbouring electrodes",
    ),
    Dataset(
        "datasets/faults_8ch_20s.edf",
        "als-widespread",
        20,
        6,
        {"sites": _EIGHT, "flat-channel": True, "clipped-channel": True},
        "one flat (disconnected) and one clipped channel",
    ),
    Dataset(
        "datasets/als-widespread_4ch_5s_60hz.csv",
        "als-widespread",
        5,
        7,
        {"sites": "Biceps L,Biceps R,Tib ant L,Tib ant R", "mains-hz": 60, "snr-db": 20},
        "CSV dialect example: 60 Hz mains, SNR 20 dB",
    ),
    Dataset(
        "emgtool/data/demo.edf",
        "als-widespread",
        120,
        2026,
        {"sites": _DEMO, "cramps": 1},
        "the recording `emgtool demo` analyses: 12 channels, 4 regions, a cramp",
    ),
)


def regenerate(
    root: str | Path = ".", *, only: str | None = None, verbose: bool = True
) -> list[Path]:
    """Write all bundled recordings under ``root``; returns the paths written."""
    from emgtool.simulate import simulate_to_file

    root = Path(root)
    out = []
    for d in DATASETS:
        if only and only not in d.path:
            continue
        path = root / d.path
        path.parent.mkdir(parents=True, exist_ok=True)
        _rec, truth = simulate_to_file(path, d.scenario, d.duration_s, d.seed, **d.kwargs())
        out.append(path)
        if verbose:
            n = truth["trial_type"].value_counts().to_dict()
            print(f"{d.path}: {path.stat().st_size / 1e6:.2f} MB, {n}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m emgtool.simulate.regenerate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", default=".", help="repository root (default: current directory)")
    p.add_argument("--only", help="regenerate only paths containing this text")
    p.add_argument("--list", action="store_true", help="print the equivalent emgtool commands")
    args = p.parse_args(argv)
    if args.list:
        for d in DATASETS:
            print(d.cli())
        return 0
    regenerate(args.root, only=args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
