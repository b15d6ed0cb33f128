"""Positions on a track: (distance along the racing line, offset from it) <-> east/north metres.

The simulator's lap distance ``s`` runs along the racing line (``Track.line_xy``, 1 m grid) and
its lateral offset ``e`` is measured from that line, positive to the right. Map-matching a
logged position gives the same two numbers, so imported telemetry lines up with simulated.

>>> from motocoach.training.tracks import get_track
>>> geo = TrackGeometry(get_track("kestrel"))
>>> xy = geo.position(np.array([100.0, 400.0]), np.array([1.5, -2.0]))
>>> s, e, _ = geo.match(xy)
>>> np.round(s, 1).tolist(), np.round(e, 1).tolist()
([100.0, 400.0], [1.5, -2.0])
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from motocoach.training.tracks import GRID_M, Track

CANDIDATES = 12          # nearest grid points considered per fix (parallel straights are near each other)


class TrackGeometry:
    """Racing-line geometry of ``track`` for mapping positions both ways."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.line = np.asarray(track.line_xy, np.float64)
        self.length = track.length_m
        d = np.roll(self.line, -1, axis=0) - self.line
        self.tangent = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        self.right = np.column_stack([self.tangent[:, 1], -self.tangent[:, 0]])
        self.seg_len = np.linalg.norm(d, axis=1)
        self.kdtree = cKDTree(self.line)

    def position(self, s: np.ndarray, e: np.ndarray) -> np.ndarray:
        """(N, 2) east/north of arc positions ``s`` (any lap) with offsets ``e``."""
        s = np.mod(np.asarray(s, np.float64), self.length) / GRID_M
        i = np.floor(s).astype(np.int64) % len(self.line)
        f = (s - np.floor(s))[:, None]
        base = self.line[i] + f * (self.line[(i + 1) % len(self.line)] - self.line[i])
        return base + np.asarray(e, np.float64)[:, None] * self.right[i]

    def match(self, xy: np.ndarray, speed: np.ndarray | None = None, t: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map-match positions: (s mod length, offset e + right, distance to the chosen segment).

        With ``speed`` and ``t`` the match follows the ride: of the nearest candidates it takes
        the one closest to where the previous fix plus speed x dt says the bike is, so a
        hairpin or parallel straight cannot pull a fix to the wrong part of the lap.
        """
        xy = np.asarray(xy, np.float64)
        k = min(CANDIDATES, len(self.line))
        dist, idx = self.kdtree.query(xy, k=k)
        n = len(xy)
        s_out, e_out, d_out = np.empty(n), np.empty(n), np.empty(n)
        prev_s = None
        for j in range(n):
            cands = idx[j]
            best = cands[0]
            if prev_s is not None and speed is not None and t is not None:
                dt = t[j] - t[j - 1]
                expect = prev_s + (speed[j] if np.isfinite(speed[j]) else 0.0) * dt
                gap = np.abs((cands * GRID_M - expect + self.length / 2) % self.length - self.length / 2)
                cost = dist[j] + 0.2 * np.maximum(gap - (20.0 + 5.0 * dt), 0.0)
                best = cands[int(np.argmin(cost))]
            s_out[j], e_out[j], d_out[j] = self._project(xy[j], int(best))
            prev_s = s_out[j]
        return s_out, e_out, d_out

    def _project(self, p: np.ndarray, i: int) -> tuple[float, float, float]:
        """Project ``p`` onto the segment before or after grid point ``i``, whichever is nearer."""
        best = None
        for a in ((i - 1) % len(self.line), i):
            u = float(np.dot(p - self.line[a], self.tangent[a]))
            u = min(max(u, 0.0), self.seg_len[a])
            foot = self.line[a] + u * self.tangent[a]
            d = float(np.linalg.norm(p - foot))
            if best is None or d < best[2]:
                e = float(np.dot(p - foot, self.right[a]))
                best = ((a * GRID_M + u) % self.length, e, d)
        return best

    def kappa(self, s: np.ndarray) -> np.ndarray:
        """Signed racing-line curvature at ``s`` (1/m, + left turn)."""
        return np.interp(np.mod(s, self.length), np.arange(len(self.line)) * GRID_M, self.track.line_kappa,
                         period=self.length)

    def dist_to_apex(self, s: np.ndarray) -> np.ndarray:
        """Distance along the track to the next apex, as the simulator computes it."""
        s = np.mod(s, self.length)
        idx = (s / GRID_M).astype(np.int64) % len(self.line)
        return np.maximum(self.track.dist_to_apex[idx] - np.mod(s, GRID_M), 0.0)

    def edges_exceeded(self, s: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Metres beyond the track edge (0 inside) of positions on the racing line frame."""
        idx = (np.mod(s, self.length) / GRID_M).astype(np.int64) % len(self.line)
        n = self.track.line_offset[idx] + e
        return np.maximum(n - self.track.w_right[idx], 0.0) + np.maximum(-self.track.w_left[idx] - n, 0.0)
