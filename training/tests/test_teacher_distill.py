"""Teacher labels see nothing privileged, speak the cue language, are the same live and
offline; the teacher dataset mirrors the privileged one; distill and compare run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from motocoach.errors import ConfigError, SchemaError
from motocoach.schema import load_schema
from motocoach.training import datasets as D
from motocoach.training.coach import CoachRules, CueEncoder
from motocoach.training.riders import get_rider
from motocoach.training.sim import RideSim, decode_cues
from motocoach.training.teacher import distill as dist
from motocoach.training.teacher.distill_cli import register
from motocoach.training.teacher.features import HISTORY_STEPS, HORIZON_STEPS, TARGETS, context, history
from motocoach.training.teacher.labels import TeacherCoach, TeacherRules, gap_cues, label_ride
from motocoach.training.teacher.model import TEACHER_PRESETS, TeacherNet, save_teacher
from motocoach.training.teacher.predict import Teacher
from motocoach.training.tracks import get_track

@pytest.fixture(scope="session")
def teacher_path(tmp_path_factory):
    """A real but poorly trained small teacher (``fit.tiny_teacher``): its predictions are poor, the
    code path is the real one."""
    from motocoach.training.teacher.fit import tiny_teacher

    return tiny_teacher(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="session")
def teacher(teacher_path):
    return Teacher.load(teacher_path)


class LoggerView:
    """What a logger has of a ride; touching anything else (plan, confidence, grip, delay,
    the rider profile, the pro reference...) fails the test."""

    ALLOWED = ("observe", "s", "t", "n", "vehicle")

    def __init__(self, sim: RideSim) -> None:
        object.__setattr__(self, "_sim", sim)

    def __getattr__(self, name):
        if name not in LoggerView.ALLOWED:
            raise AssertionError(f"TeacherCoach read privileged sim.{name}")
        return getattr(object.__getattribute__(self, "_sim"), name)


def _ride(coach, sim: RideSim, steps: int, view=lambda s: s):
    obs, s, acts = [], [], []
    for _ in range(steps):
        obs.append(sim.observe())
        s.append(sim.s.copy())
        a = coach(view(sim))
        acts.append(a)
        sim.step(a)
    return np.stack(obs, 1), np.stack(s, 1), np.stack(acts, 1)


def test_teacher_coach_reads_only_logger_data(teacher):
    track = get_track("kestrel")
    live = _ride(TeacherCoach(teacher, track), RideSim(track, get_rider("amateur"), n=3, seed=5), 30, LoggerView)
    same = _ride(TeacherCoach(teacher, track), RideSim(track, get_rider("amateur"), n=3, seed=5), 30)
    np.testing.assert_array_equal(live[2], same[2])


def test_teacher_coach_inputs_are_telemetry_history_and_track_context(teacher, monkeypatch):
    track = get_track("kestrel")
    sim = RideSim(track, get_rider("amateur"), n=2, seed=3)
    seen = []
    real = teacher.predict_windows
    monkeypatch.setattr(teacher, "predict_windows", lambda h, c: seen.append((h.copy(), c.copy())) or real(h, c))
    obs, s, _ = _ride(TeacherCoach(teacher, track), sim, HISTORY_STEPS + 5)
    h, c = seen[-1]
    for i in range(2):
        np.testing.assert_allclose(h[i], history(obs[i])[-1], rtol=0, atol=1e-6)
        np.testing.assert_allclose(c[i], context(track, s[i], sim.vehicle)[-1], rtol=0, atol=1e-6)


def test_labels_are_in_the_cue_language(teacher):
    track = get_track("kestrel")
    _, _, acts = _ride(TeacherCoach(teacher, track), RideSim(track, get_rider("amateur"), n=4, seed=2), 60)
    assert _in_cue_language(acts)


def _in_cue_language(acts: np.ndarray) -> bool:
    """Every row is silence or one of the four cues, exactly as the CueEncoder writes them."""
    enc, k = CueEncoder(CoachRules()), CoachRules().intensity
    allowed = {(0.0, 0.0, enc.f_thr), (k, k, enc.f_brake), (k, 0.0, enc.f_side), (0.0, k, enc.f_side),
               (k, k, enc.f_thr)}
    rows = {tuple(float(np.float32(x)) for x in row) for row in acts.reshape(-1, 3)}
    return rows <= {tuple(float(np.float32(x)) for x in a) for a in allowed}


def _gap_case(expert_speed, expert_brake, expert_throttle, v, brk, thr, usage=0.3, dev=0.0, apex=900.0):
    col = {n: i for i, n in enumerate(load_schema().feature_names)}
    tel = np.zeros((1, len(col)), np.float32)
    for name, x in (("speed", v), ("brake", brk), ("throttle", thr), ("friction_usage", usage),
                    ("line_deviation", dev), ("dist_to_apex", apex)):
        tel[0, col[name]] = x
    ctl = np.zeros((1, HORIZON_STEPS, len(TARGETS)), np.float32)
    for name, x in (("speed", expert_speed), ("brake", expert_brake), ("throttle", expert_throttle)):
        ctl[0, :, TARGETS.index(name)] = x
    return decode_cues(gap_cues(ctl, tel, TeacherRules()))


def test_the_gap_rule_picks_each_cue():
    slow = _gap_case(expert_speed=30.0, expert_brake=0.8, expert_throttle=0.0, v=40.0, brk=0.1, thr=0.0)
    assert slow["brake"][0] > 0
    not_slow = _gap_case(expert_speed=30.0, expert_brake=0.1, expert_throttle=0.0, v=40.0, brk=0.1, thr=0.0)
    assert not_slow["on"][0] == 0          # the expert slows no harder than the rider: silence
    push = _gap_case(expert_speed=45.0, expert_brake=0.0, expert_throttle=1.0, v=40.0, brk=0.0, thr=0.2)
    assert push["throttle"][0] > 0
    full_gas = _gap_case(expert_speed=45.0, expert_brake=0.0, expert_throttle=1.0, v=40.0, brk=0.0, thr=1.0)
    assert full_gas["on"][0] == 0          # the rider is not holding back
    side = _gap_case(expert_speed=40.0, expert_brake=0.0, expert_throttle=0.5, v=40.0, brk=0.0, thr=0.5,
                     dev=2.0, apex=50.0)
    assert side["side"][0] < 0             # right of the line -> correct towards the left
    overgrip = _gap_case(expert_speed=40.0, expert_brake=0.0, expert_throttle=0.5, v=40.0, brk=0.0, thr=0.5,
                         usage=1.0)
    assert overgrip["brake"][0] > 0


def test_label_ride_equals_the_live_coach(teacher):
    track = get_track("kestrel")
    sim = RideSim(track, get_rider("amateur"), n=2, seed=11)
    obs, s, acts = _ride(TeacherCoach(teacher, track), sim, HISTORY_STEPS + 10)
    for i in range(2):
        np.testing.assert_array_equal(label_ride(teacher, obs[i], s[i], track, sim.vehicle), acts[i])


@pytest.mark.slow
def test_an_imported_log_gets_labels_in_the_cue_language(teacher):
    from motocoach.training.ridelogs.simulate import logged, simulate_ride
    from motocoach.training.ridelogs.telemetry import log_to_telemetry
    from motocoach.training.teacher.labels import label_log
    from motocoach.training.vehicles import get_vehicle

    track = get_track("kestrel")
    tel = log_to_telemetry(logged(simulate_ride(track, "amateur", laps=1.2, seed=3), 10.0, seed=1), track)
    acts = label_log(teacher, tel, get_vehicle("roadsport"))
    assert acts.shape == (len(tel.features), 3) and _in_cue_language(acts)


def test_label_ride_rejects_telemetry_that_does_not_fit(teacher):
    track = get_track("kestrel")
    with pytest.raises(SchemaError, match="features per row"):
        label_ride(teacher, np.zeros((5, 3)), np.zeros(5), track, RideSim(track, get_rider("amateur")).vehicle)
    with pytest.raises(SchemaError, match="lap positions"):
        label_ride(teacher, np.zeros((5, 8)), np.zeros(4), track, RideSim(track, get_rider("amateur")).vehicle)


def test_teacher_must_list_and_avoid_the_evaluation_tracks(teacher, tmp_path):
    assert teacher.tracks                     # the split train_teacher records
    dist.check_teacher_unseen(teacher, ["falcon", "merlin"])
    on_kestrel = Teacher.load(save_teacher(teacher.net, tmp_path / "k.pt", {"split": {"train": ["kestrel"], "val": []}}))
    with pytest.raises(ConfigError, match="kestrel"):
        dist.check_teacher_unseen(on_kestrel, ["kestrel"])
    silent = Teacher.load(save_teacher(TeacherNet(TEACHER_PRESETS["small"]), tmp_path / "t.pt", {}))
    with pytest.raises(ConfigError, match="does not list"):
        dist.check_teacher_unseen(silent, ["falcon"])


@pytest.fixture(scope="module")
def both_datasets(tmp_path_factory, teacher):
    priv, mine = tmp_path_factory.mktemp("priv"), tmp_path_factory.mktemp("teach")
    D.generate(priv, preset="test", seed=1, progress=False)
    dist.generate_teacher_datasets(mine, teacher, preset="test", seed=1, progress=False)
    return priv, mine


@pytest.mark.slow
def test_teacher_dataset_has_the_privileged_layout(both_datasets):
    priv, mine = both_datasets
    a = list(D.load_dataset(priv, "motocoach/amateur-coached-v0").iterate_episodes())
    b = list(D.load_dataset(mine, dist.TEACHER_DATASET_ID).iterate_episodes())
    assert len(a) == len(b) == D.PRESETS["test"].rides_per_track * len(D.PRESETS["test"].tracks)
    for x, y in zip(a, b):
        assert x.observations.shape[1:] == y.observations.shape[1:] and x.actions.shape[1:] == y.actions.shape[1:]
        assert set(x.infos) == set(y.infos)
        np.testing.assert_array_equal(x.observations[0], y.observations[0])   # same seeds, same start
    pa = list(D.load_dataset(priv, "motocoach/pro-v0").iterate_episodes())
    pb = list(D.load_dataset(mine, dist.PRO_DATASET_ID).iterate_episodes())
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x.observations, y.observations)        # the same pro laps


@pytest.mark.slow
def test_distill_and_compare_end_to_end(teacher_path, tmp_path, oval_track):
    out = tmp_path / "distilled"
    policy = dist.distill(out, teacher_path, preset="test", data_preset="test", seed=1, progress=False)
    meta = json.loads((out / "policy.json").read_text())
    assert policy.is_file() and meta["datasets"] == list(dist.DISTILL_DATASET_IDS)
    teacher_tracks = json.loads((out / "distill.json").read_text())["teacher_tracks"]
    assert teacher_tracks == sorted(Teacher.load(teacher_path).tracks) and teacher_tracks
    summary, results = dist.compare(policy, policy, tracks=[oval_track], seeds=3, seed=9, progress=False)
    assert {r.coach for r in results} == set(dist.COACHES)
    assert all(r.rides == 3 for r in results)
    same = summary["distilled_vs_privileged"]           # the same policy against itself
    assert same["pairs"] == 0 or abs(same["gain_pct"]) < 1e-9
    meta = json.loads((out / "distill.json").read_text())
    (out / "distill.json").write_text(json.dumps({**meta, "teacher_tracks": ["falcon"]}))
    with pytest.raises(ConfigError, match="falcon"):          # a teacher that rode the compared circuit
        dist.compare(policy, policy, tracks=["falcon"], seeds=2, progress=False)


def _cli():
    app = typer.Typer()
    register(app)
    return app


@pytest.mark.parametrize("verb", ["distill", "compare"])
def test_cli_help_has_an_example(verb):
    r = CliRunner().invoke(_cli(), [verb, "--help"])
    assert r.exit_code == 0 and "Example: motocoach teacher " + verb in r.output


def test_cli_errors_are_one_line_and_exit_2(tmp_path, teacher_path):
    r = CliRunner().invoke(_cli(), ["distill", "--teacher", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no teacher at" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(_cli(), ["distill", "--teacher", str(teacher_path), "--preset", "huge",
                                    "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown training preset" in r.output
    r = CliRunner().invoke(_cli(), ["compare", "--privileged", str(tmp_path / "a.pt"), "--distilled",
                                    str(tmp_path / "b.pt"), "--track", "falcon"])
    assert r.exit_code == 2 and "no privileged policy" in r.output



@pytest.mark.slow
def test_choose_rules_tries_the_grid_and_keeps_one_of_it(teacher, oval_track):
    grid = {"push_speed_ratio": (1.02, 9.0)}
    rules, rows = dist.choose_rules(teacher, tracks=(oval_track,), seeds=2, seed=5, grid=grid, progress=False)
    assert [r["push_speed_ratio"] for r in rows] == [1.02, 9.0]
    assert all(r["pairs"] == 2 for r in rows)
    assert rules.push_speed_ratio in grid["push_speed_ratio"]
