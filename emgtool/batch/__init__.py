"""Batch processing of many recordings: ``emgtool batch``.

Resumable (SQLite catalog keyed by file content and configuration), crash
tolerant (Dask worker processes; a bad file is a recorded failure, never the
end of the batch) and the same code on a laptop or a cluster.

Modules
-------
- :mod:`~emgtool.batch.inputs`: files, folders, globs and BIDS roots → :class:`Item`.
- :mod:`~emgtool.batch.catalog`: the SQLite catalog (written by the driver only).
- :mod:`~emgtool.batch.tasks`: what runs on a worker for one file.
- :mod:`~emgtool.batch.engine`: the driver loop on Dask (or serially).
- :mod:`~emgtool.batch.cohort`: cohort table, HTML summary, failures list.

Dask is imported only when a batch runs, never by ``import emgtool``.
"""

from emgtool.batch.engine import BatchResult, run_batch
from emgtool.batch.inputs import Item, discover

__all__ = ["run_batch", "BatchResult", "discover", "Item"]
