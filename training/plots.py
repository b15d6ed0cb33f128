"""Evaluation plots: lap-time bars per coach, speed and delta time along the lap, and a track
map with the cues given."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from motocoach.training.tracks import GRID_M, Track


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lap_times(results: Sequence, path: Path) -> Path:
    """Grouped bars: mean lap time (± std) per coach for every (track, rider)."""
    plt = _pyplot()
    groups = sorted({(r.track, r.rider) for r in results})
    coaches = list(dict.fromkeys(r.coach for r in results))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4))
    width = 0.8 / len(coaches)
    for j, c in enumerate(coaches):
        by = {(r.track, r.rider): r for r in results if r.coach == c}
        means = [by[g].lap_time_mean_s if g in by else np.nan for g in groups]
        stds = [by[g].lap_time_std_s if g in by else 0 for g in groups]
        x = np.arange(len(groups)) + j * width
        finite = np.isfinite(means)
        ax.bar(x[finite], np.asarray(means)[finite], width, yerr=np.nan_to_num(np.asarray(stds)[finite]), label=c)
        for xi, g in zip(x, groups):      # how many rides each bar stands for
            r = by.get(g)
            if r is not None:
                ax.annotate(f"{r.completed}/{r.rides}" if r.completed else "no lap", (xi, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{t}\n{r}" for t, r in groups])
    ax.set_ylabel("lap time (s)")
    finite = [r.lap_time_mean_s for r in results if np.isfinite(r.lap_time_mean_s)]
    if finite:                             # an axis from 0 would hide a 1 s gain
        ax.set_ylim(min(finite) * 0.9, max(finite) * 1.05)
    else:
        ax.text(0.5, 0.5, "no ride finished a lap", transform=ax.transAxes, ha="center")
    ax.legend()
    ax.set_title("Lap time by coach (simulated, host)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cue_map(track: Track, trace: dict, path: Path, title: str = "") -> Path:
    """The racing line with every control step's cue at its track position, the start line,
    the direction of travel and the corners numbered from the start."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 7))
    line = track.line_xy
    ax.plot(track.xy[:, 0], track.xy[:, 1], color="0.85", lw=8, zorder=0)
    ax.plot(line[:, 0], line[:, 1], color="0.5", lw=0.8, zorder=1)
    s = np.asarray(trace["s"])
    idx = (s / GRID_M).astype(int) % track.n_grid
    xy = line[idx]
    kinds = [("left", np.asarray(trace["side"]) < 0, "tab:blue"),
             ("right", np.asarray(trace["side"]) > 0, "tab:red"),
             ("brake / slow (>=200 Hz)", np.asarray(trace["brake"]) > 0, "tab:orange"),
             ("throttle (<=100 Hz)", np.asarray(trace["throttle"]) > 0, "tab:green")]
    for label, mask, color in kinds:
        share = f"{mask.mean():.0%}" if len(mask) else "0%"
        ax.scatter(xy[mask, 0], xy[mask, 1], s=14, color=color, label=f"{label} ({share} of steps)", zorder=2)
    # start line across the track, an arrow for the direction, corner numbers at the apexes
    d = line[min(8, track.n_grid - 1)] - line[0]
    d = d / max(float(np.hypot(*d)), 1e-9)
    normal = np.array([d[1], -d[0]])
    w = max(float(track.w_left[0] + track.w_right[0]), 8.0)
    ends = np.array([track.xy[0] - normal * w, track.xy[0] + normal * w])
    ax.plot(ends[:, 0], ends[:, 1], color="black", lw=2.5, zorder=3, label="start / finish")
    span = float(np.ptp(line, axis=0).max())
    ax.annotate("", xy=line[0] + d * 0.08 * span, xytext=line[0], zorder=4,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})
    centre = line.mean(axis=0)
    for k, a in enumerate(track.apex_s, start=1):
        p = line[int(a / GRID_M) % track.n_grid]
        out = (p - centre) / max(float(np.hypot(*(p - centre))), 1e-9)
        ax.annotate(str(k), p + out * 0.03 * span, fontsize=8, ha="center", va="center", zorder=4)
    ax.set_aspect("equal")
    ax.set_title(title or f"Cues on {track.name}")
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_speed_and_delta(track: Track, traces: dict[str, dict], v_ref: np.ndarray, path: Path,
                         title: str = "") -> Path:
    """Speed along the lap for each coach and the vehicle's reference (limit) lap, and the
    time each coach is ahead (-) or behind (+) the first one, against lap distance."""
    plt = _pyplot()
    fig, (ax, ax_d) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(np.arange(track.n_grid) * GRID_M, np.asarray(v_ref) * 3.6, color="0.6", lw=1,
            label="reference lap (vehicle limit)")
    grid = np.arange(0.0, track.length_m, 5.0)
    times = {}
    for name, tr in traces.items():
        prog = np.asarray(tr.get("progress", []))
        keep = (prog >= 0) & (prog < track.length_m)
        if keep.sum() < 2:
            continue
        ax.plot(prog[keep], np.asarray(tr["v"])[keep] * 3.6, lw=1.2, label=name)
        times[name] = np.interp(grid, prog[keep], np.asarray(tr["t"])[keep])
    names = list(times)
    for name in names[1:]:
        ax_d.plot(grid, times[name] - times[names[0]], lw=1.2, label=f"{name} - {names[0]}")
    ax_d.axhline(0.0, color="0.5", lw=0.8)
    for a in track.apex_s:
        ax.axvline(a, color="0.9", lw=0.8, zorder=0)
    ax.set_ylabel("speed (km/h)")
    ax_d.set_ylabel("delta time (s)")
    ax_d.set_xlabel("distance along the racing line (m)")
    ax.legend(fontsize=8, loc="lower right")
    if names[1:]:
        ax_d.legend(fontsize=8)
    ax.set_title(title or f"Speed along {track.name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
