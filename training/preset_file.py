"""Training presets as files: ``motocoach sweep tune`` writes one, ``motocoach train --preset-file`` reads it.

The file is JSON: ``{"preset": {<every TrainPreset field>}, ...}``; other top-level keys (how
the preset was found, e.g. the tune objective and trials) are kept for people and ignored here.
Every field is checked against :class:`~motocoach.training.train.TrainPreset`: an unknown or
missing field, or a value of the wrong type, is one clear :class:`ConfigError`.

>>> from motocoach.training.train import PRESETS
>>> preset_from_dict(preset_to_dict(PRESETS["test"])) == PRESETS["test"]
True
"""

from __future__ import annotations

import json
import typing
from dataclasses import MISSING, asdict, fields
from pathlib import Path

from motocoach.errors import ConfigError
from motocoach.training.train import TrainPreset


def preset_to_dict(preset: TrainPreset) -> dict:
    return json.loads(json.dumps(asdict(preset)))      # tuples as lists, like the file


def _check(name: str, hint, value):
    """``value`` converted to the field's type, or a ConfigError naming the field."""
    text = str(hint)
    if value is None and "None" in text:
        return None
    if text.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"preset field {name!r}: give a list of names, not {value!r}")
        return tuple(value)
    if hint is int or text == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"preset field {name!r}: give a whole number >= 1, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"preset field {name!r}: give a number, not {value!r}")
    return float(value)


def preset_from_dict(data: dict) -> TrainPreset:
    """A validated :class:`TrainPreset` from a dict of its fields."""
    if not isinstance(data, dict):
        raise ConfigError("a preset must be a JSON object of TrainPreset fields")
    hints = typing.get_type_hints(TrainPreset)
    known = {f.name: f for f in fields(TrainPreset)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown preset field(s) {', '.join(unknown)}; the fields are {', '.join(known)}")
    missing = [n for n, f in known.items() if n not in data and f.default is MISSING]
    if missing:
        raise ConfigError(f"the preset lacks the field(s) {', '.join(missing)}")
    return TrainPreset(**{n: _check(n, hints[n], v) for n, v in data.items()})


def write_preset_file(path: Path, preset: TrainPreset, **about) -> Path:
    """Write ``preset`` (plus ``about``: provenance for people) as JSON to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"preset": preset_to_dict(preset), **about}, indent=2, allow_nan=False) + "\n")
    return path


def load_preset_file(path: Path) -> TrainPreset:
    """The :class:`TrainPreset` in a preset file, validated."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--preset-file {path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"--preset-file {path}: not JSON ({e})") from None
    if not isinstance(data, dict) or "preset" not in data:
        raise ConfigError(f"--preset-file {path}: expected an object with a \"preset\" key "
                          "(as `motocoach sweep tune` writes)")
    try:
        return preset_from_dict(data["preset"])
    except ConfigError as e:
        raise ConfigError(f"--preset-file {path}: {e}") from None
