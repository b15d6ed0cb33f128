"""Bad input: the unit stays up, answers the next valid frame, refuses what it must refuse,
counts what it drops, and never drives the motors from invalid data.

The wire-level cases are the golden invalid frames (host/protocol/golden_frames.json), each
with the device behaviour the protocol specifies (drop / ACK status / IDENTITY).
"""

from __future__ import annotations

import json
import math
import queue
import random
import time

import numpy as np
import pytest

from motocoach.device import dut as dutlib
from motocoach.protocol import codec, golden, spec
from motocoach.protocol.spec import Fault, HapticFlag, MsgType, Status

GOLDEN = json.loads(golden.golden_path().read_text())


@pytest.fixture
def sample(ride_telemetry) -> np.ndarray:
    return ride_telemetry(50, seed=41)[25]


def test_golden_bad_frames_get_exactly_the_specified_reaction(link, sample, hil_report):
    last_sent = link.telemetry(sample)["sent_at"]
    before = link.status()
    want_crc = want_frame = 0
    wrong: list[str] = []  # every deviation, so one run shows them all
    slow_host: list[str] = []  # failsafe trips the host caused by pausing (timing, not function)
    for e in GOLDEN["invalid"]:
        wire = bytes.fromhex(e["encoded"]) + b"\x00"
        dev = e["device"]
        if dev["action"] == "drop":
            # the unit handles bytes in order, so an answer to the dropped frame would reach the
            # reader (as an unmatched reply) before the HAPTIC answer to the valid frame after it
            ignored0 = sum(link.ignored.values())
            link.send_raw(wire)
            want_crc += e["error"] == "bad_crc"
            want_frame += e["error"] != "bad_crc"
        else:
            reply = link.exchange_raw(wire, dev["seq"], what=e["name"]).frame
            if dev["action"] == "identity":
                if reply.type is not MsgType.IDENTITY:
                    wrong.append(f"{e['name']}: want IDENTITY, got {_describe(reply)}")
            else:
                want = (dev["request_type"], dev["status"])
                got = _ack(reply)
                if got != want:
                    wrong.append(f"{e['name']}: want ACK {want}, got {_describe(reply)}")
                want_frame += dev["request_type"] != MsgType.HELLO
        h = link.telemetry(sample)  # the unit is still up and answers the next valid frame
        if dev["action"] == "drop" and sum(link.ignored.values()) != ignored0:
            wrong.append(f"{e['name']}: answered a frame it must drop")
        gap_ms = (h["sent_at"] - last_sent) * 1000
        last_sent = h["sent_at"]
        if h["flags"] & HapticFlag.FAILSAFE:
            if gap_ms >= spec.FAILSAFE_MS / 2:  # the host itself paused: a loaded machine, not the unit
                slow_host.append(f"{e['name']}: {gap_ms:.0f} ms between valid frames")
            else:
                wrong.append(f"{e['name']}: failsafe tripped while we kept talking ({gap_ms:.0f} ms gap)")
    after = link.status()
    delta = {k: after[k] - before[k] for k in ("crc_errors", "frame_errors", "value_errors")}
    want_delta = {"crc_errors": want_crc, "frame_errors": want_frame, "value_errors": 0}
    hil_report.add("bad_input_golden", {"frames": [e["name"] for e in GOLDEN["invalid"]], "counter_delta": delta,
                                        "expected_delta": want_delta, "deviations": wrong,
                                        "failsafe_trips_from_host_pauses": slow_host})
    assert not wrong, "\n".join(wrong)
    assert delta == want_delta


def _ack(frame) -> tuple[int, str] | None:
    if frame.type is not MsgType.ACK:
        return None
    ack = codec.unpack(MsgType.ACK, frame.payload)
    try:
        return ack["request_type"], Status(ack["status"]).name
    except ValueError:
        return ack["request_type"], str(ack["status"])


def _describe(frame) -> str:
    ack = _ack(frame)
    return f"ACK {ack}" if ack else getattr(frame.type, "name", str(frame.type))


def test_random_garbage_and_cut_frames_never_stop_the_unit(link, sample):
    rng = random.Random(7)
    garbage = bytes(rng.getrandbits(8) for _ in range(4096))
    assert not list(codec.FrameDecoder(check_version=False).feed(garbage + b"\x00")), "seed makes a valid frame"
    good = codec.encode_frame(MsgType.TELEMETRY, 1, codec.pack_telemetry(sample))
    link.send_raw(garbage + b"\x00")
    link.send_raw(good[: len(good) // 2] + b"\x00")  # a frame cut short on the wire
    link.send_raw(b"\xff" * (3 * spec.MAX_ENCODED))  # a long run without any delimiter...
    link.send_raw(b"\x00")  # ...ended by one
    assert link.telemetry(sample)["freq_hz"] >= 50


def test_sequence_gaps_repeats_and_wraparound_are_echoed(link, sample):
    payload = codec.pack_telemetry(sample)
    for seq in (10, 500, 499, 499, 0xFFFF, 0, 7):
        reply = link.exchange(MsgType.TELEMETRY, payload, seq=seq)
        assert reply.frame.type is MsgType.HAPTIC and reply.frame.seq == seq


def test_nan_and_inf_are_refused_and_never_move_the_motors(link, dut, sample, hil_report):
    link.telemetry(sample)
    before = link.status()
    bad_rows = []
    for i, v in enumerate((math.nan, math.inf, -math.inf)):
        row = [float(x) for x in sample]
        row[(3 * i) % len(row)] = v
        bad_rows.append(row)
    # 1. while the unit is coaching: refused with the bad feature's index
    for row in bad_rows:
        reply = link.exchange(MsgType.TELEMETRY, codec.pack_telemetry(row)).frame
        ack = codec.unpack(MsgType.ACK, reply.payload)
        assert (reply.type, ack["status"]) == (MsgType.ACK, Status.BAD_VALUE)
        assert ack["value"] == next(j for j, x in enumerate(row) if not math.isfinite(x))
    # 2. invalid telemetry does not keep the unit alive: stall on NaN only, the failsafe trips
    t0 = time.perf_counter()
    fault_seen = None
    while time.perf_counter() - t0 < 0.6:
        reply = link.exchange(MsgType.TELEMETRY, codec.pack_telemetry(bad_rows[0])).frame
        assert reply.type is MsgType.ACK
        try:
            fault_seen = fault_seen or link.unsolicited.get(timeout=1 / spec.TICK_HZ)
        except queue.Empty:
            continue
        time.sleep(1 / spec.TICK_HZ)  # keep the 20 Hz pace after the fault too
    assert fault_seen is not None and fault_seen.type is MsgType.FAULT, "NaN frames kept the failsafe from tripping"
    assert link.status()["fault"] == Fault.STALE_TELEMETRY
    # 3. in fault, NaN/inf still never start the motors
    t_fault_us = dutlib.now_us()
    for row in bad_rows * 4:
        link.exchange(MsgType.TELEMETRY, codec.pack_telemetry(row))
        time.sleep(1 / spec.TICK_HZ)
    t_end_us = dutlib.now_us()
    log = dutlib.read_motor_log(dut.motor_log)
    if log.size:
        off = dutlib.first_all_off_after(log, t_fault_us)
        assert off is not None and off <= t_fault_us, "a motor ran while only invalid telemetry arrived"
        assert not dutlib.motors_on_between(log, t_fault_us, t_end_us)
    after = link.status()
    assert after["value_errors"] - before["value_errors"] >= len(bad_rows) * 5
    assert after["fault"] == Fault.STALE_TELEMETRY
    h = link.telemetry(sample)  # a valid frame recovers, and says the motors were forced off
    assert h["flags"] & HapticFlag.FAILSAFE
    hil_report.add("bad_input_nonfinite", {"value_errors_delta": after["value_errors"] - before["value_errors"],
                                           "motor_log_checked": bool(log.size)})
    while not link.unsolicited.empty():
        link.unsolicited.get_nowait()
