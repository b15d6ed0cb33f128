"""Importers: RaceChrono CSV v3, AiM Race Studio CSV and the expert-data CSV -> :class:`RideLog`.

All three are "a header block, a channel-name row, an optional units row, data rows". One
tokenizer reads them; a per-format table maps channel names to canonical channels and gives
the units the format documents when the file has no units row (docs/ride-logs.md). Anything
wrong names the file line and the column, as a :class:`~motocoach.errors.RideLogError`.

>>> text = '"Format","AiM CSV File"\\n\\n"Time","GPS Speed","Throttle"\\n"s","km/h","%"\\n0,36,50\\n0.1,36,60\\n0.2,37,70\\n'
>>> log = parse_text(text, "demo.csv")
>>> log.fmt, round(float(log.channels["speed"][0]), 3), round(float(log.channels["throttle"][2]), 3)
('aim', 10.0, 0.7)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from motocoach.errors import RideLogError
from motocoach.training.ridelogs.log import KIND, UNITS, RideLog, check_time, to_canonical

FORMATS = ("racechrono", "aim", "expert")

#: lower-case file column -> canonical channel, per format (first listed column wins on duplicates)
COLUMNS: dict[str, dict[str, str]] = {
    "racechrono": {"timestamp": "t", "lap_number": "lap", "latitude": "lat", "longitude": "lon", "speed": "speed",
                   "lateral_acc": "lat_g", "longitudinal_acc": "lon_g", "lean_angle": "lean",
                   "throttle_position": "throttle", "brake_position": "brake"},
    "aim": {"time": "t", "gps speed": "speed", "gps latitude": "lat", "gps longitude": "lon", "gps latacc": "lat_g",
            "gps lonacc": "lon_g", "throttle": "throttle", "tps": "throttle", "brake": "brake",
            "brake pos": "brake", "lean angle": "lean", "roll angle": "lean", "roll rate": "roll_rate"},
    "expert": {"timestamp": "t", "episode": "lap", "speed": "speed", "throttle": "throttle", "brake": "brake",
               "lat": "lat", "latitude": "lat", "lon": "lon", "longitude": "lon", "lateral_acc": "lat_g",
               "longitudinal_acc": "lon_g", "lean_angle": "lean"},
}
#: units each format documents, used only when the file has no units row
DEFAULT_UNITS: dict[str, dict[str, str]] = {
    "racechrono": {"t": "unix time", "lat": "deg", "lon": "deg", "speed": "m/s", "lat_g": "g", "lon_g": "g",
                   "lean": "deg", "throttle": "%", "brake": "%", "lap": "#"},
    "aim": {"t": "s", "lat": "deg", "lon": "deg", "lat_g": "g", "lon_g": "g", "lap": "#"},
    "expert": {"t": "s", "lat": "deg", "lon": "deg", "throttle": "1", "brake": "1", "lap": "#", "lean": "deg",
               "lat_g": "g", "lon_g": "g"},
}
EXPERT_REQUIRED = ("episode", "frame", "timestamp", "throttle", "brake", "steering", "gear_up", "gear_down",
                   "clutch", "speed", "rpm", "gear", "lap_time")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_text(path: Path) -> str:
    """The file as text; binary data or a non-UTF-8 file is a clear error with its line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise RideLogError(f"cannot read ride log {path}: {e}") from e
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise RideLogError(f"{path}:{line}: binary data (a NUL byte at offset {nul}); export the log as CSV "
                           "(RaceChrono CSV v3, AiM Race Studio CSV or the expert-data CSV)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        try:
            return raw.decode("cp1252")     # Race Studio on Windows writes the degree sign this way
        except UnicodeDecodeError:
            raise RideLogError(f"{path}:{line}: not UTF-8 text (byte {e.start}); export the log as CSV") from e


def sniff_format(rows: list[list[str]]) -> str:
    """Which of :data:`FORMATS` the tokenized rows are."""
    for row in rows[:60]:
        cells = [c.strip().lower() for c in row if c.strip()]
        if not cells:
            continue
        if cells[0].startswith("this file is created using racechrono") or cells[:2] == ["format", "3"]:
            return "racechrono"
        if cells[:2] == ["format", "aim csv file"]:
            return "aim"
        if "timestamp" in cells and ("episode" in cells or "frame" in cells):
            return "expert"
        if cells[0] == "timestamp":
            return "racechrono"
    raise RideLogError("the file is not a RaceChrono CSV v3 export, an AiM Race Studio CSV export or the "
                       "expert-data CSV (no known header line in its first 60 lines)")


def _header_index(rows: list[list[str]], fmt: str, where: str) -> int:
    for i, row in enumerate(rows):
        cells = [c.strip().lower() for c in row]
        filled = [c for c in cells if c]
        if fmt == "racechrono" and len(filled) >= 2 and "timestamp" in cells:
            return i
        if fmt == "aim" and len(filled) >= 3 and "time" in cells:     # not the 2-cell "Time","3:42 PM" row
            return i
        if fmt == "expert" and "timestamp" in cells:
            return i
    first = {"racechrono": "timestamp", "aim": "Time", "expert": "episode,frame,timestamp"}[fmt]
    raise RideLogError(f"{where}: no channel-name row (a row starting with {first}) after the header block")


def parse_text(text: str, where: str, *, fmt: str | None = None, units: dict[str, str] | None = None,
               rate_hz: float | None = None) -> RideLog:
    """Parse a log's text. ``units`` overrides or supplies units by canonical channel or file column
    name (e.g. ``{"speed": "km/h"}``); ``rate_hz`` supplies the sample rate of a log without a time column."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = ";" if first.count(";") > first.count(",") else ("\t" if "\t" in first and "," not in first else ",")
    rows = list(csv.reader(text.splitlines(), delimiter=delim))
    fmt = fmt or sniff_format(rows)
    if fmt not in FORMATS:
        raise RideLogError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    h = _header_index(rows, fmt, where)
    meta = {r[0].strip(): ",".join(c.strip() for c in r[1:] if c.strip()) for r in rows[:h] if r and r[0].strip()}
    names = [c.strip() for c in rows[h]]
    lower = [n.lower() for n in names]
    if fmt == "expert":
        missing = [c for c in EXPERT_REQUIRED if c not in lower]
        if missing:
            raise RideLogError(f"{where}:{h + 1}: the expert-data CSV needs the columns {', '.join(missing)}")
    # units row(s): the non-numeric, non-empty rows between the names and the first data row
    file_units: list[str] | None = None
    i = h + 1
    while i < len(rows):
        cells = [c.strip() for c in rows[i]]
        if not any(cells):
            i += 1
            continue
        if _is_number(cells[0]):
            break
        if file_units is None:
            file_units = cells + [""] * (len(names) - len(cells))
        i += 1                          # a RaceChrono sources row ("100: gps") is skipped too
    data_start = i
    table = COLUMNS[fmt]
    col_of: dict[str, int] = {}
    for j, n in enumerate(lower):
        ch = table.get(n)
        if ch is not None and ch not in col_of:
            col_of[ch] = j
    extra = [names[j] for j in range(len(names)) if j not in col_of.values() and names[j]]
    if "t" not in col_of and not (rate_hz or meta.get("Sample Rate")):
        raise RideLogError(f"{where}:{h + 1}: no time column ({'timestamp' if fmt != 'aim' else 'Time'}) and no "
                           "sample rate in the header; give the rate with --rate HZ")
    overrides = {k.lower(): v for k, v in (units or {}).items()}
    unit_of: dict[str, str] = {}
    for ch, j in col_of.items():
        u = overrides.get(ch) or overrides.get(lower[j])
        if u is None and file_units is not None and file_units[j].strip():
            u = file_units[j].strip()
        if u is None:
            u = DEFAULT_UNITS[fmt].get(ch)
        if u is None:
            choices = ", ".join(k for k in UNITS[KIND[ch]] if k)
            raise RideLogError(f"{where}:{h + 1}: column {names[j]!r} has no unit in the file; give it with "
                               f"--units {ch}=UNIT (one of {choices})")
        if u.strip().lower() not in UNITS[KIND[ch]]:
            raise RideLogError(f"{where}:{h + 2}: column {names[j]!r}: unknown unit {u!r} for {ch}; use one of "
                               f"{', '.join(k for k in UNITS[KIND[ch]] if k)} (or --units {ch}=UNIT)")
        unit_of[ch] = u

    values = {ch: [] for ch in col_of}
    lines: list[int] = []
    for k in range(data_start, len(rows)):
        row = rows[k]
        if not any(c.strip() for c in row):
            continue
        for ch, j in col_of.items():
            cell = row[j].strip() if j < len(row) else ""
            if cell == "":
                values[ch].append(np.nan)
                continue
            try:
                values[ch].append(float(cell))
            except ValueError:
                raise RideLogError(f"{where}:{k + 1}: column {j + 1} ({names[j]!r}): {cell!r} is not a number") from None
        lines.append(k + 1)
    if not lines:
        raise RideLogError(f"{where}: no data rows after line {data_start}")
    line_arr = np.array(lines)
    ch_arr = {ch: to_canonical(ch, v, unit_of[ch]) for ch, v in values.items()}
    if "t" in ch_arr:
        t = ch_arr.pop("t")
        if not np.isfinite(t).all():
            r = int(np.flatnonzero(~np.isfinite(t))[0])
            raise RideLogError(f"{where}:{line_arr[r]}: column {names[col_of['t']]!r} is empty; every row needs a time")
        if fmt == "expert" and "lap" in ch_arr:
            t = _join_episodes(t, ch_arr["lap"])
        t_col = names[col_of["t"]]
    else:
        t = np.arange(len(lines)) / float(rate_hz or meta["Sample Rate"])
        t_col = "Sample Rate"
    check_time(t, line_arr, where, t_col)
    if fmt == "aim" and "lap" not in ch_arr and meta.get("Beacon Markers"):
        marks = np.array([float(x) for x in meta["Beacon Markers"].split(",") if _is_number(x)])
        ch_arr["lap"] = np.searchsorted(marks, t, side="right").astype(np.float64)
    t0 = float(t[0])
    return RideLog(source=where, fmt=fmt, t=t - t0, channels=ch_arr, meta=meta, lines=line_arr, extra=extra,
                   t0_unix=t0 if t0 > 1e8 else None)


def _join_episodes(t: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Expert-data timestamps restart with every episode: lay the episodes end to end."""
    out = t.copy()
    starts = np.flatnonzero(np.diff(episode) != 0) + 1
    for s in starts:
        step = float(np.median(np.diff(t[:s]))) if s > 1 else 0.05
        out[s:] += out[s - 1] + step - t[s]
    return out


def read_log(path: str | Path, *, fmt: str | None = None, units: dict[str, str] | None = None,
             rate_hz: float | None = None) -> RideLog:
    """Import a ride log file (format detected from its header unless ``fmt`` is given)."""
    p = Path(path)
    return parse_text(read_text(p), str(p), fmt=fmt, units=units, rate_hz=rate_hz)
