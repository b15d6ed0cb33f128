"""Typed entry points behind ``motocoach data import | quality | export`` (the verbs only print).

>>> parse_units(["speed=km/h", "lat_g=m/s2"])
{'speed': 'km/h', 'lat_g': 'm/s2'}
>>> parse_origin("47.2197,14.7647")
(47.2197, 14.7647, 0.0)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from motocoach.errors import ConfigError
from motocoach.schema import load_schema
from motocoach.training.ridelogs.log import RideLog
from motocoach.training.ridelogs.quality import quality_report
from motocoach.training.ridelogs.readers import read_log
from motocoach.training.ridelogs.telemetry import LogTelemetry, log_to_telemetry

Stage = Callable[[str], None]


def parse_units(items: list[str] | None) -> dict[str, str]:
    """``["speed=km/h"]`` -> ``{"speed": "km/h"}``."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--units {it!r}: use CHANNEL=UNIT, e.g. --units speed=km/h")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parse_origin(text: str | None) -> tuple[float, float, float] | None:
    """``"LAT,LON[,ALT]"`` -> a tuple (None passes through)."""
    if not text:
        return None
    try:
        parts = [float(x) for x in text.replace(" ", "").split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
        raise ConfigError(f"--origin {text!r}: use LAT,LON in degrees, e.g. --origin 41.5700,2.2611")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else 0.0


@dataclass
class Imported:
    """A log, its telemetry and its quality report."""

    log: RideLog
    telemetry: LogTelemetry
    report: dict


def import_log(path: str | Path, *, track: str | None = None, origin: tuple[float, float, float] | None = None,
               units: dict[str, str] | None = None, rate_hz: float | None = None, fmt: str | None = None,
               vehicle: str = "roadsport", stage: Stage | None = None) -> Imported:
    """Read ``path``, turn it into telemetry on ``track`` and build its quality report."""
    (stage or (lambda s: None))("reading the log")
    log = read_log(path, fmt=fmt, units=units, rate_hz=rate_hz)
    (stage or (lambda s: None))("map-matching and resampling to 20 Hz")
    tel = log_to_telemetry(log, track, origin=origin, vehicle=vehicle)
    return Imported(log, tel, quality_report(log, tel))


def write_telemetry_csv(tel: LogTelemetry, path: Path) -> Path:
    """The 20 Hz telemetry as CSV: time, lap, lap distance, gap flag, then the schema features."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    names = load_schema().feature_names
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "lap", "lap_kind", "s_m", "gap", *names])
        for i in range(len(tel.t)):
            w.writerow([f"{tel.t[i]:.3f}", int(tel.lap[i]), tel.laps[int(tel.lap[i])].kind, f"{tel.s[i]:.2f}",
                        int(tel.gap[i]), *(f"{v:.4f}" for v in tel.features[i])])
    return p


def export_rides(out_dir: Path, *, track: str, rider: str, laps: float, rates: list[float], formats: list[str],
                 seed: int = 0, origin: tuple[float, float, float] | None = None,
                 stage: Stage | None = None) -> list[Path]:
    """Simulate one ride and write it as each format x rate, plus the simulator's truth (``truth.csv``)."""
    from motocoach.training.ridelogs.simulate import DEFAULT_ORIGIN, logged, simulate_ride
    from motocoach.training.ridelogs.writers import FORMATS, SUFFIX, write_log

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"unknown export format(s) {', '.join(bad)}; use {', '.join(FORMATS)}")
    if not np.isfinite(laps) or laps <= 0:
        raise ConfigError(f"--laps must be positive, got {laps}")
    for r in rates:
        if not (5.0 <= r <= 100.0):
            raise ConfigError(f"--rate {r:g}: a logger rate between 5 and 100 Hz")
    (stage or (lambda s: None))(f"riding {laps:g} laps of {track} as {rider} (simulated)")
    ride = simulate_ride(track, rider, laps=laps, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in rates:
        lg = logged(ride, r, seed=seed + int(r), origin=origin or DEFAULT_ORIGIN)
        for f in formats:
            (stage or (lambda s: None))(f"writing {f} at {r:g} Hz")
            paths.append(write_log(lg, f, out / f"ride_{r:g}hz.{SUFFIX[f]}"))
    truth = out / "truth.csv"
    with truth.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "progress_m", "line_offset_m", *load_schema().feature_names])
        for i in range(len(ride.t)):
            w.writerow([f"{ride.t[i]:.3f}", f"{ride.progress[i]:.3f}", f"{ride.e[i]:.3f}",
                        *(f"{v:.4f}" for v in ride.obs[i])])
    return [*paths, truth]
