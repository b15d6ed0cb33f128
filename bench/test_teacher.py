"""The expert-action teacher (simulated, host): its size, its errors on the validation
tracks, and how long the small preset takes to train.

One teacher is trained once per module with the defaults of ``motocoach teacher train``
(small preset, the default expert set: generated circuits plus Silverstone and Nuerburgring
when the real-circuit data folder has them) into a bench folder, or ``$MOTOCOACH_TEACHER``
names one trained that way (its own training figures travel in its checkpoint). The one test
below writes ``bench/results/teacher.json``: the teacher's errors on its validation circuits,
whether the corners it names match the simulator's truth on circuits it never saw
(:func:`~motocoach.training.teacher.analyse.corner_rank_agreement`), and the teacher distilled
into the unit's policy against the privileged-coach-labelled policy, both trained with the same
training preset and seed and compared on the same paired seeds of circuits neither the policies
nor the teacher trained on. Figures are written whether a goal is met or not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MOTOCOACH_REAL_DATA") or ROOT.parent / "shared" / "data")
ONSET_GOAL_S = 0.1
RANK_GOAL = 2.0
# Riders who are not the expert; the circuits are the comparison's (distill.eval_tracks), which no
# teacher trains on (expert_data.RESERVED_TRACKS).
RANK_RIDERS = ("amateur", "trackday", "weekend")
RANK_SEEDS = (0, 1)
PRESET = "demo"          # the training preset that fits this host's bench budget (both policies)
SEEDS = 32
EVAL_SEED = 1234
TRAIN_SEED = 0


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """teacher.pt of the default small-preset training, with expert.npz beside it."""
    from motocoach.training.teacher.fit import train_teacher

    if os.environ.get("MOTOCOACH_TEACHER"):
        return Path(os.environ["MOTOCOACH_TEACHER"])
    return train_teacher(tmp_path_factory.mktemp("teacher"), preset="small", real_data=DATA, progress=False)


def distillation(teacher_path: Path, tmp_path: Path) -> tuple[dict, str]:
    """The four-way comparison's figures and notes for ``teacher_path`` (training/teacher/distill.py)."""
    from motocoach.training import datasets
    from motocoach.training.teacher import distill as dist
    from motocoach.training.teacher.predict import Teacher
    from motocoach.training.train import train

    tracks = dist.eval_tracks(DATA)
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
        "telemetry_rule_violations_ratio": rule["violations_ratio"], "telemetry_rule_cue_duty": rule["cue_duty"],
        "distilled_vs_privileged_gain_pct": vs.get("gain_pct"),
        "distilled_vs_privileged_ci95_low_pct": vs.get("ci95_low_pct"),
        "distilled_vs_privileged_ci95_high_pct": vs.get("ci95_high_pct"),
        "distilled_at_least_as_good": dist.at_least_as_good(summary),
        "paired_rides": d.get("pairs"), "seeds": SEEDS, "circuits": len(tracks),
    }
    assert all(r.rides == SEEDS for r in results)
    assert d.get("pairs") and p.get("pairs")
    names = ", ".join(Path(t).stem for t in tracks)
    notes = (f"Distillation: both policies training preset {PRESET}, training seed {TRAIN_SEED}, data preset "
             f"{PRESET} (same amateur rides; labels from the privileged ExpertCoach vs the teacher's TeacherCoach), "
             f"compared on {names} (held out from the teacher and both policies), amateur rider, {SEEDS} paired "
             f"seeds per coach and circuit from base seed {EVAL_SEED}; gains over no coach on the rides both "
             "finished (training/evaluate.py paired_gain), violations = seconds above 95 % friction usage or over "
             "the lean limit. distilled_at_least_as_good: 1 when the 95 % interval of the distilled policy's "
             "paired gain over the privileged one reaches 0 or above and its violations ratio is at most 1.")
    return {k: v for k, v in metrics.items() if v is not None}, notes


# Minutes of riding and training; more on a loaded machine than pytest's 600 s default.
@pytest.mark.timeout(3600)
def test_teacher(teacher, bench_result, tmp_path):
    from motocoach.training.teacher.analyse import corner_rank_agreement
    from motocoach.training.teacher.distill import eval_tracks
    from motocoach.training.teacher.model import TEACHER_PRESETS, TeacherNet, load_teacher, n_params
    from motocoach.training.teacher.predict import Teacher

    net, extra = load_teacher(teacher)
    tracks = eval_tracks(DATA)
    rank = corner_rank_agreement(Teacher(net, extra), tracks, riders=RANK_RIDERS, seeds=RANK_SEEDS)
    distilled, distill_notes = distillation(teacher, tmp_path)
    m = extra["metrics"]
    st = extra["data_stats"]
    metrics = {
        "params": n_params(net),
        "params_reference": n_params(TeacherNet(TEACHER_PRESETS["reference"])),
        "val_throttle_mae": m["val_throttle_mae"],
        "val_brake_mae": m["val_brake_mae"],
        "val_roll_mae_deg": m["val_roll_mae_deg"],
        "val_speed_mae_mps": m["val_speed_mae_mps"],
        "val_sector_mae_s": m["val_sector_mae_s"],
        "brake_onset_err_median_s": m["brake_onset_err_median_s"],
        "brake_onset_missed_frac": m["brake_onset_missed_frac"],
        "brake_onset_err_median_hit_s": m["brake_onset_err_median_hit_s"],
        "brake_onsets": m["brake_onsets"],
        "train_minutes_small_preset": extra["train_minutes"],
        "expert_data_minutes": extra["data_minutes"],
        "epochs_run": extra["epochs_run"],
        "laps_ridden": st["laps_ridden"],
        "laps_kept": st["laps_kept"],
        "train_windows": extra["train_windows"],
        "val_windows": extra["val_windows"],
        "corner_rank_agreement": rank["corner_rank_agreement"],
        "corner_rank_baseline_slowest_segment": rank["baseline_slowest_segment"],
        "corner_rank_baseline_tightest_corner": rank["baseline_tightest_corner"],
        "corner_rank_baseline_chance": rank["baseline_chance"],
        "corner_rank_laps": rank["laps"],
        **distilled,
    }
    command = ("MOTOCOACH_TEACHER=<teacher.pt of motocoach teacher train's defaults> pytest bench/test_teacher.py"
               if os.environ.get("MOTOCOACH_TEACHER") else "make bench")
    bench_result("teacher", "host", metrics, command=command, notes=(
        f"Simulated rides and training on the host (CPU, one torch thread). Small preset, "
        f"`motocoach teacher train` defaults: pro laps on {', '.join(st['config']['vehicles'])}, "
        f"{len(extra['split']['train'])} training circuits ({', '.join(extra['split']['train'])}), "
        f"validation circuits {', '.join(extra['split']['val'])} (split by track); "
        f"{st['laps_kept']} of {st['laps_ridden']} laps kept ({100 * st['keep_fraction']:.0f} % fastest "
        f"per track and vehicle). {extra['epochs_run']} epochs, stopped by {extra['stopped']}. Errors are over "
        f"every validation window, physical units, all 20 horizon steps; brake onset = the expert's brake "
        f"crossing 0.1 within the next second from below, a prediction that never crosses counts 1 s "
        f"(brake_onset_missed_frac; brake_onset_err_median_hit_s is the median without them); "
        f"goal brake_onset_err_median_s <= {ONSET_GOAL_S} "
        f"({'met' if m['brake_onset_err_median_s'] <= ONSET_GOAL_S else 'missed'}). "
        f"train_minutes_small_preset = optimisation only; expert_data_minutes = riding the laps. "
        f"corner_rank_agreement: of the 3 corners the teacher names on the first full lap of an uncoached "
        f"simulated ride, how many are among the 3 where the simulator's pro on the rider's vehicle gains "
        f"most; {rank['laps']} laps ({', '.join(Path(t).stem for t in tracks)}; {', '.join(RANK_RIDERS)}; "
        f"seeds {list(RANK_SEEDS)}); goal >= {RANK_GOAL} "
        f"({'met' if rank['corner_rank_agreement'] >= RANK_GOAL else 'missed'}); the baselines rank by the "
        f"rider's slowest segments, the tightest corners, and chance. " + distill_notes))
    assert extra["epochs_run"] >= 1 and m["val_windows"] > 0
