"""Small inline SVG figures for cohort.html: strip plots, grouped bars, a coloured grid.

The cohort summary draws three or four simple charts once per batch.  Written
as SVG text they take milliseconds, where matplotlib took 1.5-2 s of the
driver's time at the end of every batch (its import, its first figure and
rasterising to PNG), a serial cost that no number of workers shortens.  The
figures stay self-contained (inline ``<svg>``, no external requests) and scale
without blurring.

Examples
--------
>>> svg = strip_plot({"TA L": np.array([1.0, 2.0, 4.0])}, "Rate", "per min")
>>> svg.startswith("<svg") and svg.count("<circle") == 3
True
"""

from __future__ import annotations

import html
import math

import numpy as np

__all__ = ["nice_ticks", "strip_plot", "bar_plot", "grid_plot"]

FONT = "font-family:system-ui,sans-serif;font-size:12px"
#: Rough width of one character at 12 px, to leave room for the labels.
CHAR_PX = 7.0
WIDTH = 720


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values (1, 2, 2.5 or 5 × 10^k apart) covering [lo, hi].

    Examples
    --------
    >>> nice_ticks(0.0, 7.3).tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return np.arange(first, last + 1) * step


def _num(v: float) -> str:
    return f"{v:.6g}"


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _open(width: float, height: float, title: str) -> list[str]:
    # Inline in HTML5: no xmlns needed (and no URL at all in the page).
    return [
        f'<svg width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_esc(title)}" '
        f'style="{FONT}">',
        f"<title>{_esc(title)}</title>",
        f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>',
    ]


def _box(v: np.ndarray) -> tuple[float, float, float, float, float]:
    """Whisker ends, quartiles and median as a box plot draws them (1.5 IQR whiskers)."""
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    iqr = q3 - q1
    lo = float(v[v >= q1 - 1.5 * iqr].min())
    hi = float(v[v <= q3 + 1.5 * iqr].max())
    return lo, float(q1), float(med), float(q3), hi


def strip_plot(groups: dict[str, np.ndarray], title: str, xlabel: str) -> str:
    """One row per group: every value as a dot (fixed jitter), a box plot from 3 values.

    Parameters
    ----------
    groups : dict
        Row label → values (NaNs must be removed by the caller).
    title, xlabel : str
    """
    names = list(groups)
    row = 26.0
    left = 16 + CHAR_PX * max([len(str(n)) for n in names] + [4])
    top, bottom, right = 32.0, 46.0, 24.0
    height = top + row * max(1, len(names)) + bottom
    values = [np.asarray(v, dtype=float) for v in groups.values()]
    allv = np.concatenate(values) if values else np.zeros(0)
    lo = min(0.0, float(allv.min())) if allv.size else 0.0
    hi = float(allv.max()) if allv.size else 1.0
    ticks = nice_ticks(lo, hi)
    x0, x1 = float(ticks[0]), float(ticks[-1])
    plot_w = WIDTH - left - right

    def X(v):
        return left + (np.asarray(v, dtype=float) - x0) / (x1 - x0) * plot_w

    out = _open(WIDTH, height, title)
    y_axis = top + row * max(1, len(names))
    for t in ticks:
        x = float(X(t))
        out.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y_axis:.1f}" '
            'stroke="#000" stroke-opacity="0.12"/>'
            f'<text x="{x:.1f}" y="{y_axis + 16:.1f}" text-anchor="middle">{_num(t)}</text>'
        )
    out.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{plot_w:.1f}" height="{y_axis - top:.1f}" '
        'fill="none" stroke="#444"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8:.1f}" text-anchor="middle">'
        f"{_esc(xlabel)}</text>"
    )
    rng = np.random.default_rng(0)  # fixed jitter: the same data draws the same figure
    for i, (name, v) in enumerate(zip(names, values, strict=True)):
        yc = top + row * (i + 0.5)
        out.append(
            f'<text x="{left - 6:.1f}" y="{yc + 4:.1f}" text-anchor="end">{_esc(name)}</text>'
        )
        if v.size >= 3:
            w_lo, q1, med, q3, w_hi = (float(X(q)) for q in _box(v))
            h = row * 0.6
            out.append(
                f'<path d="M{w_lo:.1f} {yc:.1f}H{q1:.1f}M{q3:.1f} {yc:.1f}H{w_hi:.1f}'
                f"M{w_lo:.1f} {yc - h / 4:.1f}v{h / 2:.1f}M{w_hi:.1f} {yc - h / 4:.1f}v{h / 2:.1f}"
                '" stroke="#000" fill="none"/>'
                f'<rect x="{q1:.1f}" y="{yc - h / 2:.1f}" width="{max(q3 - q1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="none" stroke="#000"/>'
                f'<line x1="{med:.1f}" y1="{yc - h / 2:.1f}" x2="{med:.1f}" y2="{yc + h / 2:.1f}" '
                'stroke="#c0392b" stroke-width="2"/>'
            )
        if v.size:
            ys = yc + rng.uniform(-0.18, 0.18, v.size) * row
            out.append(
                '<g fill="#2c3e50" fill-opacity="0.7">'
                + "".join(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"/>'
                    for x, y in zip(X(v), ys, strict=True)
                )
                + "</g>"
            )
    out.append("</svg>")
    return "".join(out)


def bar_plot(
    labels: list[str], series: dict[str, list[float]], colours: list[str], title: str, ylabel: str
) -> str:
    """Grouped vertical bars: one group per label, one bar per series, with a legend."""
    left, right, top, bottom = 56.0, 130.0, 32.0, 40.0
    width, height = 600.0, 270.0
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max([max(v) for v in series.values() if v] + [1.0])
    ticks = nice_ticks(0.0, vmax)
    ticks = ticks[ticks == np.round(ticks)]  # counts: whole numbers only
    y_top = float(ticks[-1]) if ticks.size else vmax

    def Y(v: float) -> float:
        return top + plot_h * (1 - v / y_top)

    out = _open(width, height, title)
    for t in ticks:
        y = Y(float(t))
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
            'stroke="#000" stroke-opacity="0.12"/>'
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{_num(t)}</text>'
        )
    out.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{plot_w:.1f}" height="{plot_h:.1f}" '
        'fill="none" stroke="#444"/>'
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{_esc(ylabel)}</text>'
    )
    n = max(1, len(labels))
    group_w = plot_w / n
    bar_w = group_w * 0.8 / max(1, len(series))
    for i, label in enumerate(labels):
        gx = left + group_w * i + group_w * 0.1
        for j, (name, vals) in enumerate(series.items()):
            v = float(vals[i])
            y = Y(v)
            out.append(
                f'<rect x="{gx + j * bar_w:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{colours[j]}">'
                f"<title>{_esc(name)}: {_num(v)}</title></rect>"
            )
        out.append(
            f'<text x="{left + group_w * (i + 0.5):.1f}" y="{top + plot_h + 16:.1f}" '
            f'text-anchor="middle">{_esc(label)}</text>'
        )
    for j, name in enumerate(series):
        y = top + 8 + 18 * j
        out.append(
            f'<rect x="{left + plot_w + 14:.1f}" y="{y:.1f}" width="12" height="12" '
            f'fill="{colours[j]}"/><text x="{left + plot_w + 32:.1f}" y="{y + 10:.1f}">'
            f"{_esc(name)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def grid_plot(
    rows: list[str],
    cols: list[str],
    cells: list[tuple[int, int, str, str]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> str:
    """A table of coloured cells: ``cells`` = (row, col, colour, text)."""
    cell_w, cell_h = 120.0, 24.0
    left = 40 + CHAR_PX * max([len(r) for r in rows] + [4])
    top, bottom = 32.0, 44.0
    width = max(CHAR_PX * 1.2 * len(title) + 20, left + cell_w * len(cols) + 16)
    height = top + cell_h * len(rows) + bottom
    out = _open(width, height, title)
    for r, c, colour, text in cells:
        x, y = left + cell_w * c, top + cell_h * r
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w * 0.96:.1f}" '
            f'height="{cell_h * 0.92:.1f}" fill="{colour}"/>'
            f'<text x="{x + cell_w * 0.48:.1f}" y="{y + cell_h * 0.46 + 4:.1f}" '
            f'text-anchor="middle" font-size="11">{_esc(text)}</text>'
        )
    for i, r in enumerate(rows):
        out.append(
            f'<text x="{left - 6:.1f}" y="{top + cell_h * (i + 0.46) + 4:.1f}" '
            f'text-anchor="end">{_esc(r)}</text>'
        )
    y_lab = top + cell_h * len(rows) + 16
    for j, c in enumerate(cols):
        out.append(
            f'<text x="{left + cell_w * (j + 0.48):.1f}" y="{y_lab:.1f}" '
            f'text-anchor="middle">{_esc(c)}</text>'
        )
    out.append(
        f'<text x="{left + cell_w * len(cols) / 2:.1f}" y="{height - 6:.1f}" '
        f'text-anchor="middle">{_esc(xlabel)}</text>'
        f'<text transform="translate(14 {top + cell_h * len(rows) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{_esc(ylabel)}</text></svg>'
    )
    return "".join(out)
