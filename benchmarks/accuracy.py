"""Accuracy benchmark: the detector against the simulator's exact ground truth.

Every simulator scenario x SNR (0, 3, 6, 12, 20 dB) x nuisance set is
simulated, analysed with :func:`emgtool.pipeline.analyze.analyze` and scored
with :func:`emgtool.scoring.evaluate` (fasciculation: detected onset within
the true span +-15 ms; cramp: IoU >= 0.5; one to one per site).

Nuisance sets (background pink + white noise is always on, it sets the SNR):

- ``none``: background noise only;
- ``mains+ecg+motion``: 50 Hz mains with harmonics, ECG on trunk/proximal
  channels, electrode-motion artefacts common to many channels;
- ``all``: every simulator nuisance (also baseline wander), 60 Hz mains,
  plus one flat (disconnected) and one intermittently clipped channel.

Run from the repository root::

    python benchmarks/accuracy.py            # full: 10-min recordings (~15-30 min)
    python benchmarks/accuracy.py --quick    # 1-min recordings (a few minutes)

It prints a table, writes ``benchmarks/results/accuracy.json`` (or
``accuracy-quick.json``) and rewrites the table in ``docs/accuracy.md``
between its markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from _common import json_safe, replace_marked_block  # noqa: E402

SNRS_DB = (0.0, 3.0, 6.0, 12.0, 20.0)
BACKGROUND = ("pink", "white")
NUISANCE_SETS = {
    "none": {"nuisances": set(BACKGROUND), "mains_hz": 50.0},
    "mains+ecg+motion": {"nuisances": {*BACKGROUND, "mains", "ecg", "motion"}, "mains_hz": 50.0},
    "all": {
        "nuisances": "default",
        "mains_hz": 60.0,
        "flat_channel": True,
        "clipped_channel": True,
    },
}
#: Nuisance sets that include mains, ECG and motion (the targets' condition).
WITH_NUISANCES = ("mains+ecg+motion", "all")
TARGET = {
    "fasc_sensitivity": 0.95,
    "fasc_precision": 0.95,
    "fasc_min_snr_db": 6.0,
    "healthy_false_fasc_per_channel_hour": 1.0,
    "cramp_sensitivity": 0.95,
    "cramp_precision": 0.95,
    "cramp_boundary_s": 0.5,
}
MARK_START = "<!-- accuracy-table:start -->"
MARK_END = "<!-- accuracy-table:end -->"


# --------------------------------------------------------------------------- one run
def run_case(case: dict) -> dict:
    """Simulate, analyse and score one (scenario, SNR, nuisance set)."""
    warnings.simplefilter("ignore")
    from emgtool.config import load_config
    from emgtool.pipeline.analyze import analyze
    from emgtool.scoring import evaluate, match_events
    from emgtool.simulate import simulate

    out = dict(case)
    try:
        t0 = time.perf_counter()
        rec, truth = simulate(
            case["scenario"],
            duration_s=case["duration_s"],
            seed=case["seed"],
            snr_db=case["snr_db"],
            **NUISANCE_SETS[case["nuisances"]],
        )
        t1 = time.perf_counter()
        an = analyze(rec, config=load_config(case.get("config")))
        t2 = time.perf_counter()
        res = evaluate(an.events, truth, duration_s=rec.duration_s, n_channels=rec.n_channels)
        m = match_events(an.events, truth)
        pairs = m.pairs["cramp"]
        if len(pairs):
            d = an.events.iloc[pairs[:, 0]]
            t = truth.iloc[pairs[:, 1]]
            on = np.abs(d["onset"].to_numpy() - t["onset"].to_numpy())
            off = np.abs(
                (d["onset"] + d["duration"]).to_numpy() - (t["onset"] + t["duration"]).to_numpy()
            )
            within = int(
                np.sum((on <= TARGET["cramp_boundary_s"]) & (off <= TARGET["cramp_boundary_s"]))
            )
        else:
            within = 0
        out.update(
            n_channels=rec.n_channels,
            n_samples=rec.n_samples,
            simulate_s=t1 - t0,
            analyze_s=t2 - t1,
            fasciculation=res["fasciculation"]["overall"],
            cramp=res["cramp"]["overall"],
            cramp_matched_within_boundary=within,
            checks=res["checks"],
            sites={
                k: res["fasciculation"]["sites"][k] for k in sorted(res["fasciculation"]["sites"])
            },
            detected_kinds={
                str(k): int(v) for k, v in an.events["trial_type"].value_counts().items()
            },
            error=None,
        )
    except Exception as e:  # record and go on: one broken case must not hide the others
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def make_cases(duration_s: float, scenarios, snrs, sets) -> list[dict]:
    cases = []
    for i, scn in enumerate(scenarios):
        for j, snr in enumerate(snrs):
            for k, nz in enumerate(sets):
                cases.append(
                    {
                        "scenario": scn,
                        "snr_db": float(snr),
                        "nuisances": nz,
                        "duration_s": float(duration_s),
                        "seed": 1000 + 100 * i + 10 * j + k,
                    }
                )
    return cases


# --------------------------------------------------------------------------- summary
def _nan(v) -> float:
    return float("nan") if v is None else float(v)


def _pool(rows: list[dict], kind: str) -> dict:
    tp = sum(r[kind]["tp"] for r in rows)
    fp = sum(r[kind]["fp"] for r in rows)
    fn = sum(r[kind]["fn"] for r in rows)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
    }


def check_targets(rows: list[dict]) -> dict:
    """Pass/fail of each target of the detection issue over the runs."""
    ok = [r for r in rows if not r.get("error")]
    out: dict = {"errors": len(rows) - len(ok)}
    # 1. Fasciculations at SNR >= 6 dB with mains, ECG and motion, every scenario with FPs.
    cond = [
        r
        for r in ok
        if r["snr_db"] >= TARGET["fasc_min_snr_db"]
        and r["nuisances"] in WITH_NUISANCES
        and r["fasciculation"]["n_true"] > 0
    ]
    worst_sens = min((_nan(r["fasciculation"]["sensitivity"]) for r in cond), default=float("nan"))
    worst_prec = min((_nan(r["fasciculation"]["precision"]) for r in cond), default=float("nan"))
    out["fasc_every_run_snr_ge_6_with_nuisances"] = {
        "runs": len(cond),
        "worst_sensitivity": worst_sens,
        "worst_precision": worst_prec,
        "pooled": _pool(cond, "fasciculation") if cond else None,
        "pass": bool(cond)
        and worst_sens >= TARGET["fasc_sensitivity"]
        and worst_prec >= TARGET["fasc_precision"],
    }
    # 2. Healthy recordings with nuisances: false fasciculations per channel-hour.
    healthy = [r for r in ok if r["scenario"] == "healthy" and r["nuisances"] in WITH_NUISANCES]
    fp = sum(r["fasciculation"]["fp"] for r in healthy)
    ch_h = sum(r["n_channels"] * r["duration_s"] / 3600.0 for r in healthy)
    worst = max(
        (_nan(r["checks"]["false_fasc_per_channel_hour"]) for r in healthy), default=float("nan")
    )
    out["healthy_false_fasc_per_channel_hour"] = {
        "runs": len(healthy),
        "false_fasciculations": fp,
        "channel_hours": ch_h,
        "pooled": fp / ch_h if ch_h else float("nan"),
        "worst_run": worst,
        "pass": bool(healthy) and (fp / ch_h) <= TARGET["healthy_false_fasc_per_channel_hour"],
    }
    # 3. Cramps: pooled sensitivity/precision, boundaries within 0.5 s.
    cr = [r for r in ok if r["cramp"]["n_true"] > 0 or r["cramp"]["n_detected"] > 0]
    pooled = _pool(cr, "cramp") if cr else None
    within = sum(r["cramp_matched_within_boundary"] for r in cr)
    matched = sum(r["cramp"]["tp"] for r in cr)
    max_on = max(
        (_nan(r["cramp"]["onset_error_max_s"]) for r in cr if r["cramp"]["tp"]),
        default=float("nan"),
    )
    max_off = max(
        (_nan(r["cramp"]["offset_error_max_s"]) for r in cr if r["cramp"]["tp"]),
        default=float("nan"),
    )
    out["cramps"] = {
        "runs": len(cr),
        "pooled": pooled,
        "matched": matched,
        "matched_within_0_5_s": within,
        "max_onset_error_s": max_on,
        "max_offset_error_s": max_off,
        "pass": bool(pooled)
        and pooled["tp"] + pooled["fn"] > 0
        and pooled["sensitivity"] >= TARGET["cramp_sensitivity"]
        and _nan(pooled["precision"]) >= TARGET["cramp_precision"]
        and within == matched,
    }
    # 4. No fasciculation counted inside a (true) cramp or voluntary span.
    inside = sum(r["checks"]["fasciculations_in_sustained"] for r in ok)
    out["fasc_inside_sustained"] = {"count": inside, "pass": inside == 0}
    arts = sum(r["checks"]["artifacts_detected_as_fasciculation"] for r in ok)
    out["artifacts_detected_as_fasciculation"] = {
        "count": arts,
        "true_artifacts": sum(r["checks"]["true_artifacts"] for r in ok),
    }
    return out


# --------------------------------------------------------------------------- display
def _f(v, d: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{d}f}"


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = [
        "scenario",
        "SNR dB",
        "nuisances",
        "fasc true",
        "fasc sens",
        "fasc prec",
        "fasc F1",
        "cramps",
        "cramp sens",
        "cramp prec",
        "onset err med/max s",
        "offset err med/max s",
        "false fasc /ch·h",
        "fasc in sustained",
    ]
    body = []
    for r in rows:
        if r.get("error"):
            body.append(
                [r["scenario"], _f(r["snr_db"], 0), r["nuisances"], "error: " + r["error"][:60]]
                + [""] * (len(head) - 4)
            )
            continue
        f, c, k = r["fasciculation"], r["cramp"], r["checks"]
        body.append(
            [
                r["scenario"],
                _f(r["snr_db"], 0),
                r["nuisances"],
                str(f["n_true"]),
                _f(f["sensitivity"], 3),
                _f(f["precision"], 3),
                _f(f["f1"], 3),
                str(c["n_true"]),
                _f(c["sensitivity"]),
                _f(c["precision"]),
                f"{_f(c['onset_error_median_s'])}/{_f(c['onset_error_max_s'])}",
                f"{_f(c['offset_error_median_s'])}/{_f(c['offset_error_max_s'])}",
                _f(k["false_fasc_per_channel_hour"], 1),
                str(k["fasciculations_in_sustained"]),
            ]
        )
    return head, body


def text_table(head, body) -> str:
    w = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(x) for c, x in zip(cells, w, strict=False))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * x for x in w), *(line(b) for b in body)])


def markdown_table(head, body) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(out)


def targets_markdown(t: dict) -> str:
    def mark(ok: bool) -> str:
        return "**pass**" if ok else "**FAIL**"

    f, h, c, s = (
        t["fasc_every_run_snr_ge_6_with_nuisances"],
        t["healthy_false_fasc_per_channel_hour"],
        t["cramps"],
        t["fasc_inside_sustained"],
    )
    pc = c["pooled"] or {}
    lines = [
        "| Target | Measured | |",
        "|---|---|---|",
        f"| Fasciculation sensitivity ≥ 0.95 and precision ≥ 0.95 in every run at SNR ≥ 6 dB "
        f"with mains, ECG and motion ({f['runs']} runs) | worst sensitivity {_f(f['worst_sensitivity'], 3)}, "
        f"worst precision {_f(f['worst_precision'], 3)}"
        + (
            f"; pooled {_f(f['pooled']['sensitivity'], 3)} / {_f(f['pooled']['precision'], 3)}"
            if f["pooled"]
            else ""
        )
        + f" | {mark(f['pass'])} |",
        f"| ≤ 1 false fasciculation per channel-hour on `healthy` with nuisances ({h['runs']} runs, "
        f"{_f(h['channel_hours'], 1)} channel-hours) | {h['false_fasciculations']} false → "
        f"{_f(h['pooled'])} per channel-hour (worst run {_f(h['worst_run'])}) | {mark(h['pass'])} |",
        f"| Cramp sensitivity and precision ≥ 0.95, onset and offset within 0.5 s ({c['runs']} runs) | "
        f"sensitivity {_f(pc.get('sensitivity'), 3)}, precision {_f(pc.get('precision'), 3)}; "
        f"{c['matched_within_0_5_s']} of {c['matched']} matched cramps within 0.5 s "
        f"(max onset error {_f(c['max_onset_error_s'])} s, max offset error {_f(c['max_offset_error_s'])} s) "
        f"| {mark(c['pass'])} |",
        f"| No fasciculation counted inside a true cramp or voluntary span | {s['count']} "
        f"| {mark(s['pass'])} |",
    ]
    a = t["artifacts_detected_as_fasciculation"]
    lines.append("")
    lines.append(
        f"True artefacts (motion, flat, clipped) with a false fasciculation on them: {a['count']} "
        f"of {a['true_artifacts']}.  Runs that failed with an error: {t['errors']}."
    )
    return "\n".join(lines)


def curve_markdown(rows: list[dict]) -> str:
    """Fasciculation sensitivity / precision pooled over scenarios, per SNR and nuisance set."""
    ok = [r for r in rows if not r.get("error")]
    snrs = sorted({r["snr_db"] for r in ok})
    sets = [s for s in NUISANCE_SETS if any(r["nuisances"] == s for r in ok)]
    head = ["SNR dB", *sets]
    body = []
    for snr in snrs:
        cells = [f"{snr:g}"]
        for nz in sets:
            sel = [r for r in ok if r["snr_db"] == snr and r["nuisances"] == nz]
            p = _pool(sel, "fasciculation") if sel else None
            cells.append(f"{_f(p['sensitivity'], 3)} / {_f(p['precision'], 3)}" if p else "–")
        body.append(cells)
    return markdown_table(head, body)


def update_docs(doc: Path, meta: dict, targets: dict, head, body, rows: list[dict]) -> None:
    block = "\n".join(
        [
            MARK_START,
            "",
            f"Measured {meta['date']} by `{meta['command']}` (emgtool {meta['version']}, "
            f"{meta['duration_s']:g}-s recordings, {meta['n_runs']} runs, "
            f"{meta['wall_s'] / 60:.1f} min on {meta['cpus']} CPUs).",
            "",
            targets_markdown(targets),
            "",
            "Fasciculation sensitivity / precision pooled over all scenarios, by SNR and nuisance set:",
            "",
            curve_markdown(rows),
            "",
            "Every run (sensitivity, precision and F1 per run; cramp onset/offset errors in seconds, "
            "median/max over matched cramps; false fasciculations per channel-hour counts every "
            "unmatched fasciculation):",
            "",
            markdown_table(head, body),
            "",
            MARK_END,
        ]
    )
    replace_marked_block(doc, block, MARK_START, MARK_END)


def main(argv: list[str] | None = None) -> int:
    from emgtool._version import __version__
    from emgtool.simulate import SCENARIOS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1-min recordings instead of 10-min")
    p.add_argument("--duration", type=float, help="recording length in s (overrides --quick)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list")
    p.add_argument("--snrs", default=",".join(f"{s:g}" for s in SNRS_DB), help="comma list, dB")
    p.add_argument("--nuisances", default=",".join(NUISANCE_SETS), help="comma list of sets")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes")
    p.add_argument(
        "--out", type=Path, help="JSON output (default benchmarks/results/accuracy[-quick].json)"
    )
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/accuracy.md")
    p.add_argument(
        "--config",
        help="detector configuration TOML (as `emgtool analyze --config`); implies --no-docs",
    )
    args = p.parse_args(argv)
    if args.config:
        args.no_docs = True  # the docs keep the defaults' table
    duration = args.duration or (60.0 if args.quick else 600.0)
    sets = [s.strip() for s in args.nuisances.split(",") if s.strip()]
    unknown = [s for s in sets if s not in NUISANCE_SETS]
    if unknown:
        p.error(f"unknown nuisance set(s) {unknown}; choose from {list(NUISANCE_SETS)}")
    cases = make_cases(
        duration,
        [s.strip() for s in args.scenarios.split(",") if s.strip()],
        [float(s) for s in args.snrs.split(",") if s.strip()],
        sets,
    )
    for c in cases:
        c["config"] = args.config
    t0 = time.perf_counter()
    rows: list[dict] = []
    print(f"{len(cases)} runs of {duration:g} s with {args.jobs} process(es)", file=sys.stderr)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            for r in ex.map(run_case, cases):
                rows.append(r)
                _progress(r, len(rows), len(cases))
    else:
        for c in cases:
            rows.append(run_case(c))
            _progress(rows[-1], len(rows), len(cases))
    wall = time.perf_counter() - t0
    targets = check_targets(rows)
    head, body = table_rows(rows)
    print(text_table(head, body))
    print()
    print(targets_markdown(targets))
    print()
    print(curve_markdown(rows))
    quick = args.duration is None and args.quick
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/accuracy.py"
        + (" --quick" if quick else "")
        + (f" --duration {args.duration:g}" if args.duration else ""),
        "version": __version__,
        "duration_s": duration,
        "n_runs": len(rows),
        "wall_s": wall,
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "targets": TARGET,
        "nuisance_sets": {
            k: {kk: sorted(vv) if isinstance(vv, set) else vv for kk, vv in v.items()}
            for k, v in NUISANCE_SETS.items()
        },
    }
    out = args.out or ROOT / "benchmarks" / "results" / (
        "accuracy-quick.json" if quick else "accuracy.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(json_safe({"meta": meta, "targets": targets, "runs": rows}), indent=1) + "\n"
    )
    print(f"\nwrote {out}", file=sys.stderr)
    if not args.no_docs:
        update_docs(ROOT / "docs" / "accuracy.md", meta, targets, head, body, rows)
        print(f"updated {ROOT / 'docs' / 'accuracy.md'}", file=sys.stderr)
    return 0


def _progress(r: dict, i: int, n: int) -> None:
    if r.get("error"):
        msg = r["error"][:80]
    else:
        f = r["fasciculation"]
        msg = (
            f"fasc sens {_f(f['sensitivity'], 3)} prec {_f(f['precision'], 3)}; "
            f"analyze {r['analyze_s']:.1f} s"
        )
    print(
        f"[{i}/{n}] {r['scenario']} {r['snr_db']:g} dB {r['nuisances']}: {msg}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
