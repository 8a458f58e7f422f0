"""Compact storage of decided events and of the waveforms kept for shape clustering.

A day-long recording yields about a million events (most of them heart beats
rejected as ECG on trunk sites).  As Python dicts they cost ~1-2 kB each;
here an event is one row of fixed-width numpy columns (~70 bytes), grown in
blocks, so memory stays small and proportional to what a user gets back.

``step`` still hands the events it decided as dicts (the live recorder reads
them); they are moved into the :class:`EventStore` at the end of each call.

Examples
--------
>>> import numpy as np
>>> from emgtool.pipeline.store import EventStore
>>> es = EventStore(site_chs=[np.array([0, 1])])
>>> es.extend([{"kind": "fasciculation", "site_i": 0, "start": 10, "stop": 40, "peak": 20,
...             "channels": [1], "amplitude_uv": 80.0, "reason": "n/a"}])
>>> len(es), es.channels_of(0)
(1, [1])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["EventStore", "WaveStore", "KINDS"]

#: Event kinds, coded by position.
KINDS = ("fasciculation", "artifact", "cramp", "voluntary")

_COLUMNS = {
    "start": np.int64,
    "stop": np.int64,
    "peak": np.int64,
    "site_i": np.int32,
    "kind": np.int8,
    "reason": np.int16,
    "amplitude_uv": np.float64,
    "duration_ms": np.float64,  # NaN: not measured (the span's length is used)
    "phases": np.int32,  # -1: not measured
    "turns": np.int32,
    "area_uv_ms": np.float64,
    "mean_amplitude_uv": np.float64,
    "chmask": np.uint64,  # bit i = the site's i-th channel saw the event
}
_FLOAT_DEFAULT = ("amplitude_uv", "duration_ms", "area_uv_ms", "mean_amplitude_uv")
_INT_DEFAULT = ("phases", "turns")


BLOCK_ROWS = 65536  # rows per storage block (~4.5 MB): growth never copies what is stored


@dataclass
class EventStore:
    """Decided events of one recording as numpy columns grown in blocks.

    ``site_chs`` lists each site's channel indices (ascending); an event's
    channels are stored as a bit mask over its site's channels.  Channel lists
    that a mask cannot hold (a site of more than 64 channels, or an order
    other than the site's) are kept aside, keyed by event number.

    Rows are appended into fixed-size blocks, so memory is the rows stored
    plus at most one partly filled block (doubling an array would copy it and
    leave up to half of it unused).  :meth:`column` joins the blocks once.
    """

    site_chs: list
    n: int = 0
    blocks: list = field(default_factory=list)  # [{name: array}], all but the last full
    reasons: list = field(default_factory=lambda: ["n/a"])
    odd_channels: dict = field(default_factory=dict)  # event number -> channel list

    def __post_init__(self) -> None:
        self._pos = [{int(c): i for i, c in enumerate(chs)} for chs in self.site_chs]
        self._room = 0  # free rows in the last block

    def __len__(self) -> int:
        return self.n

    def column(self, name: str) -> NDArray:
        """All ``len(self)`` values of a column (a view of the joined blocks)."""
        if len(self.blocks) > 1:
            used = self.n
            joined = {}
            for k in _COLUMNS:
                joined[k] = np.concatenate([blk[k] for blk in self.blocks])[:used]
                for blk in self.blocks:  # free each column's blocks as soon as joined
                    blk[k] = None
            self.blocks = [joined]
            self._room = 0
        if not self.blocks:
            return np.zeros(0, _COLUMNS[name])
        return self.blocks[0][name][: self.n]

    def _rows(self, k: int) -> list[tuple[dict, slice, int]]:
        """Where the next ``k`` rows go: (block, slice in it, offset in the new rows)."""
        out = []
        done = 0
        while done < k:
            if self._room == 0:
                self.blocks.append({name: np.zeros(BLOCK_ROWS, t) for name, t in _COLUMNS.items()})
                self._room = BLOCK_ROWS
            blk = self.blocks[-1]
            size = len(blk["start"])
            take = min(self._room, k - done)
            first = size - self._room
            out.append((blk, slice(first, first + take), done))
            self._room -= take
            done += take
        return out

    def _reason_code(self, reason: str) -> int:
        try:
            return self.reasons.index(reason)
        except ValueError:
            self.reasons.append(reason)
            return len(self.reasons) - 1

    def extend(self, events: list[dict]) -> None:
        """Append event dicts (as the pipeline emits them), in order."""
        k = len(events)
        if k == 0:
            return
        vals = {
            "start": [e["start"] for e in events],
            "stop": [e["stop"] for e in events],
            "peak": [e["peak"] for e in events],
            "site_i": [e["site_i"] for e in events],
            "kind": [KINDS.index(e["kind"]) for e in events],
            "reason": [self._reason_code(e.get("reason", "n/a")) for e in events],
        }
        for name in _FLOAT_DEFAULT:
            vals[name] = [e.get(name, np.nan) for e in events]
        for name in _INT_DEFAULT:
            vals[name] = [e.get(name, -1) for e in events]
        masks = np.zeros(k, np.uint64)
        for j, e in enumerate(events):
            pos = self._pos[e["site_i"]]
            idx = [pos.get(int(ch), -1) for ch in e["channels"]]
            if min(idx, default=0) >= 0 and max(idx, default=0) < 64 and idx == sorted(set(idx)):
                masks[j] = sum(1 << i for i in idx)
            else:
                self.odd_channels[self.n + j] = [int(ch) for ch in e["channels"]]
        arrays = {name: np.asarray(v, _COLUMNS[name]) for name, v in vals.items()}
        arrays["chmask"] = masks
        for blk, sl, off in self._rows(k):
            for name, v in arrays.items():
                blk[name][sl] = v[off : off + sl.stop - sl.start]
        self.n += k

    def channels_of(self, no: int) -> list[int]:
        """Channel indices of event number ``no``."""
        if no in self.odd_channels:
            return list(self.odd_channels[no])
        m = int(self.column("chmask")[no])
        chs = self.site_chs[int(self.column("site_i")[no])]
        return [int(chs[i]) for i in range(min(64, len(chs))) if m >> i & 1]


@dataclass
class WaveStore:
    """Waveforms of one site's fasciculations (float16, at most ``cap``), with their event numbers."""

    n_window: int
    cap: int
    n: int = 0
    nos: NDArray = field(default_factory=lambda: np.zeros(0, np.int64))
    waves: NDArray | None = None

    def __len__(self) -> int:
        return self.n

    def add(self, no: int, wave: NDArray) -> bool:
        """Keep ``wave`` for event ``no``; False once the cap is reached."""
        if self.n >= self.cap:
            return False
        if self.waves is None or self.n == len(self.nos):
            new_cap = min(self.cap, max(256, 2 * len(self.nos)))
            nos = np.zeros(new_cap, np.int64)
            waves = np.zeros((new_cap, self.n_window), np.float16)
            nos[: self.n] = self.nos[: self.n]
            if self.waves is not None:
                waves[: self.n] = self.waves[: self.n]
            self.nos, self.waves = nos, waves
        self.nos[self.n] = no
        # float16 keeps 3 significant digits of µV: plenty for shapes, half the memory.
        self.waves[self.n] = wave
        self.n += 1
        return True

    def lookup(self, nos: NDArray) -> tuple[NDArray, NDArray]:
        """For event numbers ``nos``: which have a waveform, and those waveforms (float32)."""
        kept = self.nos[: self.n]
        nos = np.asarray(nos, np.int64)
        pos = np.searchsorted(kept, nos)
        have = (
            (pos < self.n) & (kept[np.minimum(pos, max(self.n - 1, 0))] == nos)
            if self.n
            else (np.zeros(len(nos), bool))
        )
        if not have.any():
            return have, np.zeros((0, self.n_window), np.float32)
        return have, self.waves[pos[have]].astype(np.float32)
