"""Coaching efficacy of the committed default policy on the real calibration circuits
(simulated, host): three amateur-level profiles and the pro, paired seeds, every coach.

The circuits come from the real-circuit data folder (``MOTOCOACH_REAL_DATA``, default
``../shared/data``); the policy never saw them. Goals are those of the coaching-evaluation
work (docs/training.md); the figures are written whether a goal is met or not.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MOTOCOACH_REAL_DATA") or ROOT.parent / "shared" / "data")
SEEDS = 64
AMATEURS = ["amateur", "trackday", "weekend"]


@pytest.mark.skipif(not (DATA / "tracks").is_dir(), reason=f"no real-circuit data at {DATA}")
def test_coaching_efficacy_on_real_circuits(bench_result):
    from motocoach.training.evaluate import evaluate, paired_gain

    tracks = sorted(str(p) for p in (DATA / "tracks").glob("*.csv") if not p.stem.endswith("_raceline"))
    ref = resources.files("motocoach.training").joinpath("default_policy", "policy.pt")
    with resources.as_file(ref) as policy:
        results = evaluate(policy=Path(policy), tracks=tracks, riders=[*AMATEURS, "pro"], seeds=SEEDS,
                           seed=4321, progress=False)

    def cells(coach, riders):
        return [r for r in results if r.coach == coach and r.rider in riders]

    def ratio(coach, riders, field):
        den = sum(getattr(r, field) for r in cells("none", riders))
        return sum(getattr(r, field) for r in cells(coach, riders)) / den if den else float("nan")

    am = [r for r in results if r.rider in AMATEURS]
    skill = [r for r in results if r.rider == "trackday"]
    pro = [r for r in results if r.rider == "pro"]
    g = paired_gain(am, "bc+ppo")
    metrics = {
        "amateur_laptime_gain_pct": g["gain_pct"],
        "gain_ci95_low_pct": g["ci95_low_pct"],
        "violations_ratio": ratio("bc+ppo", AMATEURS, "violation_s_per_lap"),
        # off-tracks coached / uncoached; with none uncoached, the coached count itself
        "offtrack_ratio": (ratio("bc+ppo", AMATEURS, "offtracks") if sum(r.offtracks for r in cells("none", AMATEURS))
                           else float(sum(r.offtracks for r in cells("bc+ppo", AMATEURS)))),
        "cue_duty": float(np.mean([r.cue_duty for r in cells("bc+ppo", AMATEURS)])),
        "pro_laptime_change_pct": -paired_gain(pro, "bc+ppo")["gain_pct"],
        "pro_violations_ratio": ratio("bc+ppo", ["pro"], "violation_s_per_lap"),
        "ppo_vs_bc_gain_pts": g["gain_pct"] - paired_gain(am, "bc")["gain_pct"],
        "vs_telemetry_rule_coach_gain_pts": g["gain_pct"] - paired_gain(am, "telemetry-rule")["gain_pct"],
        "skill_only_amateur_gain_pct": paired_gain(skill, "bc+ppo")["gain_pct"],
        "skill_only_amateur_gain_ci95_low_pct": paired_gain(skill, "bc+ppo")["ci95_low_pct"],
        "rule_coach_gain_pct": paired_gain(am, "rule")["gain_pct"],
        "finished_laps_pct": 100.0 * sum(r.completed for r in am) / sum(r.rides for r in am),
        "seeds": SEEDS,
        "tracks": len(tracks),
    }
    bench_result("efficacy_real", "host", metrics, notes=(
        "Simulated rides on the host, on the real calibration circuits "
        f"({', '.join(Path(t).stem for t in tracks)}), which the policy never saw. Policy: "
        "training/default_policy/policy.pt (BC+PPO; bc_policy.pt beside it for BC). Amateur-level "
        f"profiles {', '.join(AMATEURS)} on their own vehicle (roadsport); trackday = skill mistakes only. "
        f"{SEEDS} paired seeds per coach x circuit x rider; gains are paired (rides both finished); "
        "violations = seconds per lap above 95 % friction usage or over the lean limit, summed over "
        "cells; pro = the pro on its superbike, coached by the same policy (positive change = slower). "
        "Goals: gain >= 4 with CI low > 0, violations <= 1, off-tracks <= 1, duty <= 0.25, pro change "
        "<= 0.3, PPO and the telemetry rule coach beaten, skill-only gain > 0."))
    assert all(r.rides == SEEDS for r in results)
