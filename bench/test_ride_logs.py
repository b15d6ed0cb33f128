"""Ride logs: import speed and accuracy against the simulator's truth (host), and a replay through
the SIL unit (sil).

Rides: the amateur, uncoached, 2.2 laps from a random point, on the built-in kestrel and on the
real Catalunya circuit (``MOTOCOACH_REAL_DATA``, default ``../shared/data``, when present). Each
ride is exported at 10 Hz and 25 Hz in the three formats with the default logger faults (GPS
wander 1.5 m + 0.4 m white, two 0.8 s dropouts, one 25 m GPS jump of 1 s, IMU noise), then
imported. The seeds here are not the tests' seeds, and nothing in the importer was tuned on them.

Two result files, because the figures come from two places: ``ride_logs.json`` (where = host:
import_rows_per_s, feature_rmse_*, lap_split_errors) and ``ride_logs_replay.json`` (where = sil:
replay_mismatches, replay_p99_ms, streamed at 20 Hz in real time like the HIL latency test).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MOTOCOACH_REAL_DATA") or ROOT.parent / "shared" / "data")
SEED = 4242
MATCH_S = 0.3             # a detected start/finish crossing within this of the true one counts as right


def _tracks() -> list[str]:
    real = DATA / "tracks" / "Catalunya.csv"
    return ["kestrel", *([str(real)] if real.is_file() else [])]


def _split_errors(found: np.ndarray, truth: np.ndarray) -> int:
    """True crossings with no detected one within MATCH_S, plus detected ones with no true one."""
    miss = sum(1 for c in truth if not len(found) or np.min(np.abs(found - c)) > MATCH_S)
    extra = sum(1 for c in found if not len(truth) or np.min(np.abs(truth - c)) > MATCH_S)
    return miss + extra


@pytest.mark.slow
def test_ride_logs(bench_result, tmp_path):
    from motocoach.schema import load_schema
    from motocoach.training.ridelogs.readers import read_log
    from motocoach.training.ridelogs.simulate import logged, simulate_ride
    from motocoach.training.ridelogs.telemetry import log_to_telemetry
    from motocoach.training.ridelogs.writers import FORMATS, write_log

    names = load_schema().feature_names
    rows = 0
    spent = 0.0
    sq: dict[str, list[float]] = {"speed": [], "line_deviation": [], "roll_angle": []}
    split_errors = 0
    logs = 0
    replay_log = None
    for k, track in enumerate(_tracks()):
        ride = simulate_ride(track, "amateur", laps=2.2, seed=SEED + k)
        for rate in (10, 25):
            lg = logged(ride, rate, seed=SEED + rate + k)
            for fmt in FORMATS:
                path = write_log(lg, fmt, tmp_path / f"{k}_{rate}.{fmt}.csv")
                t0 = time.perf_counter()
                tel = log_to_telemetry(read_log(path), ride.track)
                spent += time.perf_counter() - t0
                rows += len(lg)
                logs += 1
                split_errors += _split_errors(tel.crossings_t, ride.crossings_t)
                if rate == 10:
                    ok = ~tel.gap
                    for f in sq:
                        truth = np.interp(tel.t, ride.t, ride.obs[:, names.index(f)])
                        sq[f] += ((tel.column(f)[ok] - truth[ok]) ** 2).tolist()
                if k == 0 and rate == 10 and fmt == "racechrono":
                    replay_log = path
    bench_result("ride_logs", "host", {
        "import_rows_per_s": rows / spent,
        "feature_rmse_speed_mps": float(np.sqrt(np.mean(sq["speed"]))),
        "feature_rmse_line_dev_m": float(np.sqrt(np.mean(sq["line_deviation"]))),
        "feature_rmse_lean_deg": float(np.sqrt(np.mean(sq["roll_angle"]))),
        "lap_split_errors": split_errors,
        "logs": logs,
    }, notes=(f"{logs} logs ({', '.join(Path(t).stem for t in _tracks())}; 10 and 25 Hz; racechrono, aim, expert); "
              "rows/s = read + map-match + 20 Hz features on this host (2 shared cores); RMSEs over the 10 Hz logs' "
              "20 Hz rows outside dropouts (AiM has no lean channel: its lean is atan(lateral g)); lap_split_errors "
              f"= missed + spurious start/finish crossings, {MATCH_S} s tolerance"))

    from motocoach.replay import replay

    tel = log_to_telemetry(read_log(replay_log), "kestrel")
    res = replay(replay_log, track="kestrel", target="sil", realtime=True, lap=tel.best_lap.index,
                 out_dir=tmp_path / "replay")
    assert res.mismatches == 0
    p99 = res.latency["p99_ms"]
    bench_result("ride_logs_replay", "sil", {
        "replay_mismatches": res.mismatches, "replay_lost": res.lost, "replay_frames": res.frames,
        "replay_p50_ms": res.latency["p50_ms"], "replay_p99_ms": p99 if np.isfinite(p99) else 1e9,
    }, notes=("the best lap of the kestrel 10 Hz RaceChrono log streamed at 20 Hz real time through the SIL "
              "firmware on a pty; latency = host send -> reply measured on this host (shared), a lost reply = "
              "inf (written as 1e9); not a hardware number"))
