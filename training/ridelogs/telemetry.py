"""From a ride log to the unit's 20 Hz telemetry: local metres, map-matching, laps, features.

Steps (docs/ride-logs.md has the details and the tolerances):

1. WGS84 -> east/north metres around the track's origin with ``pymap3d.geodetic2enu``.
2. GPS jumps: a fix farther from the last good fix than the logged speed allows (plus a
   margin) is dropped until the fixes agree again.
3. Map-matching to the racing line (:class:`TrackGeometry`): distance along the lap and
   offset from the line; without GPS the distance is the integral of the logged speed from the
   start line, and the offset is unknown (0, stated as estimated).
4. Laps split where the distance along the lap wraps past the start/finish line; each lap is
   ``outlap`` (before the first crossing), ``inlap`` (after the last), ``cut`` (skipped part
   of the track, or shorter than 80 % of the median lap) or ``valid``.
5. Resampled to the schema's rate; features the log does not have are estimated, and
   :attr:`LogTelemetry.estimated` says how.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from motocoach.errors import RideLogError
from motocoach.schema import load_schema
from motocoach.training.ridelogs.log import G, RideLog
from motocoach.training.ridelogs.trackgeo import TrackGeometry

JUMP_MARGIN_M = 8.0          # a fix may be this far from where speed x time puts it (GPS noise)
JUMP_MARGIN_MPS = 4.0        # ... plus this much per second since the last good fix
RELOCK_S = 3.0               # after this long without agreement the fixes are believed again
GAP_S = 0.5                  # a hole in the good fixes longer than this is a gap
LINE_SMOOTH_S = 1.0          # centred moving average of the offset (GPS white noise)
CUT_SKIP_M = 30.0            # a lap that skips more track than this is cut
ROLL_BLEND_S = 2.0           # roll-rate integral vs steady-turn lean: the crossover time
OFF_TRACK_M = 10.0           # most fixes this far outside the track edges: wrong track or origin
_ORIGIN = re.compile(r"origin[=\s]\s*([-\d.]+)[ ,]+([-\d.]+)(?:[ ,]+([-\d.]+))?")


@dataclass
class Lap:
    """One lap of a log: its index, start and end time (s), time and kind."""

    index: int
    start_t: float
    end_t: float
    kind: str               # outlap | valid | cut | inlap
    why: str = ""

    @property
    def time_s(self) -> float:
        return self.end_t - self.start_t


@dataclass
class LogTelemetry:
    """A log as the unit's telemetry.

    Attributes:
        t: (T,) s, at the schema rate.
        features: (T, n_features) float32, schema order, clamped to the schema ranges.
        s: (T,) m along the lap; progress: (T,) m since the first crossing (negative on the out-lap).
        lap: (T,) index into ``laps``.
        gap: (T,) True where the row falls in a hole in the log (interpolated across).
        xy: (T, 2) east/north metres of the matched position (for maps).
        laps: every lap found.
        estimated: feature name -> how it was estimated (absent = measured).
        notes: what the import had to assume or correct.
        jumps: GPS fixes dropped as jumps (indices into the log).
    """

    t: np.ndarray
    features: np.ndarray
    s: np.ndarray
    progress: np.ndarray
    lap: np.ndarray
    gap: np.ndarray
    xy: np.ndarray
    laps: list[Lap]
    track: object
    estimated: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jumps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crossings_t: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def column(self, name: str) -> np.ndarray:
        return self.features[:, load_schema().feature_names.index(name)]

    @property
    def best_lap(self) -> Lap | None:
        valid = [lp for lp in self.laps if lp.kind == "valid"]
        return min(valid, key=lambda lp: lp.time_s) if valid else None


def origin_of(log: RideLog, origin: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
    """The WGS84 point of the track frame's (0, 0): given, or from the log's header (our exports write it)."""
    if origin is not None:
        return origin
    text = " ".join(f"{k} {v}" for k, v in log.meta.items())
    m = _ORIGIN.search(text)
    if m:
        return float(m.group(1)), float(m.group(2)), float(m.group(3) or 0.0)
    return None


def enu(log: RideLog, origin: tuple[float, float, float]) -> np.ndarray:
    """(N, 2) east/north metres of the log's fixes (NaN where no fix)."""
    import pymap3d

    lat, lon = log.channels["lat"], log.channels["lon"]
    e, n, _ = pymap3d.geodetic2enu(lat, lon, np.zeros_like(lat), *origin)
    return np.column_stack([e, n])


def reject_jumps(t: np.ndarray, xy: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Boolean mask of fixes to keep.

    A step between consecutive fixes longer than speed allows breaks the fixes into runs; a run
    shorter than :data:`RELOCK_S` that does not join up with the runs around it is a jump.
    """
    ok = np.flatnonzero(np.isfinite(xy).all(axis=1))
    keep = np.zeros(len(t), bool)
    if len(ok) < 2:
        keep[ok] = True
        return keep
    v = np.where(np.isfinite(speed), speed, 90.0)

    def fits(i: int, j: int) -> bool:
        dt = abs(t[j] - t[i])
        return bool(np.linalg.norm(xy[j] - xy[i]) <= max(v[i], v[j]) * dt + JUMP_MARGIN_M + JUMP_MARGIN_MPS * dt)

    breaks = [k + 1 for k in range(len(ok) - 1) if not fits(ok[k], ok[k + 1])]
    runs = [ok[a:b] for a, b in zip([0, *breaks], [*breaks, len(ok)])]
    long_run = [t[r[-1]] - t[r[0]] >= RELOCK_S for r in runs]
    for k, r in enumerate(runs):
        if long_run[k] or len(runs) == 1:
            keep[r] = True
            continue
        before = next((runs[m][-1] for m in range(k - 1, -1, -1) if long_run[m]), None)
        after = next((runs[m][0] for m in range(k + 1, len(runs)) if long_run[m]), None)
        if (before is None or fits(before, r[0])) and (after is None or fits(r[-1], after)):
            keep[r] = True
    return keep


def _interp(t_new: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return np.full(len(t_new), np.nan)
    return np.interp(t_new, t[ok], x[ok])


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    pad = np.concatenate([np.full(n // 2, x[0]), x, np.full(n - 1 - n // 2, x[-1])])
    return np.convolve(pad, np.ones(n) / n, mode="valid")


def split_laps(t: np.ndarray, progress: np.ndarray, skipped: np.ndarray, length: float) -> tuple[list[Lap], np.ndarray]:
    """Laps from the unwrapped distance; returns the laps and the crossing times."""
    n_lap = np.floor(progress / length)
    idx = np.flatnonzero(np.diff(n_lap) > 0)
    frac = (n_lap[idx + 1] * length - progress[idx]) / np.maximum(progress[idx + 1] - progress[idx], 1e-9)
    cross = t[idx] + frac * (t[idx + 1] - t[idx])
    bounds = [t[0], *cross.tolist(), t[-1]]
    laps = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        kind = "outlap" if k == 0 else ("inlap" if k == len(bounds) - 2 else "valid")
        laps.append(Lap(k, float(a), float(b), kind))
    full = [lp.time_s for lp in laps if lp.kind == "valid"]
    med = float(np.median(full)) if full else 0.0
    for lp in laps:
        if lp.kind != "valid":
            continue
        sel = (t >= lp.start_t) & (t < lp.end_t)
        if skipped[sel].sum() > CUT_SKIP_M:
            lp.kind, lp.why = "cut", f"skipped {skipped[sel].sum():.0f} m of track"
        elif lp.time_s < 0.8 * med:
            lp.kind, lp.why = "cut", f"{lp.time_s:.1f} s is under 80 % of the median lap"
    return laps, cross


def log_to_telemetry(log: RideLog, track=None, *, origin: tuple[float, float, float] | None = None,
                     vehicle: str = "roadsport") -> LogTelemetry:
    """Turn ``log`` into the unit's telemetry on ``track`` (a Track, name or CSV path; built from the
    laps when None)."""
    from motocoach.training.tracks import Track, get_track
    from motocoach.training.vehicles import get_vehicle

    schema = load_schema()
    veh = get_vehicle(vehicle)
    notes: list[str] = []
    estimated: dict[str, str] = {}
    speed_log = log.channels.get("speed", np.full(len(log), np.nan))
    if track is None and not log.has_gps:
        raise RideLogError(f"{log.source}: the log has no GPS position (latitude/longitude) and no track was given; "
                           "give the circuit with --track T.csv (x_m,y_m,w_tr_right_m,w_tr_left_m)")
    if log.has_gps:
        org = origin_of(log, origin)
        if org is None and track is not None:
            raise RideLogError(f"{log.source}: the track CSV is in local metres; give the WGS84 point of its (0, 0) "
                               "with --origin LAT,LON so the log's GPS can be placed on it")
        if org is None:
            ok = np.isfinite(log.channels["lat"]) & np.isfinite(log.channels["lon"])
            i = int(np.flatnonzero(ok)[0])
            org = (float(log.channels["lat"][i]), float(log.channels["lon"][i]), 0.0)
        xy = enu(log, org)
        keep = reject_jumps(log.t, xy, speed_log)
        jumps = np.flatnonzero(np.isfinite(xy).all(axis=1) & ~keep)
        if track is None:
            from motocoach.training.ridelogs.buildtrack import track_from_laps

            tr = track_from_laps(log.t[keep], xy[keep], speed_log[keep], name=f"{log.meta.get('track') or 'log'}-from-laps")
            notes.append("track built from the logged laps (centreline = the fastest full lap, smoothed; "
                         "width from the laps' spread)")
        else:
            tr = track if isinstance(track, Track) else get_track(str(track))
        geo = TrackGeometry(tr)
        tk = log.t[keep]
        s_mod, e, _ = geo.match(xy[keep], speed_log[keep], tk)
        off = geo.edges_exceeded(s_mod, e) > OFF_TRACK_M
        if off.mean() > 0.5:
            raise RideLogError(f"{log.source}: {100 * off.mean():.0f} % of the GPS fixes are more than {OFF_TRACK_M:g} m "
                               f"outside the track {tr.name}; is it the right track, and is --origin its (0, 0)?")
    else:
        tr = track if isinstance(track, Track) else get_track(str(track))
        geo = TrackGeometry(tr)
        if not log.has("speed"):
            raise RideLogError(f"{log.source}: without GPS the position is integrated from speed, and the log has no speed")
        keep = np.isfinite(speed_log)
        jumps = np.zeros(0, np.int64)
        tk = log.t[keep]
        dist = np.concatenate([[0.0], np.cumsum(0.5 * (speed_log[keep][1:] + speed_log[keep][:-1]) * np.diff(tk))])
        s_mod, e = np.mod(dist, geo.length), np.zeros(len(tk))
        estimated["line_deviation"] = "0: no GPS, so no offset from the line (position = integrated speed from the start line)"
        notes.append("no GPS: the log is assumed to start on the start/finish line")

    # unwrap the lap distance; a forward step much longer than speed x dt skipped part of the track
    ds = (np.diff(s_mod) + geo.length / 2) % geo.length - geo.length / 2
    sp = speed_log[keep]
    allowed = np.where(np.isfinite(sp[1:]), np.maximum(sp[1:], sp[:-1]), 90.0) * np.diff(tk) + 15.0
    skipped = np.concatenate([[0.0], np.maximum(ds - allowed, 0.0)])
    progress = s_mod[0] + np.concatenate([[0.0], np.cumsum(ds)])
    laps, cross = split_laps(tk, progress, skipped, geo.length)
    if cross.size:
        progress = progress - np.floor(progress[np.searchsorted(tk, cross[0])] / geo.length) * geo.length

    dt = 1.0 / schema.rate_hz
    t20 = np.arange(tk[0], tk[-1] + 1e-9, dt)
    prog20 = np.interp(t20, tk, progress)
    s20 = np.mod(prog20, geo.length)
    e20 = _smooth(np.interp(t20, tk, e), max(int(LINE_SMOOTH_S / dt), 1))
    holes = np.diff(tk) > GAP_S
    gap = np.zeros(len(t20), bool)
    for i in np.flatnonzero(holes):
        gap |= (t20 > tk[i]) & (t20 < tk[i + 1])
    lap20 = np.clip(np.searchsorted(np.array([lp.start_t for lp in laps]), t20, side="right") - 1, 0, len(laps) - 1)

    v20 = _interp(t20, log.t, speed_log)
    if not np.isfinite(v20).all():
        v20 = np.gradient(prog20, t20)
        estimated["speed"] = "from the change of position along the track (no speed channel)"
    kappa = geo.kappa(s20)
    lat_est = -(v20 ** 2) * kappa / G          # simulator convention: + right, a left turn (kappa > 0) pulls left
    lat20 = _interp(t20, log.t, log.channels["lat_g"]) if log.has("lat_g") else None
    if lat20 is not None and np.corrcoef(lat20, lat_est)[0, 1] < 0:
        lat20 = -lat20
        notes.append("lateral acceleration was logged positive to the left; flipped to the schema's positive right")
    if lat20 is None:
        lat20 = lat_est
        estimated["lateral_g"] = "v^2 x racing-line curvature at the matched position"
    lean20 = _interp(t20, log.t, log.channels["lean"]) if log.has("lean") else None
    if lean20 is not None and np.corrcoef(lean20, lat20)[0, 1] < 0:
        lean20 = -lean20
        notes.append("lean was logged positive to the left; flipped to the schema's positive right")
    if lean20 is None and log.has("roll_rate"):
        # complementary filter: the integrated roll rate for what changes within ROLL_BLEND_S, the
        # steady-turn lean atan(lateral g) for the slow part (the integral drifts)
        rr = _interp(t20, log.t, log.channels["roll_rate"])
        integral = np.cumsum(np.nan_to_num(rr)) * dt
        steady = np.degrees(np.arctan(lat20))
        lean20 = integral + _smooth(steady - integral, int(ROLL_BLEND_S / dt))
        estimated["roll_angle"] = f"integrated roll rate, pulled to atan(lateral g) over {ROLL_BLEND_S:g} s"
    if lean20 is None:
        lean20 = np.degrees(np.arctan(lat20))
        estimated["roll_angle"] = "atan(lateral g): the lean of a steady turn"
    if log.has("lon_g"):
        ax = _interp(t20, log.t, log.channels["lon_g"]) * G
    else:
        ax = np.gradient(_smooth(v20, 5), t20)
    a_tyre = ax + veh.drag_per_m * v20 ** 2 + veh.crr * G
    drive = veh.drive_max(v20)
    thr = _interp(t20, log.t, log.channels["throttle"]) if log.has("throttle") else None
    brk = _interp(t20, log.t, log.channels["brake"]) if log.has("brake") else None
    if thr is None:
        thr = np.clip(a_tyre / np.maximum(drive, 0.1), 0.0, 1.0)
        estimated["throttle"] = f"drive force needed for the logged acceleration over {veh.name}'s drive limit"
    if brk is None:
        brk = np.clip(-a_tyre / (veh.brake_max_g * G), 0.0, 1.0)
        estimated["brake"] = f"deceleration beyond drag over {veh.name}'s braking limit"
    grip = min(veh.mu, np.tan(np.radians(veh.lean_max_deg))) * G
    usage = np.hypot(a_tyre, lat20 * G) / grip
    estimated["friction_usage"] = f"combined acceleration over {veh.name}'s nominal grip ({grip / G:.2f} g)"
    values = {"speed": v20, "roll_angle": lean20, "lateral_g": lat20, "dist_to_apex": geo.dist_to_apex(s20),
              "throttle": thr, "brake": brk, "line_deviation": e20, "friction_usage": usage}
    feats = np.stack([values[n] for n in schema.feature_names], axis=1)
    feats = schema.clip(np.nan_to_num(feats, nan=0.0))
    return LogTelemetry(t=t20, features=feats, s=s20, progress=prog20, lap=lap20, gap=gap,
                        xy=geo.position(s20, e20), laps=laps, track=tr, estimated=estimated, notes=notes,
                        jumps=jumps, crossings_t=cross)
