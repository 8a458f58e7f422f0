"""Live terminal view: a pure ``render(status) -> lines`` and a tiny screen updater.

On a terminal the block of lines is redrawn in place (~2×/s) with plain ANSI
cursor movement; when stdout is a file or a pipe a one-line summary is
printed every few seconds instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LiveStatus", "render", "render_line", "Screen", "channel_quality"]


@dataclass
class LiveStatus:
    """What the view shows; filled by the live loop."""

    elapsed_s: float = 0.0
    fs: float = 0.0
    n_samples: int = 0
    dropped_samples: int = 0
    bytes_per_s: float = 0.0
    samples_per_s: float = 0.0
    connected: bool = True
    stalled: bool = False
    message: str = ""
    resyncs: int = 0
    reconnects: int = 0
    #: per site: (label, fasciculation count, cramp count, activity-in-progress seconds or 0)
    sites: list = field(default_factory=list)
    #: per channel: (label, noise µV, flag)
    channels: list = field(default_factory=list)
    latency_ms: float = float("nan")
    #: provisional fasciculations on screen (measured, not yet decided) and their delay
    n_provisional: int = 0
    provisional_ms: float = float("nan")


def channel_quality(block_uv: np.ndarray, flat_uv: float = 0.5) -> list[tuple[float, str]]:
    """(noise µV, flag) per channel of the last second: flag ``ok``, ``flat``, ``noisy``, ``gap``.

    Noise is the robust SD of the first difference / √2, a cheap high-pass
    that ignores electrode offset and drift.
    """
    out = []
    for x in block_uv:
        fin = x[np.isfinite(x)]
        if fin.size < 0.5 * max(x.size, 1):
            out.append((float("nan"), "gap"))
            continue
        d = np.diff(fin)
        sd = float(np.median(np.abs(d - np.median(d))) / 0.6745 / np.sqrt(2)) if d.size else 0.0
        flag = "flat" if sd < flat_uv else "noisy" if sd > 50.0 else "ok"
        out.append((sd, flag))
    return out


def render(s: LiveStatus) -> list[str]:
    """The view as lines of text (no escape codes)."""
    mins = max(s.elapsed_s, 1e-9) / 60.0
    state = "connected" if s.connected else "DISCONNECTED - reconnecting"
    if s.connected and s.stalled:
        state = "no data (stalled)"
    lines = [
        f"emgtool record  {_hms(s.elapsed_s)}  {state}  fs {s.fs:g} Hz  "
        f"{s.samples_per_s:,.0f} samples/s  {s.bytes_per_s / 1000:.1f} kB/s",
        f"dropped {s.dropped_samples} samples ({100 * s.dropped_samples / max(s.n_samples, 1):.2f} %)"
        f"  resyncs {s.resyncs}  reconnects {s.reconnects}"
        + (f"  latency {s.latency_ms:.0f} ms" if np.isfinite(s.latency_ms) else "")
        + (
            f"  provisional {s.n_provisional} (shown after {s.provisional_ms:.0f} ms)"
            if np.isfinite(s.provisional_ms)
            else ""
        ),
        f"{'site':<24}{'fasc':>6}{'per min':>9}{'cramps':>8}  activity",
    ]
    for label, nf, nc, active_s in s.sites:
        act = f"CRAMP? {active_s:.0f} s" if active_s >= 3 else ("active" if active_s > 0 else "")
        lines.append(f"{label[:23]:<24}{nf:>6}{nf / mins:>9.1f}{nc:>8}  {act}")
    q = "  ".join(
        f"{lab[:12]}:{'--' if not np.isfinite(sd) else f'{sd:.1f}'}{'' if f == 'ok' else ' ' + f}"
        for lab, sd, f in s.channels
    )
    lines.append(f"noise µV  {q}")
    if s.message:
        lines.append(s.message)
    return lines


def render_line(s: LiveStatus) -> str:
    """One-line summary for logs (stdout not a terminal)."""
    nf = sum(x[1] for x in s.sites)
    nc = sum(x[2] for x in s.sites)
    return (
        f"[{_hms(s.elapsed_s)}] {s.n_samples} samples, dropped {s.dropped_samples}, "
        f"{nf} fasciculations, {nc} cramps, {'connected' if s.connected else 'DISCONNECTED'}"
        + (f" - {s.message}" if s.message else "")
    )


def _hms(t: float) -> str:
    t = int(t)
    return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


class Screen:
    """Redraw the view in place on a TTY, or print a line every ``line_every_s`` otherwise."""

    def __init__(self, stream=None, mode: str = "auto", line_every_s: float = 5.0):
        self.stream = stream or sys.stdout
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = ("tty" if tty else "lines") if mode == "auto" else mode
        self.line_every_s = line_every_s
        self._n_lines = 0
        self._last_line = 0.0

    def update(self, s: LiveStatus, force: bool = False) -> None:
        if self.mode == "off":
            return
        if self.mode == "lines":
            now = time.monotonic()
            if force or now - self._last_line >= self.line_every_s:
                self._last_line = now
                print(render_line(s), file=self.stream, flush=True)
            return
        lines = render(s)
        up = f"\x1b[{self._n_lines}F" if self._n_lines else ""
        text = up + "".join(f"\x1b[K{ln}\n" for ln in lines)
        if len(lines) < self._n_lines:  # clear lines left from a longer frame
            text += (
                "\x1b[K\n" * (self._n_lines - len(lines)) + f"\x1b[{self._n_lines - len(lines)}F"
            )
        self.stream.write(text)
        self.stream.flush()
        self._n_lines = len(lines)

    def say(self, text: str) -> None:
        """A message that stays (printed above the view)."""
        if self.mode == "off":
            return
        if self.mode == "tty" and self._n_lines:
            self.stream.write(f"\x1b[{self._n_lines}F\x1b[J")
            self._n_lines = 0
        print(text, file=self.stream, flush=True)
