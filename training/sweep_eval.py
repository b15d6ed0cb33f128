"""``motocoach evaluate`` as a sweep: one evaluate job per coach x track x rider.

Each job is the same :func:`~motocoach.training.evaluate.evaluate_coach` call the in-process
evaluation makes, with the same seeds, so the results are the same wherever the jobs run.
The results go to ``evaluation.json`` (the in-process format) and, job by job, to
``jobs.jsonl`` in the output folder, which ``--resume`` reads back.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

from motocoach.training.evaluate import coach_kinds
from motocoach.training.sweep import Job, ResultStore, SweepReport, evaluate_job, run_sweep

STORE_NAME = "jobs.jsonl"


def evaluation_jobs(*, policy: Path | None, tracks: list[str], riders: list[str], seeds: int, seed: int,
                    vehicle: str | None = None, bc_policy: Path | None = None) -> list[Job]:
    """Every coach x track x rider, in the in-process evaluation's order."""
    return [evaluate_job(kind, track=track, rider=rider, seeds=seeds, seed=seed, policy=path, vehicle=vehicle)
            for track in tracks for rider in riders for kind, path in coach_kinds(policy, bc_policy)]


def as_coach_result(result: dict):
    """A job's result back as a CoachResult: lists become tuples and null becomes NaN again
    (see :func:`~motocoach.training.sweep.strict_json`); unknown keys are dropped."""
    from motocoach.training.evaluate import CoachResult

    def value(v):
        if isinstance(v, list):
            return tuple(math.nan if e is None else e for e in v)
        return math.nan if v is None else v

    names = {f.name for f in fields(CoachResult)}
    return CoachResult(**{k: value(v) for k, v in result.items() if k in names})


def evaluate_sweep(*, policy: Path | None, tracks: list[str], riders: list[str], seeds: int, seed: int,
                   out_dir: Path, executor, vehicle: str | None = None, resume: bool = False,
                   progress: bool = True) -> tuple[list, SweepReport]:
    """Run the evaluation as a sweep on ``executor``; returns (CoachResults in job order, report).

    Writes ``evaluation.json`` and the plots of the in-process evaluation into ``out_dir``, for
    the jobs that finished (the cue map and speed plot once every job has).
    """
    jobs = evaluation_jobs(policy=policy, tracks=tracks, riders=riders, seeds=seeds, seed=seed, vehicle=vehicle)
    out = Path(out_dir)
    store = ResultStore(out / STORE_NAME, resume=resume)
    report = run_sweep(jobs, executor, store=store, progress=progress, title="evaluating")
    results = [as_coach_result(r) for r in report.ordered()]
    (out / "evaluation.json").write_text(json.dumps(
        {"seeds": seeds, "seed": seed, "policy": str(policy) if policy else None,
         "results": report.ordered()}, indent=2, allow_nan=False) + "\n")
    if results and len(results) == len(jobs):
        from motocoach.training.evaluate import write_plots

        write_plots(results, out, kinds=coach_kinds(policy), track=tracks[0], rider=riders[0], seed=seed,
                    vehicle=vehicle)
    elif results:
        from motocoach.training.plots import plot_lap_times

        plot_lap_times(results, out / "lap_times.png")
    return results, report
