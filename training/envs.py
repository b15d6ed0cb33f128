"""Gymnasium environments: ``MotoCoach-v0`` (one ride) and a numpy-batched vector env.

Both are thin shells over :class:`~motocoach.training.sim.RideSim`, so there is one
physics and rider code path. The tables in :class:`MotoCoachEnv`'s docstring are generated
from the feature schema at import time.

>>> import gymnasium as gym
>>> import motocoach.training
>>> env = gym.make("MotoCoach-v0", track="kestrel", rider="amateur")
>>> obs, info = env.reset(seed=0)
>>> obs.shape, obs.dtype.name
((8,), 'float32')
>>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
>>> bool(terminated), "lap_time" in info
(False, True)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from motocoach.schema import load_schema
from motocoach.training import sim as S
from motocoach.training.riders import get_rider
from motocoach.training.tracks import get_track

MAX_EPISODE_STEPS = 4000     # 200 s at 20 Hz: a novice's lap of a 6 km circuit fits


def observation_space() -> spaces.Box:
    s = load_schema()
    return spaces.Box(s.feature_low, s.feature_high, dtype=np.float32)


def action_space() -> spaces.Box:
    return spaces.Box(0.0, 1.0, (load_schema().n_actions,), dtype=np.float32)


def _info(sim: S.RideSim, r: S.StepResult | None, i: int = 0) -> dict[str, Any]:
    ctrl = sim.rider_controls()
    return {
        "track_position_m": float(np.mod(sim.s[i], sim.length)),
        "time_s": float(sim.t[i]),
        "laps": int(sim.laps[i]),
        # seconds of the lap completed in this step, 0.0 if none (NaN would break equality checks)
        "lap_time": float(r.lap_time[i]) if r is not None and r.lap_done[i] else 0.0,
        "violation": bool(r.violation[i]) if r is not None else False,
        "offtrack": bool(r.offtrack[i]) if r is not None else False,
        "cue_on": bool(r.cue_on[i]) if r is not None else False,
        **{f"rider_{k}": float(v[i]) for k, v in ctrl.items()},
    }


class MotoCoachEnv(gym.Env):
    __doc__ = ""  # filled in below from the schema

    metadata = {"render_modes": [], "render_fps": load_schema().rate_hz}

    def __init__(self, track: str = "kestrel", rider: str = "amateur", random_start: bool = False,
                 laps: int = 1) -> None:
        self.track_name, self.rider_name = str(track), str(rider)
        self.sim = S.RideSim(get_track(self.track_name), get_rider(self.rider_name), n=1,
                             random_start=random_start)
        self.laps_to_ride = int(laps)
        self.observation_space = observation_space()
        self.action_space = action_space()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.sim.seed(seed)
        else:
            self.sim.seed(int(self.np_random.integers(2**31)))
        self.sim.reset()
        return self.sim.observe()[0], _info(self.sim, None)

    def step(self, action):
        r = self.sim.step(np.asarray(action, dtype=np.float64).reshape(1, -1))
        terminated = bool(r.offtrack[0] or self.sim.laps[0] >= self.laps_to_ride)
        return self.sim.observe()[0], float(r.reward[0]), terminated, False, _info(self.sim, r)


def _table(items, header: str) -> str:
    rows = [f"    | {'#':>2} | {'name':<16} | {'unit':<4} | {'min':>7} | {'max':>7} |",
            f"    |----|{'-' * 18}|------|---------|---------|"]
    rows += [f"    | {i:>2} | {q.name:<16} | {q.unit:<4} | {q.min:>7g} | {q.max:>7g} |"
             for i, q in enumerate(items)]
    return header + "\n\n" + "\n".join(rows)


def env_doc() -> str:
    """The env's docstring: prose plus observation/action tables generated from the schema."""
    s = load_schema()
    return f"""A motorcycle ride on a closed track with a simulated rider who feels haptic cues.

    Observation: float32 ({s.n_features},), PHYSICAL telemetry in schema order, clamped to the
    schema ranges, exactly what the device receives ({s.rate_hz} Hz).

{_table(s.features, "    Observation space")}

    Action: float32 ({s.n_actions},) NORMALIZED to [0, 1]; physical units via
    ``schema.actions_to_physical``. One motor on (intensity >= {S.CUE_ON}) = steer to that
    side; both on at >= {S.FREQ_BRAKE_HZ:g} Hz = brake / slow; both on at <= {S.FREQ_THROTTLE_HZ:g} Hz
    = throttle / carry speed.

{_table(s.actions, "    Action space (physical units after mapping)")}

    Reward (per {1000 * S.DT:g} ms step): progress / ({S.V_REF:g} m/s x dt)
    - {S.W_VIOLATION} x [friction usage > {S.USAGE_VIOLATION} or lean > the vehicle's lean_max_deg]
    - {S.W_OFFTRACK} x [left the track] - {S.W_CUE} x max(left, right) intensity
    - {S.W_SMOOTH} x |action change|_1.

    Starting state: at the start line (or a random position with ``random_start=True``),
    flying, at the speed, throttle and brake of the rider's own converged lap there; grip
    mu ~ the vehicle's mu x U{S.GRIP_RANGE}; per-corner rider errors drawn.

    Episode end: terminated when the rider leaves the track or completes ``laps`` laps;
    truncated by the registration's ``max_episode_steps`` ({MAX_EPISODE_STEPS}).

    Args:
        track: built-in track name or a path to a track CSV.
        rider: built-in profile name or a path to a rider profile JSON.
        random_start: start at a random track position.
        laps: laps to ride before the episode terminates.
    """


MotoCoachEnv.__doc__ = env_doc()


class MotoCoachVectorEnv(VectorEnv):
    """``num_envs`` rides advanced by one numpy call per step (same-step autoreset).

    When a ride ends, ``infos["final_obs"]`` holds its last observation (``_final_obs``
    marks which) and the returned observation is the first one of the new ride.
    Episodes are truncated after ``max_episode_steps``.

    >>> venv = MotoCoachVectorEnv(4, track="heron", rider="amateur", seed=1)
    >>> obs, _ = venv.reset()
    >>> obs.shape
    (4, 8)
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, track: str = "kestrel", rider: str = "amateur",
                 seed: int | None = None, random_start: bool = True,
                 max_episode_steps: int = 1200) -> None:
        self.num_envs = num_envs
        self.sim = S.RideSim(get_track(track), get_rider(rider), n=num_envs, seed=seed,
                             random_start=random_start)
        self.single_observation_space = observation_space()
        self.single_action_space = action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps
        self.steps = np.zeros(num_envs, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.sim.seed(seed)
        self.sim.reset()
        self.steps[:] = 0
        return self.sim.observe(), {}

    def step(self, actions):
        r = self.sim.step(actions)
        self.steps += 1
        terminated = r.offtrack
        truncated = (self.steps >= self.max_episode_steps) & ~terminated
        obs = self.sim.observe()
        infos: dict[str, Any] = {"lap_time": r.lap_time, "violation": r.violation,
                                 "cue_on": r.cue_on}
        done = terminated | truncated
        if done.any():
            infos["final_obs"] = np.where(done[:, None], obs, 0.0).astype(np.float32)
            infos["_final_obs"] = done
            self.sim.reset(done)
            self.steps[done] = 0
            obs = self.sim.observe()
        return obs, r.reward.astype(np.float32), terminated, truncated, infos


def cue_language_markdown() -> str:
    """The cue-language table of docs/training.md, with the thresholds of the feature schema."""
    c = load_schema().cues
    return "\n".join([
        f'Decoded from the three network outputs (motor "on" = intensity >= {c.motor_on:g}):', "",
        "| cue | meaning to the rider | effect in the simulator |", "|---|---|---|",
        "| left motor only | move left on the track | lateral correction velocity to the left |",
        "| right motor only | move right | lateral correction velocity to the right |",
        f"| both, >= {c.high_min_hz:g} Hz | brake / slow down | confidence falls (\"caution\"): "
        "corner speed down by up to 6 % |",
        f"| both, <= {c.low_max_hz:g} Hz | throttle / carry speed | confidence rises (\"push\"): braking "
        "margin shrinks, braking firmer (towards 0.95 g), full throttle sooner after the apex, corner "
        "speed up by `confidence_gain` |",
        f"| both, {c.low_max_hz:g}-{c.high_min_hz:g} Hz | nothing defined | no action, but it still "
        "counts as buzzing |"])


def markdown_tables() -> str:
    """The observation, action and rider-profile tables of docs/training.md (generated)."""
    from motocoach.training.riders import RIDER_FIELDS

    s = load_schema()
    out = ["| # | observation | unit | min | max | meaning |", "|---|---|---|---|---|---|"]
    out += [f"| {i} | `{q.name}` | {q.unit} | {q.min:g} | {q.max:g} | {q.description} |"
            for i, q in enumerate(s.features)]
    out += ["", "| # | action (network output in [0, 1]) | physical unit | min | max | meaning |",
            "|---|---|---|---|---|---|"]
    out += [f"| {i} | `{q.name}` | {q.unit} | {q.min:g} | {q.max:g} | {q.description} |"
            for i, q in enumerate(s.actions)]
    out += ["", "| rider profile field | allowed range | meaning |", "|---|---|---|"]
    out += [f"| `{k}` | {lo:g} .. {hi:g} | {meaning} |" for k, (lo, hi, meaning) in RIDER_FIELDS.items()]
    return "\n".join(out)
