"""``motocoach sweep train`` and the sweep side of ``motocoach evaluate --workers/--ray-address``.

Thin wrappers over :mod:`motocoach.training.sweep` and its executors; Ray is imported only
when ``--workers`` or ``--ray-address`` (or ``RAY_ADDRESS``) asks for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from motocoach.errors import ConfigError
from motocoach.training.sweep import ResultStore, SweepError, SweepReport, raise_on_failures, run_sweep, train_job

console = Console()

WORKERS_HELP = "Run the jobs on a local Ray with N CPUs (default: in this process, one after the other)."
ADDRESS_HELP = "Run the jobs on the Ray cluster at HOST:PORT (also read from RAY_ADDRESS)."
RESUME_HELP = "Keep the finished jobs of an earlier run of the same sweep and run only the rest."


def print_failures(report: SweepReport) -> None:
    """List every failed job with its parameters and error (the CLI then exits non-zero)."""
    if not report.failures:
        return
    t = Table(title=f"{len(report.failures)} failed job(s)", title_style="bold red")
    t.add_column("job")
    t.add_column("parameters")
    t.add_column("error")
    for job, error in report.failures:
        t.add_row(job.hash, job.describe(), error)
    console.print(t)


def print_summary(report: SweepReport, store: ResultStore) -> None:
    console.print(f"{len(report.results)}/{len(report.jobs)} jobs finished ({report.skipped} kept from an "
                  f"earlier run), {len(report.failures)} failed, {report.seconds:.1f} s; workers: {report.workers}; "
                  f"results in {store.path}")


def evaluate_as_sweep(*, policy: Path | None, tracks: list[str], riders: list[str], seeds: int, seed: int,
                      out: Path, vehicle: str | None, workers: int | None, ray_address: str | None,
                      resume: bool):
    """``motocoach evaluate`` through the sweep layer; returns (results, report)."""
    from motocoach.training.sweep_eval import STORE_NAME, evaluate_sweep
    from motocoach.training.sweep_exec import make_executor

    executor = make_executor(workers, ray_address)
    try:
        results, report = evaluate_sweep(policy=policy, tracks=tracks, riders=riders, seeds=seeds, seed=seed,
                                         out_dir=out, executor=executor, vehicle=vehicle, resume=resume)
    finally:
        executor.close()
    print_summary(report, ResultStore(out / STORE_NAME, resume=True))
    return results, report


def finish(report: SweepReport, store: ResultStore | None = None) -> None:
    """Failures listed, then one error line and a non-zero exit status; nothing if all went well."""
    print_failures(report)
    raise_on_failures(report, store)


def register(app: typer.Typer) -> None:
    sweep_app = typer.Typer(help="Sweeps of independent jobs, in this process or on Ray (docs/scaling.md).",
                            no_args_is_help=True)
    app.add_typer(sweep_app, name="sweep")

    @sweep_app.command("train")
    def sweep_train(
        preset: str = typer.Argument(..., help="Training preset: test | demo | default."),
        seeds: int = typer.Option(3, "--seeds", min=1, max=256, help="How many seeds (first-seed, first-seed+1, ...)."),
        first_seed: int = typer.Option(0, "--first-seed", help="The first seed."),
        data: Path = typer.Option(Path("runs") / "data", "--data", help="Folder with the Minari datasets "
                                  "(on a cluster: a path every node can read)."),
        run: str = typer.Option("sweep-train", help="Run folder name under runs/; each seed trains into seed-<n>/."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help=ADDRESS_HELP),
        resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    ) -> None:
        """Train one preset with several seeds (BC then PPO each), one job per seed.

        Every seed's policy.pt lands in runs/<run>/seed-<n>/; runs/<run>/jobs.jsonl records each
        finished job as it finishes.

        Example: motocoach sweep train demo --seeds 4 --data runs/data --workers 2
        """
        from motocoach.runs import RunDir
        from motocoach.training.sweep_exec import make_executor
        from motocoach.training.train import get_preset

        get_preset(preset)  # an unknown preset is one clear error, not K failed jobs
        if not data.is_dir():
            raise ConfigError(f"--data {data}: no such folder; run `motocoach data generate --data {data}` first")
        root = RunDir.create(run, config={"verb": "sweep train", "preset": preset, "seeds": seeds,
                                          "first_seed": first_seed, "data": str(data)}).path.resolve()
        jobs = [train_job(preset, seed=s, dataset_root=data.resolve(), run_dir=root / f"seed-{s}")
                for s in range(first_seed, first_seed + seeds)]
        store = ResultStore(root / "jobs.jsonl", resume=resume)
        executor = make_executor(workers, ray_address)
        try:
            report = run_sweep(jobs, executor, store=store, title=f"training {preset}")
        finally:
            executor.close()
        t = Table(title=f"{preset}: {len(report.results)} of {len(jobs)} seeds trained")
        for col in ("seed", "policy", "sha256", "BC loss", "PPO steps"):
            t.add_column(col)
        for job in report.jobs:
            r = report.results.get(job.hash)
            if r:
                t.add_row(str(job.params["seed"]), r["policy"], r["policy_sha256"][:8], f"{r['bc_loss_last']:.4f}",
                          str(r["ppo_steps"]))
        console.print(t)
        print_summary(report, store)
        finish(report, store)

    @sweep_app.command("tune")
    def sweep_tune(
        preset: str = typer.Argument(..., help="Training preset to tune: test | demo | default."),
        samples: int = typer.Option(8, "--samples", min=1, max=512, help="How many configurations to try."),
        eval_seeds: int = typer.Option(8, "--eval-seeds", min=2, max=1024,
                                       help="Rides per training circuit and rider for each score."),
        reports: int = typer.Option(3, "--reports", min=1, max=64,
                                    help="Scores per trial (the last on the final policy); ASHA stops trials at them."),
        search_seed: int = typer.Option(0, "--search-seed", help="Seed of the sampled configurations."),
        data: Path = typer.Option(Path("runs") / "data", "--data", help="Folder with the Minari datasets "
                                  "(on a cluster: a path every node can read)."),
        real_data: Optional[Path] = typer.Option(None, "--real-data", help="Folder holding tracks/ with the "
                                                 "preset's real circuits (default: $MOTOCOACH_REAL_DATA or "
                                                 "../shared/data)."),
        run: str = typer.Option("sweep-tune", help="Run folder name under runs/; writes best_preset.json there."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                              help="CPUs of the local Ray (default: all of this machine's)."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help=ADDRESS_HELP),
    ) -> None:
        """Search PPO's learning rate, entropy coefficient and cue penalty with Ray Tune (ASHA).

        Each trial trains the preset with one configuration and is scored on the preset's own
        training circuits (never the held-out evaluation circuits); the best configuration is
        written as a preset file that `motocoach train --preset-file` reads (docs/scaling.md).

        Example: motocoach sweep tune demo --samples 8 --data runs/data --workers 2
        """
        import os

        from motocoach.runs import RunDir
        from motocoach.training.preset_file import write_preset_file
        from motocoach.training.sweep_exec import RayExecutor
        from motocoach.training.sweep_tune import OBJECTIVE, about, tune_preset
        from motocoach.training.train import get_preset

        base = get_preset(preset)
        if not data.is_dir():
            raise ConfigError(f"--data {data}: no such folder; run `motocoach data generate --data {data}` first")
        root = RunDir.create(run, config={"verb": "sweep tune", "preset": preset, "samples": samples,
                                          "eval_seeds": eval_seeds, "reports": reports,
                                          "search_seed": search_seed, "data": str(data)}).path.resolve()
        if workers is None and not ray_address:
            workers = os.cpu_count() or 1
        ray_ = RayExecutor(workers=workers, address=ray_address)      # starts or joins Ray
        try:
            result = tune_preset(base, dataset_root=data, out_dir=root, num_samples=samples, eval_seeds=eval_seeds,
                                 search_seed=search_seed, reports=reports, real_data=real_data)
        finally:
            ray_.close()
        t = Table(title=f"{preset}: {len(result['trials'])} trials (objective on the training circuits)")
        for col in ("lr", "ent_coef", "cue pen.", "seed", "scores", OBJECTIVE, "gain %", "viol. ratio", "note"):
            t.add_column(col)
        for tr in sorted(result["trials"], key=lambda x: -(x[OBJECTIVE] if x[OBJECTIVE] is not None else -1e9)):
            c = tr["config"]
            t.add_row(f"{c['learning_rate']:.2e}", f"{c['ent_coef']:.4f}", f"{c['cue_penalty']:.4f}", str(tr["seed"]),
                      str(tr["iterations"]), "-" if tr[OBJECTIVE] is None else f"{tr[OBJECTIVE]:+.2f}",
                      "-" if tr["gain_pct"] is None else f"{tr['gain_pct']:+.2f}",
                      "-" if tr["violations_ratio"] is None else f"{tr['violations_ratio']:.2f}",
                      tr["error"] or ("" if tr["final"] else "stopped by ASHA"))
        console.print(t)
        if result["best"] is None:
            raise SweepError(f"no trial trained to the end; see the table above and {root / 'ray'}")
        path = write_preset_file(root / "best_preset.json", result["preset"],
                                 **about(preset, result, eval_seeds=eval_seeds, num_samples=samples,
                                         search_seed=search_seed))
        console.print(f"best objective {result['best'][OBJECTIVE]:+.2f}; wrote {path}; train it with "
                      f"`motocoach train --preset-file {path}`")
        failed = [tr for tr in result["trials"] if tr["error"]]
        if failed:
            raise SweepError(f"{len(failed)} of {len(result['trials'])} trials failed (see the table); the best of "
                             f"the others is in {path}")
