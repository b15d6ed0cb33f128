"""The simulator against reality: real circuits, real lap records, real club riders.

``validate(data_dir)`` reads a folder laid out like the public racetrack-database plus
two tables (see docs/simulator.md):

* ``tracks/<circuit>.csv`` centrelines and, optionally, ``tracks/<circuit>_raceline.csv``;
* ``lap_records.csv``: ``circuit, vehicle_class, lap_s, ...``, one real best lap per row;
* ``club_laps.csv`` (optional): ``circuit, rider_level, lap_s, ...``, non-professional laps.

For every record it rides the ``pro`` profile on the record's vehicle class (flying laps,
several seeds) and reports the signed error; it measures our racing line against the
published one, and how much the lap time moves when the physics step is halved. Nothing
here is fitted to the records: the vehicle and rider files are the only inputs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from motocoach.errors import ConfigError
from motocoach.training.evaluate import ride_laps
from motocoach.training.raceline import resample_closed
from motocoach.training.reflap import reference_lap
from motocoach.training.sim import SUBSTEPS
from motocoach.training.tracks import Track, get_track
from motocoach.training.vehicles import get_vehicle


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV table with a header; a clear error when it is missing or malformed."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    return rows


def flying_laps(track: Track, rider: str, vehicle: str, rides: int = 8, seed: int = 0,
                substeps: int = SUBSTEPS) -> np.ndarray:
    """Lap times (s) of ``rides`` uncoached flying laps; NaN where a ride did not finish."""
    res, _ = ride_laps(track, rider, lambda sim: np.zeros((sim.n, 3)), rides, seed,
                       vehicle=vehicle, substeps=substeps)
    return res["lap"]


def raceline_deviation(track: Track, published: np.ndarray) -> tuple[float, float]:
    """Mean and max distance (m) from our racing line to a published one (x, y rows)."""
    from scipy.spatial import cKDTree

    dense = resample_closed(np.asarray(published, dtype=np.float64)[:, :2], 0.5)
    dist, _ = cKDTree(dense).query(track.line_xy)
    return float(dist.mean()), float(dist.max())


def validate(data_dir: Path, rides: int = 8, seed: int = 0, progress: bool = False) -> dict:
    """Every record in ``data_dir/lap_records.csv`` against the simulated pro; see the module doc."""
    data_dir = Path(data_dir)
    records = read_table(data_dir / "lap_records.csv")
    if not records:
        raise ConfigError(f"{data_dir / 'lap_records.csv'}: no records")
    circuits: dict[str, dict] = {}
    devs_mean, devs_max = [], []
    for row in _iter(records, progress, "circuits"):
        name, veh = row["circuit"], row["vehicle_class"]
        track = get_track(str(data_dir / "tracks" / f"{name}.csv"))    # cached: loaded once per run
        record = float(row["lap_s"])
        pro = flying_laps(track, "pro", veh, rides=rides, seed=seed)
        ref = reference_lap(track, get_vehicle(veh)).lap_time_s
        entry = {"vehicle": veh, "record_s": record, "reference_lap_s": round(ref, 3),
                 "pro_lap_s": round(float(np.nanmean(pro)), 3),
                 "pro_lap_worst_s": round(float(np.nanmax(pro)), 3),
                 "pro_finished": int(np.isfinite(pro).sum()), "rides": rides,
                 "lap_error_pct": round(100.0 * (float(np.nanmean(pro)) / record - 1.0), 2),
                 "reference_error_pct": round(100.0 * (ref / record - 1.0), 2),
                 "layout_km": row.get("layout_km", ""), "db_km": row.get("db_km", ""),
                 "note": row.get("note", "")}
        line_file = data_dir / "tracks" / f"{name}_raceline.csv"
        if line_file.exists():
            published = np.loadtxt(line_file, delimiter=",", comments="#")
            entry["raceline_mean_dev_m"], entry["raceline_max_dev_m"] = (
                round(v, 3) for v in raceline_deviation(track, published))
            devs_mean.append(entry["raceline_mean_dev_m"])
            devs_max.append(entry["raceline_max_dev_m"])
        circuits[name] = entry
    errors = [c["lap_error_pct"] for c in circuits.values()]
    out = {f"lap_error_pct_{k}": v["lap_error_pct"] for k, v in circuits.items()}
    out["lap_error_pct_max_abs"] = max(abs(e) for e in errors)
    if devs_mean:
        out["raceline_mean_dev_m"] = round(float(np.mean(devs_mean)), 3)
        out["raceline_max_dev_m"] = round(float(np.max(devs_max)), 3)
    first = records[0]
    out["substep_sensitivity_pct"] = substep_sensitivity(
        get_track(str(data_dir / "tracks" / f"{first['circuit']}.csv")), first["vehicle_class"], rides, seed)
    return {"metrics": out, "circuits": circuits, "club": club_check(data_dir, rides, seed)}


def substep_sensitivity(track: Track, vehicle: str, rides: int, seed: int) -> float:
    """|lap time change| in % of the pro on ``vehicle`` when the physics step is halved (same seeds)."""
    a = flying_laps(track, "pro", vehicle, rides, seed, substeps=SUBSTEPS)
    b = flying_laps(track, "pro", vehicle, rides, seed, substeps=2 * SUBSTEPS)
    return round(abs(100.0 * (np.nanmean(b) / np.nanmean(a) - 1.0)), 4)


#: club_laps.csv rider levels -> (our profile, our vehicle) that stand for them.
CLUB_PROFILES = {"national": ("club", "supersport600"), "club": ("weekend", "roadsport")}


def club_check(data_dir: Path, rides: int, seed: int) -> list[dict]:
    """Our rider profiles on the circuits of ``club_laps.csv``, next to the real riders' laps."""
    path = data_dir / "club_laps.csv"
    if not path.exists():
        return []
    out = []
    for row in read_table(path):
        level = row.get("rider_level", "")
        key = "national" if "national" in level else "club"
        profile, veh = CLUB_PROFILES[key]
        track_file = data_dir / "tracks" / f"{row['circuit']}.csv"
        if not track_file.exists():
            continue
        laps = flying_laps(get_track(str(track_file)), profile, veh, rides, seed)
        out.append({"circuit": row["circuit"], "real_rider": level, "real_bike": row.get("bike", ""),
                    "real_lap_s": float(row["lap_s"]), "profile": profile, "vehicle": veh,
                    "sim_lap_s": round(float(np.nanmean(laps)), 2),
                    "diff_pct": round(100.0 * (float(np.nanmean(laps)) / float(row["lap_s"]) - 1.0), 1)})
    return out


def _iter(items, progress: bool, what: str):
    if not progress:
        yield from items
        return
    from rich.progress import track as rich_track

    yield from rich_track(items, description=f"simulating {what}")

