"""Named scenarios: which sites fasciculate, how often, and which cramps and movements occur.

A scenario is a default montage plus a plan drawn from the seeded generator:
per site (muscle and side) a fasciculation rate and a number of motor units,
and a list of bursts (cramps, voluntary movements) with their sites and
durations.  Timing and waveforms are made by the engine.

=================  ============================================================
``als-widespread`` fasciculations at every site of the montage (3-4 regions,
                   both sides), 5-60/min per site, 3-8 units per site;
                   occasional voluntary movements.
``bfs-focal``      fasciculations only in the calves (gastrocnemius, soleus),
                   on both sides or one, 5-30/min; elsewhere none.
``healthy``        no fasciculations (rare ones in foot muscles if present).
``cramps``         2+ cramps of 5 s to 3 min (log-uniform, ≤ 1/4 of the
                   recording) at 1-2 leg sites, some fasciculations.
``hd-grid``        an 8×8 grid (``Biceps L 01`` … ``64``) over one muscle,
                   20-60 FP/min from 5-10 units spreading over neighbours.
=================  ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SCENARIOS", "DEFAULT_LABELS", "Group", "Burst", "Plan", "default_labels", "make_plan"]

SCENARIOS = ("als-widespread", "bfs-focal", "healthy", "cramps", "hd-grid")

#: 16 channels over the four regions, both sides; every label fits EDF's 16 characters.
DEFAULT_LABELS = (
    "Tongue",
    "Masseter R",
    "Deltoid L",
    "Biceps L",
    "Biceps R",
    "FDI L",
    "FDI R",
    "Thoracic PSP L",
    "Thoracic PSP R",
    "Rectus abd R",
    "Vastus lat L",
    "Tib ant L",
    "Tib ant R",
    "Gastroc med L",
    "Gastroc med R",
    "Soleus R",
)

_CALF = ("gastrocnemius_medial", "gastrocnemius_lateral", "gastrocnemius", "soleus")
_FOOT = (
    "abductor_hallucis",
    "abductor_digiti_minimi_foot",
    "extensor_digitorum_brevis",
    "extensor_hallucis_brevis",
)
_CRAMP_PREF = (
    *_CALF,
    "abductor_hallucis",
    "hamstrings",
    "vastus_lateralis",
    "vastus_medialis",
    "rectus_femoris",
    "quadriceps",
    "tibialis_anterior",
)


def default_labels(scenario: str) -> list[str]:
    """The montage a scenario uses when ``sites`` is not given."""
    if scenario == "hd-grid":
        return [f"Biceps L {i:02d}" for i in range(1, 65)]
    return list(DEFAULT_LABELS)


@dataclass
class Group:
    """The channels over one site (muscle and side): one, several, or a grid."""

    site: str
    side: str
    region: str
    chans: list[int]
    labels: list[str]
    #: electrode (column, row) positions in inter-electrode distances; None unless a grid
    xy: np.ndarray | None = None


@dataclass
class Burst:
    """A cramp or voluntary movement at one or more sites (group indices)."""

    kind: str  # "cramp" | "voluntary"
    groups: list[int]
    duration_s: float
    onset_s: float = -1.0  # set by the scheduler


@dataclass
class Plan:
    fp_rate_per_min: dict[int, float] = field(default_factory=dict)
    n_units: dict[int, int] = field(default_factory=dict)
    bursts: list[Burst] = field(default_factory=list)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _cramp_candidates(groups: list[Group]) -> tuple[list[int], np.ndarray]:
    """Sites that may cramp and their weights: calf 4, foot 2, thigh/shin 1 (else any site)."""
    weight = {
        **{s: 1.0 for s in _CRAMP_PREF},
        **{s: 2.0 for s in _FOOT},
        **{s: 4.0 for s in _CALF},
    }
    cand = [g for g, grp in enumerate(groups) if grp.site in weight]
    if not cand:
        cand = list(range(len(groups)))
        w = np.ones(len(cand))
    else:
        w = np.array([weight[groups[g].site] for g in cand])
    return cand, w / w.sum()


def _cramp_duration(rng: np.random.Generator, duration_s: float) -> float:
    """Seconds to minutes: log-uniform from 5 s to 3 min, at most a quarter of the recording."""
    return _loguniform(rng, 5.0, max(6.0, min(180.0, duration_s / 4.0)))


def make_plan(
    scenario: str,
    groups: list[Group],
    duration_s: float,
    rng: np.random.Generator,
    *,
    n_cramps: int | None = None,
    n_voluntary: int | None = None,
    fp_rate_per_min: float | None = None,
) -> Plan:
    """Draw the plan of ``scenario`` for these site groups.

    ``n_cramps`` / ``n_voluntary`` override the scenario's number of bursts;
    ``fp_rate_per_min`` replaces the drawn rate of every fasciculating site.
    """
    plan = Plan()
    ng = len(groups)
    if scenario == "als-widespread":
        for g in range(ng):
            plan.fp_rate_per_min[g] = _loguniform(rng, 5.0, 60.0)
            plan.n_units[g] = int(rng.integers(3, 9))
        vol_per_s = 1 / 120
    elif scenario == "bfs-focal":
        calves = [g for g in range(ng) if groups[g].site in _CALF]
        sides = sorted({groups[g].side for g in calves})
        if len(sides) > 1 and rng.random() < 0.4:
            sides = [sides[int(rng.integers(len(sides)))]]  # one calf only
        for g in calves:
            if groups[g].side in sides:
                plan.fp_rate_per_min[g] = _loguniform(rng, 5.0, 30.0)
                plan.n_units[g] = int(rng.integers(2, 6))
        vol_per_s = 1 / 120
    elif scenario == "healthy":
        for g in range(ng):
            if groups[g].site in _FOOT:  # benign foot fasciculations are common
                plan.fp_rate_per_min[g] = _loguniform(rng, 0.5, 3.0)
                plan.n_units[g] = int(rng.integers(1, 3))
        vol_per_s = 1 / 120
    elif scenario == "cramps":
        pref, w = _cramp_candidates(groups)
        k = min(len(pref), int(rng.integers(1, 3)))
        cramp_sites = [int(x) for x in rng.choice(pref, size=k, replace=False, p=w)]
        if n_cramps is None:
            n_cramps = int(np.clip(round(duration_s / 30.0), 2, 8))
        for i in range(n_cramps):
            main = cramp_sites[i % len(cramp_sites)]
            gs = [main]
            # A third of the cramps also involve a neighbour on the same side.
            near = [
                g
                for g in range(ng)
                if g != main
                and groups[g].side == groups[main].side
                and groups[g].site in _CALF
                and groups[main].site in _CALF
            ]
            if near and rng.random() < 0.33:
                gs.append(int(rng.choice(near)))
            dur = _cramp_duration(rng, duration_s)
            plan.bursts.append(Burst("cramp", gs, float(dur)))
        others = [g for g in range(ng) if g not in cramp_sites]
        extra = (
            [int(x) for x in rng.choice(others, size=min(2, len(others)), replace=False)]
            if others
            else []
        )
        for g in cramp_sites + extra:
            plan.fp_rate_per_min[g] = _loguniform(rng, 5.0, 20.0)
            plan.n_units[g] = int(rng.integers(2, 6))
        vol_per_s = 0.0
        n_cramps = 0  # already planned
    elif scenario == "hd-grid":
        for g in range(ng):
            plan.fp_rate_per_min[g] = _loguniform(rng, 20.0, 60.0)
            plan.n_units[g] = int(rng.integers(5, 11))
        vol_per_s = 0.0
    else:
        raise ValueError(f"unknown scenario {scenario!r}")

    if fp_rate_per_min is not None:
        for g in plan.fp_rate_per_min:
            plan.fp_rate_per_min[g] = float(fp_rate_per_min)

    if n_cramps:
        pref, w = _cramp_candidates(groups)
        for _ in range(n_cramps):
            dur = _cramp_duration(rng, duration_s)
            plan.bursts.append(Burst("cramp", [int(rng.choice(pref, p=w))], float(dur)))
    if n_voluntary is None:
        n_voluntary = int(rng.poisson(duration_s * vol_per_s))
    for _ in range(n_voluntary):
        # Half the movements are local (1-2 sites on one side), half shift the body (many sites).
        if rng.random() < 0.5 or ng < 3:
            g0 = int(rng.integers(ng))
            same = [
                g
                for g in range(ng)
                if g != g0
                and groups[g].side == groups[g0].side
                and groups[g].region == groups[g0].region
            ]
            gs = [g0] + ([int(rng.choice(same))] if same and rng.random() < 0.5 else [])
        else:
            k = int(rng.integers(max(2, ng // 2), ng + 1))
            gs = sorted(int(x) for x in rng.choice(ng, size=k, replace=False))
        plan.bursts.append(Burst("voluntary", gs, float(rng.uniform(0.5, 3.0))))
    return plan
