"""The coaching-efficacy figures, one definition for every bench and report.

Every figure compares a coach with no coach on the same seeds, over the rides both
finished (:func:`~motocoach.training.evaluate.paired_gain`,
:func:`~motocoach.training.evaluate.paired_violations_ratio`), so lap time, violations and
cue duty always describe the same rides. A figure that has nothing to compare is ``None``,
never NaN.
"""

from __future__ import annotations

import numpy as np

from motocoach.training.evaluate import CoachResult, paired_gain, paired_violations_ratio

COACH = "bc+ppo"
#: The goals of the coaching work (docs/training.md), checked by :func:`goals_met`.
GOALS = {
    "amateur_laptime_gain_pct": (">=", 4.0),
    "gain_ci95_low_pct": (">", 0.0),
    "violations_ratio": ("<=", 1.0),
    "offtrack_ratio": ("<=", 1.0),
    "cue_duty": ("<=", 0.25),
    "pro_laptime_change_pct": ("<=", 0.3),
    "pro_violations_ratio": ("<=", 1.0),
    "ppo_vs_bc_gain_pts": (">", 0.0),
    "vs_telemetry_rule_coach_gain_pts": (">", 0.0),
    "skill_only_amateur_gain_pct": (">", 0.0),
    "skill_only_amateur_gain_ci95_low_pct": (">", 0.0),
}


def _finished_duty(results: list[CoachResult], coach: str) -> float | None:
    """Cue duty over the finished rides of ``coach``, weighted by rides."""
    cells = [r for r in results if r.coach == coach and r.completed]
    return (float(sum(r.cue_duty * r.completed for r in cells) / sum(r.completed for r in cells))
            if cells else None)


def _offtrack_ratio(results: list[CoachResult], coach: str) -> float | None:
    """Off-tracks coached / uncoached; with none uncoached, the coached count itself."""
    base = sum(r.offtracks for r in results if r.coach == "none")
    mine = sum(r.offtracks for r in results if r.coach == coach)
    return mine / base if base else float(mine)


def _gain(results: list[CoachResult], coach: str) -> dict:
    return paired_gain(results, coach) if any(r.coach == coach for r in results) else {"pairs": 0}


def efficacy_metrics(results: list[CoachResult], amateurs: list[str], skill_only: str = "trackday",
                     pro: str = "pro") -> dict:
    """The efficacy figures of :data:`COACH` for ``results`` (several circuits, riders, coaches)."""
    am = [r for r in results if r.rider in amateurs]
    skill = [r for r in results if r.rider == skill_only]
    pros = [r for r in results if r.rider == pro]
    g = _gain(am, COACH)
    sk = _gain(skill, COACH)
    pg = _gain(pros, COACH)

    def pts(other: str) -> float | None:
        o = _gain(am, other)
        return g["gain_pct"] - o["gain_pct"] if g["pairs"] and o["pairs"] else None

    m = {
        "amateur_laptime_gain_pct": g.get("gain_pct"),
        "gain_ci95_low_pct": g.get("ci95_low_pct"),
        "violations_ratio": paired_violations_ratio(am, COACH),
        "offtrack_ratio": _offtrack_ratio(am, COACH),
        "cue_duty": _finished_duty(am, COACH),
        # positive means the coached pro is slower
        "pro_laptime_change_pct": -pg["gain_pct"] if pg["pairs"] else None,
        "pro_violations_ratio": paired_violations_ratio(pros, COACH),
        "ppo_vs_bc_gain_pts": pts("bc"),
        "vs_telemetry_rule_coach_gain_pts": pts("telemetry-rule"),
        "skill_only_amateur_gain_pct": sk.get("gain_pct"),
        "skill_only_amateur_gain_ci95_low_pct": sk.get("ci95_low_pct"),
        "bc_gain_pct": _gain(am, "bc").get("gain_pct"),
        "bc_violations_ratio": paired_violations_ratio(am, "bc"),
        "telemetry_rule_coach_gain_pct": _gain(am, "telemetry-rule").get("gain_pct"),
        "rule_coach_gain_pct": _gain(am, "rule").get("gain_pct"),
        "rule_coach_violations_ratio": paired_violations_ratio(am, "rule"),
        "paired_rides": g["pairs"],
        "finished_laps_pct": (100.0 * sum(r.completed for r in am if r.coach == COACH)
                              / max(1, sum(r.rides for r in am if r.coach == COACH))),
    }
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in m.items()}


def goals_met(metrics: dict) -> dict[str, bool]:
    """Goal name -> met, for the goals whose figure exists in ``metrics``."""
    ops = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal}
    return {k: bool(ops[op](metrics[k], bound)) for k, (op, bound) in GOALS.items()
            if metrics.get(k) is not None}
