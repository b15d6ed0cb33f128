"""``motocoach teacher analyse LAP``: a thin verb over :func:`analyse_source`.

LAP is a ride log (RaceChrono, AiM or expert-data CSV; imported as ``motocoach data import``
does) or ``sim:TRACK:RIDER[:SEED]`` for an uncoached simulated ride.

>>> parse_sim_spec("sim:falcon:amateur:3")
('falcon', 'amateur', 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from motocoach.errors import ConfigError, RideLogError
from motocoach.training.teacher.cli import DEFAULT_TEACHER

console = Console()

DEFAULT_OUT = Path("runs") / "analyse"
SIM_LAPS = 2.4          # an out-lap, one full lap and part of the next (segments crossing the line)


def parse_sim_spec(spec: str) -> tuple[str, str, int]:
    """``sim:TRACK:RIDER[:SEED]`` -> (track, rider, seed)."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] != "sim" or not parts[1] or not parts[2]:
        raise ConfigError(f"{spec!r}: a simulated lap is sim:TRACK:RIDER[:SEED], e.g. sim:falcon:amateur:1")
    try:
        seed = int(parts[3]) if len(parts) == 4 else 0
    except ValueError as e:
        raise ConfigError(f"{spec!r}: the seed must be an integer, e.g. sim:falcon:amateur:1") from e
    return parts[1], parts[2], seed


@dataclass
class Analysed:
    """What :func:`analyse_source` found, and on what."""

    analysis: object
    track: object
    meta: dict


def analyse_source(lap_spec: str, *, teacher_path: Path = DEFAULT_TEACHER, track: str | None = None,
                   origin: tuple[float, float, float] | None = None, units: dict[str, str] | None = None,
                   vehicle: str | None = None, lap: int | None = None,
                   stage: Callable[[str], None] | None = None) -> Analysed:
    """Analyse one lap of a log file or of ``sim:TRACK:RIDER[:SEED]`` with the teacher at ``teacher_path``."""
    from motocoach.training.teacher.analyse import analyse_lap, analyse_sim_ride
    from motocoach.training.teacher.predict import Teacher
    from motocoach.training.vehicles import get_vehicle

    say = stage or (lambda s: None)
    say("loading the teacher")
    teacher = Teacher.load(teacher_path)
    meta = {"teacher": str(teacher_path), "teacher_tracks": sorted(teacher.tracks)}
    if lap_spec.startswith("sim:"):
        from motocoach.training.riders import get_rider
        from motocoach.training.ridelogs.simulate import simulate_ride
        from motocoach.training.tracks import get_track

        tr_name, rider, seed = parse_sim_spec(lap_spec)
        tr, prof = get_track(tr_name), get_rider(rider)
        veh = get_vehicle(vehicle or prof.vehicle)
        say(f"riding {SIM_LAPS:g} laps of {tr.name} as {rider} (simulated, uncoached)")
        ride = simulate_ride(tr, rider, laps=SIM_LAPS, seed=seed)
        say("running the teacher along the lap")
        an = analyse_sim_ride(teacher, ride, veh, lap=lap)
        return Analysed(an, tr, {**meta, "source": f"simulated ride of {rider} on {tr.name} (seed {seed})",
                                 "lap": 0 if lap is None else lap})
    from motocoach.training.ridelogs.ingest import import_log

    path = Path(lap_spec)
    if not path.is_file():
        raise RideLogError(f"{path}: no such log file; give a RaceChrono / AiM / expert CSV or sim:TRACK:RIDER[:SEED]")
    veh_name = vehicle or "roadsport"
    imp = import_log(path, track=track, origin=origin, units=units, vehicle=veh_name, stage=stage)
    tel = imp.telemetry
    if lap is None:
        chosen = tel.best_lap
        if chosen is None:
            raise RideLogError(f"{path}: no valid lap (laps found: "
                               f"{', '.join(f'{lp.index} {lp.kind}' for lp in tel.laps) or 'none'}); "
                               "pick one with --lap N")
    elif 0 <= lap < len(tel.laps):
        chosen = tel.laps[lap]
    else:
        raise ConfigError(f"--lap {lap}: the log has laps 0..{len(tel.laps) - 1}")
    say("running the teacher along the lap")
    an = analyse_lap(teacher, tel.features, tel.s, tel.progress, tel.t, tel.track, get_vehicle(veh_name),
                     lap=chosen, xy=tel.xy)
    return Analysed(an, tel.track, {**meta, "source": f"log {path.name}", "lap": chosen.index,
                                    "lap_kind": chosen.kind, "estimated_features": sorted(tel.estimated)})


def print_top(an) -> None:
    t = Table(title=f"{an.track}: the three corners with the most time to gain (lap {an.lap_time_s:.2f} s)")
    for c in ("#", "corner", "time to gain", "what differs most", "then"):
        t.add_column(c)
    for rank, c in enumerate(an.top):
        first, rest = c.items[0], c.items[1:3]
        t.add_row(str(rank + 1), f"{c.corner + 1} (apex {c.apex_s:.0f} m)", f"{c.gain_s:+.2f} s",
                  f"{first.advice} ({first.explains_s:+.2f} s)", "; ".join(i.advice for i in rest))
    console.print(t)


def register(teacher_app: typer.Typer) -> None:
    @teacher_app.command("analyse")
    def analyse_cmd(
        lap_spec: str = typer.Argument(..., metavar="LAP",
                                       help="A ride log (RaceChrono / AiM / expert CSV) or sim:TRACK:RIDER[:SEED]."),
        teacher: Path = typer.Option(DEFAULT_TEACHER, "--teacher", help="Trained teacher (teacher.pt)."),
        lap: Optional[int] = typer.Option(None, "--lap", help="Lap index (log: from the quality report, default "
                                                              "the best valid lap; sim: full lap, default 0)."),
        track: Optional[str] = typer.Option(None, "--track", help="Circuit CSV or built-in name for a log; "
                                                                  "default: built from the logged laps."),
        origin: Optional[str] = typer.Option(None, "--origin", help="LAT,LON of the track CSV's (0, 0); read "
                                                                    "from the log's header when there."),
        units: Optional[list[str]] = typer.Option(None, "--units", help="CHANNEL=UNIT for a column whose unit "
                                                                        "the file does not give; repeat."),
        vehicle: Optional[str] = typer.Option(None, "--vehicle", help="Vehicle profile (default: roadsport for a "
                                                                      "log, the rider's own for sim:)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default runs/analyse/<lap name>)."),
    ) -> None:
        """The three corners of a lap with the most time to gain against the teacher's expert, and what
        differs at each (braking point, braking force, corner speed, throttle pick-up, line).

        Example: motocoach teacher analyse sim:falcon:amateur:1 --teacher runs/teacher/teacher.pt
        """
        from motocoach.training.ridelogs.ingest import parse_origin, parse_units
        from motocoach.training.teacher.analyse_report import write_analysis

        with console.status("analysing") as status:
            res = analyse_source(lap_spec, teacher_path=teacher, track=track, origin=parse_origin(origin),
                                 units=parse_units(units), vehicle=vehicle, lap=lap, stage=status.update)
        name = lap_spec.replace(":", "-") if lap_spec.startswith("sim:") else Path(lap_spec).stem
        j, h = write_analysis(out or DEFAULT_OUT / name, res.analysis, res.track, res.meta)
        print_top(res.analysis)
        console.print(f"wrote {j} and {h}")
