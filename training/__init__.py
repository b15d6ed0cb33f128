"""Rider simulator, expert coach, Minari datasets, BC and PPO training, evaluation.

Importing this package registers the Gymnasium env ``MotoCoach-v0``
(:class:`motocoach.training.envs.MotoCoachEnv`).
"""

import os
from pathlib import Path

from gymnasium.envs.registration import register, registry

#: Where the real circuits, lap records and club laps live unless --real-data/--data or
#: MOTOCOACH_REAL_DATA says: one default for every verb and bench.
DEFAULT_REAL_DATA = Path(os.environ.get("MOTOCOACH_REAL_DATA") or Path("..") / "shared" / "data")

ENV_ID = "MotoCoach-v0"

if ENV_ID not in registry:
    # max_episode_steps must match envs.MAX_EPISODE_STEPS (kept literal so that importing
    # the package does not import the simulator).
    register(id=ENV_ID, entry_point="motocoach.training.envs:MotoCoachEnv", max_episode_steps=2400)
