"""DUT helpers: target resolution, latency statistics (lost frames stay in), motor-log analysis,
and 20 Hz streaming over a pty against the scripted fake device of test_link."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from motocoach.device import dut as dutlib
from motocoach.device.link import SerialLink
from motocoach.errors import ConfigError
from motocoach.protocol import codec
from motocoach.protocol.spec import MsgType

_spec = importlib.util.spec_from_file_location("fake_link", Path(__file__).with_name("test_link.py"))
fake_link = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_link)


def test_target_resolution_follows_the_option_rules():
    assert dutlib.resolve_target(None, None) == "sil"
    assert dutlib.resolve_target(None, "/dev/ttyUSB0") == "serial"
    assert dutlib.resolve_target("qemu", None) == "qemu"
    with pytest.raises(ConfigError, match="needs --port"):
        dutlib.resolve_target("serial", None)
    with pytest.raises(ConfigError):
        dutlib.resolve_target("esp32", None)


def test_lost_frames_stay_in_the_statistics():
    lat = [0.001] * 98 + [math.inf, math.inf]
    s = dutlib.latency_summary(lat)
    assert (s["frames"], s["timeouts"]) == (100, 2)
    assert s["p50_ms"] == pytest.approx(1.0) and s["p95_ms"] == pytest.approx(1.0)
    assert math.isinf(s["p99_ms"]) and math.isinf(s["max_ms"])  # 2 % lost: p99 is a lost frame
    one_lost = dutlib.latency_summary([0.002] * 199 + [math.inf])
    assert one_lost["p99_ms"] == pytest.approx(2.0) and math.isinf(one_lost["max_ms"])


def test_percentiles_are_order_statistics_not_interpolations():
    s = dutlib.latency_summary([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"]) == pytest.approx((50, 95, 99, 100))


def test_histogram_png_is_written_even_with_lost_frames(tmp_path):
    p = dutlib.plot_latency_histogram([0.001, 0.002, math.inf], tmp_path / "h.png", "t")
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_motor_log_analysis(tmp_path):
    log = tmp_path / "m.csv"
    log.write_text("t_us,motor,duty_permille,freq_hz\n"
                   "100,0,500,200\n100,1,0,200\n200,0,600,200\n300,1,300,200\n"
                   "400,0,0,200\n450,1,0,200\n500,0,0,200\n")
    a = dutlib.read_motor_log(log)
    assert a.shape == (7, 4)
    assert dutlib.motors_on_between(a, 0, 250) and not dutlib.motors_on_between(a, 450, 1000)
    assert dutlib.first_all_off_after(a, 150) == 450  # motor 1 goes off last, at 450
    assert dutlib.first_all_off_after(a, 460) == 460  # already off when the window opens
    assert dutlib.read_motor_log(None).shape == (0, 4)


def test_stream_paces_at_the_rate_and_counts_lost_replies():
    dev = fake_link.FakeDevice()
    drop = {3, 7}
    late = {}

    def script(f):
        if f.seq == 3:  # lost for good
            return None
        if f.seq == 7:  # answered after its timeout: still lost, but reported as late
            late[7] = f
            return None
        if late and f.seq == 8:
            return dev.reply(late.pop(7)) + dev.reply(f)
        return dev.reply(f)

    dev.script = script
    try:
        with SerialLink(dev.path) as link:
            res = dutlib.stream(link, np.zeros((10, 8), np.float32), rate_hz=50.0)
    finally:
        dev.close()
    s = dutlib.latency_summary(res.latency_s)
    assert (s["frames"], s["timeouts"]) == (10, 2)
    assert [o is None for o in res.outputs] == [i + 1 in drop for i in range(10)]
    assert res.wall_s >= 9 / 50.0  # an absolute schedule: never faster than the rate
    assert list(res.late_replies) == [6] and res.late_replies[6] > 0.02  # row 6 = seq 7
    assert [codec.unpack_telemetry(f.payload) for f in dev.seen if f.type is MsgType.TELEMETRY][0] == [0.0] * 8


def test_dut_docstring_examples_run():
    import doctest

    result = doctest.testmod(dutlib)
    assert result.attempted > 0 and result.failed == 0
