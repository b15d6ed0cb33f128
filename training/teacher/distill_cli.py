"""``motocoach teacher distill`` and ``motocoach teacher compare``.

Thin wrappers over :mod:`motocoach.training.teacher.distill`; heavy imports stay inside the
verbs. ``register(teacher_app)`` adds them to the ``motocoach teacher`` group.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from motocoach.training.teacher.cli import DEFAULT_TEACHER

console = Console()

DEFAULT_OUT = Path("runs") / "distilled"
DEFAULT_COMPARE = Path("runs") / "compare"


def _fail(e: Exception) -> None:
    console.print(f"[red]error:[/] {e}")
    raise typer.Exit(2) from None


def _pct(g: dict) -> tuple[str, str]:
    if not g.get("pairs"):
        return "no paired laps", "-"
    return f"{g['gain_pct']:+.2f}", f"{g['ci95_low_pct']:+.2f} .. {g['ci95_high_pct']:+.2f}"


def register(teacher_app: typer.Typer) -> None:
    @teacher_app.command("distill")
    def distill_cmd(
        teacher: Path = typer.Option(DEFAULT_TEACHER, "--teacher", help="Trained teacher (teacher.pt)."),
        preset: str = typer.Option("demo", help="Data and training preset: test | demo | default."),
        data: Path = typer.Option(None, "--data", help="Folder for the Minari datasets (default OUT/data)."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Run folder for policy.pt and distill.json."),
        seed: int = typer.Option(0, help="Seed of the rides, BC and PPO (the privileged run's, to compare)."),
        real_data: Path = typer.Option(None, help="Folder holding tracks/ when the preset also trains on real "
                                       "circuits (default: $MOTOCOACH_REAL_DATA or ../shared/data)."),
    ) -> None:
        """Teacher-coached amateur rides as labels, then BC + PPO of the unit's policy.

        The amateur rides are those of `motocoach data generate` (same tracks, sizes, seeds);
        only the labeller differs: the teacher, which sees only telemetry, lap position and
        the vehicle. Writes policy.pt, bc_policy.pt, policy.json and distill.json into --out.

        Example: motocoach teacher distill --teacher runs/teacher/teacher.pt --preset demo --out runs/distilled
        """
        from motocoach.errors import MotoCoachError
        from motocoach.training.teacher.distill import distill

        try:
            path = distill(out, teacher, preset=preset, data_preset=preset, data_root=data, seed=seed,
                           progress=True, real_data=real_data)
        except MotoCoachError as e:
            _fail(e)
        meta = json.loads((out / "distill.json").read_text())
        console.print(f"wrote {path} (teacher trained on {', '.join(meta['teacher_tracks']) or 'unlisted tracks'})")

    @teacher_app.command("compare")
    def compare_cmd(
        privileged: Path = typer.Option(..., "--privileged", help="policy.pt trained on the privileged coach's "
                                        "labels (`motocoach train`)."),
        distilled: Path = typer.Option(..., "--distilled", help="policy.pt from `motocoach teacher distill`."),
        track: list[str] = typer.Option(None, "--track", help="Track name or CSV path; repeat. Default: falcon, "
                                        "merlin and the real BrandsHatch and Catalunya when present."),
        rider: str = typer.Option("amateur", help="Rider profile name or JSON path."),
        seeds: int = typer.Option(32, min=2, max=4096, help="Paired rides per coach and track."),
        seed: int = typer.Option(1234, help="Base seed (not one the training data used)."),
        out: Path = typer.Option(DEFAULT_COMPARE, "--out", help="Folder for comparison.json."),
        real_data: Path = typer.Option(None, help="Folder holding tracks/ with the real circuits "
                                       "(default: $MOTOCOACH_REAL_DATA or ../shared/data)."),
    ) -> None:
        """No coach vs telemetry rule coach vs privileged-labelled vs teacher-labelled policy.

        Every coach rides the same seeds on every circuit; gains are over no coach on the rides
        both finished, with a 95 % interval. The teacher (named in distill.json beside
        --distilled) must not have trained on the circuits compared.

        Example: motocoach teacher compare --privileged runs/demo/policy.pt --distilled runs/distilled/policy.pt --seeds 32
        """
        from rich.table import Table

        from motocoach.errors import MotoCoachError
        from motocoach.training.teacher.distill import at_least_as_good, compare, eval_tracks, write_comparison

        try:
            tracks = list(track) if track else eval_tracks(real_data)
            summary, results = compare(privileged, distilled, tracks=tracks, rider=rider, seeds=seeds, seed=seed,
                                       progress=True)
        except MotoCoachError as e:
            _fail(e)
        t = Table(title=f"simulated on host: {rider}, {seeds} paired seeds x {len(tracks)} circuits "
                        f"({', '.join(Path(x).stem for x in tracks)})")
        for col in ("coach", "gain % vs none", "95 % CI", "paired laps", "violations ratio", "cue duty"):
            t.add_column(col)
        for name in ("telemetry-rule", "privileged", "distilled"):
            s = summary[name]
            gain, ci = _pct(s)
            ratio = "-" if s["violations_ratio"] is None else f"{s['violations_ratio']:.2f}"
            duty = "-" if s["cue_duty"] is None else f"{s['cue_duty']:.2f}"
            t.add_row(name, gain, ci, str(s.get("pairs", 0)), ratio, duty)
        console.print(t)
        gain, ci = _pct(summary["distilled_vs_privileged"])
        verdict = at_least_as_good(summary)
        console.print(f"distilled vs privileged, paired: {gain} % [95 % CI {ci}]; at least as good: "
                      f"{'no paired laps' if verdict is None else ('yes' if verdict else 'no')}")
        path = write_comparison(out / "comparison.json", summary, results, privileged=str(privileged),
                                distilled=str(distilled), tracks=[Path(x).stem for x in tracks], rider=rider,
                                seeds=seeds, seed=seed)
        console.print(f"wrote {path}")
