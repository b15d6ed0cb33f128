"""Cross-test: the firmware's C codec against the golden frames, the Python codec and `cobs`.

The C files are compiled with the host gcc into a temporary shared library (the same
sources the SIL and QEMU builds use) and called through ctypes.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cobs import cobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motocoach.protocol import codec, golden, spec
from motocoach.protocol.spec import MsgType

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "firmware/lib/coach_core/src"
GOLDEN = json.loads(golden.golden_path().read_text())

# proto_result_t in protocol.h
OK, ERR_COBS, ERR_SHORT, ERR_LENGTH, ERR_CRC, ERR_TOO_LARGE, ERR_NO_SPACE = 0, -1, -2, -3, -4, -5, -6
NEED_MORE, FRAME_READY = 0, 1
#: golden framing-error code -> C results that mean the same thing. The C codec folds
#: "fewer/more bytes than payload_len" into one code; the device counts all of them as
#: frame_errors (bad_crc as crc_errors), so the observable behaviour is identical.
C_EQUIVALENT = {"bad_cobs": {ERR_COBS}, "truncated": {ERR_SHORT, ERR_LENGTH}, "length_mismatch": {ERR_LENGTH},
                "oversized": {ERR_TOO_LARGE}, "bad_crc": {ERR_CRC}}
#: a payload_len above MAX_PAYLOAD in a short frame: C reports the length mismatch instead
C_EQUIVALENT_BY_NAME = {"oversized_payload_len": {ERR_TOO_LARGE, ERR_LENGTH}}


class CFrame(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint8), ("type", ctypes.c_uint8), ("seq", ctypes.c_uint16),
                ("len", ctypes.c_uint8), ("payload", ctypes.POINTER(ctypes.c_uint8))]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    src = CORE / "protocol.c"
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc is not None, "no C compiler on PATH (make setup installs gcc)"
    so = tmp_path_factory.mktemp("cproto") / "libproto.so"
    subprocess.run([cc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", f"-I{CORE}",
                    str(src), "-o", str(so)], check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(so))
    sz = ctypes.c_size_t
    lib.proto_crc16.restype = ctypes.c_uint16
    lib.proto_crc16.argtypes = [ctypes.c_char_p, sz]
    for name in ("proto_cobs_encode", "proto_cobs_decode"):
        getattr(lib, name).argtypes = [ctypes.c_char_p, sz, ctypes.c_char_p, sz, ctypes.POINTER(sz)]
    lib.proto_frame_build.argtypes = [ctypes.c_uint8, ctypes.c_uint16, ctypes.c_char_p, sz, ctypes.c_char_p,
                                      sz, ctypes.POINTER(sz)]
    lib.proto_frame_parse.argtypes = [ctypes.c_char_p, sz, ctypes.POINTER(CFrame)]
    lib.proto_decoder_feed.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.POINTER(CFrame)]
    return lib


class CDecoder:
    """ctypes wrapper of proto_decoder_t (its size is generous: the struct is ~500 bytes)."""

    def __init__(self, lib) -> None:
        self.lib = lib
        self.state = ctypes.create_string_buffer(4096)
        lib.proto_decoder_init(self.state)

    def feed(self, data: bytes) -> list[tuple[int, tuple[int, int, int, bytes] | None]]:
        out = []
        f = CFrame()
        for b in data:
            r = self.lib.proto_decoder_feed(self.state, b, ctypes.byref(f))
            if r == FRAME_READY:
                out.append((r, (f.version, f.type, f.seq, ctypes.string_at(f.payload, f.len) if f.len else b"")))
            elif r != NEED_MORE:
                out.append((r, None))
        return out


def c_build(lib, msg_type: int, seq: int, payload: bytes) -> tuple[int, bytes]:
    out = ctypes.create_string_buffer(spec.MAX_ENCODED + 8)
    n = ctypes.c_size_t(0)
    r = lib.proto_frame_build(msg_type, seq, payload, len(payload), out, len(out), ctypes.byref(n))
    return r, out.raw[:n.value]


def test_c_crc_matches_python(lib):
    for data in (b"123456789", b"", bytes(range(256)), b"\xff" * 300):
        assert lib.proto_crc16(data, len(data)) == codec.crc16(data)


@pytest.mark.parametrize("entry", GOLDEN["valid"], ids=lambda e: e["name"])
def test_c_builds_every_golden_frame_byte_for_byte(lib, entry):
    r, wire = c_build(lib, entry["type"], entry["seq"], bytes.fromhex(entry["payload"]))
    assert r == OK
    assert wire == bytes.fromhex(entry["encoded"]) + b"\x00"


@pytest.mark.parametrize("entry", GOLDEN["valid"], ids=lambda e: e["name"])
def test_c_stream_decoder_reads_every_golden_frame(lib, entry):
    got = CDecoder(lib).feed(bytes.fromhex(entry["encoded"]) + b"\x00")
    assert got == [(FRAME_READY, (entry["version"], entry["type"], entry["seq"], bytes.fromhex(entry["payload"])))]


@pytest.mark.parametrize("entry", GOLDEN["invalid"], ids=lambda e: e["name"])
def test_c_stream_decoder_refuses_or_flags_every_bad_golden_frame(lib, entry):
    d = CDecoder(lib)
    got = d.feed(bytes.fromhex(entry["encoded"]) + b"\x00")
    if entry["device"]["action"] == "drop":
        assert len(got) == 1 and got[0][1] is None, got
        allowed = C_EQUIVALENT_BY_NAME.get(entry["name"], C_EQUIVALENT[entry["error"]])
        assert got[0][0] in allowed, (got, entry["error"])
    else:  # intact frame: the codec delivers it; the control loop answers ACK / IDENTITY
        assert len(got) == 1 and got[0][0] == FRAME_READY, got
        version, typ, seq, _ = got[0][1]
        assert seq == entry["device"]["seq"]
        if entry["error"] == "bad_version":
            assert not spec.PROTOCOL_MIN <= version <= spec.PROTOCOL_MAX
    # and the decoder is back in sync for the next good frame
    good = GOLDEN["valid"][1]
    assert d.feed(bytes.fromhex(good["encoded"]) + b"\x00")[0][0] == FRAME_READY


def test_c_decoder_resyncs_after_a_long_garbage_run(lib):
    d = CDecoder(lib)
    good = bytes.fromhex(GOLDEN["valid"][1]["encoded"]) + b"\x00"
    got = d.feed(b"\x00\x00" + b"\xab" * 1000 + b"\x00" + good)
    assert [r for r, _ in got] == [ERR_TOO_LARGE, FRAME_READY]


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


@FAST
@given(data=st.binary(max_size=spec.MAX_FRAME))
def test_c_cobs_matches_the_cobs_package(lib, data):
    out = ctypes.create_string_buffer(spec.MAX_ENCODED + 8)
    n = ctypes.c_size_t(0)
    assert lib.proto_cobs_encode(data, len(data), out, len(out), ctypes.byref(n)) == OK
    enc = out.raw[:n.value]
    assert enc == cobs.encode(data)
    back = ctypes.create_string_buffer(spec.MAX_FRAME + 8)
    assert lib.proto_cobs_decode(enc, len(enc), back, len(back), ctypes.byref(n)) == OK
    assert back.raw[:n.value] == data


@FAST
@given(typ=st.sampled_from([int(t) for t in MsgType]), seq=st.integers(0, 0xFFFF),
       payload=st.binary(max_size=spec.MAX_PAYLOAD))
def test_c_and_python_frames_agree_and_cross_decode(lib, typ, seq, payload):
    r, wire = c_build(lib, typ, seq, payload)
    assert r == OK and wire == codec.encode_frame(typ, seq, payload)
    # the cobs package, independently: decode C's bytes and check the documented layout
    raw = cobs.decode(wire[:-1])
    assert raw[:5] == bytes([spec.PROTOCOL_VERSION, typ, seq & 0xFF, seq >> 8, len(payload)])
    assert raw[5:-2] == payload and int.from_bytes(raw[-2:], "little") == codec.crc16(raw[:-2])
    got = CDecoder(lib).feed(wire)
    assert got == [(FRAME_READY, (spec.PROTOCOL_VERSION, typ, seq, payload))]


@FAST
@given(st.binary(max_size=600))
def test_c_and_python_stream_decoders_agree_on_garbage(lib, data):
    stream = data + b"\x00"
    c_frames = [f for r, f in CDecoder(lib).feed(stream) if r == FRAME_READY]
    py = codec.FrameDecoder(check_version=False)
    py_frames = []
    for chunk in (stream,):
        for f in py.feed(chunk):
            py_frames.append((f.version, int(f.type), f.seq, f.payload))
    # Python also judges type and payload length; C leaves that to the control loop
    for rej in py.rejected:
        py_frames.append((rej.frame.version, int(rej.frame.type), rej.frame.seq, rej.frame.payload))
    assert sorted(c_frames, key=repr) == sorted(py_frames, key=repr)


def test_the_c_tests_golden_signed_manifest_is_the_golden_frames_one():
    """firmware/tests/c/golden_manifest.h (C unit tests, verify benchmark) holds the payload of the
    golden MODEL_BEGIN frame; regenerating the golden frames must be followed by updating it."""
    import re

    text = (REPO / "firmware" / "tests" / "c" / "golden_manifest.h").read_text()
    body = text[text.index("golden_manifest[MODEL_BEGIN_LEN] = {"):]
    c_bytes = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body[:body.index("};")]))
    (entry,) = [e for e in golden.build_golden()["valid"] if e["name"] == "model_begin"]
    assert c_bytes == bytes.fromhex(entry["payload"])
