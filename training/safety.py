"""A safety-constrained PPO objective: the coached rider may not spend more time over the
grip limit than the same rider does uncoached.

This is the Lagrangian form of a constrained MDP (PPO-Lagrangian, Ray et al. 2019,
"Benchmarking Safe Exploration in Deep RL"), with the cost folded into the reward so SB3's
PPO runs unchanged: the reward's fixed violation weight is replaced by a multiplier
``lambda`` that grows while the violation rate of the last rollout is over its budget and
shrinks while it is under (multiplicative dual ascent, so it stays positive). The budget is
``budget_ratio`` times the uncoached rider's own violation rate, measured on the same
training circuits before PPO starts.
"""

from __future__ import annotations

import math

import numpy as np

from motocoach.training.sim import W_VIOLATION

LAMBDA_MIN, LAMBDA_MAX = 0.05, 50.0


def uncoached_violation_rate(venv, steps: int = 600) -> float:
    """Fraction of ride steps over the grip limit with no cue at all, on ``venv``'s rides."""
    venv.reset()
    venv.take_violation_rate()
    zeros = np.zeros((venv.num_envs, 3), dtype=np.float32)
    for _ in range(steps):
        venv.step_async(zeros)
        venv.step_wait()
    rate = venv.take_violation_rate()
    venv.reset()
    return rate


class ViolationBudget:
    """Dual ascent on the violation weight of a :class:`RideVecEnv`; call :meth:`update` after
    each rollout. ``history`` keeps (rate, lambda) per rollout for the run's metadata."""

    def __init__(self, venv, target_rate: float, budget_ratio: float = 1.0, lr: float = 0.5,
                 lam0: float = W_VIOLATION) -> None:
        self.venv = venv
        # a rider who never slides uncoached still gets a tiny budget, so the ratio stays finite
        self.budget = max(target_rate * budget_ratio, 1e-4)
        self.lr = lr
        self.lam = lam0
        self.history: list[tuple[float, float]] = []
        venv.violation_weight = self.lam

    def update(self) -> tuple[float, float]:
        rate = self.venv.take_violation_rate()
        step = self.lr * float(np.clip(rate / self.budget - 1.0, -1.0, 3.0))
        self.lam = float(np.clip(self.lam * math.exp(step), LAMBDA_MIN, LAMBDA_MAX))
        self.venv.violation_weight = self.lam
        self.history.append((rate, self.lam))
        return rate, self.lam
