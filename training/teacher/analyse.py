"""Improvement sections: where on a lap the rider loses most time to the teacher's expert, and why.

For each corner ``k`` the segment runs from ``apex_s[k] - 100 m`` to ``apex_s[k] + 50 m``
(:data:`~.features.SECTOR_M`). Its *time to gain* is the rider's own time over the 150 m
from the step where the rider enters it, minus the teacher's performance head at that step
(the expert's time over the same 150 m from the rider's state there). Corners are ranked
by it; at the top :data:`TOP_N`, the rider's traces are compared with the teacher's:

* throttle and brake: the teacher's 1-step-ahead prediction at each step (what the expert
  would do now, given the rider's last 2 s);
* speed: the teacher's prediction :data:`SPEED_LEAD_STEPS` ahead (0.5 s), placed where its
  own predicted speeds carry the expert by then (a speed 50 ms ahead cannot differ from the
  rider's; half a second shows where the expert would be going);
* line: the teacher's line is the racing line (deviation 0).

Each difference (braking point, braking force, corner speed, throttle pick-up, line) gets
the time it explains, ``integral (1/v_rider - 1/v_teacher) ds`` over the part of the
segment it governs (line: the corner part's time scaled by the simulator's path model), and
one sentence of advice; items are ranked by that time.

>>> segment_bounds(1000.0)
(900.0, 1050.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from motocoach.errors import ConfigError
from motocoach.schema import load_schema
from motocoach.training.sim import DT, LINE_PENALTY_PER_M
from motocoach.training.teacher.features import SECTOR_M, sector_time

BEFORE_APEX_M = 100.0
AFTER_APEX_M = SECTOR_M - BEFORE_APEX_M
TOP_N = 3
SPEED_LEAD_STEPS = 10          # 0.5 s
BRAKE_SEARCH_M = 250.0         # a braking point is looked for this far before the apex
BRAKE_ON = 0.1                 # brake demand above this = braking
THROTTLE_PICKUP = 0.5          # throttle at or above this after the apex = picked up
CORNER_ZONE_M = 15.0           # +- this around the rider's slowest point = the corner-speed part
ITEMS = ("braking point", "braking force", "corner speed", "throttle pick-up", "line")


def segment_bounds(apex_s: float) -> tuple[float, float]:
    """(start, end) lap positions of the segment of the corner at ``apex_s`` (may pass the line)."""
    return apex_s - BEFORE_APEX_M, apex_s + AFTER_APEX_M


@dataclass
class Item:
    """One difference at one corner: rider value, teacher value, the time it explains, advice."""

    kind: str
    rider: float | None
    teacher: float | None
    unit: str
    explains_s: float
    advice: str


@dataclass
class CornerResult:
    """One corner's segment: where it lies in the ride, its times and the ranked differences."""

    corner: int                 # index into track.apex_s
    apex_s: float
    start_progress: float       # ride progress (m) where the segment starts
    lap_x0: float               # segment start as distance into the analysed lap (m)
    rider_s: float              # the rider's time over the 150 m from the entry step
    teacher_s: float            # the teacher's expert time from the same step
    items: list[Item] = field(default_factory=list)

    @property
    def gain_s(self) -> float:
        return self.rider_s - self.teacher_s


@dataclass
class Analysis:
    """A lap's improvement sections and the traces the report draws."""

    track: str
    vehicle: str
    lap_time_s: float
    corners: list[CornerResult]          # every corner the lap covers, most time to gain first
    x: np.ndarray                        # (T,) distance into the lap of each analysed step (m)
    xy: np.ndarray                       # (T, 2) positions of those steps (map)
    rider: dict[str, np.ndarray]         # speed, throttle, brake, line_deviation at those steps
    teacher: dict[str, np.ndarray]       # speed, throttle, brake (teacher traces at those steps)
    x_speed: np.ndarray = field(default_factory=lambda: np.zeros(0))   # where the teacher's speeds are

    @property
    def top(self) -> list[CornerResult]:
        return self.corners[:TOP_N]

    def to_dict(self) -> dict:
        def corner(c: CornerResult, rank: int) -> dict:
            d = {k: v for k, v in asdict(c).items() if k != "items"}
            return {"rank": rank, **d, "gain_s": c.gain_s, "items": [asdict(i) for i in c.items]}

        return {"track": self.track, "vehicle": self.vehicle, "lap_time_s": self.lap_time_s,
                "segment_m": {"before_apex": BEFORE_APEX_M, "after_apex": AFTER_APEX_M},
                "top": [corner(c, r + 1) for r, c in enumerate(self.top)],
                "all_corners": [corner(c, r + 1) for r, c in enumerate(self.corners)]}


def _first(x: np.ndarray, mask: np.ndarray) -> float | None:
    hit = np.flatnonzero(mask)
    return float(x[hit[0]]) if hit.size else None


def _onset(x: np.ndarray, on: np.ndarray) -> float | None:
    """Where the last run of ``on`` began (None if never on): the braking that leads into this
    corner, not an earlier corner's."""
    if not on.any():
        return None
    last = np.flatnonzero(on)[-1]
    off = np.flatnonzero(~on[:last])
    return float(x[off[-1] + 1]) if off.size else float(x[0])


def _integral(dens: np.ndarray, x: np.ndarray, a: float, b: float) -> float:
    sel = (x >= a) & (x < b)
    return float(dens[sel].sum() * (x[1] - x[0])) if sel.any() else 0.0


def compare_segment(x: np.ndarray, rider: dict[str, np.ndarray], teacher: dict[str, np.ndarray],
                    apex_x: float, line_at_apex: float) -> list[Item]:
    """The five differences on one segment, most time explained first.

    ``x`` (N,) evenly spaced positions (m) over the segment (it may start before the segment, so a
    braking point up to :data:`BRAKE_SEARCH_M` before the apex is seen); ``rider`` has speed (m/s),
    throttle, brake on ``x``; ``teacher`` the same three channels; ``apex_x`` where the apex is
    on ``x``; ``line_at_apex`` the rider's line deviation there (m, + right).

    >>> x = np.arange(0.0, 151.0)
    >>> v = np.full_like(x, 20.0); brk = np.where((x > 40) & (x < 90), 0.6, 0.0); thr = np.where(x > 110, 1.0, 0.0)
    >>> late = {"speed": v, "throttle": thr, "brake": np.where((x > 52) & (x < 90), 0.6, 0.0)}
    >>> items = compare_segment(x, {"speed": v, "throttle": thr, "brake": brk}, late, 100.0, 0.0)
    >>> next(i.advice for i in items if i.kind == "braking point")
    'brake 12 m later'
    """
    v_r = np.maximum(rider["speed"], 1.0)
    v_t = np.maximum(teacher["speed"], 1.0)
    dens = 1.0 / v_r - 1.0 / v_t                          # s/m the rider loses at each metre
    before = x <= apex_x
    after = x >= apex_x
    b_r = _onset(x[before], rider["brake"][before] > BRAKE_ON)
    b_t = _onset(x[before], teacher["brake"][before] > BRAKE_ON)
    x_min = float(x[np.argmin(np.where(np.abs(x - apex_x) <= 40, v_r, np.inf))])
    z_corner = (x_min - CORNER_ZONE_M, x_min + CORNER_ZONE_M)
    p_r = _first(x, after & (rider["throttle"] >= THROTTLE_PICKUP))
    p_t = _first(x, after & (teacher["throttle"] >= THROTTLE_PICKUP))
    items = []

    # braking point: the stretch between the two onsets is where one brakes and the other does not
    if b_r is not None and b_t is not None:
        d = b_t - b_r
        lo, hi = min(b_r, b_t), min(max(b_r, b_t), z_corner[0])
        adv = f"brake {abs(d):.0f} m {'later' if d > 0 else 'earlier'}" if abs(d) >= 1 else "your braking point matches"
        items.append(Item("braking point", b_r, b_t, "m", _integral(dens, x, lo, hi), adv))
    elif b_r is not None or b_t is not None:
        who = b_r if b_r is not None else b_t
        adv = ("the expert does not brake here: roll off instead" if b_t is None
               else f"brake here: the expert brakes from {apex_x - b_t:.0f} m before the apex")
        items.append(Item("braking point", b_r, b_t, "m", _integral(dens, x, who, z_corner[0]), adv))
    else:
        items.append(Item("braking point", None, None, "m", 0.0, "no braking here, for you or the expert"))
    # braking force: from the later onset to the corner part
    start_force = max([b for b in (b_r, b_t) if b is not None], default=z_corner[0])
    braking = before & (x >= min([b for b in (b_r, b_t) if b is not None], default=apex_x))
    pk_r = float(rider["brake"][braking].max()) if braking.any() else 0.0
    pk_t = float(teacher["brake"][braking].max()) if braking.any() else 0.0
    adv = (f"brake {'harder' if pk_t > pk_r else 'more gently'}: peak {100 * pk_t:.0f} % (yours {100 * pk_r:.0f} %)"
           if abs(pk_t - pk_r) >= 0.05 else "your braking force matches")
    items.append(Item("braking force", pk_r, pk_t, "1", _integral(dens, x, start_force, z_corner[0]), adv))
    # corner speed: the rider's slowest part of the corner
    sel = (x >= z_corner[0]) & (x <= z_corner[1])
    vmin_r, vmin_t = float(v_r[sel].min()), float(v_t[sel].min())
    dv = 3.6 * (vmin_t - vmin_r)
    adv = (f"carry {abs(dv):.0f} km/h {'more' if dv > 0 else 'less'} at the apex" if abs(dv) >= 1
           else "your corner speed matches")
    items.append(Item("corner speed", vmin_r, vmin_t, "m/s", _integral(dens, x, *z_corner), adv))
    # throttle pick-up after the apex (not reached in the segment = its end)
    end = float(x[-1])
    pr, pt = (p_r if p_r is not None else end), (p_t if p_t is not None else end)
    d = pr - pt
    adv = (f"open the throttle {abs(d):.0f} m {'earlier' if d > 0 else 'later'} after the apex" if abs(d) >= 1
           else "your throttle pick-up matches")
    items.append(Item("throttle pick-up", p_r, p_t, "m", _integral(dens, x, z_corner[1], end + 1), adv))
    # line: off the line tightens the path (LINE_PENALTY_PER_M per metre), apex speed ~ 1/sqrt(curvature)
    t_corner = float((1.0 / v_r[sel]).sum() * (x[1] - x[0]))
    cost = t_corner * (1.0 - 1.0 / np.sqrt(1.0 + LINE_PENALTY_PER_M * abs(line_at_apex)))
    side = "right" if line_at_apex > 0 else "left"
    adv = (f"hold the racing line at the apex: you were {abs(line_at_apex):.1f} m {side} of it"
           if abs(line_at_apex) >= 0.3 else "your line at the apex is on the racing line")
    items.append(Item("line", float(line_at_apex), 0.0, "m", float(cost), adv))
    return sorted(items, key=lambda i: -i.explains_s)


def teacher_traces(pred, progress: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Teacher traces at each step of a ride from its predictions (see the module docstring):
    throttle and brake at step i from the 1-step-ahead prediction made at step i-1; speed
    :data:`SPEED_LEAD_STEPS` ahead, with the positions (m of progress) it belongs to."""
    # clipped to the schema's ranges: a pedal is 0..1 and a speed is not negative, whatever the net says
    thr, brk = np.clip(pred.channel("throttle"), 0.0, 1.0), np.clip(pred.channel("brake"), 0.0, 1.0)
    spd = np.clip(pred.channel("speed"), 0.0, 90.0)
    shift = lambda a: np.concatenate([a[:1], a[:-1]])   # noqa: E731
    k = SPEED_LEAD_STEPS
    ahead = progress + DT * spd[:, :k].sum(axis=1)
    return {"throttle": shift(thr[:, 0]), "brake": shift(brk[:, 0])}, np.column_stack([ahead, spd[:, k - 1]])


def _on(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    order = np.argsort(xp, kind="stable")
    return np.interp(x, xp[order], fp[order])


def _lap_window(t: np.ndarray, lap) -> tuple[float, float]:
    if lap is None:
        return float(t[0]), float(t[-1])
    a, b = (lap.start_t, lap.end_t) if hasattr(lap, "start_t") else lap
    return float(a), float(b)


def analyse_lap(teacher, features: np.ndarray, s: np.ndarray, progress: np.ndarray, t: np.ndarray,
                track, vehicle, lap=None, xy: np.ndarray | None = None) -> Analysis:
    """Improvement sections of one lap of a ride.

    ``features`` (T, F) physical schema telemetry of the whole ride, ``s`` lap positions and
    ``progress`` monotonic distance (m), ``t`` times (s); ``lap`` a :class:`~motocoach.training.
    ridelogs.telemetry.Lap` or a (start_t, end_t) pair (None: the whole ride is the lap). The
    steps around the lap supply history and the parts of segments that cross the line.
    """
    features = np.asarray(features, dtype=np.float32)
    t = np.asarray(t, dtype=np.float64)
    progress = np.maximum.accumulate(np.asarray(progress, dtype=np.float64))
    if len(t) < 2 or features.shape[0] != len(t):
        raise ConfigError("a lap needs at least two telemetry rows, one per time step")
    t0, t1 = _lap_window(t, lap)
    in_lap = (t >= t0) & (t <= t1)
    if in_lap.sum() < 2:
        raise ConfigError(f"no telemetry between {t0:.1f} s and {t1:.1f} s: pick another lap")
    p0 = float(np.interp(t0, t, progress))
    p1 = float(np.interp(t1, t, progress))
    names = load_schema().feature_names
    col = {n: features[:, names.index(n)] for n in ("speed", "throttle", "brake", "line_deviation")}
    pred = teacher.predict_ride(features, s, track, vehicle)
    tr_thr_brk, speed_pts = teacher_traces(pred, progress)
    rider_sector, ok = sector_time(progress, t)
    L = track.length_m
    corners = []
    for k, apex in enumerate(np.asarray(track.apex_s, dtype=np.float64)):
        apex_p = p0 + np.mod(apex - p0, L)             # the apex's place within the lap
        if apex_p > p1:
            continue
        for start in (apex_p - BEFORE_APEX_M, apex_p - BEFORE_APEX_M + L, apex_p - BEFORE_APEX_M - L):
            i = int(np.searchsorted(progress, start))
            if start >= progress[0] and i < len(t) and ok[i]:
                break
        else:
            continue                                    # no full pass of this segment in the ride
        extra = float(np.floor(min(BRAKE_SEARCH_M - BEFORE_APEX_M, progress[i] - progress[0])))
        x = np.arange(-extra, SECTOR_M + 1.0)
        at = progress[i] + x
        rider = {n: np.interp(at, progress, col[n]) for n in ("speed", "throttle", "brake")}
        teach = {n: np.interp(at, progress, tr_thr_brk[n]) for n in ("throttle", "brake")}
        teach["speed"] = _on(at, speed_pts[:, 0], speed_pts[:, 1])
        apex_x = float(start + BEFORE_APEX_M - progress[i])
        line = float(np.interp(start + BEFORE_APEX_M, progress, col["line_deviation"]))
        res = CornerResult(corner=k, apex_s=float(apex), start_progress=float(progress[i]),
                           lap_x0=float(progress[i] - p0), rider_s=float(rider_sector[i]),
                           teacher_s=float(pred.sector_s[i]),
                           items=compare_segment(x, rider, teach, apex_x, line))
        corners.append(res)
    corners.sort(key=lambda c: -c.gain_s)
    keep = np.flatnonzero(in_lap)
    pos = xy[keep] if xy is not None else np.zeros((len(keep), 2))
    return Analysis(track=track.name, vehicle=getattr(vehicle, "name", str(vehicle)), lap_time_s=t1 - t0,
                    corners=corners, x=progress[keep] - p0, xy=pos,
                    rider={n: col[n][keep] for n in col},
                    teacher={"throttle": tr_thr_brk["throttle"][keep], "brake": tr_thr_brk["brake"][keep],
                             "speed": speed_pts[keep, 1]},
                    x_speed=speed_pts[keep, 0] - p0)


def analyse_sim_ride(teacher, ride, vehicle, lap: int | None = None) -> Analysis:
    """:func:`analyse_lap` on a :class:`~motocoach.training.ridelogs.simulate.SimRide` (lap index
    ``lap`` among its full laps, default the first)."""
    k = 0 if lap is None else lap
    if k < 0 or k + 1 >= len(ride.crossings_t):
        raise ConfigError(f"lap {k}: the simulated ride has {max(len(ride.crossings_t) - 1, 0)} full lap(s)")
    window = (float(ride.crossings_t[k]), float(ride.crossings_t[k + 1]))
    return analyse_lap(teacher, ride.obs, np.mod(ride.progress, ride.track.length_m), ride.progress, ride.t,
                       ride.track, vehicle, lap=window, xy=ride.xy)


def pro_segment_time(v_pro: np.ndarray, start_s: float, length_m: float = SECTOR_M) -> float:
    """The pro's time (s) over ``length_m`` from lap position ``start_s``: the sum of ds / v on the 1 m grid."""
    idx = (int(np.floor(start_s)) + np.arange(int(length_m))) % len(v_pro)
    return float((1.0 / np.maximum(v_pro[idx], 1.0)).sum())


def _top(order_keys: list[float], n: int = TOP_N) -> set[int]:
    return set(np.argsort(-np.asarray(order_keys), kind="stable")[:n].tolist())


def corner_rank_agreement(teacher, tracks, riders=("amateur", "trackday", "weekend"), seeds=(0,), *,
                          laps: float = 2.4, progress=None) -> dict:
    """Do the teacher's top-3 corners match where the simulator says the rider loses most time?

    For each track x rider x seed: one simulated uncoached ride (:func:`simulate_ride`), its first
    full lap analysed; the truth per corner segment is the rider's time minus the pro's time on the
    rider's vehicle over the same 150 m (:func:`~motocoach.training.coach.pro_reference`).
    Agreement = |teacher top 3 & truth top 3| per lap, averaged. Baselines, scored the same way:
    the rider's own slowest segments, the tightest corners, and chance (9 / corners).
    """
    from motocoach.training.coach import pro_reference
    from motocoach.training.riders import get_rider
    from motocoach.training.ridelogs.simulate import simulate_ride
    from motocoach.training.tracks import get_track
    from motocoach.training.vehicles import get_vehicle

    per_lap = []
    for tr_name in tracks:
        track = get_track(str(tr_name))
        for rider in riders:
            vehicle = get_vehicle(get_rider(rider).vehicle)
            v_pro = pro_reference(track, vehicle)
            for seed in seeds:
                ride = simulate_ride(track, rider, laps=laps, seed=seed)
                an = analyse_sim_ride(teacher, ride, vehicle)
                cs = sorted(an.corners, key=lambda c: c.corner)
                n = min(TOP_N, len(cs))
                truth = _top([c.rider_s - pro_segment_time(v_pro, c.start_progress % track.length_m) for c in cs], n)
                row = {"track": track.name, "rider": rider, "seed": int(seed), "corners": len(cs),
                       "teacher": len(truth & _top([c.gain_s for c in cs], n)),
                       "slowest_segment": len(truth & _top([c.rider_s for c in cs], n)),
                       "tightest_corner": len(truth & _top([float(track.apex_kappa[c.corner]) for c in cs], n)),
                       "chance": n * n / max(len(cs), 1)}
                per_lap.append(row)
                if progress is not None:
                    progress(row)
    mean = lambda k: float(np.mean([r[k] for r in per_lap])) if per_lap else float("nan")  # noqa: E731
    return {"corner_rank_agreement": mean("teacher"), "baseline_slowest_segment": mean("slowest_segment"),
            "baseline_tightest_corner": mean("tightest_corner"), "baseline_chance": mean("chance"),
            "laps": len(per_lap), "per_lap": per_lap}
