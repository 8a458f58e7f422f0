"""Protocol decoders: hex test vectors, round trips, garbage, drops, wraps, gaps, fuzz."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgtool.acquisition import protocols
from emgtool.acquisition.protocols import csvline, cyton, p2, spikershield

RNG = np.random.default_rng(0)

# Golden vectors from ../shared/docs/protocols.md (also in firmware_notes/).
CYTON_VEC = bytes.fromhex("a0070000 01ffffff 7fffff80 0000".replace(" ", "")) + bytes(18) + b"\xc0"
P2_VEC = bytes.fromhex("a55a023901cf021401ff01fc0223020401")


def feed_in_pieces(data: bytes, state, sizes=None):
    """Feed ``data`` in random-size pieces; concatenate what comes out."""
    rng = np.random.default_rng(1)
    xs, cs, i = [], [], 0
    while i < len(data):
        k = int(rng.integers(1, 200)) if sizes is None else sizes
        x, c, state = protocols.feed(data[i : i + k], state)
        xs.append(x)
        cs.append(c)
        i += k
    x, c, state = protocols.flush(state)
    xs.append(x)
    cs.append(c)
    return np.concatenate(xs, axis=1), np.concatenate(cs), state


def cyton_counts(n, ch=8):
    return RNG.integers(-(2**23), 2**23, size=(ch, n))


# ------------------------------------------------------------------ test vectors
def test_cyton_vector():
    x, c, st = feed_in_pieces(CYTON_VEC + CYTON_VEC, protocols.make_decoder("cyton"))
    assert x[:4, 0].tolist() == [1, -1, 8388607, -8388608]
    assert c[0] == 7
    # second copy has the same counter: read as a full wrap → 255 lost frames, NaN-filled
    assert x.shape[1] == 257 and np.isnan(x[:, 1:256]).all()


def test_cyton_scale_gain24_and_tracking():
    st = protocols.make_decoder("cyton")
    off, s = protocols.scale_uv(st)
    assert s[0] == pytest.approx(0.0223517, rel=1e-5) and (off == 0).all()
    st = cyton.track_command(b"x3040110X", st)  # ch3 gain code 4 → 8
    assert protocols.scale_uv(st)[1][2] == pytest.approx(4.5 / 8 / (2**23 - 1) * 1e6)
    st = cyton.track_command(b"d", st)
    assert protocols.scale_uv(st)[1][2] == pytest.approx(0.0223517, rel=1e-5)


def test_p2_vector():
    x, c, st = feed_in_pieces(P2_VEC, protocols.make_decoder("p2"))
    assert x[:, 0].tolist() == [463, 532, 511, 508, 547, 516] and c.tolist() == [57]
    assert p2.encode(x.astype(int), 57) == P2_VEC


def test_spikershield_vectors():
    assert spikershield.encode(np.array([[524]])).hex() == "840c"
    assert spikershield.encode(np.array([[1023]])).hex() == "877f"
    assert spikershield.encode(np.array([[16383]]), bits=14).hex() == "ff7f"


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("wrap_start", [0, 250])
def test_cyton_round_trip_with_counter_wrap(wrap_start):
    counts = cyton_counts(600)
    data = cyton.encode(counts, wrap_start)
    x, c, st = feed_in_pieces(data, protocols.make_decoder("cyton"))
    # the last frame needs no lookahead because the stream is in sync
    assert np.array_equal(x, counts)
    assert c.tolist() == [(wrap_start + i) % 256 for i in range(600)]
    assert st.stats["lost_frames"] == 0 and st.stats["resyncs"] == 0


def test_daisy_round_trip_pairs_even_then_odd():
    counts = cyton_counts(300, 16)
    data = cyton.encode(counts, 0, daisy=True)
    x, c, st = feed_in_pieces(data, protocols.make_decoder("cyton-daisy"))
    assert st.fs == 125.0
    # 300 rows out of 600 packets, across two counter wraps; the first row is invalid
    assert np.isnan(x[:, 0]).all() and np.array_equal(x[:, 1:], counts[:, 1:])


def test_p2_round_trip():
    counts = RNG.integers(0, 1024, size=(6, 700))
    x, c, st = feed_in_pieces(p2.encode(counts, 200), protocols.make_decoder("p2"))
    assert np.array_equal(x, counts) and st.stats["lost_frames"] == 0


@pytest.mark.parametrize("n_ch,bits", [(1, 10), (4, 10), (6, 14)])
def test_spikershield_round_trip_with_escapes(n_ch, bits):
    counts = RNG.integers(0, 2**bits, size=(n_ch, 500))
    data = spikershield.encode(counts, bits)
    fl = 2 * n_ch
    cut = 123 * fl
    data = data[:cut] + spikershield.escape_block("EVNT:2;") + data[cut:]
    st = protocols.make_decoder("spikershield", n_channels=n_ch, bits=bits)
    x, c, st = feed_in_pieces(data, st)
    assert np.array_equal(x, counts)
    assert st.stats["messages"] == 1
    assert st.fs == 10000 / n_ch


def test_csv_round_trip_crlf_banner_partial_first_line():
    vals = RNG.integers(0, 4096, size=(3, 400))
    body = csvline.encode(vals, 1000.0, 0)
    cut = body.find(b"\n", 2000) + 1
    data = (
        b"5,123,4\r\nStartUp!\r\n"
        + csvline.encode_header(1000, 3, vref=3.3, bits=12)
        + body[:cut]
        + b"debug: x=1\r\n"
        + body[cut:]
    )
    st = protocols.make_decoder("csv")
    x, c, st = feed_in_pieces(data, st)
    assert np.array_equal(x, vals) and st.fs == 1000 and st.n_channels == 3
    assert st.params["bad_lines"] >= 2  # StartUp! and the debug line
    off, s = protocols.scale_uv(st)
    assert off[0] == 2048 and s[0] == pytest.approx(3.3 / 4096 * 1e6)


def test_csv_counter_gap_and_reset():
    vals = np.arange(20, dtype=float)[None, :]
    hdr = csvline.encode_header(1000, 1, units="uV")
    lines = csvline.encode(vals, 1000.0).split(b"\r\n")
    data = hdr + b"\r\n".join(lines[:5] + lines[8:]) + b"\r\n"
    x, c, st = feed_in_pieces(data, csvline.init(at_line_start=True))
    assert x.shape == (1, 20) and np.isnan(x[0, 5:8]).all() and x[0, 8] == 8.0
    # a device reset (counter back to 0) is counted, not turned into a 4e9-sample gap
    x2, c2, st = feed_in_pieces(csvline.encode(vals[:, :3], 1000.0), st)
    assert x2.shape == (1, 3) and st.params["counter_resets"] == 1


def test_csv_lost_digit_in_a_counter_is_repaired():
    vals = np.arange(30, dtype=float)[None, :]
    lines = csvline.encode(vals, 1000.0, 1200).split(b"\r\n")
    lines[10] = lines[10][1:]  # "1210,..." → "210,...": one byte lost on the line
    data = csvline.encode_header(1000, 1, units="uV") + b"\r\n".join(lines)
    x, c, st = feed_in_pieces(data, csvline.init(at_line_start=True))
    assert x.shape == (1, 30) and not np.isnan(x).any()  # no fake gap, no fake reset
    assert np.array_equal(x[0], vals[0]) and st.params["counter_resets"] == 0


# ------------------------------------------------------------------ corruption
def test_cyton_dropped_byte_loses_one_sample_and_keeps_indices():
    counts = cyton_counts(200)
    data = bytearray(cyton.encode(counts, 0))
    corrupt = [50, 120]  # delete one data byte in these packets
    for k in sorted(corrupt, reverse=True):
        del data[k * 33 + 10]
    x, c, st = feed_in_pieces(bytes(data), protocols.make_decoder("cyton"))
    assert x.shape[1] == 200  # true sample indices
    lost = np.flatnonzero(np.isnan(x[0]))
    assert lost.tolist() == corrupt
    keep = np.ones(200, bool)
    keep[corrupt] = False
    assert np.array_equal(x[:, keep], counts[:, keep])
    assert st.stats["lost_frames"] == 2 and st.stats["resyncs"] == 2


def test_cyton_garbage_prefix_and_infix_lose_nothing():
    counts = cyton_counts(100)
    data = cyton.encode(counts, 0)
    garbage = bytes(RNG.integers(0, 256, 300, dtype=np.uint8)).replace(b"\xa0", b"\x00")
    data = b"OpenBCI V3 8-16 channel$$$" + garbage + data[: 40 * 33] + garbage + data[40 * 33 :]
    x, c, st = feed_in_pieces(data, protocols.make_decoder("cyton"))
    assert np.array_equal(x, counts)
    assert st.stats["skipped_bytes"] >= 600


def test_cyton_dropped_packets_are_nan_gaps():
    counts = cyton_counts(300)
    data = cyton.encode(counts, 0)
    data = data[: 100 * 33] + data[103 * 33 :]  # 3 packets vanish (e.g. radio loss)
    x, c, st = feed_in_pieces(data, protocols.make_decoder("cyton"))
    assert x.shape[1] == 300 and np.isnan(x[:, 100:103]).all()
    assert np.array_equal(x[:, 103:], counts[:, 103:]) and (c[100:103] == -1).all()


def test_daisy_lost_packet_blanks_half_a_row():
    counts = cyton_counts(50, 16)
    data = cyton.encode(counts, 0, daisy=True)
    data = data[: 21 * 33] + data[22 * 33 :]  # packet 21 (odd: ch 1-8 of row 10)
    x, c, st = feed_in_pieces(data, protocols.make_decoder("cyton-daisy"))
    assert x.shape == (16, 50)
    assert np.isnan(x[:8, 10]).all() and np.array_equal(x[8:, 10], counts[8:, 10])


def test_p2_flipped_sync_loses_one_packet():
    counts = RNG.integers(0, 1024, size=(6, 100))
    data = bytearray(p2.encode(counts, 0))
    data[30 * 17 + 1] ^= 0xFF
    x, c, st = feed_in_pieces(bytes(data), protocols.make_decoder("p2"))
    assert x.shape[1] == 100 and np.flatnonzero(np.isnan(x[0])).tolist() == [30]


def test_spikershield_dropped_byte_keeps_indices():
    counts = RNG.integers(0, 1024, size=(2, 300))
    data = bytearray(spikershield.encode(counts))
    del data[77 * 4 + 2]
    x, c, st = feed_in_pieces(bytes(data), protocols.make_decoder("spikershield", n_channels=2))
    assert x.shape[1] == 300 and np.flatnonzero(np.isnan(x[0])).tolist() == [77]


# ------------------------------------------------------------------ properties
ALL = {
    "cyton": lambda: protocols.make_decoder("cyton"),
    "cyton-daisy": lambda: protocols.make_decoder("cyton-daisy"),
    "p2": lambda: protocols.make_decoder("p2"),
    "spikershield": lambda: protocols.make_decoder("spikershield", n_channels=3),
    "csv": lambda: protocols.make_decoder("csv", fs=1000, n_channels=2),
}


@pytest.mark.parametrize("name", list(ALL))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), cut=st.integers(1, 64))
def test_random_bytes_never_crash(name, data, cut):
    state = ALL[name]()
    total = 0
    for i in range(0, len(data), cut):
        x, c, state = protocols.feed(data[i : i + cut], state)
        assert x.shape[0] == state.n_channels and x.shape[1] == c.size
        total += x.shape[1]
    assert total == state.next_sample
    assert len(state.buf) <= max(len(data), 4096)


def _frames_for(name, n):
    if name == "cyton":
        c = RNG.integers(-(2**23), 2**23, size=(8, n))
        return c, cyton.encode(c, int(RNG.integers(0, 256))), b"\xa0"
    if name == "p2":
        c = RNG.integers(0, 1024, size=(6, n))
        return c, p2.encode(c, int(RNG.integers(0, 256))), b"\xa5"
    if name == "spikershield":
        c = RNG.integers(0, 1024, size=(3, n))
        return c, spikershield.encode(c), None
    c = RNG.integers(0, 1024, size=(2, n))
    return c, csvline.encode(c, 1000.0, int(RNG.integers(0, 1000))), None


@pytest.mark.parametrize("name", ["cyton", "p2", "spikershield", "csv"])
@settings(max_examples=40, deadline=None)
@given(pre=st.binary(max_size=400), post=st.binary(max_size=400), n=st.integers(2, 40))
def test_valid_frames_in_garbage_are_all_recovered(name, pre, post, n):
    counts, frames, sync = _frames_for(name, n)
    if sync is not None:  # garbage may not forge the sync byte (that would be a frame)
        pre, post = pre.replace(sync, b"\x00"), post.replace(sync, b"\x00")
    if name == "csv":  # text garbage ends at a line break, as on a real line
        pre, post = pre.replace(b"\n", b"") + b"\n", b"\n" + post.replace(b"\n", b"")
    x, c, st_ = feed_in_pieces(pre + frames + post, ALL[name]())
    good = x[:, ~np.isnan(x).any(axis=0)].astype(np.int64)
    # every frame is found, in order, as one contiguous run
    found = any(np.array_equal(good[:, i : i + n], counts) for i in range(good.shape[1] - n + 1))
    assert found, (good.shape, n)


def test_csv_header_right_after_connect_is_not_taken_for_a_partial_line():
    # After 's', a flush and 'v', the header is the very first line the host sees.
    data = csvline.encode_header(500, 1, units="uV") + csvline.encode(np.array([[1, 2]]), 500.0)
    x, c, st = feed_in_pieces(data, csvline.init())
    assert st.fs == 500 and x.tolist() == [[1.0, 2.0]]
    # but a cut data line before it is still dropped
    x, c, st = feed_in_pieces(b"7,12000,3\n" + data, csvline.init())
    assert x.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("name,flen", [("cyton", 33), ("p2", 17)])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_corruption_costs_at_most_one_sample(name, flen, data):
    """Drops, inserts and bit flips in separate frames: ≤ 1 lost sample each, true indices."""
    n = 120
    counts, frames, _sync = _frames_for(name, n)
    frames = bytearray(frames)
    # corrupt frames at least 3 apart (each fault is its own corruption)
    chosen = data.draw(st.lists(st.integers(1, n // 3 - 2), unique=True, max_size=8))
    faults = []
    for k in sorted(chosen, reverse=True):
        f = 3 * k
        off = data.draw(st.integers(0, flen - 1))
        kind = data.draw(st.sampled_from(["drop", "insert", "flip"]))
        pos = f * flen + off
        if kind == "drop":
            del frames[pos]
        elif kind == "insert":
            frames[pos:pos] = bytes([data.draw(st.integers(0, 255))])
        else:
            frames[pos] ^= 1 << data.draw(st.integers(0, 7))
        faults.append(f)
    x, c, st_ = feed_in_pieces(bytes(frames), ALL[name]())
    lost = np.flatnonzero(np.isnan(x[0]))
    assert len(lost) <= len(faults)
    assert set(lost.tolist()) <= set(faults)  # only corrupted frames are lost
    good = ~np.isnan(x[0])
    m = min(x.shape[1], n)
    # sample indices stay true; a flipped data bit (no checksum) may change a value
    same = (x[:, :m] == counts[:, :m]).all(axis=0) | ~good[:m]
    assert set(np.flatnonzero(~same).tolist()) <= set(faults)
