"""MotoCoach-v0 passes Gymnasium's checker; the vector env autoresets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import motocoach.training  # noqa: F401  (registers MotoCoach-v0)
from motocoach.schema import load_schema
from motocoach.training.envs import MotoCoachEnv, MotoCoachVectorEnv


def test_check_env_passes():
    env = gym.make("MotoCoach-v0", track="osprey", rider="novice")
    check_env(env.unwrapped)
    assert env.spec.max_episode_steps == 2400


def test_observation_is_schema_telemetry():
    env = gym.make("MotoCoach-v0", track="kestrel", rider="amateur")
    obs, _ = env.reset(seed=0)
    s = load_schema()
    assert obs.shape == (s.n_features,)
    assert np.all(obs >= s.feature_low) and np.all(obs <= s.feature_high)
    assert obs[s.feature_names.index("speed")] > 10


def test_docstring_tables_come_from_the_schema():
    for q in load_schema().features + load_schema().actions:
        assert q.name in MotoCoachEnv.__doc__


def test_lap_terminates_episode():
    env = gym.make("MotoCoach-v0", track="osprey", rider="pro")
    env.reset(seed=1)
    for _ in range(2400):
        _, _, term, trunc, info = env.step(np.zeros(3, dtype=np.float32))
        if term or trunc:
            break
    assert term and 30 < info["lap_time"] < 80


def test_vector_env_autoresets():
    venv = MotoCoachVectorEnv(8, track="heron", rider="novice", seed=0, max_episode_steps=50)
    obs, _ = venv.reset()
    for t in range(50):
        obs, rew, term, trunc, info = venv.step(np.zeros((8, 3)))
    assert trunc.all() and info["_final_obs"].all()
    assert venv.steps.max() == 0 and obs.shape == (8, 8)


def test_docs_tables_are_generated_from_the_schema():
    from pathlib import Path

    from motocoach.training.envs import markdown_tables

    doc = Path(__file__).resolve().parents[2] / "docs" / "training.md"
    assert markdown_tables() in doc.read_text(), "regenerate the tables in docs/training.md"


def test_docs_cue_language_comes_from_the_schema():
    from pathlib import Path

    from motocoach.schema import load_schema
    from motocoach.training import sim
    from motocoach.training.envs import cue_language_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "training.md"
    assert cue_language_markdown() in doc.read_text(), "regenerate the cue table in docs/training.md"
    c = load_schema().cues
    assert (sim.CUE_ON, sim.FREQ_THROTTLE_HZ, sim.FREQ_BRAKE_HZ) == (c.motor_on, c.low_max_hz, c.high_min_hz)
