"""The live loop: source → decoder → µV → detection pipeline → crash-safe file and terminal view.

One function, :func:`run_live`, serves ``emgtool record`` on a serial port
and ``emgtool record --replay FILE``: only the *source* differs.

Data path
---------
1. A source puts :class:`~emgtool.acquisition.serialport.PortEvent` items in
   a queue: raw bytes (serial reader thread or a raw capture), or µV blocks
   (a recording file replayed in real time or as fast as possible).
2. Bytes go through the protocol's pure decoder; counts become µV with the
   device's scale.  Lost frames are NaN at their true sample index; an
   unplug becomes a NaN gap whose length comes from the host clock.
3. Samples are quantised exactly as the EDF writer stores them, so the live
   detections equal an offline analysis of the file written.
4. Every ~80 ms the block goes to the pipeline (``step``) and to the
   append-only :class:`~emgtool.io.edf_stream.EdfStreamWriter` (1-s records,
   fsync each: samples reach the disk at least once a second).  Events
   become EDF+ annotations as they are decided.
5. A JSON sidecar (``session.json``: gaps, device events, counters, how far
   the file got) is replaced atomically every second, so ``emgtool recover``
   can rebuild everything after a SIGKILL or a power cut.
6. On stop (duration, Ctrl-C, SIGTERM, ``--no-reconnect`` unplug, end of
   replay) the pipeline is flushed and ``recording.edf``, ``events.tsv``,
   ``summary.json`` and ``report.html`` are written.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from emgtool._fsutil import fsync_dir
from emgtool._version import __version__
from emgtool.acquisition import protocols
from emgtool.acquisition.serialport import PortEvent
from emgtool.acquisition.view import LiveStatus, Screen, channel_quality
from emgtool.config import DetectorConfig
from emgtool.errors import EmgtoolError
from emgtool.recording import DTYPE, Channel, Recording

__all__ = [
    "LiveOptions",
    "run_live",
    "record_seconds",
    "quantize_like_edf",
    "SIDECAR",
    "write_json_atomic",
    "sample_file_source",
    "byte_file_source",
    "serial_source",
]

SIDECAR = "session.json"
RECORDING = "recording.edf"
PHYSICAL_RANGE_UV = (-5000.0, 5000.0)
EDF_DIGITAL = (-32768, 32767)
#: EDF+ annotation room per record: ~60 short event annotations per second
#: before they queue up (they are never dropped, only delayed to later records).
ANNOTATION_BYTES = 2048
#: frames of silence beyond which an 8-bit device counter is no longer trusted
STALL_FRAMES = 200
NO_DATA_HINT_S = 5.0


@dataclass
class LiveOptions:
    """Options of one live session (the CLI fills them)."""

    out_dir: Path
    duration_s: float | None = None
    chunk_s: float = 0.04
    sites: str | list | None = None
    montage: str | dict | None = None
    config: DetectorConfig | None = None
    view: str = "auto"  # auto | tty | lines | off
    physical_range_uv: tuple[float, float] = PHYSICAL_RANGE_UV
    fsync: bool = True
    write_report: bool = True
    info: dict = field(default_factory=dict)  # protocol, port, … for the sidecar


# ---------------------------------------------------------------------------- helpers
def record_seconds(fs: float) -> float:
    """Longest EDF record ≤ 1 s holding a whole number of samples (10 kHz/3 → 0.3 s)."""
    for r in (1.0, 0.5, 0.25, 0.2, 0.3, 0.1, 0.05, 0.01):
        spr = fs * r
        if abs(spr - round(spr)) < 1e-9 and round(spr) >= 1:
            return r
    raise EmgtoolError(f"sampling rate {fs:g} Hz gives no whole number of samples per EDF record")


def quantize_like_edf(x: NDArray, prange: tuple[float, float]) -> NDArray[np.float32]:
    """Round µV to the 16-bit EDF grid the writer uses (NaN stays NaN)."""
    pmin, pmax = prange
    g = (pmax - pmin) / (EDF_DIGITAL[1] - EDF_DIGITAL[0])
    with np.errstate(invalid="ignore"):
        d = np.clip(np.round((x - pmin) / g + EDF_DIGITAL[0]), *EDF_DIGITAL)
    return ((d - EDF_DIGITAL[0]) * g + pmin).astype(DTYPE)


def write_json_atomic(path: Path, doc: dict) -> None:
    """Write JSON via a temp file + fsync + ``os.replace`` (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, default=_json_default)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)  # make the rename itself durable (power cut)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------- sources
@dataclass
class LiveSource:
    """Where samples come from: a queue of PortEvent plus how to decode and stop."""

    events: queue.Queue
    decoder: protocols.DecoderState | None = None  # None: the items carry µV blocks
    fs: float = 0.0
    labels: list[str] | None = None
    stop: Callable[[], None] = lambda: None
    write: Callable[[bytes], None] | None = None
    make_decoder: Callable[[], protocols.DecoderState] | None = None


def serial_source(
    port: str,
    protocol: str,
    *,
    baud: int | None = None,
    reconnect: bool = True,
    decoder_params: dict | None = None,
    find_port: Callable[[], str | None] | None = None,
) -> LiveSource:
    """Open a serial port, run the device handshake and start the reader thread."""
    from emgtool.acquisition.serialport import SerialReader, handshake

    proto = protocols.get(protocol)
    params = dict(decoder_params or {})
    q: queue.Queue = queue.Queue()
    box = {"decoder": proto.init(**params)}

    def track(cmd: bytes) -> None:
        if proto.module is protocols.cyton:
            box["decoder"] = protocols.cyton.track_command(cmd, box["decoder"])

    def on_connect(ser) -> None:
        text = handshake(
            ser, proto.start_commands(box["decoder"]), proto.banner_end, on_command=track
        )
        if text.strip():
            q.put(PortEvent("device", time.monotonic(), message=text.decode("ascii", "replace")))

    reader = SerialReader(
        port,
        baud or proto.baud,
        q,
        reconnect=reconnect,
        on_connect=on_connect,
        find_port=find_port,
    )
    reader.open()
    reader.start()

    def make() -> protocols.DecoderState:
        fresh = proto.init(**params)
        return fresh.replace(
            params={
                **fresh.params,
                **{k: v for k, v in box["decoder"].params.items() if k == "gains"},
            }
        )

    src = LiveSource(
        q,
        box["decoder"],
        stop=lambda: reader.stop(proto.stop_commands),
        write=reader.write,
        make_decoder=make,
    )
    src.reader = reader  # type: ignore[attr-defined]
    return src


def sample_file_source(
    path: str | Path, *, speed: float = 1.0, chunk_s: float = 0.05, **input_kwargs
) -> LiveSource:
    """Replay a recording file as µV blocks, paced at ``speed`` × real time (0 = no pacing)."""
    from emgtool.io import open_source

    src = open_source(path, **input_kwargs)
    q: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()
    n = max(1, int(round(chunk_s * src.fs)))

    def run() -> None:
        t0 = time.monotonic()
        for a in range(0, src.n_samples, n):
            if stop.is_set():
                return
            block = src.read_block(a, min(a + n, src.n_samples))
            if speed > 0:
                delay = t0 + (a + block.shape[1]) / src.fs / speed - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
            _put(q, PortEvent("samples", time.monotonic(), message=""), block, stop)
        _put(q, PortEvent("closed", time.monotonic(), message="end of file"), None, stop)

    th = threading.Thread(target=run, name="emgtool-replay", daemon=True)
    th.start()
    ls = LiveSource(
        q,
        None,
        fs=src.fs,
        labels=[c.label for c in src.channels],
        stop=lambda: (stop.set(), th.join(timeout=2)),
    )
    ls.channels = src.channels  # type: ignore[attr-defined]
    return ls


def byte_file_source(
    path: str | Path, protocol: str, *, speed: float = 0.0, decoder_params: dict | None = None
) -> LiveSource:
    """Replay a raw byte capture of a device through its decoder (as fast as possible)."""
    proto = protocols.get(protocol)
    params = dict(decoder_params or {})
    if protocol == "csv":
        params.setdefault("at_line_start", True)
    q: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()
    data = Path(path).read_bytes()

    def run() -> None:
        for i in range(0, len(data), 4096):
            if stop.is_set():
                return
            _put(q, PortEvent("data", time.monotonic(), data[i : i + 4096]), None, stop)
        _put(q, PortEvent("closed", time.monotonic(), message="end of file"), None, stop)

    th = threading.Thread(target=run, name="emgtool-replay", daemon=True)
    th.start()
    return LiveSource(
        q,
        proto.init(**params),
        stop=lambda: (stop.set(), th.join(timeout=2)),
        make_decoder=lambda: proto.init(**params),
    )


def _put(q: queue.Queue, ev: PortEvent, block, stop: threading.Event) -> None:
    ev.block = block  # type: ignore[attr-defined]
    while not stop.is_set():
        try:
            q.put(ev, timeout=0.1)
            return
        except queue.Full:
            continue


# ---------------------------------------------------------------------------- the loop
class _Session:
    """Mutable bookkeeping of one run (kept out of the pure parts)."""

    def __init__(self, opts: LiveOptions, source: LiveSource):
        self.opts, self.source = opts, source
        self.out_dir = Path(opts.out_dir)
        self.decoder = source.decoder
        self.fs = 0.0
        self.channels: tuple[Channel, ...] = ()
        self.writer = None
        self.pipe = None
        self.pending: list[NDArray] = []
        self.n_pending = 0
        self.n_done = 0  # samples handed to writer and pipeline
        # Decided events per site (counts only: a day-long session must not keep them all).
        self.n_fasc_site: dict[int, int] = {}
        self.n_cramp_site: dict[int, int] = {}
        self.gaps: list[dict] = []
        self.device_events: list[dict] = []
        self.reconnects = 0
        self.bytes_in = 0
        self.t_start = time.monotonic()
        self.t_last_data: float | None = None
        self.disconnected_at: float | None = None
        self.connected = True
        self.started_at = datetime.now().astimezone()
        self.recent = np.zeros((0, 0), np.float32)
        # Timings: the last 10,000 of each (bounded memory over a day-long session).
        self.latencies_ms: deque = deque(maxlen=10_000)
        # Provisional fasciculations (measured, not yet decided): key -> shown at.
        self.provisional_open: dict[tuple[int, int], float] = {}
        self.provisional_ms: deque = deque(maxlen=10_000)  # shown - last sample's arrival
        self.n_provisional_confirmed = 0
        self.n_provisional_withdrawn = 0
        self.arrivals: deque = deque()  # (samples received so far, arrival time)
        self.step_ms: deque = deque(maxlen=10_000)
        self.last_sidecar = 0.0
        self.status = LiveStatus()
        self.screen = Screen(mode=opts.view)
        self.rate_window: list[tuple[float, int, int]] = []
        self.stop_reason = ""
        self.asked_header = time.monotonic()
        self.hinted = False

    # -------------------------------------------------------------- set-up once fs is known
    def begin(
        self, fs: float, labels: list[str], channels: tuple[Channel, ...] | None = None
    ) -> None:
        from emgtool.io.edf_stream import EdfStreamWriter
        from emgtool.sites import assign_sites, load_montage

        self.fs = float(fs)
        if channels is None or self.opts.sites is not None or self.opts.montage is not None:
            montage = self.opts.montage
            if montage is not None and not isinstance(montage, dict):
                montage = load_montage(montage)
            channels = assign_sites(labels, self.opts.sites, montage=montage, warn=False)
        self.channels = tuple(channels)
        self.record_s = record_seconds(self.fs)
        self.writer = EdfStreamWriter(
            self.out_dir / RECORDING,
            self.fs,
            [c.label for c in self.channels],
            record_s=self.record_s,
            physical_range_uv=self.opts.physical_range_uv,
            fsync=self.opts.fsync,
            start_time=self.started_at.replace(tzinfo=None),
            annotation_bytes=ANNOTATION_BYTES,
        )
        try:
            from emgtool.pipeline import init_state

            self.pipe = init_state(self.fs, self.channels, self.opts.config)
        except ImportError:  # detection not available in this checkout: record only
            self.pipe = None
        self.chunk_n = max(1, int(round(self.opts.chunk_s * self.fs)))
        self.recent = np.zeros((len(self.channels), 0), np.float32)
        self.write_sidecar("recording")

    # -------------------------------------------------------------- samples in
    def room(self) -> int | None:
        """Samples still wanted before ``--duration`` is reached (None: no limit)."""
        if self.opts.duration_s is None or not self.fs:
            return None
        return max(0, int(round(self.opts.duration_s * self.fs)) - self.n_done - self.n_pending)

    def add_samples(self, block_uv: NDArray, t_arrival: float) -> None:
        room = self.room()
        if room is not None and block_uv.shape[1] > room:
            block_uv = block_uv[:, :room]
        x = quantize_like_edf(block_uv, self.opts.physical_range_uv)
        self.pending.append(x)
        self.n_pending += x.shape[1]
        self.t_last_data = t_arrival
        self.arrivals.append((self.n_done + self.n_pending, t_arrival))
        while len(self.arrivals) > 2000:  # ~1-3 min of reads
            self.arrivals.popleft()
        if self.n_pending >= self.chunk_n:
            self.process(t_arrival)

    def add_gap(self, n: int, reason: str) -> None:
        room = self.room()
        if room is not None:
            n = min(n, room)
        if n <= 0 or not self.channels:
            return
        start = self.n_done + self.n_pending
        self.gaps.append(
            {
                "start_sample": start,
                "n_samples": int(n),
                "reason": reason,
                "onset_s": start / self.fs,
                "duration_s": n / self.fs,
            }
        )
        if self.writer is not None:
            self.writer.add_annotation(start / self.fs, n / self.fs, "gap")
        self.pending.append(np.full((len(self.channels), n), np.nan, DTYPE))
        self.n_pending += n
        self.write_sidecar("recording")

    def process(self, t_arrival: float) -> None:
        """Hand the pending samples to the writer and the pipeline."""
        if not self.pending or self.writer is None:
            return
        block = np.concatenate(self.pending, axis=1) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.n_pending = [], 0
        self.writer.write(block)
        if self.pipe is not None:
            from emgtool.pipeline import step

            t0 = time.perf_counter()
            chunk = Recording(
                np.ascontiguousarray(block), self.fs, self.channels, first_sample=self.n_done
            )
            evs, self.pipe = step(chunk, self.pipe)
            dt = time.perf_counter() - t0
            self.step_ms.append(dt * 1e3)
            now = time.monotonic()
            for e in evs:
                self.on_event(e)
                # latency: decided now vs arrival of the event's last sample
                if e.get("kind") == "fasciculation":
                    arrived = self.arrival_of(e["stop"])
                    if arrived is not None:
                        self.latencies_ms.append((now - arrived) * 1e3)
            self.track_provisional(evs, now)
        self.n_done += block.shape[1]
        keep = int(self.fs)
        self.recent = np.concatenate([self.recent, block], axis=1)[:, -keep:]

    def arrival_of(self, sample: int) -> float | None:
        """When the read holding sample ``sample - 1`` (a potential's last) arrived."""
        if not self.arrivals:
            return None
        ends = np.fromiter((a[0] for a in self.arrivals), np.int64)
        i = int(np.searchsorted(ends, sample, side="left"))
        return self.arrivals[i][1] if i < len(ends) else None

    def track_provisional(self, evs: list[dict], now: float) -> None:
        """Show candidates as soon as they are measured; settle them when decided."""
        from emgtool.pipeline.core import provisional

        current = {(p["site_i"], p["peak"]): p for p in provisional(self.pipe)}
        decided = {(e["site_i"], e["peak"]): e for e in evs if e.get("kind") == "fasciculation"}
        for key, p in [*current.items(), *decided.items()]:
            if key not in self.provisional_open:
                self.provisional_open[key] = now
                arrived = self.arrival_of(p["stop"])
                if arrived is not None:
                    self.provisional_ms.append((now - arrived) * 1e3)
        for key in list(self.provisional_open):
            if key in decided:
                self.n_provisional_confirmed += 1
            elif key in current:
                continue
            else:
                self.n_provisional_withdrawn += 1  # decided: not a fasciculation
            del self.provisional_open[key]

    def on_event(self, e: dict) -> None:
        if e.get("kind") not in ("fasciculation", "cramp"):
            return
        counts = self.n_fasc_site if e["kind"] == "fasciculation" else self.n_cramp_site
        counts[e["site_i"]] = counts.get(e["site_i"], 0) + 1
        site, side = self.pipe.site_keys[e["site_i"]]
        site = site.split(":", 1)[-1]
        label = site if side == "n/a" else f"{site} {side}"
        self.writer.add_annotation(
            e["start"] / self.fs, (e["stop"] - e["start"]) / self.fs, f"{e['kind']} {label}"
        )

    # -------------------------------------------------------------- bookkeeping
    def write_sidecar(self, status: str) -> None:
        self.last_sidecar = time.monotonic()
        if not self.out_dir.exists():
            return
        w = self.writer
        doc = {
            "format": "emgtool-live-session",
            "version": 1,
            "emgtool": __version__,
            "status": status,
            "stop_reason": self.stop_reason,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "updated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "fs": self.fs,
            "record_s": getattr(self, "record_s", None),
            "channels": [
                {"label": c.label, "site": c.site, "side": c.side, "region": c.region}
                for c in self.channels
            ],
            "physical_range_uv": list(self.opts.physical_range_uv),
            "recording": RECORDING,
            "n_samples_written": None if w is None else w.n_samples,
            "n_records_on_disk": None if w is None else w.n_records,
            "gaps": self.gaps,
            "device_events": self.device_events[-200:],
            "decoder": None if self.decoder is None else dict(self.decoder.stats),
            "reconnects": self.reconnects,
            "event_delay_ms_median": (
                round(float(np.median(self.latencies_ms)), 1) if self.latencies_ms else None
            ),
            "bytes_read": self.bytes_in,
            "config": (self.opts.config or DetectorConfig()).to_dict(),
            **self.opts.info,
        }
        write_json_atomic(self.out_dir / SIDECAR, doc)

    def refresh_view(self, force: bool = False) -> None:
        s = self.status
        now = time.monotonic()
        s.elapsed_s = now - self.t_start
        s.fs = self.fs
        s.n_samples = self.n_done + self.n_pending
        s.dropped_samples = int(sum(g["n_samples"] for g in self.gaps))
        if self.decoder is not None:
            s.dropped_samples += int(self.decoder.stats.get("lost_frames", 0))
            s.resyncs = int(self.decoder.stats.get("resyncs", 0))
        self.rate_window.append((now, self.bytes_in, s.n_samples))
        self.rate_window = [r for r in self.rate_window if now - r[0] <= 2.0]
        t0, b0, n0 = self.rate_window[0]
        if now > t0:
            s.bytes_per_s = (self.bytes_in - b0) / (now - t0)
            s.samples_per_s = (s.n_samples - n0) / (now - t0)
        s.connected = self.connected
        s.stalled = self.t_last_data is not None and now - self.t_last_data > 0.5
        s.reconnects = self.reconnects
        s.latency_ms = (
            float(np.median(list(self.latencies_ms)[-50:])) if self.latencies_ms else float("nan")
        )
        s.provisional_ms = (
            float(np.median(list(self.provisional_ms)[-50:]))
            if self.provisional_ms
            else float("nan")
        )
        s.n_provisional = len(self.provisional_open)
        if self.pipe is not None:
            keys = self.pipe.site_keys
            nf = np.zeros(len(keys), int)
            nc = np.zeros(len(keys), int)
            for i, n in self.n_fasc_site.items():
                nf[i] = n
            for i, n in self.n_cramp_site.items():
                nc[i] = n
            run_start = getattr(self.pipe, "run_start", None)
            bin_s = self.pipe.bin_n / self.fs
            sites = []
            for i, (site, side) in enumerate(keys):
                active = 0.0
                if run_start is not None and run_start[i] >= 0:
                    active = max(0.0, self.pipe.n_bins - run_start[i]) * bin_s
                label = site.split(":", 1)[-1] + ("" if side == "n/a" else f" {side}")
                sites.append((label, int(nf[i]), int(nc[i]), active))
            s.sites = sites
        if self.recent.size:
            q = channel_quality(self.recent)
            s.channels = [(c.label, sd, f) for c, (sd, f) in zip(self.channels, q, strict=True)]
        self.screen.update(s, force=force)


def run_live(source: LiveSource, opts: LiveOptions, stop_event: threading.Event) -> dict:
    """Run a live session until ``stop_event``, the duration, or the end of the source.

    Returns a summary dict (paths written, counts, latency).  Raises
    :class:`EmgtoolError` for problems the user must fix.
    """
    out = Path(opts.out_dir)
    if (out / RECORDING).exists() or (out / SIDECAR).exists():
        raise EmgtoolError(
            f"{out}: already holds a recording; choose a new --out folder "
            f"(or run 'emgtool recover {out}' if it was interrupted)"
        )
    out.mkdir(parents=True, exist_ok=True)
    _preload()
    ses = _Session(opts, source)
    if source.decoder is None:
        ses.begin(source.fs, source.labels or [], getattr(source, "channels", None))
    elif source.decoder.fs and source.decoder.n_channels:
        ses.begin(source.decoder.fs, _labels(source.decoder))
    ses.t_start = time.monotonic()
    deadline_wall = None if opts.duration_s is None else ses.t_start + opts.duration_s + 30.0
    try:
        while not stop_event.is_set():
            try:
                ev = source.events.get(timeout=0.05)
            except queue.Empty:
                ev = None
            if ev is not None and _handle(ses, ev):
                ses.stop_reason = ev.message or "source ended"
                break
            now = time.monotonic()
            if ses.room() == 0:
                ses.stop_reason = "duration reached"
                break
            if deadline_wall is not None and now > deadline_wall:
                ses.stop_reason = "duration reached (wall clock; device delivered too little data)"
                break
            if (
                ses.pending
                and ses.t_last_data is not None
                and now - ses.t_last_data > opts.chunk_s
            ):
                ses.process(now)  # a slow device: do not hold samples back
            if now - ses.last_sidecar >= 1.0 and ses.fs:
                ses.write_sidecar("recording")
            if ses.fs and now - ses.status.elapsed_s - ses.t_start >= 0.5:
                ses.refresh_view()
            if ses.t_last_data is None and now - ses.t_start > NO_DATA_HINT_S and not ses.hinted:
                ses.hinted = True
                ses.screen.say(_no_data_hint(ses))
        else:
            ses.stop_reason = ses.stop_reason or "stopped by user"
    except OSError as e:  # disk full, folder removed, …: say so, keep what is on disk
        raise EmgtoolError(
            f"cannot write to {out}: {e.strerror or e}; the recording holds every complete "
            f"second written so far; free space and run 'emgtool recover {out}'"
        ) from None
    finally:
        source.stop()
    return _finish(ses)


def _preload() -> None:
    """Import the heavy modules now: an import holding the GIL for a second while
    the port is open would let the OS buffer overflow (a pty holds ~130 ms of CSV)."""
    import emgtool.io.edf_stream  # noqa: F401

    try:
        import emgtool.pipeline  # noqa: F401
        import emgtool.report  # noqa: F401
    except ImportError:
        pass


def _labels(st: protocols.DecoderState) -> list[str]:
    labels = st.params.get("labels") if st.params else None
    if labels and len(labels) == st.n_channels:
        return list(labels)
    return [f"EMG{i + 1}" for i in range(st.n_channels)]


def _handle(ses: _Session, ev: PortEvent) -> bool:
    """Apply one source event; True when the source is finished."""
    if ev.kind == "data":
        ses.bytes_in += len(ev.data)
        quiet_s, reason = _stall_restart(ses, ev.t), "stall"
        if ses.disconnected_at is not None and ses.fs:
            # first bytes after a replug: the time without data is a gap
            quiet_s, reason = ev.t - (ses.t_last_data or ses.disconnected_at), "disconnected"
            ses.disconnected_at = None
        x, _c, ses.decoder = protocols.feed(ev.data, ses.decoder)
        if quiet_s:
            # the samples of this read were made during the last part of the silence
            ses.add_gap(int(round(quiet_s * ses.fs)) - x.shape[1], reason)
        for text in ses.decoder.text:
            ses.device_events.append(
                {"t_s": round(ev.t - ses.t_start, 3), "kind": "message", "message": text[:200]}
            )
        if not ses.fs and ses.decoder.fs and ses.decoder.n_channels:
            ses.begin(ses.decoder.fs, _labels(ses.decoder))
        elif not ses.fs and ses.source.write is not None and ev.t - ses.asked_header > 1.5:
            # data but no header yet (CSV): ask again rather than wait forever
            ses.asked_header = ev.t
            if ses.decoder.protocol == "csv":
                ses.source.write(b"v")
        if ses.fs and (ses.decoder.fs != ses.fs or ses.decoder.n_channels != len(ses.channels)):
            ev.message = (
                f"the device now streams {ses.decoder.n_channels} channels at "
                f"{ses.decoder.fs:g} Hz instead of {len(ses.channels)} at {ses.fs:g} Hz; "
                "stopping (start a new recording for the new settings)"
            )
            ses.screen.say(f"emgtool: {ev.message}")
            return True
        if x.shape[1] and ses.fs:
            off, scale = protocols.scale_uv(ses.decoder)
            ses.add_samples((x - off[:, None]) * scale[:, None], ev.t)
        return False
    if ev.kind == "samples":
        ses.add_samples(np.asarray(ev.block, dtype=np.float64), ev.t)  # type: ignore[attr-defined]
        return False
    if ev.kind == "disconnected":
        ses.connected = False
        ses.disconnected_at = ev.t
        ses.process(ev.t)
        ses.device_events.append(
            {"t_s": round(ev.t - ses.t_start, 3), "kind": "disconnected", "message": ev.message}
        )
        ses.screen.say(f"emgtool: {ev.message}; the file is intact; reconnecting…")
        ses.write_sidecar("recording")
        return False
    if ev.kind == "connected":
        if not ses.connected:
            ses.reconnects += 1
            ses.connected = True
            if ses.source.make_decoder is not None:
                _drain_decoder(ses, ev.t)
                ses.decoder = ses.source.make_decoder()
                if ses.fs and not ses.decoder.fs:  # CSV: keep placing lines until the header
                    ses.decoder = ses.decoder.replace(fs=ses.fs, n_channels=len(ses.channels))
            ses.device_events.append(
                {"t_s": round(ev.t - ses.t_start, 3), "kind": "reconnected", "message": ev.message}
            )
            ses.screen.say(f"emgtool: reconnected to {ev.message}")
        return False
    if ev.kind == "device":
        ses.device_events.append(
            {"t_s": round(ev.t - ses.t_start, 3), "kind": "banner", "message": ev.message[:500]}
        )
        return False
    if ev.kind == "closed":
        if not ses.connected:
            ses.screen.say("emgtool: device gone and --no-reconnect given: stopping cleanly")
        return True
    return False


def _no_data_hint(ses: _Session) -> str:
    """What to check when nothing decodable arrived after a few seconds."""
    st = ses.decoder
    if ses.bytes_in == 0:
        return (
            f"emgtool: no data after {NO_DATA_HINT_S:g} s; is the board on, the cable in, "
            "and --protocol right? (still waiting; Ctrl-C to stop)"
        )
    if st is not None and st.protocol == "csv":
        return (
            f"emgtool: {ses.bytes_in} bytes received but no '# emgtool-csv v1' header yet; "
            "check --baud, or give --fs and --channels if the sketch sends no header"
        )
    return (
        f"emgtool: {ses.bytes_in} bytes received but no valid frame yet; wrong --baud or "
        "--protocol? (see firmware_notes/)"
    )


def _drain_decoder(ses: _Session, t: float) -> None:
    """Emit what the decoder holds back (last frame) before it is replaced."""
    if ses.decoder is None or not ses.fs:
        return
    x, _c, ses.decoder = protocols.flush(ses.decoder)
    if x.shape[1] and x.shape[0] == len(ses.channels):
        off, scale = protocols.scale_uv(ses.decoder)
        ses.add_samples((x - off[:, None]) * scale[:, None], ses.t_last_data or t)


def _stall_restart(ses: _Session, t: float) -> float:
    """A silence longer than the device counter can measure becomes a host-time gap.

    An 8-bit counter (Cyton, P2) is unambiguous only up to 255 lost frames; a
    longer silence (radio lost, board browned out, cable half out) would be
    undercounted by multiples of 256.  Beyond ``STALL_FRAMES`` frames of
    silence the decoder restarts and the silence is written as a gap from the
    host clock.  CSV's 32-bit counter measures any silence itself.  The
    SpikerShield has no counter: after 1 s of silence the host clock is all
    there is.  Returns the silence in seconds (0.0 if none to record).
    """
    st = ses.decoder
    if st is None or not ses.fs or ses.t_last_data is None or ses.source.make_decoder is None:
        return 0.0
    if st.protocol == "csv" or ses.disconnected_at is not None:
        return 0.0
    frame_rate = 250.0 if st.protocol.startswith("cyton") else ses.fs
    limit_s = 1.0 if st.protocol == "spikershield" else STALL_FRAMES / frame_rate
    quiet_s = t - ses.t_last_data
    if quiet_s <= limit_s:
        return 0.0
    _drain_decoder(ses, t)
    fresh = ses.source.make_decoder()
    if "gains" in st.params:  # Cyton: the board kept its settings
        fresh = fresh.replace(params={**fresh.params, "gains": st.params["gains"]})
    ses.decoder = fresh
    ses.device_events.append(
        {
            "t_s": round(t - ses.t_start, 3),
            "kind": "stall",
            "message": f"no data for {quiet_s:.1f} s",
        }
    )
    return quiet_s


def _finish(ses: _Session) -> dict:
    """Flush everything and write the outputs."""
    result: dict = {"out_dir": str(ses.out_dir), "stop_reason": ses.stop_reason}
    if ses.decoder is not None and ses.fs:
        x, _c, ses.decoder = protocols.flush(ses.decoder)
        if x.shape[1]:
            off, scale = protocols.scale_uv(ses.decoder)
            ses.add_samples((x - off[:, None]) * scale[:, None], time.monotonic())
    if ses.writer is None or ses.n_done + ses.n_pending == 0:
        # Nothing recorded: leave no half-made recording behind (a rerun with the
        # same --out must work), only the explanation.
        if ses.writer is not None:
            ses.writer.close()
            (ses.out_dir / RECORDING).unlink(missing_ok=True)
        (ses.out_dir / SIDECAR).unlink(missing_ok=True)
        raise EmgtoolError(
            f"no samples were received ({ses.bytes_in} bytes read); "
            "check --protocol, --baud, the cable and that the board is on"
        )
    ses.process(time.monotonic())
    analysis = None
    if ses.pipe is not None:
        from emgtool.pipeline import flush

        evs, ses.pipe = flush(ses.pipe)
        for e in evs:
            ses.on_event(e)
    ses.writer.close()
    ses.write_sidecar("closed")
    if ses.pipe is not None:
        from emgtool.pipeline import finalize
        from emgtool.pipeline.analyze import file_id

        source = {"file": RECORDING, "format": "EDF+", "reader_warnings": [], "start_time": None}
        analysis = finalize(ses.pipe, recording_id=file_id(ses.out_dir / RECORDING), source=source)
        analysis.gaps = [(g["start_sample"], g["start_sample"] + g["n_samples"]) for g in ses.gaps]
        result["missing"] = write_results(analysis, ses.out_dir, report=ses.opts.write_report)
        result["n_events"] = int(len(analysis.events))
    ses.write_sidecar("complete")
    ses.refresh_view(force=True)
    result.update(
        {
            "n_samples": ses.n_done,
            "fs": ses.fs,
            "gaps": ses.gaps,
            "reconnects": ses.reconnects,
            "step_ms_median": float(np.median(ses.step_ms)) if ses.step_ms else None,
            "latency_ms_median": float(np.median(ses.latencies_ms)) if ses.latencies_ms else None,
            "provisional_ms_median": (
                float(np.median(ses.provisional_ms)) if ses.provisional_ms else None
            ),
            "provisional_confirmed": ses.n_provisional_confirmed,
            "provisional_withdrawn": ses.n_provisional_withdrawn,
            "analysis": analysis,
        }
    )
    return result


def write_results(analysis, out_dir: Path, *, report: bool = True) -> list[str]:
    """events.tsv (+ .json), summary.json and report.html; returns what was not written."""
    from emgtool.events import write_events_tsv

    missing: list[str] = []
    write_events_tsv(analysis.events, out_dir / "events.tsv")
    try:
        if not report:
            raise ImportError("report.html not asked for")
        from emgtool.report import write_report

        write_report(analysis, out_dir)
    except ImportError:
        missing.append("report.html")
        try:
            from emgtool.report import write_json_atomic as write_strict_json
            from emgtool.report.summary import summarize

            write_strict_json(out_dir / "summary.json", summarize(analysis))
        except ImportError:
            missing.append("summary.json")
    return missing
