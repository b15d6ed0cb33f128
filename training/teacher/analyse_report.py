"""``analysis.json`` + ``analysis.html``: a lap's three improvement sections, for the rider to read.

One self-contained page (embedded PNGs, matplotlib Agg, the style of the replay report): a
track map with the three corners numbered and coloured, speed / throttle / brake against
distance for the rider and the teacher with the three segments shaded, and a table of what
differs at each corner with the advice.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from motocoach.replay_report import _png
from motocoach.lap_report import _plt
from motocoach.training.teacher.analyse import AFTER_APEX_M, BEFORE_APEX_M, Analysis

COLOURS = ("#cc0000", "#f57900", "#3465a4")


def _map(an: Analysis, track) -> str:
    from motocoach.training.ridelogs.trackgeo import TrackGeometry

    plt = _plt()
    geo = TrackGeometry(track)
    s = np.arange(track.n_grid, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 6))
    for off in (track.w_right - track.line_offset, -(track.w_left + track.line_offset)):
        edge = geo.position(s, off)
        ax.plot(np.r_[edge[:, 0], edge[0, 0]], np.r_[edge[:, 1], edge[0, 1]], color="#999", lw=1)
    if np.any(an.xy):
        ax.plot(an.xy[:, 0], an.xy[:, 1], color="#555", lw=0.6, alpha=0.6, label="the lap")
    ax.plot(*geo.position(np.zeros(1), np.zeros(1))[0], "ks", label="start/finish")
    for rank, c in enumerate(an.top):
        seg = np.mod(np.arange(c.apex_s - BEFORE_APEX_M, c.apex_s + AFTER_APEX_M), track.length_m)
        p = geo.position(seg, np.zeros(len(seg)))
        ax.plot(p[:, 0], p[:, 1], color=COLOURS[rank], lw=5, alpha=0.8,
                label=f"{rank + 1}: corner {c.corner + 1}, {c.gain_s:+.2f} s")
        apex = geo.position(np.array([c.apex_s]), np.zeros(1))[0]
        ax.annotate(str(rank + 1), apex, fontsize=14, fontweight="bold", color=COLOURS[rank],
                    xytext=(8, 8), textcoords="offset points")
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(loc="best", fontsize=8, title="time to gain")
    fig.tight_layout()
    return _png(fig)


def _traces(an: Analysis) -> str:
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    order = np.argsort(an.x_speed)
    axes[0].plot(an.x, an.rider["speed"] * 3.6, color="#204a87", lw=1.3, label="rider")
    axes[0].plot(an.x_speed[order], an.teacher["speed"][order] * 3.6, color="#4e9a06", lw=1.0, ls="--",
                 label="teacher (expert, 0.5 s ahead)")
    for ax, name in zip(axes[1:], ("throttle", "brake")):
        ax.plot(an.x, an.rider[name], color="#204a87", lw=1.3, label="rider")
        ax.plot(an.x, an.teacher[name], color="#4e9a06", lw=1.0, ls="--", label="teacher (expert, next step)")
    for ax, label in zip(axes, ("speed km/h", "throttle", "brake")):
        ax.set_ylabel(label)
        for rank, c in enumerate(an.top):
            ax.axvspan(c.lap_x0, c.lap_x0 + BEFORE_APEX_M + AFTER_APEX_M, color=COLOURS[rank], alpha=0.15)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("distance into the lap, m (racing-line distance); shaded: the three corners")
    lo, hi = float(an.x.min()), float(an.x.max())
    axes[-1].set_xlim(lo, hi)
    fig.tight_layout()
    return _png(fig)


def _fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "m/s":
        return f"{3.6 * v:.0f} km/h"
    return f"{100 * v:.0f} %" if unit == "1" else f"{v:.1f} m"


def _table(an: Analysis) -> str:
    rows = []
    for rank, c in enumerate(an.top):
        for j, it in enumerate(c.items):
            head = (f'<td rowspan="{len(c.items)}"><b style="color:{COLOURS[rank]}">{rank + 1}</b></td>'
                    f'<td rowspan="{len(c.items)}">corner {c.corner + 1} (apex {c.apex_s:.0f} m)<br>'
                    f"{c.gain_s:+.2f} s to gain</td>") if j == 0 else ""
            rows.append(f"<tr>{head}<td>{html.escape(it.kind)}</td><td>{_fmt(it.rider, it.unit)}</td>"
                        f"<td>{_fmt(it.teacher, it.unit)}</td><td>{it.explains_s:+.2f}</td>"
                        f"<td style='text-align:left'>{html.escape(it.advice)}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("#", "corner", "what", "you", "expert", "explains s", "advice"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>" if rows else "<p>No corner on this lap.</p>"


def write_analysis(out_dir: Path, an: Analysis, track, meta: dict) -> tuple[Path, Path]:
    """Write ``analysis.json`` and ``analysis.html`` under ``out_dir``; ``meta`` says what was analysed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {**meta, **an.to_dict(), "where": "host"}
    j = out / "analysis.json"
    j.write_text(json.dumps(doc, indent=2) + "\n")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Improvement sections: {html.escape(an.track)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} img{{max-width:100%}}</style></head><body>
<h1>Where you lose most time: three corners</h1>
<p>{html.escape(str(meta.get('source', '')))}, lap of {an.lap_time_s:.2f} s on <b>{html.escape(an.track)}</b>
({html.escape(an.vehicle)}). Each corner's segment runs from {BEFORE_APEX_M:.0f} m before its apex to
{AFTER_APEX_M:.0f} m after it; its time to gain is your time over those 150 m minus the time the teacher (a
transformer trained on expert laps) predicts an expert would take from where you entered it. Computed on the
host from the telemetry alone.</p>
<h2>The three corners</h2>{_table(an)}
<h2>Track map</h2>{_map(an, track)}
<h2>Speed, throttle and brake along the lap: you and the expert</h2>{_traces(an)}
</body></html>"""
    h = out / "analysis.html"
    h.write_text(page)
    return j, h
