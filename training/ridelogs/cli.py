"""``motocoach data import | quality | export``: thin verbs over :mod:`~motocoach.training.ridelogs.ingest`.

They join the ``data`` group that :mod:`motocoach.training.cli` creates (or create it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()

DEFAULT_OUT = Path("runs") / "logs"


def _data_group(app: typer.Typer) -> typer.Typer:
    for g in reversed(app.registered_groups):   # main() may build the app more than once: the newest group is live
        if g.name == "data" and g.typer_instance is not None:
            return g.typer_instance
    data_app = typer.Typer(help="Datasets and ride logs.", no_args_is_help=True)
    app.add_typer(data_app, name="data")
    return data_app


def register(app: typer.Typer) -> None:
    data_app = _data_group(app)
    track_opt = typer.Option(None, "--track", help="Circuit CSV (x_m,y_m,w_tr_right_m,w_tr_left_m) or built-in name; "
                                                   "default: built from the logged laps.")
    origin_opt = typer.Option(None, "--origin", help="LAT,LON of the track CSV's (0, 0); read from the log's header when there.")
    units_opt = typer.Option(None, "--units", help="CHANNEL=UNIT for a column whose unit the file does not give; repeat.")
    rate_opt = typer.Option(None, "--rate", help="Sample rate in Hz of a log without a time column.")
    vehicle_opt = typer.Option("roadsport", "--vehicle", help="Vehicle profile for estimated pedals and grip.")

    def _import(log: Path, track, origin, units, rate, vehicle):
        from motocoach.training.ridelogs.ingest import import_log, parse_origin, parse_units

        with console.status("reading the log") as status:
            return import_log(log, track=track, origin=parse_origin(origin), units=parse_units(units), rate_hz=rate,
                              vehicle=vehicle, stage=status.update)

    def _summary(imp) -> None:
        r = imp.report
        console.print(f"{r['format']} log, {r['rows']} rows at {r['rate_hz']:.1f} Hz, {r['laps']['found']} laps "
                      f"({r['laps']['valid']} valid, best {r['laps']['best_valid_s'] or '-'} s), "
                      f"{r['gaps']['count']} gaps, {r['gps_jumps']['count']} GPS jumps")
        if r["estimated_features"]:
            console.print("estimated, not measured: " + ", ".join(r["estimated_features"]))

    @data_app.command("import")
    def data_import(
        log: Path = typer.Argument(..., help="RaceChrono CSV v3, AiM Race Studio CSV or expert-data CSV."),
        track: Optional[str] = track_opt, origin: Optional[str] = origin_opt,
        units: Optional[list[str]] = units_opt, rate: Optional[float] = rate_opt, vehicle: str = vehicle_opt,
        out: Optional[Path] = typer.Option(None, help="Output folder (default runs/logs/<log name>)."),
        minari_root: Optional[Path] = typer.Option(None, "--minari", help="Also write a Minari dataset of the laps under this folder."),
        dataset_id: Optional[str] = typer.Option(None, help="Minari id (default motocoach/log-<name>-v0)."),
        all_laps: bool = typer.Option(False, "--all-laps", help="Put out-, in- and cut laps in the dataset too."),
    ) -> None:
        """Import a ride log: 20 Hz telemetry CSV, quality report, and optionally a Minari dataset.

        Example: motocoach data import ride.csv --track Catalunya.csv --origin 41.57,2.261 --minari runs/data
        """
        from motocoach.training.ridelogs.quality import write_quality
        from motocoach.training.ridelogs.ingest import write_telemetry_csv

        imp = _import(log, track, origin, units, rate, vehicle)
        folder = out or DEFAULT_OUT / log.stem
        tcsv = write_telemetry_csv(imp.telemetry, folder / "telemetry.csv")
        j, m = write_quality(imp.report, folder)
        _summary(imp)
        console.print(f"wrote {tcsv}, {j}, {m}")
        if minari_root is not None:
            from motocoach.training.ridelogs.dataset import dataset_id_for, write_log_dataset

            ds = write_log_dataset(imp.telemetry, minari_root, dataset_id or dataset_id_for(log.stem),
                                   source=log.name, all_laps=all_laps)
            console.print(f"wrote Minari dataset {ds} under {minari_root}")

    @data_app.command("quality")
    def data_quality(
        log: Path = typer.Argument(..., help="The ride log to check."),
        track: Optional[str] = track_opt, origin: Optional[str] = origin_opt,
        units: Optional[list[str]] = units_opt, rate: Optional[float] = rate_opt, vehicle: str = vehicle_opt,
        out: Optional[Path] = typer.Option(None, help="Output folder (default runs/logs/<log name>)."),
    ) -> None:
        """Data-quality report of a log (quality.json + quality.md): jitter, gaps, GPS jumps, laps, channels.

        Example: motocoach data quality ride.csv --track Catalunya.csv --origin 41.57,2.261
        """
        from motocoach.training.ridelogs.quality import write_quality

        imp = _import(log, track, origin, units, rate, vehicle)
        j, m = write_quality(imp.report, out or DEFAULT_OUT / log.stem)
        _summary(imp)
        console.print(f"wrote {j} and {m}")

    @data_app.command("export")
    def data_export(
        track: str = typer.Option("kestrel", help="Track name or CSV path."),
        rider: str = typer.Option("amateur", help="Rider profile."),
        laps: float = typer.Option(2.5, help="Laps to ride (starts and ends mid-lap: an out- and in-lap)."),
        rate: list[float] = typer.Option([10.0, 25.0], "--rate", help="Logger rate in Hz; repeat."),
        fmt: list[str] = typer.Option(["racechrono", "aim", "expert"], "--format", help="racechrono | aim | expert; repeat."),
        origin: Optional[str] = typer.Option(None, "--origin", help="LAT,LON to put the track's (0, 0) at."),
        seed: int = typer.Option(0, help="Seed of the ride and of the logger's noise."),
        out: Path = typer.Option(DEFAULT_OUT / "export", help="Output folder."),
    ) -> None:
        """Write a simulated ride as ride logs (GPS noise, IMU noise, dropouts, a GPS jump) plus its truth.

        Example: motocoach data export --track kestrel --rider amateur --rate 10 --format racechrono --out runs/logs/sim
        """
        from motocoach.training.ridelogs.ingest import export_rides, parse_origin

        with console.status("simulating") as status:
            paths = export_rides(out, track=track, rider=rider, laps=laps, rates=list(rate), formats=list(fmt),
                                 seed=seed, origin=parse_origin(origin), stage=status.update)
        console.print("wrote " + ", ".join(str(p) for p in paths))
