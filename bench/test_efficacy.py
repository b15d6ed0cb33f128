"""Coaching efficacy of the committed default policy on held-out generated tracks
(simulated, host); the same figures as efficacy_real (training/efficacy.py)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

SEEDS = 64


# Minutes of simulated laps; more on a loaded machine than pytest's 600 s default.
@pytest.mark.timeout(3600)
def test_coaching_efficacy(bench_result):
    from motocoach.training import datasets
    from motocoach.training.efficacy import efficacy_metrics
    from motocoach.training.evaluate import evaluate

    ref = resources.files("motocoach.training").joinpath("default_policy", "policy.pt")
    with resources.as_file(ref) as policy:
        results = evaluate(policy=Path(policy), tracks=list(datasets.HELDOUT_TRACKS),
                           riders=["amateur", "trackday", *datasets.HELDOUT_RIDERS], seeds=SEEDS, seed=1234,
                           progress=False)
    am = efficacy_metrics(results, ["amateur"])
    held = efficacy_metrics(results, list(datasets.HELDOUT_RIDERS))
    metrics = {k: v for k, v in am.items() if v is not None and not k.startswith("pro_")}
    metrics.update({"heldout_riders_gain_pct": held["amateur_laptime_gain_pct"],
                    "heldout_riders_violations_ratio": held["violations_ratio"],
                    "offtracks_coached": sum(r.offtracks for r in results if r.coach == "bc+ppo" and r.rider == "amateur"),
                    "offtracks_uncoached": sum(r.offtracks for r in results if r.coach == "none" and r.rider == "amateur"),
                    "seeds": SEEDS, "tracks": len(datasets.HELDOUT_TRACKS)})
    bench_result("efficacy", "host", {k: v for k, v in metrics.items() if v is not None}, notes=(
        "Simulated rides on the host. Policy: training/default_policy/policy.pt (BC+PPO). Evaluated on "
        f"held-out generated tracks {', '.join(datasets.HELDOUT_TRACKS)}: the amateur (headline), trackday "
        f"= the amateur with skill mistakes only (skill_only_*), held-out riders "
        f"{', '.join(datasets.HELDOUT_RIDERS)} (heldout_riders_*). {SEEDS} paired seeds per coach x track x "
        "rider; every figure is over the rides both coached and uncoached finished (training/efficacy.py); "
        "violations = seconds with friction usage > 0.95 or lean over the cap. bc = "
        "training/default_policy/bc_policy.pt, the actor PPO started from."))
    assert all(r.rides == SEEDS for r in results)
