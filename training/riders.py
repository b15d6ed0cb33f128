"""Rider profiles as data: how fast, how precise, how quickly and how willingly a rider reacts.

Profiles are JSON files (``training/riders/*.json`` are built in). Every field is required
and range-checked, so a hand-written profile fails with a message naming the field.

>>> p = get_rider("amateur")
>>> p.name, 0.25 <= p.perception_delay_s <= 0.5
('amateur', True)
>>> "pro" in builtin_riders()
True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path

from motocoach.errors import ConfigError

#: field -> (min, max, meaning). The table in docs/training.md is generated from this.
RIDER_FIELDS: dict[str, tuple[float, float, str]] = {
    "speed_factor": (0.5, 1.0, "fraction of the vehicle's limit corner speed the rider aims for"),
    "corner_speed_noise": (0.0, 0.2, "per-corner std of that fraction"),
    "brake_decel_g": (0.3, 1.5, "tyre braking the rider uses, g (capped at the vehicle's limit; drag adds to it)"),
    "brake_point_error_m": (0.0, 40.0, "per-corner std of the braking point, m (positive = late)"),
    "throttle_max": (0.2, 1.0, "largest throttle opening the rider uses while leaned (upright: full)"),
    "line_noise_m": (0.0, 3.0, "std of the drift away from the racing line, m"),
    "line_tau_s": (0.2, 10.0, "time constant of that drift (and of self-correction), s"),
    "perception_delay_s": (0.05, 1.0, "delay from a cue to its perception, s"),
    "compliance": (0.0, 1.0, "probability per control step of acting on a perceived cue"),
    "confidence_gain": (0.0, 0.3, "speed_factor change at full confidence (throttle/brake cues)"),
    "habituation_tau_s": (0.5, 30.0, "time constant of getting used to buzzing, s"),
    "habituation_free_duty": (0.0, 0.9, "cue duty the rider tolerates without habituating"),
    "confidence_tau_s": (0.5, 30.0, "how long a throttle/brake cue keeps its effect, s"),
    "line_correction_mps": (0.0, 3.0, "lateral correction speed when following a side cue, m/s"),
    "brake_margin_m": (0.0, 80.0, "extra distance by which the rider finishes braking too early, m"),
    "exit_delay_m": (0.0, 80.0, "distance past an apex before the rider opens the throttle fully, m"),
}
DEFAULT_VEHICLE = "superbike"
#: Fields added after the first profile format; files without them get these values.
RIDER_DEFAULTS: dict[str, float] = {"brake_margin_m": 0.0, "exit_delay_m": 0.0}


@dataclass(frozen=True)
class RiderProfile:
    """One rider. ``name`` and ``description`` plus the numeric fields of :data:`RIDER_FIELDS`."""

    name: str
    description: str
    speed_factor: float
    corner_speed_noise: float
    brake_decel_g: float
    brake_point_error_m: float
    throttle_max: float
    line_noise_m: float
    line_tau_s: float
    perception_delay_s: float
    compliance: float
    confidence_gain: float
    habituation_tau_s: float
    habituation_free_duty: float
    confidence_tau_s: float
    line_correction_mps: float
    brake_margin_m: float = 0.0
    exit_delay_m: float = 0.0
    vehicle: str = DEFAULT_VEHICLE

    def to_dict(self) -> dict:
        return asdict(self)


def parse_rider(doc: dict, source: str = "rider") -> RiderProfile:
    """Validate a profile document; errors name the field and its allowed range."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a rider profile is a JSON object")
    doc = RIDER_DEFAULTS | doc
    missing = [k for k in RIDER_FIELDS if k not in doc]
    if missing:
        raise ConfigError(f"{source}: missing field(s) {', '.join(missing)}; "
                          "copy a built-in profile (e.g. amateur.json) and edit it")
    known = {f.name for f in fields(RiderProfile)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
    values: dict = {"name": str(doc.get("name") or Path(source).stem),
                    "description": str(doc.get("description", "")),
                    "vehicle": str(doc.get("vehicle") or DEFAULT_VEHICLE)}
    for k, (lo, hi, meaning) in RIDER_FIELDS.items():
        v = doc[k]
        if not finite_number(v):
            raise ConfigError(f"{source}: {k} must be a finite number ({meaning})")
        if not lo <= v <= hi:
            raise ConfigError(f"{source}: {k}={v} is outside [{lo}, {hi}] ({meaning})")
        values[k] = float(v)
    return RiderProfile(**values)


def finite_number(v: object) -> bool:
    """True for a finite int or float (not a bool, not a string, not NaN/inf, not an integer
    too large for a float such as 400 digits): the check every profile field gets."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def load_rider(path: str | Path) -> RiderProfile:
    """Load a rider profile JSON file."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ConfigError(f"cannot read rider profile {p}: {e}") from e
    return parse_rider(doc, str(p))


def builtin_riders() -> list[str]:
    """Names of the built-in profiles (``training/riders/*.json``)."""
    folder = resources.files("motocoach.training").joinpath("riders")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


@lru_cache(maxsize=32)
def get_rider(name_or_path: str) -> RiderProfile:
    """A built-in profile by name, or any profile JSON by path."""
    if name_or_path in builtin_riders():
        text = resources.files("motocoach.training").joinpath("riders", f"{name_or_path}.json").read_text()
        return parse_rider(json.loads(text), f"{name_or_path}.json")
    p = Path(name_or_path)
    if p.suffix.lower() == ".json" or p.exists():
        return load_rider(p)
    raise ConfigError(f"unknown rider {name_or_path!r}; use one of {', '.join(builtin_riders())} "
                      "or a path to a profile JSON")
