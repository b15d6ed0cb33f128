"""Simulator throughput (host): single env, numpy-batched vector env, PPO learn speed."""

from __future__ import annotations

import time

import numpy as np


def _rate(fn, steps_per_call: int, min_s: float = 2.0) -> float:
    fn()                                              # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    return n * steps_per_call / (time.perf_counter() - t0)


def test_env_throughput(benchmark, bench_result):
    import gymnasium as gym
    import torch

    import motocoach.training  # noqa: F401
    from motocoach.training.envs import MotoCoachVectorEnv

    env = gym.make("MotoCoach-v0", track="kestrel", rider="amateur").unwrapped
    env.reset(seed=0)
    zero = np.zeros(3, dtype=np.float32)

    def single(k=200):
        for _ in range(k):
            _, _, term, _, _ = env.step(zero)
            if term:
                env.reset()

    single_rate = _rate(single, 200)

    n = 4096
    venv = MotoCoachVectorEnv(n, track="kestrel", rider="amateur", seed=0)
    venv.reset()
    actions = np.random.default_rng(0).uniform(0, 1, (n, 3)).astype(np.float32)
    batched_rate = _rate(lambda: venv.step(actions), n)
    benchmark.pedantic(venv.step, args=(actions,), rounds=20, iterations=1)

    import os

    from stable_baselines3 import PPO

    from motocoach.training.ppo_policy import CoachPolicy, RideVecEnv
    from motocoach.training.train import PRESETS

    # The default training preset's PPO settings, one torch thread (as train() uses).
    p = PRESETS["default"]
    torch.set_num_threads(1)
    vec = RideVecEnv(list(p.tracks), "amateur", p.envs_per_track, seed=0)
    model = PPO(CoachPolicy, vec, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
                learning_rate=p.learning_rate, device="cpu")
    rollout = vec.num_envs * p.n_steps
    model.learn(rollout)                              # warm-up
    load_before = os.getloadavg()[0]
    steps = rollout * 4
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    ppo_rate = steps / (time.perf_counter() - t0)

    bench_result("env_throughput", "host", {
        "single_steps_per_s": single_rate, "batched_steps_per_s": batched_rate,
        "batched_num_envs": n, "ppo_learn_steps_per_s": ppo_rate,
        "ppo_num_envs": vec.num_envs, "ppo_n_steps": p.n_steps, "ppo_batch_size": p.batch_size,
        "ppo_n_epochs": p.n_epochs, "ppo_torch_threads": 1, "load_avg_1min": load_before,
    }, notes=("Measured on the host CPU (2 shared cores; load_avg_1min = other work on the machine "
              "when the PPO timing started). single = gymnasium MotoCoach-v0, one ride per numpy "
              "call, so per-call overhead dominates; batched = MotoCoachVectorEnv with "
              f"{n} rides advanced by one numpy call; ppo = SB3 PPO learn() with CoachPolicy over "
              f"{vec.num_envs} batched rides (RideVecEnv: one numpy call per track per step), "
              f"rollouts + {p.n_epochs} SGD epochs of {p.batch_size}-sample minibatches, 1 torch "
              "thread (2 threads on busy shared cores were measured 20x slower: OpenMP threads "
              "spin against the other processes)."))
    assert batched_rate > single_rate
    assert ppo_rate > 0
