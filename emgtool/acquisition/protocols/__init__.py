"""Serial protocols of supported EMG boards: pure incremental decoders and encoders.

Every protocol module offers the same functions:

- ``init(**params) -> DecoderState``
- ``feed(data, state) -> (samples, counters, state)``: raw counts
  ``(n_channels, n)`` with NaN where the device counter shows lost frames,
  the device counter per sample (-1 where lost), and the new state (the
  input state is never modified);
- ``flush(state)``: what is held back at the end of a stream;
- ``scale_uv(state) -> (offset, scale)``: µV = (counts - offset) × scale;
- ``encode(...) -> bytes``: the device's bytes, for fake devices and tests.

:data:`PROTOCOLS` maps the names used by ``emgtool record --protocol`` to a
:class:`Protocol` that also knows the link speed and start/stop commands.

Examples
--------
>>> from emgtool.acquisition import protocols
>>> st = protocols.make_decoder("cyton")
>>> x, c, st = protocols.feed(b"", st)
>>> x.shape, st.fs
((8, 0), 250.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from emgtool.acquisition.protocols import csvline, cyton, p2, spikershield
from emgtool.acquisition.protocols._frames import DecoderState
from emgtool.errors import ConfigError

__all__ = [
    "Protocol",
    "PROTOCOLS",
    "DecoderState",
    "make_decoder",
    "feed",
    "flush",
    "scale_uv",
    "get",
]


@dataclass(frozen=True)
class Protocol:
    """What the live path needs to know about one protocol."""

    name: str
    module: ModuleType
    baud: int
    init: Callable[..., DecoderState]
    start_commands: Callable[[DecoderState], tuple[bytes, ...]]
    stop_commands: tuple[bytes, ...]
    #: after ``v`` the device answers with text ending ``$$$`` that must be read away
    banner_end: bytes | None
    #: counts have no documented µV calibration (a nominal gain is used)
    uncalibrated: bool
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "cyton": Protocol(
        "cyton",
        cyton,
        cyton.BAUD,
        lambda **kw: cyton.init(daisy=False, **kw),
        lambda st: cyton.START_COMMANDS,
        cyton.STOP_COMMANDS,
        b"$$$",
        False,
        "OpenBCI Cyton, 8 ch at 250 Hz (USB dongle, 115200 baud)",
    ),
    "cyton-daisy": Protocol(
        "cyton-daisy",
        cyton,
        cyton.BAUD,
        lambda **kw: cyton.init(daisy=True, **kw),
        lambda st: cyton.START_COMMANDS,
        cyton.STOP_COMMANDS,
        b"$$$",
        False,
        "OpenBCI Cyton + Daisy, 16 ch at 125 Hz",
    ),
    "p2": Protocol(
        "p2",
        p2,
        p2.BAUD,
        p2.init,
        lambda st: p2.START_COMMANDS,
        p2.STOP_COMMANDS,
        None,
        True,
        "OpenEEG ModularEEG P2 (Olimex SHIELD-EKG-EMG), 6 ch at 256 Hz, 57600 baud",
    ),
    "spikershield": Protocol(
        "spikershield",
        spikershield,
        spikershield.BAUD,
        spikershield.init,
        lambda st: spikershield.start_commands(st.n_channels),
        spikershield.STOP_COMMANDS,
        None,
        True,
        "Backyard Brains SpikerShield/SpikerBox, 10 kHz / N channels, 230400 baud",
    ),
    "csv": Protocol(
        "csv",
        csvline,
        csvline.BAUD,
        csvline.init,
        lambda st: csvline.START_COMMANDS,
        csvline.STOP_COMMANDS,
        None,
        False,
        "emgtool CSV text protocol v1 (Arduino/ESP32/RP2040 sketches)",
    ),
}


def get(name: str) -> Protocol:
    """The protocol called ``name``; a clear error for unknown names."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}"
        ) from None


def make_decoder(name: str, **params) -> DecoderState:
    """A fresh decoder state for protocol ``name`` (params as its ``init`` takes)."""
    return get(name).init(**params)


def feed(
    data: bytes, state: DecoderState
) -> tuple[NDArray[np.float64], NDArray[np.int64], DecoderState]:
    """Dispatch to the protocol's ``feed``."""
    return PROTOCOLS[state.protocol].module.feed(data, state)


def flush(state: DecoderState):
    """Dispatch to the protocol's ``flush``."""
    return PROTOCOLS[state.protocol].module.flush(state)


def scale_uv(state: DecoderState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Dispatch to the protocol's ``scale_uv``."""
    return PROTOCOLS[state.protocol].module.scale_uv(state)
