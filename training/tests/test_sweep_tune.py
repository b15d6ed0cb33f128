"""``motocoach sweep tune``: the objective, the preset file, and a tiny Ray Tune search whose best
trial is reproduced in this process from its configuration alone."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray_cluster  # noqa: E402  (before Ray is imported: loopback only, no usage statistics)

from motocoach.cli import main  # noqa: E402
from motocoach.errors import ConfigError  # noqa: E402
from motocoach.training.evaluate import CoachResult  # noqa: E402
from motocoach.training.preset_file import load_preset_file, preset_to_dict, write_preset_file  # noqa: E402
from motocoach.training.sweep_tune import (OBJECTIVE, VIOLATION_PENALTY_PTS, objective_tracks, run_trial,  # noqa: E402
                                           score, trial_seed, tune_preset, variant)
from motocoach.training.train import PRESETS  # noqa: E402

CONFIG = {"learning_rate": 3e-4, "ent_coef": 0.001, "cue_penalty": 0.05}


def _cell(coach, laps, viol):
    return CoachResult(coach=coach, track="t", rider="amateur", rides=len(laps), completed=len(laps), offtracks=0,
                       lap_time_mean_s=sum(laps) / len(laps), lap_time_std_s=0.0, violation_s_per_lap=0.0,
                       cue_duty=0.1, lap_times_s=tuple(laps), violation_s=tuple(viol))


def test_the_objective_is_the_gain_less_the_violation_penalty():
    calm = score([_cell("none", [100.0, 100.0], [1.0, 1.0]), _cell("bc+ppo", [95.0, 95.0], [1.0, 1.0])], ["amateur"])
    wild = score([_cell("none", [100.0, 100.0], [1.0, 1.0]), _cell("bc+ppo", [95.0, 95.0], [2.0, 2.0])], ["amateur"])
    assert calm["gain_pct"] == pytest.approx(5.0) and calm[OBJECTIVE] == calm["gain_pct"]
    assert wild["violations_ratio"] == pytest.approx(2.0)
    assert wild[OBJECTIVE] == pytest.approx(calm[OBJECTIVE] - VIOLATION_PENALTY_PTS)


def test_the_seed_comes_from_the_parameters_and_the_variant_sets_them():
    assert trial_seed(CONFIG) == trial_seed(dict(reversed(CONFIG.items())))
    assert trial_seed(CONFIG) != trial_seed({**CONFIG, "ent_coef": 0.002})
    p = variant(PRESETS["test"], CONFIG)
    assert (p.learning_rate, p.ent_coef, p.cue_penalty) == (3e-4, 0.001, 0.05) and p.tracks == ("kestrel",)


def test_the_objective_never_rides_a_held_out_circuit():
    assert objective_tracks(PRESETS["test"], None) == ["kestrel"]
    with pytest.raises(ConfigError, match="held-out"):
        objective_tracks(replace(PRESETS["test"], tracks=("kestrel", "falcon")), None)


def test_a_preset_file_round_trips_and_a_bad_one_is_one_clear_error(tmp_path, capsys):
    p = variant(PRESETS["test"], CONFIG)
    assert load_preset_file(write_preset_file(tmp_path / "p.json", p, note="x")) == p
    for bad, match in [({"ppo_steps": "many"}, "ppo_steps"), ({"speed": 1}, "unknown preset field"),
                       ({"tracks": "kestrel"}, "list of names"), ({"n_steps": 0}, ">= 1")]:
        data = {"preset": {**preset_to_dict(p), **bad}}
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(ConfigError, match=match):
            load_preset_file(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["train", "--preset-file", str(tmp_path / "bad.json"), "--run-dir", str(tmp_path / "r")]) == 2
    err = " ".join(capsys.readouterr().err.split())       # Rich wraps long lines
    assert "not JSON" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_sweep_tune_refuses_missing_data_in_one_line(tmp_path, capsys):
    assert main(["sweep", "tune", "no-such-preset", "--data", str(tmp_path)]) == 2
    assert "unknown training preset" in capsys.readouterr().err
    assert main(["sweep", "tune", "test", "--data", str(tmp_path / "missing")]) == 2
    assert "data generate" in capsys.readouterr().err


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from motocoach.training import datasets

    root = tmp_path_factory.mktemp("data")
    datasets.generate(root, preset="test", seed=1, progress=False)
    return root


@pytest.mark.slow
def test_tiny_search_writes_a_best_preset_that_reproduces_in_process(data_root, tmp_path):
    from motocoach.training.sweep_exec import RayExecutor

    base = PRESETS["test"]
    with ray_cluster.ray_temp_dir() as temp:
        ray_ = RayExecutor(workers=2, init_options={"_temp_dir": temp})
        try:
            result = tune_preset(base, dataset_root=data_root, out_dir=tmp_path / "tune", num_samples=2,
                                 eval_seeds=2, reports=2, search_seed=7, progress=False)
        finally:
            ray_.close()
    trials, best = result["trials"], result["best"]
    assert len(trials) == 2 and all(t["error"] is None for t in trials)
    assert len({t["seed"] for t in trials}) == 2 and len({t["weights_sha256"] for t in trials}) == 2
    finished = [t for t in trials if t["final"]]
    assert best is not None and best[OBJECTIVE] == max(t[OBJECTIVE] for t in finished)
    assert math.isfinite(best[OBJECTIVE]) and best["ppo_steps"] >= base.ppo_steps

    path = write_preset_file(tmp_path / "best_preset.json", result["preset"])
    assert load_preset_file(path) == variant(base, best["config"])

    # the same configuration, trained and scored again in this process: the same policy weights and
    # scores, bit for bit (the tiny test preset's policy rarely cues, so the weights carry the check)
    reports: list[dict] = []
    last = run_trial(best["config"], base=base, dataset_root=data_root, trials_dir=tmp_path / "again",
                     eval_seeds=2, reports=2, report=reports.append)
    assert len(reports) == best["iterations"] == 2
    keys = (OBJECTIVE, "gain_pct", "violations_ratio", "cue_duty", "ppo_steps", "weights_sha256", "seed")
    assert {k: last[k] for k in keys} == {k: best[k] for k in keys}


def test_the_objective_of_a_policy_that_cues_is_not_a_tie(oval_track):
    """The committed policy cues, so its score moves off the uncoached tie the test preset's tiny policy scores."""
    from motocoach.training.evaluate import evaluate_coach

    policy = Path(__file__).resolve().parents[1] / "default_policy" / "policy.pt"
    rides = [evaluate_coach(kind, track=oval_track, rider="amateur", seeds=4, seed=10_000, policy=pol)
             for kind, pol in (("none", None), ("bc+ppo", policy))]
    s = score(rides, ["amateur"])
    assert s["cue_duty"] > 0 and s["paired_rides"] > 0 and s[OBJECTIVE] != 0.0
