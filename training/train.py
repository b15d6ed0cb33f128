"""Behaviour cloning from the expert coach, then PPO starting from the BC actor.

:func:`train` writes ``policy.pt`` (:func:`save_actor`) and ``policy.json`` into the run
folder, plus TensorBoard logs under ``tb/``. The exported actor computes the PPO policy's
deterministic action exactly (see :mod:`motocoach.training.ppo_policy`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from motocoach.errors import ConfigError
from motocoach.schema import load_schema
from motocoach.training import DEFAULT_REAL_DATA  # re-exported: train.DEFAULT_REAL_DATA
from motocoach.training.datasets import DATASET_IDS, TRAIN_TRACKS, load_transitions


@dataclass(frozen=True)
class TrainPreset:
    """Sizes of one training configuration."""

    bc_epochs: int
    bc_batch: int
    bc_lr: float
    ppo_steps: int              # total PPO environment steps (value warm-up included)
    value_warmup_frac: float    # first part of PPO trains only the critic (actor frozen)
    envs_per_track: int
    n_steps: int
    batch_size: int
    n_epochs: int
    learning_rate: float
    log_std_init: float
    tracks: tuple[str, ...]
    # Coefficient of mean(logit**2) (pre-sigmoid logits) added to the BC and PPO losses.
    # Off by default: it does bound the logits (1e-3 keeps them within about +-7 on the
    # dataset telemetry), but it did not lower the int8 error (docs/training.md).
    logit_penalty: float = 0.0
    # Real calibration circuits PPO also rides (file stems under the real-circuit data
    # folder's tracks/); the others stay held out for the efficacy figures.
    real_tracks: tuple[str, ...] = ()
    # None: the simulator's fixed violation weight. A number: the safety-constrained objective
    # (training/safety.py), a violation budget of this many times the uncoached rider's rate.
    violation_budget: float | None = None
    lambda_lr: float = 0.5
    # Rider profiles PPO coaches (a batch of each on every track).
    riders: tuple[str, ...] = ("amateur",)
    # PPO's entropy bonus (SB3 ent_coef); 0 keeps the policy's spread to what PPO learns.
    ent_coef: float = 0.0
    # None: the simulator's cue cost W_CUE. A number replaces it in PPO's reward (sweep tune
    # searches it; docs/scaling.md).
    cue_penalty: float | None = None


PRESETS: dict[str, TrainPreset] = {
    "test": TrainPreset(bc_epochs=4, bc_batch=256, bc_lr=3e-3, ppo_steps=4096, value_warmup_frac=0.5,
                        envs_per_track=16, n_steps=64, batch_size=512, n_epochs=2,
                        learning_rate=1e-4, log_std_init=-2.0, tracks=("kestrel",)),
    "demo": TrainPreset(bc_epochs=30, bc_batch=512, bc_lr=2e-3, ppo_steps=300_000, value_warmup_frac=0.2,
                        envs_per_track=32, n_steps=128, batch_size=2048, n_epochs=4,
                        learning_rate=1e-4, log_std_init=-2.0, tracks=TRAIN_TRACKS),
    # The committed policy: generated tracks plus two real circuits (the other two stay held
    # out), under the violation budget; chosen on validation tracks (docs/training.md).
    "default": TrainPreset(bc_epochs=60, bc_batch=512, bc_lr=2e-3, ppo_steps=2_000_000,
                           value_warmup_frac=0.1, envs_per_track=32, n_steps=256, batch_size=4096,
                           n_epochs=5, learning_rate=3e-4, log_std_init=-1.5, tracks=TRAIN_TRACKS,
                           real_tracks=("Silverstone", "Nuerburgring"), violation_budget=1.0,
                           lambda_lr=0.1),
}


def get_preset(name: "str | TrainPreset") -> TrainPreset:
    """A preset by name, or the given :class:`TrainPreset` itself (a variant, e.g. a tune trial)."""
    if isinstance(name, TrainPreset):
        return name
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def behaviour_clone(obs: np.ndarray, actions: np.ndarray, *, epochs: int, batch: int, lr: float,
                    seed: int = 0, logit_penalty: float = 0.0, log=None):
    """Fit a CoachActor to (physical obs, expert actions in [0, 1]); returns (actor, losses).

    Loss: binary cross-entropy of the sigmoid outputs against the soft labels, plus
    ``logit_penalty`` times the mean squared pre-sigmoid logit, averaged over an epoch; one
    Adam step per mini-batch. Without the penalty the many 0 labels drive the logits of
    "off" rows far negative (tens), since the sigmoid only reaches 0 at minus infinity.
    """
    import torch

    from motocoach.training.policy_net import CoachActor

    torch.manual_seed(seed)
    x = torch.as_tensor(load_schema().normalize(obs))
    y = torch.as_tensor(np.clip(actions, 0.0, 1.0), dtype=torch.float32)
    actor = CoachActor()
    opt = torch.optim.Adam(actor.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            z = actor.logits(x[idx])
            loss = torch.nn.functional.binary_cross_entropy(torch.sigmoid(z), y[idx])
            if logit_penalty:
                loss = loss + logit_penalty * z.square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
        if log:
            log(epoch, losses[-1])
    return actor.eval(), losses


def logit_range(actor, x) -> list[list[float]]:
    """Per-output [min, max] of ``actor``'s pre-sigmoid logits on normalized inputs ``x``."""
    import torch

    with torch.no_grad():
        z = actor.logits(x)
    return [[round(float(lo), 3), round(float(hi), 3)] for lo, hi in zip(z.min(0).values, z.max(0).values)]


def _freeze(params, frozen: bool) -> None:
    for p in params:
        p.requires_grad_(not frozen)


def real_track_paths(p: TrainPreset, real_data: Path | None, required: bool = True) -> list[str]:
    """CSV paths of the preset's real circuits under ``real_data``/tracks. Absent circuits are a
    clear error, or, with ``required=False``, leave the list empty (the caller says so)."""
    if not p.real_tracks:
        return []
    folder = Path(real_data or DEFAULT_REAL_DATA) / "tracks"
    missing = [t for t in p.real_tracks if not (folder / f"{t}.csv").is_file()]
    if missing and not required:
        return []
    if missing:
        raise ConfigError(f"this preset also trains on the real circuits {', '.join(p.real_tracks)}, but "
                          f"{', '.join(m + '.csv' for m in missing)} is not in {folder}; give the folder "
                          "that holds tracks/ with --real-data (or set MOTOCOACH_REAL_DATA)")
    return [str(folder / f"{t}.csv") for t in p.real_tracks]


def train(run_dir: Path, *, preset: "str | TrainPreset" = "demo", dataset_root: Path, seed: int = 0,
          progress: bool = True, real_data: Path | None = None, real_required: bool = True,
          on_rollout=None, dataset_ids: "tuple[str, ...] | list[str]" = DATASET_IDS) -> Path:
    """BC on the expert labels, then PPO from the BC actor; returns the ``policy.pt`` path.

    ``preset`` is a preset name or a :class:`TrainPreset` (``policy.json`` then names it
    "custom"). ``real_required=False`` trains without the preset's real circuits when they are
    not found (``policy.json`` then lists only the tracks PPO rode). ``on_rollout(steps, actor)``,
    if given, is called after every PPO rollout once the actor trains (``actor``: the current
    deterministic :class:`CoachActor`); it may raise to stop training. ``dataset_ids`` are the
    Minari datasets BC learns from (the teacher's distillation swaps the coached one)."""
    import torch
    from rich.progress import Progress
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from torch.utils.tensorboard import SummaryWriter

    from motocoach.training.policy_net import save_actor
    from motocoach.training.ppo_policy import CoachPolicy, RideVecEnv, export_actor, load_actor_into

    from motocoach.training.safety import ViolationBudget, uncoached_violation_rate

    p = get_preset(preset)
    preset_name = preset if isinstance(preset, str) else "custom"
    tracks = [*p.tracks, *real_track_paths(p, real_data, required=real_required)]
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # One thread: a 64x64 MLP gains nothing from more, and on busy shared cores extra
    # threads spin against other processes and slow SGD down by an order of magnitude.
    torch.set_num_threads(1)
    t0 = time.time()
    obs, acts = load_transitions(Path(dataset_root), list(dataset_ids))
    tb = SummaryWriter(str(run_dir / "tb" / "bc"))

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("BC", total=p.bc_epochs)

        def log(epoch: int, loss: float) -> None:
            tb.add_scalar("bc/loss", loss, epoch)
            bar.advance(task)

        actor, bc_losses = behaviour_clone(obs, acts, epochs=p.bc_epochs, batch=p.bc_batch,
                                           lr=p.bc_lr, seed=seed, logit_penalty=p.logit_penalty,
                                           log=log)
        tb.close()
        save_actor(actor, run_dir / "bc_policy.pt", extra={"stage": "bc"})
        t_bc = time.time() - t0

        venv = RideVecEnv(tracks, p.riders, p.envs_per_track, seed=seed)
        venv.cue_weight = p.cue_penalty
        budget = None
        if p.violation_budget is not None:
            budget = ViolationBudget(venv, uncoached_violation_rate(venv), p.violation_budget, p.lambda_lr)
        model = PPO(CoachPolicy, venv, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
                    learning_rate=p.learning_rate, gamma=0.99, gae_lambda=0.95, clip_range=0.1,
                    ent_coef=p.ent_coef, vf_coef=0.5, max_grad_norm=0.5,
                    policy_kwargs={"log_std_init": p.log_std_init, "logit_penalty": p.logit_penalty},
                    tensorboard_log=str(run_dir / "tb"), seed=seed, device="cpu", verbose=0)
        load_actor_into(model.policy, actor)
        ptask = bar.add_task("PPO", total=p.ppo_steps)

        class Bar(BaseCallback):
            def _on_step(self) -> bool:
                bar.update(ptask, completed=self.num_timesteps)
                return True

            def _on_rollout_end(self) -> None:
                if budget is not None:
                    rate, lam = budget.update()
                    self.logger.record("safety/violation_rate", rate)
                    self.logger.record("safety/lambda", lam)
                if on_rollout is not None and self.num_timesteps > warm:
                    on_rollout(int(self.num_timesteps), export_actor(model.policy))

        warm = int(p.ppo_steps * p.value_warmup_frac)
        t1 = time.time()
        _freeze(model.policy.actor_parameters(), True)      # critic catches up with BC first
        model.learn(warm, callback=Bar(), tb_log_name="ppo", reset_num_timesteps=True)
        _freeze(model.policy.actor_parameters(), False)
        model.learn(p.ppo_steps - warm, callback=Bar(), tb_log_name="ppo", reset_num_timesteps=False)
        t_ppo = time.time() - t1

    final = export_actor(model.policy)
    x = torch.as_tensor(load_schema().normalize(obs))
    meta = {
        "preset": preset_name, "preset_config": asdict(p), "seed": seed,
        "schema_hash": load_schema().hash, "datasets": list(dataset_ids),
        "dataset_root": str(dataset_root), "bc": {"loss_first": bc_losses[0], "loss_last": bc_losses[-1],
                                                  "losses": bc_losses, "samples": int(len(obs)),
                                                  "seconds": round(t_bc, 2)},
        "ppo": {"steps": int(model.num_timesteps), "value_warmup_steps": warm, "seconds": round(t_ppo, 2),
                "steps_per_s": round(model.num_timesteps / max(t_ppo, 1e-9), 1),
                "riders": list(p.riders), "tracks": [Path(t).stem if t.endswith(".csv") else t for t in tracks],
                "safety": None if budget is None else {
                    "violation_budget_rate": budget.budget, "lambda_final": budget.lam,
                    "violation_rate_last": budget.history[-1][0] if budget.history else None,
                    "rollouts": len(budget.history)},
                "log_std": [float(v) for v in model.policy.log_std.detach()]},
        "logit_range": {"bc": logit_range(actor, x), "final": logit_range(final, x),
                        "on": "dataset telemetry"},
        "total_seconds": round(time.time() - t0, 2),
    }
    path = save_actor(final, run_dir / "policy.pt", extra={"stage": "bc+ppo", "preset": preset_name})
    (run_dir / "policy.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path
