"""The ride simulator: bike physics, the rider model and the cue response, batched in numpy.

One code path serves every user: :class:`RideSim` advances ``n`` independent rides on the
same track with arrays of shape ``(n,)``; the Gymnasium env is ``n = 1``, the vector env and
PPO use ``n`` in the hundreds.

Bike: a point mass moving along the racing line (arc position ``s``) with a lateral
deviation ``e`` from it, with the limits of a vehicle profile (:mod:`~motocoach.training.vehicles`):
friction ellipse with a per-ride grip around the tyre's ``mu``, lean limit, braking up to
the grip/stoppie limit, drive up to the power/wheelie/traction limit, drag and rolling
resistance. Being off the racing line tightens the path (:data:`LINE_PENALTY_PER_M`).
Above 100 % friction usage the bike slides outwards and scrubs speed; leaving the track
(more than :data:`KERB_M` beyond an edge) ends the ride.

Rider: follows its speed plan (:mod:`~motocoach.training.rider_plan`: its own corner-speed
fraction, braking and braking margin), with per-corner speed and braking-point errors and a
throttle limit; drifts off the line (Ornstein-Uhlenbeck, ``line_noise_m``, ``line_tau_s``);
keeps part throttle for ``exit_delay_m`` past each apex. A ride starts where the rider's own
converged lap has it: speed, throttle and brake from a noise-free lap of the same rider.

Cues (see docs/training.md): decoded from the 3 actions, perceived after
``perception_delay_s``, acted on with probability ``compliance x attention`` where
attention falls when the cue duty stays above ``habituation_free_duty``:

* one motor on: steer towards that side (lateral correction velocity);
* both on, >= 200 Hz: brake / slow -> "confidence" falls (caution): lower corner speed;
* both on, <= 100 Hz: throttle / carry speed -> confidence rises (push): braking later
  and firmer (margin shrinks, deceleration towards
  :data:`~motocoach.training.rider_plan.PUSH_BRAKE_FRAC` of the vehicle's limit), full throttle
  sooner after the apex, a little more corner speed. Riders plan with the vehicle's nominal
  grip, so a push on a low-grip surface (:data:`GRIP_RANGE`) ends in safety events.

Confidence decays with ``confidence_tau_s``. Nothing makes a cue good by itself: a push
on a low-grip surface or at the grip limit causes
safety events and slides, a slow cue on a straight costs time, a side cue towards the wrong side pushes
the rider off the line (all tested).
"""


from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from motocoach.schema import load_schema
from motocoach.training.rider_plan import brake_g, corner_fraction, rider_plan
from motocoach.training.riders import RiderProfile
from motocoach.training.tracks import GRID_M, Track
from motocoach.training.vehicles import VehicleProfile, get_vehicle

G = 9.81
DT = 1.0 / load_schema().rate_hz          # control step, 50 ms at 20 Hz
SUBSTEPS = 2                              # physics steps per control step (25 ms)
GRIP_RANGE = (0.93, 1.07)                 # actual grip / the vehicle's nominal mu, drawn per ride
LINE_PENALTY_PER_M = 0.15                 # path curvature grows 15 % per metre off the line
SLIDE_GAIN = 0.15                         # outward slip per unit of excess usage, (m/s)/(m/s)
SCRUB = 3.0                               # speed lost in a slide per unit of excess usage, g
KERB_M = 0.5                              # beyond the edge by more than this = off track
RIDER_EDGE_M = 0.5                        # a rider's own drift keeps this far inside the edge
USAGE_VIOLATION = 0.95
CUE_ON = load_schema().cues.motor_on      # a motor intensity at or above this is "on"
FREQ_BRAKE_HZ = load_schema().cues.high_min_hz
FREQ_THROTTLE_HZ = load_schema().cues.low_max_hz
LINE_CUE_TAU_S = 0.6
BRAKE_GAIN = 1.0                          # brake demand per m/s over the planned speed
THROTTLE_GAIN = 0.4                       # throttle demand per m/s under the planned speed
PLAN_AHEAD_S = 0.3                        # riders control towards the plan this far ahead
UPRIGHT_G = 0.3                           # below this lateral g a rider counts as upright
EXIT_THROTTLE = 0.3                       # throttle cap within exit_delay_m past an apex
MAX_DELAY_STEPS = 32
# Reward weights (per control step).
V_REF = 40.0
W_VIOLATION = 0.5
W_OFFTRACK = 20.0
W_CUE = 0.03
W_SMOOTH = 0.01


@dataclass
class StepResult:
    """What one control step produced, per ride (arrays of shape (n,))."""

    reward: np.ndarray
    progress_m: np.ndarray
    violation: np.ndarray      # bool: usage > 0.95 or lean over cap during the step
    offtrack: np.ndarray       # bool: left the track (terminal)
    lap_done: np.ndarray       # bool: crossed the start line
    lap_time: np.ndarray       # s, NaN unless lap_done
    cue_on: np.ndarray         # bool: a motor was on


def decode_cues(actions: np.ndarray) -> dict[str, np.ndarray]:
    """Normalized actions (n, 3) -> cue channels: side (-1 left, +1 right), brake, throttle, on."""
    a = np.clip(np.asarray(actions, dtype=np.float64), 0.0, 1.0)
    left, right = a[:, 0], a[:, 1]
    freq = load_schema().actions_to_physical(a.astype(np.float32))[:, 2].astype(np.float64)
    on_l, on_r = left >= CUE_ON, right >= CUE_ON
    both = on_l & on_r
    side = np.where(on_r & ~on_l, right, 0.0) - np.where(on_l & ~on_r, left, 0.0)
    mag = np.minimum(left, right)
    return {"side": side,
            "brake": np.where(both & (freq >= FREQ_BRAKE_HZ), mag, 0.0),
            "throttle": np.where(both & (freq <= FREQ_THROTTLE_HZ), mag, 0.0),
            "on": (on_l | on_r).astype(np.float64)}


class RideSim:
    """``n`` rides of one rider on one vehicle and track, advanced together.

    Args:
        track: the track.
        rider: the rider profile.
        n: number of parallel rides.
        seed: seed of the one random generator all rides draw from.
        random_start: start each ride at a random track position (training) instead of s=0.
        vehicle: the vehicle profile; default the rider's own (``rider.vehicle``).
        substeps: physics steps per control step.
        converged_start: start rides from the rider's converged lap (:func:`converged_lap`);
            False starts them from the rider's plan, which is how that lap is found.
    """

    def __init__(self, track: Track, rider: RiderProfile, n: int = 1, seed: int | None = None,
                 random_start: bool = False, vehicle: VehicleProfile | None = None,
                 substeps: int = SUBSTEPS, converged_start: bool = True) -> None:
        self.track, self.rider, self.n = track, rider, n
        self.vehicle = vehicle if vehicle is not None else get_vehicle(rider.vehicle)
        self.substeps = int(substeps)
        self.random_start = random_start
        self.rng = np.random.default_rng(seed)
        self.length = track.length_m
        self.n_apex = len(track.apex_s)
        self.delay_steps = int(np.clip(round(rider.perception_delay_s / DT), 1, MAX_DELAY_STEPS - 1))
        self.dist_to_apex = track.dist_to_apex
        self.plan = rider_plan(track, rider, self.vehicle)
        veh = self.vehicle
        self.nominal_lat_g = veh.lateral_max_g
        self.lean_max = veh.lean_max_deg
        # per-step constants of the vehicle (the step loop runs millions of times)
        self.v_top = veh.top_speed_mps
        self.brake_acc = veh.brake_max_g * G
        self.power_per_kg = veh.power_kw * 1000.0 / veh.mass_kg
        self.drive_cap = min(veh.wheelie_g, veh.mu) * G
        self.drag_k, self.roll_acc = veh.drag_per_m, veh.crr * G
        z = lambda: np.zeros(n)  # noqa: E731
        self.s, self.s0, self.v, self.e, self.u_lat, self.conf = z(), z(), z(), z(), z(), z()
        self.thr, self.brk, self.habit, self.t, self.usage, self.a_lat = z(), z(), z(), z(), z(), z()
        self.lap_start_t, self.attention = z(), np.ones(n)
        self.laps = np.zeros(n, dtype=np.int64)
        self.mu = np.full(n, self.vehicle.mu)
        self.corner_noise = np.zeros((n, self.n_apex))
        self.brake_err = np.zeros((n, self.n_apex))
        self.cue_buf = np.zeros((MAX_DELAY_STEPS, 4, n))
        self.head = 0
        self.prev_action = np.zeros((n, 3))
        self._start = converged_lap(track, rider, self.vehicle, self.substeps) if n and converged_start else None
        self.reset()

    # --- state --------------------------------------------------------------------------

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    @property
    def grip_ratio(self) -> np.ndarray:
        """(n,) each ride's grip relative to the vehicle's nominal (what the rider plans with)."""
        return self.mu / self.vehicle.mu

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new rides for the envs in ``mask`` (all if None), flying, at the rider's own pace."""
        m = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        k = int(m.sum())
        if k == 0:
            return
        r, rng = self.rider, self.rng
        self.mu[m] = self.vehicle.mu * rng.uniform(*GRIP_RANGE, k)
        self.corner_noise[m] = rng.normal(0.0, r.corner_speed_noise, (k, self.n_apex))
        self.brake_err[m] = rng.normal(0.0, r.brake_point_error_m, (k, self.n_apex))
        start = rng.uniform(0, self.length, k) if self.random_start else np.zeros(k)
        self.s[m], self.s0[m] = start, start
        idx = self._grid(start)
        room_r = self.track.w_right[idx] - RIDER_EDGE_M - self.track.line_offset[idx]
        room_l = self.track.w_left[idx] - RIDER_EDGE_M + self.track.line_offset[idx]
        self.e[m] = np.clip(rng.normal(0.0, r.line_noise_m * 0.5, k), -room_l, np.maximum(room_r, -room_l))
        for arr in (self.u_lat, self.conf, self.habit, self.t, self.usage, self.a_lat, self.brk,
                    self.lap_start_t):
            arr[m] = 0.0
        self.laps[m] = 0
        self.attention[m] = 1.0
        self.cue_buf[:, :, m] = 0.0
        self.prev_action[m] = 0.0
        if self._start is None:          # converged_start=False: from the plan (how the converged lap is found)
            self.v[m] = np.sqrt(self.plan.lookup(idx, np.zeros(k)))
            self.thr[m] = 0.5
        else:
            self.v[m], self.thr[m], self.brk[m] = (self._start[0][idx], self._start[1][idx],
                                                    self._start[2][idx])

    def _grid(self, s: np.ndarray) -> np.ndarray:
        return (np.mod(s, self.length) / GRID_M).astype(np.int64) % self.track.n_grid

    def planned_v2(self, ahead_s: float = 0.0) -> np.ndarray:
        """(n,) the rider's planned speed squared ``ahead_s`` ahead, with its corner errors."""
        tr, rows = self.track, np.arange(self.n)
        s = self.s + self.v * ahead_s
        k = tr.next_apex[self._grid(s)]
        # a late braker (positive error) is where its plan says it is err metres earlier
        idx = self._grid(s - self.brake_err[rows, k])
        return self.plan.lookup(idx, self.conf) * (1.0 + self.corner_noise[rows, k]) ** 2

    def overcook_ratio(self) -> np.ndarray:
        """(n,) lateral grip the rider's plan for the next apex needs / what this ride has."""
        k = self.track.next_apex[self._grid(self.s)]
        plan_g = (corner_fraction(self.rider, self.conf) * (1.0 + self.corner_noise[np.arange(self.n), k])) ** 2
        return plan_g * self.nominal_lat_g / np.minimum(self.mu, np.tan(np.radians(self.lean_max)))

    # --- one control step ---------------------------------------------------------------

    def step(self, actions: np.ndarray) -> StepResult:
        """Apply normalized actions (n, 3) in [0, 1] for one control step."""
        r, tr, n, veh = self.rider, self.track, self.n, self.vehicle
        act = np.clip(np.asarray(actions, dtype=np.float64).reshape(n, 3), 0.0, 1.0)
        cue = decode_cues(act)

        # Perception: cues reach the rider delay_steps later.
        self.cue_buf[self.head] = (cue["side"], cue["brake"], cue["throttle"], cue["on"])
        felt = self.cue_buf[(self.head - self.delay_steps) % MAX_DELAY_STEPS]
        self.head = (self.head + 1) % MAX_DELAY_STEPS
        side, brake_c, thr_c, on = felt
        self.habit += (on - self.habit) * (DT / r.habituation_tau_s)
        free = r.habituation_free_duty
        self.attention = np.clip(1.0 - (self.habit - free) / (1.0 - free), 0.0, 1.0)
        comply = self.rng.random(n) < r.compliance * self.attention
        self.conf = np.clip(self.conf + comply * (0.25 * thr_c - 0.35 * brake_c), -1.0, 1.0)
        self.u_lat = np.clip(self.u_lat + comply * side * 0.5 * r.line_correction_mps,
                             -r.line_correction_mps, r.line_correction_mps)
        self.conf *= np.exp(-DT / r.confidence_tau_s)
        self.u_lat *= np.exp(-DT / LINE_CUE_TAU_S)

        # The rider's own speed control towards its plan.
        ahead_m = np.maximum(self.v * PLAN_AHEAD_S, 2.0)
        v2_plan = self.planned_v2(ahead_s=PLAN_AHEAD_S)
        err = np.sqrt(v2_plan) - self.v
        # feed-forward: the deceleration that reaches the plan ahead, less what drag gives
        need = (self.v * self.v - v2_plan) / (2.0 * ahead_m) - (self.drag_k * self.v * self.v + self.roll_acc)
        # throttle_max is the rider's largest opening while leaned; upright, everyone opens fully
        leaned = np.abs(self.a_lat) > UPRIGHT_G * G
        t_max = np.where(leaned, np.clip(r.throttle_max + 0.25 * self.conf, 0.0, 1.0), 1.0)
        b_max = brake_g(r, veh, self.conf) / veh.brake_max_g
        # Riders share grip between cornering and braking/drive as they believe it to be
        # (the nominal grip): on a low-grip surface a push is what bites.
        believed = corner_fraction(r, self.conf) * veh.mu * G
        grip_left = np.sqrt(np.maximum(believed ** 2 - self.a_lat ** 2, 0.0))
        b_max = np.minimum(b_max, grip_left / (veh.brake_max_g * G))
        drive_now = np.minimum(self.power_per_kg / np.maximum(self.v, 1.0), self.drive_cap)
        t_max = np.minimum(t_max, grip_left / np.maximum(drive_now, 0.1))
        # Late throttle: part throttle until exit_delay_m past the last apex (less when pushed).
        idx0 = self._grid(self.s)
        prev_apex = (tr.next_apex[idx0] - 1) % self.n_apex
        since_apex = np.mod(np.mod(self.s, self.length) - tr.apex_s[prev_apex], self.length)
        exiting = since_apex < r.exit_delay_m * (1.0 - np.maximum(self.conf, 0.0))
        t_max = np.where(exiting, np.minimum(t_max, EXIT_THROTTLE), t_max)
        thr_cmd = np.clip(THROTTLE_GAIN * err, 0.0, t_max)
        brk_cmd = np.clip(np.maximum(need, 0.0) / (veh.brake_max_g * G) - BRAKE_GAIN * np.minimum(err, 0.0) * 0.1,
                          0.0, b_max)
        self.thr += np.clip(thr_cmd - self.thr, -4 * DT, 4 * DT)
        self.brk += np.clip(brk_cmd - self.brk, -6 * DT, 6 * DT)

        # Physics sub-steps.
        h = DT / self.substeps
        s_before = self.s.copy()
        violation = np.zeros(n, dtype=bool)
        offtrack = np.zeros(n, dtype=bool)
        ou_k = r.line_noise_m * np.sqrt(2.0 * h / r.line_tau_s)
        lat_cap = np.tan(np.radians(self.lean_max)) * G
        for _ in range(self.substeps):
            idx = self._grid(self.s)
            kl = tr.line_kappa[idx]
            k_path = kl * (1.0 + LINE_PENALTY_PER_M * np.abs(self.e))
            v = self.v
            a_lat = v * v * k_path
            a_tyre = (self.thr * np.minimum(self.power_per_kg / np.maximum(v, 1.0), self.drive_cap)
                      - self.brk * self.brake_acc)
            grip = np.minimum(self.mu * G, lat_cap)
            usage = np.hypot(a_tyre, a_lat) / grip
            excess = np.maximum(usage - 1.0, 0.0)
            lean = np.degrees(np.arctan(np.abs(a_lat) / G))
            violation |= (usage > USAGE_VIOLATION) | (lean > self.lean_max)
            # The rider's own drift stays on the road (riders see the edges): only a slide
            # (a left turn, kl > 0, slides to the right, +e) or a side cue can take it off.
            drift = self.e + ou_k * self.rng.standard_normal(n) - self.e / r.line_tau_s * h
            lo = -tr.w_left[idx] + RIDER_EDGE_M - tr.line_offset[idx]
            hi = tr.w_right[idx] - RIDER_EDGE_M - tr.line_offset[idx]
            drift = np.clip(drift, lo, np.maximum(hi, lo))
            self.e = drift + (np.sign(kl) * excess * SLIDE_GAIN * v + self.u_lat) * h
            a_x = a_tyre - (self.drag_k * v * v + self.roll_acc) - SCRUB * excess * G
            self.v = np.clip(v + a_x * h, 1.0, self.v_top)
            self.s += 0.5 * (v + self.v) * h
            n_abs = tr.line_offset[idx] + self.e
            offtrack |= (n_abs > tr.w_right[idx] + KERB_M) | (n_abs < -tr.w_left[idx] - KERB_M)
            self.usage, self.a_lat = usage, -a_lat      # lateral g positive to the right
        self.t += DT
        # Lap timing: crossing a multiple of the lap length measured from the start point.
        progress = self.s - s_before
        laps_now = np.floor((self.s - self.s0) / self.length).astype(np.int64)
        lap_done = laps_now > self.laps
        frac = np.clip((self.s0 + laps_now * self.length - s_before) / np.maximum(progress, 1e-9), 0, 1)
        t_cross = self.t - DT + frac * DT
        lap_time = np.where(lap_done, t_cross - self.lap_start_t, np.nan)
        self.lap_start_t = np.where(lap_done, t_cross, self.lap_start_t)
        self.laps = laps_now

        reward = (progress / (V_REF * DT) - W_VIOLATION * violation - W_OFFTRACK * offtrack
                  - W_CUE * np.maximum(act[:, 0], act[:, 1])
                  - W_SMOOTH * np.abs(act - self.prev_action).sum(axis=1))
        self.prev_action = act
        return StepResult(reward=reward, progress_m=progress, violation=violation, offtrack=offtrack,
                          lap_done=lap_done, lap_time=lap_time, cue_on=cue["on"] > 0)

    # --- what the device sees -----------------------------------------------------------

    def observe(self) -> np.ndarray:
        """Telemetry (n, n_features) float32 in physical units, clamped to the schema ranges.

        Built by name from the schema so the order can never drift from the device's.
        """
        schema = load_schema()
        idx = self._grid(self.s)
        frac = np.mod(self.s, GRID_M)
        lat_g = self.a_lat / G
        values = {
            "speed": self.v,
            "roll_angle": np.degrees(np.arctan(lat_g)),
            "lateral_g": lat_g,
            "dist_to_apex": np.maximum(self.dist_to_apex[idx] - frac, 0.0),
            "throttle": self.thr,
            "brake": self.brk,
            "line_deviation": self.e,
            "friction_usage": self.usage,
        }
        obs = np.stack([values[name] for name in schema.feature_names], axis=1)
        return schema.clip(obs.astype(np.float32))

    def rider_controls(self) -> dict[str, np.ndarray]:
        """The rider's own inputs and cue state (recorded in datasets)."""
        return {"throttle": self.thr.copy(), "brake": self.brk.copy(), "lateral_correction": self.u_lat.copy(),
                "confidence": self.conf.copy(), "attention": self.attention.copy()}


_CONVERGED: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def converged_lap(track: Track, rider: RiderProfile, vehicle: VehicleProfile,
                  substeps: int = SUBSTEPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speed, throttle and brake at each grid point on the rider's second noise-free lap (cached).

    Flying laps start from these, so a ride never starts faster than the rider (or the
    bike) would be going there.
    """
    key = (track.name, track.source, track.n_grid, rider, vehicle, substeps)
    if key not in _CONVERGED:
        calm = replace(rider, corner_speed_noise=0.0, brake_point_error_m=0.0, line_noise_m=0.0)
        sim = RideSim(track, calm, n=1, seed=0, vehicle=vehicle, substeps=substeps, converged_start=False)
        sim.mu[:] = vehicle.mu
        sim.e[:] = 0.0
        v, thr, brk = (np.full(track.n_grid, np.nan) for _ in range(3))
        zeros = np.zeros((1, 3))
        for _ in range(int(3 * track.length_m / 5.0 / DT)):      # >= 5 m/s: two laps fit
            sim.step(zeros)
            if sim.laps[0] >= 1:
                i = sim._grid(sim.s)[0]
                v[i], thr[i], brk[i] = sim.v[0], sim.thr[0], sim.brk[0]
            if sim.laps[0] >= 2:
                break
        seen = np.flatnonzero(np.isfinite(v))
        grid = np.arange(track.n_grid)
        _CONVERGED[key] = tuple(np.interp(grid, seen, a[seen], period=track.n_grid) for a in (v, thr, brk))
    return _CONVERGED[key]
