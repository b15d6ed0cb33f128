"""The reference lap: the quasi-steady-state minimum-time speed profile of a vehicle on a track.

A forward/backward pass over the racing line's curvature within the vehicle's g-g-v
diagram (``tph.calc_vel_profile``, the TUM FTM library the racetrack-database's lines
come from): lateral acceleration up to the lean/grip limit, braking up to the grip/stoppie
limit, drive up to the power/wheelie/traction limit, drag on top, and an ellipse between
the longitudinal and lateral limits. This is the machine's limit lap; riders lap slower.

>>> from motocoach.training.tracks import get_track
>>> from motocoach.training.vehicles import get_vehicle
>>> lap = reference_lap(get_track("kestrel"), get_vehicle("superbike"))
>>> bool(30 < lap.lap_time_s < 200), bool(lap.v.max() <= get_vehicle("superbike").top_speed_mps)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motocoach.training.tracks import GRID_M, Track
from motocoach.training.vehicles import G, RHO_AIR, VehicleProfile

GG_EXPONENT = 2.0        # ellipse between longitudinal and lateral limits
_CACHE: dict[tuple, "ReferenceLap"] = {}


@dataclass(frozen=True)
class ReferenceLap:
    """Speed (m/s) at each grid point of the racing line and the resulting lap time."""

    v: np.ndarray
    lap_time_s: float
    vehicle: str


def speed_profile(kappa: np.ndarray, vehicle: VehicleProfile, step_m: float = GRID_M,
                  lat_scale: float = 1.0, brake_scale: float = 1.0, drive_scale: float = 1.0) -> np.ndarray:
    """Minimum-time speed profile (m/s) on a closed line of curvature ``kappa`` every ``step_m``.

    The scales shrink the vehicle's limits (a rider who uses 90 % of the lateral grip has
    ``lat_scale = 0.9``); all 1.0 is the machine's limit.
    """
    import trajectory_planning_helpers as tph

    v_top = vehicle.top_speed_mps
    speeds = np.linspace(0.0, v_top * 1.05, 40)
    ggv = vehicle.ggv(speeds)
    ggv[:, 1] *= brake_scale
    ggv[:, 2] *= lat_scale
    drive = vehicle.drive_max(speeds) * drive_scale - vehicle.crr * G
    machines = np.column_stack([speeds, np.maximum(drive, 0.05)])
    v = tph.calc_vel_profile.calc_vel_profile(
        ax_max_machines=machines, kappa=np.asarray(kappa, dtype=np.float64),
        el_lengths=np.full(len(kappa), step_m), closed=True,
        drag_coeff=0.5 * RHO_AIR * vehicle.cda_m2, m_veh=vehicle.mass_kg, ggv=ggv,
        v_max=v_top, dyn_model_exp=GG_EXPONENT)
    return np.minimum(np.asarray(v, dtype=np.float64), v_top)


def lap_time(v: np.ndarray, step_m: float = GRID_M) -> float:
    """Time to cover a closed profile sampled every ``step_m``, s (trapezoidal in 1/v)."""
    inv = 1.0 / np.maximum(v, 0.1)
    return float(np.sum(0.5 * (inv + np.roll(inv, -1))) * step_m)


def reference_lap(track: Track, vehicle: VehicleProfile) -> ReferenceLap:
    """The vehicle's limit lap on ``track`` (cached per track and vehicle)."""
    key = (track.name, track.source, track.n_grid, vehicle)
    if key not in _CACHE:
        v = speed_profile(track.line_kappa, vehicle)
        _CACHE[key] = ReferenceLap(v=v, lap_time_s=lap_time(v), vehicle=vehicle.name)
    return _CACHE[key]
