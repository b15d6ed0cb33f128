"""BC takes real gradient steps; the PPO policy's deterministic action IS the CoachActor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motocoach.schema import load_schema
from motocoach.training import datasets as D
from motocoach.training.policy_net import load_actor
from motocoach.training.train import behaviour_clone, train


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    D.generate(root, preset="test", seed=1, progress=False)
    return root


def test_bc_loss_falls_and_fits_the_expert(data_root):
    obs, acts = D.load_transitions(data_root, list(D.DATASET_IDS))
    actor, losses = behaviour_clone(obs, acts, epochs=15, batch=256, lr=3e-3, seed=0)
    assert losses[-1] < 0.8 * losses[0]
    with torch.no_grad():
        pred = actor(torch.as_tensor(load_schema().normalize(obs))).numpy()
    on_true = acts[:, :2].max(1) >= 0.3
    on_pred = pred[:, :2].max(1) >= 0.3
    assert (on_true == on_pred).mean() > 0.7


def test_ppo_policy_mean_equals_exported_actor():
    from stable_baselines3 import PPO

    from motocoach.training.policy_net import CoachActor
    from motocoach.training.ppo_policy import CoachPolicy, RideVecEnv, export_actor, load_actor_into

    venv = RideVecEnv(["kestrel"], "amateur", 4, seed=0)
    model = PPO(CoachPolicy, venv, n_steps=16, batch_size=32, n_epochs=1, device="cpu",
                policy_kwargs={"logit_penalty": 1e-3})   # the penalty changes gradients only
    bc = CoachActor()
    torch.manual_seed(3)
    for p in bc.parameters():
        p.data.normal_(0, 0.3)
    load_actor_into(model.policy, bc)
    obs = np.random.default_rng(0).uniform(load_schema().feature_low, load_schema().feature_high,
                                           (256, load_schema().n_features)).astype(np.float32)
    x = torch.as_tensor(load_schema().normalize(obs))
    with torch.no_grad():
        assert torch.allclose(export_actor(model.policy)(x), bc(x), atol=1e-6)
    model.learn(256)                                      # weights move ...
    mean, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        exported = export_actor(model.policy)(x).numpy()
    assert np.max(np.abs(mean - exported)) < 1e-6         # ... and stay the same function
    with torch.no_grad():
        assert not torch.allclose(export_actor(model.policy)(x), bc(x), atol=1e-6)


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    return run, train(run, preset="test", dataset_root=data_root, seed=0, progress=False)


def test_train_test_preset_writes_policy_and_metadata(trained):
    run, path = trained
    actor = load_actor(path)
    meta = json.loads((run / "policy.json").read_text())
    assert meta["schema_hash"] == load_schema().hash
    assert meta["bc"]["loss_last"] < meta["bc"]["loss_first"]
    assert meta["ppo"]["steps"] >= 4096
    assert any((run / "tb").rglob("events.out.tfevents*"))
    out = actor(torch.zeros(1, load_schema().n_features))
    assert out.shape == (1, load_schema().n_actions)


def _max_abs_logit(actor, obs) -> float:
    with torch.no_grad():
        return float(actor.logits(torch.as_tensor(load_schema().normalize(obs))).abs().max())


def test_bc_logit_penalty_pulls_the_logits_in(data_root):
    obs, acts = D.load_transitions(data_root, list(D.DATASET_IDS))
    # long enough on the small test data that unpenalized logits run out to tens
    kw = dict(epochs=80, batch=256, lr=3e-3, seed=0)
    free, _ = behaviour_clone(obs, acts, **kw)
    bounded, _ = behaviour_clone(obs, acts, logit_penalty=1e-3, **kw)
    assert _max_abs_logit(free, obs) > 12.0                                 # the 0 labels push logits out ...
    assert _max_abs_logit(bounded, obs) < 0.6 * _max_abs_logit(free, obs)   # ... the penalty pulls them in


def test_ppo_logit_penalty_adds_its_gradient():
    from stable_baselines3 import PPO

    from motocoach.training.ppo_policy import CoachPolicy, RideVecEnv

    venv = RideVecEnv(["kestrel"], "amateur", 2, seed=0)
    obs = torch.as_tensor(np.random.default_rng(1).uniform(
        load_schema().feature_low, load_schema().feature_high, (64, load_schema().n_features)),
        dtype=torch.float32)
    grads = {}
    for lam in (0.0, 0.5):
        model = PPO(CoachPolicy, venv, n_steps=16, batch_size=32, device="cpu", seed=0,
                    policy_kwargs={"logit_penalty": lam})
        pol = model.policy
        acts = torch.full((64, 3), 0.5)
        _, logp, _ = pol.evaluate_actions(obs, acts)
        pol.zero_grad()
        (-logp.mean()).backward()
        grads[lam] = pol.action_net[0].bias.grad.clone()
        with torch.no_grad():
            z = pol.action_net[0](pol.mlp_extractor.forward_actor(pol.extract_features(obs)))
    # the extra gradient on the head bias is d(lam * mean(z**2))/db = 2 * lam * mean over rows of z / 3
    expected = 2 * 0.5 * z.sum(0) / z.numel()
    assert torch.allclose(grads[0.5] - grads[0.0], expected, atol=1e-5)


def test_policy_json_records_the_logit_range(data_root, trained):
    run, path = trained
    obs, _ = D.load_transitions(data_root, list(D.DATASET_IDS))
    with torch.no_grad():
        z = load_actor(path).logits(torch.as_tensor(load_schema().normalize(obs))).numpy()
    meta = json.loads((run / "policy.json").read_text())
    rec = np.array(meta["logit_range"]["final"])
    assert np.allclose(rec[:, 0], z.min(0), atol=1e-3) and np.allclose(rec[:, 1], z.max(0), atol=1e-3)


def test_unknown_preset_is_a_clear_error(data_root, tmp_path):
    from motocoach.errors import ConfigError

    with pytest.raises(ConfigError, match="demo"):
        train(tmp_path, preset="huge", dataset_root=data_root)


def test_committed_policy_was_trained_with_the_current_default_preset():
    """A changed default preset means the committed policy is stale: retrain with `make models`."""
    from dataclasses import asdict
    from importlib import resources

    from motocoach.training.train import PRESETS

    meta = json.loads(resources.files("motocoach.training").joinpath("default_policy", "policy.json").read_text())
    want = json.loads(json.dumps(asdict(PRESETS["default"])))     # tuples as lists, like the file
    assert meta["preset"] == "default" and meta["preset_config"] == want
    assert meta["schema_hash"] == load_schema().hash


def test_real_circuits_missing_is_an_error_or_stated(tmp_path):
    from dataclasses import replace

    from motocoach.errors import ConfigError
    from motocoach.training.train import PRESETS, real_track_paths

    p = replace(PRESETS["test"], real_tracks=("Silverstone",))
    with pytest.raises(ConfigError, match="--real-data"):
        real_track_paths(p, tmp_path)
    assert real_track_paths(p, tmp_path, required=False) == []
    (tmp_path / "tracks").mkdir()
    (tmp_path / "tracks" / "Silverstone.csv").write_text("x_m,y_m,w_tr_right_m,w_tr_left_m\n")
    assert real_track_paths(p, tmp_path) == [str(tmp_path / "tracks" / "Silverstone.csv")]
