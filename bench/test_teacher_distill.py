"""The teacher distilled into the unit's policy against the privileged-coach-labelled policy
(simulated, host): both trained with the same training preset and seed, compared on the same
paired seeds of circuits neither the policies nor the teacher trained on.

The teacher is ``$MOTOCOACH_TEACHER`` when set (a ``teacher.pt`` from ``motocoach teacher
train``), otherwise a small-preset teacher trained here for :data:`TEACHER_MINUTES`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PRESET = "demo"          # the training preset that fits this host's bench budget (both policies)
SEEDS = 32
EVAL_SEED = 1234
TRAIN_SEED = 0
TEACHER_MINUTES = 10.0


@pytest.mark.timeout(3600)
def test_teacher_distilled_policy_vs_privileged(bench_result, tmp_path):
    from motocoach.training import datasets
    from motocoach.training.teacher import distill as dist
    from motocoach.training.teacher.predict import Teacher
    from motocoach.training.train import train

    teacher_path = os.environ.get("MOTOCOACH_TEACHER")
    if teacher_path:
        teacher_path = Path(teacher_path)
    else:
        from motocoach.training.teacher.fit import train_teacher

        teacher_path = train_teacher(tmp_path / "teacher", preset="small", seed=TRAIN_SEED, progress=False,
                                     max_minutes=TEACHER_MINUTES)
    tracks = dist.eval_tracks()
    teacher = Teacher.load(teacher_path)
    dist.check_teacher_unseen(teacher, tracks)

    root = tmp_path / "data"
    datasets.generate(root, preset=PRESET, seed=TRAIN_SEED, progress=False)
    privileged = train(tmp_path / "privileged", preset=PRESET, dataset_root=root, seed=TRAIN_SEED, progress=False)
    distilled = dist.distill(tmp_path / "distilled", teacher_path, preset=PRESET, data_preset=PRESET,
                             seed=TRAIN_SEED, progress=False)
    summary, results = dist.compare(privileged, distilled, tracks=tracks, seeds=SEEDS, seed=EVAL_SEED,
                                    progress=False)

    d, p, rule = summary["distilled"], summary["privileged"], summary["telemetry-rule"]
    vs = summary["distilled_vs_privileged"]
    metrics = {
        "distilled_gain_pct": d.get("gain_pct"), "distilled_gain_ci95_low_pct": d.get("ci95_low_pct"),
        "distilled_violations_ratio": d["violations_ratio"], "distilled_cue_duty": d["cue_duty"],
        "privileged_gain_pct": p.get("gain_pct"), "privileged_gain_ci95_low_pct": p.get("ci95_low_pct"),
        "privileged_violations_ratio": p["violations_ratio"], "privileged_cue_duty": p["cue_duty"],
        "telemetry_rule_gain_pct": rule.get("gain_pct"), "telemetry_rule_gain_ci95_low_pct": rule.get("ci95_low_pct"),
        "telemetry_rule_violations_ratio": rule["violations_ratio"],
        "distilled_vs_privileged_gain_pct": vs.get("gain_pct"),
        "distilled_vs_privileged_ci95_low_pct": vs.get("ci95_low_pct"),
        "distilled_vs_privileged_ci95_high_pct": vs.get("ci95_high_pct"),
        "distilled_at_least_as_good": dist.at_least_as_good(summary),
        "paired_rides": d.get("pairs"), "seeds": SEEDS, "circuits": len(tracks),
    }
    names = ", ".join(Path(t).stem for t in tracks)
    command = ("MOTOCOACH_TEACHER=<teacher.pt from motocoach teacher train> pytest bench/test_teacher_distill.py"
               if os.environ.get("MOTOCOACH_TEACHER") else "make bench")
    bench_result("teacher_distill", "host", {k: v for k, v in metrics.items() if v is not None}, command=command, notes=(
        f"Simulated rides on the host. Both policies: training preset {PRESET}, training seed {TRAIN_SEED}, "
        f"data preset {PRESET} (same amateur rides; labels from the privileged ExpertCoach vs the teacher's "
        f"TeacherCoach). Teacher: {'$MOTOCOACH_TEACHER' if os.environ.get('MOTOCOACH_TEACHER') else 'small preset trained here'}"
        f", trained on {', '.join(sorted(dist.teacher_tracks(teacher)))}. Compared on {names} (held out from "
        f"the teacher and both policies), amateur rider, {SEEDS} paired seeds per coach and circuit from base "
        f"seed {EVAL_SEED}; gains over no coach on the rides both finished (training/evaluate.py paired_gain), "
        "violations = seconds above 95 % friction usage or over the lean limit. distilled_at_least_as_good: 1 "
        "when the 95 % interval of the distilled policy's paired gain over the privileged one reaches 0 or "
        "above and its violations ratio is at most 1."))
    assert all(r.rides == SEEDS for r in results)
    assert d.get("pairs") and p.get("pairs")
