"""Serial port reader thread: exclusive open, ``read(in_waiting or 1)``, reconnect with back-off.

The reader thread does nothing but move bytes from the port into a queue,
so a slow consumer (filtering, disk, terminal) never makes the OS buffer
overflow.  Items in the queue are :class:`PortEvent`.  On a USB unplug
pyserial raises ``SerialException``/``OSError``; the reader reports
``disconnected``, closes the port and, unless told not to, reopens it with
back-off 0.5 → 5 s (re-finding the device by VID:PID when its name changes),
runs the device's start handshake again and reports ``connected``.

Any pyserial URL works (``socket://host:port`` on Windows CI, ``loop://``).

Examples
--------
>>> import queue
>>> q = queue.Queue()
>>> r = SerialReader("loop://", 115200, q, reconnect=False)
>>> r.open(); r.start(); r.write(b"hi")
>>> ev = q.get(timeout=2)  # "connected" first
>>> r.stop()
"""

from __future__ import annotations

import errno
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from emgtool.errors import EmgtoolError

__all__ = ["PortEvent", "SerialReader", "open_port", "handshake"]

BACKOFF_S = (0.5, 5.0)


@dataclass
class PortEvent:
    """``kind`` is ``"data"``, ``"connected"``, ``"disconnected"`` or ``"closed"``.

    ``t`` is ``time.monotonic()`` when the bytes were read.
    """

    kind: str
    t: float
    data: bytes = b""
    message: str = ""


def open_port(port: str, baud: int, timeout_s: float = 0.05):
    """Open ``port`` exclusively with a clear error message on failure."""
    import serial

    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=timeout_s, exclusive=True)
    except serial.SerialException as e:
        raise EmgtoolError(_explain_open_error(port, e)) from None
    except (OSError, ValueError) as e:
        raise EmgtoolError(f"cannot open serial port {port}: {e}") from None
    try:  # FTDI latency timer 16 → 1 ms on Linux; ptys and other drivers refuse
        ser.set_low_latency_mode(True)
    except (AttributeError, ValueError, OSError, NotImplementedError):
        pass
    return ser


def _explain_open_error(port: str, e: Exception) -> str:
    text = str(e)
    err = getattr(e, "errno", None)
    if err == errno.EACCES or "Permission denied" in text:
        return (
            f"cannot open serial port {port}: permission denied. On Linux add yourself to the "
            "'dialout' group (sudo usermod -aG dialout $USER, then log in again); "
            "see firmware_notes/ports.md"
        )
    if "exclusively lock" in text or err == errno.EBUSY:
        return f"cannot open serial port {port}: it is in use by another program (close it first)"
    if err == errno.ENOENT or "No such file" in text or "could not open port" in text:
        return (
            f"cannot open serial port {port}: no such device; is the board plugged in? "
            "(on macOS use /dev/cu.*, not /dev/tty.*)"
        )
    return f"cannot open serial port {port}: {text}"


def handshake(
    ser,
    commands: tuple[bytes, ...],
    banner_end: bytes | None,
    timeout_s: float = 3.0,
    on_command: Callable[[bytes], None] | None = None,
) -> bytes:
    """Send the start commands; after ``v`` (Cyton) read the banner up to ``banner_end``.

    Returns the text read while waiting (banners), for the log.  Every command
    sent is passed to ``on_command`` so the decoder can track gains.
    """
    seen = bytearray()
    for cmd in commands:
        ser.write(cmd)
        if on_command is not None:
            on_command(cmd)
        if cmd == b"s":  # a stray packet may follow a stop: let it arrive, then drop it
            time.sleep(0.1)
            ser.reset_input_buffer()
        elif banner_end is not None and cmd in (b"v", b"d"):
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                seen += ser.read(ser.in_waiting or 1)
                if seen.endswith(banner_end) or banner_end in seen[-len(banner_end) - 64 :]:
                    break
    return bytes(seen)


class SerialReader:
    """Thread moving bytes from a serial port into ``out`` (a ``queue.Queue`` of PortEvent).

    Parameters
    ----------
    port : str
        Device path or pyserial URL.
    baud : int
    out : queue.Queue
    reconnect : bool
        Reopen after a disconnect (back-off 0.5 → 5 s) instead of stopping.
    on_connect : callable, optional
        ``on_connect(ser)`` runs the device handshake after each (re)open.
    find_port : callable, optional
        ``find_port() -> str | None``: where the device is now (default: the
        same path, or the port with the same USB VID:PID/serial number).
    """

    def __init__(
        self,
        port: str,
        baud: int,
        out: queue.Queue,
        *,
        reconnect: bool = True,
        on_connect: Callable | None = None,
        find_port: Callable[[], str | None] | None = None,
        backoff_s: tuple[float, float] = BACKOFF_S,
    ):
        self.port, self.baud, self.out = port, baud, out
        self.reconnect, self.on_connect = reconnect, on_connect
        self.find_port = find_port or self._same_device
        self.backoff_s = backoff_s
        self.ser = None
        self._usb_id: tuple | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emgtool-serial", daemon=True)
        self._lock = threading.Lock()
        self.peak_in_waiting = 0
        self.bytes_read = 0

    # ------------------------------------------------------------------ control
    def open(self) -> None:
        """Open the port now (errors surface in the caller's thread)."""
        self.ser = open_port(self.port, self.baud)
        self._usb_id = _usb_id_of(self.port)
        if self.on_connect is not None:
            self.on_connect(self.ser)

    def start(self) -> None:
        self.out.put(PortEvent("connected", time.monotonic(), message=self.port))
        self._thread.start()

    def stop(self, stop_commands: tuple[bytes, ...] = ()) -> None:
        """Stop the thread, send the stop commands if still connected, close the port."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            if self.ser is not None:
                try:
                    for cmd in stop_commands:
                        self.ser.write(cmd)
                    self.ser.close()
                except Exception:  # a vanished device cannot be told to stop
                    pass
                self.ser = None

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.ser is not None:
                self.ser.write(data)

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                ser = self.ser
                n = ser.in_waiting
                self.peak_in_waiting = max(self.peak_in_waiting, n)
                data = ser.read(n or 1)
            except (serial.SerialException, OSError, AttributeError, TypeError) as e:
                self._drop(f"{self.port}: device disconnected ({e})")
                if not self.reconnect or not self._reopen():
                    self.out.put(PortEvent("closed", time.monotonic(), message="stopped"))
                    return
                continue
            if data:
                self.bytes_read += len(data)
                self.out.put(PortEvent("data", time.monotonic(), data))

    def _drop(self, message: str) -> None:
        self.out.put(PortEvent("disconnected", time.monotonic(), message=message))
        with self._lock:
            try:
                if self.ser is not None:
                    self.ser.close()
            except Exception:
                pass
            self.ser = None

    def _reopen(self) -> bool:
        delay, max_delay = self.backoff_s
        while not self._stop.wait(delay):
            path = self.find_port() or self.port
            try:
                ser = open_port(path, self.baud)
                if self.on_connect is not None:
                    self.on_connect(ser)
            except Exception:
                delay = min(delay * 2, max_delay)
                continue
            with self._lock:
                self.ser = ser
            self.out.put(PortEvent("connected", time.monotonic(), message=path))
            return True
        return False

    def _same_device(self) -> str | None:
        if self._usb_id is None:
            return None
        try:
            from serial.tools import list_ports

            for p in list_ports.comports():
                if (p.vid, p.pid, p.serial_number) == self._usb_id:
                    return p.device
        except Exception:
            return None
        return None


def _usb_id_of(port: str) -> tuple | None:
    """(VID, PID, serial number) of a USB serial port, None for others (ptys, URLs)."""
    try:
        from serial.tools import list_ports

        for p in list_ports.comports():
            if p.device == port and p.vid is not None:
                return (p.vid, p.pid, p.serial_number)
    except Exception:
        return None
    return None
