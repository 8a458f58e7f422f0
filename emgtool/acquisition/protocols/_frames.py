"""Shared machinery of the binary decoders: frame scanning and counter unwrapping.

Decoders keep their state in a :class:`DecoderState` and are pure:
``samples, counters, state = feed(data, state)`` never mutates its input
state.  Scanning is vectorised: while the stream is in sync, every whole
frame of the buffer is checked in one numpy expression; only a corruption
costs a sliding search, so Python loops run once per corruption, never per
sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["DecoderState", "scan_frames", "unwrap_counters", "place_samples", "new_stats"]

STAT_KEYS = ("frames", "bad_frames", "resyncs", "skipped_bytes", "lost_frames", "messages")


def new_stats() -> dict:
    """Fresh decoder counters.

    ``frames`` accepted frames · ``bad_frames`` frames rejected while in sync ·
    ``resyncs`` times sync was searched for again · ``skipped_bytes`` bytes
    that belonged to no frame · ``lost_frames`` frames missing according to
    the device counter (their samples are emitted as NaN) · ``messages``
    number of device text messages seen.
    """
    return dict.fromkeys(STAT_KEYS, 0)


@dataclass(frozen=True)
class DecoderState:
    """Explicit state of an incremental decoder.

    Attributes
    ----------
    protocol : str
        Protocol name (``"cyton"``, ``"p2"`` …).
    n_channels : int
        Channels per output sample (0 while unknown, e.g. CSV before its header).
    fs : float
        Sampling rate in Hz (0 while unknown).
    buf : bytes
        Undecoded tail carried to the next call.
    synced : bool
        True while consecutive frames line up; False means "search with lookahead".
    last_abs : int or None
        Unwrapped counter of the last accepted frame.
    origin : int or None
        Unwrapped counter of the first accepted frame (output sample 0).
    next_sample : int
        Index of the next output sample.
    pending : tuple
        Protocol-specific carry (Daisy half rows, CSV partial lines, escape blocks).
    params : dict
        Protocol parameters (gains, vref, labels …).
    stats : dict
        Counters, see :func:`new_stats`.
    text : tuple of str
        Device messages decoded in the last call (banners, escape blocks, debug lines).
    """

    protocol: str
    n_channels: int
    fs: float
    buf: bytes = b""
    synced: bool = False
    last_abs: int | None = None
    origin: int | None = None
    next_sample: int = 0
    pending: tuple = ()
    params: dict = field(default_factory=dict)
    stats: dict = field(default_factory=new_stats)
    text: tuple = ()

    def replace(self, **changes) -> DecoderState:
        return dataclasses.replace(self, **changes)


def scan_frames(
    buf: bytes,
    frame_len: int,
    valid: Callable[[NDArray[np.uint8], NDArray[np.intp]], NDArray[np.bool_]],
    synced: bool,
    lookahead: bool = True,
) -> tuple[NDArray[np.intp], int, dict, bool]:
    """Find frame starts in ``buf`` with a 1-byte sliding resync.

    Parameters
    ----------
    buf : bytes
        Carried tail + new bytes.
    frame_len : int
        Bytes per frame.
    valid : callable
        ``valid(a, starts)`` → bool per start; ``a`` is ``buf`` as uint8 and every
        ``start + frame_len <= len(a)``.
    synced : bool
        Whether the previous frame ended exactly where ``buf`` starts.
    lookahead : bool
        When searching for sync, also require a valid frame right after the
        candidate.  This makes a false sync inside data (whose bogus counter
        would fake a long gap) about 1000× less likely, at the price of
        waiting for one more frame.

    Returns
    -------
    starts : ndarray of int
        Offsets of accepted frames, increasing.
    consumed : int
        Bytes of ``buf`` that are done with; carry ``buf[consumed:]``.
    counts : dict
        ``bad_frames``, ``resyncs``, ``skipped_bytes`` found in this call.
    synced : bool
        Sync state after the last accepted frame.
    """
    a = np.frombuffer(buf, np.uint8)
    n = a.size
    pos = 0
    starts: list[NDArray[np.intp]] = []
    counts = {"bad_frames": 0, "resyncs": 0, "skipped_bytes": 0}
    while True:
        if synced:
            k_max = (n - pos) // frame_len
            if k_max == 0:
                break
            cand = pos + frame_len * np.arange(k_max)
            ok = valid(a, cand)
            k = k_max if ok.all() else int(np.argmin(ok))
            if k:
                starts.append(cand[:k])
                pos += k * frame_len
            if k == k_max:
                break
            synced = False
            counts["bad_frames"] += 1
            counts["resyncs"] += 1
        need = 2 * frame_len if lookahead else frame_len
        last = n - need  # last start with enough bytes to judge
        if last < pos:
            break
        q = np.arange(pos, last + 1)
        ok = valid(a, q)
        if lookahead:
            ok &= valid(a, q + frame_len)
        hits = np.flatnonzero(ok)
        if hits.size == 0:
            counts["skipped_bytes"] += last + 1 - pos
            pos = last + 1
            break
        counts["skipped_bytes"] += int(hits[0])
        pos += int(hits[0])
        synced = True
    out = np.concatenate(starts) if starts else np.zeros(0, np.intp)
    return out, pos, counts, synced


def unwrap_counters(
    counters: NDArray, last_abs: int | None, modulus: int
) -> tuple[NDArray[np.int64], int]:
    """Unwrap device counters (mod ``modulus``) into increasing absolute numbers.

    A repeated counter is read as a full wrap (``modulus`` frames lost), the
    only reading consistent with modular counting.  Returns the absolute
    numbers and the number of frames lost in between.

    >>> unwrap_counters(np.array([254, 255, 0, 3]), None, 256)
    (array([254, 255, 256, 259]), 2)
    """
    c = np.asarray(counters, dtype=np.int64)
    if c.size == 0:
        return c, 0
    if last_abs is None:
        last_abs = int(c[0]) - 1
    d = np.diff(np.concatenate([[last_abs % modulus], c])) % modulus
    d[d == 0] = modulus
    absn = last_abs + np.cumsum(d)
    return absn, int(np.sum(d - 1))


def place_samples(
    values: NDArray, positions: NDArray[np.int64], first: int, stop: int, n_channels: int
) -> NDArray[np.float64]:
    """Output block ``[first, stop)`` with ``values[:, i]`` at ``positions[i]``, NaN elsewhere."""
    out = np.full((n_channels, stop - first), np.nan)
    if positions.size:
        out[:, positions - first] = values
    return out


def fix_counter_glitches(ctr: NDArray, prev: int | None, nxt: int | None, modulus: int) -> NDArray:
    """Repair isolated corrupted counters (a flipped bit in the counter byte).

    A counter that breaks an otherwise perfect step (``c[i-1] + 2 == c[i+1]``)
    is set to ``c[i-1] + 1``; without this one flipped bit would read as up to
    255 lost frames.  ``prev``/``nxt`` are the neighbours outside ``ctr``.

    >>> fix_counter_glitches(np.array([5, 7, 7]), 4, 8, 256).tolist()
    [5, 6, 7]
    """
    c = np.asarray(ctr, dtype=np.int64).copy()
    if c.size == 0:
        return c
    full = np.concatenate([[-1 if prev is None else prev], c, [-1 if nxt is None else nxt]])
    before, mid, after = full[:-2], full[1:-1], full[2:]
    known = (before >= 0) & (after >= 0)
    bad = known & ((after - before) % modulus == 2) & ((mid - before) % modulus != 1)
    c[bad] = (before[bad] + 1) % modulus
    return c
