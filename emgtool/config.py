"""Detector configuration: one frozen dataclass, units in every field name.

A configuration file is TOML with the same field names (any subset)::

    # emgtool.toml
    band_hz = [20.0, 450.0]
    fasc_threshold_sd = 5.0
    cramp_min_s = 3.0

``to_dict()`` goes into every summary.json, so each result says how it was made.

Examples
--------
>>> from emgtool.config import DetectorConfig
>>> cfg = DetectorConfig(fasc_threshold_sd=6.0)
>>> cfg.to_dict()["fasc_threshold_sd"]
6.0
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from emgtool.errors import ConfigError

__all__ = ["DetectorConfig", "load_config", "ALGORITHM_VERSION"]

#: Bumped whenever detection changes output for the same input and config;
#: part of the batch cache key, so a new algorithm reprocesses everything.
ALGORITHM_VERSION = "12"


@dataclass(frozen=True)
class DetectorConfig:
    """All parameters of the detection pipeline (defaults: ../shared/docs/domain.md §6)."""

    # --- preprocessing
    band_hz: tuple[float, float] = (20.0, 450.0)
    """Band-pass corners; the upper one is kept below 0.45·fs."""
    filter_order: int = 2
    """Butterworth order of each band-pass edge (2: little ringing after large potentials)."""
    mains_hz: float | None = None
    """Mains frequency; None detects 50 vs 60 Hz from the data; 0 disables removal."""
    mains_harmonics: int = 8
    """How many mains harmonics (including the fundamental) to notch, below Nyquist."""
    warmup_s: float = 0.1
    """Filter settling time at the start (and after gaps) during which nothing is detected.

    Filters start from the steady state of the first sample, so a DC offset
    causes no step transient; only the band-pass's own ringing remains."""
    noise_window_s: float = 10.0
    """History of the noise floor: a low percentile of the robust SDs (MAD) of the
    1-s blocks within this window before the current one (rounded to whole seconds)."""

    # --- fasciculation potentials
    fasc_threshold_sd: float = 4.0
    """Candidate threshold in robust noise SDs (σ = MAD / 0.6745 of the filtered signal).
    Only a pre-selection: the noise test (``fasc_noise_per_h``) sets the false rate."""
    fasc_floor_uv: float = 20.0
    """Absolute floor of the candidate threshold (peak, µV)."""
    fasc_min_pp_uv: float = 50.0
    """Minimum peak-to-peak amplitude of a counted potential (the ≥50 µV surface rule)."""
    fasc_noise_per_h: float | None = 1.0
    """Noise test: a candidate must carry a potential's energy (matched-filter bank,
    ``pipeline/wavelets.py``) at the level Gaussian noise reaches this often per
    channel-hour; ``None`` or 0 turns the test off."""
    fasc_fdr: float = 0.01
    """Share of noise crossings accepted among the counted potentials of a busy site (a
    false discovery rate): where a site fires clear potentials often, the noise test's
    level comes down until noise would make this share of them (never above the rate of
    ``fasc_noise_per_h``); 0 keeps the strict level everywhere."""
    refractory_ms: float = 4.0
    """Dead time after a potential on a site (motor-unit refractory period, 3–4 ms)."""
    doublet_ms: float = 20.0
    """Same shape repeating within this interval forms a doublet/multiplet."""
    pair_ms: tuple[float, float] = (10.0, 110.0)
    """Same shape repeating within this interval forms an F-wave-like pair."""
    isolated_ms: float = 250.0
    """A potential is isolated when no other one lies within this interval on both sides."""
    common_mode_sites: int = 3
    """A potential seen at the same instant on at least this many distant sites is an artefact."""
    common_mode_ms: float = 5.0
    """Coincidence window for the common-mode rule."""
    ecg_reject: bool = True
    """Reject potentials locked to the cardiac rhythm."""

    # --- sustained activity and cramps
    activity_sd: float = 2.0
    """A 10-ms bin is active when its RMS exceeds this many noise SDs, or the RMS that
    noise alone reaches in one bin of 30,000 if that is higher (low sampling rates);
    runs of active bins are sustained activity (docs/detection.md §6)."""
    sustained_min_s: float = 0.5
    """Minimum duration of sustained activity."""
    sustained_merge_s: float = 0.1
    """Gaps shorter than this inside sustained activity are bridged."""
    cramp_min_s: float = 3.0
    """Minimum duration of a cramp; shorter sustained activity is 'voluntary'."""
    cramp_max_sites_fraction: float = 0.5
    """Activity on more than this fraction of sites at once is voluntary/artefact, not a cramp."""

    # --- shapes
    max_shapes: int = 8
    """Upper bound on shape clusters per site."""

    # --- quality
    flat_uv: float = 0.5
    """A channel whose robust SD is below this (µV) is flat/disconnected."""

    def __post_init__(self) -> None:
        lo, hi = self.band_hz
        if not (0 < lo < hi):
            raise ConfigError(
                f"band_hz must be (low, high) with 0 < low < high, got {self.band_hz}"
            )
        if self.noise_window_s < 1.0:
            raise ConfigError(f"noise_window_s must be at least 1 s, got {self.noise_window_s}")
        if self.fasc_threshold_sd <= 0 or self.cramp_min_s <= 0 or self.activity_sd <= 0:
            raise ConfigError("fasc_threshold_sd, activity_sd and cramp_min_s must be positive")
        if not 0 <= self.fasc_fdr < 1:
            raise ConfigError(f"fasc_fdr must be a share in [0, 1), got {self.fasc_fdr}")
        if self.fasc_noise_per_h is not None and not self.fasc_noise_per_h >= 0:
            raise ConfigError(
                f"fasc_noise_per_h must be a rate >= 0 (or null), got {self.fasc_noise_per_h}"
            )
        object.__setattr__(self, "band_hz", (float(lo), float(hi)))
        object.__setattr__(self, "pair_ms", tuple(float(v) for v in self.pair_ms))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict of every parameter."""
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in fields(self)
        }

    def replace(self, **changes) -> DetectorConfig:
        return dataclasses.replace(self, **changes)

    def hash(self) -> str:
        """Stable hash of the parameters and the algorithm version (batch cache key)."""
        doc = json.dumps({"algorithm": ALGORITHM_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, doc: dict, *, source: str = "config") -> DetectorConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(doc) - set(known))
        if unknown:
            raise ConfigError(
                f"{source}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        kw = {}
        for k, v in doc.items():
            if isinstance(v, list):
                v = tuple(v)
            kw[k] = v
        try:
            return cls(**kw)
        except TypeError as e:
            raise ConfigError(f"{source}: {e}") from None


def load_config(path: str | Path | None) -> DetectorConfig:
    """Configuration from a TOML file, or the defaults for None."""
    if path is None:
        return DetectorConfig()
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    doc = doc.get("detector", doc)
    return DetectorConfig.from_dict(doc, source=str(path))
