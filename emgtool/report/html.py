"""``report.html``: one self-contained page (inline CSS, inline PNG figures, no JS).

Every number shown comes from the summary dict, and key cells carry
``data-key`` (and ``data-value``, the exact JSON value) attributes so tests
and scripts can read them back.  A Content-Security-Policy forbids any
network request, so the page behaves the same offline.  All text from the
input (labels, warnings, config values) is HTML-escaped.
"""

from __future__ import annotations

import html
import json

from emgtool.report import figures
from emgtool.report.bodymap import bodymap_figure

__all__ = ["render_report", "DISCLAIMER"]

DISCLAIMER = (
    "emgtool is a research tool. This report describes signals detected in a surface-EMG "
    "recording; it is not a diagnosis and must not be used on its own for clinical decisions. "
    "Fasciculations also occur in healthy people, and the spread pattern is not a diagnostic "
    "criterion."
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;
color:#1b2631;background:#fff;line-height:1.4}
main{max-width:1100px;margin:0 auto;padding:1em 1.5em 3em}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;border-bottom:2px solid #d5dbdb;
padding-bottom:.2em;margin-top:1.8em}h3{font-size:1em}
.disclaimer{background:#fdf2e9;border-left:5px solid #e67e22;padding:.6em 1em;margin:1em 0}
.warnings li{color:#9a3412}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #d5dbdb;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}table.sites{font-size:.78em}
tr.involved td:first-child{border-left:4px solid #c0392b}
tr.insufficient td{color:#777}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.pattern{font-size:1.3em;font-weight:bold}
.kv th{width:16em}
code{background:#f4f6f6;padding:0 .2em}
nav a{margin-right:.8em;font-size:.9em}
"""

SITE_COLUMNS = [
    # (key, header, decimals)
    ("rest_s", "rest (s)", 1),
    ("fasciculation_count", "FP count", 0),
    ("fasciculation_rate_per_min", "FP / min", 2),
    ("fasciculation_rate_ci95_per_min", "95 % CI", 2),
    ("status", "status", None),
    ("amplitude_uv_median", "amp. median (µV)", 1),
    ("amplitude_uv_iqr", "amp. IQR (µV)", 1),
    ("duration_ms_median", "dur. median (ms)", 1),
    ("phases_median", "phases median", 1),
    ("polyphasic_pct", "% polyphasic", 1),
    ("doublet_pct", "% doublets", 1),
    ("isolated_pct", "% isolated", 1),
    ("n_shapes", "shapes", 0),
    ("ifi_median_ms", "IFI median (ms)", 0),
    ("ifi_iqr_ms", "IFI IQR (ms)", 0),
    ("ifi_count", "IFIs", 0),
    ("cramp_count", "cramps", 0),
    ("cramps_per_hour", "cramps / h", 2),
    ("cramp_total_s", "cramp total (s)", 1),
    ("cramp_longest_s", "longest cramp (s)", 1),
    ("quality_flags", "quality", None),
]

E = html.escape


def fmt(value, decimals: int | None = 2) -> str:
    """Display form of a summary value (``n/a`` for null)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if len(value) == 2 and all(isinstance(v, (int, float)) or v is None for v in value):
            return f"{fmt(value[0], decimals)}–{fmt(value[1], decimals)}"
        return ", ".join(str(v) for v in value) if value else "–"
    if isinstance(value, (int, float)) and decimals is not None:
        return f"{value:.{decimals}f}" if decimals else f"{round(value):d}"
    return str(value)


def _cell(key: str, value, decimals, cls: str = "num") -> str:
    raw = E(json.dumps(value, ensure_ascii=False), quote=True)
    return (
        f'<td class="{cls}" data-key="{E(key)}" data-value="{raw}">{E(fmt(value, decimals))}</td>'
    )


def _kv_table(rows: list[tuple[str, str, object, int | None]], cls: str = "kv") -> str:
    body = "".join(
        f"<tr><th>{E(label)}</th>{_cell(key, val, dec, 'val')}</tr>"
        for label, key, val, dec in rows
    )
    return f'<table class="{cls}">{body}</table>'


def _figure(fig, name: str, caption: str, alt: str) -> str:
    if fig is None:
        return ""
    uri = figures.to_data_uri(fig)
    return (
        f'<figure data-figure="{E(name)}"><img src="{uri}" alt="{E(alt)}">'
        f"<figcaption>{E(caption)}</figcaption></figure>"
    )


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{E(title)}</h2>{body}</section>'


def _recording_section(summary: dict) -> str:
    r = summary["recording"]
    rows = [
        ("recording id (pseudonymous)", "recording.recording_id", r["recording_id"], None),
        ("duration (s)", "recording.duration_s", r["duration_s"], 1),
        ("sampling rate (Hz)", "recording.fs", r["fs"], 1),
        ("channels", "recording.n_channels", r["n_channels"], 0),
        ("sites", "recording.n_sites", r["n_sites"], 0),
        ("format", "recording.format", r.get("format"), None),
        ("gaps (total s)", "recording.gap_total_s", r.get("gap_total_s"), 2),
        ("mains (Hz)", "recording.mains_hz", r.get("mains_hz"), 0),
    ]
    if r.get("start_time"):
        rows.append(("start time", "recording.start_time", r["start_time"], None))
    if r.get("file"):
        rows.append(("file", "recording.file", r["file"], None))
    body = _kv_table(rows)
    ident = summary.get("identity")
    if ident:
        body += "<h3>Identity (kept on request)</h3>" + _kv_table(
            [(str(k), f"identity.{k}", v, None) for k, v in ident.items()]
        )
    return _section("recording", "Recording", body)


def _warnings_section(summary: dict) -> str:
    ws = summary.get("warnings", [])
    body = (
        "<p>None.</p>"
        if not ws
        else '<ul class="warnings">' + "".join(f"<li>{E(w)}</li>" for w in ws) + "</ul>"
    )
    return _section("warnings", f"Warnings ({len(ws)})", body)


def _spread_section(summary: dict, analysis) -> str:
    sp = summary["spread"]
    rule = summary["involvement_rule"]
    rows = [
        ("pattern", "spread.pattern", sp["pattern"], None),
        (
            "regions with fasciculations",
            "spread.regions_with_fasciculations",
            sp["regions_with_fasciculations"],
            None,
        ),
        (
            "number of regions",
            "spread.n_regions_with_fasciculations",
            sp["n_regions_with_fasciculations"],
            0,
        ),
        ("bilateral", "spread.bilateral", sp["bilateral"], None),
        (
            "sites with fasciculations",
            "spread.sites_with_fasciculations",
            sp["sites_with_fasciculations"],
            None,
        ),
        (
            "regions not adequately examined",
            "spread.regions_not_assessed",
            sp["regions_not_assessed"],
            None,
        ),
    ]
    body = (
        f'<p class="pattern">Pattern: <span data-key="spread.pattern">{E(sp["pattern"])}</span></p>'
        + _kv_table(rows)
        + f"<p>A site counts as <em>involved</em> when it shows at least {rule['min_count']} "
        f"fasciculations and the lower bound of its 95 % exact Poisson interval exceeds "
        f"{rule['background_rate_per_min']:g}/min; a site with less than "
        f"{rule['min_rest_s']:g} s of rest that is not involved is <em>insufficient</em> "
        "(it cannot be called free). Patterns: <b>none</b> (no involved site), "
        "<b>focal</b> (one region), <b>multifocal</b> (two regions, not both bilateral), "
        "<b>widespread</b> (three or more regions, or two regions each involved on both "
        "sides).</p>"
    )
    rh = "".join(
        f"<th>{E(h)}</th>"
        for h in (
            "region",
            "status",
            "sites examined",
            "sites with fasciculations",
            "sides examined",
            "sides involved",
            "FP count",
            "cramps",
        )
    )
    rr = ""
    for r in summary["regions"]:
        rr += (
            f'<tr data-region="{E(r["region"])}"><td>{E(r["region"])}</td>'
            + _cell("status", r["status"], None, "val")
            + _cell("sites_examined", r["sites_examined"], None, "val")
            + _cell("sites_with_fasciculations", r["sites_with_fasciculations"], None, "val")
            + _cell("sides_examined", r["sides_examined"], None, "val")
            + _cell("sides_with_fasciculations", r["sides_with_fasciculations"], None, "val")
            + _cell("fasciculation_count", r["fasciculation_count"], 0)
            + _cell("cramp_count", r["cramp_count"], 0)
            + "</tr>"
        )
    body += f'<table class="regions"><tr>{rh}</tr>{rr}</table>'
    body += _figure(
        bodymap_figure(summary),
        "bodymap",
        "Body map (anatomical position: the subject's right is on the left). "
        "Disc colour = fasciculations per minute of rest; black ring = involved; "
        "grey ? = insufficient rest; dashed ring = common site not examined; "
        "red outline = region involved.",
        "Schematic body map coloured by rate",
    )
    return _section("spread", "Spread over body regions", body)


def _sites_section(summary: dict) -> str:
    head = "<th>site</th><th>side</th><th>region</th>" + "".join(
        f"<th>{E(h)}</th>" for _k, h, _d in SITE_COLUMNS
    )
    rows = ""
    for s in summary["sites"]:
        chans = ", ".join(s["channels"])
        if len(chans) > 60:
            chans = f"{len(s['channels'])} channels ({s['channels'][0]} …)"
        cells = "".join(
            _cell(k, s[k], d, "num" if d is not None else "val") for k, _h, d in SITE_COLUMNS
        )
        rows += (
            f'<tr class="site {E(s["status"])}" data-site="{E(s["site"])}" '
            f'data-side="{E(s["side"])}"><td data-key="site" title="channels: {E(chans)}">'
            f'{E(s["site"])}</td><td data-key="side">{E(s["side"])}</td>'
            f'<td data-key="region">{E(s["region"])}</td>{cells}</tr>'
        )
    body = (
        f'<div class="scroll"><table class="sites"><tr>{head}</tr>{rows}</table></div>'
        "<p>Hover over a site name to see its channels. Rates are per minute of artefact-free rest (<code>rest_s</code>); the interval is the "
        "exact (Garwood) 95 % Poisson interval. Inter-fasciculation intervals (IFI) that span "
        "excluded time (gaps, artefacts, voluntary activity, cramps) are not counted. "
        "Polyphasic: more than 4 phases. Doublets: % of potentials belonging to a "
        "doublet/multiplet (same shape repeating within 20 ms). Isolated: no other "
        "fasciculation within 250 ms on either side.</p>"
    )
    return _section("sites", "Sites", body)


def _quality_section(summary: dict, analysis) -> str:
    q = summary["quality"]
    body = "<h3>Excluded time (summed over sites), by reason</h3>"
    ex = q.get("excluded_s_by_reason", {})
    body += (
        "<p>None.</p>"
        if not ex
        else _kv_table([(k, f"quality.excluded_s_by_reason.{k}", v, 1) for k, v in ex.items()])
    )
    gaps = summary["recording"].get("gaps", [])
    body += f"<h3>Gaps ({len(gaps)})</h3>"
    if gaps:
        body += (
            "<table><tr><th>start (s)</th><th>stop (s)</th><th>duration (s)</th></tr>"
            + "".join(
                f'<tr><td class="num">{fmt(g["start_s"], 3)}</td><td class="num">{fmt(g["stop_s"], 3)}</td>'
                f'<td class="num">{fmt(g["duration_s"], 3)}</td></tr>'
                for g in gaps
            )
            + "</table>"
        )
    else:
        body += "<p>No gaps.</p>"
    body += (
        f'<p>Mains frequency: <span data-key="quality.mains_hz">'
        f"{E(fmt(q.get('mains_hz'), 0))}</span> Hz.</p>"
    )
    chans = q.get("channels", {})
    if chans:
        keys = sorted({k for v in chans.values() if isinstance(v, dict) for k in v})
        head = "<th>channel</th>" + "".join(f"<th>{E(k)}</th>" for k in keys)
        rows = ""
        for lab, v in chans.items():
            v = v if isinstance(v, dict) else {"value": v}
            rows += (
                f"<tr><td>{E(str(lab))}</td>"
                + "".join(f"<td>{E(fmt(v.get(k), 2))}</td>" for k in keys)
                + "</tr>"
            )
        body += f'<h3>Channels</h3><table class="channels"><tr>{head}</tr>{rows}</table>'
    body += _figure(
        figures.quality_figure(summary),
        "quality",
        "Rest time analysed and time excluded per site, by reason.",
        "Observation time per site",
    )
    return _section("quality", "Quality", body)


ALGORITHM_TEXT = (
    "The signal of each channel is band-pass filtered with causal filters and mains hum "
    "(50 or 60 Hz, found from the data) and its harmonics are removed. A robust running "
    "estimate of the noise (median absolute deviation) sets a detection threshold per channel, "
    "never below an absolute floor. Each potential that crosses it is measured (peak-to-peak "
    "amplitude, duration, phases, turns, area) and counted once per site, however many "
    "electrodes of that site saw it. Potentials that appear at the same instant on many "
    "distant sites (movement, electrical interference) or that follow the heartbeat (ECG) are "
    "rejected as artefacts. A smoothed envelope with two thresholds finds sustained activity; "
    "sustained involuntary activity of at least a few seconds confined to one or a few sites "
    "is a cramp, anything else is voluntary activity. Fasciculations are only counted during "
    "artefact-free rest, and rates are given per minute of that rest time. Waveforms of each "
    "site are clustered into shapes, a proxy for the number of motor units firing."
)


def _methods_section(summary: dict) -> str:
    cfg = summary.get("config", {})
    rows = "".join(
        f'<tr><th>{E(str(k))}</th><td data-key="config.{E(str(k))}">{E(json.dumps(v))}</td></tr>'
        for k, v in cfg.items()
    )
    rule = summary.get("involvement_rule", {})
    rrows = "".join(
        f"<tr><th>{E(str(k))}</th><td>{E(json.dumps(v))}</td></tr>" for k, v in rule.items()
    )
    body = (
        f"<p>{E(ALGORITHM_TEXT)}</p>"
        f'<p>emgtool version <span data-key="emgtool_version">{E(summary["emgtool_version"])}'
        f"</span>, algorithm version {E(str(summary.get('algorithm_version')))}, summary schema "
        f"{E(summary['schema_version'])}, configuration hash "
        f"<code>{E(str(summary.get('config_hash')))}</code>.</p>"
        f'<h3>Involvement rule</h3><table class="kv">{rrows}</table>'
        f'<h3>Detector parameters</h3><table class="kv config">{rows}</table>'
    )
    return _section("methods", "Methods and parameters", body)


def render_report(analysis, summary: dict) -> str:
    """Render the self-contained HTML report of one analysis.

    Parameters
    ----------
    analysis : Analysis
        For the event raster, cramp timeline and waveforms.
    summary : dict
        From :func:`emgtool.report.summary.summarize` (all numbers shown come from it).

    Returns
    -------
    str
        The complete HTML document.
    """
    rid = summary["recording"]["recording_id"]
    sections = [
        _recording_section(summary),
        _warnings_section(summary),
        _spread_section(summary, analysis),
        _sites_section(summary),
        _section(
            "raster",
            "Events over time",
            _figure(
                figures.raster_figure(analysis, summary),
                "raster",
                "Each row is a site: ticks are fasciculations, orange bars cramps, grey spans "
                "time not analysed (gaps, artefacts, voluntary activity, cramps).",
                "Event raster per site",
            ),
        ),
        _section(
            "rates",
            "Fasciculation rate per site",
            _figure(
                figures.rates_figure(summary),
                "rates",
                "Rate per minute of rest with its 95 % exact Poisson interval.",
                "Rate per site with 95 % intervals",
            ),
        ),
    ]
    cfig = figures.cramp_figure(analysis, summary)
    n_cramps = sum(s["cramp_count"] for s in summary["sites"])
    sections.append(
        _section(
            "cramps",
            f"Cramps ({n_cramps})",
            _figure(
                cfig,
                "cramps",
                "Cramps per site over time; labels give each cramp's duration.",
                "Cramp timeline",
            )
            if cfig is not None
            else "<p>No cramps detected.</p>",
        )
    )
    wfig = figures.waveforms_figure(analysis, summary)
    sections.append(
        _section(
            "waveforms",
            "Representative waveforms",
            _figure(
                wfig,
                "waveforms",
                "Filtered waveforms aligned on their peak, coloured by shape cluster; "
                "bold lines are the cluster means.",
                "Waveforms per site by shape",
            )
            if wfig is not None
            else "<p>No waveforms stored.</p>",
        )
    )
    sections.append(_quality_section(summary, analysis))
    sections.append(_methods_section(summary))
    nav = "".join(
        f'<a href="#{i}">{E(t)}</a>'
        for i, t in [
            ("recording", "Recording"),
            ("warnings", "Warnings"),
            ("spread", "Spread"),
            ("sites", "Sites"),
            ("raster", "Events"),
            ("rates", "Rates"),
            ("cramps", "Cramps"),
            ("waveforms", "Waveforms"),
            ("quality", "Quality"),
            ("methods", "Methods"),
        ]
    )
    disclaimer = (
        f'<p class="disclaimer" id="disclaimer"><b>Not a diagnosis.</b> {E(DISCLAIMER)}</p>'
    )
    footer_note = f'<p class="disclaimer"><b>Not a diagnosis.</b> {E(DISCLAIMER)}</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>emgtool report {E(rid)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>Fasciculation and cramp report</h1><nav>{nav}</nav>{disclaimer}"
        + "".join(sections)
        + f"<footer>{footer_note}"
        f"<p>Generated by emgtool {E(summary['emgtool_version'])}.</p></footer>"
        "</main></body></html>\n"
    )
