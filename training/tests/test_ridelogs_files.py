"""Ride-log importers on small hand-written files: bad files name the line and column, units the file
does not give are asked for, and the variants real exports come in are accepted (no simulation)."""

from __future__ import annotations

import pytest

from motocoach.errors import RideLogError
from motocoach.training.ridelogs.readers import parse_text, read_log


RC_HEAD = ("This file is created using RaceChrono v9.1.3 ( http://racechrono.com/ ).\nFormat,3\nSession title,x\n\n")


def _rc(rows: list[str], names="timestamp,lap_number,latitude,longitude,speed", units="unix time,,deg,deg,m/s") -> str:
    return RC_HEAD + names + "\n" + units + "\n" + ",,100: gps,100: gps,100: gps\n" + "\n".join(rows) + "\n"


def _rows(n: int, dt: float = 0.1) -> list[str]:
    return [f"{1790000000 + i * dt:.3f},0,47.0,{14.0 + i * 1e-5:.6f},20.0" for i in range(n)]


@pytest.mark.parametrize("text,match", [
    (_rc(_rows(5) + ["1790000000.200,0,47.0,14.0,20.0"]), r":13: column 'timestamp': time .* does not increase"),
    (_rc(_rows(20, dt=0.5)), "sample rate 2.0 Hz"),
    (_rc(_rows(5) + ["1790000009.000,0,47.0,abc,20.0"]), r":13: column 4 \('longitude'\): 'abc' is not a number"),
    (_rc(_rows(5), units="unix time,,deg,deg,furlong/s"), "unknown unit 'furlong/s'"),
    ("time,speed\n0,1\n", "not a RaceChrono CSV v3 export"),
])
def test_bad_files_name_the_line_and_column(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(RideLogError, match=match):
        read_log(p)


def test_binary_file_is_refused_with_its_line(tmp_path):
    p = tmp_path / "ride.csv"
    p.write_bytes(b"Format,3\ntimestamp\n\x00\x01\x02binary")
    with pytest.raises(RideLogError, match=r"ride.csv:3: binary data"):
        read_log(p)


def test_a_unit_the_file_does_not_give_is_asked_for():
    text = ('"Format","AiM CSV File"\n"Sample Rate","10"\n\n"Time","GPS Speed","GPS Latitude","GPS Longitude"\n'
            + "".join(f"{i / 10:.1f},{72 + i},47.0,{14 + i * 1e-5:.6f}\n" for i in range(30)))
    with pytest.raises(RideLogError, match=r"'GPS Speed' has no unit in the file; give it with --units speed=UNIT"):
        parse_text(text, "a.csv")
    log = parse_text(text, "a.csv", units={"speed": "km/h"})
    assert log.fmt == "aim" and log.channels["speed"][0] == pytest.approx(20.0)


def test_variants_column_order_extra_channels_and_no_units_row():
    names = "speed,longitude,satellites,timestamp,latitude,lean_angle,x_acc"
    rows = [f"20,{14 + i * 1e-5:.6f},9,{1790000000 + i * 0.04:.3f},47.0,{i % 5},0.1" for i in range(40)]
    text = RC_HEAD + names + "\n" + "\n".join(rows) + "\n"   # no units row: RaceChrono's documented units
    log = parse_text(text, "v.csv")
    assert log.rate_hz == pytest.approx(25, abs=0.1) and log.channels["lean"][3] == 3
    assert set(log.extra) == {"satellites", "x_acc"}


def test_cli_import_of_a_bad_file_is_one_red_line_and_status_2(tmp_path, capsys):
    from motocoach.cli import main

    p = tmp_path / "bad.csv"
    p.write_text(_rc(_rows(20, dt=0.5)))
    assert main(["data", "import", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3


@pytest.mark.parametrize("name", ["log", "readers", "ingest", "trackgeo"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"motocoach.training.ridelogs.{name}"))
    assert result.attempted > 0 and result.failed == 0


def test_expert_csv_ignores_screenshots_and_asks_for_the_speed_unit():
    head = "episode,frame,timestamp,throttle,brake,steering,gear_up,gear_down,clutch,speed,rpm,gear,lap_time,screenshot\n"
    rows = "".join(f"1,{i},{i * 0.05:.2f},0.5,0,0.1,0,0,0,{30 + i},9000,3,{i * 0.05:.2f},shots/{i}.png\n" for i in range(40))
    with pytest.raises(RideLogError, match=r"'speed' has no unit in the file; give it with --units speed=UNIT"):
        parse_text(head + rows, "e.csv")
    log = parse_text(head + rows, "e.csv", units={"speed": "km/h"})
    assert log.fmt == "expert" and "screenshot" in log.extra and log.rate_hz == pytest.approx(20)
    assert not log.has_gps and log.channels["speed"][0] == pytest.approx(30 / 3.6)
