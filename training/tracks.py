"""Closed race tracks: CSV import, a parametric generator, and the derived geometry.

A track is a closed centreline in the common open racetrack-database format, one point a
row, metres, about 5 m apart (the last point connects back to the first)::

    x_m,y_m,w_tr_right_m,w_tr_left_m

:func:`load_track` validates a file (NaN, too few points, open loop, self-intersection,
non-positive widths) and derives everything the simulator needs on a 1 m grid: curvature,
corners and apexes, a reference racing line (inside at the apex) and its curvature.

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

CSV_HEADER = ("x_m", "y_m", "w_tr_right_m", "w_tr_left_m")
GRID_M = 1.0            # resolution of the simulator's lookup tables
MIN_POINTS = 20
CORNER_KAPPA = 1 / 180  # an apex needs a tighter radius than 180 m
APEX_WINDOW = 40.0      # m; an apex is the tightest point within this distance
#: Built-in tracks made by :func:`generate_track`: name -> (seed, mean radius m, roughness).
BUILTIN_SPECS: dict[str, tuple[int, float, float]] = {
    "kestrel": (11, 260.0, 0.30), "heron": (23, 300.0, 0.26), "osprey": (37, 230.0, 0.33),
    "falcon": (41, 280.0, 0.30), "merlin": (53, 240.0, 0.34),
}


@dataclass(frozen=True)
class Track:
    """A validated closed track resampled on a :data:`GRID_M` grid.

    Attributes:
        name: track name (file stem for imported CSVs).
        xy: (M, 2) centreline points on the grid, metres.
        w_right / w_left: (M,) half widths to the right / left of the centreline, metres.
        kappa: (M,) signed centreline curvature, 1/m, positive for a left turn.
        line_offset: (M,) reference racing line offset from the centreline, metres, + right.
        line_kappa: (M,) signed curvature of the racing line, 1/m.
        apex_s: (K,) arc position of each corner apex, metres, increasing.
        apex_kappa: (K,) |curvature| of the racing line at each apex.
        next_apex: (M,) index into apex_s of the next apex at or after each grid point.
        source: the CSV this track came from.
    """

    name: str
    xy: np.ndarray
    w_right: np.ndarray
    w_left: np.ndarray
    kappa: np.ndarray
    line_offset: np.ndarray
    line_kappa: np.ndarray
    apex_s: np.ndarray
    apex_kappa: np.ndarray
    next_apex: np.ndarray
    source: str

    @property
    def n_grid(self) -> int:
        return len(self.kappa)

    @property
    def length_m(self) -> float:
        return self.n_grid * GRID_M

    @property
    def dist_to_apex(self) -> np.ndarray:
        """(M,) distance along the track from each grid point to the next apex, metres."""
        s = np.arange(self.n_grid) * GRID_M
        return (self.apex_s[self.next_apex] - s) % self.length_m

    def line_xy(self) -> np.ndarray:
        """(M, 2) points of the reference racing line (for plots)."""
        return self.xy + _right_normals(self.xy) * self.line_offset[:, None]


def _right_normals(xy: np.ndarray) -> np.ndarray:
    d = np.roll(xy, -1, axis=0) - np.roll(xy, 1, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return np.stack([d[:, 1], -d[:, 0]], axis=1)   # heading rotated by -90 deg


def _circular_smooth(a: np.ndarray, half_width: int) -> np.ndarray:
    k = 2 * half_width + 1
    padded = np.concatenate([a[-half_width:], a, a[:half_width]])
    return np.convolve(padded, np.ones(k) / k, mode="valid")


def _curvature(xy: np.ndarray) -> np.ndarray:
    """Signed curvature of a closed, evenly spaced polyline (positive = turning left)."""
    d1 = (np.roll(xy, -1, axis=0) - np.roll(xy, 1, axis=0)) / (2 * GRID_M)
    d2 = (np.roll(xy, -1, axis=0) - 2 * xy + np.roll(xy, 1, axis=0)) / GRID_M ** 2
    num = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    return num / np.maximum(np.linalg.norm(d1, axis=1) ** 3, 1e-9)


def _segments_intersect(p: np.ndarray) -> bool:
    """True if any two non-adjacent edges of the closed polygon ``p`` cross."""
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
            return True
    return False


def build_track(points: np.ndarray, name: str, source: str = "") -> Track:
    """Validate raw ``(N, 4)`` rows (x, y, w_right, w_left) and derive the track geometry."""
    pts = np.asarray(points, dtype=np.float64)
    where = source or name
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise TrackError(f"{where}: need 4 columns {','.join(CSV_HEADER)}, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        row = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise TrackError(f"{where}: NaN or inf in data row {row + 1}; fix or remove that row")
    if len(pts) >= 2 and np.allclose(pts[0, :2], pts[-1, :2]):
        pts = pts[:-1]                      # some files repeat the first point at the end
    if len(pts) < MIN_POINTS:
        raise TrackError(f"{where}: {len(pts)} points; a lap needs at least {MIN_POINTS} "
                         "(about 5 m apart)")
    if np.any(pts[:, 2:] <= 0.5):
        raise TrackError(f"{where}: track half widths must be > 0.5 m on both sides")
    xy = pts[:, :2]
    seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    if np.any(seg < 1e-6):
        raise TrackError(f"{where}: repeated consecutive points; remove duplicates")
    spacing = float(np.median(seg))
    closing = float(np.linalg.norm(xy[0] - xy[-1]))
    if closing > 4 * spacing + 5.0:
        raise TrackError(f"{where}: open loop: the last point is {closing:.0f} m from the first "
                         f"(spacing {spacing:.1f} m); a track must be a closed lap")
    if _segments_intersect(xy):
        raise TrackError(f"{where}: the centreline crosses itself; a lap must be a simple loop")

    # Resample on an even 1 m grid (closed).
    closed = np.vstack([pts, pts[:1]])
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed[:, :2], axis=0), axis=1))])
    length = cum[-1]
    m = int(round(length / GRID_M))
    s = np.arange(m) * (length / m)
    grid = np.stack([np.interp(s, cum, closed[:, c]) for c in range(4)], axis=1)
    gxy = grid[:, :2]
    kappa = _circular_smooth(_curvature(gxy), 7)
    if np.max(np.abs(kappa)) > 0.2:
        raise TrackError(f"{where}: a corner tighter than 5 m radius; check the point order and units")

    # Reference racing line: towards the inside of each corner, smoothed so it swings wide
    # on entry/exit. Positive offset = right; a left turn (kappa > 0) pulls it left.
    w_r, w_l = grid[:, 2], grid[:, 3]
    pull = np.tanh(_circular_smooth(kappa, 30) * 120.0)
    raw = np.where(pull > 0, -pull * w_l, -pull * w_r) * 0.5
    offset = _circular_smooth(raw, 25)
    line = gxy + _right_normals(gxy) * offset[:, None]
    line_kappa = _circular_smooth(_curvature(line), 10)

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
    return Track(name=name, xy=gxy, w_right=w_r, w_left=w_l, kappa=kappa, line_offset=offset,
                 line_kappa=line_kappa, apex_s=apex_s,
                 apex_kappa=np.abs(line_kappa[apex_idx]), next_apex=nxt.astype(np.int64),
                 source=source)


def read_track_csv(path: str | Path) -> np.ndarray:
    """Read the raw ``(N, 4)`` rows of a track CSV (header optional, '#' comments allowed)."""
    p = Path(path)
    try:
        text = p.read_text()
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


def generate_track(seed: int, radius_m: float = 260.0, roughness: float = 0.3,
                   spacing_m: float = 5.0, width_m: float = 11.0) -> np.ndarray:
    """A random closed track as raw ``(N, 4)`` rows: a star-shaped polar curve.

    ``r(theta) = R (1 + sum_k a_k cos(k theta + phi_k))`` for k = 2..6 with
    ``sum |a_k| = roughness < 1`` so r > 0 and the curve never crosses itself.
    """
    if not 0 < roughness < 0.9:
        raise TrackError("roughness must be in (0, 0.9)")
    rng = np.random.default_rng(seed)
    ks = np.arange(2, 7)
    amp = rng.dirichlet(np.ones(len(ks))) * roughness
    phase = rng.uniform(0, 2 * np.pi, len(ks))
    theta = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    r = radius_m * (1 + (amp[:, None] * np.cos(ks[:, None] * theta + phase[:, None])).sum(0))
    xy = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    cum = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    n = int(cum[-1] // spacing_m)
    s = np.linspace(0, cum[-1], n, endpoint=False)
    pts = np.stack([np.interp(s, cum, xy[:, 0]), np.interp(s, cum, xy[:, 1])], axis=1)
    half = width_m / 2 + rng.uniform(-0.5, 0.5)
    w = np.full(n, half)
    return np.column_stack([pts, w, w])


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


def write_builtin_tracks(folder: str | Path) -> list[Path]:
    """Regenerate the built-in track CSVs from :data:`BUILTIN_SPECS` (deterministic)."""
    return [write_track_csv(generate_track(seed, radius, rough), Path(folder) / f"{name}.csv")
            for name, (seed, radius, rough) in BUILTIN_SPECS.items()]
