"""Rebuild a live recording's outputs after a crash, SIGKILL or power cut.

``emgtool record`` writes ``recording.edf`` append-only with ``number of
data records = -1`` and fsyncs each record, and keeps ``session.json`` up to
date atomically.  After an abrupt stop the folder holds every complete
record but no header count, no events and no report.  :func:`recover`:

1. keeps the file as it was found (renamed ``recording.partial.edf``);
2. writes ``recording.edf`` = the same bytes up to the last *complete*
   record, with the record count filled in (a properly closed EDF+);
3. re-runs the detection pipeline offline over those samples, with the gaps
   listed in the sidecar (and ``gap`` annotations in the file) as NaN, and
   the sites chosen when recording;
4. writes ``events.tsv``, ``summary.json``, ``report.html`` and marks the
   sidecar ``recovered``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from emgtool.acquisition.live import RECORDING, SIDECAR, write_json_atomic, write_results
from emgtool.errors import EmgtoolError, EmgtoolWarning, ReadError
from emgtool.pipeline.analyze import file_id
from emgtool.recording import Channel, Recording

__all__ = ["recover", "PARTIAL"]

PARTIAL = "recording.partial.edf"


def _header_layout(path: Path) -> tuple[int, int, int]:
    """(header bytes, bytes per record, n_records field) of an EDF/BDF file."""
    with open(path, "rb") as fh:
        head = fh.read(256)
        if len(head) < 256:
            raise ReadError(path, "shorter than an EDF header: nothing recorded")
        try:
            hbytes = int(head[184:192])
            n_rec = int(head[236:244])
            ns = int(head[252:256])
        except ValueError:
            raise ReadError(path, "not an EDF header") from None
        bps = 3 if head[:1] == b"\xff" else 2
        sig = fh.read(256 * ns)
        if len(sig) < 256 * ns:
            raise ReadError(path, "header cut short")
        off = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
        spr = [int(sig[off + 8 * i : off + 8 * i + 8]) for i in range(ns)]
    return hbytes, sum(spr) * bps, n_rec


def _close_copy(src: Path, dst: Path) -> tuple[int, int]:
    """Copy the complete records of ``src`` to ``dst`` with the record count set."""
    hbytes, rec_bytes, _n = _header_layout(src)
    size = src.stat().st_size
    n_full = max(0, (size - hbytes) // rec_bytes)
    length = hbytes + n_full * rec_bytes
    tmp = dst.with_name(dst.name + ".tmp")
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        left = length
        while left:
            block = fi.read(min(left, 1 << 20))
            if not block:
                break
            fo.write(block)
            left -= len(block)
        fo.seek(236)
        fo.write(str(n_full).ljust(8).encode("ascii"))
        fo.flush()
        os.fsync(fo.fileno())
    os.replace(tmp, dst)
    return n_full, size - length


def recover(out_dir: str | Path, *, force: bool = False, config=None) -> dict:
    """Rebuild ``recording.edf`` and the outputs in ``out_dir``; returns what was done."""
    out = Path(out_dir)
    edf, part, side = out / RECORDING, out / PARTIAL, out / SIDECAR
    if not out.is_dir():
        raise EmgtoolError(f"{out}: no such folder")
    doc: dict = {}
    if side.exists():
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ReadError(side, f"unreadable sidecar: {e}") from None
    if not edf.exists() and not part.exists():
        raise EmgtoolError(f"{out}: no {RECORDING} to recover")
    done = doc.get("status") in ("complete", "recovered") and (out / "events.tsv").exists()
    if done and not force:
        raise EmgtoolError(
            f"{out}: the recording was closed properly; nothing to recover "
            "(use --force to re-run the analysis)"
        )
    report: dict = {"out_dir": str(out)}
    if edf.exists():
        _h, _r, n_rec = _header_layout(edf)
        if n_rec == -1:  # still "recording": keep the original, write a closed copy
            os.replace(edf, part)
    if part.exists() and not edf.exists():
        n_full, dropped = _close_copy(part, edf)
        report.update(records=n_full, dropped_bytes=dropped)
    from emgtool.io import open_source

    with warnings.catch_warnings():  # labels → sites: replaced by the sidecar's below
        warnings.simplefilter("ignore", EmgtoolWarning)
        src = open_source(edf)
    rec = src.read()
    data = np.array(rec.data, dtype=np.float32)
    gaps = [
        (int(g["start_sample"]), int(g["start_sample"]) + int(g["n_samples"]))
        for g in doc.get("gaps", [])
    ]
    try:
        from emgtool.io.edf import read_annotations

        for onset, dur, text in read_annotations(edf):
            if text == "gap" and dur:
                gaps.append((int(round(onset * rec.fs)), int(round((onset + dur) * rec.fs))))
    except Exception:  # the sidecar already lists the gaps; annotations are a second source
        pass
    gaps = sorted(set(gaps))
    for a, b in gaps:
        data[:, max(a, 0) : max(min(b, data.shape[1]), 0)] = np.nan
    channels = rec.channels
    meta_ch = doc.get("channels") or []
    if len(meta_ch) == len(channels):
        channels = tuple(
            Channel(
                m["label"],
                m.get("site", "unknown"),
                m.get("side", "n/a"),
                m.get("region", "unknown"),
            )
            for m in meta_ch
        )
    rec = Recording(data, rec.fs, channels, start_time=rec.start_time, meta={"file": RECORDING})
    report.update(n_samples=rec.n_samples, fs=rec.fs, gaps=gaps)
    try:
        from emgtool.config import DetectorConfig
        from emgtool.pipeline import finalize, flush, init_state, step
    except ImportError:
        report["missing"] = ["events.tsv", "summary.json", "report.html"]
        return report
    cfg = config or (
        DetectorConfig.from_dict(_tuples(doc["config"])) if doc.get("config") else None
    )
    st = init_state(rec.fs, rec.channels, cfg)
    for chunk in rec.chunks(max(1, int(10 * rec.fs))):
        _e, st = step(chunk, st)
    _e, st = flush(st)
    source = {
        "file": RECORDING,
        "format": "EDF+",
        "reader_warnings": ["recovered after an abrupt stop"],
        "start_time": None,
    }
    an = finalize(st, recording_id=file_id(edf), source=source)
    an.gaps = [(a, b) for a, b in gaps]
    an.warnings = ["recovered after an abrupt stop: the last second may be missing"] + an.warnings
    report["missing"] = write_results(an, out)
    report["n_events"] = int(len(an.events))
    if doc:
        doc["status"] = "recovered"
        write_json_atomic(side, doc)
    return report


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
