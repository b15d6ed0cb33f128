"""The racing line: minimum curvature inside the track limits (TUM FTM trajectory-planning-helpers).

:func:`min_curvature_offsets` solves the same quadratic programme the racetrack-database's
race lines were made with (``tph.opt_min_curv`` on cubic splines through the centreline),
at :data:`OPT_STEP_M` spacing, keeping :data:`BIKE_WIDTH_M` of the bike inside the limits.
:func:`line_grid` then re-samples the line on an even arc-length grid: the simulator's
lap distance is distance along the racing line, not along the centreline.

Solving takes seconds on a real circuit, so results are cached in memory and on disk
(``$MOTOCOACH_CACHE`` or ``~/.cache/motocoach``), keyed by a hash of the input rows.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline, splev, splprep

from motocoach.errors import TrackError

OPT_STEP_M = 5.0        # spacing of the optimisation's spline knots (the database's own spacing)
BIKE_WIDTH_M = 1.0      # width the line keeps inside the limits: bike + rider hanging off
KAPPA_BOUND = 0.2       # the optimiser's curvature bound, 1/m (5 m radius)
LINE_SMOOTH_M = 0.5     # rms tolerance of the smoothing spline through the optimised line: about the survey accuracy of a mapped centreline
MIN_LINE_RADIUS_M = 5.0  # tighter than this even on the best line: no motorcycle takes it
CACHE_VERSION = b"raceline-v2"
_MEMO: dict[str, np.ndarray] = {}


def smooth_reference(rows: np.ndarray, where: str) -> np.ndarray:
    """The optimiser's reference: the centreline smoothed by a periodic cubic B-spline
    (``scipy.interpolate.splprep``, the database's own pre-processing with ``s = 10``)
    at :data:`OPT_STEP_M`; widths follow the shift so the track edges stay where they were."""
    dense = resample_closed(rows, 1.0)
    closed = np.vstack([dense, dense[:1]])
    try:
        tck, u = splprep([closed[:, 0], closed[:, 1]], k=3, s=10.0, per=1)
    except (ValueError, TypeError) as e:
        raise TrackError(f"{where}: the centreline cannot be smoothed into a closed spline ({e}); "
                         "check the point order") from e
    fine = np.linspace(0.0, 1.0, 8 * len(closed) + 1)
    pts = np.column_stack(splev(fine, tck))
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    n = max(int(round(arc[-1] / OPT_STEP_M)), 3)
    us = np.interp(np.arange(n) * (arc[-1] / n), arc, fine)
    xy = np.column_stack(splev(us, tck))
    dx, dy = splev(us, tck, der=1)
    right = np.column_stack([dy, -dx]) / np.maximum(np.hypot(dx, dy), 1e-9)[:, None]
    old = np.column_stack([np.interp(us, u, closed[:, c]) for c in range(4)])
    shift = np.sum((xy - old[:, :2]) * right, axis=1)          # + when the spline moved right
    return np.column_stack([xy, old[:, 2] - shift, old[:, 3] + shift])


def resample_closed(rows: np.ndarray, step_m: float) -> np.ndarray:
    """Evenly re-sample closed-loop rows (x, y, ...) at about ``step_m`` along x, y."""
    closed = np.vstack([rows, rows[:1]])
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed[:, :2], axis=0), axis=1))])
    n = max(int(round(cum[-1] / step_m)), 3)
    s = np.arange(n) * (cum[-1] / n)
    return np.stack([np.interp(s, cum, closed[:, c]) for c in range(rows.shape[1])], axis=1)


def _cache_dir() -> Path:
    return Path(os.environ.get("MOTOCOACH_CACHE") or Path.home() / ".cache" / "motocoach") / "raceline"


def min_curvature_offsets(ref: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Lateral offsets (+ right) of the minimum-curvature line at the rows of ``ref``.

    Args:
        ref: (N, 4) closed-loop rows x, y, w_right, w_left, evenly spaced.
        where: name for error messages.

    Returns:
        (alpha, normals): offsets (N,) in metres and unit right-normals (N, 2).
    """
    key = hashlib.sha256(CACHE_VERSION + np.ascontiguousarray(ref, dtype=np.float64).tobytes()
                         + repr((BIKE_WIDTH_M, KAPPA_BOUND)).encode()).hexdigest()[:32]
    if key not in _MEMO:
        path = _cache_dir() / f"{key}.npy"
        try:
            cached = np.load(path)
            if cached.shape == (len(ref), 3):
                _MEMO[key] = cached
        except (OSError, ValueError):
            pass
        if key not in _MEMO:
            _MEMO[key] = _solve(ref, where)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, _MEMO[key])
                os.replace(tmp, path)
            except OSError:
                pass                          # a read-only home only costs the solve time
    solved = _MEMO[key]
    return solved[:, 0].copy(), solved[:, 1:].copy()


def _solve(ref: np.ndarray, where: str) -> np.ndarray:
    """(N, 3): offset and right-normal (x, y) per row, from tph's min-curvature QP."""
    import trajectory_planning_helpers as tph   # imported late: pulls scipy's optimisers

    narrow = np.flatnonzero(ref[:, 2] + ref[:, 3] < BIKE_WIDTH_M + 0.2)
    if len(narrow):
        raise TrackError(f"{where}: the track is narrower than {BIKE_WIDTH_M + 0.2:.1f} m near "
                         f"x={ref[narrow[0], 0]:.1f}, y={ref[narrow[0], 1]:.1f}; check the widths")
    try:
        _, _, a_mat, normals = tph.calc_splines.calc_splines(path=np.vstack([ref[:, :2], ref[:1, :2]]))
        alpha, _ = tph.opt_min_curv.opt_min_curv(reftrack=ref, normvectors=normals, A=a_mat,
                                                 kappa_bound=KAPPA_BOUND, w_veh=BIKE_WIDTH_M, closed=True)
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as e:
        d1 = (np.roll(ref[:, :2], -1, 0) - np.roll(ref[:, :2], 1, 0)) / 2
        d2 = np.roll(ref[:, :2], -1, 0) - 2 * ref[:, :2] + np.roll(ref[:, :2], 1, 0)
        kappa = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / np.maximum(np.linalg.norm(d1, axis=1) ** 3, 1e-9)
        i = int(np.argmax(kappa))
        raise TrackError(f"{where}: no racing line fits inside the track limits ({e}); the tightest "
                         f"point is x={ref[i, 0]:.1f}, y={ref[i, 1]:.1f} (centreline radius "
                         f"{1 / max(kappa[i], 1e-9):.1f} m); check the widths, units and point order") from e
    return np.column_stack([np.asarray(alpha, dtype=np.float64), normals])


def line_grid(ref: np.ndarray, alpha: np.ndarray, normals: np.ndarray, step_m: float,
              where: str) -> dict[str, np.ndarray]:
    """Re-sample the racing line through ``ref + alpha * normals`` every ``step_m`` of its length.

    Returns arrays per grid point: ``line_xy`` (M, 2), ``line_kappa`` (signed, + left),
    ``xy`` (the centreline point abeam), ``offset`` (line's offset from the centreline, + right),
    ``w_right`` / ``w_left`` (centreline half widths there).
    """
    n = len(ref)
    line = ref[:, :2] + normals * alpha[:, None]
    u = np.arange(n + 1, dtype=np.float64)
    wrap = lambda a: np.vstack([a, a[:1]]) if a.ndim == 2 else np.append(a, a[0])  # noqa: E731
    # A smoothing spline through the optimum: where the line rides an edge it would copy the
    # edge's survey noise (zigzags of a few dm); LINE_SMOOTH_M of tolerance removes them.
    closed_line = wrap(line)
    try:
        tck, _ = splprep([closed_line[:, 0], closed_line[:, 1]], u=u / n, k=3, per=1,
                         s=n * LINE_SMOOTH_M ** 2)
    except (ValueError, TypeError) as e:
        raise TrackError(f"{where}: the racing line cannot be fitted with a closed spline ({e})") from e

    def spl_line(x: np.ndarray, der: int = 0) -> np.ndarray:
        return np.column_stack(splev(np.asarray(x) / n, tck, der=der)) / n ** der

    spl_ref = CubicSpline(u, wrap(ref), bc_type="periodic")
    spl_alpha = CubicSpline(u, wrap(alpha), bc_type="periodic")
    # arc length of the line as a function of the knot parameter u (fine quadrature)
    fine = np.linspace(0.0, n, 16 * n + 1)
    speed = np.linalg.norm(spl_line(fine, 1), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * np.diff(fine))])
    m = int(round(arc[-1] / step_m))
    ug = np.interp(np.arange(m) * (arc[-1] / m), arc, fine)
    d1, d2 = spl_line(ug, 1), spl_line(ug, 2)
    kappa = (d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / np.maximum(np.linalg.norm(d1, axis=1) ** 3, 1e-9)
    tight = np.flatnonzero(np.abs(kappa) > 1.0 / MIN_LINE_RADIUS_M)
    if len(tight):
        i = int(tight[np.argmax(np.abs(kappa[tight]))])
        p = spl_line(np.array([ug[i]]))[0]
        raise TrackError(f"{where}: near x={p[0]:.1f}, y={p[1]:.1f} (row {int(ug[i]) + 1} of the "
                         f"re-sampled centreline) even the best line inside the limits has a radius of "
                         f"{1 / abs(kappa[i]):.1f} m, tighter than any motorcycle can take "
                         f"({MIN_LINE_RADIUS_M:.0f} m); check the widths, units and point order")
    cref = spl_ref(ug)
    return {"line_xy": spl_line(ug), "line_kappa": kappa, "xy": cref[:, :2], "offset": spl_alpha(ug),
            "w_right": cref[:, 2], "w_left": cref[:, 3]}
