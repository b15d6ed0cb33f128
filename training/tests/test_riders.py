"""Rider profiles are data and are validated."""

from __future__ import annotations

import json

import pytest

from motocoach.errors import ConfigError
from motocoach.training import riders as R


def test_builtin_profiles_and_skill_order():
    names = R.builtin_riders()
    assert {"pro", "amateur", "novice"} <= set(names)
    pro, am, nov = (R.get_rider(n) for n in ("pro", "amateur", "novice"))
    assert pro.speed_factor > am.speed_factor > nov.speed_factor
    assert pro.perception_delay_s < am.perception_delay_s < nov.perception_delay_s
    for n in names:
        assert 0.25 <= R.get_rider(n).perception_delay_s <= 0.5


def test_profile_from_file(tmp_path):
    doc = R.get_rider("amateur").to_dict() | {"name": "mine", "compliance": 0.5}
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(doc))
    assert R.get_rider(str(p)).compliance == 0.5


@pytest.mark.parametrize("change, message", [
    ({"compliance": 1.5}, "outside"),
    ({"line_noise_m": float("nan")}, "finite"),
    ({"speed_factor": "fast"}, "finite"),
    ({"bogus": 1}, "unknown"),
])
def test_bad_profiles(tmp_path, change, message):
    doc = R.get_rider("amateur").to_dict() | change
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc).replace("NaN", "NaN"))
    with pytest.raises(ConfigError, match=message):
        R.load_rider(p)


def test_missing_field_and_garbage(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"name": "x", "speed_factor": 0.8}))
    with pytest.raises(ConfigError, match="missing"):
        R.load_rider(p)
    p.write_text("{{{")
    with pytest.raises(ConfigError, match="cannot read"):
        R.load_rider(p)


def test_huge_numbers_and_binary_files_are_clear_errors(tmp_path):
    p = tmp_path / "big.json"
    doc = json.dumps(R.get_rider("amateur").to_dict()).replace('"compliance": 0.75', '"compliance": ' + "9" * 400)
    p.write_text(doc)
    with pytest.raises(ConfigError, match="compliance must be a finite number"):
        R.load_rider(p)
    p.write_bytes(b"\xff\xfe\x00garbage" * 50)
    with pytest.raises(ConfigError, match="cannot read"):
        R.load_rider(p)


def test_every_profile_rides_a_known_vehicle():
    from motocoach.training.vehicles import builtin_vehicles

    for n in R.builtin_riders():
        assert R.get_rider(n).vehicle in builtin_vehicles()
