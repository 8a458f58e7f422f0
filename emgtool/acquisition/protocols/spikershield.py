"""Backyard Brains Muscle SpikerShield / SpikerBox: MSB-flag framing at 10 kHz / N.

One frame = one sample of each of N channels, 2 bytes per channel.  The MSB
of a byte is set only on the first byte of a frame::

    byte 2k   = (v >> 7) & 0x7F   (| 0x80 on channel 1)
    byte 2k+1 = v & 0x7F

Values are 10-bit (Arduino shields) or 14-bit (Human SpikerBox, Neuron Pro).
fs = 10 kHz / N (1 ch: 10 kHz … 6 ch: 1666 Hz).  Newer devices interleave
escape blocks ``FF FF 01 01 80 FF`` ASCII ``FF FF 01 01 81 FF`` (``EVNT:2;``);
they are stripped *before* framing (``FF FF`` can never be a frame) and
reported as device messages.

There is no counter: a frame cut short by a dropped byte (the next MSB comes
too early) is emitted as one NaN sample so sample indices stay true for the
common fault; garbage without MSB bytes between frames is skipped.

Units: raw ADC counts, uncalibrated; µV = (counts - 2**(bits-1)) × vref/2**bits
/ gain × 1e6 with a nominal, configurable ``gain``.

>>> x, c, st = feed(bytes.fromhex("840c877fff7f"), init(n_channels=1, bits=14))
>>> x.tolist()
[[524.0, 1023.0, 16383.0]]
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from emgtool.acquisition.protocols._frames import DecoderState

__all__ = ["init", "feed", "flush", "encode", "scale_uv", "BAUD", "fs_for"]

BAUD = 230400
ESC_START = b"\xff\xff\x01\x01\x80\xff"
ESC_END = b"\xff\xff\x01\x01\x81\xff"
#: Nominal analog gain used to express counts in µV; NOT a calibration.
DEFAULT_GAIN = 1000.0
DEFAULT_VREF = 5.0
_HIGH = re.compile(rb"[\x80-\xff]")
_MAX_ESCAPE = 1024  # an escape block longer than this is corrupt: give up on it
STOP_COMMANDS = (b"h:;\n",)


def fs_for(n_channels: int) -> float:
    """Sampling rate per channel: 10 kHz shared by the channels."""
    return 10000.0 / n_channels


def start_commands(n_channels: int) -> tuple[bytes, ...]:
    """Set the channel count, then start (Pro boxes; the shields stream from reset)."""
    return (f"c:{n_channels};\n".encode(), b"start:;\n")


def init(
    n_channels: int = 1, bits: int = 10, gain: float = DEFAULT_GAIN, vref: float = DEFAULT_VREF
) -> DecoderState:
    """A fresh decoder for ``n_channels`` (1-6) of ``bits``-bit samples."""
    if not 1 <= n_channels <= 6:
        raise ValueError(f"SpikerShield streams 1 to 6 channels, got {n_channels}")
    if bits not in (10, 14):
        raise ValueError(f"bits must be 10 or 14, got {bits}")
    return DecoderState(
        protocol="spikershield",
        n_channels=n_channels,
        fs=fs_for(n_channels),
        pending=(b"", False, b""),  # raw carry, inside an escape block, escape text so far
        params={"bits": bits, "gain": float(gain), "vref": float(vref), "started": False},
    )


def _partial_suffix(raw: bytes, start: int, marker: bytes) -> int:
    """Length of the longest proper prefix of ``marker`` that ``raw[start:]`` ends with."""
    for k in range(min(len(marker) - 1, len(raw) - start), 0, -1):
        if raw.endswith(marker[:k]):
            return k
    return 0


def strip_escapes(
    raw: bytes, in_esc: bool, esc: bytes
) -> tuple[bytes, bytes, bool, bytes, list[str]]:
    """Remove escape blocks; returns (data, carry, in_esc, esc_text, messages)."""
    out, msgs, i = [], [], 0
    while True:
        if not in_esc:
            j = raw.find(ESC_START, i)
            if j < 0:
                keep = _partial_suffix(raw, i, ESC_START)
                out.append(raw[i : len(raw) - keep])
                return b"".join(out), raw[len(raw) - keep :], False, esc, msgs
            out.append(raw[i:j])
            i, in_esc = j + len(ESC_START), True
        else:
            j = raw.find(ESC_END, i)
            m = _HIGH.search(raw, i)
            keep = _partial_suffix(raw, i, ESC_END) if j < 0 else 0
            stop = j if j >= 0 else len(raw) - keep
            if m is not None and m.start() < stop:
                # Escape text is ASCII: a high byte before the end marker means the
                # "start marker" was garbage; resume framing at that byte.
                msgs.append(
                    "bad escape block: " + (esc + raw[i : m.start()]).decode("ascii", "replace")
                )
                esc, i, in_esc = b"", m.start(), False
                continue
            if j < 0:
                esc += raw[i : len(raw) - keep]
                if len(esc) > _MAX_ESCAPE:
                    msgs.append(esc.decode("ascii", "replace"))
                    return b"".join(out), raw[len(raw) - keep :], False, b"", msgs
                return b"".join(out), raw[len(raw) - keep :], True, esc, msgs
            msgs.append((esc + raw[i:j]).decode("ascii", "replace"))
            esc, i, in_esc = b"", j + len(ESC_END), False


def feed(
    data: bytes, state: DecoderState
) -> tuple[NDArray[np.float64], NDArray[np.int64], DecoderState]:
    """Decode more bytes → (counts (N, n), counters (all -1: no device counter), state)."""
    carry, in_esc, esc = state.pending
    clean, carry, in_esc, esc, msgs = strip_escapes(carry + bytes(data), in_esc, esc)
    buf = state.buf + clean
    a = np.frombuffer(buf, np.uint8)
    n, n_ch = a.size, state.n_channels
    L = 2 * n_ch
    stats = dict(state.stats)
    stats["messages"] += len(msgs)
    p = np.flatnonzero(a & 0x80)
    started = state.params["started"]
    if p.size == 0:
        stats["skipped_bytes"] += n
        return (
            np.zeros((n_ch, 0)),
            np.zeros(0, np.int64),
            state.replace(buf=b"", pending=(carry, in_esc, esc), stats=stats, text=tuple(msgs)),
        )
    stats["skipped_bytes"] += int(p[0])
    seg = np.diff(np.append(p, n))
    if seg[-1] < L:  # last frame incomplete: carry it
        rest, p, seg = buf[p[-1] :], p[:-1], seg[:-1]
    else:
        rest = b""
    good = seg >= L
    if not started and good.any():  # short segments before the first frame are just noise
        first_good = int(np.argmax(good))
        stats["skipped_bytes"] += int(seg[:first_good].sum())
        p, seg, good = p[first_good:], seg[first_good:], good[first_good:]
        started = True
    elif not started:
        stats["skipped_bytes"] += int(seg.sum())
        p, seg, good = p[:0], seg[:0], good[:0]
    stats["frames"] += int(good.sum())
    stats["bad_frames"] += int((~good).sum())
    stats["lost_frames"] += int((~good).sum())
    stats["skipped_bytes"] += int((seg[good] - L).sum() + seg[~good].sum())
    out = np.full((n_ch, p.size), np.nan)
    pg = p[good]
    if pg.size:
        idx = pg[:, None] + 2 * np.arange(n_ch)[None, :]
        vals = ((a[idx].astype(np.int32) & 0x7F) << 7) | (a[idx + 1] & 0x7F)
        out[:, good] = vals.T
    new = state.replace(
        buf=rest,
        pending=(carry, in_esc, esc),
        next_sample=state.next_sample + p.size,
        params={**state.params, "started": started},
        stats=stats,
        text=tuple(msgs),
    )
    return out, np.full(p.size, -1, np.int64), new


def flush(state: DecoderState):
    """Nothing is held back beyond an incomplete frame."""
    return np.zeros((state.n_channels, 0)), np.zeros(0, np.int64), state


def scale_uv(state: DecoderState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(offset, scale)``: µV = (counts - 2**(bits-1)) × vref / 2**bits / gain × 1e6."""
    p, n = state.params, state.n_channels
    full = 2.0 ** p["bits"]
    return np.full(n, full / 2), np.full(n, p["vref"] / full / p["gain"] * 1e6)


def encode(counts: NDArray, bits: int = 10) -> bytes:
    """Frames for ``counts`` (N, n).

    >>> encode(np.array([[524, 1023, 16383]]), bits=14).hex()
    '840c877fff7f'
    """
    c = np.clip(np.asarray(counts, dtype=np.int64), 0, 2**bits - 1)
    n_ch, n = c.shape
    fr = np.empty((n, 2 * n_ch), np.uint8)
    fr[:, 0::2] = ((c.T >> 7) & 0x7F).astype(np.uint8)
    fr[:, 1::2] = (c.T & 0x7F).astype(np.uint8)
    fr[:, 0] |= 0x80
    return fr.tobytes()


def escape_block(text: str) -> bytes:
    """An escape block carrying ``text`` (e.g. ``"EVNT:2;"``), as newer devices send."""
    return ESC_START + text.encode("ascii") + ESC_END
