"""SIL and QEMU firmware over their pseudo-terminals: HELLO, the default model driving the motors,
and the failsafe (a telemetry stall turns the motors off within 150 ms)."""

from __future__ import annotations

import os
import shutil
import struct
import time
from pathlib import Path

import pytest
import serial

from motocoach.protocol import codec
from motocoach.protocol.spec import FAILSAFE_MS, PROTOCOL_MAX, PROTOCOL_MIN, PROTOCOL_VERSION, Fault, MsgType, Status
from motocoach.schema import load_schema

# Locally a missing tool skips (saying what installs it); in CI it must fail, since `make setup`
# installs every tool there.
IN_CI = bool(os.environ.get("CI"))

TARGETS = ["sil", pytest.param("qemu", marks=pytest.mark.skipif(
    not IN_CI and (shutil.which("qemu-system-riscv32") is None or shutil.which("riscv64-unknown-elf-gcc") is None),
    reason="needs qemu-system-misc and gcc-riscv64-unknown-elf (make setup)"))]


class Client:
    """Just enough of a host to talk to the firmware (the full link lives in motocoach.device)."""

    def __init__(self, port: str) -> None:
        self.ser = serial.Serial(port, 921600, timeout=0)
        self.dec = codec.FrameDecoder()
        self.seq = 0

    def send(self, msg_type: int, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        self.ser.write(codec.encode_frame(msg_type, self.seq, payload))
        return self.seq

    def wait(self, pred, timeout: float = 2.0):
        """First decoded frame satisfying pred, with its host arrival time (monotonic)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            data = self.ser.read(4096)
            now = time.monotonic()
            for f in self.dec.feed(data):
                if pred(f):
                    return f, now
            if not data:
                time.sleep(0.0005)
        raise AssertionError("no matching frame from the device")

    def request(self, msg_type: int, payload: bytes = b"", timeout: float = 2.0):
        seq = self.send(msg_type, payload)
        return self.wait(lambda f: f.seq == seq and f.type != MsgType.FAULT, timeout)[0]


def telemetry_payload(values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def candidate_rows() -> list[list[float]]:
    """Telemetry rows likely to make a coaching policy cue: off the line, braking late, fast."""
    feats = load_schema().features
    mid = [0.5 * (f.min + f.max) for f in feats]
    rows = []
    for name, frac in (("line_deviation", 0.9), ("line_deviation", 0.1), ("speed", 1.0), ("friction_usage", 1.0),
                       ("dist_to_apex", 0.0), ("brake", 1.0), ("throttle", 1.0)):
        row = list(mid)
        for i, f in enumerate(feats):
            if f.name == name:
                row[i] = f.min + frac * (f.max - f.min)
        rows.append(row)
    rows.append([f.max for f in feats])
    rows.append([f.min for f in feats])
    return rows


@pytest.fixture(params=TARGETS)
def target(request, factory_model, tmp_path):
    from motocoach import targets

    if request.param == "sil":
        targets.build_sil()
        rt = targets.start_sil(motor_log=tmp_path / "motors.csv", slots=tmp_path / "slots.bin")
    else:
        targets.build_qemu()
        rt = targets.start_qemu(motor_log=tmp_path / "motors.csv")
    client = Client(rt.port)
    yield rt, client
    client.ser.close()
    rt.stop()


def motor_rows(path: Path) -> list[tuple[int, int, int, int]]:
    rows = []
    for line in path.read_text().splitlines():
        t, m, d, f = (int(x) for x in line.split(","))
        rows.append((t, m, d, f))
    return rows


def test_hello_identity(target):
    rt, c = target
    f = c.request(MsgType.HELLO, bytes([PROTOCOL_MIN, PROTOCOL_MAX]))
    assert f.type == MsgType.IDENTITY
    ident = codec.unpack(f.type, f.payload)
    assert ident["proto_version"] == PROTOCOL_VERSION
    assert any(ident["unit_id"]), "the unit id is generated at the first boot and kept with the slots"
    assert (ident["model_version"], ident["version_floor"], ident["trial"]) == (0, 0, 0)
    old = c.request(MsgType.HELLO, bytes([1, 1]))  # a protocol 1 host is told the unit's range
    assert old.type == MsgType.ACK and old.payload[1] == Status.BAD_VERSION
    assert ident["schema_hash"] == load_schema().hash32
    assert ident["selftest_ok"] == 1, "the factory model failed its golden vectors on the target"
    assert codec.text(ident["board"]) == ("esp32dev" if rt.kind == "sil" else "esp32-c3")


def test_stall_turns_motors_off_within_failsafe(target):
    rt, c = target
    # Find a telemetry row for which the default model cues at least one motor.
    row = None
    for cand in candidate_rows():
        h = codec.unpack(MsgType.HAPTIC, c.request(MsgType.TELEMETRY, telemetry_payload(cand)).payload)
        if h["left"] > 25 or h["right"] > 25:
            row = cand
            break
    assert row is not None, "the default model cued no motor for any candidate row; cannot test the failsafe"
    # Drive at 20 Hz for 1 s so the ramp reaches the cue, then stall.
    period, t_next = 0.05, time.monotonic()
    for _ in range(20):
        f = c.request(MsgType.TELEMETRY, telemetry_payload(row))
        assert f.type == MsgType.HAPTIC
        t_next += period
        time.sleep(max(0.0, t_next - time.monotonic()))
    seq = c.send(MsgType.TELEMETRY, telemetry_payload(row))
    t_last = time.monotonic()
    c.wait(lambda f: f.seq == seq and f.type == MsgType.HAPTIC)
    fault, t_fault = c.wait(lambda f: f.type == MsgType.FAULT, timeout=2.0)
    assert codec.unpack(MsgType.FAULT, fault.payload)["fault"] == Fault.STALE_TELEMETRY
    latency_ms = (t_fault - t_last) * 1000
    # Not before the deadline; after it by at most one poll plus pty/scheduler noise.
    assert FAILSAFE_MS - 5 <= latency_ms <= FAILSAFE_MS + 60, f"FAULT {latency_ms:.1f} ms after the last frame"

    time.sleep(0.1)  # let the motor log catch up (QEMU writes it through a pipe)
    rows = motor_rows(rt.motor_log)
    assert any(d > 0 for _, _, d, _ in rows), "motors were never driven"
    last = {m: d for _, m, d, _ in rows}
    assert last == {0: 0, 1: 0}, f"motors not off after the stall: {last}"
    if rt.kind == "sil":
        # SIL stamps the motor log with CLOCK_MONOTONIC, the clock of time.monotonic(): check device side.
        off_t = [t for t, _, d, _ in rows if d == 0 and t / 1e6 > t_last]
        assert off_t, "no motor-off entry after the last frame"
        assert (min(off_t) / 1e6 - t_last) * 1000 <= FAILSAFE_MS + 20
    st = codec.unpack(MsgType.STATUS, c.request(MsgType.STATUS_REQ).payload)
    assert st["failsafe_trips"] == 1 and st["fault"] == Fault.STALE_TELEMETRY
