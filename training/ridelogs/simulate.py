"""Simulated rides as logger files: the simulator's truth, then what a logger would have written.

:func:`simulate_ride` rides the simulator (uncoached) from a random point of the track for a
number of laps and keeps its truth at 20 Hz (position on the track, speed, lean, pedals and the
schema telemetry :meth:`RideSim.observe` gives). :func:`logged` turns that truth into a
:class:`RideLog` at a logger's rate with the faults real logs have: GPS noise (a slow
wander plus white noise, 1-3 m), Doppler speed noise, IMU noise, dropouts and one GPS jump.
Positions become WGS84 with pymap3d around ``origin`` (the track CSV's x, y are east, north).

>>> ride = simulate_ride("kestrel", "amateur", laps=0.2, seed=1)
>>> ride.obs.shape[1], bool(ride.t[1] - ride.t[0] == 0.05)
(8, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motocoach.training.ridelogs.log import G, RideLog
from motocoach.training.ridelogs.trackgeo import TrackGeometry

DEFAULT_ORIGIN = (47.2197, 14.7647, 0.0)   # where the local frame of a simulated track is put (WGS84)


@dataclass
class SimRide:
    """The simulator's truth at 20 Hz (index i = time ``t[i]``)."""

    track: object
    t: np.ndarray
    progress: np.ndarray      # m along the racing line since the start line of lap 0 (may start mid-lap)
    e: np.ndarray             # m off the racing line, + right
    xy: np.ndarray            # (T, 2) east, north in the track's frame
    v: np.ndarray
    lat_g: np.ndarray
    lon_g: np.ndarray
    lean: np.ndarray
    throttle: np.ndarray
    brake: np.ndarray
    obs: np.ndarray           # (T, n_features) the schema telemetry
    crossings_t: np.ndarray   # times the start/finish line was crossed
    rider: str = ""


def simulate_ride(track, rider: str, *, laps: float = 2.5, seed: int = 0) -> SimRide:
    """``laps`` laps of uncoached riding, starting at a random point (an out-lap) and stopping
    mid-lap (an in-lap). A ride that leaves the track ends there."""
    from motocoach.training.riders import get_rider
    from motocoach.training.sim import DT, RideSim
    from motocoach.training.tracks import Track, get_track

    tr = track if isinstance(track, Track) else get_track(track)
    sim = RideSim(tr, get_rider(rider), n=1, seed=seed, random_start=True)
    geo = TrackGeometry(tr)
    start = float(sim.s[0])
    steps = int(laps * tr.length_m / 15.0 / DT) + 1        # generous: the ride stops at `laps` laps
    rec: dict[str, list] = {k: [] for k in ("t", "s", "e", "v", "lat_g", "thr", "brk", "obs")}
    zeros = np.zeros((1, 3))
    for _ in range(steps):
        rec["t"].append(float(sim.t[0]))
        rec["s"].append(float(sim.s[0]))
        rec["e"].append(float(sim.e[0]))
        rec["v"].append(float(sim.v[0]))
        rec["lat_g"].append(float(sim.a_lat[0] / G))
        rec["thr"].append(float(sim.thr[0]))
        rec["brk"].append(float(sim.brk[0]))
        rec["obs"].append(sim.observe()[0])
        if sim.s[0] - start >= laps * tr.length_m:
            break
        if sim.step(zeros).offtrack[0]:
            break
    s = np.array(rec["s"])
    t = np.array(rec["t"])
    v = np.array(rec["v"])
    e = np.array(rec["e"])
    lat_g = np.array(rec["lat_g"])
    lap_no = np.floor(s / tr.length_m)
    cross = np.flatnonzero(np.diff(lap_no) > 0)
    # the crossing time within the step, assuming constant speed over it
    frac = (lap_no[cross + 1] * tr.length_m - s[cross]) / np.maximum(s[cross + 1] - s[cross], 1e-9)
    return SimRide(track=tr, t=t, progress=s, e=e, xy=geo.position(s, e), v=v, lat_g=lat_g,
                   lon_g=np.gradient(v, t) / G, lean=np.degrees(np.arctan(lat_g)), throttle=np.array(rec["thr"]),
                   brake=np.array(rec["brk"]), obs=np.array(rec["obs"], np.float32),
                   crossings_t=t[cross] + frac * DT, rider=rider)


@dataclass(frozen=True)
class LoggerFaults:
    """How far a simulated logger is from the truth (1 sigma unless said otherwise)."""

    gps_wander_m: float = 1.5       # slowly varying GPS error (Ornstein-Uhlenbeck, tau below)
    gps_wander_tau_s: float = 8.0
    gps_white_m: float = 0.4
    speed_mps: float = 0.15         # Doppler speed noise
    acc_g: float = 0.03
    lean_deg: float = 1.0
    clock_jitter_s: float = 0.002
    dropouts: int = 2               # windows with no rows at all
    dropout_s: float = 0.8
    jump_m: float = 25.0            # one GPS jump (multipath) of this size ...
    jump_s: float = 1.0             # ... lasting this long


def logged(ride: SimRide, rate_hz: float, *, seed: int = 0, faults: LoggerFaults = LoggerFaults(),
           origin: tuple[float, float, float] = DEFAULT_ORIGIN, channels: tuple[str, ...] | None = None) -> RideLog:
    """What a logger at ``rate_hz`` would have recorded of ``ride`` (canonical channels)."""
    import pymap3d

    rng = np.random.default_rng(seed)
    f = faults
    t = np.arange(ride.t[0], ride.t[-1], 1.0 / rate_hz)
    t = t + rng.uniform(-f.clock_jitter_s, f.clock_jitter_s, len(t))
    t = np.clip(t, ride.t[0], ride.t[-1])
    t[1:] = np.maximum(t[1:], t[:-1] + 1e-3)
    keep = np.ones(len(t), bool)
    # faults land away from the ends of the ride; a ride too short for that gets none
    long_enough = t[-1] - t[0]
    for _ in range(f.dropouts if long_enough > 10 + f.dropout_s else 0):
        a = rng.uniform(t[0] + 5, t[-1] - 5)
        keep &= ~((t >= a) & (t < a + f.dropout_s))
    t = t[keep]

    def at(x):
        return np.interp(t, ride.t, x)

    n = len(t)
    # GPS error: OU wander (exact discretisation) + white noise, per axis
    a = np.exp(-np.diff(t, prepend=t[0]) / f.gps_wander_tau_s)
    wander = np.zeros((n, 2))
    wander[0] = rng.normal(0, f.gps_wander_m, 2)
    for i in range(1, n):
        wander[i] = a[i] * wander[i - 1] + np.sqrt(1 - a[i] ** 2) * rng.normal(0, f.gps_wander_m, 2)
    xy = np.column_stack([at(ride.xy[:, 0]), at(ride.xy[:, 1])]) + wander + rng.normal(0, f.gps_white_m, (n, 2))
    if f.jump_m > 0 and long_enough > 20 + f.jump_s:
        j0 = rng.uniform(t[0] + 10, t[-1] - 10)
        jump = (t >= j0) & (t < j0 + f.jump_s)
        ang = rng.uniform(0, 2 * np.pi)
        xy[jump] += f.jump_m * np.array([np.cos(ang), np.sin(ang)])
    lat, lon, _ = pymap3d.enu2geodetic(xy[:, 0], xy[:, 1], np.zeros(n), *origin)
    lap = np.floor(at(ride.progress) / ride.track.length_m)
    ch = {"lat": np.asarray(lat), "lon": np.asarray(lon),
          "speed": np.maximum(at(ride.v) + rng.normal(0, f.speed_mps, n), 0.0),
          "lat_g": at(ride.lat_g) + rng.normal(0, f.acc_g, n),
          "lon_g": at(ride.lon_g) + rng.normal(0, f.acc_g, n),
          "lean": at(ride.lean) + rng.normal(0, f.lean_deg, n),
          "throttle": np.clip(at(ride.throttle), 0, 1), "brake": np.clip(at(ride.brake), 0, 1),
          "lap": lap - lap[0]}
    if channels is not None:
        ch = {k: v for k, v in ch.items() if k in channels}
    meta = {"origin": f"{origin[0]:.7f} {origin[1]:.7f} {origin[2]:.1f}", "track": ride.track.name,
            "rider": ride.rider, "simulated": "yes"}
    return RideLog(source=f"simulated {ride.track.name}", fmt="sim", t=t - t[0], channels=ch, meta=meta,
                   lines=np.arange(n) + 1, t0_unix=1_790_000_000.0 + float(t[0]))
