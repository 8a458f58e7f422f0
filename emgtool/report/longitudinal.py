"""Compare analyses of one subject over visits: rate trends, new spread, cramps.

Input: analysis folders written by ``emgtool analyze`` (``summary.json``, and
``events.tsv`` if present).  Visits are ordered by ``recording.start_time``
when **every** summary has one (it is only kept with ``--keep-identity``),
otherwise by the order given; the output says which (``visit_order``).

A site is *newly involved* at visit k when it is involved at k and was not
involved at any earlier visit.  It is reported as ``new`` only if an earlier
visit assessed it adequately (status ``not_involved``); if it was never
assessed before (not examined or too little rest) it is ``first_assessed``,
which is not evidence of spread.  Regions follow the same rule.

Between consecutive visits, a site's rate change is tested with the exact
conditional test of two Poisson rates (given n1 + n2 events, n1 is binomial
with p = t1 / (t1 + t2) under equal rates).

Examples
--------
>>> from emgtool.report.longitudinal import rate_change_p
>>> round(rate_change_p(10, 60.0, 10, 60.0), 3)
1.0
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from emgtool._version import __version__
from emgtool.errors import ReadError
from emgtool.events import read_events_tsv
from emgtool.report.summary import REGIONS, SCHEMA_VERSION, _num

__all__ = ["load_visit", "compare", "render_longitudinal", "write_longitudinal", "rate_change_p"]

LONGITUDINAL_SCHEMA_VERSION = "1.0"


def load_visit(path: str | Path) -> dict:
    """Read one analysis folder; raise :class:`ReadError` naming the problem."""
    path = Path(path)
    if not path.exists():
        raise ReadError(path, "no such analysis folder")
    if not path.is_dir():
        raise ReadError(
            path, "not a folder (give the analysis output folder holding summary.json)"
        )
    sj = path / "summary.json"
    try:
        doc = json.loads(sj.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReadError(sj, "file not found (not an emgtool analysis folder?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReadError(sj, f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ReadError(sj, "not an emgtool summary (top level is not an object)")
    missing = [k for k in ("schema_version", "recording", "sites", "spread") if k not in doc]
    if missing:
        raise ReadError(sj, f"not an emgtool summary: missing key(s) {', '.join(missing)}")
    major = str(doc["schema_version"]).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise ReadError(
            sj,
            f"summary schema {doc['schema_version']} is not supported "
            f"(this emgtool reads {SCHEMA_VERSION.split('.')[0]}.x)",
        )
    for i, s in enumerate(doc["sites"]):
        need = ("site", "side", "region", "fasciculation_count", "rest_s", "cramp_count")
        if not isinstance(s, dict) or any(k not in s for k in need):
            raise ReadError(sj, f"sites[{i}] lacks one of {', '.join(need)}")
    events = None
    et = path / "events.tsv"
    if et.exists():
        events = read_events_tsv(et)
    return {
        "path": str(path),
        "label": path.resolve().name or str(path),
        "summary": doc,
        "events": events,
    }


def rate_change_p(n1: int, t1_s: float, n2: int, t2_s: float) -> float | None:
    """Two-sided exact p-value that two Poisson rates are equal (None if untestable)."""
    if t1_s <= 0 or t2_s <= 0 or n1 + n2 == 0:
        return None
    return float(binomtest(int(n1), int(n1 + n2), t1_s / (t1_s + t2_s)).pvalue)


def _order(visits: list[dict]) -> tuple[list[dict], str]:
    times = [v["summary"]["recording"].get("start_time") for v in visits]
    if all(times):
        try:
            ts = [pd.Timestamp(t) for t in times]
            idx = sorted(range(len(visits)), key=lambda i: ts[i])
            return [visits[i] for i in idx], "start_time"
        except (ValueError, TypeError):
            pass
    return list(visits), "argument"


def _status(site_row: dict | None) -> str:
    return "not_examined" if site_row is None else site_row.get("status", "not_examined")


def _new_involvement(statuses: list[str]) -> list[dict]:
    """Visits (0-based) at which a unit becomes involved, tagged new or first_assessed."""
    out = []
    for k, st in enumerate(statuses):
        if st != "involved" or "involved" in statuses[:k]:
            continue
        if k == 0:
            continue  # baseline: nothing to compare with
        kind = "new" if "not_involved" in statuses[:k] else "first_assessed"
        out.append({"visit": k + 1, "kind": kind})
    return out


def _note_newly(new_events: dict, n: dict, kind: str, item: str) -> None:
    """Record that ``item`` (a site or region label) is newly involved at visit ``n``.

    ``kind`` is ``"sites"`` or ``"regions"``; involvement at a first assessment goes
    to ``<kind>_first_assessed``.
    """
    ev = new_events.setdefault(
        n["visit"],
        {
            "visit": n["visit"],
            "sites": [],
            "sites_first_assessed": [],
            "regions": [],
            "regions_first_assessed": [],
        },
    )
    ev[kind if n["kind"] == "new" else f"{kind}_first_assessed"].append(item)


def compare(visits: list[dict]) -> dict:
    """Comparison document (``longitudinal.json``) of visits from :func:`load_visit`."""
    visits, order = _order(visits)
    warnings: list[str] = []
    vrows = []
    for i, v in enumerate(visits, 1):
        s = v["summary"]
        rec = s["recording"]
        sp = s["spread"]
        sites = s["sites"]
        n_cramps = int(sum(x["cramp_count"] for x in sites))
        hours = ((rec.get("duration_s") or 0) - (rec.get("gap_total_s") or 0)) / 3600.0
        vrows.append(
            {
                "visit": i,
                "label": v["label"],
                "recording_id": rec.get("recording_id"),
                "start_time": rec.get("start_time"),
                "duration_s": rec.get("duration_s"),
                "pattern": sp.get("pattern"),
                "regions_with_fasciculations": list(sp.get("regions_with_fasciculations", [])),
                "n_regions_with_fasciculations": len(sp.get("regions_with_fasciculations", [])),
                "bilateral": sp.get("bilateral"),
                "n_sites_examined": len(sites),
                "cramp_count": n_cramps,
                "cramps_per_hour": _num(n_cramps / hours) if hours > 0 else None,
                "cramp_total_s": _num(sum(x.get("cramp_total_s") or 0 for x in sites), 3),
            }
        )
        if v["events"] is not None:
            ev = v["events"]
            for x in sites:
                n = int(
                    (
                        (ev["trial_type"] == "fasciculation")
                        & (ev["site"] == x["site"])
                        & (ev["side"] == x["side"])
                    ).sum()
                )
                if n != x["fasciculation_count"]:
                    warnings.append(
                        f"visit {i} ({v['label']}): events.tsv has {n} fasciculations at "
                        f"{x['site']} {x['side']} but summary.json says "
                        f"{x['fasciculation_count']}; using summary.json"
                    )
        for w in s.get("warnings", []):
            if "rest observed" in w:
                warnings.append(f"visit {i}: {w}")

    keys: list[tuple[str, str]] = []
    for v in visits:
        for x in v["summary"]["sites"]:
            if (x["site"], x["side"]) not in keys:
                keys.append((x["site"], x["side"]))
    site_docs = []
    new_events: dict[int, dict] = {}
    for site, side in keys:
        rows = []
        region = "unknown"
        for v in visits:
            x = next(
                (r for r in v["summary"]["sites"] if (r["site"], r["side"]) == (site, side)), None
            )
            if x is None:
                rows.append({"examined": False, "status": "not_examined"})
                continue
            region = x["region"]
            rows.append(
                {
                    "examined": True,
                    "status": _status(x),
                    "rest_s": x.get("rest_s"),
                    "fasciculation_count": x["fasciculation_count"],
                    "fasciculation_rate_per_min": x.get("fasciculation_rate_per_min"),
                    "fasciculation_rate_ci95_per_min": x.get(
                        "fasciculation_rate_ci95_per_min", [None, None]
                    ),
                    "amplitude_uv_median": x.get("amplitude_uv_median"),
                    "cramp_count": x["cramp_count"],
                    "cramps_per_hour": x.get("cramps_per_hour"),
                }
            )
        changes = []
        for k in range(1, len(rows)):
            a, b = rows[k - 1], rows[k]
            if not (a["examined"] and b["examined"]):
                changes.append(None)
                continue
            ra, rb = a["fasciculation_rate_per_min"], b["fasciculation_rate_per_min"]
            p = rate_change_p(
                a["fasciculation_count"],
                a["rest_s"] or 0,
                b["fasciculation_count"],
                b["rest_s"] or 0,
            )
            changes.append(
                {
                    "from_visit": k,
                    "to_visit": k + 1,
                    "rate_ratio": _num(rb / ra) if ra and rb is not None else None,
                    "rate_difference_per_min": _num(rb - ra)
                    if ra is not None and rb is not None
                    else None,
                    "p_value": _num(p),
                }
            )
        statuses = [r["status"] for r in rows]
        newly = _new_involvement(statuses)
        label = site if side in ("n/a", "") else f"{site} {side}"
        for n in newly:
            _note_newly(new_events, n, "sites", label)
        site_docs.append(
            {
                "site": site,
                "side": side,
                "region": region,
                "label": label,
                "visits": rows,
                "changes": changes,
                "newly_involved": newly,
            }
        )

    region_docs = []
    for r in (
        *REGIONS,
        *(["unknown"] if any(d["region"] not in REGIONS for d in site_docs) else []),
    ):
        statuses = []
        for v in visits:
            row = next((x for x in v["summary"].get("regions", []) if x["region"] == r), None)
            statuses.append(row["status"] if row else "not_examined")
        newly = _new_involvement(statuses)
        for n in newly:
            _note_newly(new_events, n, "regions", r)
        region_docs.append({"region": r, "statuses": statuses, "newly_involved": newly})

    return {
        "schema_version": LONGITUDINAL_SCHEMA_VERSION,
        "emgtool_version": __version__,
        "visit_order": order,
        "visits": vrows,
        "sites": site_docs,
        "regions": region_docs,
        "new_involvement": [new_events[k] for k in sorted(new_events)],
        "warnings": warnings,
    }


# ---------------------------------------------------------------------- HTML
def _trend_figure(doc: dict):
    from matplotlib.collections import LineCollection

    from emgtool.report.figures import STATUS_COLORS, new_figure

    sites = doc["sites"]
    nv = len(doc["visits"])
    ncol = min(4, max(len(sites), 1))
    nrow = max(1, int(np.ceil(len(sites) / ncol)))
    fig = new_figure(2.3 * ncol, 1.55 * nrow + 0.3)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_axis_off()
    for p, s in enumerate(sites):
        x0, y0 = (p % ncol), -(p // ncol)
        vals = [
            (i, r)
            for i, r in enumerate(s["visits"])
            if r.get("fasciculation_rate_per_min") is not None
        ]
        top = max([1.0] + [r["fasciculation_rate_ci95_per_min"][1] or 0 for _i, r in vals])

        def X(i, x0=x0):
            return x0 + 0.12 + 0.76 * (i / max(nv - 1, 1))

        def Y(v, y0=y0, top=top):
            return y0 + 0.12 + 0.62 * v / top

        ax.plot([x0 + 0.1, x0 + 0.9], [Y(0), Y(0)], color="#999999", lw=0.5)
        segs = [
            [
                (X(i), Y(r["fasciculation_rate_ci95_per_min"][0] or 0)),
                (X(i), Y(r["fasciculation_rate_ci95_per_min"][1] or 0)),
            ]
            for i, r in vals
        ]
        if segs:
            ax.add_collection(LineCollection(segs, colors="#555555", linewidths=1.2))
            ax.plot(
                [X(i) for i, _r in vals],
                [Y(r["fasciculation_rate_per_min"]) for _i, r in vals],
                color="#34495e",
                lw=0.8,
            )
        for i, r in vals:
            ax.plot(
                [X(i)],
                [Y(r["fasciculation_rate_per_min"])],
                "o",
                ms=4,
                color=STATUS_COLORS.get(r["status"], "#555555"),
            )
        for i, r in enumerate(s["visits"]):
            if not r["examined"]:
                ax.text(X(i), Y(0) + 0.03, "×", ha="center", fontsize=7, color="#999999")
            ax.text(X(i), y0 + 0.03, str(i + 1), ha="center", fontsize=5.5)
        ax.text(
            x0 + 0.5, y0 + 0.86, f"{s['label']}  (max {top:.1f}/min)", ha="center", fontsize=6.5
        )
    ax.set_xlim(0, ncol)
    ax.set_ylim(-(nrow - 1) - 0.02, 1.0)
    return fig


def _region_figure(doc: dict):
    from matplotlib.patches import Rectangle

    from emgtool.report.figures import new_figure

    regions = [r["region"] for r in doc["regions"]]
    nv = len(doc["visits"])
    colors = {
        "involved": "#c0392b",
        "not_involved": "#2e86c1",
        "insufficient": "#bbbbbb",
        "not_examined": "#ffffff",
    }
    fig = new_figure(1.6 + 0.7 * nv, 0.6 + 0.35 * len(regions))
    ax = fig.add_axes((0.3, 0.2, 0.68, 0.75))
    for j, r in enumerate(doc["regions"]):
        for i, st in enumerate(r["statuses"]):
            ax.add_patch(
                Rectangle(
                    (i, len(regions) - 1 - j),
                    0.95,
                    0.9,
                    facecolor=colors.get(st, "#ffffff"),
                    edgecolor="#666666",
                    lw=0.5,
                )
            )
    ax.set_xlim(0, nv)
    ax.set_ylim(0, len(regions))
    ax.set_xticks(np.arange(nv) + 0.47)
    ax.set_xticklabels([f"visit {v['visit']}" for v in doc["visits"]], fontsize=7)
    ax.set_yticks(np.arange(len(regions)) + 0.45)
    ax.set_yticklabels(list(reversed(regions)), fontsize=7)
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)
    return fig


def _cramp_figure(doc: dict):
    from emgtool.report.figures import new_figure

    v = doc["visits"]
    fig = new_figure(1.8 + 0.6 * len(v), 2.2)
    ax = fig.add_axes((0.2, 0.2, 0.75, 0.7))
    vals = [x["cramps_per_hour"] or 0 for x in v]
    ax.bar(range(len(v)), vals, color="#e67e22")
    for i, x in enumerate(v):
        ax.text(i, vals[i], str(x["cramp_count"]), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(v)))
    ax.set_xticklabels([f"visit {x['visit']}" for x in v], fontsize=7)
    ax.set_ylabel("site-cramps / hour", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title("Cramps per hour (count above bar)", fontsize=8, loc="left")
    return fig


def render_longitudinal(doc: dict) -> str:
    """Self-contained ``longitudinal.html`` for a :func:`compare` document."""
    from emgtool.report.figures import to_data_uri
    from emgtool.report.html import CSS, DISCLAIMER, E, fmt

    def fig(f, name, caption):
        return (
            f'<figure data-figure="{name}"><img src="{to_data_uri(f)}" alt="{E(caption)}">'
            f"<figcaption>{E(caption)}</figcaption></figure>"
        )

    vh = "".join(
        f"<th>{E(h)}</th>"
        for h in (
            "visit",
            "folder",
            "duration (s)",
            "pattern",
            "regions with fasciculations",
            "bilateral",
            "cramps",
            "cramps / h",
        )
    )
    vr = "".join(
        f'<tr data-visit="{v["visit"]}"><td>{v["visit"]}</td><td>{E(v["label"])}</td>'
        f'<td class="num">{fmt(v["duration_s"], 1)}</td><td data-key="pattern">{E(v["pattern"] or "")}</td>'
        f'<td data-key="regions_with_fasciculations">{E(fmt(v["regions_with_fasciculations"]))}</td>'
        f'<td>{fmt(v["bilateral"])}</td><td class="num">{v["cramp_count"]}</td>'
        f'<td class="num">{fmt(v["cramps_per_hour"], 2)}</td></tr>'
        for v in doc["visits"]
    )
    new = doc["new_involvement"]
    if new:
        items = ""
        for n in new:
            parts = []
            if n["regions"]:
                parts.append("regions newly involved: " + ", ".join(n["regions"]))
            if n["sites"]:
                parts.append("sites newly involved: " + ", ".join(n["sites"]))
            if n["regions_first_assessed"] or n["sites_first_assessed"]:
                parts.append(
                    "involved when first adequately examined (not evidence of spread): "
                    + ", ".join(n["regions_first_assessed"] + n["sites_first_assessed"])
                )
            items += (
                f'<li data-visit="{n["visit"]}">visit {n["visit"]}: {E("; ".join(parts))}</li>'
            )
        newhtml = f'<ul class="new-involvement">{items}</ul>'
    else:
        newhtml = "<p>No site or region became involved after the first visit.</p>"
    nv = len(doc["visits"])
    sh = "<th>site</th>" + "".join(f"<th>visit {i + 1}: FP/min (95 % CI)</th>" for i in range(nv))
    sr = ""
    for s in doc["sites"]:
        cells = ""
        for r in s["visits"]:
            if not r["examined"]:
                cells += "<td>not examined</td>"
            else:
                cells += (
                    f'<td class="num {E(r["status"])}">{fmt(r["fasciculation_rate_per_min"], 2)} '
                    f"({fmt(r['fasciculation_rate_ci95_per_min'], 2)})</td>"
                )
        sr += f'<tr data-site="{E(s["label"])}"><td>{E(s["label"])}</td>{cells}</tr>'
    ws = doc["warnings"]
    whtml = (
        "<p>None.</p>"
        if not ws
        else '<ul class="warnings">' + "".join(f"<li>{E(w)}</li>" for w in ws) + "</ul>"
    )
    order = (
        "recording start time"
        if doc["visit_order"] == "start_time"
        else "the order the folders were given (no recording start times available)"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>emgtool longitudinal report</title><style>{CSS}</style></head><body><main>"
        "<h1>Fasciculations and cramps over visits</h1>"
        f'<p class="disclaimer" id="disclaimer"><b>Not a diagnosis.</b> {E(DISCLAIMER)}</p>'
        f'<section id="visits"><h2>Visits</h2><p>Ordered by {E(order)}.</p>'
        f"<table>{'<tr>' + vh + '</tr>'}{vr}</table></section>"
        f'<section id="spread"><h2>Spread over time</h2>{newhtml}'
        + fig(
            _region_figure(doc),
            "regions",
            "Region status per visit: red involved, blue not "
            "involved, grey insufficient rest, white not examined.",
        )
        + "</section>"
        '<section id="trends"><h2>Rate per site over visits</h2>'
        + fig(
            _trend_figure(doc),
            "trends",
            "Fasciculations per minute of rest at each visit with "
            "95 % exact Poisson intervals (dot colour = status; × = not examined). "
            "Each panel has its own scale.",
        )
        + f'<div class="scroll"><table class="trend">{"<tr>" + sh + "</tr>"}{sr}</table></div></section>'
        f'<section id="cramps"><h2>Cramps over visits</h2>'
        + fig(
            _cramp_figure(doc),
            "cramps",
            "Cramps per hour of recording at each visit, summed over sites.",
        )
        + "</section>"
        f'<section id="warnings"><h2>Warnings ({len(ws)})</h2>{whtml}</section>'
        f"<footer><p>emgtool {E(doc['emgtool_version'])}.</p></footer></main></body></html>\n"
    )


def write_longitudinal(dirs: list[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Read the analysis folders, compare them, write ``longitudinal.json`` and ``.html``."""
    from emgtool.report import write_json_atomic, write_text_atomic

    visits = [load_visit(d) for d in dirs]
    doc = compare(visits)
    out_dir = Path(out_dir)
    return {
        "longitudinal_json": write_json_atomic(out_dir / "longitudinal.json", doc),
        "longitudinal_html": write_text_atomic(
            out_dir / "longitudinal.html", render_longitudinal(doc)
        ),
    }
