"""The batch catalog: one SQLite file, written only by the driver.

Tables
------
``results``
    One row per ``(file_sha256, params_hash)``: where the result is, its
    status (``ok``, ``error``, ``crashed``), the failure reason and the cohort
    rows (JSON).  One ``BEGIN IMMEDIATE … COMMIT`` per finished file, in WAL
    mode with ``synchronous=FULL``, so a killed driver loses at most the files
    in flight and never a committed one.
``files``
    ``path → (size_bytes, mtime_ns, file_sha256)``: a file seen before with the
    same size and modification time is not hashed again (fast skip).

Keep the catalog on the driver's local disk: SQLite WAL does not work over a
network file system.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

__all__ = ["Catalog", "STATUSES"]

STATUSES = ("ok", "error", "crashed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    file_sha256     TEXT NOT NULL,
    params_hash     TEXT NOT NULL,
    path            TEXT NOT NULL,
    subject         TEXT,
    session         TEXT,
    status          TEXT NOT NULL CHECK (status IN ('ok', 'error', 'crashed')),
    out_dir         TEXT,
    result_json     TEXT,
    error           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 1,
    seconds         REAL,
    finished_at     TEXT NOT NULL,
    emgtool_version TEXT,
    size_bytes      INTEGER,
    mtime_ns        INTEGER,
    PRIMARY KEY (file_sha256, params_hash)
);
CREATE TABLE IF NOT EXISTS files (
    path        TEXT PRIMARY KEY,
    size_bytes  INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    file_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class Catalog:
    """Open (or create) ``catalog.sqlite``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cat = Catalog(pathlib.Path(tempfile.mkdtemp()) / "catalog.sqlite")
    >>> cat.commit_result("ab" * 32, "cfg", path="x.edf", status="ok", out_dir="x")
    >>> cat.get("ab" * 32, "cfg")["status"]
    'ok'
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- fast skip -------------------------------------------------------
    def known_sha(self, path: str, size_bytes: int, mtime_ns: int) -> str | None:
        """The content hash of ``path`` if it was hashed before with this size and mtime."""
        row = self.db.execute(
            "SELECT file_sha256 FROM files WHERE path=? AND size_bytes=? AND mtime_ns=?",
            (path, size_bytes, mtime_ns),
        ).fetchone()
        return row[0] if row else None

    def remember_files(self, rows: list[tuple[str, int, int, str]]) -> None:
        """Store ``(path, size_bytes, mtime_ns, sha256)`` rows in one transaction."""
        if not rows:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # --- results ---------------------------------------------------------
    def get(self, sha256: str, params_hash: str) -> dict | None:
        row = self.db.execute(
            "SELECT * FROM results WHERE file_sha256=? AND params_hash=?", (sha256, params_hash)
        ).fetchone()
        return dict(row) if row else None

    def commit_result(
        self,
        sha256: str,
        params_hash: str,
        *,
        path: str,
        status: str,
        out_dir: str | None = None,
        result: dict | None = None,
        error: str | None = None,
        attempts: int = 1,
        seconds: float | None = None,
        subject: str = "",
        session: str = "",
        emgtool_version: str | None = None,
        size_bytes: int | None = None,
        mtime_ns: int | None = None,
    ) -> None:
        """Insert or replace one result in its own durable transaction."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO results (file_sha256, params_hash, path, subject, session,"
                " status, out_dir, result_json, error, attempts, seconds, finished_at,"
                " emgtool_version, size_bytes, mtime_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sha256,
                    params_hash,
                    path,
                    subject,
                    session,
                    status,
                    out_dir,
                    None if result is None else json.dumps(result, default=_json_default),
                    error,
                    attempts,
                    seconds,
                    finished,
                    emgtool_version,
                    size_bytes,
                    mtime_ns,
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def results(self, keys: list[tuple[str, str]] | None = None) -> list[dict]:
        """All result rows, or those of ``keys`` (sha256, params_hash), in key order."""
        if keys is None:
            return [dict(r) for r in self.db.execute("SELECT * FROM results ORDER BY path")]
        out = []
        for sha, ph in keys:
            r = self.get(sha, ph)
            if r is not None:
                out.append(r)
        return out

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return self.db.execute(
            "SELECT COUNT(*) FROM results WHERE status=?", (status,)
        ).fetchone()[0]


def _json_default(o):
    # numpy scalars in cohort rows.
    if hasattr(o, "item"):
        return o.item()
    return str(o)
