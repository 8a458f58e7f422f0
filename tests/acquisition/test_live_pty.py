"""Live path end to end on pseudo-terminals: fake device → emgtool record → files.

Each test runs a real ``emgtool record`` process against an in-process
:class:`FakeDevice` (a pty) and checks the files on disk with MNE and with
emgtool's own offline analysis.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals need POSIX")

REPO = Path(__file__).resolve().parents[2]
SITES = "Biceps L,Biceps R,Tibialis anterior L,Tibialis anterior R"


def record_argv(port, out, *extra, duration=None):
    argv = [
        "record",
        "--port",
        str(port),
        "--protocol",
        "csv",
        "--out",
        str(out),
        "--view",
        "off",
        "--sites",
        SITES,
        *extra,
    ]
    if duration is not None:
        argv += ["--duration", str(duration)]
    return argv


def start_record(port, out, *extra, duration=None):
    """``emgtool record`` as a separate process (for SIGKILL)."""
    cmd = [sys.executable, "-m", "emgtool", *record_argv(port, out, *extra, duration=duration)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


class RecordThread(threading.Thread):
    """``emgtool record`` run by the CLI entry point in a thread of this process
    (the same code as the command, without paying for a new interpreter)."""

    def __init__(self, argv):
        super().__init__(daemon=True)
        self.argv, self.rc = argv, None

    def run(self):
        from emgtool.cli import main

        self.rc = main(self.argv)

    def poll(self):
        return None if self.is_alive() else self.rc

    def finish(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), "record did not stop"
        return self.rc


def sidecar(out) -> dict:
    try:
        return json.loads((Path(out) / "session.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for(cond, timeout=15.0, proc=None):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"record exited early ({proc.poll()})")
        time.sleep(0.05)
    import faulthandler

    faulthandler.dump_traceback(all_threads=True)
    raise AssertionError("condition not met in time")


@pytest.fixture
def fake(tmp_path):
    from emgtool.acquisition.fakedevice import FakeDevice

    devs = []

    def make(**kw):
        kw.setdefault("link", tmp_path / "ttyFAKE")
        d = FakeDevice(kw.pop("protocol", "csv"), **kw).start()
        devs.append(d)
        return d

    yield make
    for d in devs:
        d.stop()


def read_mne(path):
    import mne

    return mne.io.read_raw_edf(path, preload=True, verbose="error")


def test_record_from_fake_equals_offline_analysis(tmp_path, fake):
    from emgtool.events import read_events_tsv
    from emgtool.pipeline.analyze import analyze

    dev = fake(scenario="als-widespread", seed=3)
    out = tmp_path / "rec"
    # report.html is checked by the replay test; here it would only cost time
    rec = RecordThread(record_argv(dev.path, out, "--no-report", duration=3))
    rec.start()
    assert rec.finish() == 0
    for name in ("recording.edf", "events.tsv", "summary.json", "session.json"):
        assert (out / name).exists(), name
    raw = read_mne(out / "recording.edf")
    assert raw.info["sfreq"] == 2000 and raw.n_times >= 3 * 2000
    side = sidecar(out)
    assert side["status"] == "complete" and side["n_samples_written"] == 6000
    assert side["decoder"]["lost_frames"] == 0, side["decoder"]
    live = read_events_tsv(out / "events.tsv")
    off = analyze(out / "recording.edf", sites=SITES).events
    key = ["sample", "trial_type", "site", "side"]
    assert len(live) > 0  # the scenario has fasciculations: the comparison means something
    assert live[key].astype(str).values.tolist() == off[key].astype(str).values.tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recording"]["fs"] == 2000


def test_unplug_and_replug_records_a_gap_and_continues(tmp_path, fake):
    dev = fake(seed=1)
    out = tmp_path / "rec"
    rec = RecordThread(record_argv(dev.path, out, "--no-report", duration=6))
    rec.start()
    wait_for(lambda: (sidecar(out).get("n_samples_written") or 0) >= 1000, proc=rec)
    assert sidecar(out)["n_samples_written"] < 8000  # unplugged well before the end
    dev.disconnect()  # the USB cable is pulled: the pty vanishes
    time.sleep(0.8)
    fake(seed=2)  # plugged in again, same name
    assert rec.finish() == 0
    side = sidecar(out)
    assert side["reconnects"] == 1, side
    gaps = side["gaps"]
    assert len(gaps) == 1 and gaps[0]["reason"] == "disconnected"
    assert 0.5 <= gaps[0]["duration_s"] <= 4.0
    assert any(e["kind"] == "disconnected" for e in side["device_events"])
    raw = read_mne(out / "recording.edf")
    assert raw.n_times >= 6 * 2000
    texts = list(raw.annotations.description)
    assert "gap" in texts


def test_no_reconnect_stops_cleanly(tmp_path, fake):
    fake(seed=1, disconnect_after=2.5)
    out = tmp_path / "rec"
    rec = RecordThread(
        record_argv(tmp_path / "ttyFAKE", out, "--no-reconnect", "--no-report", duration=60)
    )
    rec.start()
    assert rec.finish(timeout=30) == 0
    side = sidecar(out)
    assert side["status"] == "complete" and side["reconnects"] == 0
    assert (out / "events.tsv").exists() and (out / "summary.json").exists()
    assert read_mne(out / "recording.edf").n_times >= 2000


def test_sigterm_writes_clean_outputs(tmp_path, fake):
    from emgtool.cli import main

    dev = fake(seed=4)
    out = tmp_path / "rec"

    def terminate_when_recording():
        wait_for(lambda: (sidecar(out).get("n_records_on_disk") or 0) >= 2)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by record's handler in the main thread

    killer = threading.Thread(target=terminate_when_recording, daemon=True)
    killer.start()
    rc = main(record_argv(dev.path, out, "--no-report", duration=60))
    killer.join(5)
    assert rc == 0
    side = sidecar(out)
    assert side["status"] == "complete" and side["stop_reason"] == "stopped by user"
    with open(out / "recording.edf", "rb") as fh:
        fh.seek(236)
        n_rec = int(fh.read(8))
    assert n_rec >= 2  # the header was completed
    assert (out / "summary.json").exists() and (out / "events.tsv").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_sigkill_then_recover(tmp_path, fake):
    from emgtool.acquisition.recovery import recover

    dev = fake(seed=5)
    out = tmp_path / "rec"
    proc = start_record(dev.path, out, duration=60)
    wait_for(lambda: (sidecar(out).get("n_records_on_disk") or 0) >= 3, timeout=40, proc=proc)
    proc.kill()
    proc.wait(timeout=10)
    on_disk = sidecar(out)["n_records_on_disk"]
    size = (out / "recording.edf").stat().st_size
    with open(out / "recording.edf", "rb") as fh:
        fh.seek(236)
        assert fh.read(8).strip() == b"-1"  # killed mid-recording: header never completed
    res = recover(out)
    assert (out / "recording.partial.edf").stat().st_size == size  # kept as found
    raw = read_mne(out / "recording.edf")
    assert raw.n_times >= on_disk * 2000  # every record that was on disk at kill time
    with open(out / "recording.edf", "rb") as fh:
        fh.seek(236)
        assert int(fh.read(8)) == raw.n_times // 2000  # closed properly
    assert (out / "events.tsv").exists() and (out / "summary.json").exists()
    assert res["n_samples"] == raw.n_times
    assert sidecar(out)["status"] == "recovered"
    with pytest.raises(Exception, match="nothing to recover"):
        recover(out)


def test_cyton_fake_handshake_and_faults_over_pty(fake):
    """Cyton over a real pty: v/d/b handshake, then garbage and dropped bytes."""
    from emgtool.acquisition import protocols
    from emgtool.acquisition.serialport import handshake, open_port

    dev = fake(protocol="cyton", drop_every=50, garbage_every=70, link=None)
    dev.keep_sent = True
    ser = open_port(dev.path, 115200)
    try:
        banner = handshake(ser, protocols.get("cyton").start_commands(None), b"$$$")
        assert b"$$$" in banner
        st = protocols.make_decoder("cyton")
        xs = []
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            x, c, st = protocols.feed(ser.read(ser.in_waiting or 1), st)
            xs.append(x)
        ser.write(b"s")
    finally:
        ser.close()
    x = np.concatenate(xs, axis=1)
    n = x.shape[1]
    assert n >= 300
    corrupt = n // 50
    lost = int(np.isnan(x[0]).sum())
    assert lost <= corrupt + 1  # at most one sample per corrupted frame
    off, scale = protocols.scale_uv(st)
    sent = np.concatenate(dev.sent_uv, axis=1)
    good = ~np.isnan(x[0])
    uv = (x - off[:, None]) * scale[:, None]
    # sample indices stay true: every decoded sample matches what was sent at that index
    assert np.allclose(uv[:, good], sent[:, :n][:, good], atol=0.03)


@pytest.mark.filterwarnings("ignore::emgtool.errors.EmgtoolWarning")  # low fs / uncalibrated
@pytest.mark.parametrize(
    "protocol,n_ch,fs,extra",
    [
        ("cyton", 8, 250, []),
        ("cyton-daisy", 16, 125, []),
        ("p2", 6, 256, []),
        ("spikershield", 3, 10000 / 3, ["--channels", "3"]),
    ],
)
def test_each_protocol_records_through_a_pty(tmp_path, fake, protocol, n_ch, fs, extra):
    from emgtool.io import read

    dev = fake(protocol=protocol, n_channels=3 if protocol == "spikershield" else None, seed=2)
    dev.keep_sent = True
    out = tmp_path / "rec"
    argv = [
        "record",
        "--port",
        dev.path,
        "--protocol",
        protocol,
        "--out",
        str(out),
        "--view",
        "off",
        "--no-report",
        "--duration",
        "2",
        *extra,
    ]
    from emgtool.cli import main

    assert main(argv) == 0
    rec = read(out / "recording.edf")
    side = sidecar(out)
    assert rec.n_channels == n_ch and rec.fs == pytest.approx(fs, rel=1e-6)
    assert rec.n_samples == round(2 * fs) and side["decoder"]["lost_frames"] == 0
    if protocol.startswith("cyton"):
        # streaming starts at 'b', so the file starts with the first sample sent
        sent = np.concatenate(dev.sent_uv, axis=1)[:, : rec.n_samples]
        first = 1 if protocol == "cyton-daisy" else 0  # Daisy's first row is half empty
        err = np.abs(rec.data[:, first:] - np.clip(sent[:, first:], -5000, 5000))
        assert np.max(err) < 0.2  # counts → µV with the tracked gain, then the EDF step
        assert any(e["kind"] == "banner" and "$$$" in e["message"] for e in side["device_events"])


def test_fake_device_command_prints_a_port_that_streams(tmp_path):
    from emgtool.acquisition import protocols
    from emgtool.acquisition.serialport import open_port

    cmd = [
        sys.executable,
        "-m",
        "emgtool",
        "fake-device",
        "--protocol",
        "p2",
        "--duration",
        "20",
        "--wrap-counter",
        "--garbage-every",
        "40",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        ser = open_port(path, 57600)
        st = protocols.make_decoder("p2")
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            _x, _c, st = protocols.feed(ser.read(ser.in_waiting or 1), st)
        ser.close()
        assert st.stats["frames"] >= 200  # 256 Hz
        assert st.stats["lost_frames"] == 0 and st.stats["skipped_bytes"] >= 7  # garbage skipped
        assert st.last_abs > 256  # the counter wrapped (started at 200)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "sent" in err


def test_wrong_protocol_gets_a_hint_and_a_clear_error(tmp_path, monkeypatch, capsys):
    """A P2 decoder on a Cyton stream: nothing decodes; the user is told what to check."""
    from emgtool.acquisition import live
    from emgtool.acquisition.fakedevice import FakeDevice
    from emgtool.errors import EmgtoolError

    dev = FakeDevice("cyton", link=None).start()
    dev.streaming = True  # as if someone had sent 'b' earlier
    monkeypatch.setattr(live, "NO_DATA_HINT_S", 0.5)
    live._preload()  # as `record` does before opening the port
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    try:
        src = live.serial_source(dev.path, "p2")
        with pytest.raises(EmgtoolError, match="no samples were received"):
            live.run_live(src, live.LiveOptions(tmp_path / "rec", view="lines"), stop)
    finally:
        dev.stop()
    out = capsys.readouterr().out
    assert "no valid frame yet" in out and "--baud" in out
