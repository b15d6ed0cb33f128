"""``motocoach sweep tune``: Ray Tune with ASHA over PPO's learning rate, entropy coefficient and
cue penalty, scored on the preset's own training circuits.

A trial trains a variant of the preset (BC then PPO, :func:`~motocoach.training.train.train`)
with a seed derived from its three parameters, and reports the objective a few times while PPO
trains (``on_rollout``) and once on the final policy; ASHA stops the weak trials at its rungs.

The objective (higher is better), over ``eval_seeds`` rides per training circuit and rider, the
same rides for every trial and every report:

    amateur_laptime_gain_pct - VIOLATION_PENALTY_PTS * max(0, violations_ratio - 1)

where both figures are :func:`~motocoach.training.efficacy.efficacy_metrics` of the trained
policy (coach ``bc+ppo``) against no coach, on the preset's tracks and real tracks, for the
preset's riders. A trial with no paired finished lap scores :data:`NO_LAP_SCORE`. The held-out
evaluation circuits are never ridden here (a preset that lists one is refused).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

from motocoach.errors import ConfigError
from motocoach.training.datasets import HELDOUT_TRACKS
from motocoach.training.train import TrainPreset, real_track_paths

#: name -> (low, high, sampling); the search space of every tune run.
SEARCH_SPACE = {"learning_rate": (1e-5, 1e-3, "log"), "ent_coef": (0.0, 0.01, "uniform"),
                "cue_penalty": (0.0, 0.1, "uniform")}
VIOLATION_PENALTY_PTS = 10.0    # objective points lost per unit of violations ratio over 1 (more than uncoached)
NO_LAP_SCORE = -100.0
EVAL_SEED = 10_000              # base seed of the objective's rides: apart from the training rides' seeds
OBJECTIVE = "objective"


def trial_seed(config: dict) -> int:
    """The training seed of a trial: a hash of its searched parameters (never a worker's choice)."""
    text = json.dumps({k: float(config[k]) for k in SEARCH_SPACE}, sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def variant(base: TrainPreset, config: dict) -> TrainPreset:
    """``base`` with the trial's learning rate, entropy coefficient and cue penalty."""
    return replace(base, **{k: float(config[k]) for k in SEARCH_SPACE})


def objective_tracks(p: TrainPreset, real_data: Path | None) -> list[str]:
    """The circuits the objective rides: the preset's own training circuits, never a held-out one."""
    held = sorted(set(p.tracks) & set(HELDOUT_TRACKS))
    if held:
        raise ConfigError(f"the preset trains on the held-out evaluation circuit(s) {', '.join(held)}; "
                          "tune scores on training circuits only, so take them out of its tracks")
    return [*p.tracks, *real_track_paths(p, real_data)]


def score(results, riders) -> dict:
    """The objective and the efficacy figures it comes from."""
    from motocoach.training.efficacy import efficacy_metrics

    m = efficacy_metrics(results, amateurs=list(riders))
    gain, ratio = m["amateur_laptime_gain_pct"], m["violations_ratio"]
    value = NO_LAP_SCORE if gain is None else gain - VIOLATION_PENALTY_PTS * max(0.0, (ratio or 0.0) - 1.0)
    return {OBJECTIVE: float(value), "gain_pct": gain, "violations_ratio": ratio, "cue_duty": m["cue_duty"],
            "paired_rides": m["paired_rides"]}


def weights_sha256(actor) -> str:
    """sha256 of an actor's weights (float32 bytes, in state-dict order): names a trained policy exactly."""
    h = hashlib.sha256()
    for tensor in actor.state_dict().values():
        h.update(tensor.detach().cpu().contiguous().numpy().astype("<f4").tobytes())
    return h.hexdigest()


def run_trial(config: dict, *, base: TrainPreset, dataset_root: Path, trials_dir: Path, eval_seeds: int,
              report: Callable[[dict], None], real_data: Path | None = None, reports: int = 3) -> dict:
    """Train one configuration and ``report`` the objective along the way; returns the last report.

    The same ``config`` gives the same reports wherever it runs (the tune test checks it)."""
    from motocoach.training.evaluate import evaluate_coach
    from motocoach.training.policy_net import load_actor, save_actor
    from motocoach.training.train import train

    p = variant(base, config)
    seed = trial_seed(config)
    tracks = objective_tracks(p, real_data)
    run_dir = Path(trials_dir) / f"seed-{seed}"
    rides = [(t, r) for t in tracks for r in p.riders]
    baseline = [evaluate_coach("none", track=t, rider=r, seeds=eval_seeds, seed=EVAL_SEED) for t, r in rides]
    # intermediate scores when PPO passes these step counts (actor training), then the final policy
    warm = int(p.ppo_steps * p.value_warmup_frac)
    marks = [warm + (p.ppo_steps - warm) * i / reports for i in range(1, reports)]
    state = {"last": {}}

    def measure(policy: Path, steps: int, final: bool, actor) -> None:
        coached = [evaluate_coach("bc+ppo", track=t, rider=r, seeds=eval_seeds, seed=EVAL_SEED, policy=policy)
                   for t, r in rides]
        state["last"] = {**score(baseline + coached, p.riders), "ppo_steps": steps, "final": final,
                         "seed": seed, "weights_sha256": weights_sha256(actor)}
        report(state["last"])

    def on_rollout(steps: int, actor) -> None:
        if marks and steps >= marks[0]:
            while marks and steps >= marks[0]:
                marks.pop(0)
            measure(save_actor(actor, run_dir / "probe.pt"), steps, final=False, actor=actor)

    policy = train(run_dir, preset=p, dataset_root=dataset_root, seed=seed, progress=False,
                   real_data=real_data, on_rollout=on_rollout)
    measure(policy, json.loads(policy.with_name("policy.json").read_text())["ppo"]["steps"], final=True,
            actor=load_actor(policy))
    return state["last"]


def search_space():
    from ray import tune

    kinds = {"log": tune.loguniform, "uniform": tune.uniform}
    return {k: kinds[how](lo, hi) for k, (lo, hi, how) in SEARCH_SPACE.items()}


def _trainable(config, *, base, dataset_root, trials_dir, eval_seeds, real_data, reports):
    from ray import tune

    run_trial(config, base=base, dataset_root=dataset_root, trials_dir=trials_dir, eval_seeds=eval_seeds,
              real_data=real_data, reports=reports, report=tune.report)


def tune_preset(base: TrainPreset, *, dataset_root: Path, out_dir: Path, num_samples: int, eval_seeds: int,
                search_seed: int = 0, reports: int = 3, real_data: Path | None = None,
                progress: bool = True) -> dict:
    """Run the search on the Ray this process is connected to; returns the best trial and all trials.

    The best trial is the one with the highest objective among those that trained to the end
    (ASHA stops the others early, so their scores are of less-trained policies)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from motocoach.training.sweep_tune_progress import TuneBar

    objective_tracks(base, real_data)      # refused here, not in every trial
    # Tune's own console report and INFO logs would interleave with our bar and table
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    out_dir = Path(out_dir).resolve()
    trainable = tune.with_parameters(_trainable, base=base, dataset_root=Path(dataset_root).resolve(),
                                     trials_dir=out_dir / "trials", eval_seeds=eval_seeds,
                                     real_data=real_data, reports=reports)
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=reports, grace_period=1, reduction_factor=2)
    with TuneBar(num_samples, disable=not progress) as bar:
        tuner = tune.Tuner(
            trainable, param_space=search_space(),
            tune_config=tune.TuneConfig(metric=OBJECTIVE, mode="max", num_samples=num_samples, scheduler=scheduler,
                                        search_alg=BasicVariantGenerator(random_state=search_seed)),
            run_config=tune.RunConfig(name="tune", storage_path=str(out_dir / "ray"), verbose=0,
                                      callbacks=[bar]))
        grid = tuner.fit()
    trials = []
    for r in grid:
        m = r.metrics or {}
        trials.append({"config": {k: r.config[k] for k in SEARCH_SPACE}, "seed": trial_seed(r.config),
                       "error": None if r.error is None else str(r.error).splitlines()[0][:300],
                       "final": bool(m.get("final")), "iterations": m.get("training_iteration"),
                       **{k: m.get(k) for k in (OBJECTIVE, "gain_pct", "violations_ratio", "cue_duty", "ppo_steps",
                                                "weights_sha256")}})
    done = [t for t in trials if t["final"] and t["error"] is None]
    best = max(done, key=lambda t: t[OBJECTIVE]) if done else None
    return {"best": best, "trials": trials, "preset": variant(base, best["config"]) if best else None}


def about(preset_name: str, result: dict, *, eval_seeds: int, num_samples: int, search_seed: int) -> dict:
    """Provenance written beside the best preset in its file."""
    return {"tuned_from": preset_name, "objective": f"amateur_laptime_gain_pct - {VIOLATION_PENALTY_PTS} * "
            "max(0, violations_ratio - 1), bc+ppo vs none on the preset's training circuits and riders",
            "eval_seeds": eval_seeds, "eval_seed": EVAL_SEED, "num_samples": num_samples,
            "search_seed": search_seed, "search_space": {k: list(v) for k, v in SEARCH_SPACE.items()},
            "best": result["best"], "trials": result["trials"]}
