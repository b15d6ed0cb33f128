"""Lap traces for the demo report: what the rider did along the lap, coached vs uncoached.

A trace is recorded step by step (20 Hz) while a lap is ridden: time, distance along the lap,
the telemetry the coach saw, and the cue it gave. From two traces come the speed/throttle/brake
plot against distance, the delta time along the lap, the sector table and the cue map.

>>> a = {"t_s": [0.0, 10.0, 20.0, 30.0], "s_m": [0.0, 100.0, 200.0, 300.0]}
>>> b = {"t_s": [0.0, 9.0, 19.0, 28.5], "s_m": [0.0, 100.0, 200.0, 300.0]}
>>> [round(r["gain_s"], 2) for r in sector_table(a, b, 300.0, n=3)]
[1.0, 0.0, 0.5]
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

CUE_KINDS = ("left", "right", "slow down", "more throttle")
CUE_COLORS = {"left": "#3465a4", "right": "#cc0000", "slow down": "#f57900", "more throttle": "#4e9a06"}


class TraceRecorder:
    """Collects one lap's steps; ``trace`` is a dict of equal-length lists."""

    def __init__(self, feature_names: list[str], length_m: float) -> None:
        self.names, self.length = list(feature_names), float(length_m)
        self.trace: dict[str, list[float]] = {k: [] for k in ["t_s", "s_m", *self.names, "cue_left",
                                                               "cue_right", "cue_freq01", "latency_ms"]}
        self._wraps = 0
        self._last_pos = 0.0

    def add(self, info: dict[str, Any], obs: np.ndarray, action01: np.ndarray | None,
            latency_ms: float | None = None) -> None:
        pos = float(info["track_position_m"])
        if pos < self._last_pos - self.length / 2:  # crossed the line: keep the distance increasing
            self._wraps += 1
        self._last_pos = pos
        self.trace["t_s"].append(float(info["time_s"]))
        self.trace["s_m"].append(pos + self._wraps * self.length)
        for name, v in zip(self.names, np.asarray(obs, np.float64)):
            self.trace[name].append(float(v))
        a = np.zeros(3) if action01 is None else np.asarray(action01, np.float64)
        for k, v in zip(("cue_left", "cue_right", "cue_freq01"), a):
            self.trace[k].append(float(v))
        self.trace["latency_ms"].append(float("nan") if latency_ms is None else float(latency_ms))


def write_csv(trace: dict[str, list[float]], path: Path) -> Path:
    """The lap's telemetry and cues as CSV, one row per 20 Hz step (header = column names)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(trace)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for row in zip(*(trace[c] for c in cols)):
            w.writerow([f"{v:.6g}" for v in row])
    return path


def _t_at(trace: dict[str, list[float]], s: np.ndarray) -> np.ndarray:
    return np.interp(s, np.asarray(trace["s_m"]), np.asarray(trace["t_s"]), right=np.nan)


def delta_time(uncoached: dict, coached: dict, length_m: float, step_m: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """(distance, coached minus uncoached time) along the lap; negative = the coached rider is ahead."""
    s = np.arange(0.0, length_m, step_m)
    return s, _t_at(coached, s) - _t_at(uncoached, s)


def sector_table(uncoached: dict, coached: dict, length_m: float, n: int = 3) -> list[dict[str, float]]:
    """Time per equal-length sector for both laps; ``gain_s`` > 0 means coaching was faster there."""
    edges = np.linspace(0.0, length_m, n + 1)
    tu, tc = _t_at(uncoached, edges), _t_at(coached, edges)
    rows = []
    for i in range(n):
        u, c = float(tu[i + 1] - tu[i]), float(tc[i + 1] - tc[i])
        rows.append({"sector": i + 1, "from_m": float(edges[i]), "to_m": float(edges[i + 1]),
                     "uncoached_s": u, "coached_s": c, "gain_s": u - c})
    return rows


def cue_kinds(trace: dict[str, list[float]]) -> list[str | None]:
    """Each step's cue in the cue language (:func:`motocoach.training.sim.decode_cues`), or None."""
    from motocoach.training.sim import decode_cues

    a = np.stack([trace["cue_left"], trace["cue_right"], trace["cue_freq01"]], axis=1)
    c = decode_cues(a)
    out: list[str | None] = []
    for side, brake, throttle in zip(c["side"], c["brake"], c["throttle"]):
        out.append("slow down" if brake > 0 else "more throttle" if throttle > 0 else
                   "left" if side < 0 else "right" if side > 0 else None)
    return out


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_traces(uncoached: dict, coached: dict, length_m: float, path: Path) -> Path:
    """Speed, throttle, brake against distance for both laps, and the delta time underneath."""
    plt = _plt()
    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 1.3, 2]})
    for trace, label, color in ((uncoached, "uncoached", "#888"), (coached, "coached", "#3465a4")):
        s = np.asarray(trace["s_m"])
        axes[0].plot(s, np.asarray(trace["speed"]) * 3.6, color=color, label=label, lw=1.2)
        axes[1].plot(s, trace["throttle"], color=color, lw=1)
        axes[2].plot(s, trace["brake"], color=color, lw=1)
    axes[0].set_ylabel("speed (km/h)")
    axes[0].legend(loc="lower right")
    axes[1].set_ylabel("throttle")
    axes[2].set_ylabel("brake")
    ds, dt = delta_time(uncoached, coached, length_m)
    axes[3].axhline(0, color="k", lw=0.8)
    axes[3].fill_between(ds, dt, 0, where=dt < 0, color="#4e9a06", alpha=0.5, label="coached ahead")
    axes[3].fill_between(ds, dt, 0, where=dt > 0, color="#cc0000", alpha=0.5, label="coached behind")
    axes[3].set_ylabel("delta time (s)")
    axes[3].set_xlabel("distance along the lap (m)")
    axes[3].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_cue_map(track_xy: np.ndarray, length_m: float, trace: dict, path: Path) -> Path:
    """The track outline with every cue of the coached lap where it was given, by kind."""
    plt = _plt()
    xy = np.asarray(track_xy, np.float64)
    grid = np.linspace(0.0, length_m, len(xy), endpoint=False)
    s = np.mod(np.asarray(trace["s_m"]), length_m)
    px, py = np.interp(s, grid, xy[:, 0]), np.interp(s, grid, xy[:, 1])
    kinds = cue_kinds(trace)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.plot(np.r_[xy[:, 0], xy[0, 0]], np.r_[xy[:, 1], xy[0, 1]], color="#bbb", lw=6, zorder=0)
    ax.plot(xy[0, 0], xy[0, 1], "ks", label="start/finish")
    for kind in CUE_KINDS:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        ax.scatter(px[idx], py[idx], s=10, color=CUE_COLORS[kind], label=f"{kind} ({len(idx)})", zorder=2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(loc="best", fontsize=8, title="cue (steps at 20 Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_lap_times(lap: dict[str, Any], path: Path) -> Path:
    """Lap times as points on an axis around the data (not from 0): the SIL lap and the host seeds."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    hs = lap.get("host_seeds") or {}
    vals = []
    for x, kind, color in ((0, "uncoached", "#888"), (1, "coached", "#3465a4")):
        seeds = [v for v in (hs.get(kind, {}).get("lap_times_s") or []) if v is not None]
        if seeds:
            ax.scatter([x - 0.1] * len(seeds), seeds, color=color, alpha=0.5, s=18,
                       label="host seeds" if x == 0 else None)
            ax.errorbar([x - 0.1], [np.mean(seeds)], yerr=[np.std(seeds)], color=color, capsize=4, fmt="_", ms=14)
            vals += seeds
        t = lap[kind]["lap_time_s"]
        if t is not None:
            ax.scatter([x + 0.1], [t], color=color, marker="D", s=40, label="this lap (SIL)" if x == 1 else None)
            ax.annotate(f"{t:.2f} s", (x + 0.15, t), va="center", fontsize=8)
            vals.append(t)
    if vals:
        pad = max(0.5, 0.15 * (max(vals) - min(vals)))
        ax.set_ylim(min(vals) - pad, max(vals) + pad)
    ax.set_xticks([0, 1], ["uncoached", "coached"])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel("lap time (s, simulated; axis not from 0)")
    ax.set_title(f"{lap['track']} / {lap['rider']}")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def smooth(values: list[float], window: int | None = None) -> np.ndarray:
    """Trailing moving average (window ~ a tenth of the points, at least 1)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return v
    w = max(1, window or v.size // 10)
    c = np.cumsum(np.r_[0.0, v])
    out = np.empty_like(v)
    for i in range(v.size):
        lo = max(0, i + 1 - w)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out
