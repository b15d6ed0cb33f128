"""Ride logs: export -> import round trips, telemetry against the simulator's truth, laps, the quality
report, bad files, format variants and Minari datasets from logs.

One simulated ride (kestrel, amateur, 2.3 laps from a random point) is shared by the module; its
logger files carry GPS noise, IMU noise, two dropouts and one GPS jump (:class:`LoggerFaults`).
"""

from __future__ import annotations

import numpy as np
import pytest

from motocoach.errors import RideLogError
from motocoach.training.ridelogs.readers import read_log
from motocoach.training.ridelogs.simulate import logged, simulate_ride
from motocoach.training.ridelogs.telemetry import log_to_telemetry
from motocoach.training.ridelogs.writers import FORMATS, write_log

pytestmark = pytest.mark.slow        # one simulated ride of ~2 laps for the module (~10 s)

# Tolerances of import(export(ride)) against the simulator (rows inside dropouts excluded).
TOL = {"s_m": 3.0, "line_deviation": 2.5, "speed": 0.5, "roll_angle": 2.5}


@pytest.fixture(scope="module")
def ride():
    return simulate_ride("kestrel", "amateur", laps=2.3, seed=3)


@pytest.fixture(scope="module")
def logs(ride):
    return {rate: logged(ride, rate, seed=rate) for rate in (10, 25)}


def errors_vs_truth(tel, ride) -> dict[str, float]:
    """RMS errors of the imported telemetry against the simulator's truth at the same times."""
    from motocoach.schema import load_schema

    names = load_schema().feature_names
    ok = ~tel.gap
    truth_s = np.interp(tel.t, ride.t, ride.progress) % tel.track.length_m
    ds = (tel.s - truth_s + tel.track.length_m / 2) % tel.track.length_m - tel.track.length_m / 2
    out = {"s_m": float(np.sqrt(np.mean(ds[ok] ** 2)))}
    for f in ("speed", "roll_angle", "line_deviation"):
        truth = np.interp(tel.t, ride.t, ride.obs[:, names.index(f)])
        out[f] = float(np.sqrt(np.mean((tel.column(f)[ok] - truth[ok]) ** 2)))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_then_import_gives_the_log_back(logs, fmt, tmp_path):
    lg = logs[10]
    back = read_log(write_log(lg, fmt, tmp_path / f"ride.{fmt}.csv"))
    assert back.fmt == fmt and len(back) == len(lg)
    assert np.allclose(back.t, lg.t, atol=2e-3)
    for ch, atol in (("lat", 1e-7), ("lon", 1e-7), ("speed", 0.01), ("lat_g", 1e-3), ("lon_g", 1e-3)):
        assert np.allclose(back.channels[ch], lg.channels[ch], atol=atol), ch
    if fmt != "aim":                                  # AiM's GPS channels carry no lean
        assert np.allclose(back.channels["lean"], lg.channels["lean"], atol=0.01)


@pytest.mark.parametrize("rate,fmt", [(10, "racechrono"), (10, "aim"), (10, "expert"), (25, "racechrono"), (25, "aim")])
def test_imported_telemetry_matches_the_simulator(ride, logs, rate, fmt, tmp_path):
    tel = log_to_telemetry(read_log(write_log(logs[rate], fmt, tmp_path / "r.csv")), "kestrel")
    err = errors_vs_truth(tel, ride)
    for k, tol in TOL.items():
        assert err[k] < tol, f"{fmt} at {rate} Hz: {k} rms error {err[k]:.2f} over {tol}"
    # and not trivially: the features vary as much as a ride does
    assert tel.column("speed").std() > 3 and np.abs(tel.column("roll_angle")).max() > 20


def test_laps_are_split_at_the_start_finish_line(ride, logs):
    tel = log_to_telemetry(logs[10], "kestrel")
    n = len(ride.crossings_t)
    assert n >= 2
    assert [lp.kind for lp in tel.laps] == ["outlap", *["valid"] * (n - 1), "inlap"]
    assert len(tel.crossings_t) == len(ride.crossings_t)
    assert np.max(np.abs(tel.crossings_t - ride.crossings_t)) < 0.3
    true_lap = ride.crossings_t[1] - ride.crossings_t[0]
    assert abs(tel.laps[1].time_s - true_lap) < 0.3


def test_quality_report_finds_the_dropouts_the_jump_and_the_estimates(ride, logs, tmp_path):
    from motocoach.training.ridelogs.quality import quality_report, write_quality

    lg = read_log(write_log(logs[10], "racechrono", tmp_path / "r.csv"))
    rep = quality_report(lg, log_to_telemetry(lg, "kestrel"))
    assert rep["gaps"]["count"] == 2 and rep["gps_jumps"]["count"] == 1
    assert rep["gps_jumps"]["fixes_dropped"] == 10          # a 1 s jump at 10 Hz
    assert {"throttle", "brake"} <= set(rep["missing_channels"])
    assert {"throttle", "brake", "friction_usage"} <= set(rep["estimated_features"])
    assert rep["laps"]["valid"] == len(ride.crossings_t) - 1 and rep["rate_hz"] == pytest.approx(10, abs=0.1)
    j, m = write_quality(rep, tmp_path / "q")
    assert "GPS jump" in m.read_text() and j.exists()


def test_a_lateral_axis_logged_the_other_way_is_flipped_and_said(logs):
    lg = logs[10]
    flipped = type(lg)(**{**lg.__dict__, "channels": {**lg.channels, "lat_g": -lg.channels["lat_g"],
                                                      "lean": -lg.channels["lean"]}})
    a, b = log_to_telemetry(lg, "kestrel"), log_to_telemetry(flipped, "kestrel")
    assert np.allclose(a.column("lateral_g"), b.column("lateral_g"), atol=1e-6)
    assert any("flipped" in n for n in b.notes) and not a.notes


def test_without_gps_a_track_places_the_ride_by_integrated_speed(logs):
    lg = logs[10]
    no_gps = type(lg)(**{**lg.__dict__, "channels": {k: v for k, v in lg.channels.items() if k not in ("lat", "lon")}})
    with pytest.raises(RideLogError, match="no GPS position"):
        log_to_telemetry(no_gps, None)
    tel = log_to_telemetry(no_gps, "kestrel")
    assert "line_deviation" in tel.estimated and len(tel.laps) >= 2


def test_a_track_is_built_from_the_laps_when_none_is_given(ride, logs):
    tel = log_to_telemetry(logs[25], None)
    assert tel.track.source == "logged laps" and any("built from the logged laps" in n for n in tel.notes)
    assert abs(tel.track.length_m - ride.track.length_m) / ride.track.length_m < 0.03
    valid = [lp for lp in tel.laps if lp.kind == "valid"]
    assert valid and abs(valid[0].time_s - (ride.crossings_t[1] - ride.crossings_t[0])) < 1.0


def test_minari_dataset_from_a_log_records_rider_controls(logs, tmp_path):
    from motocoach.training.datasets import load_dataset
    from motocoach.training.ridelogs.dataset import write_log_dataset

    tel = log_to_telemetry(logs[10], "kestrel")
    ds_id = write_log_dataset(tel, tmp_path, "motocoach/log-test-v0", source="test")
    ds = load_dataset(tmp_path, ds_id)
    eps = list(ds.iterate_episodes())
    assert len(eps) == sum(lp.kind == "valid" for lp in tel.laps) >= 1
    ep = eps[0]
    assert ep.observations.shape[1] == 8 and not ep.actions.any()
    assert np.allclose(ep.infos["throttle"], ep.observations[:, 4], atol=1e-6)
    assert ep.infos["track_position_m"].max() > 2000


def test_simulate_docstring_example_runs():
    import doctest

    from motocoach.training.ridelogs import simulate

    result = doctest.testmod(simulate)
    assert result.attempted > 0 and result.failed == 0


def test_a_log_on_the_wrong_track_is_refused(logs):
    with pytest.raises(RideLogError, match="outside the track falcon"):
        log_to_telemetry(logs[10], "falcon")


def test_cli_export_then_import_writes_telemetry_quality_and_a_minari_dataset(tmp_path):
    from motocoach.cli import main
    from motocoach.training.datasets import load_transitions

    assert main(["data", "export", "--track", "kestrel", "--laps", "1.3", "--rate", "10", "--format", "aim",
                 "--seed", "7", "--out", str(tmp_path / "exp")]) == 0
    log = tmp_path / "exp" / "ride_10hz.aim.csv"
    assert log.is_file() and (tmp_path / "exp" / "truth.csv").is_file()
    out, data = tmp_path / "imp", tmp_path / "data"
    assert main(["data", "import", str(log), "--track", "kestrel", "--out", str(out), "--minari", str(data),
                 "--all-laps"]) == 0
    header = (out / "telemetry.csv").read_text().splitlines()[0]
    assert header.startswith("t_s,lap,lap_kind,s_m,gap,speed,roll_angle")
    assert (out / "quality.md").read_text().startswith("# Data quality: ride_10hz.aim.csv")
    obs, acts = load_transitions(data, ["motocoach/log-ride-10hz-aim-v0"])     # what BC reads
    assert obs.shape[1] == 8 and acts.shape == (len(obs), 3) and len(obs) > 500


def test_a_lap_that_skips_part_of_the_track_is_cut(ride, logs):
    lg = logs[10]
    a = np.searchsorted(lg.t, ride.crossings_t[0] + 30.0)      # 30 s into the first full lap ...
    b = np.searchsorted(lg.t, lg.t[a] + 6.0)                    # ... 6 s of track are skipped
    keep = np.r_[0:a, b:len(lg.t)]
    t = lg.t[keep].copy()
    t[a:] -= lg.t[b] - lg.t[a] - 0.1                            # and the clock does not show it
    cut = type(lg)(**{**lg.__dict__, "t": t, "lines": lg.lines[keep],
                      "channels": {k: v[keep] for k, v in lg.channels.items()}})
    laps = log_to_telemetry(cut, "kestrel").laps
    assert laps[1].kind == "cut" and "skipped" in laps[1].why
    assert all(lp.kind == "valid" for lp in laps[2:-1])


def test_lean_from_a_roll_rate_channel_is_estimated_and_close(ride, logs):
    lg = logs[25]
    rate = np.gradient(lg.channels["lean"], lg.t)          # a gyro: the noisy lean's derivative
    ch = {k: v for k, v in lg.channels.items() if k != "lean"}
    tel = log_to_telemetry(type(lg)(**{**lg.__dict__, "channels": {**ch, "roll_rate": rate}}), "kestrel")
    assert "integrated roll rate" in tel.estimated["roll_angle"]
    assert errors_vs_truth(tel, ride)["roll_angle"] < TOL["roll_angle"]


def test_a_ride_too_short_for_faults_is_logged_without_them():
    short = simulate_ride("kestrel", "amateur", laps=0.1, seed=3)      # a few seconds of riding
    assert short.t[-1] - short.t[0] < 10
    log = logged(short, 10.0, seed=1)
    t = log.t
    assert np.all(np.diff(t) < 0.2)          # no dropout window
    assert len(t) >= 0.9 * (short.t[-1] - short.t[0]) * 10.0
