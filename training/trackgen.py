"""Generated training circuits with the features of real ones.

A circuit is drawn as a sequence of corners joined by straights, the way circuits are
described: hairpins (15-25 m radius, about 180 deg), chicanes (two short opposite
corners), medium corners and fast sweepers, with straights of 40 m to 1 km and one main
straight. Corner radii, angles and straight lengths are drawn from ranges that cover the
real circuits compared in docs/simulator.md; widths vary along the lap (9-16 m).

The lap is closed exactly: corner angles are scaled so the heading turns once, and the
straight lengths are corrected by the least-norm change that brings the end back to the
start. Draws that would need a straight shorter than 30 m, or that pass within
:data:`CLEARANCE_M` of another part of the circuit, are rejected and drawn again.

>>> pts = generate_track(seed=7)
>>> pts.shape[1], bool(2000 < len(pts) * 5.0 < 7000)
(4, True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from motocoach.errors import TrackError
from motocoach.training.tracks import first_crossing, write_track_csv

#: Built-in tracks made by :func:`generate_track`: name -> seed.
BUILTIN_SEEDS: dict[str, int] = {"kestrel": 11, "heron": 23, "osprey": 37, "falcon": 41, "merlin": 53}
#: kind -> (probability, radius range m, angle range deg)
CORNER_KINDS: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "hairpin": (0.15, (15.0, 25.0), (150.0, 190.0)),
    "medium": (0.40, (25.0, 90.0), (45.0, 120.0)),
    "sweeper": (0.25, (100.0, 350.0), (20.0, 70.0)),
    "chicane": (0.20, (15.0, 40.0), (35.0, 70.0)),
}
MIN_STRAIGHT_M = 30.0
MAX_STRAIGHT_M = 1200.0
CLEARANCE_M = 30.0        # closest approach of two parts of the lap more than 300 m apart
MAX_TRIES = 3000


def _draw_layout(rng: np.random.Generator) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Corners (heading change per 1 m of each arc) and the straight after each (lengths not yet fixed)."""
    kinds = list(CORNER_KINDS)
    probs = np.array([CORNER_KINDS[k][0] for k in kinds])
    n = int(rng.integers(11, 19))
    corners: list[list[tuple[float, float]]] = []      # each: list of (radius, signed angle rad)
    for _ in range(n):
        kind = kinds[rng.choice(len(kinds), p=probs)]
        _, (r_lo, r_hi), (a_lo, a_hi) = CORNER_KINDS[kind]
        radius = float(np.exp(rng.uniform(np.log(r_lo), np.log(r_hi))))
        angle = np.radians(rng.uniform(a_lo, a_hi))
        sign = 1.0 if rng.random() > 0.25 else -1.0
        if kind == "chicane":
            corners.append([(radius, sign * angle), (radius, -sign * angle)])
        else:
            corners.append([(radius, sign * angle)])
    turning = sum(a for c in corners if len(c) == 1 for _, a in c)
    if turning <= 0.5:
        raise ValueError("turns the wrong way")
    scale = 2 * np.pi / turning
    if not 0.6 < scale < 1.6:
        raise ValueError("angles do not close")
    straights = np.exp(rng.normal(np.log(110.0), 0.7, n)).clip(40.0, 700.0)
    straights[int(rng.integers(n))] = rng.uniform(500.0, 1000.0)     # the main straight
    return _march(corners, scale), straights


def _march(corners, scale) -> list[list[np.ndarray]]:
    """Per corner, the heading change per 1 m step of each of its arcs (single corners scaled)."""
    groups = []
    for c in corners:
        arcs = []
        for radius, angle in c:
            a = angle * (scale if len(c) == 1 else 1.0)
            steps = max(int(round(abs(a) * radius)), 1)
            arcs.append(np.full(steps, a / steps))
        groups.append(arcs)
    return groups


def _polyline(groups: list[list[np.ndarray]], straights: np.ndarray) -> np.ndarray:
    """Points every 1 m: each corner's arcs, then its straight."""
    dpsi = np.concatenate([d for arcs, length in zip(groups, straights)
                           for d in (*arcs, np.zeros(int(round(length))))])
    psi = np.cumsum(dpsi) - dpsi / 2
    return np.cumsum(np.column_stack([np.cos(psi), np.sin(psi)]), axis=0)


def _close(groups: list[list[np.ndarray]], straights: np.ndarray) -> np.ndarray:
    """Least-norm change of the straight lengths that closes the loop; raises if impossible."""
    gap = _polyline(groups, straights)[-1]
    # heading of each straight (constant along it) from the corners before it
    dirs, heading = [], 0.0
    for arcs in groups:
        for d in arcs:
            heading += float(d.sum())
        dirs.append([np.cos(heading), np.sin(heading)])
    u = np.array(dirs).T                                             # 2 x k
    delta = -u.T @ np.linalg.solve(u @ u.T + 1e-9 * np.eye(2), gap)
    fixed = straights + delta
    if np.any(fixed < MIN_STRAIGHT_M) or np.any(fixed > MAX_STRAIGHT_M):
        raise ValueError("a straight would be too short or too long")
    return fixed


def generate_track(seed: int, spacing_m: float = 5.0) -> np.ndarray:
    """A random closed circuit as raw ``(N, 4)`` rows (x, y, w_right, w_left), metres."""
    rng = np.random.default_rng(seed)
    for _ in range(MAX_TRIES):
        try:
            groups, straights = _draw_layout(rng)
            straights = _close(groups, straights)
        except (ValueError, np.linalg.LinAlgError):
            continue
        xy = _polyline(groups, straights)
        if np.linalg.norm(xy[-1]) > 2.0 or _too_close(xy) or first_crossing(xy[::5]) is not None:
            continue
        length = len(xy)
        # widths: 10-16 m in all, changing smoothly along the lap, a little asymmetric
        knots = rng.uniform(4.5, 8.0, 12)
        half = np.interp(np.arange(length), np.linspace(0, length, 13), np.append(knots, knots[0]))
        skew = rng.uniform(-0.3, 0.3)
        idx = np.arange(0, length, spacing_m).astype(int)
        return np.column_stack([xy[idx], half[idx] + skew, half[idx] - skew])
    raise TrackError(f"seed {seed}: no closed, non-crossing circuit in {MAX_TRIES} draws")


def _too_close(xy: np.ndarray) -> bool:
    pts = xy[::5]
    pairs = cKDTree(pts).query_pairs(CLEARANCE_M, output_type="ndarray")
    if len(pairs) == 0:
        return False
    gap = np.abs(pairs[:, 0] - pairs[:, 1]) * 5
    along = np.minimum(gap, len(xy) - gap)
    return bool(np.any(along > 300.0))


def write_builtin_tracks(folder: str | Path) -> list[Path]:
    """Regenerate the built-in track CSVs from :data:`BUILTIN_SEEDS` (deterministic)."""
    return [write_track_csv(generate_track(seed), Path(folder) / f"{name}.csv")
            for name, seed in BUILTIN_SEEDS.items()]


def circuit_stats(track) -> dict[str, float]:
    """Corner radii, straight lengths and widths of a built track, for comparing circuits.

    Corners are the apexes of the racing line (their radius on the line); straights are
    stretches of at least 50 m where the line's radius stays above 300 m.
    """
    radii = 1.0 / np.maximum(track.apex_kappa, 1e-6)
    straight = np.abs(track.line_kappa) < 1.0 / 300.0
    # run lengths of the straight mask on the closed lap
    if straight.all():
        runs = np.array([len(straight)])
    else:
        start = int(np.argmin(straight))
        rolled = np.roll(straight, -start)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], rolled.astype(int), [0]])))
        runs = edges[1::2] - edges[::2]
    runs = runs[runs >= 50] * 1.0
    width = track.w_right + track.w_left
    return {"length_m": track.length_m, "corners": int(len(radii)),
            "corner_radius_min_m": float(radii.min()), "corner_radius_median_m": float(np.median(radii)),
            "corners_under_30m": int(np.sum(radii < 30.0)), "corners_over_100m": int(np.sum(radii > 100.0)),
            "straights": int(len(runs)), "straight_median_m": float(np.median(runs)) if len(runs) else 0.0,
            "straight_max_m": float(runs.max()) if len(runs) else 0.0,
            "width_min_m": float(width.min()), "width_mean_m": float(width.mean()),
            "width_max_m": float(width.max())}
