"""Offline analysis: run the chunked pipeline over a whole source.

Examples
--------
>>> from emgtool.simulate import simulate
>>> from emgtool.pipeline.analyze import analyze
>>> rec, truth = simulate("bfs-focal", duration_s=20, seed=3)
>>> an = analyze(rec)
>>> set(an.events["trial_type"]) <= {"artifact", "cramp", "fasciculation", "voluntary"}
True
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from emgtool._version import __version__
from emgtool.analysis import Analysis
from emgtool.config import DetectorConfig
from emgtool.errors import EmgtoolError
from emgtool.events import write_events_tsv
from emgtool.io import Source, as_source
from emgtool.pipeline import _kernels
from emgtool.pipeline.core import PROBE_S, flush, init_state, step, step_ahead, step_detect
from emgtool.pipeline.finalize import finalize

__all__ = [
    "analyze",
    "analyze_source",
    "quality_warnings",
    "analyze_to_dir",
    "write_outputs",
    "OFFLINE_CHUNK_S",
]

#: Offline chunk length.  Long chunks amortise per-call overhead (the detection
#: side has per-chunk Python work; 20 s was 13 % faster than 10 s on 16 channels
#: and 9 % on 64); results do not depend on it.  Two or three chunks are in
#: memory at once (read ahead, filtered ahead): 64 ch x 20 s is 10 MB each.
OFFLINE_CHUNK_S = 20.0


ID_SAMPLES = 32  # blocks of 64 KiB hashed across a file for its id


def file_id(path: str | Path) -> str:
    """Pseudonymous id of a file: a hash of its content, never a name.

    Large files are fingerprinted by their size and 32 blocks of 64 KiB spread
    evenly over them (hashing 5 GB whole would take seconds); small files whole.
    The live recorder uses the same id, so a recording analysed live and offline
    carries one id.
    """
    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        if size <= ID_SAMPLES * (1 << 16) * 4:
            h.update(fh.read())
        else:
            for i in range(ID_SAMPLES):
                fh.seek(i * (size - (1 << 16)) // (ID_SAMPLES - 1))
                h.update(fh.read(1 << 16))
    return "rec-" + h.hexdigest()[:12]


def recording_id(src: Source) -> str:
    """Pseudonymous id of a source: :func:`file_id` of its file, else a hash of its samples."""
    path = src.meta.get("path")
    if path and os.path.exists(path):
        return file_id(path)
    h = hashlib.sha256()
    h.update(repr((src.fs, src.n_samples, [c.label for c in src.channels])).encode())
    h.update(src.read(0, min(src.n_samples, int(src.fs))).data.tobytes())
    return "rec-" + h.hexdigest()[:12]


def quality_warnings(an: Analysis) -> list[str]:
    """Say which channels were flat, clipped or changed noise level (flags alone are easy to miss).

    A flat channel is also "clipped" (every sample equals the extreme), so it is
    named once, as flat.  Flat channels a warning already names are skipped.
    """
    flat, clipped, changed = [], [], []
    for label, q in (an.channel_quality or {}).items():
        flags = set((q or {}).get("flags") or [])
        if "flat" in flags:
            flat.append(label)
        elif "clipped" in flags:
            clipped.append(f"{label} ({float(q.get('clipped_s') or 0.0):.1f} s)")
        for ch in (q or {}).get("noise_changes") or []:
            changed.append(f"{label} at {ch['onset_s']:.1f} s ({ch['ratio']:.1f}x)")
    said = " ".join(an.warnings)
    flat = [f for f in flat if f not in said]  # e.g. already named as mains-dominated
    out = []
    if flat:
        out.append(
            "flat channel(s) (no signal: electrode off or amplifier saturated), "
            "excluded from detection: " + ", ".join(flat)
        )
    if clipped:
        out.append(
            "clipped channel(s) (samples at the amplifier's limit), clipped spans excluded: "
            + ", ".join(clipped)
        )
    if changed:
        more = f", and {len(changed) - 6} more (quality.channels)" if len(changed) > 6 else ""
        out.append(
            "noise level changed and stayed (electrode contact or interference?); "
            "thresholds follow it after the noise window, which is not analysed: "
            + ", ".join(changed[:6])
            + more
        )
    return out


def _ahead(items, name: str):
    """Yield from ``items`` while the next item is produced on another thread.

    Reading and decoding (numpy), or filtering (compiled kernels), release the
    GIL, so producing item k + 1 overlaps the caller's work on item k; at most
    two items are in memory.  Errors surface where the item would have been
    produced.  With one thread allowed (``EMGTOOL_NUM_THREADS=1``) it runs in line.
    """
    if _kernels.n_threads() < 2:
        yield from items
        return
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    items = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        pending = pool.submit(next, items, end)
        while True:
            item = pending.result()
            if item is end:
                return
            pending = pool.submit(next, items, end)
            yield item


def _overlapped(chunks, state):
    """Feed ``chunks`` through the pipeline, yielding each once it is detected.

    Once the pipeline has started, chunk k + 1 is filtered on another thread
    (:func:`_ahead`) while detection works on chunk k; the events are those of
    :func:`step` one chunk at a time.
    """
    it = iter(chunks)
    for chunk in it:
        step(chunk, state)
        yield chunk
        if state.started:
            break
    filtered = ((chunk, step_ahead(chunk, state)) for chunk in it)
    for chunk, sig in _ahead(filtered, "emgtool-filter"):
        step_detect(sig, state)
        yield chunk


def analyze_source(
    src: Source,
    config: DetectorConfig | None = None,
    *,
    chunk_s: float = OFFLINE_CHUNK_S,
    progress: bool = False,
    keep_identity: bool = False,
) -> Analysis:
    """Analyse a :class:`~emgtool.io.Source` chunk by chunk (bounded memory)."""
    cfg = config or DetectorConfig()
    if src.n_samples == 0:
        raise EmgtoolError(f"{src.meta.get('file', 'recording')}: no samples to analyse")
    state = init_state(src.fs, src.channels, cfg)
    chunk_n = max(1, int(round(chunk_s * src.fs)))
    bar = None
    if progress and src.n_samples > 60 * src.fs:
        from tqdm import tqdm

        bar = tqdm(total=round(src.duration_s), unit="s", desc="analysing", leave=False)
    for chunk in _overlapped(_ahead(src.chunks(chunk_n), "emgtool-read"), state):
        if bar is not None:
            bar.update(round(chunk.duration_s))
    _, state = flush(state)
    if bar is not None:
        bar.close()
    source = {
        "file": src.meta.get("file"),
        "format": src.meta.get("format"),
        "reader_warnings": list(src.meta.get("warnings", [])),
        "start_time": src.start_time.isoformat() if (keep_identity and src.start_time) else None,
    }
    an = finalize(state, recording_id=recording_id(src), source=source)
    # Reader warnings stay in source["reader_warnings"] (summary.json lists them once).
    an.warnings += [w for w in quality_warnings(an) if w not in an.warnings]
    if src.n_samples < PROBE_S * src.fs:
        # Nothing is wrong with the file, but zero counts would read as "no fasciculations".
        # (No file name here: warnings go into summary.json.)
        an.warnings.append(
            f"the recording holds only {src.n_samples} samples "
            f"({src.n_samples / src.fs:.3g} s); at least {PROBE_S:g} s are needed to estimate "
            "mains and the noise floor, so these counts are not meaningful"
        )
    if keep_identity:
        an.identity = dict(src.meta.get("identity", {}))
    return an


def analyze(
    recording,
    config: DetectorConfig | None = None,
    *,
    progress: bool = False,
    keep_identity: bool = False,
    **input_kwargs,
) -> Analysis:
    """Detect fasciculations and cramps.

    Parameters
    ----------
    recording : path, Recording, mne.io.Raw, Source or ndarray
        What to analyse; arrays need ``fs=`` and ``labels=``.
    config : DetectorConfig, optional
    **input_kwargs
        ``sites=``, ``montage=``, and reader options (``fs=``, ``unit=`` for CSV).

    Returns
    -------
    Analysis
        ``.events`` is the event table (a DataFrame with the events.tsv columns).
    """
    src = as_source(recording, **input_kwargs)
    return analyze_source(src, config, progress=progress, keep_identity=keep_identity)


def write_outputs(an: Analysis, out_dir: str | Path) -> dict[str, Path]:
    """Write events.tsv, events.json, summary.json and report.html into ``out_dir``."""
    from emgtool.report import write_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"events": out_dir / "events.tsv"}
    write_events_tsv(an.events, paths["events"])
    paths["events_json"] = out_dir / "events.json"
    paths.update(write_report(an, out_dir))
    return paths


OUTPUT_NAMES = ("events.tsv", "events.json", "summary.json", "report.html")


def analyze_to_dir(
    path,
    out_dir: str | Path,
    *,
    config: DetectorConfig | None = None,
    overwrite: bool = False,
    keep_identity: bool = False,
    progress: bool = False,
    **input_kwargs,
) -> Analysis:
    """Analyse ``path`` and write the outputs into ``out_dir`` atomically.

    Existing results are kept unless ``overwrite``; files are first written
    into a temporary folder beside ``out_dir`` and then moved in, so a crash
    never leaves half-written outputs.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EmgtoolError(f"{out_dir}: exists and is not a folder")
    existing = [n for n in OUTPUT_NAMES if (out_dir / n).exists()]
    if existing and not overwrite:
        raise EmgtoolError(
            f"{out_dir}: already holds {', '.join(existing)}; use --overwrite to replace"
        )
    src = as_source(path, **input_kwargs)
    src_path = src.meta.get("path")
    if (
        src_path
        and Path(src_path).resolve().parent == out_dir.resolve()
        and any(Path(src_path).name == n for n in OUTPUT_NAMES)
    ):
        raise EmgtoolError(f"{out_dir}: output folder would overwrite the input file")
    an = analyze_source(src, config, progress=progress, keep_identity=keep_identity)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".emgtool-", dir=out_dir))
    try:
        written = write_outputs(an, tmp)
        for p in written.values():
            os.replace(p, out_dir / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    an.source["version"] = __version__
    return an
