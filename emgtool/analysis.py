"""The result of analysing one recording: :class:`Analysis`.

Everything reports, exports and batch tables need, and nothing that
identifies the patient (see ``recording_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emgtool.config import DetectorConfig
from emgtool.recording import Channel

__all__ = ["SiteResult", "Analysis"]


@dataclass
class SiteResult:
    """What was observed at one site (one muscle on one side).

    Attributes
    ----------
    site, side, region : str
        As in :class:`~emgtool.recording.Channel`.
    channels : list of str
        Labels of the channels on this site (usable ones first).
    rest_s : float
        Artefact-free rest time observed: time when the site was usable and
        not in sustained activity (cramp, voluntary) or excluded spans.
    excluded_s : dict
        Seconds excluded by reason (``"cramp"``, ``"voluntary"``, ``"clipped"``,
        ``"gap"``, ``"warmup"``, ``"artifact"``).
    quality : list of str
        Channel-quality flags (``"flat:EMG3"``, ``"clipped:EMG1"``, ``"mains"``, ``"ecg"``…).
    noise_uv : float
        Median robust noise SD of the filtered signal on the site's channels.
    waveforms : ndarray, shape (n, n_window)
        Filtered waveforms (µV) of up to a few hundred fasciculations, aligned on
        their peak, on the channel where each is largest; rows match
        ``waveform_event_index``.
    waveform_event_index : ndarray of int
        Row index into :attr:`Analysis.events` for each waveform.
    """

    site: str
    side: str
    region: str
    channels: list[str]
    rest_s: float = 0.0
    excluded_s: dict = field(default_factory=dict)
    quality: list[str] = field(default_factory=list)
    noise_uv: float = float("nan")
    waveforms: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    waveform_event_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.side)


@dataclass
class Analysis:
    """The outcome of :func:`emgtool.analyze`.

    Attributes
    ----------
    events : DataFrame
        The event table (columns of :data:`emgtool.events.EVENT_COLUMNS`).
    sites : list of SiteResult
        One per (site, side), in montage order.
    fs : float
    n_samples : int
    channels : tuple of Channel
    recording_id : str
        Pseudonymous id (hash of the file's content); never a name from the header.
    source : dict
        ``file`` (base name), ``format``, ``start_time`` (ISO or None, dropped
        unless identity is kept), ``reader_warnings`` (list of str).
    config : DetectorConfig
    warnings : list of str
        Visible warnings about the analysis (low fs, short rest, mains, ...).
    gaps : list of (start, stop)
        Sample ranges with no data (NaN), half-open.
    channel_quality : dict
        Per channel label: ``noise_uv``, ``mains_ratio``, ``clipped_s``, ``flags``.
    mains_hz : float or None
        Mains frequency detected (or configured), None if none found.
    identity : dict
        Patient/recording identifiers from the header; empty unless the user
        asked to keep them (``--keep-identity``).
    """

    events: pd.DataFrame
    sites: list[SiteResult]
    fs: float
    n_samples: int
    channels: tuple[Channel, ...]
    recording_id: str
    source: dict
    config: DetectorConfig
    warnings: list[str] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    channel_quality: dict = field(default_factory=dict)
    mains_hz: float | None = None
    identity: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def events_of(self, kind: str) -> pd.DataFrame:
        return self.events[self.events["trial_type"] == kind]
