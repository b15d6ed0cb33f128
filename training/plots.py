"""Evaluation plots: lap-time bars per coach and a track map coloured by the cues given."""

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
    """The racing line with every control step's cue drawn at its track position."""
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
        ax.scatter(xy[mask, 0], xy[mask, 1], s=14, color=color, label=f"{label} ({mask.mean():.0%})", zorder=2)
    ax.set_aspect("equal")
    ax.set_title(title or f"Cues on {track.name}")
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
