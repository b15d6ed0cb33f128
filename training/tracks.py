"""Closed race tracks: CSV import, a parametric generator, and the derived geometry.

A track is a closed centreline in the common open racetrack-database format, one point a
row, metres, about 5 m apart (the last point connects back to the first)::

    x_m,y_m,w_tr_right_m,w_tr_left_m

:func:`load_track` validates a file (NaN, too few points, open loop, self-intersection,
non-positive widths, absurd coordinates) and derives everything the simulator needs on a
1 m grid along the racing line: the minimum-curvature line inside the track limits
(:mod:`~motocoach.training.raceline`), its curvature, the corners and apexes, and the
track edges measured from the line. Lap distance is distance along the racing line.

>>> t = get_track("kestrel")
>>> t.name, t.length_m > 1000, len(t.apex_s) >= 4
('kestrel', True, True)
>>> sorted(builtin_tracks())[:2]
['falcon', 'heron']
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from motocoach.errors import TrackError
from motocoach.training.raceline import line_grid, min_curvature_offsets, smooth_reference

CSV_HEADER = ("x_m", "y_m", "w_tr_right_m", "w_tr_left_m")
GRID_M = 1.0            # resolution of the simulator's lookup tables
MIN_POINTS = 20
MAX_COORD_M = 1e6       # a local frame in metres; beyond this the file is not in metres
CORNER_KAPPA = 1 / 180  # an apex needs a tighter radius than 180 m
APEX_WINDOW = 40.0      # m; an apex is the tightest point within this distance


@dataclass(frozen=True)
class Track:
    """A validated closed track resampled on a :data:`GRID_M` grid.

    Attributes:
        name: track name (file stem for imported CSVs).
        xy: (M, 2) centreline point abeam each grid point of the racing line, metres.
        w_right / w_left: (M,) half widths to the right / left of the centreline, metres.
        line_xy: (M, 2) racing line points, :data:`GRID_M` apart along the line.
        line_offset: (M,) racing line offset from the centreline, metres, + right.
        line_kappa: (M,) signed curvature of the racing line, 1/m, positive for a left turn.
        apex_s: (K,) arc position of each corner apex, metres, increasing.
        apex_kappa: (K,) |curvature| of the racing line at each apex.
        next_apex: (M,) index into apex_s of the next apex at or after each grid point.
        source: the CSV this track came from.
    """

    name: str
    xy: np.ndarray
    w_right: np.ndarray
    w_left: np.ndarray
    line_xy: np.ndarray
    line_offset: np.ndarray
    line_kappa: np.ndarray
    apex_s: np.ndarray
    apex_kappa: np.ndarray
    next_apex: np.ndarray
    source: str

    @property
    def n_grid(self) -> int:
        return len(self.line_kappa)

    @property
    def length_m(self) -> float:
        return self.n_grid * GRID_M

    @property
    def dist_to_apex(self) -> np.ndarray:
        """(M,) distance along the track from each grid point to the next apex, metres."""
        s = np.arange(self.n_grid) * GRID_M
        return (self.apex_s[self.next_apex] - s) % self.length_m



def _circular_smooth(a: np.ndarray, half_width: int) -> np.ndarray:
    k = 2 * half_width + 1
    padded = np.concatenate([a[-half_width:], a, a[:half_width]])
    return np.convolve(padded, np.ones(k) / k, mode="valid")


def first_crossing(p: np.ndarray) -> int | None:
    """Index of the first edge of the closed polygon ``p`` that crosses a non-adjacent one."""
    a, b = p, np.roll(p, -1, axis=0)
    n = len(p)
    for i in range(n):
        j = np.arange(i + 2, n)
        if i == 0:
            j = j[j != n - 1]       # edge n-1 touches edge 0
        if len(j) == 0:
            continue
        c, d = a[j], b[j]

        def orient(p1, p2, p3):
            return np.sign((p2[..., 0] - p1[..., 0]) * (p3[..., 1] - p1[..., 1])
                           - (p2[..., 1] - p1[..., 1]) * (p3[..., 0] - p1[..., 0]))

        o1, o2 = orient(a[i], b[i], c), orient(a[i], b[i], d)
        o3, o4 = orient(c, d, a[i]), orient(c, d, b[i])
        if np.any((o1 * o2 < 0) & (o3 * o4 < 0)):
            return i
    return None


def build_track(points: np.ndarray, name: str, source: str = "") -> Track:
    """Validate raw ``(N, 4)`` rows (x, y, w_right, w_left) and derive the track geometry."""
    pts = np.asarray(points, dtype=np.float64)
    where = source or name
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise TrackError(f"{where}: need 4 columns {','.join(CSV_HEADER)}, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        row = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise TrackError(f"{where}: NaN or inf in data row {row + 1}; fix or remove that row")
    if np.any(np.abs(pts) > MAX_COORD_M):
        row = int(np.argwhere(np.abs(pts) > MAX_COORD_M)[0, 0])
        raise TrackError(f"{where}: data row {row + 1} has a value beyond {MAX_COORD_M:.0e}; "
                         "coordinates and widths must be metres in a local frame")
    if len(pts) >= 2 and np.allclose(pts[0, :2], pts[-1, :2]):
        pts = pts[:-1]                      # some files repeat the first point at the end
    if len(pts) < MIN_POINTS:
        raise TrackError(f"{where}: {len(pts)} points; a lap needs at least {MIN_POINTS} "
                         "(about 5 m apart)")
    bad_w = np.flatnonzero(np.any(pts[:, 2:] <= 0.5, axis=1))
    if len(bad_w):
        r = int(bad_w[0])
        raise TrackError(f"{where}: data row {r + 1} (x={pts[r, 0]:.1f}, y={pts[r, 1]:.1f}) has a half "
                         f"width of {pts[r, 2:].min():.2f} m; half widths must be > 0.5 m on both sides")
    xy = pts[:, :2]
    seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    if np.any(seg < 1e-6):
        r = int(np.flatnonzero(seg < 1e-6)[0])
        raise TrackError(f"{where}: data rows {r + 1} and {r + 2} are the same point; remove duplicates")
    spacing = float(np.median(seg))
    closing = float(np.linalg.norm(xy[0] - xy[-1]))
    if closing > 4 * spacing + 5.0:
        raise TrackError(f"{where}: open loop: the last point is {closing:.0f} m from the first "
                         f"(spacing {spacing:.1f} m); a track must be a closed lap")
    crossing = first_crossing(xy)
    if crossing is not None:
        raise TrackError(f"{where}: the centreline crosses itself after data row {crossing + 1} "
                         f"(x={xy[crossing, 0]:.1f}, y={xy[crossing, 1]:.1f}); a lap must be a simple loop")

    # The racing line (minimum curvature, inside the limits) and an even grid along it.
    ref = smooth_reference(pts, where)
    alpha, normals = min_curvature_offsets(ref, where)
    g = line_grid(ref, alpha, normals, GRID_M, where)
    line_kappa = g["line_kappa"]
    m = len(line_kappa)

    # Apexes: local maxima of |line curvature| within +-APEX_WINDOW m that are tight enough
    # to be corners (radius < 1 / CORNER_KAPPA).
    mag = np.abs(line_kappa)
    win = int(APEX_WINDOW / GRID_M)
    padded = np.concatenate([mag[-win:], mag, mag[:win]])
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * win + 1).max(axis=1)
    apex_idx = list(np.flatnonzero((mag >= local_max) & (mag > CORNER_KAPPA)))
    if not apex_idx:
        apex_idx = [int(np.argmax(mag))]
    apex_idx = sorted(set(apex_idx))
    apex_s = np.array(apex_idx, dtype=np.float64) * GRID_M
    nxt = np.searchsorted(np.array(apex_idx), np.arange(m), side="left") % len(apex_idx)
    return Track(name=name, xy=g["xy"], w_right=g["w_right"], w_left=g["w_left"], line_xy=g["line_xy"],
                 line_offset=g["offset"], line_kappa=line_kappa, apex_s=apex_s,
                 apex_kappa=np.abs(line_kappa[apex_idx]), next_apex=nxt.astype(np.int64),
                 source=source)


def read_track_csv(path: str | Path) -> np.ndarray:
    """Read the raw ``(N, 4)`` rows of a track CSV (header optional, '#' comments allowed)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TrackError(f"{p}: not a text CSV (byte {e.start} is not UTF-8); expected lines of "
                         f"{','.join(CSV_HEADER)}") from e
    except OSError as e:
        raise TrackError(f"cannot read track {p}: {e}") from e
    rows: list[list[float]] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and not _is_number(row[0]):
            continue                        # header line
        if len(row) != 4:
            raise TrackError(f"{p}:{lineno}: expected 4 values ({','.join(CSV_HEADER)}), got {len(row)}")
        try:
            rows.append([float(v) for v in row])
        except ValueError as e:
            raise TrackError(f"{p}:{lineno}: not a number: {e}") from e
    if not rows:
        raise TrackError(f"{p}: no data rows; expected lines of {','.join(CSV_HEADER)}")
    return np.array(rows)


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def load_track(path: str | Path) -> Track:
    """Load and validate a track CSV in the ``x_m,y_m,w_tr_right_m,w_tr_left_m`` format."""
    p = Path(path)
    return build_track(read_track_csv(p), name=p.stem, source=str(p))


def write_track_csv(points: np.ndarray, path: str | Path) -> Path:
    """Write raw ``(N, 4)`` rows as a track CSV with the standard header."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# " + ",".join(CSV_HEADER)]
    lines += [f"{x:.3f},{y:.3f},{wr:.3f},{wl:.3f}" for x, y, wr, wl in np.asarray(points)]
    p.write_text("\n".join(lines) + "\n")
    return p


def builtin_tracks() -> list[str]:
    """Names of the tracks shipped with the package (CSV files in ``training/tracks/``)."""
    folder = resources.files("motocoach.training").joinpath("tracks")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv"))


@lru_cache(maxsize=32)
def get_track(name_or_path: str) -> Track:
    """A built-in track by name, or any track CSV by path."""
    if name_or_path in builtin_tracks():
        ref = resources.files("motocoach.training").joinpath("tracks", f"{name_or_path}.csv")
        with resources.as_file(ref) as p:
            t = load_track(p)
        return t
    p = Path(name_or_path)
    if p.suffix.lower() == ".csv" or p.exists():
        return load_track(p)
    raise TrackError(f"unknown track {name_or_path!r}; use one of {', '.join(builtin_tracks())} "
                     "or a path to a CSV of x_m,y_m,w_tr_right_m,w_tr_left_m")
