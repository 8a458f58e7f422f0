"""Reports: ``summary.json``, ``report.html``, longitudinal comparison, exports.

- :func:`summarize` (``summary.py``): per-site rates, shapes, cramps, spread → dict.
- :func:`render_report` (``html.py``): self-contained HTML page.
- :func:`write_report`: both files into an analysis folder (atomic writes).
- ``longitudinal.py``: compare several analysis folders of one subject.
- ``exports.py``: EDF+ with annotations, BIDS-EMG derivatives, MNE, pandas.

Examples
--------
>>> from emgtool.report import write_report  # doctest: +SKIP
>>> paths = write_report(analysis, "out/")   # doctest: +SKIP
>>> sorted(paths)                            # doctest: +SKIP
['report_html', 'summary_json']
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from emgtool.report.summary import SCHEMA_VERSION, InvolvementRule, summarize

__all__ = [
    "summarize",
    "render_report",
    "write_report",
    "write_text_atomic",
    "write_json_atomic",
    "InvolvementRule",
    "SCHEMA_VERSION",
    "to_mne_annotations",
    "to_dataframe",
    "export_edf",
    "write_bids",
    "write_longitudinal",
]


def render_report(analysis, summary: dict | None = None) -> str:
    """HTML report (see :func:`emgtool.report.html.render_report`)."""
    from emgtool.report.html import render_report as _render

    return _render(analysis, summary if summary is not None else summarize(analysis))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``.

    Readers never see a half-written file, and a crash leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_json_atomic(path: str | Path, doc) -> Path:
    """Strict JSON (no NaN) written atomically, 2-space indented."""
    return write_text_atomic(
        path, json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    )


def write_report(
    analysis,
    out_dir: str | Path,
    *,
    summary: dict | None = None,
    rule: InvolvementRule | None = None,
) -> dict[str, Path]:
    """Write ``summary.json`` and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    analysis : Analysis
    out_dir : path
        Created if needed.  ``events.tsv`` is written by the caller.
    summary : dict, optional
        A summary already computed with :func:`summarize` (else computed here).
    rule : InvolvementRule, optional
        Passed to :func:`summarize` when ``summary`` is None.

    Returns
    -------
    dict
        ``{"summary_json": path, "report_html": path}``.
    """
    out_dir = Path(out_dir)
    if summary is None:
        summary = summarize(analysis, rule)
    paths = {
        "summary_json": write_json_atomic(out_dir / "summary.json", summary),
        "report_html": write_text_atomic(
            out_dir / "report.html", render_report(analysis, summary)
        ),
    }
    return paths


_LAZY = {
    "to_mne_annotations": "emgtool.report.exports",
    "to_dataframe": "emgtool.report.exports",
    "export_edf": "emgtool.report.exports",
    "write_bids": "emgtool.report.exports",
    "write_longitudinal": "emgtool.report.longitudinal",
}


def __getattr__(name):
    # Exports pull in MNE and matplotlib: load them only when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
