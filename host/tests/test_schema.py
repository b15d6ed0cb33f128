"""The feature schema: its Python form, its hash, its errors and its generated C header."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from motocoach import cheaders
from motocoach.errors import SchemaError
from motocoach.schema import load_schema, parse_schema

ROOT = Path(__file__).resolve().parents[2]


def _doc() -> dict:
    return json.loads((ROOT / "host" / "feature_schema.json").read_text())


def test_schema_has_the_seed_features_and_three_actions():
    s = load_schema()
    assert s.feature_names == ("speed", "roll_angle", "lateral_g", "dist_to_apex", "throttle",
                               "brake", "line_deviation", "friction_usage")
    assert s.action_names == ("left_intensity", "right_intensity", "frequency")
    assert (s.actions[2].min, s.actions[2].max) == (50.0, 300.0)


def test_hash_is_stable_and_ignores_prose_but_not_ranges():
    doc = _doc()
    base = parse_schema(doc).hash
    doc["features"][0]["description"] = "reworded"
    assert parse_schema(doc).hash == base
    doc["features"][0]["max"] = 91.0
    assert parse_schema(doc).hash != base
    doc = _doc()
    doc["features"][0], doc["features"][1] = doc["features"][1], doc["features"][0]
    assert parse_schema(doc).hash != base


def test_normalize_maps_ranges_to_unit_interval_and_clamps():
    s = load_schema()
    lo, hi = s.feature_low, s.feature_high
    np.testing.assert_allclose(s.normalize(lo), -1.0)
    np.testing.assert_allclose(s.normalize(hi), 1.0)
    np.testing.assert_allclose(s.normalize(hi * 10 + 1), 1.0)
    assert s.normalize(np.stack([lo, hi])).shape == (2, s.n_features)


def test_action_mapping_round_trips_and_clamps():
    s = load_schema()
    y = np.array([0.25, 0.75, 0.4], dtype=np.float32)
    np.testing.assert_allclose(s.physical_to_actions(s.actions_to_physical(y)), y, atol=1e-6)
    np.testing.assert_allclose(s.actions_to_physical([2.0, -1.0, 9.0]), [1.0, 0.0, 300.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_rejects_non_finite_telemetry(bad):
    s = load_schema()
    x = s.norm_offset.copy()
    x[2] = bad
    with pytest.raises(SchemaError, match="lateral_g"):
        s.validate(x)


def test_validate_rejects_wrong_width():
    with pytest.raises(SchemaError, match="8"):
        load_schema().validate(np.zeros(7))


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["features"][0].pop("max"), "min, max"),
    (lambda d: d["features"][1].update(min=5, max=5), "min < max"),
    (lambda d: d["actions"].append(dict(d["features"][0])), "unique"),
    (lambda d: d.pop("features"), "missing key"),
])
def test_malformed_schema_gets_a_clear_error(mutate, match):
    doc = _doc()
    mutate(doc)
    with pytest.raises(SchemaError, match=match):
        parse_schema(doc)


def test_committed_headers_are_up_to_date():
    for rel, text in cheaders.generated_headers().items():
        assert (ROOT / rel).read_text() == text, f"{rel} is stale: run `make models`"


def test_c_header_agrees_with_python(tmp_path):
    """Compile a program against the generated header and compare every value it prints."""
    s = load_schema()
    src = tmp_path / "dump.c"
    src.write_text(r'''
#include <stdio.h>
#include "feature_schema.h"
int main(void) {
  const float lo[] = SCHEMA_FEATURE_MIN, hi[] = SCHEMA_FEATURE_MAX;
  const float off[] = SCHEMA_NORM_OFFSET, sc[] = SCHEMA_NORM_SCALE;
  const char *names[] = SCHEMA_FEATURE_NAMES;
  printf("%d %d %u\n", SCHEMA_N_FEATURES, SCHEMA_N_ACTIONS, (unsigned)SCHEMA_HASH32);
  for (int i = 0; i < SCHEMA_N_FEATURES; i++) printf("%s %.9g %.9g %.9g %.9g\n", names[i], lo[i], hi[i], off[i], sc[i]);
  printf("%.9g %.9g\n", ACTION_FREQUENCY_MIN, ACTION_FREQUENCY_MAX);
  return 0;
}''')
    exe = tmp_path / "dump"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(ROOT / cheaders.CORE_DIR),
                    str(src), "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    n_f, n_a, h = lines[0].split()
    assert (int(n_f), int(n_a), int(h)) == (s.n_features, s.n_actions, s.hash32)
    for line, f in zip(lines[1:], s.features):
        name, *vals = line.split()
        assert name == f.name
        np.testing.assert_array_equal(np.float32(vals), np.float32([f.min, f.max, f.offset, f.scale]))
    assert [float(v) for v in lines[-1].split()] == [s.actions[2].min, s.actions[2].max]


def test_cue_language_is_one_rule_for_the_simulator_the_checks_and_the_header():
    from motocoach.quantization.checks import decisions
    from motocoach.training.sim import decode_cues

    c = load_schema().cues
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, (4000, 3)).astype(np.float32)
    a[:100, :2] = c.motor_on                       # the threshold itself is "on"
    a[100:200, 2] = (c.low_max_hz - 50.0) / 250.0  # band edges (50..300 Hz actions)
    a[200:300, 2] = (c.high_min_hz - 50.0) / 250.0
    d, cue = decisions(a), decode_cues(a)
    assert np.array_equal(d[:, 0] | d[:, 1], cue["on"].astype(np.int32))
    both = (d[:, 0] == 1) & (d[:, 1] == 1)
    assert np.array_equal(both & (d[:, 2] == 2), cue["brake"] > 0)
    assert np.array_equal(both & (d[:, 2] == 0), cue["throttle"] > 0)
    silent = cue["on"] == 0
    assert (d[silent, 2] == -1).all() and (d[~silent, 2] >= 0).all()  # no frequency is felt with both off
    every_band = c.decisions(a, felt=False)
    assert d[:100, :2].all() and (every_band[100:200, 2] == 0).all() and (every_band[200:300, 2] == 2).all()
    assert np.array_equal(d[~silent], every_band[~silent])
    assert np.array_equal(np.float32(c.normalized_band_edges()), a[[100, 200], 2])
    h = cheaders.render_schema_header()
    assert f"#define CUE_MOTOR_ON {c.motor_on!r}f" in h
    assert f"#define CUE_LOW_MAX_HZ {c.low_max_hz!r}f" in h and f"#define CUE_HIGH_MIN_HZ {c.high_min_hz!r}f" in h


def test_bad_cue_language_is_a_schema_error():
    doc = _doc()
    doc["cues"]["low_max_hz"] = 250.0
    with pytest.raises(SchemaError, match="cues"):
        parse_schema(doc)
    doc = _doc()
    del doc["cues"]
    with pytest.raises(SchemaError, match="cues"):
        parse_schema(doc)
