"""Distilling the teacher into the unit's policy, and the four-way comparison.

:func:`generate_teacher_datasets` rides the same amateur laps as
``motocoach/amateur-coached-v0`` (same tracks, sizes and seeds of the data preset) but coached
in the loop by :class:`~motocoach.training.teacher.labels.TeacherCoach`, and writes them as
:data:`TEACHER_DATASET_ID`, next to the uncoached pro laps ``motocoach/pro-v0``; only the
labeller differs. :func:`distill` then runs today's training (:func:`~motocoach.training.train.train`:
BC of the schema-input ``CoachActor``, then PPO) on those two datasets, so nothing privileged
enters the policy's making.

:func:`compare` rides the same paired seeds and circuits with no coach, the telemetry-only
rule coach, the privileged-coach-labelled policy and the teacher-labelled policy, and gives
each coach's paired gain over no coach (95 % interval), violations ratio and cue duty.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from motocoach.errors import ConfigError, DatasetError
from motocoach.training.datasets import (PRESETS as DATA_PRESETS, TRAIN_TRACKS, ride_episodes, minari_root,
                                         ride_seed, write_dataset)
from motocoach.training.teacher.labels import TeacherCoach, TeacherRules
from motocoach.training.teacher.predict import Teacher

TEACHER_DATASET_ID = "motocoach/amateur-teacher-v0"
PRO_DATASET_ID = "motocoach/pro-v0"
DISTILL_DATASET_IDS = (PRO_DATASET_ID, TEACHER_DATASET_ID)
#: the circuits the comparison rides: held-out generated tracks, plus these real circuits
#: (file stems under the real-circuit data folder's tracks/) when present
EVAL_TRACKS = ("falcon", "merlin")
EVAL_REAL_TRACKS = ("BrandsHatch", "Catalunya")
#: coach names in the comparison, in table order
COACHES = ("none", "telemetry-rule", "privileged", "distilled")
#: label thresholds tried by :func:`choose_rules`, on the training tracks with this base seed
#: (the comparison rides other circuits from base seed 1234; data preset seed 0 rides seeds 0..102)
RULE_GRID = {"slow_usage": (0.85, 0.92), "push_speed_ratio": (1.02, 1.05),
             "push_throttle_margin": (0.15, 0.30)}
TUNE_SEED = 777


def check_teacher_unseen(teacher: Teacher, tracks: list[str]) -> None:
    """A clear error when the teacher saw one of the evaluation ``tracks`` (or does not say)."""
    seen = teacher.tracks
    if not seen:
        raise ConfigError("the teacher checkpoint does not list the tracks it trained on, so it cannot be "
                          "shown to be clear of the evaluation circuits; train it with `motocoach teacher train`")
    clash = sorted(seen & {Path(t).stem for t in tracks})
    if clash:
        raise ConfigError(f"the teacher trained on {', '.join(clash)}, which the comparison evaluates on; "
                          "train a teacher without them (or evaluate on other circuits)")


def generate_teacher_datasets(root: Path, teacher: Teacher, *, preset: str = "demo", seed: int = 0,
                              rules: TeacherRules = TeacherRules(), progress: bool = True) -> list[str]:
    """Write ``motocoach/pro-v0`` and :data:`TEACHER_DATASET_ID` under ``root`` with the tracks,
    ride counts, step caps and seeds of data preset ``preset`` (those of ``datasets.generate``)."""
    from rich.progress import Progress

    if preset not in DATA_PRESETS:
        raise DatasetError(f"unknown data preset {preset!r}; use one of {', '.join(DATA_PRESETS)}")
    p = DATA_PRESETS[preset]
    jobs = ((PRO_DATASET_ID, "pro", 0, None), (TEACHER_DATASET_ID, "amateur", 1,
                                                lambda track: TeacherCoach(teacher, track, rules)))
    with minari_root(root), Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("riding", total=len(jobs) * len(p.tracks))
        for ds_id, rider, job, factory in jobs:
            episodes = []
            for t_i, track in enumerate(p.tracks):
                bar.update(task, description=f"{ds_id}: {track}")
                episodes += ride_episodes(track, rider, p.rides_per_track, p.max_steps,
                                           seed=ride_seed(seed, job, t_i), coached=factory is not None,
                                           track_index=t_i, coach_factory=factory)
                bar.advance(task)
            write_dataset(ds_id, episodes, rider=rider, algorithm="teacher-coach" if factory else "no-coach",
                          preset=preset, seed=seed, tracks=p.tracks)
    return [j[0] for j in jobs]


def distill(out_dir: Path, teacher_path: Path, *, preset: str = "demo", data_preset: str = "demo",
            data_root: Path | None = None, seed: int = 0, progress: bool = True,
            rules: TeacherRules = TeacherRules(), real_data: Path | None = None) -> Path:
    """Teacher-labelled datasets, then BC + PPO (training preset ``preset``); returns ``policy.pt``.

    Writes ``policy.pt``, ``bc_policy.pt``, ``policy.json`` and ``distill.json`` (teacher,
    rules, datasets) into ``out_dir``; the datasets go to ``data_root`` (default
    ``out_dir/data``). A teacher that trained on a comparison circuit (:data:`EVAL_TRACKS`,
    :data:`EVAL_REAL_TRACKS`) or does not say which tracks it trained on is an error."""
    from motocoach.training.train import get_preset, train

    get_preset(preset)                        # a bad name fails before minutes of riding
    teacher = Teacher.load(teacher_path)
    check_teacher_unseen(teacher, [*EVAL_TRACKS, *EVAL_REAL_TRACKS])
    out_dir = Path(out_dir)
    root = Path(data_root) if data_root is not None else out_dir / "data"
    ids = generate_teacher_datasets(root, teacher, preset=data_preset, seed=seed, rules=rules, progress=progress)
    policy = train(out_dir, preset=preset, dataset_root=root, seed=seed, progress=progress,
                   real_data=real_data, dataset_ids=ids)
    (out_dir / "distill.json").write_text(json.dumps({
        "teacher": str(teacher_path), "teacher_tracks": sorted(teacher.tracks),
        "rules": asdict(rules), "datasets": ids, "dataset_root": str(root), "data_preset": data_preset,
        "preset": preset, "seed": seed}, indent=2) + "\n")
    return policy


def eval_tracks(real_data: Path | None = None) -> list[str]:
    """The comparison's circuits: :data:`EVAL_TRACKS` plus the :data:`EVAL_REAL_TRACKS` found under
    ``real_data``/tracks (default the training real-circuit folder)."""
    from motocoach.training.train import DEFAULT_REAL_DATA

    folder = Path(real_data or DEFAULT_REAL_DATA) / "tracks"
    real = [str(folder / f"{t}.csv") for t in EVAL_REAL_TRACKS if (folder / f"{t}.csv").is_file()]
    return [*EVAL_TRACKS, *real]


def compare(privileged: Path, distilled: Path, *, tracks: list[str], rider: str = "amateur", seeds: int = 32,
            seed: int = 0, progress: bool = True) -> tuple[dict, list]:
    """Ride :data:`COACHES` on the same seeds of every track; returns (summary per coach, results).

    The summary holds, per coach other than ``none``: ``gain_pct``, ``ci95_low_pct``,
    ``ci95_high_pct``, ``pairs``, ``violations_ratio`` (None when no coach had violations
    there) and ``cue_duty`` over the finished rides; ``distilled_vs_privileged`` is the
    distilled policy's paired gain over the privileged one. A teacher that trained on one of
    ``tracks`` (``distill.json`` beside ``distilled``) is an error."""
    from rich.progress import Progress

    from motocoach.training.evaluate import evaluate_coach, paired_gain, paired_violations_ratio

    for name, path in (("privileged", privileged), ("distilled", distilled)):
        if not Path(path).is_file():
            raise ConfigError(f"no {name} policy at {path}; train it first (see `motocoach teacher distill --help`)")
    if seeds < 2:
        raise ConfigError("give at least 2 seeds: the interval needs two paired rides")
    meta = Path(distilled).with_name("distill.json")
    if meta.is_file():   # written by distill(): the teacher's tracks
        clash = sorted(set(json.loads(meta.read_text()).get("teacher_tracks", [])) & {Path(t).stem for t in tracks})
        if clash:
            raise ConfigError(f"the distilled policy's teacher trained on {', '.join(clash)}; compare on "
                              "circuits it never saw")
    kinds = {"none": ("none", None), "telemetry-rule": ("telemetry-rule", None),
             "privileged": ("bc+ppo", Path(privileged)), "distilled": ("bc+ppo", Path(distilled))}
    results = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("comparing", total=len(tracks) * len(kinds))
        for track in tracks:
            for name, (kind, policy) in kinds.items():
                bar.update(task, description=f"{name} on {Path(track).stem}")
                r = evaluate_coach(kind, track=track, rider=rider, seeds=seeds, seed=seed, policy=policy)
                results.append(replace(r, coach=name))
                bar.advance(task)
    summary = {}
    for name in COACHES[1:]:
        mine = [r for r in results if r.coach == name and r.completed]
        duty = (sum(r.cue_duty * r.completed for r in mine) / sum(r.completed for r in mine)) if mine else None
        summary[name] = {**paired_gain(results, name), "violations_ratio": paired_violations_ratio(results, name),
                         "cue_duty": duty}
    # the distilled policy against the privileged one, seed by seed
    summary["distilled_vs_privileged"] = paired_gain(results, "distilled", baseline="privileged")
    return summary, results


def at_least_as_good(summary: dict) -> bool | None:
    """The rule for switching the default policy: the distilled policy is not slower than the
    privileged one within the 95 % interval of their paired difference (same seeds), and it
    causes no more violations than no coach. None if there are no paired rides."""
    d = summary.get("distilled", {})
    vs = summary.get("distilled_vs_privileged", {})
    if not vs.get("pairs"):
        return None
    ratio = d.get("violations_ratio")
    return bool(vs["ci95_high_pct"] >= 0.0 and (ratio is None or ratio <= 1.0))


def write_comparison(path: Path, summary: dict, results: list, **meta) -> Path:
    """The comparison as strict JSON: meta, the summary, and every (coach, track) cell."""
    from motocoach.training.sweep import strict_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "summary": summary, "distilled_at_least_as_good": at_least_as_good(summary),
           "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(strict_json(doc), indent=2, allow_nan=False) + "\n")
    return path


def choose_rules(teacher: Teacher, *, tracks: tuple[str, ...] = TRAIN_TRACKS, rider: str = "amateur",
                 seeds: int = 16, seed: int = TUNE_SEED, grid: dict | None = None,
                 progress: bool = True) -> tuple[TeacherRules, list[dict]]:
    """The :class:`TeacherRules` of ``grid`` (default :data:`RULE_GRID`) whose live coach gives the
    largest paired lap-time gain over no coach on ``tracks`` without more violations (if none
    manages that, the one with the fewest); returns it and every candidate's figures. Never
    run it on the comparison's circuits or seeds."""
    import itertools

    from rich.progress import Progress

    from motocoach.training.evaluate import paired_laps_gain, ride_laps
    from motocoach.training.tracks import get_track

    grid = grid or RULE_GRID
    built = [get_track(t) for t in tracks]
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    rows: list[dict] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("choosing label thresholds", total=len(built) * (len(combos) + 1))
        base = []
        for track in built:
            base.append(ride_laps(track, rider, lambda sim: np.zeros((sim.n, 3)), seeds, seed)[0])
            bar.advance(task)
        for combo in combos:
            rules = replace(TeacherRules(), **combo)
            laps, base_laps, viol, base_viol = [], [], 0.0, 0.0
            for track, b in zip(built, base):
                r = ride_laps(track, rider, TeacherCoach(teacher, track, rules), seeds, seed)[0]
                both = np.isfinite(r["lap"]) & np.isfinite(b["lap"])
                laps.append(r["lap"])
                base_laps.append(b["lap"])
                viol += float(r["viol_s"][both].sum())
                base_viol += float(b["viol_s"][both].sum())
                bar.advance(task)
            g = paired_laps_gain(np.concatenate(base_laps), np.concatenate(laps))
            rows.append({**combo, **g, "violations_ratio": viol / base_viol if base_viol else None})
    paired = [r for r in rows if r.get("pairs")]
    if not paired:
        return TeacherRules(), rows
    ratio = [r["violations_ratio"] if r["violations_ratio"] is not None else 0.0 for r in paired]
    ok = [r for r, v in zip(paired, ratio) if v <= 1.0]
    best = (max(ok, key=lambda r: r["gain_pct"]) if ok
            else paired[min(range(len(paired)), key=ratio.__getitem__)])
    return replace(TeacherRules(), **{k: best[k] for k in grid}), rows
