"""``replay.html``: what the unit would have cued on a rider's own ride, for the rider to read.

One self-contained page: a track map with the cues, speed / lean / throttle / brake against
distance for the replayed lap and the rider's best lap with the cues marked, and the telemetry
at every cue. Numbers say where they were measured.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from motocoach.lap_report import CUE_COLORS, CUE_KINDS, _plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def shown_laps(tel, lap: int | None) -> tuple[int | None, int | None]:
    """(replayed lap, best lap): the lap asked for, else the last valid lap; and the fastest valid lap."""
    valid = [lp.index for lp in tel.laps if lp.kind == "valid"]
    best = tel.best_lap.index if tel.best_lap else None
    if lap is not None:
        return lap, best
    return (valid[-1] if valid else (max(range(len(tel.laps)), key=lambda k: (tel.lap == k).sum()) if tel.laps else None)), best


def _map(tel, cues) -> str:
    from motocoach.training.ridelogs.trackgeo import TrackGeometry

    plt = _plt()
    tr = tel.track
    geo = TrackGeometry(tr)
    s = np.arange(tr.n_grid, dtype=np.float64)
    right = geo.position(s, tr.w_right - tr.line_offset)
    left = geo.position(s, -(tr.w_left + tr.line_offset))
    fig, ax = plt.subplots(figsize=(7, 6))
    for edge in (right, left):
        ax.plot(np.r_[edge[:, 0], edge[0, 0]], np.r_[edge[:, 1], edge[0, 1]], color="#999", lw=1)
    ax.plot(tel.xy[:, 0], tel.xy[:, 1], color="#555", lw=0.6, alpha=0.6, label="ride (map-matched)")
    ax.plot(*geo.position(np.zeros(1), np.zeros(1))[0], "ks", label="start/finish")
    for kind in CUE_KINDS:
        pts = np.array([tel.xy[c.row] for c in cues if c.kind == kind]).reshape(-1, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=22, color=CUE_COLORS[kind], label=f"{kind} ({len(pts)})", zorder=3)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(loc="best", fontsize=8, title="cue onsets")
    fig.tight_layout()
    return _png(fig)


def _traces(tel, cues, laps: dict[str, int]) -> str:
    plt = _plt()
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    rows_of = {label: np.flatnonzero(tel.lap == k) for label, k in laps.items()}
    panels = [("speed", "speed km/h", 3.6), ("roll_angle", "lean deg", 1.0), ("throttle", "throttle", 1.0),
              ("brake", "brake", 1.0)]
    styles = {0: dict(color="#204a87", lw=1.4), 1: dict(color="#888", lw=1.0, ls="--")}
    for ax, (feat, label, k) in zip(axes, panels):
        col = tel.column(feat)
        for j, (name, rows) in enumerate(rows_of.items()):
            if len(rows):
                ax.plot(tel.progress[rows] - tel.progress[rows[0]], col[rows] * k, label=name, **styles[j % 2])
        ax.set_ylabel(label)
    for j, (name, rows) in enumerate(rows_of.items()):
        if not len(rows):
            continue
        start = tel.progress[rows[0]]
        for c in cues:
            if c.lap == laps[name]:
                d = tel.progress[c.row] - start
                for ax in axes:
                    ax.axvline(d, color=CUE_COLORS[c.kind], lw=0.8, alpha=0.7 if j == 0 else 0.3)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("distance into the lap, m (racing-line distance)")
    fig.suptitle("cue onsets as vertical lines (solid: replayed lap, faint: best lap); colours as on the map", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _cue_table(cues, laps: dict[str, int], names: tuple[str, ...]) -> str:
    wanted = set(laps.values())
    rows = [c for c in cues if c.lap in wanted]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ("lap", "t s", "lap distance m", "cue", *names))
    body = "".join(
        "<tr>" + "".join(f"<td>{v}</td>" for v in (c.lap, f"{c.t:.2f}", f"{c.s:.0f}",
                                                    f'<b style="color:{CUE_COLORS[c.kind]}">{c.kind}</b>',
                                                    *(f"{c.telemetry[n]:.2f}" for n in names))) + "</tr>"
        for c in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>No cue on these laps.</p>"


def write_replay_html(path: Path, tel, cues, doc: dict, rows: np.ndarray, lap: int | None) -> Path:
    from motocoach.schema import load_schema

    replayed, best = shown_laps(tel, lap)
    laps = {}
    if replayed is not None:
        laps[f"replayed lap {replayed} ({tel.laps[replayed].time_s:.2f} s, {tel.laps[replayed].kind})"] = replayed
    if best is not None and best != replayed:
        laps[f"best lap {best} ({tel.laps[best].time_s:.2f} s)"] = best
    lat = doc["latency_ms"]
    where = doc["where"]
    fmt = lambda v: "inf" if v is None else f"{v:.2f}"  # noqa: E731
    est = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in doc["estimated_features"].items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Replay: {html.escape(Path(doc['log']).name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} img{{max-width:100%}}</style></head><body>
<h1>Where and why the unit would have cued</h1>
<p>Log <code>{html.escape(doc['log'])}</code>: {doc['frames']} telemetry frames at 20 Hz streamed through the unit on
<b>{where}</b> ({doc['mode']}). Every answer was checked against the host reference engine:
<b>{doc['mismatches']} mismatches</b>, {doc['lost']} lost. Latency (host send to reply, measured on the host against
{where}; not a hardware number unless where = hardware): p50 {fmt(lat['p50_ms'])} ms, p95 {fmt(lat['p95_ms'])} ms,
p99 {fmt(lat['p99_ms'])} ms, max {fmt(lat['max_ms'])} ms.</p>
<p>Cues: <b>left / right</b> = move your line towards that side; <b>slow down</b> = brake earlier or carry less speed;
<b>more throttle</b> = you have grip to spare: carry more speed.</p>
<h2>Track map</h2>{_map(tel, cues)}
<h2>Speed, lean, throttle and brake along the lap</h2>{_traces(tel, cues, laps) if laps else '<p>No lap to show.</p>'}
<h2>The telemetry at each cue</h2>{_cue_table(cues, laps, load_schema().feature_names)}
<h2>Measured or estimated</h2><ul>{est or '<li>every feature was measured</li>'}</ul>
</body></html>"""
    Path(path).write_text(page)
    return Path(path)
