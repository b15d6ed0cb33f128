"""Improvement sections (``motocoach teacher analyse``): the arithmetic on laps whose answer is known
by construction, the report, the verb and its errors, and an exported log end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer

from motocoach.schema import load_schema
from motocoach.training.teacher.analyse import (TOP_N, analyse_lap, analyse_sim_ride, compare_segment,
                                                corner_rank_agreement)
from motocoach.training.teacher.analyse_cli import register
from motocoach.training.teacher.analyse_report import write_analysis
from motocoach.training.teacher.features import TARGET_SCALE, future_targets, sector_time
from motocoach.training.teacher.predict import Prediction, Teacher
from motocoach.training.tracks import get_track
from motocoach.training.vehicles import get_vehicle

NAMES = load_schema().feature_names


class OracleTeacher:
    """Predicts exactly what the ride itself did next (the future it was built from), minus a constructed
    ``loss(s)`` seconds on the sector time: an analysis of it must find the constructed answer."""

    def __init__(self, progress, t, loss=None):
        self.progress, self.t, self.loss = progress, t, loss or (lambda s: np.zeros_like(s))

    def predict_ride(self, features, s, track, vehicle):
        future, _ = future_targets(features)
        sector, _ = sector_time(self.progress, self.t)
        return Prediction((future * TARGET_SCALE).astype(np.float32), sector - self.loss(np.asarray(s)))


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """An untrained teacher saved as training saves one: enough where the verb must fail before any
    prediction matters (bad input, missing laps)."""
    import torch

    from motocoach.training.teacher.model import TEACHER_PRESETS, TeacherNet, save_teacher

    torch.manual_seed(0)
    return save_teacher(TeacherNet(TEACHER_PRESETS["small"]), tmp_path_factory.mktemp("teacher") / "teacher.pt",
                        {"train_tracks": ["kestrel"]})


@pytest.fixture(scope="session")
def trained_teacher(tmp_path_factory):
    """The tiny trained teacher (poor predictions, but a real training run) for the end-to-end paths."""
    from motocoach.training.teacher.fit import tiny_teacher

    return tiny_teacher(tmp_path_factory.mktemp("tiny-teacher"))


@pytest.fixture(scope="module")
def pro_ride(oval_track):
    from motocoach.training.ridelogs.simulate import simulate_ride

    return simulate_ride(oval_track, "pro", laps=2.4, seed=3)


def test_a_pro_lap_against_its_own_future_has_nothing_to_gain(pro_ride):
    an = analyse_sim_ride(OracleTeacher(pro_ride.progress, pro_ride.t), pro_ride, get_vehicle("superbike"))
    assert len(an.corners) == len(pro_ride.track.apex_s) == 2
    for c in an.corners:
        assert abs(c.gain_s) < 1e-3
        by = {i.kind: i for i in c.items}
        assert by["braking point"].advice == "your braking point matches"
        assert by["throttle pick-up"].advice == "your throttle pick-up matches"
        assert abs(by["corner speed"].rider - by["corner speed"].teacher) < 0.5      # m/s
        assert all(abs(i.explains_s) < 0.05 for i in c.items if i.kind != "line")


def _segment(brake_from, peak, v_apex, pickup, exit_v):
    x = np.arange(-50.0, 151.0)
    brake = np.where((x >= brake_from) & (x < 95), peak, 0.0)
    speed = np.interp(x, [-50, brake_from, 100, pickup, 150], [40, 40, v_apex, v_apex, exit_v])
    throttle = np.where(x >= pickup, 1.0, 0.0)
    return x, {"speed": speed, "throttle": throttle, "brake": brake}


def test_advice_follows_the_constructed_traces_both_ways():
    x, timid = _segment(brake_from=20, peak=0.5, v_apex=18, pickup=130, exit_v=25)
    _, expert = _segment(brake_from=45, peak=0.9, v_apex=21, pickup=110, exit_v=30)
    items = {i.kind: i for i in compare_segment(x, timid, expert, 100.0, 2.0)}
    assert items["braking point"].advice == "brake 25 m later"
    assert items["braking force"].advice.startswith("brake harder: peak 90 %")
    assert items["corner speed"].advice == "carry 11 km/h more at the apex"
    assert items["throttle pick-up"].advice == "open the throttle 20 m earlier after the apex"
    assert items["line"].advice.endswith("2.0 m right of it")
    assert all(i.explains_s > 0 for i in items.values())
    back = {i.kind: i for i in compare_segment(x, expert, timid, 100.0, -1.0)}
    assert back["braking point"].advice == "brake 25 m earlier"
    assert back["braking force"].advice.startswith("brake more gently")
    assert back["corner speed"].advice == "carry 11 km/h less at the apex"
    assert back["throttle pick-up"].advice == "open the throttle 20 m later after the apex"
    assert back["line"].advice.endswith("1.0 m left of it")


def test_items_are_ranked_by_the_time_they_explain():
    x, rider = _segment(brake_from=30, peak=0.8, v_apex=20, pickup=140, exit_v=20)
    _, expert = _segment(brake_from=30, peak=0.8, v_apex=20, pickup=112, exit_v=32)   # only the exit differs
    items = compare_segment(x, rider, expert, 100.0, 0.0)
    assert items[0].kind == "throttle pick-up" and items[0].explains_s > 0.2
    assert [i.explains_s for i in items] == sorted((i.explains_s for i in items), reverse=True)


@pytest.fixture(scope="module")
def constructed():
    """A steady 25 m/s ride over 1.5 laps of kestrel, and a teacher 0.1 .. 0.9 s faster at chosen corners."""
    track = get_track("kestrel")
    t = np.arange(0.0, 1.5 * track.length_m / 25.0, 0.05)
    progress = 25.0 * t
    feats = np.zeros((len(t), len(NAMES)), np.float32)
    feats[:, NAMES.index("speed")] = 25.0
    losses = {1: 0.9, 4: 0.5, 2: 0.3, 0: 0.1}
    entry = {k: (track.apex_s[k] - 100.0) % track.length_m for k in losses}

    def loss(s):
        out = np.zeros(len(s))
        for k, v in losses.items():
            out[np.abs((s - entry[k] + track.length_m / 2) % track.length_m - track.length_m / 2) < 3.0] = v
        return out

    s = progress % track.length_m
    an = analyse_lap(OracleTeacher(progress, t, loss), feats, s, progress, t, track, get_vehicle("roadsport"),
                     lap=(0.0, track.length_m / 25.0))
    return track, an


def test_the_top_three_are_the_corners_with_the_largest_constructed_loss(constructed):
    track, an = constructed
    assert len(an.corners) == len(track.apex_s) >= 5
    assert [c.corner for c in an.top] == [1, 4, 2]
    assert [round(c.gain_s, 3) for c in an.top] == [0.9, 0.5, 0.3]


def test_report_files_name_the_three_corners(constructed, tmp_path):
    track, an = constructed
    j, h = write_analysis(tmp_path, an, track, {"source": "constructed"})
    doc = json.loads(j.read_text())
    assert [c["corner"] for c in doc["top"]] == [1, 4, 2] and len(doc["top"]) == TOP_N
    assert all(len(c["items"]) == 5 for c in doc["top"])
    page = h.read_text()
    assert page.count("data:image/png;base64,") == 2
    for c in an.top:
        assert f"corner {c.corner + 1} (apex {c.apex_s:.0f} m)" in page


@pytest.fixture
def cli(monkeypatch):
    """The real ``motocoach`` entry point (its error handling) with the teacher group holding our verb."""
    import motocoach.cli as mc

    app = typer.Typer(pretty_exceptions_enable=False)
    teacher_app = typer.Typer(no_args_is_help=True)
    register(teacher_app)
    app.add_typer(teacher_app, name="teacher")
    monkeypatch.setattr(mc, "build_app", lambda: app)
    return mc.main


def test_help_has_an_example(cli, capsys):
    assert cli(["teacher", "analyse", "--help"]) == 0
    assert "Example: motocoach teacher analyse sim:" in capsys.readouterr().out


@pytest.mark.parametrize("args, says", [
    (["sim:kestrel:amateur", "--teacher", "{tmp}/none.pt"], "no teacher at"),
    (["sim:nowhere:amateur"], "unknown track"),
    (["sim:kestrel:nobody"], "unknown rider"),
    (["sim:kestrel"], "sim:TRACK:RIDER[:SEED]"),
    (["{tmp}/missing.csv"], "no such log file"),
    (["{tmp}/garbage.csv"], "garbage.csv"),
])
def test_bad_input_is_one_red_line_and_status_2(cli, capsys, tmp_path, teacher_path, args, says):
    (tmp_path / "garbage.csv").write_bytes(b"\x00\x01 not a log\n" * 5)
    argv = ["teacher", "analyse", *[a.format(tmp=tmp_path) for a in args]]
    if "--teacher" not in argv:
        argv += ["--teacher", str(teacher_path)]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    flat = " ".join(err.split())                       # Rich wraps the one message at the terminal width
    assert flat.startswith("error:") and flat.count("error:") == 1 and says in flat and "Traceback" not in err


@pytest.fixture(scope="module")
def exported(oval_track, tmp_path_factory):
    from motocoach.training.ridelogs.ingest import export_rides

    out = tmp_path_factory.mktemp("exp")
    full = export_rides(out / "full", track=oval_track, rider="amateur", laps=2.6, rates=[10.0],
                        formats=["racechrono"], seed=2)[0]
    # under one lap (a logger needs 20 s or more: a longer track than the oval)
    short = export_rides(out / "short", track="kestrel", rider="amateur", laps=0.9, rates=[10.0],
                         formats=["racechrono"], seed=2)[0]
    return full, short


@pytest.mark.slow
def test_an_exported_log_is_analysed_end_to_end(cli, capsys, exported, oval_track, trained_teacher, tmp_path):
    full, _ = exported
    assert cli(["teacher", "analyse", str(full), "--track", oval_track, "--teacher", str(trained_teacher),
                "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert doc["source"] == f"log {full.name}" and doc["lap_kind"] == "valid"
    assert doc["teacher_tracks"] == sorted(Teacher.load(trained_teacher).tracks) and doc["teacher_tracks"]
    assert sorted(c["corner"] for c in doc["top"]) == [0, 1]                       # the oval has two corners
    assert all(f"apex {c['apex_s']:.0f} m" in out for c in doc["top"])
    assert (tmp_path / "analysis.html").stat().st_size > 10_000


def test_a_log_without_a_valid_lap_is_refused(cli, capsys, exported, teacher_path):
    _, short = exported
    assert cli(["teacher", "analyse", str(short), "--track", "kestrel", "--teacher", str(teacher_path)]) == 2
    assert "no valid lap (laps found: 0 outlap, 1 inlap)" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow
def test_corner_rank_agreement_scores_a_teacher_and_the_baselines(oval_track, trained_teacher):
    from motocoach.training.teacher.predict import Teacher

    res = corner_rank_agreement(Teacher.load(trained_teacher), [oval_track], riders=("amateur",), seeds=(0,))
    assert res["laps"] == 1 and res["per_lap"][0]["corners"] == 2
    # two corners, top 3 of 2: every ranking names both, so every score is 2
    assert res["corner_rank_agreement"] == res["baseline_chance"] == 2.0



def test_a_lap_the_simulated_ride_does_not_have_is_refused(cli, capsys, oval_track, teacher_path):
    assert cli(["teacher", "analyse", f"sim:{oval_track}:amateur", "--lap", "5", "--teacher", str(teacher_path)]) == 2
    assert "lap 5: the simulated ride has 2 full lap(s)" in " ".join(capsys.readouterr().err.split())
