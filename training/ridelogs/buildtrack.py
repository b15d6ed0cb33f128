"""A track built from the logged laps when the rider has no centreline CSV.

The start/finish line is where the log first runs at speed; a lap closes each time the bike
comes back within :data:`CLOSE_M` of it, heading the same way, after at least
:data:`MIN_LAP_M`. The fastest such lap, evenly re-sampled and smoothed, is the centreline;
the half width is the other laps' spread around it (3 sigma + half a bike) but at least
:data:`DEFAULT_HALF_WIDTH_M`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from motocoach.errors import RideLogError

CLOSE_M = 20.0
MIN_LAP_M = 300.0
MIN_START_SPEED = 10.0
DEFAULT_HALF_WIDTH_M = 5.0
STEP_M = 5.0


def _laps(t: np.ndarray, xy: np.ndarray, speed: np.ndarray) -> list[tuple[int, int]]:
    moving = np.flatnonzero(np.nan_to_num(speed) > MIN_START_SPEED)
    if len(moving) < 10:
        raise RideLogError("cannot build a track from the log: the bike never runs above 10 m/s")
    i0 = int(moving[0])
    heading0 = xy[min(i0 + 3, len(xy) - 1)] - xy[i0]
    travelled = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    near = np.linalg.norm(xy - xy[i0], axis=1) < CLOSE_M
    starts = [i0]
    i = i0
    while True:
        cand = np.flatnonzero(near & (travelled > travelled[i] + MIN_LAP_M) & (np.arange(len(xy)) > i))
        if not len(cand):
            break
        # the closest fix of that pass, moving the same way as at the start
        j = int(cand[0])
        k = j
        while k + 1 < len(xy) and near[k + 1]:
            k += 1
        best = j + int(np.argmin(np.linalg.norm(xy[j:k + 1] - xy[i0], axis=1)))
        h = xy[min(best + 3, len(xy) - 1)] - xy[best]
        if float(np.dot(h, heading0)) > 0:
            starts.append(best)
        i = k
    if len(starts) < 2:
        raise RideLogError("cannot build a track from the log: it holds no complete lap (the bike never "
                           "returns to where it started); give the circuit with --track T.csv")
    return list(zip(starts[:-1], starts[1:]))


def track_from_laps(t: np.ndarray, xy: np.ndarray, speed: np.ndarray, name: str = "from-laps"):
    """Build a :class:`~motocoach.training.tracks.Track` from logged positions (east/north metres)."""
    from motocoach.training.raceline import resample_closed
    from motocoach.training.tracks import build_track

    laps = _laps(t, xy, speed)
    a, b = min(laps, key=lambda ab: t[ab[1]] - t[ab[0]])
    centre = resample_closed(xy[a:b], STEP_M)
    k = 5
    pad = np.vstack([centre[-k:], centre, centre[:k]])
    kernel = np.ones(2 * k + 1) / (2 * k + 1)
    centre = np.column_stack([np.convolve(pad[:, c], kernel, mode="valid") for c in (0, 1)])
    # lateral spread of every fix around the centreline
    d = np.roll(centre, -1, axis=0) - centre
    right = np.column_stack([d[:, 1], -d[:, 0]]) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    _, idx = cKDTree(centre).query(xy)
    off = np.sum((xy - centre[idx]) * right[idx], axis=1)
    half = np.full(len(centre), DEFAULT_HALF_WIDTH_M)
    for j in range(len(centre)):
        o = off[idx == j]
        if len(o) >= 3:
            half[j] = max(DEFAULT_HALF_WIDTH_M, 3.0 * float(np.std(o)) + 0.5)
    half = np.convolve(np.concatenate([half[-k:], half, half[:k]]), kernel, mode="valid")
    return build_track(np.column_stack([centre, half, half]), name=name, source="logged laps")
