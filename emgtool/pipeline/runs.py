"""Vectorised run finding on boolean masks (rows = channels or sites).

Examples
--------
>>> import numpy as np
>>> from emgtool.pipeline.runs import find_runs, union_length
>>> m = np.array([[0, 1, 1, 0, 0, 1, 0, 1]], bool)
>>> find_runs(m)
(array([0, 0, 0]), array([1, 5, 7]), array([3, 6, 8]))
>>> union_length([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)])
4.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["find_runs", "union_length"]


def find_runs(mask: NDArray[np.bool_]) -> tuple[NDArray, NDArray, NDArray]:
    """Runs of True per row: ``(row, start, stop)``, half-open, sorted by row then start."""
    n_rows, n = mask.shape
    if n == 0:
        e = np.zeros(0, np.int64)
        return e, e, e
    padded = np.zeros((n_rows, n + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rs, starts = np.nonzero(d == 1)
    re, stops = np.nonzero(d == -1)
    # nonzero returns row-major order, so starts and stops pair up row by row.
    return rs.astype(np.int64), starts.astype(np.int64), stops.astype(np.int64)


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of ``[a, b)`` intervals."""
    if not intervals:
        return 0.0
    iv = sorted((a, b) for a, b in intervals if b > a)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in iv:
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a
    return float(total)
