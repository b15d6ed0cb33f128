"""What a rider aims for: speed plans along the racing line, one per confidence level.

A rider plans like the reference lap but inside its own limits: it corners at
``speed_factor`` of the limit speed (``speed_factor**2`` of the lateral grip), brakes at its
own deceleration, and finishes braking ``brake_margin_m`` early (the plan is the minimum
over that much road ahead). Confidence (moved by throttle/brake cues, in [-1, 1]) changes
all three, so the plan is tabulated at :data:`CONF_LEVELS` and interpolated: one gather
per ride and step, whatever the track.

The rider plans with the vehicle's nominal grip; the grip of each ride varies around it
(``GRIP_RANGE`` in the simulator), which is where a push on a low-grip day bites.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d

from motocoach.training.reflap import speed_profile
from motocoach.training.riders import RiderProfile
from motocoach.training.tracks import GRID_M, Track
from motocoach.training.vehicles import VehicleProfile

CONF_LEVELS = np.array([-1.0, 0.0, 0.5, 1.0])
CAUTION_SPEED = 0.06       # corner-speed cut at full caution (slow cue)
PUSH_BRAKE_FRAC = 0.8      # a pushed rider brakes up to this share of the vehicle's limit
MARGIN_PUSH = 1.0          # share of brake_margin_m a full push removes
PLAN_DRIVE_SCALE = 5.0     # the plan is an envelope: drive is limited by the physics, not the plan
_CACHE: dict[tuple, "RiderPlan"] = {}


def corner_fraction(rider: RiderProfile, conf: np.ndarray | float) -> np.ndarray:
    """Fraction of the limit corner speed the rider aims for at confidence ``conf``."""
    conf = np.asarray(conf, dtype=np.float64)
    push, caution = np.maximum(conf, 0.0), np.maximum(-conf, 0.0)
    return np.minimum(rider.speed_factor * (1.0 + rider.confidence_gain * push - CAUTION_SPEED * caution), 1.0)


def brake_g(rider: RiderProfile, vehicle: VehicleProfile, conf: np.ndarray | float) -> np.ndarray:
    """Braking (tyre share, g) the rider uses: its own, raised by a push, never above the vehicle's."""
    push = np.maximum(np.asarray(conf, dtype=np.float64), 0.0)
    own = min(rider.brake_decel_g, vehicle.brake_max_g)
    target = max(PUSH_BRAKE_FRAC * vehicle.brake_max_g - own, 0.0)
    return own + push * target


@dataclass(frozen=True)
class RiderPlan:
    """``v2[level, i]``: planned speed squared at grid point ``i`` for each of :data:`CONF_LEVELS`."""

    v2: np.ndarray

    def lookup(self, idx: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """Planned speed squared at grid indices ``idx`` for confidences ``conf`` (linear in conf)."""
        c = np.clip(conf, CONF_LEVELS[0], CONF_LEVELS[-1])
        hi = np.clip(np.searchsorted(CONF_LEVELS, c, side="right"), 1, len(CONF_LEVELS) - 1)
        lo = hi - 1
        w = (c - CONF_LEVELS[lo]) / (CONF_LEVELS[hi] - CONF_LEVELS[lo])
        return (1.0 - w) * self.v2[lo, idx] + w * self.v2[hi, idx]


def rider_plan(track: Track, rider: RiderProfile, vehicle: VehicleProfile) -> RiderPlan:
    """The rider's speed plans on ``track`` (cached per track, rider and vehicle)."""
    key = (track.name, track.source, track.n_grid, rider, vehicle)
    if key in _CACHE:
        return _CACHE[key]
    rows = []
    for c in CONF_LEVELS:
        frac = float(corner_fraction(rider, c))
        v = speed_profile(track.line_kappa, vehicle, lat_scale=frac ** 2,
                          brake_scale=float(brake_g(rider, vehicle, c)) / vehicle.brake_max_g,
                          drive_scale=PLAN_DRIVE_SCALE)
        margin = rider.brake_margin_m * (1.0 - MARGIN_PUSH * max(c, 0.0))
        k = int(round(margin / GRID_M))
        if k > 0:     # braking done `margin` early: the plan is the slowest point that far ahead
            v = minimum_filter1d(v, size=k + 1, origin=-((k + 1) // 2), mode="wrap")
        rows.append(v * v)
    _CACHE[key] = RiderPlan(v2=np.array(rows))
    return _CACHE[key]
