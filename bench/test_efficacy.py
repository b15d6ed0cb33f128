"""Coaching efficacy of the committed default policy on held-out tracks (simulated, host)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

SEEDS = 64


def test_coaching_efficacy(bench_result):
    from motocoach.training import datasets
    from motocoach.training.evaluate import evaluate

    ref = resources.files("motocoach.training").joinpath("default_policy", "policy.pt")
    with resources.as_file(ref) as policy:
        policy = Path(policy)
        results = evaluate(policy=policy, tracks=list(datasets.HELDOUT_TRACKS),
                           riders=["amateur", "trackday", *datasets.HELDOUT_RIDERS], seeds=SEEDS, seed=1234,
                           progress=False)

    def pick(coach, riders):
        return [r for r in results if r.coach == coach and r.rider in riders]

    def gain(coach, riders):
        base = {(r.track, r.rider): r for r in pick("none", riders)}
        return float(np.mean([100 * (1 - r.lap_time_mean_s / base[(r.track, r.rider)].lap_time_mean_s)
                              for r in pick(coach, riders)]))

    def viol_ratio(coach, riders):
        num = sum(r.violation_s_per_lap for r in pick(coach, riders))
        den = sum(r.violation_s_per_lap for r in pick("none", riders))
        return num / den

    am = ["amateur"]
    held = list(datasets.HELDOUT_RIDERS)
    metrics = {
        "amateur_laptime_gain_pct": gain("bc+ppo", am),
        "violations_ratio": viol_ratio("bc+ppo", am),
        "cue_duty": float(np.mean([r.cue_duty for r in pick("bc+ppo", am)])),
        "offtracks_coached": sum(r.offtracks for r in pick("bc+ppo", am)),
        "offtracks_uncoached": sum(r.offtracks for r in pick("none", am)),
        "rule_coach_gain_pct": gain("rule", am),
        "rule_coach_violations_ratio": viol_ratio("rule", am),
        "heldout_riders_gain_pct": gain("bc+ppo", held),
        "heldout_riders_violations_ratio": viol_ratio("bc+ppo", held),
        "seeds": SEEDS,
        "tracks": len(datasets.HELDOUT_TRACKS),
    }
    from motocoach.training.evaluate import paired_gain

    am_cells = [r for r in results if r.rider == "amateur"]
    skill = [r for r in results if r.rider == "trackday"]
    ppo = paired_gain(am_cells, "bc+ppo")
    metrics["gain_ci95_low_pct"] = ppo["ci95_low_pct"]
    metrics["telemetry_rule_coach_gain_pct"] = paired_gain(am_cells, "telemetry-rule")["gain_pct"]
    metrics["vs_telemetry_rule_coach_gain_pts"] = ppo["gain_pct"] - metrics["telemetry_rule_coach_gain_pct"]
    metrics["skill_only_amateur_gain_pct"] = paired_gain(skill, "bc+ppo")["gain_pct"]
    metrics["skill_only_amateur_gain_ci95_low_pct"] = paired_gain(skill, "bc+ppo")["ci95_low_pct"]
    if any(r.coach == "bc" for r in results):
        metrics["bc_gain_pct"] = gain("bc", am)
        metrics["bc_violations_ratio"] = viol_ratio("bc", am)
        metrics["bc_cue_duty"] = float(np.mean([r.cue_duty for r in pick("bc", am)]))
        metrics["ppo_vs_bc_gain_pts"] = ppo["gain_pct"] - paired_gain(am_cells, "bc")["gain_pct"]
    bench_result("efficacy", "host", metrics, notes=(
        "Simulated rides on the host. Policy: training/default_policy/policy.pt (BC+PPO, trained "
        f"on tracks {', '.join(datasets.TRAIN_TRACKS)} with the amateur profile). Evaluated on "
        f"held-out tracks {', '.join(datasets.HELDOUT_TRACKS)}; held-out riders "
        f"{', '.join(datasets.HELDOUT_RIDERS)} reported separately; trackday = the amateur with skill "
        "mistakes only (skill_only_*). Paired metrics (ci95, *_pts) compare coaches on the same seeds. "
        f"{SEEDS} flying laps per "
        "coach x track x rider; lap time averaged over completed laps; violations = seconds per "
        "lap with friction usage > 0.95 or lean over the cap. bc = training/default_policy/"
        "bc_policy.pt, the actor PPO started from. In this rider model a faster lap means more "
        "time near the grip limit, so gain and violations trade off (see docs/training.md)."))
    assert all(r.rides == SEEDS for r in results)
