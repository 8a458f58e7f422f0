"""OpenBCI Cyton (8 ch, 250 Hz) and Cyton + Daisy (16 ch, 125 Hz) over the USB dongle.

Packet (33 bytes, offsets 0-based)::

    0      header 0xA0
    1      sample counter, uint8, wraps 255 → 0
    2..25  8 × int24 big-endian two's complement (ch n at 2 + 3(n-1))
    26..31 aux (meaning set by the footer)
    32     footer 0xC0..0xC6

Scale: ``µV/count = 4.5 V / gain / (2**23 - 1) * 1e6`` (0.0223517 at gain 24).
The stream carries raw counts, so the host tracks gains from the ``x…X``
commands it sends (:func:`track_command`).

Daisy: packets still come at 250 Hz; an *even* counter carries the Daisy
ADS (ch 9-16), the following *odd* counter the on-board ADS (ch 1-8); the
pair forms one 16-channel row, so fs is 125 Hz per channel.  The first row
after the start command is invalid and is returned as NaN (a gap).

Examples
--------
>>> import numpy as np
>>> st = init()
>>> pkt = bytes.fromhex("a0070000 01ffffff 7fffff80 0000".replace(" ", "")) + bytes(18) + b"\\xc0"
>>> x, c, st = feed(pkt + pkt[:1] + bytes([8]) + pkt[2:], st)
>>> x[:4, 0].tolist(), c.tolist()
([1.0, -1.0, 8388607.0, -8388608.0], [7])
>>> flush(st)[1].tolist()  # the last frame waits for the next one (counter check)
[8]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from emgtool.acquisition.protocols._frames import (
    DecoderState,
    fix_counter_glitches,
    place_samples,
    scan_frames,
    unwrap_counters,
)

__all__ = [
    "init",
    "feed",
    "flush",
    "encode",
    "scale_uv",
    "track_command",
    "FS_HZ",
    "FRAME_LEN",
    "GAINS",
    "BAUD",
]

FRAME_LEN = 33
HEADER = 0xA0
FS_HZ = 250.0
BAUD = 115200
#: gain code '0'..'6' in the ``x C P G I B S2 S1 X`` command → PGA gain
GAINS = (1, 2, 4, 6, 8, 12, 24)
#: channel characters of ``x…X`` commands: '1'..'8' on board, 'Q'..'I' on the Daisy
_CHANNEL_CHARS = "12345678QWERTYUI"

#: start / stop commands; ``v`` soft-resets (banner ending ``$$$``), ``d`` = defaults (gain 24)
START_COMMANDS = (b"s", b"v", b"d", b"b")
STOP_COMMANDS = (b"s",)


def init(daisy: bool = False, gains: list[int] | None = None) -> DecoderState:
    """A fresh Cyton (or Cyton + Daisy) decoder; every gain defaults to 24."""
    n = 16 if daisy else 8
    g = list(gains) if gains is not None else [24] * n
    if len(g) != n:
        raise ValueError(f"need {n} gains, got {len(g)}")
    return DecoderState(
        protocol="cyton-daisy" if daisy else "cyton",
        n_channels=n,
        fs=FS_HZ / 2 if daisy else FS_HZ,
        params={"daisy": daisy, "gains": g},
    )


def _valid(a: NDArray[np.uint8], s: NDArray[np.intp]) -> NDArray[np.bool_]:
    foot = a[s + FRAME_LEN - 1]
    return (a[s] == HEADER) & (foot >= 0xC0) & (foot <= 0xC6)


def _int24(a: NDArray[np.uint8], starts: NDArray[np.intp]) -> NDArray[np.float64]:
    """8 × int24 BE of each frame → (8, n_frames)."""
    idx = starts[:, None] + 2 + 3 * np.arange(8)[None, :]
    v = (a[idx].astype(np.int32) << 16) | (a[idx + 1].astype(np.int32) << 8) | a[idx + 2]
    v = np.where(v >= 1 << 23, v - (1 << 24), v)
    return v.T.astype(np.float64)


def feed(
    data: bytes, state: DecoderState, final: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.int64], DecoderState]:
    """Decode more bytes.

    The last complete frame is held back until the next one arrives (4 ms),
    so that a corrupted counter byte can be recognised and repaired;
    ``final=True`` (used by :func:`flush`) releases it.

    Returns
    -------
    samples : ndarray (n_channels, n)
        Raw ADC counts; NaN where the counter says frames were lost.
    counters : ndarray (n,)
        Device counter of each sample (Daisy: of the odd packet); -1 if lost.
    state : DecoderState
    """
    buf = state.buf + bytes(data)
    starts, consumed, counts, synced = scan_frames(buf, FRAME_LEN, _valid, state.synced)
    a = np.frombuffer(buf, np.uint8)
    stats = dict(state.stats)
    for k, v in counts.items():
        stats[k] += v
    hold = not final and starts.size > 0 and consumed == int(starts[-1]) + FRAME_LEN
    nxt = None
    if hold:  # keep the last frame until the next one: its counter checks this one's
        nxt = int(a[starts[-1] + 1])
        consumed, starts, synced = int(starts[-1]), starts[:-1], True
    stats["frames"] += int(starts.size)
    prev = None if state.last_abs is None else state.last_abs % 256
    ctr = fix_counter_glitches(a[starts + 1].astype(np.int64), prev, nxt, 256)
    absn, lost = unwrap_counters(ctr, state.last_abs, 256)
    stats["lost_frames"] += lost
    vals = _int24(a, starts)
    rest = buf[consumed:]
    if starts.size == 0:
        empty = np.zeros((state.n_channels, 0))
        return empty, np.zeros(0, np.int64), state.replace(buf=rest, synced=synced, stats=stats)
    last_abs = int(absn[-1])
    if not state.params["daisy"]:
        origin = int(absn[0]) if state.origin is None else state.origin
        pos = absn - origin
        first, stop = state.next_sample, int(pos[-1]) + 1
        out = place_samples(vals, pos, first, stop, 8)
        cout = np.full(stop - first, -1, np.int64)
        cout[pos - first] = ctr
        new = state.replace(
            buf=rest,
            synced=synced,
            last_abs=last_abs,
            origin=origin,
            next_sample=stop,
            stats=stats,
        )
        return out, cout, new
    # Daisy: row r = packets origin + 2r (even: ch 9-16) and origin + 2r + 1 (odd: ch 1-8).
    origin = int(absn[0]) - int(absn[0]) % 2 if state.origin is None else state.origin
    rows = (absn - origin) // 2
    half = (absn - origin) % 2
    first = state.next_sample
    stop = int(rows[-1]) + 1
    out = np.full((16, stop - first), np.nan)
    cout = np.full(stop - first, -1, np.int64)
    if state.pending:
        out[:, 0] = state.pending[0]
    ev, od = half == 0, half == 1
    out[8:, rows[ev] - first] = vals[:, ev]
    out[:8, rows[od] - first] = vals[:, od]
    cout[rows[od] - first] = ctr[od]
    if first == 0 and stop > 0:
        out[:, 0] = np.nan  # the Daisy's first row is invalid (OpenBCI): a gap, not data
    pending: tuple = ()
    if half[-1] == 0:  # the odd half of the last row may still come
        pending = (out[:, -1].copy(),)
        out, cout, stop = out[:, :-1], cout[:-1], stop - 1
    new = state.replace(
        buf=rest,
        synced=synced,
        last_abs=last_abs,
        origin=origin,
        next_sample=stop,
        pending=pending,
        stats=stats,
    )
    return out, cout, new


def flush(state: DecoderState) -> tuple[NDArray[np.float64], NDArray[np.int64], DecoderState]:
    """Emit what is held back (the last frame, a Daisy half row) at the end of a stream."""
    x, c, state = feed(b"", state, final=True)
    if state.params["daisy"] and state.pending:
        row = state.pending[0][:, None]
        if state.next_sample == 0:
            row = np.full_like(row, np.nan)  # the first row is invalid (see feed)
        x = np.concatenate([x, row], axis=1)
        c = np.concatenate([c, np.full(1, -1, np.int64)])
        state = state.replace(pending=(), next_sample=state.next_sample + 1)
    return x, c, state


def scale_uv(state: DecoderState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(offset, scale)`` per channel: µV = (counts - offset) * scale."""
    g = np.asarray(state.params["gains"], dtype=np.float64)
    return np.zeros_like(g), 4.5 / g / (2**23 - 1) * 1e6


def track_command(cmd: bytes, state: DecoderState) -> DecoderState:
    """Follow gain changes made by commands the host sends (``x1060110X``, ``d``).

    >>> st = track_command(b"x1010110X", init())
    >>> st.params["gains"][:2]
    [2, 24]
    """
    gains = list(state.params["gains"])
    text = cmd.decode("ascii", "replace")
    if "d" in text:  # channel defaults: gain 24 everywhere
        gains = [24] * len(gains)
    i = text.find("x")
    while i >= 0 and i + 8 < len(text) + 1:
        chunk = text[i : i + 9]
        if len(chunk) == 9 and chunk[8] == "X":
            ch = _CHANNEL_CHARS.find(chunk[1])
            g = chunk[3]
            if 0 <= ch < len(gains) and g.isdigit() and int(g) < len(GAINS):
                gains[ch] = GAINS[int(g)]
        i = text.find("x", i + 1)
    return state.replace(params={**state.params, "gains": gains})


def encode(
    counts: NDArray,
    start_counter: int = 0,
    *,
    daisy: bool = False,
    footer: int = 0xC0,
) -> bytes:
    """Packets for ``counts`` (n_channels, n) int24 values (for fakes and tests).

    Daisy: ``counts`` is (16, n_rows); each row becomes an even packet
    (ch 9-16) then an odd one (ch 1-8); ``start_counter`` must be even.

    >>> encode(np.array([[1], [-1], [2**23 - 1], [-(2**23)], [0], [0], [0], [0]]), 7)[:14].hex()
    'a007000001ffffff7fffff800000'
    """
    c = np.asarray(counts, dtype=np.int64)
    if daisy:
        if c.shape[0] != 16:
            raise ValueError("Daisy needs 16 channels")
        n = c.shape[1]
        inter = np.empty((8, 2 * n), np.int64)
        inter[:, 0::2] = c[8:]
        inter[:, 1::2] = c[:8]
        c = inter
    elif c.shape[0] != 8:
        raise ValueError("Cyton needs 8 channels")
    n = c.shape[1]
    c = np.clip(c, -(2**23), 2**23 - 1) & 0xFFFFFF
    pk = np.zeros((n, FRAME_LEN), np.uint8)
    pk[:, 0] = HEADER
    pk[:, 1] = (start_counter + np.arange(n)) % 256
    for k in range(3):
        pk[:, 2 + k : 26 : 3] = ((c.T >> (16 - 8 * k)) & 0xFF).astype(np.uint8)
    pk[:, 32] = footer
    return pk.tobytes()
