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
    data_app = typer.Typer(help="Simulated rider datasets (Minari).", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @data_app.command("generate")
    def data_generate(
        root: Path = typer.Option(DEFAULT_DATA, help="Folder that holds the Minari datasets."),
        preset: str = typer.Option("demo", help="test | demo | default"),
        seed: int = typer.Option(0, help="Seed; the same seed gives the same datasets."),
    ) -> None:
        """Ride the simulator and write pro and expert-coached amateur datasets.

        Example: motocoach data generate --root runs/data --preset demo --seed 0
        """
        from motocoach.training import datasets

        ids = datasets.generate(root, preset=preset, seed=seed, progress=True)
        x = datasets.load_telemetry(root, ids)
        console.print(f"wrote {', '.join(ids)} under {root} ({len(x)} telemetry rows)")
