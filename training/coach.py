"""The expert (rule-based) coach: compares the rider with the pro reference at the same place.

The coach is privileged: it reads the simulator state (track position, the rider's
perception delay) and the pro's speed profile, which the device never sees. Its cues are
the labels behaviour cloning learns from, and the "rule-based coach" baseline in
evaluations.

Rules, first match wins (thresholds in :class:`CoachRules`):

1. faster than the pro at the same place while the pro is slowing for what comes after
   the rider's reaction time -> both motors, high frequency (brake / slow);
2. well off the racing line on the approach to an apex -> the motor on the side to
   correct towards;
3. slower than the pro there, on the gas but not fully, near the line, with grip to
   spare -> both motors, low frequency (throttle / carry speed);
4. otherwise silence (sparse cues keep the rider from habituating).

>>> from motocoach.training.tracks import get_track
>>> v = pro_reference(get_track("kestrel"))
>>> v.shape == (get_track("kestrel").n_grid,), bool(v.min() > 5)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from motocoach.schema import load_schema
from motocoach.training.riders import get_rider
from motocoach.training.sim import DT, RideSim
from motocoach.training.tracks import GRID_M, Track


def freq01(hz: float) -> float:
    """Physical frequency in Hz -> normalized action value."""
    return float(load_schema().physical_to_actions(np.array([0.0, 0.0, hz], dtype=np.float32))[2])


@dataclass(frozen=True)
class CoachRules:
    """Thresholds of the expert coach (see the module docstring)."""

    brake_over_ref: float = 1.03      # v > 1.03 x pro speed here, pro slowing -> brake cue
    line_error_m: float = 1.2         # |line deviation| above this ...
    line_window_m: float = 120.0      # ... within this distance before an apex -> side cue
    throttle_under_ref: float = 0.97  # v < 0.97 x pro speed ahead ...
    throttle_band: tuple[float, float] = (0.4, 0.95)   # ... rider on the gas, not fully ...
    throttle_max_usage: float = 0.7   # ... with grip to spare -> throttle cue
    throttle_max_line_m: float = 1.0
    anticipation_s: float = 0.3       # look ahead beyond the rider's perception delay
    intensity: float = 0.8
    brake_hz: float = 250.0
    side_hz: float = 150.0
    throttle_hz: float = 75.0


def _pro_reference(track: Track, rides: int = 8, seed: int = 0) -> np.ndarray:
    sim = RideSim(track, get_rider("pro"), n=rides, seed=seed)
    total = np.zeros(track.n_grid)
    count = np.zeros(track.n_grid)
    zeros = np.zeros((rides, 3))
    for _ in range(int(2.5 * track.length_m / 10.0 / DT)):   # at >= 10 m/s: two laps
        r = sim.step(zeros)
        if r.offtrack.any():
            sim.reset(r.offtrack)
        idx = sim._grid(sim.s)
        np.add.at(total, idx, sim.v)
        np.add.at(count, idx, 1.0)
        if sim.laps.min() >= 2:
            break
    seen = count > 0
    v = np.interp(np.arange(track.n_grid), np.flatnonzero(seen), total[seen] / count[seen],
                  period=track.n_grid)
    return v


_REFERENCES: dict[tuple, np.ndarray] = {}


def pro_reference(track: Track) -> np.ndarray:
    """(M,) the pro rider's mean speed at each 1 m grid point of ``track`` (m/s), cached."""
    key = (track.name, track.source, track.n_grid)
    if key not in _REFERENCES:
        _REFERENCES[key] = _pro_reference(track)
    return _REFERENCES[key]


class ExpertCoach:
    """Rule-based coach for rides in a :class:`RideSim`; ``coach(sim)`` -> actions (n, 3).

    Args:
        track: the track the rides are on (its pro reference is computed once and cached).
        rules: thresholds and cue shapes.
    """

    def __init__(self, track: Track, rules: CoachRules = CoachRules()) -> None:
        self.track, self.rules = track, rules
        self.v_ref = pro_reference(track)
        self.f_brake, self.f_side, self.f_thr = (freq01(rules.brake_hz), freq01(rules.side_hz),
                                                 freq01(rules.throttle_hz))
        self.f_idle = 0.5

    def __call__(self, sim: RideSim) -> np.ndarray:
        r = self.rules
        idx = sim._grid(sim.s)
        lead_s = sim.delay_steps * DT + r.anticipation_s
        ahead = (idx + (sim.v * lead_s / GRID_M).astype(np.int64)) % self.track.n_grid
        v_here, v_ahead = self.v_ref[idx], self.v_ref[ahead]
        v, e, usage, thr = sim.v, sim.e, sim.usage, sim.thr
        near_apex = self.track.dist_to_apex[idx] < r.line_window_m
        # faster than the pro here while the pro is slowing for what comes next
        brake = (v > r.brake_over_ref * v_here) & (v_ahead < v_here)
        side = ~brake & near_apex & (np.abs(e) > r.line_error_m)
        throttle = (~brake & ~side & (v < r.throttle_under_ref * np.minimum(v_here, v_ahead))
                    & (thr > r.throttle_band[0]) & (thr < r.throttle_band[1])
                    & (usage < r.throttle_max_usage) & (np.abs(e) < r.throttle_max_line_m))
        out = np.zeros((sim.n, 3), dtype=np.float32)
        out[:, 2] = self.f_idle
        out[brake] = (r.intensity, r.intensity, self.f_brake)
        # positive deviation = right of the line -> correct towards the left (left motor)
        out[side & (e > 0)] = (r.intensity, 0.0, self.f_side)
        out[side & (e < 0)] = (0.0, r.intensity, self.f_side)
        out[throttle] = (r.intensity, r.intensity, self.f_thr)
        return out
