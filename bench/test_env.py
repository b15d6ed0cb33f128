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

    from stable_baselines3 import PPO

    from motocoach.training.ppo_policy import CoachPolicy, RideVecEnv
    torch.set_num_threads(2)
    vec = RideVecEnv(["kestrel", "heron", "osprey"], "amateur", 32, seed=0)
    model = PPO(CoachPolicy, vec, n_steps=128, batch_size=2048, n_epochs=4, device="cpu")
    model.learn(vec.num_envs * 128)                   # warm-up
    steps = vec.num_envs * 128 * 6
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    ppo_rate = steps / (time.perf_counter() - t0)

    bench_result("env_throughput", "host", {
        "single_steps_per_s": single_rate, "batched_steps_per_s": batched_rate,
        "batched_num_envs": n, "ppo_learn_steps_per_s": ppo_rate,
        "ppo_num_envs": vec.num_envs, "ppo_batch_size": 2048, "ppo_n_epochs": 4,
    }, notes=("Measured on the host CPU (2 shared cores). single = gymnasium MotoCoach-v0, "
              "one ride per numpy call, so per-call overhead dominates; batched = "
              f"MotoCoachVectorEnv with {n} rides advanced by one numpy call; ppo = SB3 PPO "
              "learn() with CoachPolicy over 96 batched rides (rollout + 4 SGD epochs)."))
    assert batched_rate > single_rate
