"""The live path without a port: ``record --replay`` of a recording file and of a raw capture."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest

from emgtool.acquisition import live
from emgtool.acquisition.protocols import cyton
from emgtool.acquisition.view import LiveStatus, Screen, render


@pytest.fixture(scope="module")
def sim_edf(tmp_path_factory):
    from emgtool.simulate import simulate_to_file

    path = tmp_path_factory.mktemp("sim") / "sim.edf"
    simulate_to_file(path, "als-widespread", 8.0, 11, fs=2000.0)
    return path


def test_replay_file_gives_offline_events_and_all_outputs(tmp_path, sim_edf):
    from emgtool.cli import main
    from emgtool.events import read_events_tsv
    from emgtool.pipeline.analyze import analyze

    out = tmp_path / "rec"
    rc = main(
        ["record", "--replay", str(sim_edf), "--speed", "0", "--out", str(out), "--view", "lines"]
    )
    assert rc == 0
    for name in ("recording.edf", "events.tsv", "events.json", "summary.json", "report.html"):
        assert (out / name).exists(), name
    live_ev = read_events_tsv(out / "events.tsv")
    off = analyze(out / "recording.edf").events  # the file the live run wrote
    key = ["sample", "trial_type", "site", "side", "channel"]
    assert len(live_ev) > 5
    assert live_ev[key].astype(str).values.tolist() == off[key].astype(str).values.tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recording"]["duration_s"] == pytest.approx(8.0)
    # the recording equals the input up to the EDF quantisation step
    import mne

    from emgtool.io import read

    a = mne.io.read_raw_edf(sim_edf, preload=True, verbose="error").get_data() * 1e6
    raw = mne.io.read_raw_edf(out / "recording.edf", preload=True, verbose="error")
    b = raw.get_data() * 1e6
    assert b.shape[1] >= a.shape[1] and np.max(np.abs(a - b[:, : a.shape[1]])) < 0.2
    assert read(out / "recording.edf").n_samples == a.shape[1]  # close-time padding trimmed
    assert sum(d.startswith("fasciculation") for d in raw.annotations.description) == (
        (live_ev["trial_type"] == "fasciculation").sum()
    )  # events are EDF+ annotations


def test_refuses_to_overwrite_a_recording(tmp_path, sim_edf):
    from emgtool.cli import main

    out = tmp_path / "rec"
    out.mkdir()
    (out / "recording.edf").write_bytes(b"keep me")
    assert main(["record", "--replay", str(sim_edf), "--speed", "0", "--out", str(out)]) == 2
    assert (out / "recording.edf").read_bytes() == b"keep me"


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    from emgtool.cli import main

    assert main(["record", "--out", str(tmp_path / "x")]) == 2
    assert main(["record", "--port", "/dev/null-nonexistent", "--out", str(tmp_path / "x")]) == 2
    assert (
        main(
            [
                "record",
                "--port",
                str(tmp_path / "nope"),
                "--protocol",
                "cyton",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no such device" in err and "Traceback" not in err


@pytest.mark.filterwarnings("ignore::emgtool.errors.EmgtoolWarning")  # EMG1… name no muscle
def test_raw_capture_replay_marks_lost_packets_as_gaps(tmp_path):
    """A Cyton byte capture with 5 lost packets: NaN gaps at the true place, no sample shift."""
    rng = np.random.default_rng(2)
    counts = rng.normal(0, 2000, size=(8, 1000)).astype(np.int64)  # ~45 µV noise
    data = cyton.encode(counts, 0)
    data = data[: 500 * 33] + data[505 * 33 :]
    cap = tmp_path / "cap.bin"
    cap.write_bytes(b"OpenBCI V3 8-16 channel$$$" + data)
    src = live.byte_file_source(cap, "cyton")
    res = live.run_live(
        src, live.LiveOptions(tmp_path / "rec", view="off", write_report=False), threading.Event()
    )
    assert res["n_samples"] == 1000
    side = json.loads((tmp_path / "rec" / live.SIDECAR).read_text())
    assert side["decoder"]["lost_frames"] == 5
    from emgtool.io import read

    rec = read(tmp_path / "rec" / "recording.edf")
    uv = counts * cyton.scale_uv(cyton.init())[1][:, None]
    ok = np.r_[0:500, 505:1000]
    assert np.max(np.abs(rec.data[:, ok] - uv[:, ok])) < 0.2  # indices kept after the loss


def test_record_seconds_and_quantisation():
    assert live.record_seconds(2000) == 1.0
    assert live.record_seconds(10000 / 3) == pytest.approx(0.3)
    assert live.record_seconds(256) == 1.0
    x = np.array([[0.0, 1.23456, np.nan, 1e6]])
    q = live.quantize_like_edf(x, (-5000.0, 5000.0))
    step = 10000 / 65535
    assert abs(q[0, 1] - 1.23456) <= step / 2 + 1e-6 and np.isnan(q[0, 2]) and q[0, 3] == 5000


def test_view_renders_sites_and_degrades_to_lines():
    s = LiveStatus(
        elapsed_s=120,
        fs=2000,
        n_samples=240000,
        dropped_samples=12,
        sites=[("biceps L", 6, 0, 0.0), ("gastrocnemius R", 2, 1, 4.2)],
        channels=[("EMG1", 3.2, "ok"), ("EMG2", 0.1, "flat")],
    )
    text = "\n".join(render(s))
    assert "biceps L" in text and "3.0" in text  # 6 in 2 min = 3.0 per min
    assert "CRAMP?" in text and "flat" in text and "dropped 12" in text
    buf = io.StringIO()  # not a terminal: one plain line, no escape codes
    scr = Screen(buf)
    scr.update(s, force=True)
    assert (
        scr.mode == "lines"
        and "\x1b" not in buf.getvalue()
        and "8 fasciculations" in buf.getvalue()
    )
    tty = io.StringIO()
    scr = Screen(tty, mode="tty")
    scr.update(s)
    scr.update(s)
    assert "\x1b[" in tty.getvalue()  # redrawn in place


def test_record_over_socket_url_stops_cleanly_when_peer_closes(tmp_path):
    """Any pyserial URL works (Windows CI has no pty): a TCP 'device' that goes away."""
    import socket

    from emgtool.acquisition.protocols import csvline
    from emgtool.cli import main

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    vals = np.round(np.random.default_rng(0).normal(0, 10, size=(2, 2000)), 1)

    def device():
        conn, _ = srv.accept()
        conn.settimeout(0.01)
        streaming, sent, t0 = False, 0, None
        while sent < 1500:  # 1.5 s at 1 kHz, then the "cable" is pulled
            try:
                cmd = conn.recv(64)
            except (TimeoutError, OSError):
                cmd = b""
            if b"v" in cmd:
                conn.sendall(csvline.encode_header(1000, 2, "uV"))
            if b"b" in cmd:
                streaming, t0 = True, time.monotonic()
            if streaming:
                due = min(int((time.monotonic() - t0) * 1000), 1500)
                if due > sent:
                    conn.sendall(csvline.encode(vals[:, sent:due], 1000.0, sent, decimals=1))
                    sent = due
        conn.close()
        srv.close()

    th = threading.Thread(target=device, daemon=True)
    th.start()
    out = tmp_path / "rec"
    rc = main(
        [
            "record",
            "--port",
            f"socket://127.0.0.1:{port}",
            "--protocol",
            "csv",
            "--no-reconnect",
            "--no-report",
            "--view",
            "off",
            "--out",
            str(out),
            "--duration",
            "30",
        ]
    )
    th.join(5)
    assert rc == 0
    side = json.loads((out / live.SIDECAR).read_text())
    assert side["status"] == "complete"
    assert any(e["kind"] == "disconnected" for e in side["device_events"])
    from emgtool.io import read

    rec = read(out / "recording.edf", sites="Biceps L,Biceps R")
    assert 1000 <= rec.n_samples <= 1500  # the first lines may go before the header
    n = rec.n_samples
    assert np.max(np.abs(rec.data - vals[:, 1500 - n : 1500])) < 0.2  # the last n samples sent


def test_long_silence_beyond_the_8bit_counter_becomes_a_host_time_gap(tmp_path):
    """Cyton silent for 2 s (500 frames): the counter alone would say 243 lost."""
    import queue

    from emgtool.acquisition.serialport import PortEvent

    counts = np.random.default_rng(3).normal(0, 2000, size=(8, 1250)).astype(np.int64)
    data = cyton.encode(counts, 0)
    q = queue.Queue()
    t0 = 1000.0
    for k in range(0, 250, 25):  # first second, in 10 reads
        q.put(PortEvent("data", t0 + (k + 25) / 250, data[k * 33 : (k + 25) * 33]))
    for k in range(750, 1250, 25):  # frames 250..749 never arrive; 2 s of silence
        q.put(PortEvent("data", t0 + (k + 25) / 250, data[k * 33 : (k + 25) * 33]))
    q.put(PortEvent("closed", t0 + 6, message="end"))
    src = live.LiveSource(q, cyton.init(), make_decoder=cyton.init)
    res = live.run_live(
        src, live.LiveOptions(tmp_path / "rec", view="off", write_report=False), threading.Event()
    )
    side = json.loads((tmp_path / "rec" / live.SIDECAR).read_text())
    (gap,) = side["gaps"]
    assert gap["reason"] == "stall" and gap["start_sample"] == 250
    assert abs(gap["n_samples"] - 500) <= 5  # host clock (2.1 s between reads) minus the read
    assert abs(res["n_samples"] - 1250) <= 5  # no 256-frame undercount
    assert side["decoder"]["lost_frames"] == 0


def test_recover_after_a_crash_between_closing_the_file_and_writing_results(tmp_path, sim_edf):
    """Killed after the EDF was closed but before events/summary: recover re-analyses it."""
    from emgtool.cli import main
    from emgtool.events import read_events_tsv

    out = tmp_path / "rec"
    src = live.sample_file_source(sim_edf, speed=0)
    live.run_live(src, live.LiveOptions(out, view="off", write_report=False), threading.Event())
    before = read_events_tsv(out / "events.tsv")
    for name in ("events.tsv", "events.json", "summary.json"):
        (out / name).unlink()
    side = json.loads((out / live.SIDECAR).read_text())
    side["status"] = "closed"
    (out / live.SIDECAR).write_text(json.dumps(side))
    edf_bytes = (out / "recording.edf").read_bytes()
    assert main(["recover", str(out)]) == 0
    assert (out / "recording.edf").read_bytes() == edf_bytes  # a closed file is left alone
    assert not (out / "recording.partial.edf").exists()
    after = read_events_tsv(out / "events.tsv")
    key = ["sample", "trial_type", "site", "side"]
    assert after[key].astype(str).values.tolist() == before[key].astype(str).values.tolist()
    assert (out / "report.html").exists() and (out / "summary.json").exists()
    assert main(["recover", str(out)]) == 2  # nothing left to do


def test_recover_refuses_a_folder_without_a_recording(tmp_path):
    from emgtool.cli import main

    assert main(["recover", str(tmp_path)]) == 2
    assert main(["recover", str(tmp_path / "missing")]) == 2


def test_disk_full_is_a_clear_error(tmp_path, monkeypatch):
    import errno

    from emgtool.errors import EmgtoolError
    from emgtool.io.edf_stream import EdfStreamWriter

    def full(self, block):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(EdfStreamWriter, "write", full)
    cap = tmp_path / "cap.bin"
    cap.write_bytes(cyton.encode(np.zeros((8, 300), np.int64), 0))
    src = live.byte_file_source(cap, "cyton")
    with pytest.raises(EmgtoolError, match="No space left.*emgtool recover"):
        live.run_live(src, live.LiveOptions(tmp_path / "rec", view="off"), threading.Event())
