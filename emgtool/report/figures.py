"""Report figures drawn with matplotlib (Agg, no pyplot state).

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure`;
:func:`to_data_uri` turns it into an inline PNG so the HTML report needs no
external file.  Figures are built from the summary dict plus the event table,
so they show exactly the numbers in ``summary.json``.

Examples
--------
>>> from emgtool.report.figures import new_figure, to_data_uri
>>> fig = new_figure(2, 1)
>>> to_data_uri(fig).startswith("data:image/png;base64,")
True
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from emgtool.report.summary import _split_events, excluded_spans_s, site_label

__all__ = [
    "new_figure",
    "to_data_uri",
    "raster_figure",
    "rates_figure",
    "cramp_figure",
    "waveforms_figure",
    "quality_figure",
    "STATUS_COLORS",
]

DPI = 90
STATUS_COLORS = {"involved": "#c0392b", "not_involved": "#2e86c1", "insufficient": "#999999"}
SHAPE_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure with an Agg canvas (thread-safe, no global pyplot state)."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Figure) -> str:
    """PNG ``data:`` URI of ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _time_unit(duration_s: float) -> tuple[float, str]:
    if duration_s > 1200:
        return 60.0, "time (min)"
    return 1.0, "time (s)"


def raster_figure(analysis, summary: dict) -> Figure:
    """One row per site: fasciculations as ticks, cramps as bars, excluded time shaded."""
    sites = summary["sites"]
    n = max(len(sites), 1)
    fig = new_figure(9.5, 0.9 + 0.32 * n)
    ax = fig.add_axes((0.2, 0.55 / (0.9 + 0.32 * n) + 0.02, 0.77, 1 - 0.9 / (0.9 + 0.32 * n)))
    scale, xlabel = _time_unit(analysis.duration_s)
    segs = []
    axis_px = ax.get_position().width * fig.get_figwidth() * DPI
    tick_cols = 4 * int(axis_px)  # quarter-pixel columns of the time axis
    tick_w = max(analysis.duration_s / scale, 1e-9) / tick_cols
    split = _split_events(analysis)
    for i, (s, sr) in enumerate(zip(sites, analysis.sites, strict=True)):
        y = n - 1 - i
        spans = excluded_spans_s(analysis, sr, split)
        if spans:
            ax.broken_barh(
                [(a / scale, (b - a) / scale) for a, b in spans],
                (y - 0.45, 0.9),
                facecolors="#dddddd",
                lw=0,
            )
        key = (str(s["site"]), str(s["side"]))
        f = split["fasc"].get(key)
        t = (f["onset"].to_numpy(dtype=float) if f is not None else np.zeros(0)) / scale
        if t.size > 4 * tick_cols:
            # A day holds ~10^5 ticks per site, far more than the row has pixels:
            # ticks in one quarter-pixel column draw the same, so one per column
            # (the figure is unchanged; matplotlib needs ~1 KB per drawn segment).
            t = np.unique(np.round(t / tick_w)) * tick_w
        segs.append(
            np.stack([np.c_[t, np.full(t.size, y - 0.35)], np.c_[t, np.full(t.size, y + 0.35)]], 1)
        )
        c = split["cramp"].get(key)
        if c is not None and len(c):
            c_on = c["onset"].to_numpy(dtype=float)
            c_du = np.nan_to_num(c["duration"].to_numpy(dtype=float), nan=0.0)
            ax.broken_barh(
                list(zip(c_on / scale, c_du / scale, strict=True)),
                (y - 0.3, 0.6),
                facecolors="#e67e22",
                edgecolors="#a04000",
                lw=0.5,
            )
    if segs:
        allseg = np.concatenate(segs) if any(len(s) for s in segs) else np.zeros((0, 2, 2))
        ax.add_collection(LineCollection(allseg, colors="#1b2631", linewidths=0.6))
    ax.set_xlim(0, analysis.duration_s / scale)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(range(n))
    ax.set_yticklabels(
        [s["label"] for s in reversed(sites)] if sites else ["(no sites)"], fontsize=8
    )
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(
        "Events over time: | fasciculation   ▬ cramp   grey = excluded (gap, artefact, "
        "voluntary, cramp)",
        fontsize=8,
        loc="left",
    )
    return fig


def rates_figure(summary: dict) -> Figure:
    """Fasciculation rate per site with its 95 % interval, coloured by status."""
    sites = summary["sites"]
    n = max(len(sites), 1)
    h = 0.9 + 0.28 * n
    fig = new_figure(6.5, h)
    ax = fig.add_axes((0.28, 0.5 / h + 0.02, 0.68, 1 - 0.85 / h))
    for i, s in enumerate(sites):
        y = n - 1 - i
        r = s["fasciculation_rate_per_min"]
        lo, hi = s["fasciculation_rate_ci95_per_min"]
        col = STATUS_COLORS.get(s["status"], "#555555")
        if r is None:
            ax.text(0.0, y, "  no rest observed", va="center", fontsize=7, color="#777777")
            continue
        ax.plot([lo, hi], [y, y], color=col, lw=2, solid_capstyle="butt")
        ax.plot([r], [y], "o", color=col, ms=5)
    bg = summary.get("involvement_rule", {}).get("background_rate_per_min")
    if bg:
        ax.axvline(bg, color="#555555", ls="--", lw=0.8)
    # Linear axis: symlog tick labelling alone costs ~0.5 s per render.
    ax.set_xlim(left=0)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(range(n))
    ax.set_yticklabels(
        [s["label"] for s in reversed(sites)] if sites else ["(no sites)"], fontsize=8
    )
    ax.set_xlabel("fasciculations per minute of rest (95 % exact Poisson interval)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(
        "red involved · blue not involved · grey insufficient rest · dashed: background",
        fontsize=8,
        loc="left",
    )
    return fig


def cramp_figure(analysis, summary: dict) -> Figure | None:
    """Cramps per site as bars on the time axis; None when there are none."""
    ev = analysis.events
    c = ev[ev["trial_type"].astype(str) == "cramp"]
    if c.empty:
        return None
    labels = [s["label"] for s in summary["sites"] if s["cramp_count"] > 0]
    known = set(labels)
    extra = sorted({site_label(a, b) for a, b in zip(c["site"], c["side"], strict=True)} - known)
    labels += extra
    n = len(labels)
    h = 1.0 + 0.35 * n
    fig = new_figure(9.5, h)
    ax = fig.add_axes((0.2, 0.55 / h + 0.02, 0.77, 1 - 0.95 / h))
    scale, xlabel = _time_unit(analysis.duration_s)
    for i, lab in enumerate(labels):
        y = n - 1 - i
        sel = [site_label(a, b) == lab for a, b in zip(c["site"], c["side"], strict=True)]
        cc = c[sel]
        on = cc["onset"].to_numpy(dtype=float)
        du = np.maximum(
            np.nan_to_num(cc["duration"].to_numpy(dtype=float)), analysis.duration_s / 500
        )
        ax.broken_barh(
            list(zip(on / scale, du / scale, strict=True)),
            (y - 0.3, 0.6),
            facecolors="#e67e22",
            edgecolors="#a04000",
            lw=0.5,
        )
        for o, d in zip(on, cc["duration"].to_numpy(dtype=float), strict=True):
            ax.text((o + max(d, 0)) / scale, y + 0.32, f"{d:.1f} s", fontsize=6, va="bottom")
    ax.set_xlim(0, analysis.duration_s / scale)
    ax.set_ylim(-0.6, n - 0.2)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(reversed(labels)), fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("Cramp timeline (bar length = duration)", fontsize=8, loc="left")
    return fig


def waveforms_figure(analysis, summary: dict, max_per_shape: int = 25) -> Figure | None:
    """Per site, the stored waveforms overlaid and coloured by shape cluster (mean in bold).

    All panels share one axes (small multiples placed by offset, each with its
    own amplitude scale bar): drawing 16 separate axes' tick labels would cost
    most of the report's rendering time.
    """
    panels = [
        (s, sr)
        for s, sr in zip(summary["sites"], analysis.sites, strict=True)
        if sr.waveforms.size and sr.waveforms.ndim == 2
    ]
    if not panels:
        return None
    ncol = min(4, len(panels))
    nrow = int(np.ceil(len(panels) / ncol))
    fig = new_figure(2.3 * ncol, 1.6 * nrow + 0.3)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_axis_off()
    shape_col = analysis.events["shape"].to_numpy() if "shape" in analysis.events else None
    pw, ph = 1.0, 1.0  # panel box; drawing area is 0.8 x 0.7 of it
    for p, (s, sr) in enumerate(panels):
        x0, y0 = (p % ncol) * pw, -(p // ncol) * ph
        w = np.asarray(sr.waveforms, dtype=float)
        idx = np.asarray(sr.waveform_event_index, dtype=np.int64)
        if shape_col is not None and idx.size == w.shape[0] and len(shape_col):
            picked = pd.to_numeric(
                pd.Series(shape_col[np.clip(idx, 0, len(shape_col) - 1)]), errors="coerce"
            )
            lab = picked.fillna(-1).to_numpy(dtype=np.int64)
        else:
            lab = np.full(w.shape[0], -1)
        lim = float(np.nanmax(np.abs(w))) if np.isfinite(w).any() else 1.0
        lim = lim if lim > 0 else 1.0
        xs = x0 + 0.1 + 0.8 * np.arange(w.shape[1]) / max(w.shape[1] - 1, 1)
        yc = y0 + 0.42
        for k in np.unique(lab):
            sel = np.flatnonzero(lab == k)
            col = SHAPE_COLORS[int(k) % len(SHAPE_COLORS)] if k >= 0 else "#7f7f7f"
            sub = yc + 0.35 * w[sel[:max_per_shape]] / lim
            segs = np.stack([np.broadcast_to(xs, sub.shape), sub], axis=-1)
            ax.add_collection(LineCollection(segs, colors=col, linewidths=0.4, alpha=0.35))
            ax.plot(xs, yc + 0.35 * w[sel].mean(axis=0) / lim, color=col, lw=1.3)
        ax.text(
            x0 + 0.5,
            y0 + 0.86,
            f"{s['label']}\nn={w.shape[0]} shown, {s['n_shapes']} shape(s)",
            ha="center",
            va="center",
            fontsize=6.5,
        )
        # vertical scale bar: half the panel height = lim µV
        ax.plot([x0 + 0.06, x0 + 0.06], [yc, yc + 0.35], color="k", lw=0.8)
        ax.text(
            x0 + 0.05,
            yc + 0.17,
            f"{lim:.0f} µV",
            fontsize=5.5,
            ha="right",
            va="center",
            rotation=90,
        )
        ms = 10.0 * 0.8 / (w.shape[1] / analysis.fs * 1000.0)
        ax.plot([x0 + 0.1, x0 + 0.1 + ms], [y0 + 0.02, y0 + 0.02], color="k", lw=0.8)
        ax.text(x0 + 0.1 + ms / 2, y0 + 0.03, "10 ms", fontsize=5.5, ha="center", va="bottom")
    ax.set_xlim(-0.02, ncol * pw)
    ax.set_ylim(-(nrow - 1) * ph - 0.02, ph)
    return fig


def quality_figure(summary: dict) -> Figure:
    """Per site: rest time and the time excluded, by reason (stacked bars)."""
    sites = summary["sites"]
    n = max(len(sites), 1)
    reasons = sorted({k for s in sites for k in s["excluded_s"]})
    h = 1.0 + 0.28 * n
    fig = new_figure(8.0, h)
    ax = fig.add_axes((0.22, 0.5 / h + 0.02, 0.58, 1 - 0.85 / h))
    palette = ["#95a5a6", "#e67e22", "#8e44ad", "#c0392b", "#f1c40f", "#16a085", "#34495e"]
    ys = np.arange(n)[::-1][: len(sites)]
    left = np.array([s["rest_s"] or 0.0 for s in sites])
    ax.barh(ys, left, color="#2e86c1", label="rest (analysed)")
    for j, r in enumerate(reasons):
        v = np.array([s["excluded_s"].get(r) or 0.0 for s in sites])
        ax.barh(ys, v, left=left, color=palette[j % len(palette)], label=f"excluded: {r}")
        left = left + v
    ax.set_yticks(range(n))
    ax.set_yticklabels(
        [s["label"] for s in reversed(sites)] if sites else ["(no sites)"], fontsize=8
    )
    ax.set_xlabel("seconds", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Observation time per site", fontsize=8, loc="left")
    return fig
