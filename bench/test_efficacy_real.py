"""Coaching efficacy of the committed default policy on the real calibration circuits
(simulated, host): three amateur-level profiles and the pro, paired seeds, every coach.

The circuits come from the real-circuit data folder (``MOTOCOACH_REAL_DATA``, default
``../shared/data``). The default preset's PPO also rides some of them
(``PRESETS["default"].real_tracks``); the headline figures are on the others, which the
policy never saw, and ``all_circuits_*`` repeat the main ones over every circuit. Goals
are those of the coaching work (docs/training.md); the figures are written whether a goal
is met or not.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MOTOCOACH_REAL_DATA") or ROOT.parent / "shared" / "data")
SEEDS = 64
AMATEURS = ["amateur", "trackday", "weekend"]


# Minutes of simulated laps; more on a loaded machine than pytest's 600 s default.
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not (DATA / "tracks").is_dir(), reason=f"no real-circuit data at {DATA}")
def test_coaching_efficacy_on_real_circuits(bench_result):
    from motocoach.training.efficacy import efficacy_metrics, goals_met
    from motocoach.training.evaluate import evaluate
    from motocoach.training.train import PRESETS

    trained_on = set(PRESETS["default"].real_tracks)
    tracks = sorted(str(p) for p in (DATA / "tracks").glob("*.csv") if not p.stem.endswith("_raceline"))
    held = [Path(t).stem for t in tracks if Path(t).stem not in trained_on]
    ref = resources.files("motocoach.training").joinpath("default_policy", "policy.pt")
    with resources.as_file(ref) as policy:
        results = evaluate(policy=Path(policy), tracks=tracks, riders=[*AMATEURS, "pro"], seeds=SEEDS,
                           seed=4321, progress=False)
    heldout = efficacy_metrics([r for r in results if r.track in held], AMATEURS)
    every = efficacy_metrics(results, AMATEURS)
    metrics = {k: v for k, v in heldout.items() if v is not None}
    metrics.update({f"all_circuits_{k}": every[k] for k in ("amateur_laptime_gain_pct", "violations_ratio",
                                                          "cue_duty", "ppo_vs_bc_gain_pts",
                                                          "pro_laptime_change_pct") if every[k] is not None})
    met = goals_met(heldout)
    metrics.update(seeds=SEEDS, tracks=len(held), goals_met=sum(met.values()), goals=len(met))
    bench_result("efficacy_real", "host", metrics, notes=(
        f"Simulated rides on the host, on the real calibration circuits. Headline figures on "
        f"{', '.join(held)}, which the policy never saw; all_circuits_* also include "
        f"{', '.join(sorted(trained_on)) or 'none'}, which the default preset's PPO rides. Policy: "
        "training/default_policy/policy.pt (BC+PPO; bc_policy.pt beside it for BC). Amateur-level "
        f"profiles {', '.join(AMATEURS)} on their own vehicle (roadsport); trackday = skill mistakes only. "
        f"{SEEDS} paired seeds per coach x circuit x rider; every figure is over the rides both coached "
        "and uncoached finished (training/efficacy.py); violations = seconds above 95 % friction usage "
        "or over the lean limit; pro = the pro on its superbike, coached by the same policy (positive "
        f"change = slower). Goals missed: {', '.join(k for k, ok in met.items() if not ok) or 'none'}."))
    assert all(r.rides == SEEDS for r in results)
    assert heldout["paired_rides"] > 0
