"""Evaluation: paired gains with an interval, any vehicle, and cells where nothing finished."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motocoach.training.evaluate import CoachResult, evaluate_coach, max_lap_s, paired_gain, paired_laps_gain
from motocoach.training.plots import plot_lap_times


def _result(coach, laps):
    laps = np.asarray(laps, dtype=float)
    done = np.isfinite(laps)
    return CoachResult(coach=coach, track="t", rider="r", rides=len(laps), completed=int(done.sum()),
                       offtracks=int((~done).sum()), lap_time_mean_s=float(laps[done].mean()) if done.any() else math.nan,
                       lap_time_std_s=0.0, violation_s_per_lap=0.0, cue_duty=0.0, lap_times_s=tuple(laps))


def test_paired_gain_uses_only_rides_both_finished():
    res = [_result("none", [100.0, 100.0, np.nan, 100.0]), _result("rule", [90.0, np.nan, 80.0, 95.0])]
    g = paired_gain(res, "rule")
    assert g["pairs"] == 2 and g["gain_pct"] == pytest.approx(7.5)
    assert g["ci95_low_pct"] < g["gain_pct"] < g["ci95_high_pct"]


def test_no_finished_pair_gives_no_number_and_the_plot_says_so(tmp_path):
    res = [_result("none", [np.nan, np.nan]), _result("rule", [np.nan, np.nan])]
    assert paired_gain(res, "rule") == {"pairs": 0}
    assert plot_lap_times(res, tmp_path / "laps.png").stat().st_size > 0


def test_lap_cap_follows_the_circuit_and_vehicle_is_honoured():
    assert max_lap_s(4000.0) == 500.0
    r = evaluate_coach("none", track="kestrel", rider="amateur", seeds=2, vehicle="supersport600")
    assert r.vehicle == "supersport600" and r.completed == 2 and len(r.lap_times_s) == 2
    own = evaluate_coach("none", track="kestrel", rider="amateur", seeds=2)
    assert own.vehicle == "roadsport" and own.lap_time_mean_s > r.lap_time_mean_s


def test_evaluate_writes_readable_plots(tmp_path):
    from motocoach.training.evaluate import evaluate

    res = evaluate(policy=None, tracks=["kestrel"], riders=["amateur"], seeds=2, out_dir=tmp_path, progress=False)
    assert {r.coach for r in res} == {"none", "rule", "telemetry-rule"}
    for name in ("evaluation.json", "lap_times.png", "cue_map_kestrel.png", "speed_kestrel.png"):
        assert (tmp_path / name).stat().st_size > 500, name


def test_paired_laps_gain_matches_the_pooled_one():
    base, coached = [100.0, None, 100.0], [90.0, 95.0, 95.0]
    g = paired_laps_gain(base, coached)
    assert g["pairs"] == 2 and g["gain_pct"] == pytest.approx(7.5)
    assert paired_laps_gain([None], [90.0]) == {"pairs": 0}
