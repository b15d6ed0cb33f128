"""Equivalence: the unit's int8 outputs equal the host reference engine's, bit for bit,
on telemetry from simulated rides."""

from __future__ import annotations

import numpy as np

FRAMES = 300


def test_device_outputs_equal_the_host_engine_bit_for_bit(link, host_engine, ride_telemetry, hil_report):
    telemetry = ride_telemetry(FRAMES, seed=11)
    want, _ = host_engine.predict(telemetry)
    got = np.array([[h["out0"], h["out1"], h["out2"]] for h in (link.telemetry(row) for row in telemetry)],
                   np.int8)
    mismatches = int((got != want).any(axis=1).sum())
    distinct = len({tuple(r) for r in want.tolist()})
    hil_report.add("equivalence", {"frames": FRAMES, "mismatches": mismatches, "distinct_outputs": distinct,
                                   "source": "motocoach.training.rides.simulate_telemetry"})
    assert distinct > 5, "the rides exercise too few distinct outputs for this check to mean anything"
    assert mismatches == 0, f"{mismatches}/{FRAMES} frames differ, first at {np.flatnonzero((got != want).any(1))[:5]}"
