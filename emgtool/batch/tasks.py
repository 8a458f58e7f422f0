"""What runs on a worker for one file.

Workers never touch the catalog: they hash, analyse into a per-file folder
written atomically, and return a small dict that the driver commits.

The folder is first written under ``OUT/.tmp/`` (same file system), a
``batch.json`` marker goes in last, and the finished folder is moved into
place with ``os.replace``; a killed worker leaves at most a stray temp folder,
never a half-written result.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import threading
import time
import uuid
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

from emgtool._fsutil import fsync_dir

__all__ = ["hash_file", "run_one", "DEFAULT_ANALYZE", "MARKER", "TMP_DIR", "read_marker"]

#: The per-file analysis: ``fn(path, out_dir, *, config, overwrite, **input_kwargs)``.
DEFAULT_ANALYZE = "emgtool.pipeline.analyze:analyze_to_dir"
#: Written last into each per-file folder; says which content and parameters it holds.
MARKER = "batch.json"
TMP_DIR = ".tmp"
_BLOCK = 1 << 20


def hash_file(path: str, stop: threading.Event | None = None) -> dict | None:
    """``{path, sha256, size_bytes, mtime_ns}`` of a file, or ``{path, error}``.

    With ``stop``: None as soon as it is set (checked between blocks).
    """
    try:
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(_BLOCK):
                if stop is not None and stop.is_set():
                    return None
                h.update(block)
        return {
            "path": path,
            "sha256": h.hexdigest(),
            "size_bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
        }
    except OSError as e:
        return {"path": path, "error": f"cannot read file: {e.strerror or e}"}


def _resolve(spec: str):
    mod, _, name = spec.partition(":")
    return getattr(importlib.import_module(mod), name)


def _reason(e: BaseException) -> str:
    from emgtool.errors import EmgtoolError

    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, EmgtoolError):
        return text or type(e).__name__
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _atomic_place(tmp: Path, target: Path) -> None:
    # os.replace cannot overwrite a non-empty folder: move the old one aside first.
    if target.exists():
        trash = tmp.parent / f"old-{uuid.uuid4().hex}"
        os.replace(target, trash)
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, target)


def read_marker(folder: str | Path) -> dict | None:
    """The ``batch.json`` of a per-file folder, or None if absent or unreadable."""
    try:
        return json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


#: BLAS/OpenMP thread variables; set to 1 in the local cluster's workers (engine.WORKER_ENV).
_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _one_thread() -> None:
    """One pipeline thread per file in a batch worker: parallelism comes from files.

    The local cluster's workers start with ``EMGTOOL_NUM_THREADS=1``; on an
    external cluster this sets it for the worker process unless its owner did.
    """
    os.environ.setdefault("EMGTOOL_NUM_THREADS", "1")


@contextmanager
def _blas_one_thread():
    """Limit BLAS/OpenMP to one thread around an analysis, unless the worker chose.

    Their thread counts are read when numpy loads, too late for a task; on a
    worker started without these variables (``dask worker --no-nanny``, or a
    cleared Dask configuration) threadpoolctl caps the loaded libraries instead.
    """
    if any(v in os.environ for v in _BLAS_VARS):
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it, leave BLAS as it is
        yield
        return
    with threadpool_limits(limits=1):
        yield


def run_one(job: dict) -> dict:
    """Analyse one file into ``job['out_root']/job['name']``; never raises for a bad file.

    Parameters
    ----------
    job : dict
        ``path``, ``out_root``, ``name`` (folder name), ``params_hash``,
        ``config`` (DetectorConfig as dict), ``input_kwargs``, ``analyze``
        (``"module:function"``), ``keep_identity``, ``subject``, ``session``;
        ``one_thread``: analyse on one thread (set in Dask workers, where the
        parallelism comes from files; not in the serial engine's own process).

    Returns
    -------
    dict
        ``status`` (``"ok"`` or ``"error"``), ``error``, ``sha256``, ``size_bytes``,
        ``mtime_ns``, ``out_dir`` (folder name), ``rows`` (cohort rows),
        ``recording`` (recording-level figures), ``seconds``, ``pid``.
    """
    from emgtool.batch.cohort import rows_from_summary
    from emgtool.config import DetectorConfig
    from emgtool.errors import EmgtoolWarning

    t0, c0 = time.perf_counter(), time.process_time()
    one_thread = bool(job.get("one_thread"))
    if one_thread:
        _one_thread()
    path = job["path"]
    out: dict = {"path": path, "status": "error", "error": None, "pid": os.getpid()}
    h = hash_file(path)
    if "error" in h:
        out.update(
            error=h["error"], seconds=time.perf_counter() - t0, cpu_s=time.process_time() - c0
        )
        return out
    out.update(sha256=h["sha256"], size_bytes=h["size_bytes"], mtime_ns=h["mtime_ns"])
    out_root = Path(job["out_root"])
    target = out_root / job["name"]
    tmp = out_root / TMP_DIR / f"{job['name']}.{uuid.uuid4().hex[:12]}"
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        config = DetectorConfig.from_dict(job.get("config") or {})
        fn = _resolve(job.get("analyze") or DEFAULT_ANALYZE)
        kwargs = dict(job.get("input_kwargs") or {})
        if job.get("keep_identity"):
            kwargs["keep_identity"] = True
        with (
            warnings.catch_warnings(record=True) as caught,
            _blas_one_thread() if one_thread else nullcontext(),
        ):
            warnings.simplefilter("always", EmgtoolWarning)
            fn(path, tmp, config=config, overwrite=True, **kwargs)
        try:
            summary = json.loads((tmp / "summary.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RuntimeError("the analysis wrote no summary.json") from None
        rows, recording = rows_from_summary(summary)
        # Visible warnings (unrecognised muscles, short rest, …) travel with the result.
        msgs = [str(w.message) for w in caught if issubclass(w.category, EmgtoolWarning)]
        msgs += [str(m) for m in summary.get("warnings") or [] if isinstance(m, str)]
        if msgs:
            recording["warnings"] = "; ".join(dict.fromkeys(msgs))
        marker = {
            "file_sha256": h["sha256"],
            "params_hash": job["params_hash"],
            "file": Path(path).name,
            "subject": job.get("subject", ""),
            "session": job.get("session", ""),
            "rows": rows,
            "recording": recording,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1, default=_plain), encoding="utf-8")
        _fsync_tree(tmp)
        _atomic_place(tmp, target)
        fsync_dir(out_root)  # the rename itself survives a power cut
        out.update(status="ok", out_dir=job["name"], rows=rows, recording=recording)
    except Exception as e:  # a bad file is a result, not a crash of the batch
        reason = _reason(e)
        # ReadError messages start with the path, which failures.tsv already lists
        out["error"] = reason[len(path) + 2 :] if reason.startswith(path + ": ") else reason
        shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0  # the whole worker process, Dask's threads too
    return json.loads(json.dumps(out, default=_plain))  # plain types only back to the driver


def _plain(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)
