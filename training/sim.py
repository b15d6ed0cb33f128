"""The ride simulator: bike physics, the rider model and the cue response, batched in numpy.

One code path serves every user: :class:`RideSim` advances ``n`` independent rides on the
same track with arrays of shape ``(n,)``; the Gymnasium env is ``n = 1``, the vector env and
PPO use ``n`` in the hundreds.

Bike: a point mass moving along the track (arc position ``s``) with a lateral deviation
``e`` from the reference racing line. Friction circle with a per-ride grip ``mu``; braking
up to :data:`BRAKE_MAX_G`; power-limited drive; aerodynamic drag. Being off the racing
line tightens the path (:data:`LINE_PENALTY_PER_M`), so a wandering line costs grip.
Above 100 % friction usage the bike slides outwards and scrubs speed; leaving the track
(more than :data:`KERB_M` beyond an edge) ends the ride.

Rider: plans a speed envelope from the next two apexes with its own corner-speed fraction,
braking deceleration, per-corner speed and braking-point errors, and a throttle limit;
drifts off the line (Ornstein-Uhlenbeck, ``line_noise_m``, ``line_tau_s``). Less skilled
riders lose time where a coach can help: they finish braking ``brake_margin_m`` too early
and gently, and keep part throttle for ``exit_delay_m`` past each apex.

Cues (see docs/training.md): decoded from the 3 actions, perceived after
``perception_delay_s``, acted on with probability ``compliance x attention`` where
attention falls when the cue duty stays above ``habituation_free_duty``:

* one motor on: steer towards that side (lateral correction velocity);
* both on, >= 200 Hz: brake / slow -> "confidence" falls (caution): lower corner speed;
* both on, <= 100 Hz: throttle / carry speed -> confidence rises (push): braking later
  and firmer (margin shrinks, deceleration towards :data:`PUSH_DECEL_G`), full throttle
  sooner after the apex, a little more corner speed. Riders plan with the nominal grip
  (:data:`MU_NOMINAL`), so a push on a low-grip surface ends in safety events.

Confidence decays with ``confidence_tau_s``. Nothing makes a cue good by itself: a push
on a low-grip surface or at the grip limit causes
safety events and slides, a slow cue on a straight costs time, a side cue towards the wrong side pushes
the rider off the line (all tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motocoach.schema import load_schema
from motocoach.training.riders import RiderProfile
from motocoach.training.tracks import GRID_M, Track

G = 9.81
DT = 1.0 / load_schema().rate_hz          # control step, 50 ms at 20 Hz
SUBSTEPS = 2
MU_NOMINAL = 1.2                          # what riders plan with
MU_RANGE = (1.12, 1.30)                   # actual grip, drawn per ride
BRAKE_MAX_G = 1.5
POWER_PER_KG = 520.0                      # W/kg, bike + rider
DRIVE_MAX = 0.9 * G                       # wheelie / traction limit
DRAG_PER_M = 0.0011                       # 0.5 rho CdA / m, 1/m
LEAN_CAP_DEG = 64.0
LINE_PENALTY_PER_M = 0.15                 # path curvature grows 15 % per metre off the line
SLIDE_GAIN = 0.15                         # outward slip per unit of excess usage, (m/s)/(m/s)
SCRUB = 3.0                               # speed lost in a slide per unit of excess usage, g
KERB_M = 0.5                              # beyond the edge by more than this = off track
USAGE_VIOLATION = 0.95
CUE_ON = 0.3                              # a motor intensity at or above this is "on"
FREQ_BRAKE_HZ = 200.0
FREQ_THROTTLE_HZ = 100.0
LINE_CUE_TAU_S = 0.6
BRAKE_LEAD_M = 30.0                       # riders plan to reach apex speed this far before it
LOOK_AHEAD_S = 0.7                        # riders see the curvature this far ahead
PUSH_DECEL_G = 0.95                       # braking a pushed rider works up to (if below it)
CAUTION_SPEED = 0.06                      # corner-speed cut at full caution (slow cue)
BRAKE_GAIN = 1.0                          # brake demand per m/s over the planned speed
PLAN_AHEAD_S = 0.5                        # riders control towards the plan this far ahead
MARGIN_PUSH = 1.0                         # share of brake_margin_m a full push removes
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


def sf_grip(rider: RiderProfile, conf: np.ndarray) -> np.ndarray:
    """Lateral grip (in g) the rider plans to use, given its confidence in [-1, 1]."""
    push, caution = np.maximum(conf, 0.0), np.maximum(-conf, 0.0)
    return rider.speed_factor * (1.0 + rider.confidence_gain * push - CAUTION_SPEED * caution) * MU_NOMINAL


def brake_decel_g(rider: RiderProfile, conf: np.ndarray) -> np.ndarray:
    """Braking deceleration the rider uses, g: a push ("brake later, carry speed") makes a
    timid rider brake more firmly, up to :data:`PUSH_DECEL_G`."""
    push = np.maximum(conf, 0.0)
    return rider.brake_decel_g + push * max(PUSH_DECEL_G - rider.brake_decel_g, 0.0)


class RideSim:
    """``n`` rides of one rider on one track, advanced together.

    Args:
        track: the track.
        rider: the rider profile.
        n: number of parallel rides.
        seed: seed of the one random generator all rides draw from.
        random_start: start each ride at a random track position (training) instead of s=0.
    """

    def __init__(self, track: Track, rider: RiderProfile, n: int = 1, seed: int | None = None,
                 random_start: bool = False) -> None:
        self.track, self.rider, self.n = track, rider, n
        self.random_start = random_start
        self.rng = np.random.default_rng(seed)
        self.length = track.length_m
        self.n_apex = len(track.apex_s)
        self.apex_gap = (np.roll(track.apex_s, -1) - track.apex_s) % self.length
        if self.n_apex == 1:
            self.apex_gap[:] = self.length
        self.delay_steps = int(np.clip(round(rider.perception_delay_s / DT), 1, MAX_DELAY_STEPS - 1))
        self.dist_to_apex = track.dist_to_apex
        z = lambda: np.zeros(n)  # noqa: E731
        self.s, self.s0, self.v, self.e, self.u_lat, self.conf = z(), z(), z(), z(), z(), z()
        self.thr, self.brk, self.habit, self.t, self.usage, self.a_lat = z(), z(), z(), z(), z(), z()
        self.lap_start_t, self.attention = z(), np.ones(n)
        self.laps = np.zeros(n, dtype=np.int64)
        self.mu = np.full(n, MU_NOMINAL)
        self.corner_noise = np.zeros((n, self.n_apex))
        self.brake_err = np.zeros((n, self.n_apex))
        self.cue_buf = np.zeros((MAX_DELAY_STEPS, 4, n))
        self.head = 0
        self.prev_action = np.zeros((n, 3))
        self.reset()

    # --- state --------------------------------------------------------------------------

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new rides for the envs in ``mask`` (all if None)."""
        m = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        k = int(m.sum())
        if k == 0:
            return
        r, rng = self.rider, self.rng
        self.mu[m] = rng.uniform(*MU_RANGE, k)
        self.corner_noise[m] = rng.normal(0.0, r.corner_speed_noise, (k, self.n_apex))
        self.brake_err[m] = rng.normal(0.0, r.brake_point_error_m, (k, self.n_apex))
        start = rng.uniform(0, self.length, k) if self.random_start else np.zeros(k)
        self.s[m], self.s0[m] = start, start
        self.e[m] = rng.normal(0.0, r.line_noise_m * 0.5, k)
        for arr in (self.u_lat, self.conf, self.habit, self.t, self.usage, self.a_lat, self.brk,
                    self.lap_start_t):
            arr[m] = 0.0
        self.laps[m] = 0
        self.attention[m] = 1.0
        self.cue_buf[:, :, m] = 0.0
        self.prev_action[m] = 0.0
        self.v[m] = 0.95 * np.sqrt(self._allowed_v2(m))
        self.thr[m] = 0.3

    def _grid(self, s: np.ndarray) -> np.ndarray:
        return (np.mod(s, self.length) / GRID_M).astype(np.int64) % self.track.n_grid

    def _allowed_v2(self, m: np.ndarray | slice = slice(None), ahead_s: float = 0.0) -> np.ndarray:
        """The rider's planned speed squared: min over the local corner and the next two apexes."""
        r, tr = self.rider, self.track
        conf = self.conf[m]
        decel = brake_decel_g(r, conf) * G
        s = self.s[m] + self.v[m] * ahead_s
        idx = self._grid(s)
        k1 = tr.next_apex[idx]
        k2 = (k1 + 1) % self.n_apex
        d1 = np.mod(tr.apex_s[k1] - np.mod(s, self.length), self.length)
        d2 = d1 + self.apex_gap[k1]
        rows = np.arange(len(s))
        grip = sf_grip(r, conf) * G
        vc1 = grip * (1.0 + self.corner_noise[m][rows, k1]) / tr.apex_kappa[k1]
        vc2 = grip * (1.0 + self.corner_noise[m][rows, k2]) / tr.apex_kappa[k2]
        # braking should be done BRAKE_LEAD_M before the apex (upright, not while leaning)
        # a timid rider finishes braking brake_margin_m earlier still; a push shrinks that
        lead = BRAKE_LEAD_M + r.brake_margin_m * (1.0 - MARGIN_PUSH * np.maximum(conf, 0.0))
        b1 = np.maximum(d1 + self.brake_err[m][rows, k1] - lead, 0.0)
        b2 = np.maximum(d2 + self.brake_err[m][rows, k2] - lead, 0.0)
        ahead = (idx + (self.v[m] * LOOK_AHEAD_S / GRID_M).astype(np.int64)) % tr.n_grid
        kappa_seen = np.maximum(np.abs(tr.line_kappa[idx]), np.abs(tr.line_kappa[ahead]))
        local = grip / np.maximum(kappa_seen, 1e-4)
        return np.minimum(np.minimum(vc1 + 2 * decel * b1, vc2 + 2 * decel * b2), local)

    # --- one control step ---------------------------------------------------------------

    def step(self, actions: np.ndarray) -> StepResult:
        """Apply normalized actions (n, 3) in [0, 1] for one control step."""
        r, tr, n = self.rider, self.track, self.n
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

        # The rider's own speed control towards the planned envelope.
        v_plan = np.sqrt(self._allowed_v2(ahead_s=PLAN_AHEAD_S))
        err = v_plan - self.v
        t_max = np.clip(r.throttle_max + 0.25 * self.conf, 0.0, 1.0)
        b_max = brake_decel_g(r, self.conf) / BRAKE_MAX_G
        # Riders share grip between cornering and braking/drive as they believe it to be.
        # Riders plan with the nominal grip, so on a low-grip surface a push is what bites.
        grip_left = np.sqrt(np.maximum((sf_grip(r, self.conf) * G) ** 2 - self.a_lat ** 2, 0.0))
        # riders feel the total deceleration, so drag counts against the brake grip
        drag = DRAG_PER_M * self.v * self.v
        b_max = np.minimum(b_max, np.maximum(grip_left - drag, 0.0) / (BRAKE_MAX_G * G))
        t_max = np.minimum(t_max, grip_left / DRIVE_MAX)
        # Late throttle: part throttle until exit_delay_m past the last apex (less when pushed).
        idx0 = self._grid(self.s)
        prev_apex = (tr.next_apex[idx0] - 1) % self.n_apex
        since_apex = np.mod(np.mod(self.s, self.length) - tr.apex_s[prev_apex], self.length)
        exiting = since_apex < r.exit_delay_m * (1.0 - np.maximum(self.conf, 0.0))
        t_max = np.where(exiting, np.minimum(t_max, EXIT_THROTTLE), t_max)
        thr_cmd = np.clip(0.4 * err, 0.0, t_max)
        brk_cmd = np.clip(-BRAKE_GAIN * err, 0.0, b_max)
        self.thr += np.clip(thr_cmd - self.thr, -4 * DT, 4 * DT)
        self.brk += np.clip(brk_cmd - self.brk, -6 * DT, 6 * DT)

        # Physics sub-steps.
        h = DT / SUBSTEPS
        s_before = self.s.copy()
        violation = np.zeros(n, dtype=bool)
        offtrack = np.zeros(n, dtype=bool)
        ou_k = r.line_noise_m * np.sqrt(2.0 * h / r.line_tau_s)
        for _ in range(SUBSTEPS):
            idx = self._grid(self.s)
            kl = tr.line_kappa[idx]
            k_path = kl * (1.0 + LINE_PENALTY_PER_M * np.abs(self.e))
            v = self.v
            a_lat = v * v * k_path
            drive = self.thr * np.minimum(DRIVE_MAX, POWER_PER_KG / np.maximum(v, 1.0))
            a_x = drive - self.brk * BRAKE_MAX_G * G - DRAG_PER_M * v * v
            usage = np.hypot(a_x, a_lat) / (self.mu * G)
            excess = np.maximum(usage - 1.0, 0.0)
            lean = np.degrees(np.arctan(np.abs(a_lat) / G))
            violation |= (usage > USAGE_VIOLATION) | (lean > LEAN_CAP_DEG)
            # a left turn (kl > 0) slides to the right (+e)
            self.e += (np.sign(kl) * excess * SLIDE_GAIN * v + self.u_lat - self.e / r.line_tau_s) * h
            self.e += ou_k * self.rng.standard_normal(n)
            self.v = np.maximum(v + (a_x - SCRUB * excess * G) * h, 1.0)
            self.s += self.v * h
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
