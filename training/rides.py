"""Simulated rides as plain telemetry arrays (for calibration checks and HIL streaming).

>>> x = simulate_telemetry("kestrel", "amateur", seconds=2.0, seed=0)
>>> x.shape, x.dtype.name
((40, 8), 'float32')
"""

from __future__ import annotations

import numpy as np

from motocoach.errors import ConfigError
from motocoach.training.riders import get_rider
from motocoach.training.sim import DT, RideSim
from motocoach.training.tracks import get_track


def simulate_telemetry(track: str, rider: str, seconds: float, seed: int) -> np.ndarray:
    """(T, n_features) float32 physical telemetry of an uncoached ride, T = seconds x rate.

    If the rider leaves the track the ride restarts, so the output is always T rows of
    valid telemetry in schema order and ranges.
    """
    if not np.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"seconds must be a positive number, got {seconds}")
    steps = int(round(seconds / DT))
    sim = RideSim(get_track(track), get_rider(rider), n=1, seed=seed)
    zeros = np.zeros((1, 3))
    out = np.empty((steps, sim.observe().shape[1]), dtype=np.float32)
    for t in range(steps):
        out[t] = sim.observe()[0]
        r = sim.step(zeros)
        if r.offtrack[0]:
            sim.reset()
    return out
