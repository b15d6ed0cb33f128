"""SerialLink over a real pty pair, against a small scripted fake device (link tests only;
the HIL suite talks to the real SIL/QEMU firmware)."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Callable

import pytest

from motocoach.errors import DeviceError
from motocoach.device.link import DeviceNackError, SerialLink
from motocoach.protocol import codec, spec
from motocoach.protocol.codec import Frame
from motocoach.protocol.spec import MsgType, Status

IDENTITY = dict(fw_major=0, fw_minor=2, fw_patch=0, proto_version=2, proto_min=2, proto_max=2,
                board=b"sil", model_id=b"m1", model_sha256=bytes(range(32)), schema_hash=7,
                engine_version=1, active_slot=0, slot_a_state=0, slot_b_state=0, selftest_ok=1,
                slot_size=65536, key_id=1, unit_id=bytes(range(8)), model_version=0, version_floor=0, trial=0)


class FakeDevice:
    """Reads frames on the pty master and answers them; ``script`` lets a test misbehave."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.seen: list[Frame] = []
        self.script: Callable[[Frame], bytes | None] | None = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def reply(self, f: Frame) -> bytes:
        if f.type is MsgType.HELLO:
            return codec.encode_frame(MsgType.IDENTITY, f.seq, codec.pack(MsgType.IDENTITY, **IDENTITY))
        if f.type is MsgType.TELEMETRY:
            return codec.encode_frame(MsgType.HAPTIC, f.seq, codec.pack(
                MsgType.HAPTIC, left=1, right=2, freq_hz=100, out0=-1, out1=0, out2=1, infer_us=5,
                loop_us=6, flags=0))
        if f.type is MsgType.STATUS_REQ:
            return codec.encode_frame(MsgType.STATUS, f.seq, bytes(spec.messages()[MsgType.STATUS].fixed_size))
        return codec.encode_frame(MsgType.ACK, f.seq, codec.pack(MsgType.ACK, request_type=int(f.type),
                                                                 status=int(Status.OK), value=42))

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def _run(self) -> None:
        dec = codec.FrameDecoder()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for f in dec.feed(data):
                self.seen.append(f)
                out = self.script(f) if self.script else self.reply(f)
                if out:
                    self.write(out)

    def close(self) -> None:
        self._stop.set()
        self._t.join(1)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def dev():
    d = FakeDevice()
    yield d
    d.close()


@pytest.fixture
def link(dev):
    with SerialLink(dev.path, timeout=0.3) as lk:
        yield lk


def test_hello_status_and_telemetry_round_trip(link, dev):
    ident = link.hello()
    assert ident["board"] == "sil" and ident["model_sha256"] == bytes(range(32)).hex()
    assert link.status()["frames_ok"] == 0
    h = link.telemetry([1.0] * 8)
    assert (h["left"], h["right"], h["freq_hz"], h["out0"]) == (1, 2, 100, -1)
    assert 0 < h["latency_s"] < 0.3
    assert [f.seq for f in dev.seen] == [1, 2, 3]  # seqs count up; replies matched by echo
    assert codec.unpack_telemetry(dev.seen[-1].payload) == [1.0] * 8


def test_link_resyncs_after_garbage_before_a_reply(link, dev):
    dev.script = lambda f: b"\x17\x99garbage\x00\x05\x01\x00" + dev.reply(f)
    assert link.hello()["board"] == "sil"
    assert link.decoder.errors["bad_cobs"] == 2
    # noise glued to the front of a reply (no delimiter between) loses that reply, not the link
    dev.script = lambda f: b"\x05\x01" + dev.reply(f) if f.type is MsgType.STATUS_REQ else dev.reply(f)
    with pytest.raises(DeviceError, match="no reply"):
        link.status()
    dev.script = None
    assert link.status()["state"] == 0


def test_timeout_raises_and_a_late_reply_is_ignored(link, dev):
    late: list[Frame] = []

    def drop_first(f: Frame) -> bytes | None:
        if not late:
            late.append(f)
            return None
        return dev.reply(f)

    dev.script = drop_first
    t0 = time.perf_counter()
    with pytest.raises(DeviceError, match="no reply within 300 ms"):
        link.status()
    assert 0.29 < time.perf_counter() - t0 < 1.0
    dev.write(dev.reply(late[0]))  # the lost reply shows up after all
    assert link.hello()["board"] == "sil"
    assert link.ignored["unmatched_seq"] == 1


def test_retries_resend_with_a_fresh_seq(link, dev):
    calls = []
    dev.script = lambda f: (calls.append(f.seq), None if len(calls) == 1 else dev.reply(f))[1]
    frame = link.request(MsgType.STATUS_REQ, timeout=0.2, retries=1)
    assert frame.type is MsgType.STATUS and calls == [1, 2] and frame.seq == 2


def test_wrong_seq_reply_is_not_taken_for_the_answer(link, dev):
    def stale_then_right(f: Frame) -> bytes:
        stale = Frame(f.version, MsgType.STATUS, (f.seq + 100) & 0xFFFF, b"")
        return (codec.encode_frame(MsgType.STATUS, stale.seq, bytes(spec.messages()[MsgType.STATUS].fixed_size))
                + dev.reply(f))

    dev.script = stale_then_right
    assert link.request(MsgType.HELLO, codec.pack(MsgType.HELLO, proto_min=2, proto_max=2)).type is MsgType.IDENTITY
    assert link.ignored["unmatched_seq"] == 1


def test_unsolicited_fault_is_queued_and_unknown_kinds_are_logged(link, dev, caplog):
    caplog.set_level(logging.INFO, logger="motocoach.link")
    dev.script = lambda f: (codec.encode_frame(MsgType.FAULT, 900, codec.pack(MsgType.FAULT, fault=1, state=1))
                            + codec.encode_frame(0xEE, f.seq, b"new")
                            + codec.encode_frame(MsgType.ACK, f.seq, b"\x01", version=9)
                            + dev.reply(f))
    assert link.status()["state"] == 0
    fault = link.unsolicited.get(timeout=1)
    assert fault.type is MsgType.FAULT and codec.unpack(MsgType.FAULT, fault.payload)["fault"] == 1
    assert link.decoder.errors["unknown_type"] == 1
    assert "unknown message type 0xee" in caplog.text


def test_ack_with_an_error_status_raises_nack(link, dev):
    dev.script = lambda f: codec.encode_frame(MsgType.ACK, f.seq, codec.pack(
        MsgType.ACK, request_type=int(f.type), status=int(Status.BAD_VALUE), value=0))
    with pytest.raises(DeviceNackError, match="BAD_VALUE") as info:
        link.telemetry([float("nan")] * 8)
    assert info.value.status == Status.BAD_VALUE
    with pytest.raises(DeviceNackError):
        link.command(MsgType.MODEL_ABORT)


def test_command_returns_the_ack_value(link):
    assert link.command(MsgType.MODEL_ABORT) == 42


def test_incompatible_protocol_range_is_refused(link, dev):
    dev.script = lambda f: codec.encode_frame(MsgType.IDENTITY, f.seq, codec.pack(
        MsgType.IDENTITY, **{**IDENTITY, "proto_min": 5, "proto_max": 6}) + b"\x01\x02", version=5)
    with pytest.raises(DeviceError, match="update the tool"):
        link.hello()
    assert link.hello(check=False)["proto_min"] == 5  # newer IDENTITY with appended bytes still parses


def test_a_protocol_1_unit_is_refused_with_the_firmware_to_flash(link, dev):
    """A v1 unit answers a protocol-2 HELLO with ACK BAD_VERSION (value: its min | max << 8)."""
    dev.script = lambda f: codec.encode_frame(MsgType.ACK, f.seq, codec.pack(
        MsgType.ACK, request_type=int(MsgType.HELLO), status=int(Status.BAD_VERSION), value=1 | 1 << 8), version=1)
    with pytest.raises(DeviceError, match=f"protocol 1..1.*flash firmware {spec.FIRMWARE_FOR_PROTOCOL} or newer"):
        link.hello()


def test_close_is_clean_idempotent_and_reconnect_works(dev):
    lk = SerialLink(dev.path, timeout=0.3)
    assert lk.hello()["board"] == "sil"
    lk.close()
    lk.close()
    assert not lk.is_open
    with pytest.raises(DeviceError, match="closed"):
        lk.send_raw(b"\x00")
    assert lk.status()["state"] == 0  # a request reopens a closed link
    lk.reconnect()
    assert lk.status()["state"] == 0
    lk.close()
    assert not any(t.name.startswith("link-reader") for t in threading.enumerate())


def test_a_vanished_port_fails_fast_then_reconnect_recovers():
    dev = FakeDevice()
    lk = SerialLink(dev.path, timeout=2.0)
    assert lk.hello()["board"] == "sil"
    dev.close()  # the far end disappears (cable pulled / SIL killed)
    t0 = time.perf_counter()
    with pytest.raises(DeviceError):
        lk.status()
    assert time.perf_counter() - t0 < 2.5
    with pytest.raises(DeviceError, match="cannot open"):  # the next request tries to reconnect
        lk.status()
    dev2 = FakeDevice()
    lk.port = dev2.path  # a re-enumerated adapter may come back under another name
    lk.reconnect()
    assert lk.hello()["board"] == "sil"
    lk.close()
    dev2.close()


def test_opening_a_missing_port_says_what_to_do():
    with pytest.raises(DeviceError, match="Check the cable"):
        SerialLink("/dev/does-not-exist-motocoach")


def test_low_latency_mode_failure_on_a_pty_is_logged_not_fatal(dev, caplog):
    caplog.set_level(logging.INFO, logger="motocoach.link")
    with SerialLink(dev.path) as lk:
        assert lk.hello()["board"] == "sil"
    assert "low-latency mode" in caplog.text
