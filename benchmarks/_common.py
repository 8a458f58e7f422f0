"""Helpers shared by the benchmark scripts (numpy only, so any interpreter can import it)."""

from __future__ import annotations

import math
import resource
import sys
from pathlib import Path

import numpy as np


def json_safe(obj):
    """``obj`` with NaN/inf as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return json_safe(float(obj))
    return obj


def replace_marked_block(doc: Path, block: str, start: str, end: str) -> None:
    """Put ``block`` (which begins with ``start`` and ends with ``end``) into ``doc``.

    The text between the markers is replaced; without markers the block is appended.
    """
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if start in text and end in text:
        text = text.split(start)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")


def peak_rss_mb() -> float:
    """Peak RSS of this process, in MB.

    On Linux ``ru_maxrss`` survives ``exec``: a script started from a large
    process (a test runner, or a benchmark that analysed a big file before)
    would report its parent's peak.  ``VmHWM`` belongs to the current address
    space only, so it is used where it exists.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 2**10
