"""Compact event storage, the block comb inverse, and the event table finalize builds from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emgtool.events import EVENT_COLUMNS, normalise_events
from emgtool.pipeline import flush, init_state, step
from emgtool.pipeline.doublets import comb_inverse, find_doublets
from emgtool.pipeline.finalize import finalize
from emgtool.pipeline.store import KINDS, EventStore, WaveStore
from emgtool.simulate import simulate


def _naive_comb(w, d):
    s = np.asarray(w, np.float64).copy()
    for t in range(d, s.shape[-1]):
        s[..., t] -= s[..., t - d]
    return s


@pytest.mark.parametrize("d", [1, 3, 8, 17, 50, 99, 150])
def test_comb_inverse_is_the_recursion_bit_for_bit(d):
    rng = np.random.default_rng(d)
    w = rng.normal(size=(7, 99)).astype(np.float32) * 100
    assert np.array_equal(comb_inverse(w, d), _naive_comb(w, d))
    assert np.array_equal(comb_inverse(w[0], d), _naive_comb(w[0], d))


def test_find_doublets_finds_the_lag_of_a_doubled_potential():
    t = np.arange(102)
    s = np.where((t > 20) & (t < 40), np.sin((t - 20) / 20 * 2 * np.pi) * 100, 0.0)
    rng = np.random.default_rng(1)
    w = np.stack([s + np.roll(s, lag) for lag in (16, 20, 25)] + [s]) + rng.normal(size=(4, 102))
    lag, ratio = find_doublets(w, np.ones(4), range(8, 34))
    assert lag.tolist() == [16, 20, 25, 0]
    assert np.isinf(ratio[3]) and (ratio[:3] < 0.75).all()


def _event(site, start, channels, kind="fasciculation", **kw):
    return {"kind": kind, "site_i": site, "start": start, "stop": start + 30, "peak": start + 9,
            "channels": channels, **kw}  # fmt: skip


def test_event_store_round_trip_and_growth(monkeypatch):
    import emgtool.pipeline.store as store

    monkeypatch.setattr(store, "BLOCK_ROWS", 700)  # several blocks, and a join in between
    big_site = np.arange(2, 72)  # 70 channels: more than a 64-bit mask holds
    es = EventStore(site_chs=[np.array([0, 1]), big_site])
    evs = [_event(0, 10 * i, [0, 1] if i % 2 else [1], amplitude_uv=float(i)) for i in range(3000)]
    evs.append(_event(1, 5, [3, 70], reason="common-mode", kind="artifact"))  # bit 68
    evs.append(_event(0, 7, [1, 0], kind="artifact"))  # not in site order: kept as given
    evs.append(_event(0, 9, [0], kind="cramp", amplitude_uv=3.0, mean_amplitude_uv=2.0, phases=4))
    es.extend(evs[:1000])
    assert es.column("start")[999] == evs[999]["start"] and len(es.blocks) == 1  # joined
    es.extend(evs[1000:])
    assert len(es.blocks) > 1
    assert len(es) == len(evs)
    for no in (0, 1, 2999, 3000, 3001, 3002):
        assert es.channels_of(no) == evs[no]["channels"]
    assert es.column("amplitude_uv")[:3000].tolist() == [float(i) for i in range(3000)]
    assert [KINDS[k] for k in es.column("kind")[-3:]] == ["artifact", "artifact", "cramp"]
    assert es.reasons[es.column("reason")[3000]] == "common-mode"
    assert es.column("phases")[-1] == 4 and es.column("phases")[0] == -1  # -1 = not measured
    assert np.isnan(es.column("duration_ms")[0])


def test_wave_store_cap_and_lookup():
    ws = WaveStore(n_window=4, cap=300)
    added = [ws.add(no, np.full(4, no, np.float32)) for no in range(0, 1000, 2)]
    assert sum(added) == 300 and len(ws) == 300 and not added[-1]
    have, waves = ws.lookup(np.array([0, 1, 2, 598, 600]))
    assert have.tolist() == [True, False, True, True, False]
    assert waves[:, 0].tolist() == [0.0, 2.0, 598.0]


def test_events_move_into_the_store_and_table_matches_it():
    rec, _ = simulate("als-widespread", duration_s=25, seed=5)
    st = init_state(rec.fs, rec.channels)
    n_returned = 0
    for a in range(0, rec.n_samples, 4096):
        evs, st = step(rec.slice(a, min(a + 4096, rec.n_samples)), st)
        n_returned += len(evs)
        assert st.out == []  # nothing kept as dicts between calls
    evs, st = flush(st)
    n_returned += len(evs)
    an = finalize(st)
    df = an.events
    assert len(df) == len(st.events) == n_returned > 50
    assert list(df.columns) == list(EVENT_COLUMNS)
    # Already in normalise_events' order, with its dtypes.
    pd.testing.assert_frame_equal(normalise_events(df), df)
    assert str(df["phases"].dtype) == "Int64" and str(df["pair"].dtype) == "boolean"
    fasc = df["trial_type"] == "fasciculation"
    assert fasc.any() and df.loc[fasc, "shape"].notna().all()
    assert df.loc[~fasc, "shape"].isna().all() and df.loc[~fasc, "pair"].isna().all()
    assert set(df.loc[fasc, "discharge"]) <= {"isolated", "continual", "n/a"}
    # Stored waveforms point at fasciculation rows.
    for res in an.sites:
        rows = df.iloc[res.waveform_event_index]
        assert (rows["trial_type"] == "fasciculation").all()
        assert len(res.waveforms) == len(rows)
