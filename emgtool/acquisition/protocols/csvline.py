"""emgtool CSV text protocol v1, for Arduino / ESP32 / RP2040 sketches.

The device prints a header line (at boot and again on ``v``), then one line
per sample::

    # emgtool-csv v1 fs=1000 ch=2 units=adc_counts vref=3.3 bits=12
    <counter uint32>,<t_us uint32>,<ch1>,<ch2>\\n

Header keys: ``fs`` (Hz), ``ch`` (channels), ``units`` (``adc_counts``,
``uV``, ``mV``, ``V``) and, for ADC counts, ``vref`` (V), ``bits``,
``gain`` (analog front-end gain, default 1 = volts at the pin) and
``offset`` (counts of the zero, default mid-scale); optional ``labels``
(comma separated, ``_`` for spaces: ``Biceps_L,Biceps_R``).  The full
specification is ``firmware_notes/csv-v1.md``.

Tolerated: ``\\r\\n``, a partial first line (always discarded, because a cut
line such as ``3,4567,512`` would parse as a wrong counter), boot banners and
debug lines (skipped and counted).  The counter exposes lost lines, which
come out as NaN samples; a jump backwards or of more than ``max_jump``
samples (default 10 minutes) is a device reset and is counted, not filled.

>>> st = init()
>>> x, c, st = feed(b"boot\\n# emgtool-csv v1 fs=1000 ch=2 units=uV\\n0,0,1.5,2\\r\\n2,2000,3,4\\n", st)
>>> x.tolist(), c.tolist(), st.fs
([[1.5], [2.0]], [0], 1000.0)
>>> x, c, st = flush(st)  # the last line waited for a next one (counter check)
>>> x.tolist(), c.tolist()
([[nan, 3.0], [nan, 4.0]], [-1, 2])
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from emgtool.acquisition.protocols._frames import (
    DecoderState,
    fix_counter_glitches,
    place_samples,
)

__all__ = ["init", "feed", "flush", "encode", "encode_header", "scale_uv", "parse_header", "BAUD"]

BAUD = 921600
MAGIC = "# emgtool-csv v1"
MAX_LINE = 4096
#: stop (so the header is not lost behind a full buffer), header, start
START_COMMANDS = (b"s", b"v", b"b")
STOP_COMMANDS = (b"s",)


def init(
    fs: float | None = None,
    n_channels: int | None = None,
    *,
    units: str = "adc_counts",
    vref: float = 5.0,
    bits: int = 10,
    gain: float = 1.0,
    at_line_start: bool = False,
    max_jump: int | None = None,
) -> DecoderState:
    """A fresh decoder.  ``fs``/``n_channels`` are only needed if the device sends no header.

    ``at_line_start`` says the stream starts at a line boundary (a file), so
    the first line is kept.
    """
    params = {
        "units": units,
        "vref": float(vref),
        "bits": int(bits),
        "gain": float(gain),
        "offset": None,
        "labels": None,
        "at_line_start": at_line_start,
        "header_seen": False,
        "max_jump": max_jump,
        "bad_lines": 0,
        "counter_resets": 0,
        "last_ctr": None,
    }
    return DecoderState("csv", int(n_channels or 0), float(fs or 0.0), params=params)


def parse_header(line: str) -> dict:
    """Key/values of a ``# emgtool-csv v1 …`` line (numbers converted).

    >>> parse_header("# emgtool-csv v1 fs=1000 ch=2 units=uV")
    {'fs': 1000.0, 'ch': 2, 'units': 'uV'}
    """
    out: dict = {}
    for tok in line[len(MAGIC) :].split():
        if "=" not in tok:
            continue
        k, v = tok.split("=", 1)
        try:
            if k in ("ch", "bits"):
                out[k] = int(v)
            elif k in ("fs", "vref", "gain", "offset"):
                out[k] = float(v)
            elif k == "labels":
                out[k] = [s.replace("_", " ") for s in v.split(",")]
            else:
                out[k] = v
        except ValueError:
            continue
    return out


def _parse_rows(lines: list[str], width: int) -> tuple[NDArray[np.float64], int]:
    """Numeric rows of exactly ``width`` fields; returns (rows, n_rejected)."""
    cand = [ln for ln in lines if ln.count(",") == width - 1 and (ln[0].isdigit())]
    bad = len(lines) - len(cand)
    if not cand:
        return np.zeros((0, width)), bad
    try:  # fast path: one conversion for the whole block
        arr = np.array(",".join(cand).split(","), dtype=np.float64).reshape(-1, width)
    except ValueError:
        rows = []
        for ln in cand:
            try:
                rows.append([float(v) for v in ln.split(",")])
            except ValueError:
                bad += 1
        arr = np.array(rows, dtype=np.float64).reshape(-1, width)
    return arr, bad


def feed(
    data: bytes, state: DecoderState, final: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.int64], DecoderState]:
    """Decode more bytes → (values (ch, n) with NaN for lost lines, counters, state).

    The last complete data line is held back until the next one arrives, so
    a counter damaged by a lost digit (``1234`` → ``124``) is repaired from its
    neighbours instead of faking a jump; ``final=True`` releases it.
    """
    buf = state.buf + bytes(data)
    p = dict(state.params)
    stats = dict(state.stats)
    if not p["at_line_start"]:
        j = buf.find(b"\n")
        if j < 0:
            if len(buf) > MAX_LINE:
                stats["skipped_bytes"] += len(buf)
                buf = b""
            return (
                np.zeros((state.n_channels, 0)),
                np.zeros(0, np.int64),
                state.replace(buf=buf, stats=stats, params=p),
            )
        k = buf.find(MAGIC.encode(), 0, j)  # a header is recognisable even mid-line
        cut = k if k >= 0 else j + 1
        stats["skipped_bytes"] += cut
        buf = buf[cut:]
        p["at_line_start"] = True
    last_nl = buf.rfind(b"\n")
    rest = buf[last_nl + 1 :]
    if len(rest) > MAX_LINE:  # a runaway line: drop it, resync on the next newline
        stats["skipped_bytes"] += len(rest)
        rest = b""
        p["at_line_start"] = False
    end = last_nl + 1
    nxt_ctr = None
    if not final and last_nl >= 0:
        prev_nl = buf.rfind(b"\n", 0, last_nl)
        held = buf[prev_nl + 1 : last_nl + 1]
        if held[:1].isdigit():  # hold the last data line (see the docstring)
            end, rest = prev_nl + 1, held + rest
            head = held.split(b",", 1)[0]
            nxt_ctr = int(head) if head.isdigit() and len(head) <= 10 else None
    lines = [ln.strip() for ln in buf[:end].decode("ascii", "replace").split("\n")[:-1]]
    fs, n_ch = state.fs, state.n_channels
    texts: list[str] = []
    outs: list[NDArray] = []
    couts: list[NDArray] = []
    last_abs, origin, nxt = state.last_abs, state.origin, state.next_sample
    # Split at header lines: they may set fs / ch before data starts.
    seg: list[str] = []

    def flush_segment() -> None:
        nonlocal last_abs, origin, nxt
        if not seg:
            return
        if n_ch == 0:  # data before the header (or no header at all): cannot place it
            p["bad_lines"] += len(seg)
            texts.extend([ln for ln in seg if not ln[:1].isdigit()][:3])
            return
        rows, bad = _parse_rows(seg, n_ch + 2)
        p["bad_lines"] += bad
        if bad:
            texts.extend([ln for ln in seg if not ln[:1].isdigit()][:3])
        if rows.shape[0] == 0:
            return
        ctr = rows[:, 0].astype(np.int64)
        # The device counter (last_ctr) and the absolute sample number (last_abs)
        # part ways after a device reset, so both are carried.
        last_ctr = p.get("last_ctr")
        ctr = fix_counter_glitches(ctr, last_ctr, nxt_ctr, 2**32)
        prev_ctr = ctr[0] - 1 if last_ctr is None else last_ctr
        prev = ctr[0] - 1 if last_abs is None else last_abs
        d = np.diff(np.concatenate([[prev_ctr % 2**32], ctr])) % 2**32
        keep = d != 0  # a repeated counter is a repeated line
        p["bad_lines"] += int((~keep).sum())
        rows, ctr, d = rows[keep], ctr[keep], d[keep]
        if rows.shape[0] == 0:
            return
        max_jump = p["max_jump"] or int(max(600 * fs, 1000))  # 10 min of silence
        resets = d > max_jump
        p["counter_resets"] += int(resets.sum())
        d[resets] = 1  # a reset: continue without inventing a long gap
        stats["lost_frames"] += int((d - 1).sum())
        absn = prev + np.cumsum(d)
        if origin is None:
            origin = int(absn[0])
        pos = absn - origin
        outs.append(place_samples(rows[:, 2:].T, pos, nxt, int(pos[-1]) + 1, n_ch))
        cc = np.full(int(pos[-1]) + 1 - nxt, -1, np.int64)
        cc[pos - nxt] = ctr
        couts.append(cc)
        stats["frames"] += rows.shape[0]
        last_abs, nxt = int(absn[-1]), int(pos[-1]) + 1
        p["last_ctr"] = int(ctr[-1])

    final_nxt, nxt_ctr = nxt_ctr, None  # only the last segment borders the held line
    for ln in lines:
        if not ln:
            continue
        if ln.startswith("#"):
            flush_segment()
            seg = []
            if ln.startswith(MAGIC):
                h = parse_header(ln)
                new_fs, new_ch = float(h.get("fs", fs)), int(h.get("ch", n_ch))
                if origin is not None and (new_fs != fs or new_ch != n_ch):
                    texts.append(f"header changed mid-stream, ignored: {ln}")
                else:
                    fs, n_ch = new_fs, new_ch
                    for k in ("units", "vref", "bits", "gain", "offset", "labels"):
                        if k in h:
                            p[k] = h[k]
                    p["header_seen"] = True
            else:
                texts.append(ln)
            continue
        seg.append(ln)
    nxt_ctr = final_nxt
    flush_segment()  # the last segment: the held line's counter is its "next"
    stats["messages"] += len(texts)
    out = np.concatenate(outs, axis=1) if outs else np.zeros((n_ch, 0))
    cout = np.concatenate(couts) if couts else np.zeros(0, np.int64)
    new = state.replace(
        buf=rest,
        fs=fs,
        n_channels=n_ch,
        last_abs=last_abs,
        origin=origin,
        next_sample=nxt,
        params=p,
        stats=stats,
        text=tuple(texts),
    )
    return out, cout, new


def flush(state: DecoderState):
    """Release the held-back line, and a last line without its newline, at the end."""
    if state.buf.strip():
        return feed(b"" if state.buf.endswith(b"\n") else b"\n", state, final=True)
    return np.zeros((state.n_channels, 0)), np.zeros(0, np.int64), state


def scale_uv(state: DecoderState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(offset, scale)`` per channel from the header's units."""
    from emgtool.sites import unit_scale_to_uv

    p, n = state.params, state.n_channels
    if p["units"].lower() in ("adc_counts", "counts", "adc"):
        full = 2.0 ** p["bits"]
        off = p["offset"] if p["offset"] is not None else full / 2
        return np.full(n, off), np.full(n, p["vref"] / full / p["gain"] * 1e6)
    return np.zeros(n), np.full(n, unit_scale_to_uv(p["units"]))


def encode_header(fs: float, n_channels: int, units: str = "adc_counts", **keys) -> bytes:
    """The header line, e.g. ``encode_header(1000, 2, vref=3.3, bits=12)``."""
    extra = "".join(f" {k}={v}" for k, v in keys.items())
    return f"{MAGIC} fs={fs:g} ch={n_channels} units={units}{extra}\r\n".encode()


def encode(values: NDArray, fs: float, start_counter: int = 0, decimals: int = 0) -> bytes:
    """Lines ``counter,t_us,ch1,…\\r\\n`` for ``values`` (ch, n); t_us from the counter.

    >>> encode(np.array([[512, 513], [100, 101]]), 1000.0, 5)
    b'5,5000,512,100\\r\\n6,6000,513,101\\r\\n'
    """
    v = np.asarray(values)
    n = v.shape[1]
    ctr = (start_counter + np.arange(n)) % 2**32
    t_us = np.round((start_counter + np.arange(n)) * 1e6 / fs).astype(np.int64) % 2**32
    body = np.column_stack([ctr, t_us, v.T])
    fmt = ["%d", "%d"] + [f"%.{decimals}f"] * v.shape[0]
    lines = [",".join(f % x for f, x in zip(fmt, row, strict=True)) for row in body]
    return ("\r\n".join(lines) + "\r\n").encode() if lines else b""
