"""Fake serial EMG devices on a pseudo-terminal, for tests and for trying live mode without hardware.

A :class:`FakeDevice` opens a pty pair (raw mode on both ends), and a thread
streams simulated EMG as the real protocol's bytes in real time (absolute
``time.monotonic()`` deadlines, several frames per write) while answering
the device's commands:

- Cyton: ``v`` → banner ending ``$$$``, ``d`` defaults, ``x…X`` channel
  settings (gain), ``b`` start, ``s`` stop;
- emgtool CSV v1: header at boot and on ``v``, ``b`` start, ``s`` stop;
- SpikerShield: ``StartUp!`` at boot, streams from reset, ``b:;`` → ``HWT:MUSCLESS;``;
- P2: streams from reset, ignores input.

Faults for tests: garbage bytes after every N-th frame, one byte dropped
from every N-th frame, a counter starting just before its wrap, and an
"unplug" (the master end closed, so the client's read fails exactly as on
a USB unplug).  The master end is non-blocking; bytes the client does not
read in time are dropped and counted, as an FTDI chip would.

Examples
--------
>>> dev = FakeDevice("csv", scenario="healthy", seed=1)   # doctest: +SKIP
>>> dev.start(); print(dev.path)                            # doctest: +SKIP
/dev/pts/7
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from emgtool.acquisition import protocols
from emgtool.acquisition.protocols import csvline, cyton, p2, spikershield

__all__ = ["FakeDevice", "signal_source", "CYTON_BANNER", "default_channels"]

CYTON_BANNER = (
    b"OpenBCI V3 8-16 channel\nOn Board ADS1299 Device ID: 0x3E\n"
    b"LIS3DH Device ID: 0x33\nFirmware: v3.1.2\n$$$"
)
_FS_DEFAULT = {"cyton": 250.0, "cyton-daisy": 125.0, "p2": 256.0, "csv": 2000.0}


def default_channels(protocol: str) -> int:
    return {"cyton": 8, "cyton-daisy": 16, "p2": 6, "spikershield": 2, "csv": 4}[protocol]


def _fallback_block(
    rng: np.random.Generator, scenario: str, fs: float, n_ch: int, n: int, t0_s: float
) -> NDArray[np.float64]:
    """Simple resting sEMG: white noise (~5 µV) plus triphasic potentials (and cramps)."""
    x = rng.normal(0.0, 5.0, size=(n_ch, n))
    w = max(int(0.012 * fs), 5)
    t = np.linspace(-3, 3, w)
    shape = -np.gradient(np.exp(-(t**2))) * (1 - 0.3 * t**2)
    shape = shape / np.ptp(shape)
    rate = {"healthy": 0.0, "cramps": 0.3}.get(scenario, 0.8)  # per channel per second
    for ch in range(n_ch):
        k = rng.poisson(rate * n / fs)
        for pos in rng.integers(0, max(n - w, 1), size=k):
            x[ch, pos : pos + w] += rng.uniform(150, 600) * shape[: n - pos]
    if scenario == "cramps" and int(t0_s) % 30 >= 20:  # a cramp on channel 0 for 10 s of 30
        x[0] += rng.normal(0.0, 120.0, size=n)
    return x


def signal_source(
    scenario: str, fs: float, n_channels: int, seed: int, block_s: float = 20.0
) -> tuple[Callable[[int], NDArray[np.float64]], list[str]]:
    """``(next_samples, labels)``: ``next_samples(n) -> (n_channels, n)`` µV, endless.

    One block of ``block_s`` seconds is simulated up front (with
    ``emgtool.simulate.simulate``, or a simple built-in generator if that is
    unavailable) and then looped, so streaming never stalls on the simulator.
    """
    labels = [f"EMG{i + 1}" for i in range(n_channels)]
    data = None
    try:
        from emgtool.simulate import simulate

        rec, _truth = simulate(scenario, block_s, seed, fs=fs)
        data = np.asarray(rec.data, dtype=np.float64)
        reps = -(-n_channels // data.shape[0])
        data = np.tile(data, (reps, 1))[:n_channels]
        labels = (rec.labels * reps)[:n_channels]
    except ImportError:
        pass
    if data is None or data.shape[1] == 0:
        rng = np.random.default_rng(seed)
        data = _fallback_block(rng, scenario, fs, n_channels, int(round(block_s * fs)), 0.0)
    pos = 0

    def next_samples(n: int) -> NDArray[np.float64]:
        nonlocal pos
        idx = (pos + np.arange(n)) % data.shape[1]
        pos = (pos + n) % data.shape[1]
        return data[:, idx]

    return next_samples, labels


class FakeDevice:
    """A fake board on a pty; ``path`` is what to pass to ``emgtool record --port``.

    Parameters
    ----------
    protocol : str
        ``cyton``, ``cyton-daisy``, ``p2``, ``spikershield`` or ``csv``.
    scenario, seed : simulator scenario and seed.
    n_channels, fs : override channels (SpikerShield, CSV) and rate (CSV).
    garbage_every : int
        Insert 7 random bytes after every N-th frame (0 = never).
    drop_every : int
        Delete one byte from every N-th frame (0 = never).
    wrap_counter : bool
        Start the device counter just before it wraps.
    disconnect_after : float
        "Unplug" after this many seconds of streaming.
    duration : float
        Stop streaming after this many seconds.
    link : str or Path
        Also make a symlink to the pty here (like socat's ``link=``), so a
        replugged fake can appear at the same name.
    """

    def __init__(
        self,
        protocol: str,
        *,
        scenario: str = "als-widespread",
        seed: int = 0,
        n_channels: int | None = None,
        fs: float | None = None,
        garbage_every: int = 0,
        drop_every: int = 0,
        wrap_counter: bool = False,
        disconnect_after: float | None = None,
        duration: float | None = None,
        link: str | Path | None = None,
    ):
        if sys.platform == "win32":
            raise OSError("fake devices need a pseudo-terminal (Linux or macOS)")
        import pty
        import tty

        protocols.get(protocol)
        self.protocol = protocol
        self.n_channels = n_channels or default_channels(protocol)
        if protocol == "spikershield":
            self.fs = spikershield.fs_for(self.n_channels)
        else:
            self.fs = float(fs or _FS_DEFAULT[protocol])
        if protocol == "cyton-daisy":
            self.n_channels = 16
        self.garbage_every, self.drop_every = garbage_every, drop_every
        self.disconnect_after, self.duration = disconnect_after, duration
        self.rng = np.random.default_rng(seed + 1)
        self.next_samples, self.labels = signal_source(scenario, self.fs, self.n_channels, seed)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.slave_path = os.ttyname(self.slave)
        self.link = Path(link) if link else None
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.slave_path)
            os.replace(tmp, self.link)
        self.path = str(self.link or self.slave_path)
        # Device state
        self.gains = [24] * 16
        self.streaming = protocol in ("p2", "spikershield", "csv")  # these stream from reset
        self.counter = 0
        if wrap_counter:
            self.counter = {"csv": 2**32 - 500}.get(protocol, 200)
        self.frames_sent = 0
        self.samples_sent = 0
        self.overrun_bytes = 0
        self.commands: list[bytes] = []
        self.sent_uv: list[NDArray] = []  # what was sent (tests compare against it)
        self.keep_sent = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed = False
        # Labels travel in the CSV header (spaces as '_'), so sites are known at once.
        names = ",".join(lab.replace(" ", "_").replace(",", "_") for lab in self.labels)
        self._boot = {
            "csv": csvline.encode_header(self.fs, self.n_channels, "uV", labels=names),
            "spikershield": b"StartUp!\n",
        }.get(protocol, b"")

    # ------------------------------------------------------------------ control
    def start(self) -> FakeDevice:
        self._thread = threading.Thread(target=self.run, name="emgtool-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.disconnect()

    def disconnect(self) -> None:
        """Simulate an unplug: close both pty ends and remove the link."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link is not None and self.link.is_symlink():
            try:
                if os.readlink(self.link) == self.slave_path:
                    self.link.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        self._write(self._boot)
        t_start = time.monotonic()
        t0 = t_start
        sent_at_t0 = 0
        frame_rate = 250.0 if self.protocol == "cyton-daisy" else self.fs
        while not self._stop.is_set() and not self.closed:
            now = time.monotonic()
            if self.disconnect_after is not None and now - t_start >= self.disconnect_after:
                self.disconnect()
                break
            if self.duration is not None and now - t_start >= self.duration:
                break
            r, _, _ = select.select([self.master], [], [], 0.0)
            if r:
                try:
                    cmd = os.read(self.master, 1024)
                except OSError:
                    cmd = b""
                if cmd:
                    was = self.streaming
                    self._answer(cmd)
                    if self.streaming and not was:
                        t0, sent_at_t0 = time.monotonic(), self.frames_sent
            if self.streaming:
                due = int((time.monotonic() - t0) * frame_rate) + sent_at_t0
                n = due - self.frames_sent
                if self.protocol == "cyton-daisy":
                    n -= n % 2
                if n > 0:
                    self._write(self._frames(n))
            # next write in ~10 ms: several frames per write, absolute deadlines above
            time.sleep(0.01)

    def _write(self, data: bytes) -> None:
        if not data or self.closed:
            return
        # Wait a little for a slow reader (as a USB chip's buffer would), then drop
        # what still does not fit, as an FTDI chip does; CDC devices would block.
        view = memoryview(data)
        t_end = time.monotonic() + 0.05
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                left = t_end - time.monotonic()
                if left <= 0 or not select.select([], [self.master], [], left)[1]:
                    self.overrun_bytes += len(view)
                    return
            except OSError:
                return

    def _answer(self, cmd: bytes) -> None:
        self.commands.append(cmd)
        p = self.protocol
        text = cmd.decode("ascii", "replace")
        if p.startswith("cyton"):
            for i, ch in enumerate(text):
                if ch == "v":
                    self.streaming = False
                    self._write(CYTON_BANNER)
                elif ch == "d":
                    self.gains = [24] * 16
                    self._write(b"updating channel settings to default$$$")
                elif ch == "b":
                    self.streaming = True
                elif ch == "s":
                    self.streaming = False
                elif ch == "x" and i + 8 < len(text) and text[i + 8] == "X":
                    k = "12345678QWERTYUI".find(text[i + 1])
                    if k >= 0 and text[i + 3].isdigit() and int(text[i + 3]) < 7:
                        self.gains[k] = cyton.GAINS[int(text[i + 3])]
                    self._write(f"Success: Channel set for {text[i + 1]}$$$".encode())
        elif p == "csv":
            for ch in text:
                if ch == "v":
                    self._write(self._boot)
                elif ch == "b":
                    self.streaming = True
                elif ch == "s":
                    self.streaming = False
        elif p == "spikershield":
            if "b:;" in text:
                self._write(b"HWT:MUSCLESS;")
            if "h:;" in text:
                self.streaming = False
            if "start:;" in text:
                self.streaming = True

    def _frames(self, n: int) -> bytes:
        """``n`` frames (Daisy: packets) of the protocol, with faults applied."""
        p = self.protocol
        rows = n // 2 if p == "cyton-daisy" else n
        uv = self.next_samples(rows)
        if self.keep_sent:
            self.sent_uv.append(uv)
        if p.startswith("cyton"):
            g = np.asarray(self.gains[: self.n_channels], float)[:, None]
            counts = np.round(uv / (4.5 / g / (2**23 - 1) * 1e6)).astype(np.int64)
            data = cyton.encode(counts, self.counter, daisy=p == "cyton-daisy")
            self.counter = (self.counter + n) % 256
            flen = 33
        elif p == "p2":
            st = p2.init()
            off, s = p2.scale_uv(st)
            data = p2.encode(np.round(uv / s[0] + off[0]).astype(np.int64), self.counter)
            self.counter = (self.counter + n) % 256
            flen = 17
        elif p == "spikershield":
            st = spikershield.init(self.n_channels)
            off, s = spikershield.scale_uv(st)
            data = spikershield.encode(np.round(uv / s[0] + off[0]).astype(np.int64))
            flen = 2 * self.n_channels
        else:
            data = csvline.encode(uv, self.fs, self.counter, decimals=1)
            self.counter = (self.counter + n) % 2**32
            flen = 0
        first = self.frames_sent
        self.frames_sent += n
        self.samples_sent += rows
        if not (self.garbage_every or self.drop_every):
            return data
        return self._faults(data, first, n, flen)

    def _faults(self, data: bytes, first: int, n: int, flen: int) -> bytes:
        if flen:
            frames = [data[i * flen : (i + 1) * flen] for i in range(n)]
        else:
            frames = [ln + b"\n" for ln in data.split(b"\n")[:-1]]
        out = []
        for i, fr in enumerate(frames):
            k = first + i + 1
            if self.drop_every and k % self.drop_every == 0:
                # Text lines carry no checksum, so a lost digit would pass unseen;
                # for CSV drop a separator, which the decoder can detect.
                j = fr.rfind(b",") if not flen else int(self.rng.integers(1, len(fr) - 1))
                fr = fr[:j] + fr[j + 1 :]
            out.append(fr)
            if self.garbage_every and k % self.garbage_every == 0:
                g = bytes(self.rng.integers(0, 256, 7, dtype=np.uint8))
                if flen:  # never forge a frame start
                    g = g.replace(b"\xa0", b"\x00").replace(b"\xa5", b"\x00")
                    if self.protocol == "spikershield":
                        g = bytes(b & 0x7F for b in g)
                out.append(g)
        return b"".join(out)
