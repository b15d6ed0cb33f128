"""Real Minari datasets: written, loadable with minari.load_dataset, telemetry extracted."""

from __future__ import annotations

import numpy as np
import pytest

from motocoach.errors import DatasetError
from motocoach.schema import load_schema
from motocoach.training import datasets as D
from motocoach.training.rides import simulate_telemetry


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("minari")
    ids = D.generate(r, preset="test", seed=0, progress=False)
    assert ids == list(D.DATASET_IDS)
    return r


def test_minari_can_load_them(root):
    import minari

    with D.minari_root(root):
        ds = minari.load_dataset("motocoach/amateur-coached-v0")
    assert ds.total_episodes == D.PRESETS["test"].rides_per_track
    ep = next(ds.iterate_episodes())
    assert ep.observations.shape[1] == load_schema().n_features
    assert len(ep.observations) == len(ep.actions) + 1
    assert {"throttle", "brake", "lateral_correction"} <= set(ep.infos)
    assert (ep.actions[:, :2] >= 0.3).any()      # the coach really cued


def test_pro_dataset_has_no_cues(root):
    ds = D.load_dataset(root, "motocoach/pro-v0")
    assert all(np.all(ep.actions == 0) for ep in ds.iterate_episodes())


def test_load_telemetry(root):
    x = D.load_telemetry(root)
    s = load_schema()
    assert x.dtype == np.float32 and x.shape[1] == s.n_features and len(x) > 500
    assert np.all(x >= s.feature_low) and np.all(x <= s.feature_high)


def test_generation_is_deterministic(root, tmp_path):
    D.generate(tmp_path, preset="test", seed=0, progress=False)
    assert np.array_equal(D.load_telemetry(root), D.load_telemetry(tmp_path))


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="data generate"):
        D.load_telemetry(tmp_path)
    with pytest.raises(DatasetError):
        D.generate(tmp_path, preset="huge")


def test_simulated_ride_telemetry():
    a = simulate_telemetry("merlin", "novice", seconds=30, seed=4)
    assert a.shape == (600, load_schema().n_features)
    assert np.array_equal(a, simulate_telemetry("merlin", "novice", seconds=30, seed=4))
    assert a[:, 0].std() > 1.0       # speed varies over a lap
