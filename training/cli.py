"""``motocoach data generate``, ``motocoach train`` and ``motocoach evaluate``.

Thin wrappers over :mod:`motocoach.training.datasets`, :mod:`~motocoach.training.train` and
:mod:`~motocoach.training.evaluate`; heavy imports stay inside the verbs.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()

DEFAULT_DATA = Path("runs") / "data"


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Rider datasets (Minari) and riders' own ride logs.", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @data_app.command("generate")
    def data_generate(
        data: Path = typer.Option(DEFAULT_DATA, "--data", help="Folder that holds the Minari datasets."),
        preset: str = typer.Option("demo", help="test | demo | default"),
        seed: int = typer.Option(0, help="Seed; the same seed gives the same datasets."),
    ) -> None:
        """Ride the simulator and write pro and expert-coached amateur datasets.

        Example: motocoach data generate --data runs/data --preset demo --seed 0
        """
        from motocoach.training import datasets

        ids = datasets.generate(data, preset=preset, seed=seed, progress=True)
        x = datasets.load_telemetry(data, ids)
        console.print(f"wrote {', '.join(ids)} under {data} ({len(x)} telemetry rows)")

    @app.command("train")
    def train_cmd(
        run: str = typer.Option("demo", help="Run folder name under runs/ (or --run-dir)."),
        run_dir: Path = typer.Option(None, help="Explicit output folder (overrides --run)."),
        data: Path = typer.Option(DEFAULT_DATA, help="Folder with the Minari datasets."),
        preset: str = typer.Option("demo", help="test | demo | default"),
        preset_file: Path = typer.Option(None, "--preset-file", help="A preset file (JSON, as `motocoach sweep "
                                         "tune` writes) instead of --preset."),
        seed: int = typer.Option(0, help="Seed for BC and PPO."),
        real_data: Path = typer.Option(None, help="Folder holding tracks/ with the real circuits a preset "
                                       "also trains on (default: $MOTOCOACH_REAL_DATA or ../shared/data)."),
    ) -> None:
        """Behaviour cloning from the expert coach, then PPO from the BC weights.

        Writes policy.pt, bc_policy.pt, policy.json and TensorBoard logs (tb/) into the run folder.

        Example: motocoach train --run demo --data runs/data --preset demo
        (or, with a tuned preset: motocoach train --run tuned --preset-file runs/tune/best_preset.json)
        """
        from motocoach.runs import RunDir
        from motocoach.training.preset_file import load_preset_file
        from motocoach.training.train import get_preset, train

        chosen = load_preset_file(preset_file) if preset_file else get_preset(preset)
        out = run_dir or RunDir.create(run, config={"verb": "train", "preset": preset, "seed": seed,
                                                    "preset_file": str(preset_file) if preset_file else None,
                                                    "data": str(data)}).path
        path = train(out, preset=chosen if preset_file else preset, dataset_root=data, seed=seed, progress=True,
                     real_data=real_data)
        console.print(f"wrote {path} and {path.with_name('policy.json')}")

    @app.command("evaluate")
    def evaluate_cmd(
        policy: Path = typer.Option(None, help="policy.pt to evaluate (BC+PPO); bc_policy.pt beside it is added."),
        track: list[str] = typer.Option(None, help="Track name or CSV path; repeat. Default: held-out tracks."),
        rider: list[str] = typer.Option(None, help="Rider profile name or JSON path; repeat. Default: amateur + held-out riders."),
        vehicle: str = typer.Option(None, help="Vehicle profile name or TOML path for every rider "
                                                "(default: each rider's own)."),
        seeds: int = typer.Option(32, min=2, max=4096, help="Rides per coach, track and rider (the same seeds for every coach)."),
        seed: int = typer.Option(0, help="Base seed."),
        out: Path = typer.Option(Path("runs") / "eval", help="Folder for evaluation.json and plots."),
        workers: int = typer.Option(None, "--workers", min=1, help="Run the rides on a local Ray with N CPUs "
                                    "(one job per coach, track and rider; docs/scaling.md)."),
        ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                        help="Run the rides on the Ray cluster at HOST:PORT."),
        resume: bool = typer.Option(False, "--resume", help="Keep the jobs out/jobs.jsonl already holds; run the rest."),
    ) -> None:
        """Lap time, violations and cue duty: no coach vs rule-based vs BC vs BC+PPO.

        Gains are paired: every coach rides the same seeds, and the gain over no coach is
        averaged over the rides both finished, with a 95 % interval.

        With --workers, --ray-address or --resume the rides run as a sweep (the same results;
        only the lap-time plot is drawn).

        Example: motocoach evaluate --policy runs/demo/policy.pt --track my_track.csv --vehicle roadsport --rider novice

        Example: motocoach evaluate --policy runs/demo/policy.pt --seeds 64 --workers 2
        """
        from rich.table import Table

        from motocoach.errors import MotoCoachError
        from motocoach.training import datasets
        from motocoach.training.evaluate import evaluate, paired_gain, paired_violations_ratio

        tracks = list(track) if track else list(datasets.HELDOUT_TRACKS)
        riders = list(rider) if rider else ["amateur", *datasets.HELDOUT_RIDERS]
        sweep = None
        try:
            if workers is not None or ray_address or resume:
                from motocoach.training.sweep_cli import evaluate_as_sweep

                results, sweep = evaluate_as_sweep(policy=policy, tracks=tracks, riders=riders, seeds=seeds,
                                                   seed=seed, out=out, vehicle=vehicle, workers=workers,
                                                   ray_address=ray_address, resume=resume)
            else:
                results = evaluate(policy=policy, tracks=tracks, riders=riders, seeds=seeds, seed=seed,
                                   out_dir=out, progress=True, vehicle=vehicle)
        except MotoCoachError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(e.exit_code) from None
        # one vehicle goes into the title, so the table fits an 80-column terminal
        vehicles = sorted({r.vehicle for r in results})
        one = len(vehicles) == 1
        t = Table(title=f"simulated on host{f', {vehicles[0]}' if one else ''}, {seeds} rides each "
                        "(same seeds for every coach)")
        cols = ("track", "rider", *(() if one else ("vehicle",)), "coach", "lap s", "finished", "off",
                "viol s/lap", "duty")
        for col in cols:
            t.add_column(col)
        for r in results:
            # lap time, violations and duty are over the finished rides, so none without a lap
            lap, viol, duty = ((f"{r.lap_time_mean_s:.2f}", f"{r.violation_s_per_lap:.2f}", f"{r.cue_duty:.2f}")
                               if r.completed else ("no lap finished", "-", "-"))
            t.add_row(r.track, r.rider, *(() if one else (r.vehicle,)), r.coach, lap, f"{r.completed}/{r.rides}",
                      str(r.offtracks), viol, duty)
        console.print(t)
        for c in dict.fromkeys(r.coach for r in results if r.coach != "none"):
            g = paired_gain(results, c)
            if g["pairs"] == 0:
                console.print(f"{c}: no seed finished a lap both coached and uncoached; no gain can be given")
                continue
            v = paired_violations_ratio(results, c)
            console.print(f"{c}: lap-time gain over no coach {g['gain_pct']:+.2f} % "
                          f"[95 % CI {g['ci95_low_pct']:+.2f} .. {g['ci95_high_pct']:+.2f}] over {g['pairs']} paired rides"
                          + (f"; violations x{v:.2f} on the same rides" if v is not None else
                             "; no violations uncoached on those rides"))
        console.print(f"wrote {out / 'evaluation.json'} and plots")
        if sweep is not None:
            from motocoach.training.sweep_cli import finish

            finish(sweep)
