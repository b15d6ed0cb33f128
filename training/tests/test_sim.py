"""The simulator: cues really change the ride, wrong cues cost, habituation, delay."""

from __future__ import annotations

import dataclasses

import numpy as np

from motocoach.training.coach import ExpertCoach, freq01
from motocoach.training.riders import get_rider
from motocoach.training.sim import RideSim, decode_cues
from motocoach.training.tracks import get_track


def ride(policy, track="kestrel", rider="amateur", n=16, seed=3, steps=3600):
    sim = RideSim(get_track(track), get_rider(rider), n=n, seed=seed)
    lap = np.full(n, np.nan)
    trace = []
    for _ in range(steps):
        r = sim.step(policy(sim))
        trace.append(sim.s.copy())
        first = r.lap_done & np.isnan(lap)
        lap[first] = r.lap_time[first]
        if not np.isnan(lap).any():
            break
    return lap, np.array(trace)


def silent(sim):
    return np.zeros((sim.n, 3))


def test_same_seed_is_deterministic():
    a, ta = ride(silent, n=2)
    b, tb = ride(silent, n=2)
    assert np.array_equal(a, b) and np.array_equal(ta, tb)


def test_cues_change_the_lap():
    coach_lap, coach_trace = ride(lambda sim: ExpertCoach(sim.track)(sim), n=2)
    none_lap, none_trace = ride(silent, n=2)
    assert not np.allclose(coach_lap, none_lap)
    n = min(len(coach_trace), len(none_trace))
    assert np.abs(coach_trace[:n] - none_trace[:n]).max() > 1.0


def test_wrong_side_cues_push_the_rider_off_the_line():
    """Side cues towards the deviation (instead of against it) make the line worse."""
    def sided(sign):
        def pol(sim):
            a = np.zeros((sim.n, 3))
            far = np.abs(sim.e) > 0.8
            towards_right = (sim.e * sign) > 0      # sign=+1: cue the side the rider already is
            a[far & towards_right, 1] = 0.8
            a[far & ~towards_right, 0] = 0.8
            return a
        return pol

    def mean_abs_line(pol):
        sim = RideSim(get_track("kestrel"), get_rider("amateur"), n=32, seed=1)
        tot = 0.0
        for _ in range(600):
            sim.step(pol(sim))
            tot += np.abs(sim.e).mean()
        return tot / 600

    good, bad = mean_abs_line(sided(-1)), mean_abs_line(sided(+1))
    none = mean_abs_line(silent)
    assert good < none < bad


def test_constant_throttle_buzzing_is_worse_than_silence_or_habituates():
    thr = freq01(75.0)
    always = lambda sim: np.tile([1.0, 1.0, thr], (sim.n, 1))  # noqa: E731
    sim = RideSim(get_track("kestrel"), get_rider("amateur"), n=8, seed=0)
    for _ in range(400):
        sim.step(always(sim))
    assert sim.attention.max() < 0.1          # constant buzzing gets ignored


def test_cues_act_only_after_the_perception_delay():
    rider = dataclasses.replace(get_rider("amateur"), compliance=1.0)
    sim = RideSim(get_track("kestrel"), rider, n=1, seed=0)
    ref = RideSim(get_track("kestrel"), rider, n=1, seed=0)
    cue = np.array([[0.0, 1.0, 0.4]])           # right motor: move right
    for k in range(sim.delay_steps + 3):
        sim.step(cue if k == 0 else np.zeros((1, 3)))
        ref.step(np.zeros((1, 3)))
        if k < sim.delay_steps:
            assert sim.e[0] == ref.e[0]
    assert sim.e[0] != ref.e[0]


def test_decode_cue_language():
    hz = lambda f: freq01(f)  # noqa: E731
    c = decode_cues(np.array([[0.8, 0.0, hz(150)], [0.0, 0.8, hz(150)], [0.8, 0.8, hz(250)],
                              [0.8, 0.8, hz(75)], [0.8, 0.8, hz(150)], [0.1, 0.1, hz(250)]]))
    assert list(np.sign(c["side"])) == [-1, 1, 0, 0, 0, 0]
    assert list(c["brake"] > 0) == [False, False, True, False, False, False]
    assert list(c["throttle"] > 0) == [False, False, False, True, False, False]
    assert list(c["on"]) == [1, 1, 1, 1, 1, 0]


def test_nan_actions_do_not_poison_the_state():
    sim = RideSim(get_track("kestrel"), get_rider("amateur"), n=2, seed=0)
    sim.step(np.array([[np.nan, 0.5, 0.5], [np.inf, -np.inf, 2.0]]))
    assert np.all(np.isfinite(sim.observe()))


def _violations_and_laps(policy, *, grip=None, track="kestrel", n=16, seed=7, steps=2400):
    sim = RideSim(get_track(track), get_rider("amateur"), n=n, seed=seed)
    if grip is not None:
        sim.mu[:] = grip * sim.vehicle.mu
    viol = 0
    lap = np.full(n, np.nan)
    for _ in range(steps):
        r = sim.step(policy(sim))
        viol += int(r.violation.sum())
        first = r.lap_done & np.isnan(lap)
        lap[first] = r.lap_time[first]
    return viol, lap


def _pulsed(cue, when):
    """A cue given for 1 s out of every 3 s whenever ``when(sim)`` holds (duty <= 1/3)."""
    def pol(sim):
        a = np.zeros((sim.n, 3))
        on = when(sim) & (np.mod(sim.t, 3.0) < 1.0)
        a[on] = cue
        return a
    return pol


def test_carry_speed_cues_on_low_grip_cost_safety():
    """A push where grip is low (riders plan with the nominal grip) adds safety events."""
    push = _pulsed((0.8, 0.8, freq01(75.0)), lambda sim: np.ones(sim.n, dtype=bool))
    v_push, _ = _violations_and_laps(push, grip=0.93)
    v_none, _ = _violations_and_laps(silent, grip=0.93)
    assert v_push > 1.3 * v_none


def test_slow_cues_on_straights_cost_lap_time():
    slow = _pulsed((0.8, 0.8, freq01(250.0)), lambda sim: np.abs(sim.a_lat) < 2.0)
    _, lap_slow = _violations_and_laps(slow)
    _, lap_none = _violations_and_laps(silent)
    assert np.nanmean(lap_slow) > np.nanmean(lap_none) + 0.5


def test_expert_cues_make_the_amateur_faster_on_a_heldout_track():
    coach = ExpertCoach(get_track("merlin"))
    _, lap_coached = _violations_and_laps(lambda sim: coach(sim), track="merlin", steps=3600)
    _, lap_none = _violations_and_laps(silent, track="merlin", steps=3600)
    assert np.nanmean(lap_coached) < 0.97 * np.nanmean(lap_none)
