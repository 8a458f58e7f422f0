"""Dask worker plugin of the local cluster; imported only when a batch runs on Dask.

A worker process that has loaded the analysis (NumPy, SciPy, pandas, numba,
scikit-learn, matplotlib) spent 0.5-1 s exiting: the interpreter's final
garbage collections walk the whole heap of those libraries.  The batch waits
for its worker processes to exit, so that was a serial cost at the end of every
batch.  Freezing the heap at exit (:func:`gc.freeze`) skips those walks; the
interpreter still shuts down normally (every other exit handler runs, modules
are torn down), and the operating system reclaims the memory as always.
"""

from __future__ import annotations

import atexit
import gc

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["QuickExit"]

_registered = False


def freeze_gc_at_exit() -> None:
    """Register :func:`gc.freeze` to run first at interpreter exit (once per process)."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)  # exit handlers run last-registered first
        _registered = True


class QuickExit(WorkerPlugin):
    """On every worker of the local cluster, also those a nanny restarts after a crash.

    By the time a worker process exits, its files are written and committed by
    the driver; nothing in its heap needs a finaliser, and the batch's catalog
    is not touched by workers.
    """

    name = "emgtool-quick-exit"
    idempotent = True

    def setup(self, worker) -> None:
        freeze_gc_at_exit()
