"""The expert (rule-based) coach: compares the rider with the pro reference at the same place.

The coach is privileged: it reads the simulator state (track position, the rider's
perception delay) and the pro's speed profile on the same vehicle, which the device never sees. Its cues are
the labels behaviour cloning learns from, and the "rule-based coach" baseline in
evaluations.

Rules, first match wins (thresholds in :class:`CoachRules`). "Ahead" is where the rider
will be when the cue is perceived (its perception delay plus a short anticipation):

1. faster than the pro at the same place while the pro is slowing for what comes
   next, or the rider's own plan for the next apex would use more grip than the ride
   really has -> both motors, high frequency (brake / slow);
2. well off the racing line -> the motor on the side to correct towards;
3. slower than the pro ahead, near the line, with grip to spare on a grippy surface,
   while the rider is braking gently or held on part throttle (braking early, or late
   on the gas at the exit) -> both motors, low frequency (carry speed);
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
from motocoach.training.vehicles import VehicleProfile, get_vehicle


def freq01(hz: float) -> float:
    """Physical frequency in Hz -> normalized action value."""
    return float(load_schema().physical_to_actions(np.array([0.0, 0.0, hz], dtype=np.float32))[2])


@dataclass(frozen=True)
class CoachRules:
    """Thresholds of the expert coach (see the module docstring)."""

    brake_over_ref: float = 1.03      # v > 1.03 x pro speed here, pro slowing -> brake cue
    line_error_m: float = 1.0         # |line deviation| above this ...
    line_window_m: float = 500.0      # ... within this distance before an apex -> side cue
    push_under_ref: float = 0.97      # v < 0.97 x pro speed ahead ...
    push_max_usage: float = 0.7       # ... with grip to spare ...
    push_max_line_m: float = 0.8      # ... near the line ...
    push_gentle_brake: float = 0.5    # ... braking gently (brake demand below this) ...
    push_max_throttle: float = 0.35   # ... or held on part throttle ...
    push_min_grip: float = 0.98       # ... on a surface with at least this share of the nominal grip -> carry-speed cue
    slow_usage: float = 2.0           # friction usage above this -> brake / slow cue
    overcook_usage: float = 0.92      # the rider's planned apex speed would use more grip than this
    overcook_window_m: float = 150.0  # ... and the apex is this close -> brake / slow cue
    quiet_when_correcting: bool = False  # privileged: no side cue while the rider moves back
    anticipation_s: float = 0.3       # look ahead beyond the rider's perception delay
    intensity: float = 0.8
    brake_hz: float = 250.0
    side_hz: float = 150.0
    push_hz: float = 75.0


def _pro_reference(track: Track, vehicle: VehicleProfile, rides: int = 8, seed: int = 0) -> np.ndarray:
    sim = RideSim(track, get_rider("pro"), n=rides, seed=seed, vehicle=vehicle)
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


def pro_reference(track: Track, vehicle: VehicleProfile | None = None) -> np.ndarray:
    """(M,) the pro rider's mean speed at each 1 m grid point of ``track`` (m/s) on ``vehicle``
    (default the pro's own), cached: the coach compares a rider with a pro on the same bike."""
    vehicle = vehicle or get_vehicle(get_rider("pro").vehicle)
    key = (track.name, track.source, track.n_grid, vehicle)
    if key not in _REFERENCES:
        _REFERENCES[key] = _pro_reference(track, vehicle)
    return _REFERENCES[key]


class CueEncoder:
    """Turns the rule decisions into the cue language (actions in [0, 1]); shared by the coaches.

    Silence is labelled with the carry-speed frequency, so a policy that hesitates between
    silence and a carry-speed cue does not buzz an undefined frequency.
    """

    def __init__(self, rules: CoachRules) -> None:
        self.rules = rules
        self.f_brake, self.f_side, self.f_thr = (freq01(rules.brake_hz), freq01(rules.side_hz),
                                                 freq01(rules.push_hz))

    def __call__(self, slow: np.ndarray, side: np.ndarray, deviation: np.ndarray,
                 push: np.ndarray) -> np.ndarray:
        k = self.rules.intensity
        out = np.zeros((len(slow), 3), dtype=np.float32)
        out[:, 2] = self.f_thr
        out[slow] = (k, k, self.f_brake)
        # positive deviation = right of the line -> correct towards the left (left motor)
        out[side & (deviation > 0)] = (k, 0.0, self.f_side)
        out[side & (deviation < 0)] = (0.0, k, self.f_side)
        out[push] = (k, k, self.f_thr)
        return out


def held_back(rules: CoachRules, brake: np.ndarray, throttle: np.ndarray) -> np.ndarray:
    """Braking gently, or off the brakes and held on part throttle (what a push cue is for)."""
    return (((brake > 0.02) & (brake < rules.push_gentle_brake))
            | ((brake <= 0.02) & (throttle < rules.push_max_throttle)))


class ExpertCoach:
    """Rule-based coach for rides in a :class:`RideSim`; ``coach(sim)`` -> actions (n, 3).

    Args:
        track: the track the rides are on (its pro reference is computed once and cached).
        rules: thresholds and cue shapes.

    The pro reference is the pro's speed on the same vehicle as the coached rides.
    """

    def __init__(self, track: Track, rules: CoachRules = CoachRules()) -> None:
        self.track, self.rules = track, rules
        self.encode = CueEncoder(rules)

    def __call__(self, sim: RideSim) -> np.ndarray:
        r = self.rules
        idx = sim._grid(sim.s)
        lead_s = sim.delay_steps * DT + r.anticipation_s
        ahead = (idx + (sim.v * lead_s / GRID_M).astype(np.int64)) % self.track.n_grid
        v_ref = pro_reference(self.track, sim.vehicle)
        v_here, v_ahead = v_ref[idx], v_ref[ahead]
        v, e, usage, thr = sim.v, sim.e, sim.usage, sim.thr
        near_apex = self.track.dist_to_apex[idx] < r.line_window_m
        # faster than the pro here while the pro is slowing for what comes next
        # privileged: the rider's own plan for the next apex against the grip actually there
        overcook = (sim.overcook_ratio() > r.overcook_usage) & (self.track.dist_to_apex[idx] < r.overcook_window_m)
        brake = (((v > r.brake_over_ref * v_here) & (v_ahead < v_here)) | (usage > r.slow_usage)
                 | (overcook & (sim.conf > -0.5)))
        # privileged: stay silent while the rider is already moving back towards the line
        correcting = sim.u_lat * -np.sign(e) > 0.5 * sim.rider.line_correction_mps
        side = ~brake & near_apex & (np.abs(e) > r.line_error_m) & ~(correcting & r.quiet_when_correcting)
        push = (~brake & ~side & (v < r.push_under_ref * np.minimum(v_here, v_ahead))
                & held_back(r, sim.brk, thr)
                & (usage < r.push_max_usage) & (np.abs(e) < r.push_max_line_m)
                & (sim.grip_ratio >= r.push_min_grip))
        return self.encode(brake, side, e, push)


class TelemetryRuleCoach:
    """A rule coach that sees only what the unit sees (the schema's telemetry): a baseline.

    First match wins, with the thresholds of :class:`CoachRules`: friction usage above
    ``overcook_usage`` -> slow cue; off the line by more than ``line_error_m`` within
    ``line_window_m`` of an apex -> side cue towards the line; grip to spare, near the line,
    and braking gently or held on part throttle -> carry-speed cue; otherwise silence.
    """

    def __init__(self, rules: CoachRules = CoachRules()) -> None:
        self.rules = rules
        self.col = {n: i for i, n in enumerate(load_schema().feature_names)}
        self.encode = CueEncoder(rules)

    def __call__(self, sim: RideSim) -> np.ndarray:
        r, obs = self.rules, sim.observe()
        usage, dev = obs[:, self.col["friction_usage"]], obs[:, self.col["line_deviation"]]
        brk, thr = obs[:, self.col["brake"]], obs[:, self.col["throttle"]]
        near_apex = obs[:, self.col["dist_to_apex"]] < r.line_window_m
        slow = usage > r.overcook_usage
        side = ~slow & near_apex & (np.abs(dev) > r.line_error_m)
        push = (~slow & ~side & (usage < r.push_max_usage) & (np.abs(dev) < r.push_max_line_m)
                & held_back(r, brk, thr))
        return self.encode(slow, side, dev, push)
