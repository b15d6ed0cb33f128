"""Failsafe: when telemetry stops, the unit turns the motors off and reports FAULT.

Measured on the host: last TELEMETRY sent -> FAULT received (host clock). On SIL also from
the motor log (same CLOCK_MONOTONIC as the host): last TELEMETRY sent -> both motors at 0.
The device's rule is "no valid frame for FAILSAFE_MS (150 ms) -> off"; we allow
TICK_SLACK_MS on top for its main-loop period and the serial hop, and report the measured
numbers.
"""

from __future__ import annotations

import queue
import time

import numpy as np

from motocoach.device import dut as dutlib
from motocoach.protocol import codec, spec
from motocoach.protocol.spec import Fault, HapticFlag, MsgType

TICK_SLACK_MS = 1000.0 / spec.TICK_HZ  # one 20 Hz tick


def strong_cue(host_engine, ride_telemetry) -> np.ndarray:
    """The simulated sample that asks for the strongest motor intensity."""
    tele = ride_telemetry(400, seed=31)
    _, actions = host_engine.predict(tele)
    return tele[int(np.argmax(actions[:, :2].max(axis=1)))]


def drain(q: "queue.Queue") -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def test_stall_turns_motors_off_and_reports_fault(link, dut, host_engine, ride_telemetry, hil_report):
    sample = strong_cue(host_engine, ride_telemetry)
    period = 1.0 / spec.TICK_HZ
    for _ in range(3):  # clear any fault an earlier test left
        link.telemetry(sample)
    drain(link.unsolicited)
    trips0 = link.status()["failsafe_trips"]
    t_stream_us = dutlib.now_us()
    replies = []
    for _ in range(spec.TICK_HZ):  # one second of a steady strong cue at 20 Hz
        t_next = time.perf_counter() + period
        replies.append(link.telemetry(sample))
        time.sleep(max(0.0, t_next - time.perf_counter()))
    last_sent = replies[-1]["sent_at"]  # perf_counter when the last frame's bytes were written
    t_last_us = dutlib.now_us() - int((time.perf_counter() - last_sent) * 1e6)  # same instant, monotonic
    assert max(replies[-1]["left"], replies[-1]["right"]) > 0, "the cue sample does not ask for any vibration"

    fault = link.unsolicited.get(timeout=1.0)
    assert fault.type is MsgType.FAULT
    fields = codec.unpack(MsgType.FAULT, fault.payload)
    assert fields["fault"] == Fault.STALE_TELEMETRY and fields["state"] == 1
    st = link.status()
    assert st["fault"] == Fault.STALE_TELEMETRY and st["failsafe_trips"] == trips0 + 1

    section = {"where": dut.where, "failsafe_ms": spec.FAILSAFE_MS, "limit_ms": spec.FAILSAFE_MS + TICK_SLACK_MS,
               "stall_to_fault_ms": round((fault.received_at - last_sent) * 1000, 3),
               "measured": "host clock, from the last TELEMETRY written to FAULT decoded"}
    time.sleep(0.1)
    log = dutlib.read_motor_log(dut.motor_log)
    if log.size:
        assert dutlib.motors_on_between(log, t_stream_us, t_last_us), "motors never ran during the cue"
        off_at = dutlib.first_all_off_after(log, t_last_us)
        assert off_at is not None, "motors still on after the stall"
        # from the last frame to the start of the all-off period that lasts (a pulsed cue may
        # already have been in an off phase when the failsafe forced it)
        section["stall_to_motors_off_ms"] = round((off_at - t_last_us) / 1000, 3)
    else:
        section["stall_to_motors_off_ms"] = "not observable on this target (no motor log)"
    hil_report.add("failsafe", section)
    print(f"\nfailsafe ({dut.where}): {section}")

    limit = spec.FAILSAFE_MS + TICK_SLACK_MS
    assert spec.FAILSAFE_MS - 5 <= section["stall_to_fault_ms"] <= limit
    if log.size:
        assert section["stall_to_motors_off_ms"] <= limit

    # the next valid frame clears the fault and says the motors had been forced off
    h = link.telemetry(sample)
    assert h["flags"] & HapticFlag.FAILSAFE
    assert link.status()["fault"] == Fault.NONE
