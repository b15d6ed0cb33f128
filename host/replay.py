"""``motocoach replay``: a rider's logged ride streamed through the unit, cue by cue.

The log becomes the unit's 20 Hz telemetry (:mod:`motocoach.training.ridelogs`), every frame
goes to the unit (SIL by default, QEMU, or a real board on a serial port) as the HIL suite
sends it, and every answer is checked bit for bit against the host reference engine
(:class:`~motocoach.quantization.host_engine.HostEngine`) built from the same manifest. The
cues are the unit's answers, decoded in the product's cue language
(:func:`motocoach.lap_report.cue_kinds`); latency is host send -> reply, with a lost
reply counted as infinite, as in the HIL suite. ``runs/<name>/replay.html`` is the rider's page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import typer
from rich.console import Console

from motocoach.errors import ConfigError

console = Console()
REPO = Path(__file__).resolve().parent.parent
FACTORY_MANIFEST = REPO / "firmware" / "lib" / "coach_model" / "manifest.json"
FAST_RATE_HZ = 1000.0        # --fast: the next frame goes as soon as the reply is in
FAST_TIMEOUT_S = 0.5


@dataclass
class Cue:
    """One cue onset: when, where and what the telemetry was."""

    row: int
    t: float
    s: float
    lap: int
    kind: str                # the cue language: left | right | slow down | more throttle
    telemetry: dict[str, float]


@dataclass
class ReplayResult:
    frames: int
    mismatches: int
    lost: int
    latency: dict[str, float]
    where: str
    cues: list[Cue]
    out_dir: Path
    device_outputs: list = field(default_factory=list)
    host_outputs: np.ndarray | None = None


def cue_onsets(actions01: np.ndarray, tel, feature_names: tuple[str, ...]) -> list[Cue]:
    """Cues where they start (a kind after silence or after another kind), in the cue language of
    :func:`motocoach.lap_report.cue_kinds`."""
    from motocoach.lap_report import cue_kinds

    a = np.asarray(actions01, np.float64)
    kinds = cue_kinds({"cue_left": a[:, 0], "cue_right": a[:, 1], "cue_freq01": a[:, 2]})
    out = []
    for i, k in enumerate(kinds):
        if k is not None and (i == 0 or kinds[i - 1] != k):
            out.append(Cue(i, float(tel.t[i]), float(tel.s[i]), int(tel.lap[i]), k,
                           {n: round(float(v), 3) for n, v in zip(feature_names, tel.features[i])}))
    return out


def compare(device: list, host: np.ndarray) -> tuple[int, int]:
    """(mismatches, lost): answered frames whose int8 outputs differ from the host's, and unanswered ones."""
    lost = sum(o is None for o in device)
    mism = sum(1 for o, w in zip(device, host.tolist()) if o is not None and list(o) != list(w))
    return mism, lost


def replay(log: Path, *, track: str | None = None, origin=None, units: dict[str, str] | None = None,
           rate_hz: float | None = None, target: str | None = None, port: str | None = None, baud: int | None = None,
           realtime: bool = True, lap: int | None = None, manifest: Path = FACTORY_MANIFEST,
           firmware: Path | None = None, out_dir: Path, vehicle: str = "roadsport",
           progress: Callable[[int, int], None] | None = None, stage: Callable[[str], None] | None = None) -> ReplayResult:
    """Stream ``log`` through the unit; write ``replay.json`` and ``replay.html`` into ``out_dir``."""
    from motocoach.device import dut as dutlib
    from motocoach.quantization.host_engine import HostEngine
    from motocoach.schema import load_schema
    from motocoach.training.ridelogs.ingest import import_log

    say = stage or (lambda s: None)
    kind = dutlib.resolve_target(target, port)
    imp = import_log(log, track=track, origin=origin, units=units, rate_hz=rate_hz, vehicle=vehicle, stage=say)
    tel = imp.telemetry
    rows = np.arange(len(tel.t))
    if lap is not None:
        if not 0 <= lap < len(tel.laps):
            raise ConfigError(f"--lap {lap}: the log has laps 0..{len(tel.laps) - 1} (see the quality report)")
        rows = np.flatnonzero(tel.lap == lap)
    frames = tel.features[rows]
    say("host reference engine")
    engine = HostEngine.from_manifest(manifest)
    want, actions = engine.predict(frames)
    say(f"starting the {kind} unit")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with dutlib.start_dut(kind, port=port, baud=baud or dutlib.DEFAULT_BAUD, workdir=out_dir / "unit",
                          firmware=firmware) as dut:
        say(f"streaming {len(frames)} frames ({'20 Hz, real time' if realtime else 'as fast as the unit answers'})")
        res = dutlib.stream(dut.link, frames, rate_hz=20.0 if realtime else FAST_RATE_HZ,
                            timeout=None if realtime else FAST_TIMEOUT_S, progress=progress)
        where = dut.where
    mism, lost = compare(res.outputs, want)
    lat = dutlib.latency_summary(res.latency_s)
    names = load_schema().feature_names
    # the cues are the unit's own answers (a lost frame gives none); the host engine only checks them
    answered = np.array([o is not None for o in res.outputs])
    unit_out = np.array([o if o is not None else (0, 0, 0) for o in res.outputs], np.int8).reshape(-1, 3)
    full_actions = np.zeros((len(tel.t), actions.shape[1]), np.float32)
    full_actions[rows[answered]] = engine.dequantize(unit_out[answered])
    cues = [c for c in cue_onsets(full_actions, tel, names) if c.row in set(rows.tolist())]
    result = ReplayResult(len(frames), mism, lost, lat, where, cues, out_dir, res.outputs, want)
    doc = {"log": str(log), "target": kind, "where": where, "mode": "realtime" if realtime else "fast",
           "frames": len(frames), "mismatches": mism, "lost": lost, "nacks": res.nacks,
           "latency_ms": {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in lat.items()},
           "manifest": str(manifest), "laps": imp.report["laps"], "estimated_features": tel.estimated,
           "cues": [{"t_s": c.t, "s_m": round(c.s, 1), "lap": c.lap, "kind": c.kind, "telemetry": c.telemetry}
                    for c in cues]}
    (out_dir / "replay.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "quality.json").write_text(json.dumps(imp.report, indent=1) + "\n")
    say("writing the report")
    from motocoach.replay_report import write_replay_html

    write_replay_html(out_dir / "replay.html", tel, cues, doc, rows, lap)
    return result


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_cmd(
        log: Path = typer.Argument(..., help="Ride log: RaceChrono CSV v3, AiM Race Studio CSV or expert-data CSV."),
        track: Optional[str] = typer.Option(None, "--track", help="Circuit CSV; default: built from the logged laps."),
        origin: Optional[str] = typer.Option(None, "--origin", help="LAT,LON of the track CSV's (0, 0)."),
        units: Optional[list[str]] = typer.Option(None, "--units", help="CHANNEL=UNIT for columns without a unit; repeat."),
        target: Optional[str] = typer.Option(None, "--target", help="sil (default) | qemu | serial; --port alone means serial."),
        port: Optional[str] = typer.Option(None, "--port", help="Serial port of a real board (means --target serial)."),
        baud: Optional[int] = typer.Option(None, "--baud", help="Baud rate (default 921600)."),
        realtime: bool = typer.Option(True, "--realtime/--fast", help="20 Hz like on the bike, or as fast as the unit answers."),
        lap: Optional[int] = typer.Option(None, "--lap", help="Replay only this lap (index from the quality report)."),
        name: Optional[str] = typer.Option(None, "--name", help="Run folder name under runs/ (default replay-<log name>)."),
        manifest: Path = typer.Option(FACTORY_MANIFEST, help="Manifest of the model the unit runs."),
        firmware: Optional[Path] = typer.Option(None, help="SIL binary / QEMU ELF to run instead of the default build."),
        vehicle: str = typer.Option("roadsport", "--vehicle", help="Vehicle profile for estimated pedals and grip."),
    ) -> None:
        """Stream a logged ride through the unit; check every cue against the host engine; write replay.html.

        Example: motocoach replay ride.csv --track Catalunya.csv --origin 41.57,2.261 --target sil --fast
        """
        from rich.progress import Progress

        from motocoach.errors import RideLogError
        from motocoach.runs import RunDir
        from motocoach.training.ridelogs.ingest import parse_origin, parse_units

        if log.is_dir():
            logs = sorted(p.name for p in log.glob("*.csv"))
            raise RideLogError(f"{log} is a folder; give one log file" + (f", e.g. {log / logs[0]}" if logs else ""))
        if not log.is_file():
            raise RideLogError(f"cannot read ride log {log}: no such file")
        run = RunDir.create(name or f"replay-{log.stem}", config={"verb": "replay", "log": str(log), "target": target,
                                                                    "port": port})
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("preparing", total=None)
            res = replay(log, track=track, origin=parse_origin(origin), units=parse_units(units), target=target,
                         port=port, baud=baud, realtime=realtime, lap=lap, manifest=manifest, firmware=firmware,
                         out_dir=run.path, vehicle=vehicle,
                         progress=lambda done, total: bar.update(task, completed=done, total=total),
                         stage=lambda s: bar.update(task, description=s))
        lat = res.latency
        console.print(f"{res.frames} frames on {res.where}: {res.mismatches} mismatches against the host engine, "
                      f"{res.lost} lost; latency p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
                      f"(measured on the host against {res.where})")
        console.print(f"{len(res.cues)} cues; report {res.out_dir / 'replay.html'}")
        if res.mismatches:
            raise typer.Exit(1)
