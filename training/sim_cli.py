"""``motocoach sim ...``: the simulator against real circuits, reference laps, circuit statistics.

Heavy imports stay inside the verbs so ``motocoach --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from motocoach.training import DEFAULT_REAL_DATA

console = Console()


def register(app: typer.Typer) -> None:
    sim_app = typer.Typer(help="Rider simulator: validation, reference laps, circuit statistics.",
                          no_args_is_help=True)
    app.add_typer(sim_app, name="sim")

    @sim_app.command("validate")
    def validate_cmd(
        data: Path = typer.Option(DEFAULT_REAL_DATA, "--data",
                                  help="Folder with tracks/, lap_records.csv and club_laps.csv (default: $MOTOCOACH_REAL_DATA, else ../shared/data)."),
        rides: int = typer.Option(8, min=1, max=256, help="Seeded flying laps per circuit."),
        seed: int = typer.Option(0, help="Base seed."),
        as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    ) -> None:
        """Ride the pro profile on each record's circuit and vehicle; compare with the record.

        Example: motocoach sim validate --data ../shared/data --rides 8
        """
        from motocoach.errors import MotoCoachError
        from motocoach.training.validation import validate

        try:
            report = validate(data, rides=rides, seed=seed, progress=not as_json)
        except (MotoCoachError, KeyError, ValueError) as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
        if as_json:
            print(json.dumps(report, indent=2))
            return
        t = Table(title=f"simulated on host: pro profile, {rides} flying laps per circuit")
        for col in ("circuit", "vehicle", "record s", "reference lap s", "pro lap s", "error %", "line dev mean/max m"):
            t.add_column(col)
        for name, c in report["circuits"].items():
            dev = (f"{c['raceline_mean_dev_m']:.2f} / {c['raceline_max_dev_m']:.2f}"
                   if "raceline_mean_dev_m" in c else "-")
            t.add_row(name, c["vehicle"], f"{c['record_s']:.3f}", f"{c['reference_lap_s']:.2f}",
                      f"{c['pro_lap_s']:.2f}", f"{c['lap_error_pct']:+.2f}", dev)
        console.print(t)
        if report["club"]:
            t = Table(title="club riders: real laps vs our profiles")
            for col in ("circuit", "real rider", "real lap s", "profile on vehicle", "sim lap s", "diff %"):
                t.add_column(col)
            for c in report["club"]:
                t.add_row(c["circuit"], c["real_rider"], f"{c['real_lap_s']:.1f}",
                          f"{c['profile']} on {c['vehicle']}", f"{c['sim_lap_s']:.1f}", f"{c['diff_pct']:+.1f}")
            console.print(t)
        m = report["metrics"]
        console.print(f"max |error| {m['lap_error_pct_max_abs']:.2f} % (goal 5 %); lap time change when the "
                      f"physics step is halved {m['substep_sensitivity_pct']:.3f} % (goal < 0.1 %)")

    @sim_app.command("reference")
    def reference_cmd(
        track: str = typer.Option(..., help="Track name or CSV path."),
        vehicle: str = typer.Option("superbike", help="Vehicle profile name or TOML path."),
        rider: list[str] = typer.Option(None, help="Also ride these rider profiles (flying laps); repeat."),
        rides: int = typer.Option(8, min=1, max=256, help="Seeded laps per rider."),
    ) -> None:
        """The vehicle's limit lap (quasi-steady-state) on a track, and riders' laps next to it.

        Example: motocoach sim reference --track my_circuit.csv --vehicle roadsport --rider amateur
        """
        import numpy as np

        from motocoach.errors import MotoCoachError
        from motocoach.training.reflap import reference_lap
        from motocoach.training.tracks import get_track
        from motocoach.training.validation import flying_laps
        from motocoach.training.vehicles import get_vehicle

        try:
            t, v = get_track(track), get_vehicle(vehicle)
            ref = reference_lap(t, v)
            console.print(f"{t.name}: {t.length_m / 1000:.3f} km on the racing line; {v.name} limit lap "
                          f"{ref.lap_time_s:.2f} s (top {ref.v.max() * 3.6:.0f} km/h, slowest "
                          f"{ref.v.min() * 3.6:.0f} km/h); simulated on host")
            for r in rider or []:
                laps = flying_laps(t, r, vehicle, rides=rides)
                done = laps[np.isfinite(laps)]
                if len(done) == 0:
                    console.print(f"  {r}: no lap finished in {rides} rides (all left the track)")
                    continue
                console.print(f"  {r}: {done.mean():.2f} s mean, {done.max():.2f} s worst "
                              f"({100 * (done.mean() / ref.lap_time_s - 1):+.1f} % on the limit lap; "
                              f"{len(done)}/{rides} finished)")
        except MotoCoachError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None

    @sim_app.command("stats")
    def stats_cmd(
        track: list[str] = typer.Argument(..., help="Track names or CSV paths."),
    ) -> None:
        """Corner radii, straight lengths and widths of circuits, side by side.

        Example: motocoach sim stats kestrel ../shared/data/tracks/BrandsHatch.csv
        """
        from motocoach.errors import MotoCoachError
        from motocoach.training.trackgen import circuit_stats
        from motocoach.training.tracks import get_track

        t = Table(title="circuit statistics (racing line; corners = apexes)")
        rows = []
        try:
            for name in track:
                rows.append((get_track(name).name, circuit_stats(get_track(name))))
        except MotoCoachError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
        t.add_column("statistic")
        for name, _ in rows:
            t.add_column(name, justify="right")
        for k in rows[0][1]:
            t.add_row(k.replace("_", " "), *(f"{s[k]:.0f}" for _, s in rows))
        console.print(t)
