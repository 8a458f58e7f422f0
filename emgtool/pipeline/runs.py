"""Vectorised run finding on boolean masks (rows = channels or sites).

Examples
--------
>>> import numpy as np
>>> from emgtool.pipeline.runs import find_runs, merge_runs
>>> m = np.array([[0, 1, 1, 0, 0, 1, 0, 1]], bool)
>>> find_runs(m)
(array([0, 0, 0]), array([1, 5, 7]), array([3, 6, 8]))
>>> merge_runs(*find_runs(m), max_gap=1)
(array([0, 0]), array([1, 5]), array([3, 8]))
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["find_runs", "merge_runs", "union_length", "subtract_intervals"]


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


def merge_runs(
    rows: NDArray, starts: NDArray, stops: NDArray, max_gap: int
) -> tuple[NDArray, NDArray, NDArray]:
    """Merge runs of the same row separated by fewer than ``max_gap`` samples."""
    if len(rows) == 0:
        return rows, starts, stops
    new = np.ones(len(rows), bool)
    new[1:] = (rows[1:] != rows[:-1]) | (starts[1:] - stops[:-1] >= max_gap)
    grp = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(rows) - 1]
    del grp
    return rows[first], starts[first], stops[last]


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


def subtract_intervals(
    base: tuple[float, float], remove: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``base`` minus the union of ``remove``, as sorted disjoint intervals."""
    a0, b0 = base
    out = []
    cur = a0
    for a, b in sorted(remove):
        if b <= cur:
            continue
        if a >= b0:
            break
        if a > cur:
            out.append((cur, min(a, b0)))
        cur = max(cur, b)
        if cur >= b0:
            break
    if cur < b0:
        out.append((cur, b0))
    return out
