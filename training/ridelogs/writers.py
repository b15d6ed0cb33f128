"""Exporters: a :class:`RideLog` as RaceChrono CSV v3, AiM Race Studio CSV or the expert-data CSV.

The layouts are the ones the importers read (docs/ride-logs.md says which public descriptions
they follow), so ``read_log(write_log(log))`` gives the log back to the printed precision.
The local frame's origin goes into the header block (RaceChrono ``Note``, AiM ``Comment``,
a ``#`` line in the expert CSV) so a re-import lines up with the same track CSV.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from motocoach.errors import ConfigError
from motocoach.training.ridelogs.log import RideLog

FORMATS = ("racechrono", "aim", "expert")
SUFFIX = {"racechrono": "racechrono.csv", "aim": "aim.csv", "expert": "expert.csv"}


def _cell(v: float, fmt: str) -> str:
    return "" if not np.isfinite(v) else format(v, fmt)


def _origin_note(log: RideLog) -> str:
    return f"motocoach origin={log.meta.get('origin', '')} track={log.meta.get('track', '')}"


def racechrono_text(log: RideLog) -> str:
    """RaceChrono CSV v3: banner, ``Format,3``, key/value block, blank line, names, units, sources, data."""
    t0 = log.t0_unix or 0.0
    ch = log.channels
    cols = [("timestamp", "unix time", "", lambda i: f"{t0 + log.t[i]:.3f}"),
            ("fragment_id", "", "", lambda i: "0"),
            ("lap_number", "", "", lambda i: _cell(ch["lap"][i], ".0f") if "lap" in ch else ""),
            ("elapsed_time", "s", "", lambda i: f"{log.t[i]:.3f}")]
    for name, key, unit, src, f in (("latitude", "lat", "deg", "100: gps", ".8f"), ("longitude", "lon", "deg", "100: gps", ".8f"),
                                    ("speed", "speed", "m/s", "100: gps", ".3f"),
                                    ("lateral_acc", "lat_g", "G", "calc", ".4f"),
                                    ("longitudinal_acc", "lon_g", "G", "calc", ".4f"),
                                    ("lean_angle", "lean", "deg", "calc", ".2f")):
        if key in ch:
            cols.append((name, unit, src, lambda i, k=key, f=f: _cell(ch[k][i], f)))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    out.write("This file is created using RaceChrono v9.1.3 ( http://racechrono.com/ ).\n")
    w.writerows([["Format", "3"], ["Session title", log.meta.get("track", "")], ["Session type", "Lap timing"],
                 ["Track name", log.meta.get("track", "")], ["Driver name", log.meta.get("rider", "")],
                 ["Created", "01/01/2026", "12:00"], ["Note", _origin_note(log)], []])
    w.writerow([c[0] for c in cols])
    w.writerow([c[1] for c in cols])
    w.writerow([c[2] for c in cols])
    for i in range(len(log.t)):
        w.writerow([c[3](i) for c in cols])
    return out.getvalue()


def aim_text(log: RideLog) -> str:
    """AiM Race Studio CSV: ``"Format","AiM CSV File"`` block with Sample Rate and Beacon Markers, blank line,
    names, units, blank line, quoted data."""
    ch = log.channels
    cols = [("Time", "s", lambda i: f"{log.t[i]:.3f}")]
    for name, key, unit, f, scale in (("GPS Speed", "speed", "km/h", ".2f", 3.6), ("GPS Latitude", "lat", "deg", ".8f", 1),
                                      ("GPS Longitude", "lon", "deg", ".8f", 1), ("GPS LatAcc", "lat_g", "g", ".4f", 1),
                                      ("GPS LonAcc", "lon_g", "g", ".4f", 1), ("Throttle", "throttle", "%", ".1f", 100),
                                      ("Brake", "brake", "%", ".1f", 100)):
        if key in ch:
            cols.append((name, unit, lambda i, k=key, f=f, sc=scale: _cell(ch[k][i] * sc, f)))
    beacons = []
    if "lap" in ch:
        lap = ch["lap"]
        beacons = [f"{log.t[i]:.3f}" for i in np.flatnonzero(np.diff(lap) > 0) + 1]
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerows([["Format", "AiM CSV File"], ["Venue", log.meta.get("track", "")], ["Vehicle", ""],
                 ["Racer", log.meta.get("rider", "")], ["Championship", ""], ["Comment", _origin_note(log)],
                 ["Date", "Thursday, January 1, 2026"], ["Time", "12:00 PM"],
                 ["Sample Rate", f"{round(log.rate_hz)}"], ["Duration", f"{log.t[-1]:.3f}"],
                 ["Segment", "Session"], ["Beacon Markers", *beacons], []])
    w.writerow([c[0] for c in cols])
    w.writerow([c[1] for c in cols])
    w.writerow([])
    for i in range(len(log.t)):
        w.writerow([c[2](i) for c in cols])
    return out.getvalue()


def expert_text(log: RideLog) -> str:
    """The expert-data CSV with a units row (a variant the importer accepts); controls the logs do not
    have (steering, gears, clutch, rpm) are written as 0."""
    ch = log.channels
    lap = ch.get("lap", np.zeros(len(log.t)))
    starts = {}
    lap_time = np.empty(len(log.t))
    for i, k in enumerate(lap):
        starts.setdefault(k, log.t[i])
        lap_time[i] = log.t[i] - starts[k]
    names = ["episode", "frame", "timestamp", "throttle", "brake", "steering", "gear_up", "gear_down", "clutch",
             "speed", "rpm", "gear", "lap_time", "lat", "lon", "lateral_acc", "longitudinal_acc", "lean_angle"]
    units = ["#", "#", "s", "1", "1", "1", "1", "1", "1", "m/s", "rpm", "#", "s", "deg", "deg", "g", "g", "deg"]
    nan = np.full(len(log.t), np.nan)
    out = io.StringIO()
    out.write(f"# {_origin_note(log)}\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(names)
    w.writerow(units)
    for i in range(len(log.t)):
        w.writerow(["1", str(i), f"{log.t[i]:.3f}", _cell(ch.get("throttle", nan)[i], ".4f"),
                    _cell(ch.get("brake", nan)[i], ".4f"), "0", "0", "0", "0", _cell(ch.get("speed", nan)[i], ".3f"),
                    "0", "0", f"{lap_time[i]:.3f}", _cell(ch.get("lat", nan)[i], ".8f"),
                    _cell(ch.get("lon", nan)[i], ".8f"), _cell(ch.get("lat_g", nan)[i], ".4f"),
                    _cell(ch.get("lon_g", nan)[i], ".4f"), _cell(ch.get("lean", nan)[i], ".2f")])
    return out.getvalue()


def write_log(log: RideLog, fmt: str, path: str | Path) -> Path:
    """Write ``log`` in ``fmt`` (one of :data:`FORMATS`) to ``path``."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    text = {"racechrono": racechrono_text, "aim": aim_text, "expert": expert_text}[fmt](log)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p
