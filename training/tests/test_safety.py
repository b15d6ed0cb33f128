"""The safety-constrained objective: the violation weight follows the budget, and the
efficacy figures compare coaches on the same rides."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from motocoach.training.efficacy import efficacy_metrics, goals_met
from motocoach.training.evaluate import CoachResult
from motocoach.training.safety import LAMBDA_MAX, LAMBDA_MIN, ViolationBudget, uncoached_violation_rate


class _CountingEnv:
    """Stands in for RideVecEnv's violation counter only."""

    def __init__(self) -> None:
        self.rate = 0.0
        self.violation_weight = None

    def take_violation_rate(self) -> float:
        return self.rate


def test_lambda_rises_over_budget_and_falls_under_it():
    env = _CountingEnv()
    b = ViolationBudget(env, target_rate=0.01, budget_ratio=1.0, lr=0.5, lam0=1.0)
    env.rate = 0.03                           # three times the budget
    for _ in range(5):
        b.update()
    high = b.lam
    assert high > 1.0 and env.violation_weight == high
    env.rate = 0.0
    for _ in range(200):
        b.update()
    assert b.lam == pytest.approx(LAMBDA_MIN)
    env.rate = 1.0
    for _ in range(200):
        b.update()
    assert b.lam == pytest.approx(LAMBDA_MAX) and len(b.history) == 405


def _ride_reward(acts, steps, **weights):
    """Total reward and violation steps of 8 kestrel rides (seed 3) under fixed actions, with
    RideVecEnv's reward weights set as given."""
    from motocoach.training.ppo_policy import RideVecEnv

    venv = RideVecEnv(["kestrel"], "amateur", 8, seed=3)
    venv.reset()
    for name, value in weights.items():
        setattr(venv, name, value)
    total = 0.0
    for _ in range(steps):
        venv.step_async(acts)
        total += float(venv.step_wait()[1].sum())
    return total, venv.take_violation_rate() * steps * len(acts)


def test_uncoached_rate_and_the_weight_reach_the_reward():
    from motocoach.training.ppo_policy import RideVecEnv
    from motocoach.training.sim import W_VIOLATION

    rate = uncoached_violation_rate(RideVecEnv(["kestrel"], "amateur", 8, seed=3), steps=100)
    assert 0.0 <= rate <= 1.0
    acts = np.ones((8, 3), dtype=np.float32)          # both motors, high frequency: a busy coach
    same, viol = _ride_reward(acts, 60, violation_weight=W_VIOLATION)
    heavy, viol2 = _ride_reward(acts, 60, violation_weight=W_VIOLATION + 10.0)
    assert viol == viol2 and viol > 0                  # the weight changes the reward, not the ride
    assert same - heavy == pytest.approx(10.0 * viol, rel=1e-4)


def _cell(coach, rider, laps, viol, duty=0.1, track="t"):
    laps = np.asarray(laps, dtype=float)
    done = np.isfinite(laps)
    return CoachResult(coach=coach, track=track, rider=rider, rides=len(laps), completed=int(done.sum()),
                       offtracks=int((~done).sum()), lap_time_mean_s=float(np.nanmean(laps)) if done.any() else math.nan,
                       lap_time_std_s=0.0, violation_s_per_lap=0.0, cue_duty=duty, lap_times_s=tuple(laps),
                       violation_s=tuple(viol))


def test_efficacy_figures_are_paired_and_never_nan():
    res = [_cell("none", "amateur", [100, 100, 100], [1, 1, 1]),
           _cell("bc+ppo", "amateur", [95, 95, np.nan], [1, 1, 9], duty=0.2),
           _cell("bc", "amateur", [97, 97, 97], [1, 1, 1]),
           _cell("none", "trackday", [100, 100], [0, 0]),
           _cell("bc+ppo", "trackday", [99, 98], [0, 0])]
    m = efficacy_metrics(res, ["amateur", "trackday"])
    assert m["violations_ratio"] == pytest.approx(2 / 2)      # ride 3 crashed coached: not compared
    assert m["ppo_vs_bc_gain_pts"] == pytest.approx(np.mean([5, 5, 1, 2]) - 3.0)
    assert m["pro_laptime_change_pct"] is None and m["skill_only_amateur_gain_pct"] == pytest.approx(1.5)
    assert all(v is None or math.isfinite(v) for v in m.values())
    met = goals_met(m)
    assert met["violations_ratio"] and not met["amateur_laptime_gain_pct"]
    assert "pro_laptime_change_pct" not in met
    crashed = [replace(r, lap_times_s=(math.nan,) * r.rides, completed=0) for r in res]
    assert efficacy_metrics(crashed, ["amateur"])["amateur_laptime_gain_pct"] is None


def test_the_cue_penalty_reaches_the_reward():
    from motocoach.training.sim import W_CUE

    acts = np.tile(np.float32([0.8, 0.3, 0.9]), (8, 1))     # max(left, right) = 0.8 every step
    plain, same, heavy = (_ride_reward(acts, 40, cue_weight=w)[0] for w in (None, W_CUE, W_CUE + 0.5))
    assert plain == pytest.approx(same, rel=1e-6)         # None keeps the simulator's W_CUE
    assert plain - heavy == pytest.approx(0.5 * 0.8 * 8 * 40, rel=1e-4)
