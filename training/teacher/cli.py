"""``motocoach teacher train | evaluate``: the expert-action teacher (docs/teacher.md).

Thin wrappers over :func:`~.fit.train_teacher` and :func:`~.fit.evaluate_teacher`; heavy
imports stay inside the verbs. Other teacher verbs live in the modules of
:data:`SUBCOMMAND_MODULES`, each with a ``register(teacher_app)``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()

#: Where the verbs write and look for the teacher unless told otherwise.
DEFAULT_OUT = Path("runs") / "teacher"
DEFAULT_TEACHER = DEFAULT_OUT / "teacher.pt"
#: Modules adding more verbs to the ``teacher`` group (each defines ``register(teacher_app)``).
SUBCOMMAND_MODULES: list[str] = ["motocoach.training.teacher.analyse_cli", "motocoach.training.teacher.distill_cli"]

METRIC_LABELS = {
    "val_throttle_mae": "throttle MAE (0..1)",
    "val_brake_mae": "brake MAE (0..1)",
    "val_roll_mae_deg": "lean MAE (deg)",
    "val_speed_mae_mps": "speed MAE (m/s)",
    "brake_onset_err_median_s": "brake onset error, median (s)",
    "brake_onset_missed_frac": "brake onsets the teacher missed (fraction)",
    "brake_onset_err_median_hit_s": "brake onset error, median of those predicted (s)",
    "brake_onsets": "brake onsets in the windows",
    "val_sector_mae_s": "sector time MAE (s)",
    "val_windows": "validation windows",
}


def metrics_table(metrics: dict, title: str) -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            v = metrics[key]
            t.add_row(label, f"{v:d}" if isinstance(v, int) else f"{v:.4g}")
    return t


def register(app: typer.Typer) -> None:
    teacher_app = typer.Typer(help="The expert-action teacher: train it on expert laps, evaluate it "
                                   "(docs/teacher.md).", no_args_is_help=True)
    app.add_typer(teacher_app, name="teacher")

    @teacher_app.command("train")
    def train_cmd(
        preset: str = typer.Option("small", help="small | reference (the reference design's sizes)."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder for teacher.pt, checkpoint.pt, expert.npz, tb/."),
        epochs: int = typer.Option(None, help="Most epochs (default 24); early stopping may end sooner."),
        seed: int = typer.Option(0, help="Seed of the weights and the window order."),
        real_data: Optional[Path] = typer.Option(None, "--real-data", help="Folder holding tracks/ with Silverstone "
                                                 "and Nuerburgring (default: $MOTOCOACH_REAL_DATA or ../shared/data); "
                                                 "ridden when found."),
        logs: Optional[list[Path]] = typer.Option(None, "--logs", help="A ride log (RaceChrono, AiM, expert CSV) "
                                                  "whose valid laps join the expert set; repeat."),
        log_track: Optional[str] = typer.Option(None, "--log-track", help="Circuit CSV of the logs (default: built "
                                                "from the logged laps)."),
        log_vehicle: str = typer.Option("roadsport", "--log-vehicle", help="Vehicle profile of the logs."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT/checkpoint.pt when present."),
        max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0.0,
                                                    help="Stop before an epoch that would end past this training time."),
    ) -> None:
        """Ride the expert laps, then train the teacher with early stopping on the validation tracks.

        A killed run continues where it stopped when started again with the same options.

        Example: motocoach teacher train --preset small --out runs/teacher --max-minutes 10

        Example: motocoach teacher train --logs my_best_day.csv --log-track my_track.csv
        """
        from motocoach.errors import ConfigError, RideLogError
        from motocoach.training.teacher.fit import DEFAULT_EPOCHS, train_teacher
        from motocoach.training.teacher.model import get_teacher_preset, load_teacher

        get_teacher_preset(preset)           # a bad preset fails before minutes of riding
        for p in logs or []:
            if not p.is_file():
                raise RideLogError(f"cannot read the log {p}: no such file")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder")
        path = train_teacher(out, preset=preset, epochs=epochs or DEFAULT_EPOCHS, seed=seed, resume=resume,
                             progress=True, max_minutes=max_minutes, real_data=real_data, logs=logs or [],
                             log_track=log_track, log_vehicle=log_vehicle)
        _, extra = load_teacher(path)
        st = extra["data_stats"]
        console.print(f"expert laps: kept {st['laps_kept']} of {st['laps_ridden']} ridden "
                      f"({100 * st['keep_fraction']:.0f} % fastest per track and vehicle)"
                      + (f", plus {st['log_laps_added']} valid log laps" if st.get("log_laps_added") else ""))
        console.print(f"split by track: train {', '.join(extra['split']['train'])}; "
                      f"validation {', '.join(extra['split']['val'])}")
        console.print(f"{extra['epochs_run']} epochs ({extra['stopped']}), best epoch {extra['best_epoch']}, "
                      f"{extra['train_minutes']:.1f} min training + {extra['data_minutes']:.1f} min riding")
        console.print(metrics_table(extra["metrics"], "validation tracks (simulated on host)"))
        console.print(f"wrote {path}; TensorBoard: tensorboard --logdir {out / 'tb'}")

    @teacher_app.command("evaluate")
    def evaluate_cmd(
        teacher: Path = typer.Option(DEFAULT_TEACHER, "--teacher", help="teacher.pt to evaluate."),
        real_data: Optional[Path] = typer.Option(None, "--real-data", help="Real-circuit data folder, if the "
                                                 "validation circuits must be ridden again."),
    ) -> None:
        """Errors of the teacher on its validation tracks; writes evaluation.json next to it.

        Example: motocoach teacher evaluate --teacher runs/teacher/teacher.pt
        """
        from motocoach.training.sweep import strict_json
        from motocoach.training.teacher.fit import evaluate_teacher

        metrics = evaluate_teacher(teacher, real_data=real_data, progress=True)
        console.print(metrics_table(metrics, f"{teacher}: validation tracks (simulated on host)"))
        out = teacher.with_name("evaluation.json")
        out.write_text(json.dumps(strict_json({"teacher": str(teacher), "where": "host", "metrics": metrics}),
                                  indent=2, allow_nan=False) + "\n")
        console.print(f"wrote {out}")

    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(teacher_app)
