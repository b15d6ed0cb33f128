"""SB3 glue: a PPO policy whose deterministic action IS :class:`CoachActor`, and a VecEnv.

:class:`CoachPolicy` is an ``ActorCriticPolicy`` with

* a features extractor that applies the schema normalization (fixed buffers, no
  parameters), so the policy takes physical telemetry like the env emits;
* ``mlp_extractor.policy_net`` with the same layers as ``CoachActor.body``;
* ``action_net = Sequential(Linear, Sigmoid)`` = ``CoachActor.head`` + sigmoid.

The Gaussian mean is therefore exactly ``CoachActor(normalize(obs))``: SB3 does not squash
PPO actions, the sigmoid keeps the mean in (0, 1) and SB3 clips samples to the Box
outside the network. :func:`load_actor_into` / :func:`export_actor` move weights between
the two without changing the function.

``logit_penalty`` adds the same term as behaviour cloning, ``logit_penalty * mean(z**2)``
over the pre-sigmoid logits ``z`` of each mini-batch, to PPO's loss. SB3's PPO has no hook
for an extra loss term, so a gradient hook on the logits adds that term's gradient
``2 * logit_penalty * z / z.numel()`` in every backward pass that reaches them (only
PPO's training loss does; rollouts run without gradients). The forward function is
unchanged.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from motocoach.schema import load_schema
from motocoach.training.envs import MotoCoachVectorEnv
from motocoach.training.policy_net import HIDDEN, CoachActor
from motocoach.training.sim import W_CUE, W_VIOLATION


class SchemaNormalizer(BaseFeaturesExtractor):
    """Physical telemetry -> clamp to the schema range -> (x - offset) / scale."""

    def __init__(self, observation_space: spaces.Box) -> None:
        s = load_schema()
        super().__init__(observation_space, features_dim=s.n_features)
        self.register_buffer("low", torch.as_tensor(s.feature_low))
        self.register_buffer("high", torch.as_tensor(s.feature_high))
        self.register_buffer("offset", torch.as_tensor(s.norm_offset))
        self.register_buffer("scale", torch.as_tensor(s.norm_scale))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (torch.clamp(obs, self.low, self.high) - self.offset) / self.scale


class CoachPolicy(ActorCriticPolicy):
    """PPO policy with CoachActor's actor function (see the module docstring)."""

    def __init__(self, *args: Any, logit_penalty: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("net_arch", {"pi": list(HIDDEN), "vf": list(HIDDEN)})
        kwargs.setdefault("activation_fn", nn.ReLU)
        kwargs.setdefault("features_extractor_class", SchemaNormalizer)
        kwargs.setdefault("ortho_init", False)
        super().__init__(*args, **kwargs)
        self.logit_penalty = float(logit_penalty)
        self.action_net[0].register_forward_hook(self._penalize_logits)

    def _penalize_logits(self, _module: nn.Module, _inputs: Any, z: torch.Tensor) -> None:
        """Forward hook on the head Linear: make backward add d(penalty * mean(z**2))/dz."""
        if self.logit_penalty and z.requires_grad:
            extra = (2.0 * self.logit_penalty / z.numel()) * z.detach()
            z.register_hook(lambda grad: grad + extra)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        n_act = int(np.prod(self.action_space.shape))
        self.action_net = nn.Sequential(nn.Linear(self.mlp_extractor.latent_dim_pi, n_act), nn.Sigmoid())
        # the optimizer built by super() holds the replaced head's parameters: rebuild it
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def actor_parameters(self) -> list[nn.Parameter]:
        return (list(self.mlp_extractor.policy_net.parameters()) + list(self.action_net.parameters())
                + [self.log_std])


def load_actor_into(policy: CoachPolicy, actor: CoachActor) -> None:
    """Copy a CoachActor's weights into the PPO policy's actor path."""
    policy.mlp_extractor.policy_net.load_state_dict(actor.body.state_dict())
    policy.action_net[0].load_state_dict(actor.head.state_dict())


def export_actor(policy: CoachPolicy) -> CoachActor:
    """A CoachActor computing the policy's deterministic action (takes NORMALIZED input)."""
    actor = CoachActor()
    actor.body.load_state_dict(policy.mlp_extractor.policy_net.state_dict())
    actor.head.load_state_dict(policy.action_net[0].state_dict())
    return actor.eval()


class RideVecEnv(VecEnv):
    """SB3 VecEnv over numpy-batched rides on several tracks (one batch per track and rider).

    Args:
        tracks: track names/paths; ``envs_per_track`` rides on each, per rider.
        rider: rider profile name or path, or several (a batch of each on every track).
        envs_per_track: rides per track and rider.
        seed: base seed.
        max_episode_steps: truncation horizon of each ride.
    """

    def __init__(self, tracks: Sequence[str], rider: str | Sequence[str], envs_per_track: int, seed: int = 0,
                 max_episode_steps: int = 600) -> None:
        riders = [rider] if isinstance(rider, str) else list(rider)
        # seeds of the first rider's batches are those of the one-rider env (same rides as before)
        self.parts = [MotoCoachVectorEnv(envs_per_track, track=t, rider=r, seed=seed + 7919 * i + 104729 * j,
                                         random_start=True, max_episode_steps=max_episode_steps)
                      for j, r in enumerate(riders) for i, t in enumerate(tracks)]
        p0 = self.parts[0]
        super().__init__(len(self.parts) * envs_per_track, p0.single_observation_space,
                         p0.single_action_space)
        self.k = envs_per_track
        self._actions = np.zeros((self.num_envs, 3))
        self._ret = np.zeros(self.num_envs)
        self._len = np.zeros(self.num_envs, dtype=np.int64)
        # None keeps the simulator's own violation weight; a number replaces it (see safety.py)
        self.violation_weight: float | None = None
        # None keeps the simulator's cue cost W_CUE; a number replaces it (TrainPreset.cue_penalty)
        self.cue_weight: float | None = None
        self._viol_steps = 0
        self._steps = 0

    def reset(self) -> np.ndarray:
        self._ret[:] = 0
        self._len[:] = 0
        return np.concatenate([p.reset()[0] for p in self.parts])

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs, rew, term, trunc, final = [], [], [], [], []
        for i, p in enumerate(self.parts):
            acts = self._actions[i * self.k:(i + 1) * self.k]
            o, r, te, tr, info = p.step(acts)
            self._viol_steps += int(info["violation"].sum())
            self._steps += len(o)
            if self.violation_weight is not None:
                r = r + np.float32(W_VIOLATION - self.violation_weight) * info["violation"].astype(np.float32)
            if self.cue_weight is not None:
                # the simulator charges W_CUE * max(left, right) motor intensity per step
                duty = np.maximum(acts[:, 0], acts[:, 1])
                r = r + np.float32(W_CUE - self.cue_weight) * np.clip(duty, 0.0, 1.0).astype(np.float32)
            obs.append(o), rew.append(r), term.append(te), trunc.append(tr)
            final.append(info.get("final_obs", np.zeros_like(o)))
        obs_a, rew_a = np.concatenate(obs), np.concatenate(rew)
        term_a, trunc_a, final_a = np.concatenate(term), np.concatenate(trunc), np.concatenate(final)
        self._ret += rew_a
        self._len += 1
        done = term_a | trunc_a
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            infos[i] = {"terminal_observation": final_a[i],
                        "TimeLimit.truncated": bool(trunc_a[i] and not term_a[i]),
                        "episode": {"r": float(self._ret[i]), "l": int(self._len[i]), "t": 0.0}}
            self._ret[i], self._len[i] = 0.0, 0
        return obs_a, rew_a, done, infos

    def take_violation_rate(self) -> float:
        """Fraction of ride steps over the grip limit since the last call; resets the count."""
        rate = self._viol_steps / max(self._steps, 1)
        self._viol_steps = self._steps = 0
        return rate

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name, None)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [None] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
