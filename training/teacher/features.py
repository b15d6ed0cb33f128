"""What the teacher sees and predicts, built the same way for simulated rides and imported logs.

Inputs, per 20 Hz step ``t``:

* ``history``: the schema telemetry of steps ``t-39 .. t`` (2 s), normalized by the
  schema (the first steps of a ride repeat its first row);
* ``context``: the track ahead along the racing line from the rider's position (signed
  curvature every :data:`AHEAD_STEP_M` over :data:`AHEAD_M`, distance to and curvature of
  the next :data:`NEXT_CORNERS` apexes) and the vehicle (power/mass, braking, grip, lean).

Targets: the expert's :data:`TARGETS` over steps ``t+1 .. t+20`` (1 s), and the time the
expert took over the next :data:`SECTOR_M` metres (the performance head).

Nothing here is privileged: the telemetry is the unit's, the track ahead is the track model
a log is map-matched to, and the vehicle is the profile the rider names.

>>> from motocoach.training.tracks import get_track
>>> from motocoach.training.vehicles import get_vehicle
>>> tr = get_track("kestrel")
>>> c = context(tr, np.array([0.0, 100.0]), get_vehicle("roadsport"))
>>> c.shape == (2, N_CONTEXT)
True
"""

from __future__ import annotations

import numpy as np

from motocoach.schema import load_schema
from motocoach.training.tracks import GRID_M, Track
from motocoach.training.vehicles import VehicleProfile

HISTORY_STEPS = 40          # 2 s at 20 Hz
HORIZON_STEPS = 20          # 1 s at 20 Hz
AHEAD_M = 150.0
AHEAD_STEP_M = 10.0
NEXT_CORNERS = 2
SECTOR_M = 150.0            # the performance head: expert time over this much track ahead
#: predicted channels (schema feature names) and the scale that brings each to about [-1, 1]
TARGETS = ("throttle", "brake", "roll_angle", "speed")
TARGET_SCALE = np.array([1.0, 1.0, 64.0, 90.0], dtype=np.float32)
SECTOR_SCALE_S = 10.0
KAPPA_SCALE = 50.0          # 1/m -> about [-1, 1] (a 50 m radius gives 1)
N_AHEAD = int(AHEAD_M / AHEAD_STEP_M) + 1
N_VEHICLE = 5
N_CONTEXT = N_AHEAD + 2 * NEXT_CORNERS + N_VEHICLE


def n_telemetry() -> int:
    return load_schema().n_features


def vehicle_vector(vehicle: VehicleProfile) -> np.ndarray:
    """(N_VEHICLE,) what the teacher knows of the machine, each about 0..1."""
    return np.array([vehicle.power_kw / vehicle.mass_kg, vehicle.brake_max_g / 1.5, vehicle.mu / 1.5,
                     vehicle.lateral_max_g / 1.5, vehicle.top_speed_mps / 90.0], dtype=np.float32)


def context(track: Track, s: np.ndarray, vehicle: VehicleProfile) -> np.ndarray:
    """(T, N_CONTEXT) float32: the track ahead of each lap position ``s`` (m) and the vehicle."""
    s = np.mod(np.asarray(s, dtype=np.float64), track.length_m)
    idx = (s / GRID_M).astype(np.int64) % track.n_grid
    offs = (np.arange(N_AHEAD) * AHEAD_STEP_M / GRID_M).astype(np.int64)
    kappa = track.line_kappa[(idx[:, None] + offs[None, :]) % track.n_grid] * KAPPA_SCALE
    apex = track.next_apex[idx]
    corners = []
    for k in range(NEXT_CORNERS):
        a = (apex + k) % len(track.apex_s)
        dist = np.mod(track.apex_s[a] - s, track.length_m)
        corners += [np.minimum(dist, 500.0) / AHEAD_M, track.apex_kappa[a] * KAPPA_SCALE]
    veh = np.broadcast_to(vehicle_vector(vehicle), (len(s), N_VEHICLE))
    return np.column_stack([kappa, np.column_stack(corners), veh]).astype(np.float32)


def history(features: np.ndarray) -> np.ndarray:
    """(T, HISTORY_STEPS, F) normalized telemetry windows ending at each step of one ride."""
    x = load_schema().normalize(np.asarray(features, dtype=np.float32))
    padded = np.concatenate([np.repeat(x[:1], HISTORY_STEPS - 1, axis=0), x])
    win = np.lib.stride_tricks.sliding_window_view(padded, HISTORY_STEPS, axis=0)   # (T, F, H)
    return np.ascontiguousarray(win.transpose(0, 2, 1))


def target_columns() -> list[int]:
    names = load_schema().feature_names
    return [names.index(n) for n in TARGETS]


def future_targets(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, HORIZON_STEPS, len(TARGETS)) scaled targets of steps t+1..t+20, and a (T,) mask of
    the steps whose whole horizon lies inside the ride."""
    y = np.asarray(features, dtype=np.float32)[:, target_columns()] / TARGET_SCALE
    t = len(y)
    idx = np.arange(t)[:, None] + np.arange(1, HORIZON_STEPS + 1)[None, :]
    ok = idx[:, -1] < t
    return y[np.minimum(idx, t - 1)], ok


def sector_time(progress: np.ndarray, t: np.ndarray, sector_m: float = SECTOR_M) -> tuple[np.ndarray, np.ndarray]:
    """(T,) seconds the ride took from each step over the next ``sector_m`` metres of
    ``progress`` (monotonic distance), and the mask of steps where the ride got that far."""
    progress = np.maximum.accumulate(np.asarray(progress, dtype=np.float64))
    goal = progress + sector_m
    j = np.searchsorted(progress, goal)
    ok = j < len(progress)
    jj = np.minimum(j, len(progress) - 1)
    lo = np.maximum(jj - 1, 0)
    span = np.maximum(progress[jj] - progress[lo], 1e-9)
    frac = np.clip((goal - progress[lo]) / span, 0.0, 1.0)
    t_goal = t[lo] + frac * (t[jj] - t[lo])
    return (t_goal - t).astype(np.float32), ok
