"""Vehicle profiles as data: what decides a motorcycle lap (grip, lean, power, drag, pitch).

Profiles are TOML files (``training/vehicles/*.toml`` are built in), one per machine class,
like the board files. Every field is required and range-checked; docs/vehicles.md lists
each field with its unit and the public source of every built-in value.

The limits the simulator and the reference lap use all derive from these fields:

* lateral: ``min(mu, tan(lean_max))`` g, the lean-limited and grip-limited cornering;
* braking: ``min(mu, stoppie)`` g with ``stoppie = (1 - front_load) * wheelbase / cog_height``
  (the rear wheel lifts when the braking moment about the front contact patch exceeds the
  weight's), plus drag and rolling resistance;
* drive: ``min(P / (m v), wheelie, mu)`` with ``wheelie = front_load * wheelbase / cog_height``;
* combined: an elliptic g-g diagram per speed (the g-g-v diagram, :meth:`VehicleProfile.ggv`).

>>> v = get_vehicle("motogp")
>>> round(v.top_speed_mps * 3.6)      # 366.1 km/h is the MotoGP record (Mugello 2023)
363
>>> sorted(builtin_vehicles())
['motogp', 'roadsport', 'superbike', 'supersport600']
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from motocoach.errors import ConfigError
from motocoach.training.riders import finite_number

G = 9.81
RHO_AIR = 1.20           # kg/m^3, dry air at about 20 degC and sea level
#: field -> (min, max, unit, meaning). The table in docs/vehicles.md is generated from this.
VEHICLE_FIELDS: dict[str, tuple[float, float, str, str]] = {
    "mass_kg": (100.0, 450.0, "kg", "bike + rider + kit, ready to ride"),
    "power_kw": (5.0, 300.0, "kW", "peak power at the rear wheel"),
    "cda_m2": (0.15, 1.0, "m^2", "drag area (drag coefficient x frontal area), rider tucked"),
    "crr": (0.005, 0.05, "-", "rolling resistance coefficient"),
    "mu": (0.5, 2.0, "-", "tyre-road friction coefficient (peak, dry)"),
    "lean_max_deg": (30.0, 70.0, "deg", "largest effective lean of the combined centre of mass"),
    "wheelbase_m": (1.0, 2.0, "m", "distance between the tyre contact patches"),
    "cog_height_m": (0.3, 1.0, "m", "height of the combined centre of mass"),
    "front_load": (0.3, 0.7, "-", "static share of the weight on the front wheel"),
}


@dataclass(frozen=True)
class VehicleProfile:
    """One machine class. ``name`` and ``description`` plus the fields of :data:`VEHICLE_FIELDS`."""

    name: str
    description: str
    mass_kg: float
    power_kw: float
    cda_m2: float
    crr: float
    mu: float
    lean_max_deg: float
    wheelbase_m: float
    cog_height_m: float
    front_load: float

    @property
    def drag_per_m(self) -> float:
        """Aerodynamic deceleration per speed squared, 1/m (``0.5 rho CdA / m``)."""
        return 0.5 * RHO_AIR * self.cda_m2 / self.mass_kg

    @property
    def lateral_max_g(self) -> float:
        """Cornering limit, g: the lower of grip and lean."""
        return min(self.mu, math.tan(math.radians(self.lean_max_deg)))

    @property
    def stoppie_g(self) -> float:
        return (1.0 - self.front_load) * self.wheelbase_m / self.cog_height_m

    @property
    def wheelie_g(self) -> float:
        return self.front_load * self.wheelbase_m / self.cog_height_m

    @property
    def brake_max_g(self) -> float:
        """Braking the tyres can give, g (drag and rolling resistance come on top)."""
        return min(self.mu, self.stoppie_g)

    @cached_property
    def top_speed_mps(self) -> float:
        """Speed where the power at the wheel equals drag plus rolling resistance."""
        lo, hi = 1.0, 200.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.drive_max(np.array([mid]))[0] > self.resistance(np.array([mid]))[0]:
                lo = mid
            else:
                hi = mid
        return lo

    def drive_max(self, v: np.ndarray) -> np.ndarray:
        """Largest forward acceleration from the engine at speed ``v``, m/s^2 (before drag)."""
        v = np.maximum(np.asarray(v, dtype=np.float64), 1.0)
        power = self.power_kw * 1000.0 / (self.mass_kg * v)
        return np.minimum(power, min(self.wheelie_g, self.mu) * G)

    def resistance(self, v: np.ndarray) -> np.ndarray:
        """Deceleration from drag and rolling resistance at speed ``v``, m/s^2."""
        v = np.asarray(v, dtype=np.float64)
        return self.drag_per_m * v * v + self.crr * G

    def ggv(self, speeds: np.ndarray) -> np.ndarray:
        """The g-g-v diagram as rows ``(v, ax_max, ay_max)`` in m/s, m/s^2.

        ``ax_max`` is the tyre limit for braking (the drive limit is :meth:`drive_max`),
        ``ay_max`` the lateral limit; between them the limit is an ellipse.
        """
        v = np.asarray(speeds, dtype=np.float64)
        return np.column_stack([v, np.full_like(v, self.brake_max_g * G),
                                np.full_like(v, self.lateral_max_g * G)])

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "description", *VEHICLE_FIELDS)}


def markdown_table() -> str:
    """The field table of docs/vehicles.md (generated; a test keeps the doc in step)."""
    out = ["| vehicle field | unit | allowed range | meaning |", "|---|---|---|---|"]
    out += [f"| `{k}` | {unit} | {lo:g} .. {hi:g} | {meaning} |" for k, (lo, hi, unit, meaning) in VEHICLE_FIELDS.items()]
    return "\n".join(out)


def derived_table() -> str:
    """The built-in vehicles' derived limits (docs/vehicles.md; generated)."""
    out = ["| vehicle | lateral g | braking g (tyres) | stoppie g | wheelie g | top speed km/h | drag decel at 200 km/h, g |",
           "|---|---|---|---|---|---|---|"]
    for name in builtin_vehicles():
        v = get_vehicle(name)
        drag = float(v.resistance(np.array([200 / 3.6]))[0]) / G
        out.append(f"| `{name}` | {v.lateral_max_g:.2f} | {v.brake_max_g:.2f} | {v.stoppie_g:.2f} | "
                   f"{v.wheelie_g:.2f} | {v.top_speed_mps * 3.6:.0f} | {drag:.2f} |")
    return "\n".join(out)


def parse_vehicle(doc: dict, source: str = "vehicle") -> VehicleProfile:
    """Validate a profile document; errors name the field, its unit and allowed range."""
    missing = [k for k in VEHICLE_FIELDS if k not in doc]
    if missing:
        raise ConfigError(f"{source}: missing field(s) {', '.join(missing)}; "
                          "copy a built-in profile (e.g. superbike.toml) and edit it")
    unknown = sorted(set(doc) - set(VEHICLE_FIELDS) - {"name", "description"})
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
    values: dict = {"name": str(doc.get("name") or Path(source).stem),
                    "description": str(doc.get("description", ""))}
    for k, (lo, hi, unit, meaning) in VEHICLE_FIELDS.items():
        v = doc[k]
        if not finite_number(v):
            raise ConfigError(f"{source}: {k} must be a finite number in {unit} ({meaning})")
        if not lo <= v <= hi:
            raise ConfigError(f"{source}: {k}={v} {unit} is outside [{lo}, {hi}] ({meaning})")
        values[k] = float(v)
    return VehicleProfile(**values)


def _parse_text(text: str, source: str) -> VehicleProfile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from e
    return parse_vehicle(doc, source)


def load_vehicle(path: str | Path) -> VehicleProfile:
    """Load a vehicle profile TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read vehicle profile {p}: {e}") from e
    return _parse_text(text, str(p))


def builtin_vehicles() -> list[str]:
    """Names of the built-in profiles (``training/vehicles/*.toml``)."""
    folder = resources.files("motocoach.training").joinpath("vehicles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


@lru_cache(maxsize=32)
def get_vehicle(name_or_path: str) -> VehicleProfile:
    """A built-in profile by name, or any profile TOML by path."""
    if name_or_path in builtin_vehicles():
        text = resources.files("motocoach.training").joinpath("vehicles", f"{name_or_path}.toml").read_text()
        return _parse_text(text, f"{name_or_path}.toml")
    p = Path(name_or_path)
    if p.suffix.lower() == ".toml" or p.exists():
        return load_vehicle(p)
    raise ConfigError(f"unknown vehicle {name_or_path!r}; use one of {', '.join(builtin_vehicles())} "
                      "or a path to a profile TOML")
