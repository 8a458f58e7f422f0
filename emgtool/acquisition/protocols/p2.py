"""OpenEEG ModularEEG "P2" packets: Olimex SHIELD-EKG-EMG, EEG-SMT.

Packet (17 bytes, 256 Hz, 57600 8N1, one-way: the device takes no commands)::

    0-1   sync 0xA5 0x5A
    2     version 0x02
    3     packet counter, uint8
    4..15 6 × uint16 big-endian, 10-bit (0..1023); ch n at 4 + 2(n-1)
    16    switches PD5..PD2 in bits 3..0

The sync is unambiguous (data high bytes are ≤ 0x03, switches ≤ 0x0F), so
``A5 5A 02`` plus those range checks identify a packet.

Units: counts × Vref/1023 are volts at the ADC pin; the shield's analog gain
is not documented reliably, so the scale to µV uses a configurable gain
(default :data:`DEFAULT_GAIN`, nominal and *uncalibrated*: calibrate against
the board's CAL_SIG square wave).  The 512-count mid-scale is the zero.

>>> import numpy as np
>>> pkt = bytes.fromhex("a55a0239 01cf0214 01ff01fc 02230204 01".replace(" ", ""))
>>> x, c, st = flush(feed(pkt, init())[2])  # a lone packet waits for a next one
>>> x[:, 0].tolist(), c.tolist()
([463.0, 532.0, 511.0, 508.0, 547.0, 516.0], [57])
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

__all__ = ["init", "feed", "flush", "encode", "scale_uv", "FS_HZ", "FRAME_LEN", "BAUD"]

FRAME_LEN = 17
FS_HZ = 256.0
BAUD = 57600
N_CH = 6
#: Nominal analog gain used to express counts in µV; NOT a calibration.
DEFAULT_GAIN = 2848.0
DEFAULT_VREF = 5.0
START_COMMANDS: tuple[bytes, ...] = ()
STOP_COMMANDS: tuple[bytes, ...] = ()


def init(
    gain: float = DEFAULT_GAIN, vref: float = DEFAULT_VREF, lookahead: bool = False
) -> DecoderState:
    """A fresh P2 decoder.  ``gain`` is the analog gain from counts to µV (uncalibrated)."""
    return DecoderState(
        protocol="p2",
        n_channels=N_CH,
        fs=FS_HZ,
        params={"gain": float(gain), "vref": float(vref), "lookahead": lookahead},
    )


def _valid(a: NDArray[np.uint8], s: NDArray[np.intp]) -> NDArray[np.bool_]:
    ok = (a[s] == 0xA5) & (a[s + 1] == 0x5A) & (a[s + 2] == 0x02) & (a[s + 16] <= 0x0F)
    for k in range(N_CH):
        ok &= a[s + 4 + 2 * k] <= 0x03
    return ok


def feed(
    data: bytes, state: DecoderState, final: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.int64], DecoderState]:
    """Decode more bytes → (counts (6, n) with NaN for lost packets, counters, state).

    The last complete packet is held back until the next one arrives, so a
    corrupted counter byte can be recognised; ``final=True`` releases it.
    """
    buf = state.buf + bytes(data)
    starts, consumed, counts, synced = scan_frames(
        buf, FRAME_LEN, _valid, state.synced, lookahead=state.params.get("lookahead", False)
    )
    stats = dict(state.stats)
    for k, v in counts.items():
        stats[k] += v
    a = np.frombuffer(buf, np.uint8)
    hold = not final and starts.size > 0 and consumed == int(starts[-1]) + FRAME_LEN
    nxt = None
    if hold:  # keep the last packet until the next one: its counter checks this one's
        nxt = int(a[starts[-1] + 3])
        consumed, starts, synced = int(starts[-1]), starts[:-1], True
    stats["frames"] += int(starts.size)
    rest = buf[consumed:]
    if starts.size == 0:
        return (
            np.zeros((N_CH, 0)),
            np.zeros(0, np.int64),
            state.replace(buf=rest, synced=synced, stats=stats),
        )
    prev = None if state.last_abs is None else state.last_abs % 256
    ctr = fix_counter_glitches(a[starts + 3].astype(np.int64), prev, nxt, 256)
    absn, lost = unwrap_counters(ctr, state.last_abs, 256)
    stats["lost_frames"] += lost
    idx = starts[:, None] + 4 + 2 * np.arange(N_CH)[None, :]
    vals = ((a[idx].astype(np.int32) << 8) | a[idx + 1]).T.astype(np.float64)
    origin = int(absn[0]) if state.origin is None else state.origin
    pos = absn - origin
    first, stop = state.next_sample, int(pos[-1]) + 1
    out = place_samples(vals, pos, first, stop, N_CH)
    cout = np.full(stop - first, -1, np.int64)
    cout[pos - first] = ctr
    return (
        out,
        cout,
        state.replace(
            buf=rest,
            synced=synced,
            last_abs=int(absn[-1]),
            origin=origin,
            next_sample=stop,
            stats=stats,
        ),
    )


def flush(state: DecoderState):
    """Release the packet held back for the counter check (end of a stream)."""
    return feed(b"", state, final=True)


def scale_uv(state: DecoderState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(offset, scale)``: µV = (counts - 512) × Vref/1023 / gain × 1e6 (uncalibrated)."""
    p = state.params
    s = p["vref"] / 1023.0 / p["gain"] * 1e6
    return np.full(N_CH, 512.0), np.full(N_CH, s)


def encode(counts: NDArray, start_counter: int = 0, switches: int = 0x01) -> bytes:
    """Packets for ``counts`` (6, n) in 0..1023.

    >>> encode(np.array([[463], [532], [511], [508], [547], [516]]), 57).hex()
    'a55a023901cf021401ff01fc0223020401'
    """
    c = np.clip(np.asarray(counts, dtype=np.int64), 0, 1023)
    if c.shape[0] != N_CH:
        raise ValueError("P2 carries 6 channels")
    n = c.shape[1]
    pk = np.zeros((n, FRAME_LEN), np.uint8)
    pk[:, 0], pk[:, 1], pk[:, 2] = 0xA5, 0x5A, 0x02
    pk[:, 3] = (start_counter + np.arange(n)) % 256
    pk[:, 4:16:2] = (c.T >> 8).astype(np.uint8)
    pk[:, 5:16:2] = (c.T & 0xFF).astype(np.uint8)
    pk[:, 16] = switches & 0x0F
    return pk.tobytes()
