"""Vehicle profiles: validation, derived limits, and the docs generated from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motocoach.errors import ConfigError
from motocoach.training import vehicles as V

DOCS = Path(__file__).resolve().parents[2] / "docs" / "vehicles.md"


def test_limits_follow_from_the_fields():
    for name in V.builtin_vehicles():
        v = V.get_vehicle(name)
        assert v.lateral_max_g == pytest.approx(min(v.mu, np.tan(np.radians(v.lean_max_deg))))
        assert v.brake_max_g <= v.mu and v.brake_max_g <= v.stoppie_g
        speeds = np.linspace(1, 120, 50)
        drive = v.drive_max(speeds)
        assert np.all(np.diff(drive) <= 1e-9) and drive[0] <= v.wheelie_g * V.G + 1e-9
        # at top speed the power just balances drag and rolling resistance
        top = v.top_speed_mps
        assert v.drive_max(np.array([top]))[0] == pytest.approx(v.resistance(np.array([top]))[0], rel=1e-3)


def test_classes_are_ordered_like_the_real_ones():
    top = {n: V.get_vehicle(n).top_speed_mps * 3.6 for n in V.builtin_vehicles()}
    assert top["motogp"] > top["superbike"] > top["supersport600"] > top["roadsport"]
    assert V.get_vehicle("roadsport").lateral_max_g < V.get_vehicle("supersport600").lateral_max_g


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("mu = 1.15", "mu = 5.0"), r"mu=5.0 - is outside"),
    (lambda t: t.replace("mu = 1.15", "mu = nan"), "mu must be a finite number"),
    (lambda t: t.replace("mu = 1.15", "mu = " + "9" * 400), "outside|finite"),
    (lambda t: t.replace("mu = 1.15", "mu = 'grippy'"), "mu must be a finite number"),
    (lambda t: t.replace("mu = 1.15", ""), "missing field"),
    (lambda t: t + "\nwings = 2\n", "unknown field"),
    (lambda t: t + "\n[[[", "not valid TOML"),
])
def test_bad_profiles_name_the_field(tmp_path, edit, message):
    text = (Path(V.__file__).parent / "vehicles" / "roadsport.toml").read_text()
    p = tmp_path / "bike.toml"
    p.write_text(edit(text))
    with pytest.raises(ConfigError, match=message):
        V.load_vehicle(p)


def test_binary_and_unknown_vehicles(tmp_path):
    p = tmp_path / "x.toml"
    p.write_bytes(b"\xff\xfe\x00" * 100)
    with pytest.raises(ConfigError, match="cannot read"):
        V.load_vehicle(p)
    with pytest.raises(ConfigError, match="superbike"):
        V.get_vehicle("no-such-bike")


def test_docs_tables_are_generated():
    text = DOCS.read_text()
    assert V.markdown_table() in text and V.derived_table() in text, \
        "regenerate the tables in docs/vehicles.md from motocoach.training.vehicles"
