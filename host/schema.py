"""The feature schema: the one source of truth for telemetry features and haptic actions.

Training (env observations), calibration, the host codec and the firmware (through the
generated ``feature_schema.h``) all read this module; nothing restates the feature list.

Conventions fixed here:

* Telemetry travels and is observed in **physical units** (``Feature.unit``).
* The policy network sees **normalized** features: ``(x - offset) / scale`` with
  ``offset`` the middle of the range and ``scale`` half its width, so every feature
  maps to [-1, 1]. Int8 input quantization is per tensor; without this step the
  small-range features (g, 0..1 pedals) would get only a few int8 codes.
* The network emits **normalized actions** in [0, 1] (sigmoid head). The device and
  the simulator map them to physical units with :meth:`FeatureSchema.actions_to_physical`.

>>> s = load_schema()
>>> s.n_features, s.n_actions
(8, 3)
>>> s.feature_names[:2]
('speed', 'roll_angle')
>>> float(s.normalize([45.0, 0, 0, 250, 0.5, 0.5, 0, 0.6])[0])
0.0
>>> [round(float(v), 1) for v in s.actions_to_physical([1.0, 0.0, 0.5])]
[1.0, 0.0, 175.0]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from motocoach.errors import SchemaError


@dataclass(frozen=True)
class Quantity:
    """One named, bounded quantity (a telemetry feature or an action)."""

    name: str
    unit: str
    min: float
    max: float
    description: str

    @property
    def offset(self) -> float:
        """Normalization offset: the middle of the valid range."""
        return (self.min + self.max) / 2.0

    @property
    def scale(self) -> float:
        """Normalization scale: half the width of the valid range."""
        return (self.max - self.min) / 2.0


@dataclass(frozen=True)
class CueLanguage:
    """What the three actions mean to the rider; the simulator, the checks and the firmware
    (through ``feature_schema.h``) all decide "on" and the frequency band with these values.

    Args:
        motor_on: a motor is on at normalized intensity >= this.
        low_max_hz: both motors on at <= this frequency = more throttle / carry speed.
        high_min_hz: both motors on at >= this frequency = brake / slow down.

    >>> c = load_schema().cues
    >>> c.decisions(np.array([[0.9, 0.1, 1.0], [0.3, 0.29, 0.0], [0.0, 0.0, 0.5]], np.float32)).tolist()
    [[1, 0, 2], [1, 0, 0], [0, 0, -1]]
    >>> c.decisions(np.array([[0.0, 0.0, 0.5]], np.float32), felt=False).tolist()
    [[0, 0, 1]]
    """

    motor_on: float
    low_max_hz: float
    high_min_hz: float

    def band(self, freq_hz: np.ndarray) -> np.ndarray:
        """Frequency band per row: 0 low (throttle), 1 middle (no meaning), 2 high (brake)."""
        f = np.asarray(freq_hz)
        return np.where(f <= self.low_max_hz, 0, np.where(f >= self.high_min_hz, 2, 1)).astype(np.int32)

    def decisions(self, actions01: np.ndarray, felt: bool = True) -> np.ndarray:
        """(N, 3) normalized actions -> (N, 3) ints: left on, right on, frequency band 0/1/2.

        The band is -1 when both motors are off: the unit does not drive a motor below
        ``motor_on`` (``haptics.c``), so the rider feels no frequency then. Two action rows make
        the same coaching decision when these rows are equal. ``felt=False`` keeps the band of
        silent rows too (the rule earlier reports used).
        """
        a = np.clip(np.asarray(actions01, dtype=np.float32), 0.0, 1.0)
        freq = load_schema().actions_to_physical(a)[:, 2]
        on_l, on_r = a[:, 0] >= self.motor_on, a[:, 1] >= self.motor_on
        band = self.band(freq)
        if felt:
            band = np.where(on_l | on_r, band, -1)
        return np.stack([on_l, on_r, band], axis=1).astype(np.int32)

    def normalized_band_edges(self) -> tuple[float, float]:
        """The two band edges as normalized frequency outputs (the network's third output)."""
        s = load_schema()
        hz = np.zeros((2, s.n_actions), np.float32)
        k = s.action_names.index("frequency")
        hz[:, k] = (self.low_max_hz, self.high_min_hz)
        edges = s.physical_to_actions(hz)[:, k]
        return float(edges[0]), float(edges[1])


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered telemetry features and actions, with a stable hash.

    Args:
        name: schema family name.
        version: bumped on any change of order, names, units or ranges.
        rate_hz: telemetry / control rate.
        features: telemetry features in wire and network order.
        actions: the haptic outputs in network order.
        cues: the cue language (motor-on threshold, frequency bands). Not part of :attr:`hash`:
            the hash pins the model's inputs and outputs; the cue language is how the firmware
            renders the outputs, and it travels with the firmware's generated header.
    """

    name: str
    version: int
    rate_hz: int
    features: tuple[Quantity, ...]
    actions: tuple[Quantity, ...]
    cues: CueLanguage

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.actions)

    @property
    def feature_low(self) -> np.ndarray:
        return np.array([f.min for f in self.features], dtype=np.float32)

    @property
    def feature_high(self) -> np.ndarray:
        return np.array([f.max for f in self.features], dtype=np.float32)

    @property
    def norm_offset(self) -> np.ndarray:
        return np.array([f.offset for f in self.features], dtype=np.float32)

    @property
    def norm_scale(self) -> np.ndarray:
        return np.array([f.scale for f in self.features], dtype=np.float32)

    def canonical(self) -> dict:
        """What the hash covers: order, names, units and ranges (not the prose)."""
        def q(items: Sequence[Quantity]) -> list:
            return [[i.name, i.unit, float(i.min), float(i.max)] for i in items]

        return {"name": self.name, "version": self.version, "rate_hz": self.rate_hz,
                "features": q(self.features), "actions": q(self.actions)}

    @property
    def hash(self) -> str:
        """sha256 (hex) of the canonical JSON form; goes into every model manifest."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def hash32(self) -> int:
        """First 4 bytes of :attr:`hash` as a little-endian u32, for the wire and C header."""
        return int.from_bytes(bytes.fromhex(self.hash)[:4], "little")

    @property
    def short_hash(self) -> str:
        """The first 8 hex digits of :attr:`hash`: how every tool shows the schema (same bytes as :attr:`hash32`)."""
        return self.hash[:8]

    # --- conversions (float32 throughout, matching the device) -------------------------

    def validate(self, telemetry: np.ndarray) -> np.ndarray:
        """Return ``telemetry`` as float32 (..., n_features); raise on wrong shape or NaN/inf."""
        x = np.asarray(telemetry, dtype=np.float32)
        if x.shape[-1:] != (self.n_features,):
            raise SchemaError(
                f"telemetry has {x.shape[-1] if x.ndim else 0} features, the schema "
                f"'{self.name}' v{self.version} has {self.n_features}: {', '.join(self.feature_names)}")
        if not np.all(np.isfinite(x)):
            bad = sorted({self.feature_names[i] for i in np.argwhere(~np.isfinite(x))[:, -1]})
            raise SchemaError(f"telemetry contains NaN or inf in: {', '.join(bad)}")
        return x

    def clip(self, telemetry: np.ndarray) -> np.ndarray:
        """Clamp each feature to its schema range (what the device does)."""
        x = np.asarray(telemetry, dtype=np.float32)
        return np.clip(x, self.feature_low, self.feature_high).astype(np.float32)

    def normalize(self, telemetry: np.ndarray) -> np.ndarray:
        """Physical telemetry -> clamped, normalized network input in [-1, 1] (float32)."""
        x = self.clip(telemetry)
        return ((x - self.norm_offset) / self.norm_scale).astype(np.float32)

    def actions_to_physical(self, y: np.ndarray) -> np.ndarray:
        """Normalized actions in [0, 1] -> physical units (intensity 0..1, frequency Hz)."""
        y = np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
        lo = np.array([a.min for a in self.actions], dtype=np.float32)
        hi = np.array([a.max for a in self.actions], dtype=np.float32)
        return (lo + y * (hi - lo)).astype(np.float32)

    def physical_to_actions(self, a: np.ndarray) -> np.ndarray:
        """Physical actions -> normalized [0, 1] (inverse of :meth:`actions_to_physical`)."""
        lo = np.array([q.min for q in self.actions], dtype=np.float32)
        hi = np.array([q.max for q in self.actions], dtype=np.float32)
        return np.clip((np.asarray(a, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _quantity(d: dict, where: str) -> Quantity:
    try:
        q = Quantity(str(d["name"]), str(d["unit"]), float(d["min"]), float(d["max"]),
                     str(d.get("description", "")))
    except (KeyError, TypeError, ValueError) as e:
        raise SchemaError(f"{where}: each entry needs name, unit, min, max ({e})") from e
    if not (np.isfinite(q.min) and np.isfinite(q.max) and q.min < q.max):
        raise SchemaError(f"{where}: '{q.name}' needs finite min < max, got {q.min}..{q.max}")
    return q


def parse_schema(doc: dict, source: str = "schema") -> FeatureSchema:
    """Build a :class:`FeatureSchema` from its JSON document, with clear errors."""
    try:
        feats = tuple(_quantity(f, f"{source} features") for f in doc["features"])
        acts = tuple(_quantity(a, f"{source} actions") for a in doc["actions"])
        c = doc["cues"]
        cues = CueLanguage(float(c["motor_on"]), float(c["low_max_hz"]), float(c["high_min_hz"]))
        schema = FeatureSchema(str(doc["name"]), int(doc["version"]), int(doc["rate_hz"]),
                               feats, acts, cues)
    except KeyError as e:
        raise SchemaError(f"{source}: missing key {e}") from e
    except (TypeError, ValueError) as e:
        raise SchemaError(f"{source}: cues need numbers motor_on, low_max_hz, high_min_hz ({e})") from e
    if not (0.0 < cues.motor_on <= 1.0 and cues.low_max_hz < cues.high_min_hz):
        raise SchemaError(f"{source} cues: need 0 < motor_on <= 1 and low_max_hz < high_min_hz")
    names = schema.feature_names + schema.action_names
    if len(set(names)) != len(names):
        raise SchemaError(f"{source}: feature and action names must be unique")
    return schema


@lru_cache(maxsize=None)
def hash32_hex(hash32: int) -> str:
    """A wire/header u32 schema hash shown in the byte order of the sha256 hex (= ``Schema.short_hash``).

    >>> s = load_schema()
    >>> hash32_hex(s.hash32) == s.hash[:8]
    True
    """
    return int(hash32).to_bytes(4, "little").hex()


@lru_cache(maxsize=1)
def _packaged_schema() -> FeatureSchema:
    # parsed once: the simulator asks for it on every step
    text = resources.files("motocoach").joinpath("feature_schema.json").read_text()
    return parse_schema(json.loads(text), "feature_schema.json")


def load_schema(path: str | None = None) -> FeatureSchema:
    """Load the packaged schema, or a schema JSON file at ``path``."""
    if path is None:
        return _packaged_schema()
    p = Path(path)
    try:
        return parse_schema(json.loads(p.read_text()), str(p))
    except (OSError, json.JSONDecodeError) as e:
        raise SchemaError(f"cannot read schema {p}: {e}") from e
