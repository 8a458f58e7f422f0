"""Cohort outputs of a batch: cohort.csv/.parquet, cohort.html and failures.tsv.

The cohort table has one row per recording × site.  Its figures come from
each per-file ``summary.json``; every scalar a site reports becomes a column
(nested values are flattened: ``amplitude_uv.median`` → ``amplitude_uv_median``,
a two-number ``…ci95`` list → ``…ci95_lo`` / ``…ci95_hi``), so new summary
keys appear in the table without code changes here.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from emgtool.batch import _svg

__all__ = [
    "rows_from_summary",
    "cohort_table",
    "write_cohort",
    "write_failures",
    "write_html",
    "FAILURE_COLUMNS",
]

ID_COLUMNS = ["subject", "session", "file", "file_sha256", "out_dir"]
SITE_COLUMNS = [
    "site",
    "side",
    "region",
    "fasciculation_count",
    "fasciculation_rate_per_min",
    "cramp_count",
    "rest_s",
]
FAILURE_COLUMNS = ["path", "file_sha256", "status", "attempts", "reason"]


def _flatten(prefix: str, value, out: dict, depth: int = 0) -> None:
    if isinstance(value, dict):
        if depth >= 2:
            return
        for k, v in value.items():
            _flatten(f"{prefix}_{k}" if prefix else str(k), v, out, depth + 1)
    elif isinstance(value, (list, tuple)):
        if (
            len(value) == 2
            and all(isinstance(v, (int, float)) or v is None for v in value)
            and ("ci" in prefix or "interval" in prefix or "range" in prefix)
        ):
            out[f"{prefix}_lo"], out[f"{prefix}_hi"] = value
        elif all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
            out[prefix] = ";".join("" if v is None else str(v) for v in value)
        # lists of objects (per-event details) do not belong in a cohort table
    elif value is None or isinstance(value, (str, int, float, bool)):
        out[prefix] = value


def rows_from_summary(summary: dict) -> tuple[list[dict], dict]:
    """Cohort rows (one per site) and recording-level figures from a summary.json dict.

    Examples
    --------
    >>> rows, rec = rows_from_summary({
    ...     "recording": {"duration_s": 60.0},
    ...     "spread": {"pattern": "focal", "regions_with_fasciculations": ["lumbosacral"]},
    ...     "sites": [{"site": "tibialis_anterior", "side": "L", "region": "lumbosacral",
    ...                "fasciculation_count": 3, "rate_ci95_per_min": [1.0, 8.0],
    ...                "quality": ["mains"]}]})
    >>> rows[0]["rate_ci95_per_min_hi"], rows[0]["quality"], rec["spread_pattern"]
    (8.0, 'mains', 'focal')
    """
    recording: dict = {}
    for k, v in (summary.get("recording") or {}).items():
        if k in ("file", "path", "start_time", "identity"):
            continue  # identification, not a cohort figure
        _flatten(k, v, recording, 1)
    _flatten("spread", summary.get("spread") or {}, recording, 1)
    rows = []
    for site in summary.get("sites") or []:
        row: dict = {}
        for k, v in site.items():
            _flatten(str(k), v, row, 1)
        rows.append(row)
    return rows, recording


def cohort_table(records: list[dict]) -> pd.DataFrame:
    """The cohort DataFrame from committed results.

    Parameters
    ----------
    records : list of dict
        ``subject``, ``session``, ``file``, ``file_sha256``, ``out_dir``,
        ``rows`` (site rows) and ``recording`` (recording-level figures).
        A recording without sites still gets one row (site empty), so no
        analysed recording silently disappears from the table.
    """
    out = []
    for rec in records:
        base = {k: rec.get(k, "") for k in ID_COLUMNS}
        recording = {
            k if k.startswith(("spread", "recording_")) else f"recording_{k}": v
            for k, v in (rec.get("recording") or {}).items()
        }
        for site in rec.get("rows") or [{}]:
            out.append({**base, **site, **recording})
    df = pd.DataFrame(out)
    if df.empty:
        return pd.DataFrame(columns=ID_COLUMNS + SITE_COLUMNS)
    for c in SITE_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan if c not in ("site", "side", "region") else ""
    first = ID_COLUMNS + SITE_COLUMNS
    rest = [c for c in df.columns if c not in first]
    df = df[first + rest]
    sort = ["subject", "session", "file", "region", "site", "side"]
    return df.sort_values(sort, kind="stable", na_position="last").reset_index(drop=True)


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    # Mixed-type object columns (a key that is a number in one summary and a
    # string in another) would make pyarrow fail; store those as strings.
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            kinds = {
                type(v)
                for v in df[c]
                if v is not None and not (isinstance(v, float) and math.isnan(v))
            }
            if len(kinds) > 1 or (kinds and kinds != {str}):
                df[c] = df[c].map(
                    lambda v: (
                        None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                    )
                )
    return df


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    import os

    os.replace(tmp, path)


def write_cohort(df: pd.DataFrame, out_dir: Path) -> None:
    """cohort.csv and cohort.parquet in ``out_dir`` (each replaced atomically)."""
    _atomic_write(out_dir / "cohort.csv", lambda p: df.to_csv(p, index=False))
    _atomic_write(
        out_dir / "cohort.parquet", lambda p: _parquet_safe(df).to_parquet(p, index=False)
    )


def write_failures(failures: list[dict], out_dir: Path) -> None:
    """failures.tsv: ``path, file_sha256, status, attempts, reason`` (header only if none)."""
    df = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    df["reason"] = df["reason"].astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)
    _atomic_write(out_dir / "failures.tsv", lambda p: df.to_csv(p, sep="\t", index=False))


# --- HTML summary -----------------------------------------------------------
# Figures are inline SVG (see _svg.py): no matplotlib in the driver at the end of a batch.


def _figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"


def _strip_plot(groups: dict[str, np.ndarray], title: str, xlabel: str) -> str:
    return _svg.strip_plot(groups, title, xlabel)


def _pattern_plot(per_rec: pd.DataFrame) -> str:
    order = ["none", "focal", "multifocal", "widespread"]
    counts = per_rec["spread_pattern"].fillna("n/a").astype(str).value_counts()
    labels = [p for p in order if p in counts] + sorted(p for p in counts.index if p not in order)
    subj = per_rec.groupby("spread_pattern")["subject"].nunique()
    series = {
        "recordings": [int(counts.get(p, 0)) for p in labels],
        "subjects": [int(subj.get(p, 0)) for p in labels],
    }
    return _svg.bar_plot(labels, series, ["#2980b9", "#e67e22"], "Spread pattern", "count")


def _table(df: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.3g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>"
        for r in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_PATTERN_COLOURS = {
    "none": "#ecf0f1",
    "focal": "#f9e79f",
    "multifocal": "#f0b27a",
    "widespread": "#e74c3c",
}


def _pattern_grid(per_rec: pd.DataFrame) -> str | None:
    """Subjects × sessions, each cell coloured by the spread pattern (and the regions)."""
    subjects = sorted(per_rec["subject"].astype(str).unique())
    sessions = sorted(per_rec["session"].fillna("").astype(str).unique())
    if len(subjects) > 80:
        return None  # a table says more than an unreadable figure
    cells = []
    for _, r in per_rec.iterrows():
        i = subjects.index(str(r["subject"]))
        j = sessions.index("" if pd.isna(r["session"]) else str(r["session"]))
        pat = str(r.get("spread_pattern", "n/a"))
        n_reg = r.get("spread_n_regions_with_fasciculations")
        label = pat if pd.isna(n_reg) else f"{pat} ({int(n_reg)})"
        cells.append((i, j, _PATTERN_COLOURS.get(pat, "#bdc3c7"), label))
    return _svg.grid_plot(
        subjects,
        [s or "-" for s in sessions],
        cells,
        "Spread pattern per subject and session (number of regions)",
        "session",
        "subject",
    )


def write_html(df: pd.DataFrame, failures: list[dict], out_dir: Path, *, counts: dict) -> None:
    """cohort.html: rate distributions per site and region, spread patterns, failures."""
    rate = "fasciculation_rate_per_min"
    parts = [
        "<h1>emgtool batch: cohort summary</h1>",
        "<p class=note>Research tool: these figures describe recordings; they are not a diagnosis.</p>",
        f"<p>{counts.get('recordings', 0)} recordings analysed "
        f"({df['subject'].nunique() if len(df) else 0} subjects), "
        f"{len(failures)} failed.</p>",
    ]
    sites = df[df["site"].astype(str) != ""] if len(df) else df
    vals = pd.to_numeric(sites[rate], errors="coerce") if len(sites) else pd.Series(dtype=float)
    if len(sites) and vals.notna().any():
        s = sites.assign(_rate=vals).dropna(subset=["_rate"])
        s = s.assign(_site=s["site"].astype(str) + " " + s["side"].astype(str).replace("n/a", ""))
        by_site = {k: g["_rate"].to_numpy() for k, g in s.groupby("_site", sort=True)}
        by_region = {k: g["_rate"].to_numpy() for k, g in s.groupby("region", sort=True)}
        parts.append("<h2>Fasciculation rate per site</h2>")
        parts.append(_figure(_strip_plot(by_site, "Rate per site", "fasciculations / min")))
        parts.append("<h2>Fasciculation rate per region</h2>")
        parts.append(
            _figure(_strip_plot(by_region, "Rate per region (all sites)", "fasciculations / min"))
        )
        stats = (
            s.groupby(["region", "_site"])["_rate"]
            .agg(
                recordings="count",
                median="median",
                q25=lambda v: v.quantile(0.25),
                q75=lambda v: v.quantile(0.75),
            )
            .reset_index()
            .rename(columns={"_site": "site"})
        )
        parts.append(_table(stats))
    else:
        parts.append("<p>No per-site fasciculation rates to show.</p>")
    if len(df) and "spread_pattern" in df.columns:
        per_rec = df.drop_duplicates(["subject", "session", "file_sha256"])
        parts.append("<h2>Spread patterns across subjects</h2>")
        parts.append(_figure(_pattern_plot(per_rec)))
        grid = _pattern_grid(per_rec)
        if grid:
            parts.append(_figure(grid))
        cols = [
            c
            for c in (
                "subject",
                "session",
                "file",
                "spread_pattern",
                "spread_regions_with_fasciculations",
                "spread_bilateral",
            )
            if c in per_rec
        ]
        parts.append(_table(per_rec[cols]))
    from emgtool._version import __version__
    from emgtool.config import ALGORITHM_VERSION

    parts.append("<h2>Failures</h2>")
    if failures:
        f = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
        f["path"] = f["path"].map(lambda p: Path(p).name)
        parts.append(_table(f[["path", "status", "attempts", "reason"]]))
    else:
        parts.append("<p>None.</p>")
    parts.append(
        "<h2>Methods</h2><p>Each row of cohort.csv is one site of one recording, with the figures "
        "of that recording's summary.json (its folder holds the full report). Rates are "
        "fasciculations per minute of artefact-free rest; sites without enough rest have no rate. "
        f"emgtool {html.escape(__version__)}, detection algorithm version "
        f"{html.escape(ALGORITHM_VERSION)}; the detector parameters are in each summary.json.</p>"
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        "figure{margin:1em 0}figure svg{max-width:100%;height:auto}.note{color:#a04000}"
    )
    doc = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>emgtool batch: cohort</title>"
        f"<style>{style}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )
    _atomic_write(out_dir / "cohort.html", lambda p: p.write_text(doc, encoding="utf-8"))
