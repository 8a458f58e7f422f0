"""Chunk invariance: events are identical for any split of a recording (issue 3, item 1)."""

import numpy as np
import pandas as pd
import pytest

from emgtool.pipeline import init_state, step
from emgtool.recording import Recording
from emgtool.simulate import simulate

from .conftest import run_chunked


@pytest.fixture(scope="module")
def short_rec():
    rec, _ = simulate("als-widespread", 9, seed=2)
    # Add a gap (NaN, like dropped packets) on one channel and a clipped stretch
    # on another, so the restart and clipping paths are covered too.
    data = np.array(rec.data)
    data[3, 12000:12500] = np.nan
    data[5, 15000:15400] = np.clip(data[5, 15000:15400] * 50, -900, 900)
    data[5, 15000:15400] = np.where(
        np.abs(data[5, 15000:15400]) >= 900,
        np.sign(data[5, 15000:15400]) * 900,
        data[5, 15000:15400],
    )
    return Recording(data, rec.fs, rec.channels)


def test_whole_equals_random_chunks(short_rec):
    whole = run_chunked(short_rec, [])
    assert (whole["trial_type"] == "fasciculation").sum() > 10
    rng = np.random.default_rng(7)
    for n_cuts in (3, 40, 400):
        cuts = rng.choice(short_rec.n_samples, n_cuts, replace=False)
        pd.testing.assert_frame_equal(whole, run_chunked(short_rec, cuts))


def test_prime_and_one_sample_chunks():
    rec, _ = simulate("als-widespread", 6.5, seed=4)
    rec = rec.select(range(6))
    whole = run_chunked(rec, [])
    prime = run_chunked(rec, range(0, rec.n_samples, 997))
    pd.testing.assert_frame_equal(whole, prime)
    # 1-sample chunks over the stretch after the start-up probe and across its end.
    ones = run_chunked(rec, range(9000, rec.n_samples))
    pd.testing.assert_frame_equal(whole, ones)


def test_chunks_must_be_contiguous():
    rec, _ = simulate("healthy", 6, seed=1)
    st = init_state(rec.fs, rec.channels)
    _, st = step(rec.slice(0, 1000), st)
    with pytest.raises(ValueError, match="contiguous"):
        step(rec.slice(2000, 3000), st)


def test_two_thread_channel_halves_give_the_same_events(short_rec, monkeypatch):
    """Large chunks run as two channel halves on two threads: same events as one thread."""
    from emgtool.pipeline import _kernels

    if not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed: no threaded kernels")
    cuts = [5000, 9000, 14000, 20000]
    monkeypatch.setattr(_kernels, "THREAD_MIN_SIZE", 1)  # every chunk split in two
    monkeypatch.delenv("EMGTOOL_NUM_THREADS", raising=False)
    threaded = run_chunked(short_rec, cuts)
    monkeypatch.setenv("EMGTOOL_NUM_THREADS", "1")
    single = run_chunked(short_rec, cuts)
    assert len(single) > 10
    pd.testing.assert_frame_equal(threaded, single)


def test_long_chunks_judge_activity_against_final_noise_floors():
    """A 10-s chunk spans ten noise blocks; each bin is still judged against the
    floor of every block before its own (not the few closed before the chunk).

    At 0 dB the noise floor decides many bins; with the floor taken from a
    truncated history this recording gave one event fewer with 10-s chunks
    than with 0.5-s chunks.
    """
    from emgtool.io import as_source
    from emgtool.pipeline.analyze import analyze_source

    rec, _ = simulate("als-widespread", duration_s=60, seed=7, snr_db=0.0)
    long_chunks = analyze_source(as_source(rec), chunk_s=10.0).events
    short_chunks = analyze_source(as_source(rec), chunk_s=0.5).events
    assert len(long_chunks) > 100
    pd.testing.assert_frame_equal(long_chunks, short_chunks)


def test_filtering_ahead_on_a_thread_gives_the_same_events(short_rec, monkeypatch):
    """Offline analysis filters chunk k + 1 on another thread while detection
    works on chunk k (step_ahead / step_detect); events equal plain steps."""
    from emgtool.io import as_source
    from emgtool.pipeline import _kernels
    from emgtool.pipeline import analyze as analyze_mod

    calls = []
    real_ahead = analyze_mod.step_ahead
    monkeypatch.setattr(
        analyze_mod, "step_ahead", lambda c, s: calls.append(1) or real_ahead(c, s)
    )
    monkeypatch.setattr(_kernels, "n_threads", lambda: 2)
    overlapped = analyze_mod.analyze_source(as_source(short_rec), chunk_s=0.7).events
    assert len(calls) >= 5  # most chunks went through the thread
    plain = run_chunked(short_rec, range(0, short_rec.n_samples, int(0.7 * short_rec.fs)))
    pd.testing.assert_frame_equal(overlapped, plain)


def test_episode_through_a_clipped_pause_ends_where_it_would_for_any_chunking():
    """A cramp whose channel clips for 2 s in its middle (the activity bins are
    excluded there, so the cramp seems to pause): whether the pause ends the
    episode is decided bin by bin, in time order.  Earlier it was decided at
    each chunk's end, so 20-s chunks gave one episode and 1.3-s chunks two (a
    short voluntary burst and a cramp), for the same recording.
    """
    from emgtool.io import as_source
    from emgtool.pipeline.analyze import analyze_source

    rec, truth = simulate(
        "cramps",
        duration_s=40,
        seed=1332,
        snr_db=12.0,
        mains_hz=60.0,
        flat_channel=True,
        clipped_channel=True,
    )
    site = ("gastrocnemius_medial", "R")
    cramps = truth[
        (truth.trial_type == "cramp") & (truth.site == site[0]) & (truth.side == site[1])
    ]
    clips = truth[(truth.trial_type == "artifact") & (truth.channel == "Gastroc med R")]
    # The case: a clipped stretch longer than the 1-s episode gap inside a cramp.
    inside = [
        (c, k)
        for c in cramps.itertuples()
        for k in clips.itertuples()
        if c.onset < k.onset and k.onset + k.duration < c.onset + c.duration and k.duration > 1.5
    ]
    assert inside
    true_cramp = inside[0][0]
    by_chunk = {cs: analyze_source(as_source(rec), chunk_s=cs).events for cs in (20.0, 1.3)}
    pd.testing.assert_frame_equal(by_chunk[20.0], by_chunk[1.3])
    ev = by_chunk[20.0]
    end = true_cramp.onset + true_cramp.duration
    sus = ev[
        (ev.site == site[0])
        & (ev.side == site[1])
        & (ev.duration > 0.3)
        & (ev.onset < end)
        & (ev.onset + ev.duration > true_cramp.onset)
    ]
    # One episode, start to end (clipped for > 10 % of it on its only channel, it is
    # reported as a clipped artefact: see docs/detection.md).
    assert len(sus) == 1
    assert abs(sus.onset.iloc[0] - true_cramp.onset) < 0.5
    assert abs(sus.onset.iloc[0] + sus.duration.iloc[0] - end) < 0.5


def test_busy_site_levels_are_the_same_for_any_chunking():
    """The noise test's level at a busy site (``fasc_fdr``) counts the site's clear
    potentials decided before the candidate: the same for any split of the recording."""
    from emgtool.config import DetectorConfig
    from emgtool.pipeline import flush as flush_
    from emgtool.pipeline import init_state as init_
    from emgtool.pipeline.finalize import finalize

    rec, _ = simulate("als-widespread", 90, seed=5, snr_db=6.0, nuisances={"pink", "white"})
    rec = rec.select(range(8))

    def run(cuts, cfg=None):
        st = init_(rec.fs, rec.channels, cfg)
        edges = [0, *sorted(int(c) for c in cuts), rec.n_samples]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            _, st = step(rec.slice(a, b), st)
        _, st = flush_(st)
        return finalize(st).events

    whole = run([])
    strict = run([], DetectorConfig(fasc_fdr=0.0))
    assert len(whole) > len(strict)  # the busy sites' level did come down
    cuts = np.random.default_rng(3).choice(np.arange(1, rec.n_samples), 60, replace=False)
    pd.testing.assert_frame_equal(whole, run(cuts))


def test_held_samples_go_into_the_room_in_front_of_a_filtered_chunk():
    """detect_chunk joins the samples it still holds to the next filtered chunk in the
    room the filter left in front of it (no copy of the chunk), else by concatenation."""
    from emgtool.pipeline import dsp
    from emgtool.pipeline.core import _joined

    sos = dsp.design_filters(2048.0, (20.0, 450.0), 2, mains_hz=None, harmonics=())
    x = np.random.default_rng(0).standard_normal((6, 5000)).astype(np.float32)
    zi = dsp.init_filter_state(sos, 6)
    y, _ = dsp.filter_step(sos, x, zi, head=300)
    plain, _ = dsp.filter_step(sos, x, zi)
    assert np.array_equal(y, plain)
    held = np.arange(6 * 120, dtype=np.float32).reshape(6, 120)
    both = _joined(held, y, 300)
    assert np.shares_memory(both, y)  # y was not copied
    assert np.array_equal(both, np.concatenate([held, plain], axis=1))
    wide = np.ones((6, 400), np.float32)  # more than the room: concatenated
    both = _joined(wide, y, 300)
    assert not np.shares_memory(both, y)
    assert np.array_equal(both, np.concatenate([wide, plain], axis=1))
    assert _joined(held, plain, 0).shape == (6, 5120)  # no room at all
