"""The teacher's expert data, training, resume after a kill, and the ``teacher`` verbs.

Everything runs on the tiny configuration (:data:`~motocoach.training.teacher.fit.TINY_EXPERT`:
two short generated circuits, one vehicle); the tiny teacher and its expert set are made once per test run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from motocoach.errors import ConfigError
from motocoach.training.teacher.expert_data import (ExpertSet, Ride, WindowDataset, build_expert_set, keep_fastest,
                                                    expert_fingerprint, split_tracks)
from motocoach.training.teacher.fit import (CHECKPOINT, TINY_EXPERT, TINY_FIT, onset_s, tiny_teacher, train_teacher,
                                            validation_loss)
from motocoach.training.teacher.model import load_teacher


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    return tiny_teacher(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="session")
def expert_file(trained) -> Path:
    """The expert set the tiny teacher rode (train_teacher keeps it beside teacher.pt)."""
    return trained.parent / "expert.npz"


@pytest.fixture(scope="session")
def expert_set(expert_file) -> ExpertSet:
    return ExpertSet.load(expert_file)


def test_the_tiny_teachers_expert_set_is_the_tiny_configuration(expert_set):
    assert expert_set.fingerprint == expert_fingerprint(TINY_EXPERT)
    assert {r.track for r in expert_set.rides} == set(TINY_EXPERT.tracks)


def test_split_is_by_track_deterministic_and_recorded(expert_set, trained):
    train, val = set(expert_set.split["train"]), set(expert_set.split["val"])
    assert train and val and not train & val
    assert {r.track for r in expert_set.rides} == train | val
    assert {r.track for r in expert_set.rides_of("val")} == val
    names = ["gen-7", "gen-3", "gen-11", "gen-5", "gen-2", "gen-9"]
    assert split_tracks(names, 0.3) == split_tracks(list(reversed(names)), 0.3)
    _, extra = load_teacher(trained)
    assert extra["split"] == expert_set.split


def test_built_in_and_held_out_circuits_are_refused():
    from motocoach.training.teacher.expert_data import resolve_track

    for name in ("kestrel", "gen-11", "BrandsHatch.csv"):
        with pytest.raises(ConfigError):
            resolve_track(name)


def test_expert_laps_are_the_fastest_ones():
    rides = [Ride("t", "superbike", *(np.zeros((30, k)) if k else np.zeros(30) for k in (8, 0, 0, 0)),
                  np.zeros((30, 25)), np.zeros(30, bool)) for _ in range(2)]
    laps = [(0, 0, 10, 60.0), (0, 10, 20, 58.0), (1, 0, 10, 61.0), (1, 10, 20, 57.5), (1, 20, 30, 59.0)]
    best = keep_fastest(rides, laps, 0.4)
    assert [lap[3] for lap in best] == [57.5, 58.0]
    assert rides[0].keep[10:20].all() and not rides[0].keep[:10].any()
    assert rides[1].keep[10:20].all() and not rides[1].keep[:10].any() and not rides[1].keep[20:].any()


def test_ridden_expert_set_keeps_the_fastest_fraction(expert_set):
    st = expert_set.stats
    assert st["laps_kept"] == sum(t["kept"] for t in st["per_track"].values()) > 0
    assert st["laps_kept"] < st["laps_ridden"]
    for t in st["per_track"].values():
        assert t["best_s"] <= t["kept_slowest_s"] <= t["median_s"]


def test_windows_match_the_ride_arrays(expert_set):
    from motocoach.schema import load_schema
    from motocoach.training.teacher.features import HISTORY_STEPS, TARGET_SCALE, history, target_columns

    ride = expert_set.rides[0]
    ds = WindowDataset([ride], stride=1)
    k = len(ds) // 2
    step = int(np.flatnonzero(ride.keep)[k])
    hist, ctx, y, mask, _, _ = ds[k]
    assert np.allclose(hist, history(ride.features)[step], atol=1e-6)
    assert np.allclose(ctx, ride.context[step])
    assert np.allclose(y[0] * TARGET_SCALE, ride.features[step + 1, target_columns()], atol=1e-5)
    assert hist.shape == (HISTORY_STEPS, load_schema().n_features) and mask.all()


@pytest.mark.slow
def test_a_logs_valid_laps_join_the_expert_set(tmp_path):
    from motocoach.training.ridelogs.ingest import export_rides
    from motocoach.training.teacher.expert_data import ExpertConfig

    log = [p for p in export_rides(tmp_path, track="kestrel", rider="pro", laps=2.3, rates=[20],
                                   formats=["racechrono"]) if p.name != "truth.csv"][0]
    es = build_expert_set(ExpertConfig(tracks=(), calibration=False), logs=[log], log_track="kestrel", log_vehicle="superbike")
    (ride,) = es.rides
    assert ride.source == "log" and ride.track == "kestrel" and ride.vehicle == "superbike"
    assert es.stats["log_laps_added"] >= 1 and es.split["train"] == ["kestrel"]
    assert 0.3 < ride.keep.mean() < 1.0          # the valid laps, not the out- and in-lap


def test_onset_is_interpolated_and_nan_when_never_reached():
    t = onset_s(np.array([0.0, 0.0]), np.array([[0.0, 0.2], [0.0, 0.05]]))
    assert t[0] == pytest.approx(0.075) and np.isnan(t[1])


def test_training_lowers_the_validation_loss(trained, expert_set):
    from motocoach.training.teacher.model import TEACHER_PRESETS, TeacherNet

    _, extra = load_teacher(trained)
    val = WindowDataset(expert_set.rides_of("val"), TINY_EXPERT.stride)
    idx = np.arange(len(val))
    untrained = validation_loss(TeacherNet(TEACHER_PRESETS["small"]), val, idx, TINY_FIT)[0]
    assert extra["best_val_loss"] < 0.8 * untrained
    assert extra["epochs_run"] == 3 and extra["metrics"]["val_windows"] > 0
    assert (trained.parent / "tb").is_dir() and any((trained.parent / "tb").iterdir())


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint(expert_file, tmp_path):
    out = tmp_path / "run"
    code = ("import sys; from pathlib import Path\n"
            "from motocoach.training.teacher.expert_data import ExpertSet\n"
            "from motocoach.training.teacher.fit import TINY_FIT, train_teacher\n"
            "train_teacher(Path(sys.argv[1]), data=ExpertSet.load(Path(sys.argv[2])), epochs=5, fit=TINY_FIT, "
            "progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out), str(expert_file)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "teacher.pt").exists()
    import torch

    saved = json.loads(torch.load(out / CHECKPOINT, weights_only=True)["state"])
    assert 1 <= saved["epoch"] < 5
    path = train_teacher(out, data=ExpertSet.load(expert_file), epochs=5, fit=TINY_FIT, progress=False)
    _, extra = load_teacher(path)
    assert extra["resumed_at"] == [saved["epoch"]]
    assert [h["epoch"] for h in extra["history"]] == list(range(1, 6))
    assert extra["history"][:saved["epoch"]] == saved["history"]      # the killed run's epochs are kept as they were
    assert extra["epochs_run"] == 5


def test_a_corrupt_or_mismatched_checkpoint_is_a_clear_error(trained, expert_set, tmp_path):
    with pytest.raises(ConfigError, match="different preset"):
        train_teacher(trained.parent, preset="reference", data=expert_set, epochs=3, fit=TINY_FIT, progress=False)
    with pytest.raises(ConfigError, match="different fit settings"):
        train_teacher(trained.parent, data=expert_set, epochs=3, seed=5, fit=TINY_FIT, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable training checkpoint"):
        train_teacher(bad, data=expert_set, epochs=1, fit=TINY_FIT, progress=False)


def test_evaluate_verb_prints_and_writes_evaluation_json(trained, capsys):
    from motocoach.cli import main

    assert main(["teacher", "evaluate", "--teacher", str(trained)]) == 0
    doc = json.loads((trained.parent / "evaluation.json").read_text())
    assert doc["where"] == "host" and doc["metrics"]["val_windows"] > 0
    assert 0.0 <= doc["metrics"]["val_brake_mae"] <= 1.0
    assert "brake onset error" in capsys.readouterr().out


def test_train_verb_trains_and_reports(expert_set, tmp_path, monkeypatch, capsys):
    """The verb's own path end to end, on the tiny expert set instead of minutes of riding."""
    from motocoach.cli import main
    from motocoach.training.teacher import fit

    real = fit.train_teacher
    monkeypatch.setattr(fit, "train_teacher", lambda out, **kw: real(out, **{**kw, "data": expert_set,
                                                                              "fit": TINY_FIT}))
    out = tmp_path / "t"
    assert main(["teacher", "train", "--out", str(out), "--epochs", "1", "--seed", "2"]) == 0
    _, extra = load_teacher(out / "teacher.pt")
    assert extra["epochs_run"] == 1 and extra["seed"] == 2
    assert "split by track" in capsys.readouterr().out


def test_verbs_give_one_line_errors(tmp_path, capsys):
    from motocoach.cli import main

    assert main(["teacher", "evaluate", "--teacher", str(tmp_path / "none.pt")]) == 2
    assert main(["teacher", "train", "--preset", "huge", "--out", str(tmp_path)]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a\nride,log\n")
    assert main(["teacher", "train", "--logs", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no teacher at" in err and "unknown teacher preset" in err and "Traceback" not in err


@pytest.mark.parametrize("verb", ["train", "evaluate"])
def test_help_shows_an_example(verb):
    from typer.testing import CliRunner

    from motocoach.cli import build_app

    result = CliRunner().invoke(build_app(), ["teacher", verb, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "Example: motocoach teacher " + verb in result.output


def test_evaluate_rides_the_validation_circuits_again_when_the_expert_set_is_gone(trained, tmp_path):
    import shutil

    from motocoach.training.teacher.fit import evaluate_teacher

    alone = tmp_path / "teacher.pt"
    shutil.copy(trained, alone)
    again = evaluate_teacher(alone, progress=False)
    cached = evaluate_teacher(trained, progress=False)
    assert again == pytest.approx(cached, rel=1e-5, nan_ok=True)      # same seeds: the same rides
