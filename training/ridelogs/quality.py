"""The data-quality report of one log: JSON for tools, one Markdown page for people.

What it checks: sample-rate jitter, gaps (intervals over twice the nominal one), GPS jumps
(fixes the import dropped), the laps found and which count (outlap / inlap / cut / valid),
channels the log lacks, and the features that are estimated rather than measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from motocoach.training.ridelogs.log import CHANNELS, RideLog
from motocoach.training.ridelogs.telemetry import LogTelemetry

GAP_FACTOR = 2.0


def quality_report(log: RideLog, tel: LogTelemetry) -> dict:
    """The report as a JSON-ready dict."""
    dt = np.diff(log.t)
    nominal = float(np.median(dt))
    lines = log.lines if log.lines is not None else np.arange(len(log)) + 1
    gap_idx = np.flatnonzero(dt > GAP_FACTOR * nominal)
    gaps = [{"at_s": round(float(log.t[i]), 3), "length_s": round(float(dt[i]), 3), "line": int(lines[i + 1])}
            for i in gap_idx]
    events = []
    if len(tel.jumps):
        runs = np.split(tel.jumps, np.flatnonzero(np.diff(tel.jumps) > 1) + 1)
        events = [{"at_s": round(float(log.t[r[0]]), 3), "fixes": int(len(r)), "line": int(lines[r[0]])} for r in runs]
    laps = [{"index": lp.index, "kind": lp.kind, "start_s": round(lp.start_t, 3), "time_s": round(lp.time_s, 3),
             **({"why": lp.why} if lp.why else {})} for lp in tel.laps]
    best = tel.best_lap
    return {
        "source": log.source, "format": log.fmt, "rows": len(log), "duration_s": round(float(log.t[-1]), 3),
        "rate_hz": round(1.0 / nominal, 3),
        "jitter": {"interval_median_ms": round(nominal * 1000, 3), "interval_std_ms": round(float(np.std(dt)) * 1000, 3),
                   "interval_p99_abs_dev_ms": round(float(np.percentile(np.abs(dt - nominal), 99)) * 1000, 3)},
        "gaps": {"count": len(gaps), "total_s": round(float(sum(g["length_s"] for g in gaps)), 3), "list": gaps},
        "gps_jumps": {"count": len(events), "fixes_dropped": int(len(tel.jumps)), "list": events},
        "laps": {"found": len(laps), "valid": sum(lp["kind"] == "valid" for lp in laps),
                 "best_valid_s": round(best.time_s, 3) if best else None, "list": laps},
        "track": {"name": getattr(tel.track, "name", ""), "length_m": round(float(tel.track.length_m), 1),
                  "source": getattr(tel.track, "source", "")},
        "missing_channels": [c for c in CHANNELS if not log.has(c)],
        "ignored_columns": list(log.extra),
        "estimated_features": dict(tel.estimated),
        "notes": list(tel.notes),
    }


def markdown(report: dict) -> str:
    """One readable page of the report."""
    r = report
    out = [f"# Data quality: {Path(r['source']).name}", "",
           f"Format **{r['format']}**, {r['rows']} rows over {r['duration_s']:.1f} s at {r['rate_hz']:.2f} Hz "
           f"(interval median {r['jitter']['interval_median_ms']:.1f} ms, std {r['jitter']['interval_std_ms']:.1f} ms, "
           f"99 % within {r['jitter']['interval_p99_abs_dev_ms']:.1f} ms of it).",
           f"Track: {r['track']['name']} ({r['track']['length_m']:.0f} m, {r['track']['source'] or 'built in'}).", "",
           "## Laps", "", "| lap | kind | time s | note |", "|---|---|---|---|"]
    out += [f"| {lp['index']} | {lp['kind']} | {lp['time_s']:.2f} | {lp.get('why', '')} |" for lp in r["laps"]["list"]]
    best = r["laps"]["best_valid_s"]
    out += ["", f"{r['laps']['valid']} valid of {r['laps']['found']} found; best valid lap "
            + (f"{best:.2f} s." if best else "none."), "",
            "## Gaps and GPS jumps", "",
            f"{r['gaps']['count']} gap(s), {r['gaps']['total_s']:.1f} s in all"
            + "".join(f"\n- at {g['at_s']:.1f} s (line {g['line']}): {g['length_s']:.2f} s" for g in r["gaps"]["list"]),
            "",
            f"{r['gps_jumps']['count']} GPS jump(s), {r['gps_jumps']['fixes_dropped']} fixes dropped"
            + "".join(f"\n- at {j['at_s']:.1f} s (line {j['line']}): {j['fixes']} fixes" for j in r["gps_jumps"]["list"]),
            "", "## Channels", "",
            "Missing: " + (", ".join(r["missing_channels"]) or "none") + ".",
            "Ignored columns: " + (", ".join(r["ignored_columns"]) or "none") + ".", "",
            "## Features estimated, not measured", ""]
    out += [f"- **{k}**: {v}" for k, v in r["estimated_features"].items()] or ["none"]
    if r["notes"]:
        out += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    return "\n".join(out) + "\n"


def write_quality(report: dict, out_dir: Path, stem: str = "quality") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / f"{stem}.json", out / f"{stem}.md"
    j.write_text(json.dumps(report, indent=1) + "\n")
    m.write_text(markdown(report))
    return j, m
