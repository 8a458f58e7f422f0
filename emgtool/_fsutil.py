"""File-system durability helpers shared by the recorder, the EDF writer and batch."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir"]


def fsync_dir(folder: str | Path) -> None:
    """Make renames and new entries in ``folder`` durable (power cut).

    Best effort: Windows cannot open a directory, and some file systems cannot
    fsync one; both are silently skipped.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
