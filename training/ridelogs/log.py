"""A ride log in canonical channels and SI-like units, whatever file format it came from.

Every importer (:mod:`~motocoach.training.ridelogs.readers`) returns a :class:`RideLog`;
everything downstream (telemetry, quality report, replay, Minari) reads only this.

Canonical channels (all optional except ``t``; missing samples are NaN):

========== ====== ==========================================================
name       unit   meaning
========== ====== ==========================================================
lat, lon   deg    WGS84 position
speed      m/s    ground speed
lat_g      g      lateral acceleration, positive towards the right
lon_g      g      longitudinal acceleration, positive forwards
lean       deg    lean (roll) angle, positive leaning right
roll_rate  deg/s  roll rate
throttle   1      0 closed .. 1 wide open
brake      1      0 none .. 1 full
lap        #      lap counter as logged
========== ====== ==========================================================

>>> to_canonical("speed", [36.0], "km/h").tolist()
[10.0]
>>> to_canonical("throttle", [50.0], "%").tolist()
[0.5]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from motocoach.errors import RideLogError

G = 9.81
MIN_RATE_HZ = 5.0

CHANNELS = ("lat", "lon", "speed", "lat_g", "lon_g", "lean", "roll_rate", "throttle", "brake", "lap")

#: unit spelling (lower case) -> factor to the canonical unit, per channel kind
UNITS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "sec": 1.0, "unix time": 1.0, "ms": 1e-3, "msec": 1e-3},
    "speed": {"m/s": 1.0, "km/h": 1 / 3.6, "kph": 1 / 3.6, "mph": 0.44704},
    "acc": {"g": 1.0, "m/s2": 1 / G, "m/s^2": 1 / G, "m/s²": 1 / G},
    "angle": {"deg": 1.0, "°": 1.0, "rad": 180.0 / np.pi},
    "rate": {"deg/s": 1.0, "rad/s": 180.0 / np.pi},
    "pedal": {"1": 1.0, "%": 0.01},
    "count": {"#": 1.0, "": 1.0, "1": 1.0},
}
KIND = {"lat": "angle", "lon": "angle", "speed": "speed", "lat_g": "acc", "lon_g": "acc", "lean": "angle",
        "roll_rate": "rate", "throttle": "pedal", "brake": "pedal", "lap": "count", "t": "time"}


def to_canonical(channel: str, values, unit: str) -> np.ndarray:
    """Convert ``values`` logged in ``unit`` to the canonical unit of ``channel``."""
    table = UNITS[KIND[channel]]
    u = unit.strip().lower()
    if u not in table:
        raise RideLogError(f"channel {channel}: unknown unit {unit!r}; use one of {', '.join(k or '(none)' for k in table)}")
    return np.asarray(values, dtype=np.float64) * table[u]


@dataclass
class RideLog:
    """One imported log.

    Attributes:
        source: file it came from.
        fmt: ``racechrono``, ``aim`` or ``expert``.
        t: (N,) seconds from the first sample, strictly increasing.
        channels: canonical name -> (N,) float array (NaN where not logged in that row).
        meta: the file's header block (key -> value), e.g. venue, rider, origin.
        lines: (N,) the file line of each sample, for error messages.
        extra: channels the file has that this tool does not use (name list).
        t0_unix: absolute start time when the file gives one.
    """

    source: str
    fmt: str
    t: np.ndarray
    channels: dict[str, np.ndarray]
    meta: dict[str, str] = field(default_factory=dict)
    lines: np.ndarray | None = None
    extra: list[str] = field(default_factory=list)
    t0_unix: float | None = None

    def has(self, name: str) -> bool:
        """True when ``name`` was logged with at least one finite sample."""
        v = self.channels.get(name)
        return v is not None and bool(np.isfinite(v).any())

    @property
    def rate_hz(self) -> float:
        """Nominal sample rate: 1 / median sample interval."""
        return float(1.0 / np.median(np.diff(self.t))) if len(self.t) > 1 else 0.0

    @property
    def has_gps(self) -> bool:
        return self.has("lat") and self.has("lon")

    def __len__(self) -> int:
        return len(self.t)


def check_time(t: np.ndarray, lines: np.ndarray, where: str, column: str) -> None:
    """Raise on a non-monotonic time or a sample rate below :data:`MIN_RATE_HZ`."""
    if len(t) < 2:
        raise RideLogError(f"{where}: only {len(t)} data row(s); a log needs at least a few seconds of samples")
    d = np.diff(t)
    bad = np.flatnonzero(~(d > 0))
    if len(bad):
        i = int(bad[0]) + 1
        raise RideLogError(f"{where}:{int(lines[i])}: column {column!r}: time {t[i]:.3f} s does not increase "
                           f"(previous row {t[i - 1]:.3f} s); a log must be in time order without repeats")
    rate = 1.0 / float(np.median(d))
    if rate < MIN_RATE_HZ:
        raise RideLogError(f"{where}: sample rate {rate:.1f} Hz (median interval {np.median(d):.2f} s) is below "
                           f"{MIN_RATE_HZ:g} Hz; the unit needs 20 Hz telemetry and cannot be fed from a slower log")
