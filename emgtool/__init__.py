"""emgtool: fasciculations and cramps in surface EMG, per body site and region.

Public API
----------
- :class:`Recording`, :class:`Channel`: samples in µV and channel metadata.
- :func:`read`, :func:`open_source`, :func:`iter_chunks`: EDF/BDF/CSV input.
- :func:`analyze`: detect fasciculations and cramps → :class:`Analysis`.
- :class:`DetectorConfig`: every detection parameter.
- :func:`simulate`: synthetic recordings with exact ground truth.

This is a research tool; it reports findings, never a diagnosis.
"""

from emgtool._version import __version__
from emgtool.config import DetectorConfig
from emgtool.errors import EmgtoolError, ReadError
from emgtool.io import iter_chunks, open_source, read
from emgtool.recording import Channel, Recording

__all__ = [
    "__version__",
    "Recording",
    "Channel",
    "read",
    "open_source",
    "iter_chunks",
    "DetectorConfig",
    "EmgtoolError",
    "ReadError",
    "analyze",
    "simulate",
]


def __getattr__(name):
    # Heavy modules load on first use, so `import emgtool` stays fast.
    if name == "analyze":
        from emgtool.pipeline.analyze import analyze

        return analyze
    if name == "simulate":
        from emgtool.simulate import simulate

        return simulate
    if name == "Analysis":
        from emgtool.analysis import Analysis

        return Analysis
    raise AttributeError(name)
