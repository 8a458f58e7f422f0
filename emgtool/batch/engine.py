"""The batch driver: plan from the catalog, run on Dask (or serially), commit, summarise.

One code path for every cluster: a :class:`distributed.LocalCluster` of
single-threaded worker processes on 127.0.0.1 with the dashboard off by
default, or an existing scheduler given by address or scheduler file.

Failure handling (see docs/batch.md):

- a file whose analysis raises is an ordinary result (``status='error'``);
  it is retried once on its own, then recorded with its reason;
- a file whose worker dies (``KilledWorker``, or any other loss of the task)
  is re-submitted once, alone, so a crashing file is told apart from the
  innocent files that shared its worker; if it kills its worker again it is
  recorded as ``status='crashed'``;
- only the driver writes the catalog, one durable transaction per file, so a
  rerun after any kill redoes only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from emgtool._version import __version__
from emgtool.batch.catalog import Catalog
from emgtool.batch.inputs import Item, discover, folder_name
from emgtool.batch.tasks import DEFAULT_ANALYZE, TMP_DIR, hash_file, read_marker, run_one
from emgtool.config import DetectorConfig
from emgtool.errors import EmgtoolError

__all__ = ["run_batch", "BatchResult", "params_hash"]

log = logging.getLogger("emgtool.batch")

CRASH_REASON = "the worker process died while analysing this file (also when run alone)"


@dataclass
class BatchResult:
    """What a batch did.

    ``done``: results committed by this run; ``skipped``: already in the
    catalog (or duplicates by content); ``failed``: files without a result
    at the end (errors and crashes, including earlier errors not retried).
    """

    done: int = 0
    skipped: int = 0
    failed: int = 0
    out_dir: Path | None = None
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    #: Wall seconds per phase, adding up to ``seconds``: ``start`` (finding the inputs,
    #: cluster start-up, worker check), ``hash``, ``plan``, ``run`` (the parallel
    #: analysis), ``retry``, ``outputs`` (cohort tables, HTML, failures list) and
    #: ``stop`` (what is left of the cluster shutdown, which runs alongside the outputs).
    timings: dict[str, float] = field(default_factory=dict)
    #: One ``{seconds, cpu_s, pid}`` per file analysed by this run (wall and CPU
    #: time inside the worker, and which worker process ran it).
    tasks: list[dict] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 when every file has a result, 1 when any failed."""
        return 1 if self.failed else 0

    def line(self) -> str:
        return f"done {self.done}, skipped {self.skipped}, failed {self.failed}"


def params_hash(
    config: DetectorConfig, input_kwargs: dict, analyze: str, keep_identity: bool
) -> str:
    """Hash of everything besides the file's content that changes a result.

    The detector configuration hash includes the algorithm version, so a new
    detector reprocesses everything; reader options (sites, montage, …) and the
    analysis function are part of it too.
    """
    doc = json.dumps(
        {
            "config": config.hash(),
            "inputs": input_kwargs,
            "analyze": analyze,
            "keep_identity": bool(keep_identity),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


# --- executors ------------------------------------------------------------


class _SerialPool:
    """In-process executor (``--engine serial``): for debugging and tiny jobs."""

    client = None

    def map_unordered(self, fn: Callable, args: list) -> Iterator[tuple[int, object]]:
        for i, a in enumerate(args):
            try:
                yield i, fn(a)
            except Exception as e:  # noqa: BLE001 - reported per file like a lost task
                yield i, e

    def run_alone(self, fn: Callable, arg) -> object:
        try:
            return fn(arg)
        except Exception as e:  # noqa: BLE001
            return e


class _DaskPool:
    def __init__(self, client):
        self.client = client
        self._n = 0

    def _key(self, prefix: str) -> str:
        self._n += 1
        return f"emgtool-{prefix}-{os.getpid()}-{time.time_ns()}-{self._n}"

    def map_unordered(self, fn: Callable, args: list) -> Iterator[tuple[int, object]]:
        from distributed import as_completed

        if not args:
            return
        futures = [self.client.submit(fn, a, key=self._key(fn.__name__), pure=False) for a in args]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status == "finished":
                try:
                    out = fut.result()
                except Exception as e:  # noqa: BLE001 - result lost with its worker: retried alone
                    out = e
            else:
                out = fut.exception() or RuntimeError(f"task {fut.status}")
            fut.release()
            yield i, out

    def run_alone(self, fn: Callable, arg) -> object:
        fut = self.client.submit(fn, arg, key=self._key("alone"), pure=False)
        try:
            return fut.result()
        except Exception as e:  # noqa: BLE001 - KilledWorker and friends are results here
            return e
        finally:
            fut.release()


#: Modules the default analysis imports on first use (the report's figures, the
#: clustering of waveform shapes).  A worker imports them at start with the rest:
#: with the collector off and then frozen, a worker's start-up and first 4 files
#: took 9.37 s of CPU instead of 9.90 s.  Only a head start: one that fails to
#: import here is left to the analysis itself to report.
DEFAULT_ANALYZE_LATER = ("emgtool.report.html", "sklearn.decomposition", "sklearn.mixture")


def _import_quietly(names) -> None:
    """Import ``names`` ahead of use; a failure is left to the real import to report."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - only a head start
            pass


def _worker_ready(analyze: str, freeze: bool = False) -> str:
    """On each worker at start: its emgtool version, after importing the analysis.

    Importing the analysis here (in parallel on all workers, before any file is
    submitted) makes a worker that cannot run it fail the batch at once with a
    clear message, instead of every file being recorded as an error; and the
    workers' start-up, imports included, is over before the files are timed.
    ``freeze`` (the local cluster's own, fresh workers): move everything loaded
    so far out of the garbage collector's sight (:func:`gc.freeze`).
    """
    import gc

    # The imports (SciPy, pandas, numba, ...) allocate hundreds of thousands of
    # long-lived objects; the collector's passes over them are wasted work
    # (~10 % of the import time, in every worker at every start), and so are the
    # later full collections that walk them again during the files (the first two
    # files of a worker took 0.15-0.2 s less CPU each once they were frozen).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import emgtool
        from emgtool.batch import cohort, tasks  # noqa: F401 - what run_one needs

        tasks._resolve(analyze)
        if analyze == DEFAULT_ANALYZE:
            _import_quietly(DEFAULT_ANALYZE_LATER)
        if freeze:
            gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    return emgtool.__version__


#: Environment of the local cluster's worker processes: one thread per analysis.
#: The parallelism of a batch comes from files (one per worker); threads inside a
#: worker (the pipeline's filter threads, BLAS/OpenMP in the clustering) would only
#: compete with the other workers for the same cores.  The BLAS/OpenMP variables are
#: read when numpy loads, so they must be in place before the process is spawned.
WORKER_ENV = {
    "EMGTOOL_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


#: Dask configuration of the local cluster that trims its own background CPU.
#: With the dashboard off nobody reads the statistical profiler's samples (a thread
#: walking each worker's stack every 10 ms), the 20-ms event-loop latency ticks or
#: the 0.5-s system monitor.  The memory limits are checked every second instead of
#: every 0.1 s (a worker past 95 % of its share is still restarted, up to a second
#: later; the operating system's out-of-memory killer remains a handled crash).
#: Idle, the scheduler and nannies (in the driver) and the workers used
#: 4.8 % + 2 x 3.6 % of a core, and 0.7 % + 2 x 0.4 % with these: on a machine
#: where the workers use every core, that time came out of the files.
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextmanager
def _spawn_env(env: dict[str, str]):
    """Set ``env`` in this process while worker processes are spawned, then restore it.

    Dask's nannies run in the driver and pass the driver's environment to the worker
    processes they spawn (and respawn after a crash), so the variables stay set for
    the life of the cluster; the driver's own environment is restored afterwards.
    """
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _dask_pool(
    *,
    workers: int | None,
    scheduler: str | None,
    scheduler_file: str | None,
    scratch: Path,
    debug: bool,
    analyze: str,
):
    import dask
    from distributed import Client, LocalCluster

    quiet = logging.DEBUG if debug else logging.CRITICAL
    # Dask logs every worker death and retry; the batch reports them per file instead.
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(quiet)
    cluster = None
    stack = ExitStack()  # the driver's environment, restored once the cluster is gone
    try:
        if scheduler or scheduler_file:
            try:
                client = (
                    Client(address=scheduler, timeout="20s")
                    if scheduler
                    else Client(scheduler_file=scheduler_file, timeout="20s")
                )
            except (OSError, TimeoutError, ValueError) as e:
                raise EmgtoolError(
                    f"cannot connect to the Dask scheduler {scheduler or scheduler_file}: {e}"
                ) from None
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                client.close()
                raise EmgtoolError(
                    f"no Dask worker joined the scheduler "
                    f"{scheduler or scheduler_file} within 60 s"
                ) from None
        else:
            n = max(1, workers) if workers else (os.cpu_count() or 1)
            # allowed-failures=0: a task whose worker dies comes back at once as
            # KilledWorker, and the driver re-runs it alone (module docstring).  That is
            # more precise than Dask's suspicion counter, which also blames innocent
            # bystanders, and a crashing file costs two worker restarts instead of four.
            # Worker processes inherit the driver's environment when spawned (also
            # when a nanny restarts a killed worker), before they import numpy.
            stack.enter_context(_spawn_env(WORKER_ENV))
            with dask.config.set(
                {
                    "distributed.scheduler.allowed-failures": 0,
                    "distributed.worker.daemon": True,
                    # One file per worker at a time (Dask's default 1.1 x threads sends a
                    # single-threaded worker 2): the files left at the end go to whichever
                    # worker is free first, instead of waiting behind another worker's
                    # file while this one idles; a killed worker takes 1 file down, not 2.
                    "distributed.scheduler.worker-saturation": 1.0,
                    **QUIET_CLUSTER,
                }
            ):
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=quiet,
                    local_directory=str(scratch),
                    # no dashboard; the scheduler's small HTTP endpoint (health,
                    # metrics) on a free loopback port rather than 8787
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    env=WORKER_ENV,  # wins over a "distributed.nanny.environ" config
                )
                client = Client(cluster)
            from emgtool.batch._plugins import QuickExit

            # Worker processes exit in ~0.2 s instead of 0.5-1 s (see _plugins.py): the
            # batch waits for them at its end.
            client.register_plugin(QuickExit())
        try:
            versions = client.run(_worker_ready, analyze, cluster is not None)
        except Exception as e:  # noqa: BLE001
            client.close()
            raise EmgtoolError(
                f"Dask workers cannot import emgtool and the analysis {analyze}: "
                f"{type(e).__name__}: {e}"
            ) from None
        other = {v for v in versions.values() if v != __version__}
        if other:
            client.close()
            raise EmgtoolError(
                f"Dask workers run emgtool {', '.join(sorted(other))}, "
                f"this driver {__version__}; use the same version everywhere"
            )
        try:
            yield _DaskPool(client)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        stack.close()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# --- driver ---------------------------------------------------------------


def _progress(total: int, enabled: bool, desc: str = "emgtool batch"):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="file",
        disable=not enabled or total == 0,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )


def run_batch(
    inputs: list[str | Path],
    out_dir: str | Path,
    *,
    config: DetectorConfig | None = None,
    input_kwargs: dict | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    engine: str = "dask",
    retry_errors: bool = False,
    analyze: str = DEFAULT_ANALYZE,
    keep_identity: bool = False,
    progress: bool = False,
    debug: bool = False,
    on_result: Callable | None = None,
) -> BatchResult:
    """Analyse every recording of ``inputs`` into ``out_dir``; resumable.

    Parameters
    ----------
    inputs : list of str or Path
        Files, folders, globs or BIDS roots (see :func:`emgtool.batch.inputs.discover`).
    out_dir : str or Path
        Everything is written here: catalog.sqlite, one folder per recording,
        cohort.csv/.parquet/.html and failures.tsv.  Nothing is written elsewhere.
    config : DetectorConfig, optional
    input_kwargs : dict, optional
        Reader options for every file (``sites``, ``montage``, ``fs``, ``unit``);
        a BIDS channels.tsv montage takes precedence for its file.
    workers : int, optional
        Worker processes of the local cluster (default: the number of CPUs).
    scheduler, scheduler_file : str, optional
        Use an existing Dask cluster instead (trusted networks only).
    engine : {"dask", "serial"}
    retry_errors : bool
        Re-run files recorded as ``error`` by an earlier run.
    analyze : str
        ``"module:function"`` with the signature of
        :func:`emgtool.pipeline.analyze.analyze_to_dir`.
    on_result : callable, optional
        ``on_result(pool, n_finished)`` after each file (tests use it to kill workers).

    Examples
    --------
    >>> res = run_batch(["data/"], "results/", workers=2)  # doctest: +SKIP
    >>> res.line()  # doctest: +SKIP
    'done 20, skipped 0, failed 0'
    """

    t0 = time.perf_counter()
    if engine not in ("dask", "serial"):
        raise EmgtoolError(f"--engine must be 'dask' or 'serial', got {engine!r}")
    if engine == "serial" and (scheduler or scheduler_file):
        raise EmgtoolError("--scheduler/--scheduler-file need --engine dask")
    config = config or DetectorConfig()
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise EmgtoolError(f"{out}: --out must be a folder")
    items = discover(list(inputs), exclude=out)
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        return _run_locked(
            items,
            out,
            t0,
            config=config,
            input_kwargs=dict(input_kwargs or {}),
            workers=workers,
            scheduler=scheduler,
            scheduler_file=scheduler_file,
            engine=engine,
            retry_errors=retry_errors,
            analyze=analyze,
            keep_identity=keep_identity,
            progress=progress,
            debug=debug,
            on_result=on_result,
        )
    finally:
        lock.close()


def _run_locked(
    items: list[Item],
    out: Path,
    t0: float,
    *,
    config: DetectorConfig,
    input_kwargs: dict,
    workers: int | None,
    scheduler: str | None,
    scheduler_file: str | None,
    engine: str,
    retry_errors: bool,
    analyze: str,
    keep_identity: bool,
    progress: bool,
    debug: bool,
    on_result: Callable | None,
) -> BatchResult:
    from emgtool.batch import cohort

    _clean_tmp(out / TMP_DIR)
    result = BatchResult(out_dir=out)
    global_kw = input_kwargs
    # The driver mostly waits while workers compute: load the Parquet library for
    # the cohort outputs meanwhile (its figures are SVG text, without matplotlib).
    threading.Thread(
        target=_import_quietly, args=(("pyarrow.parquet",),), daemon=True, name="emgtool-preload"
    ).start()
    clock = _Clock(result.timings, t0)  # 'start' includes finding the inputs

    with Catalog(out / "catalog.sqlite") as cat, ExitStack() as cluster:
        # 1. content hashes: fast skip by (path, size, mtime_ns), else hash
        shas: dict[Path, str] = {}
        sizes: dict[Path, int] = {}
        to_hash: list[Item] = []
        for it in items:
            try:
                st = it.path.stat()
            except OSError as e:
                result.failures.append(_failure(it.path, "", "error", 0, f"cannot read file: {e}"))
                continue
            sizes[it.path] = st.st_size
            sha = cat.known_sha(str(it.path), st.st_size, st.st_mtime_ns)
            if sha:
                shas[it.path] = sha
            else:
                to_hash.append(it)
        # The driver hashes while the cluster starts (seconds in which it only waits);
        # what is left when the workers are ready is hashed on the workers.
        hasher = _Hasher([str(it.path) for it in to_hash]) if engine == "dask" else None
        try:
            pool = cluster.enter_context(
                _pool(
                    engine,
                    workers=workers,
                    scheduler=scheduler,
                    scheduler_file=scheduler_file,
                    scratch=out / TMP_DIR / "dask",
                    debug=debug,
                    analyze=analyze,
                )
            )
        finally:
            hashed = hasher.stop() if hasher else {}
        clock.lap("start")
        fresh = []

        def note_hash(it: Item, h) -> None:
            if isinstance(h, Exception) or "error" in h:
                reason = str(h) if isinstance(h, Exception) else h["error"]
                result.failures.append(_failure(it.path, "", "error", 1, reason))
                return
            shas[it.path] = h["sha256"]
            fresh.append((str(it.path), h["size_bytes"], h["mtime_ns"], h["sha256"]))

        left = []
        for it in to_hash:
            if str(it.path) in hashed:
                note_hash(it, hashed[str(it.path)])
            else:
                left.append(it)
        hbar = _progress(len(left), progress, desc="hashing")
        for i, h in pool.map_unordered(hash_file, [str(it.path) for it in left]):
            hbar.update(1)
            note_hash(left[i], h)
        hbar.close()
        cat.remember_files(fresh)
        clock.lap("hash")

        # 2. plan: what is done, what to adopt from disk, what to run
        jobs: dict[tuple[str, str], dict] = {}
        isolate: list[dict] = []  # crashed before: run alone
        wanted: list[tuple[str, str]] = []
        current: dict[tuple[str, str], Item] = {}  # key → the input naming it in this run
        for it in items:
            if it.path not in shas:
                continue
            sha = shas[it.path]
            kw = {**global_kw, **it.input_kwargs}
            if "montage" in it.input_kwargs:
                kw.pop("sites", None)  # the dataset's own channel table wins
            ph = params_hash(config, kw, analyze, keep_identity)
            key = (sha, ph)
            if key in current:
                result.skipped += 1  # same content under another name
                continue
            wanted.append(key)
            current[key] = it
            job = {
                "path": str(it.path),
                "sha256": sha,
                "out_root": str(out),
                "name": folder_name(it, sha),
                "params_hash": ph,
                "config": config.to_dict(),
                "input_kwargs": kw,
                "analyze": analyze,
                "keep_identity": keep_identity,
                "subject": it.subject,
                "session": it.session,
                "one_thread": engine == "dask",
            }
            row = cat.get(sha, ph)
            if row is not None and row["status"] == "ok" and _marker_ok(out, row["out_dir"], key):
                result.skipped += 1
                continue
            if row is not None and row["status"] == "error" and not retry_errors:
                continue  # still a failure; listed below
            if row is not None and row["status"] == "crashed":
                isolate.append(job)
                continue
            marker = read_marker(out / job["name"])
            if marker and (marker.get("file_sha256"), marker.get("params_hash")) == key:
                # finished by a worker, but the driver died before committing it
                _commit_ok(
                    cat,
                    job,
                    {
                        "sha256": sha,
                        "rows": marker.get("rows"),
                        "recording": marker.get("recording"),
                        "out_dir": job["name"],
                    },
                    attempts=1,
                )
                result.done += 1
                continue
            jobs[key] = job

        clock.lap("plan")

        # 3. run, the largest files first: the last files to finish then are short
        # ones, and the workers run out of work at nearly the same time.
        bar = _progress(len(jobs) + len(isolate), progress)
        retry: list[tuple[dict, object]] = []
        finished = 0
        job_list = sorted(jobs.values(), key=lambda j: -sizes.get(Path(j["path"]), 0))
        for i, res in pool.map_unordered(run_one, job_list):
            job = job_list[i]
            _note_task(result, res)
            if isinstance(res, dict) and res.get("status") == "ok":
                _commit_ok(cat, job, res, attempts=1)
                result.done += 1
                bar.update(1)
            else:
                retry.append((job, res))
            finished += 1
            if on_result is not None:
                on_result(pool, finished)
        clock.lap("run")
        # 4. failures and lost tasks again, one at a time
        for job in isolate:
            retry.append((job, None))
        for job, first in retry:
            res = pool.run_alone(run_one, job)
            _note_task(result, res)
            if isinstance(res, dict) and res.get("status") == "ok":
                _commit_ok(cat, job, res, attempts=2)
                result.done += 1
            elif isinstance(res, dict):
                _commit_fail(cat, job, res, "error", res.get("error") or "unknown error")
            else:
                lost = res if first is None or isinstance(first, dict) else first
                reason = CRASH_REASON if _is_killed(res) else f"{type(lost).__name__}: {lost}"
                _commit_fail(cat, job, {}, "crashed", reason)
            bar.update(1)
        bar.close()
        clock.lap("retry")

        # 5. cohort, failures (names as given in this run: a renamed file shows its new name)
        records = []
        for row in cat.results(wanted):
            it = current[(row["file_sha256"], row["params_hash"])]
            if row["status"] == "ok":
                data = json.loads(row["result_json"] or "{}")
                records.append(
                    {
                        "subject": it.subject,
                        "session": it.session,
                        "file": it.path.name,
                        "file_sha256": row["file_sha256"],
                        "out_dir": row["out_dir"],
                        "rows": data.get("rows"),
                        "recording": data.get("recording"),
                    }
                )
            else:
                result.failures.append(
                    _failure(
                        it.path, row["file_sha256"], row["status"], row["attempts"], row["error"]
                    )
                )
        result.failed = len(result.failures)
        # Rebuilding the tables and figures of a large cohort takes a while: skip it
        # when nothing changed since the last run and the files are there.
        digest = hashlib.sha256(
            json.dumps([records, result.failures], sort_keys=True, default=str).encode()
        ).hexdigest()
        outputs = ("cohort.csv", "cohort.parquet", "cohort.html", "failures.tsv")
        fresh_outputs = cat.get_meta("cohort_digest") != digest or not all(
            (out / n).exists() for n in outputs
        )
        clock.lap("plan")  # reading the catalog back counts with the planning
        # The workers are not needed for the cohort outputs: the cluster shuts down
        # meanwhile (mostly waiting for worker processes to exit).
        stopper = _InBackground(cluster.pop_all().close)
    try:
        if fresh_outputs:
            df = cohort.cohort_table(records)
            cohort.write_cohort(df, out)
            cohort.write_failures(result.failures, out)
            cohort.write_html(df, result.failures, out, counts={"recordings": len(records)})
            with Catalog(out / "catalog.sqlite") as cat:
                cat.set_meta("cohort_digest", digest)
        clock.lap("outputs")
    finally:
        stopper.join()
    import shutil

    shutil.rmtree(out / TMP_DIR / "dask", ignore_errors=True)  # workers are gone
    clock.lap("stop")
    result.seconds = time.perf_counter() - t0
    return result


class _Hasher:
    """Hash files in a driver thread until :meth:`stop` (used while the cluster starts).

    hashlib and file reads release the GIL, so the thread does not hold up the
    scheduler and nannies that run in the driver's event loop meanwhile.
    """

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.results: dict[str, dict] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="emgtool-hash")
        self.thread.start()

    def _run(self) -> None:
        for p in self.paths:
            h = hash_file(p, stop=self._stop)
            if h is None:  # stopped halfway through this file
                return
            self.results[p] = h

    def stop(self) -> dict[str, dict]:
        """Stop (within one block of reading) and return ``{path: hash_file(path)}`` so far."""
        self._stop.set()
        self.thread.join()
        return self.results


class _InBackground:
    """Run ``fn()`` in a thread; :meth:`join` waits and re-raises its exception."""

    def __init__(self, fn: Callable[[], object]):
        self.error: BaseException | None = None

        def target() -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - handed to join()
                self.error = e

        self.thread = threading.Thread(target=target, name="emgtool-batch-stop")
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Clock:
    """Adds the wall time since the previous lap to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], t0: float):
        self.timings = timings
        self.t = t0

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now


def _note_task(result: BatchResult, res: object) -> None:
    if isinstance(res, dict) and res.get("seconds") is not None:
        result.tasks.append(
            {"seconds": res["seconds"], "cpu_s": res.get("cpu_s"), "pid": res.get("pid")}
        )


def _lock(out: Path):
    """Exclusive lock on the results folder: one driver per catalog.

    The operating system drops the lock when the driver dies, however it dies.
    """
    f = open(out / ".lock", "a+")  # noqa: SIM115 - held for the whole batch
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise EmgtoolError(f"{out}: another emgtool batch is writing to this folder") from None
    return f


def _clean_tmp(tmp: Path) -> None:
    # Leftovers of workers killed mid-write; never a finished result.
    import shutil

    tmp.mkdir(exist_ok=True)
    for p in tmp.iterdir():
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextmanager
def _pool(engine: str, **kw):
    if engine == "serial":
        yield _SerialPool()
    else:
        kw["scratch"].mkdir(parents=True, exist_ok=True)
        with _dask_pool(**kw) as p:
            yield p


def _is_killed(exc: object) -> bool:
    return type(exc).__name__ in (
        "KilledWorker",
        "CancelledError",
        "FutureCancelledError",
    ) or isinstance(exc, (OSError, EOFError))


def _marker_ok(out: Path, name: str | None, key: tuple[str, str]) -> bool:
    if not name:
        return False
    m = read_marker(out / name)
    return bool(m) and (m.get("file_sha256"), m.get("params_hash")) == key


def _failure(path, sha: str, status: str, attempts: int, reason: str | None) -> dict:
    return {
        "path": str(path),
        "file_sha256": sha,
        "status": status,
        "attempts": attempts,
        "reason": reason or "",
    }


def _commit_ok(cat: Catalog, job: dict, res: dict, *, attempts: int) -> None:
    cat.commit_result(
        res["sha256"],
        job["params_hash"],
        path=job["path"],
        status="ok",
        out_dir=res["out_dir"],
        result={"rows": res.get("rows") or [], "recording": res.get("recording") or {}},
        attempts=attempts,
        seconds=res.get("seconds"),
        subject=job["subject"],
        session=job["session"],
        emgtool_version=__version__,
        size_bytes=res.get("size_bytes"),
        mtime_ns=res.get("mtime_ns"),
    )


def _commit_fail(cat: Catalog, job: dict, res: dict, status: str, reason: str) -> None:
    cat.commit_result(
        res.get("sha256") or job["sha256"],
        job["params_hash"],
        path=job["path"],
        status=status,
        error=reason,
        attempts=2,
        seconds=res.get("seconds"),
        subject=job["subject"],
        session=job["session"],
        emgtool_version=__version__,
    )
