"""Python codec: golden vectors, independent COBS, stream resync, pack/unpack, doc tables."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
from cobs import cobs

from motocoach.errors import ProtocolError
from motocoach.protocol import codec, docgen, golden, spec
from motocoach.protocol.spec import MsgType, Status

REPO = Path(__file__).resolve().parents[2]
GOLDEN = json.loads(golden.golden_path().read_text())


def _field_value(v):
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v, None)
    return v


def test_golden_file_is_up_to_date():
    assert golden.golden_path().read_text() == golden.render(), \
        "run: python -m motocoach.protocol.golden"


def test_golden_covers_every_message_kind_and_every_error():
    assert {e["type"] for e in GOLDEN["valid"]} == {int(t) for t in MsgType}
    assert {e["error"] for e in GOLDEN["invalid"]} == set(codec.ERROR_CLASSES)


@pytest.mark.parametrize("entry", GOLDEN["valid"], ids=lambda e: e["name"])
def test_valid_golden_frame_decodes_to_its_fields(entry):
    frame = codec.decode_frame(bytes.fromhex(entry["encoded"]))
    assert (frame.version, int(frame.type), frame.seq) == (entry["version"], entry["type"], entry["seq"])
    assert frame.payload.hex() == entry["payload"]
    fields = codec.unpack(frame.type, frame.payload)
    assert fields.keys() == entry["fields"].keys()
    for name, want in entry["fields"].items():
        got = fields[name]
        if isinstance(got, bytes):
            assert got.hex() == want, name
        elif isinstance(got, float) and not math.isfinite(got):
            assert (math.isnan(got) and want == "nan") or got == _field_value(want), name
        else:
            assert got == want, name


@pytest.mark.parametrize("entry", GOLDEN["valid"], ids=lambda e: e["name"])
def test_valid_golden_frame_encodes_to_its_bytes(entry):
    t = MsgType(entry["type"])
    fields = {k: (bytes.fromhex(v) if spec_field_is_bytes(t, k) else _field_value(v) if isinstance(v, str) else v)
              for k, v in entry["fields"].items()}
    payload = codec.pack(t, **fields)
    assert payload.hex() == entry["payload"]
    wire = codec.encode_frame(t, entry["seq"], payload)
    assert wire == bytes.fromhex(entry["encoded"]) + b"\x00"
    # independent route: the cobs package over the documented raw layout
    assert cobs.decode(bytes.fromhex(entry["encoded"])).hex() == entry["decoded"]
    raw = bytes.fromhex(entry["decoded"])
    assert struct.unpack("<H", raw[-2:])[0] == codec.crc16(raw[:-2])


def spec_field_is_bytes(t: MsgType, name: str) -> bool:
    m = spec.messages()[t]
    return name == m.tail or any(f.name == name and f.fmt.endswith("s") for f in m.fields)


@pytest.mark.parametrize("entry", GOLDEN["invalid"], ids=lambda e: e["name"])
def test_invalid_golden_frame_raises_its_error(entry):
    with pytest.raises(codec.ERROR_CLASSES[entry["error"]]) as info:
        codec.decode_frame(bytes.fromhex(entry["encoded"]))
    err = info.value
    if entry["device"]["action"] == "drop":
        assert isinstance(err, codec.FramingError)
    else:
        assert isinstance(err, codec.FrameContentError)
        assert err.frame.seq == entry["device"]["seq"]
        if isinstance(err, codec.VersionError) and err.frame.type is MsgType.HELLO:
            # a device answers HELLO whatever its version: what matters is the next check
            try:
                codec.decode_frame(bytes.fromhex(entry["encoded"]), check_version=False)
            except codec.FrameContentError as inner:
                err = inner
        if entry["device"]["action"] == "ack" and err.frame.type is MsgType.HELLO and \
                entry["device"]["status"] == "BAD_VERSION":
            assert isinstance(err, codec.VersionError)  # disjoint ranges: in the payload, not the header
        elif entry["device"]["action"] == "ack":
            assert err.status is Status[entry["device"]["status"]]
            assert int(err.frame.type) == entry["device"]["request_type"]
        else:
            assert err.frame.type is MsgType.HELLO


def test_crc_is_ccitt_false():
    assert codec.crc16(b"123456789") == GOLDEN["crc"]["check_123456789"] == 0x29B1


def test_decoder_resyncs_after_garbage_and_counts_every_bad_frame():
    good = [bytes.fromhex(e["encoded"]) + b"\0" for e in GOLDEN["valid"]]
    bad = [bytes.fromhex(e["encoded"]) + b"\0" for e in GOLDEN["invalid"]]
    stream = b"\x00\x00noise\x01\x02"  # idle fill, then garbage without a delimiter...
    for g, b in zip(good, bad):
        stream += b + g
    stream += b"\xff" * 1000 + b"\0" + good[0]  # a run past MAX_ENCODED is discarded as one error
    d = codec.FrameDecoder()
    frames = []
    for i in range(0, len(stream), 7):  # arbitrary chunking must not matter
        frames += list(d.feed(stream[i:i + 7]))
    assert [f.seq for f in frames] == [GOLDEN["valid"][i]["seq"] for i in range(len(bad))] + [1]
    # the noise joins the first bad frame (one candidate); the 1000-byte run adds one
    assert sum(d.errors.values()) == len(bad) + 1
    assert d.errors["oversized"] >= 1


def test_decoder_keeps_intact_but_refused_frames_for_the_caller():
    d = codec.FrameDecoder()
    wrong = codec.encode_frame(MsgType.TELEMETRY, 5, codec.pack_telemetry([0.0] * 8), version=9)
    assert list(d.feed(wrong)) == []
    assert d.errors == {"bad_version": 1}
    assert d.rejected[-1].frame.seq == 5
    lenient = codec.FrameDecoder(check_version=False)
    assert [f.version for f in lenient.feed(wrong)] == [9]


def test_pack_rejects_missing_unknown_and_out_of_range_fields():
    with pytest.raises(ProtocolError, match="missing"):
        codec.pack(MsgType.HELLO, proto_min=1)
    with pytest.raises(ProtocolError, match="unknown"):
        codec.pack(MsgType.HELLO, proto_min=1, proto_max=1, extra=3)
    with pytest.raises(ProtocolError, match="does not fit"):
        codec.pack(MsgType.HELLO, proto_min=1, proto_max=256)
    with pytest.raises(ProtocolError, match="bytes >"):
        codec.pack(MsgType.ACK, request_type=1, status=0, value=0) and codec.pack(
            MsgType.MODEL_BEGIN, **{f.name: (b"x" * (f.size + (f.name == "sha256")) if f.fmt.endswith("s") else 0)
                                    for f in spec.manifest_fields()})
    with pytest.raises(ProtocolError, match="exactly"):
        codec.pack_telemetry([1.0, 2.0])
    with pytest.raises(ProtocolError, match="MAX_PAYLOAD"):
        codec.encode_frame(MsgType.LOG, 1, bytes(spec.MAX_PAYLOAD + 1))


def test_telemetry_roundtrip_keeps_nan_and_inf_for_bad_input_tests():
    vals = [math.nan, math.inf, -math.inf, 1.5, 0.0, -0.0, 3.25, 1e-3]
    back = codec.unpack_telemetry(codec.pack_telemetry(vals))
    assert math.isnan(back[0]) and back[1:3] == [math.inf, -math.inf]
    assert back[3:7] == [1.5, 0.0, -0.0, 3.25]
    assert back[7] == struct.unpack("<f", struct.pack("<f", 1e-3))[0]


def test_unpack_rejects_a_payload_of_the_wrong_length():
    with pytest.raises(codec.PayloadLengthError):
        codec.unpack(MsgType.HAPTIC, bytes(5))


def test_doc_tables_match_the_spec():
    doc = (REPO / "docs/protocol.md").read_text()
    assert docgen.render_tables() in doc, "run: python -m motocoach.protocol.docgen"


def test_doc_states_the_numbers_of_the_spec():
    doc = (REPO / "docs/protocol.md").read_text()
    for fact in (f"`MAX_PAYLOAD`", f"{spec.MAX_ENCODED} bytes (`MAX_ENCODED`)", f"{spec.FAILSAFE_MS} ms",
                 f"{spec.MAX_FRAME} bytes (`MAX_FRAME`"):
        assert fact in doc, fact


def test_codec_docstring_examples_run():
    import doctest

    result = doctest.testmod(codec)
    assert result.attempted > 0 and result.failed == 0


def test_a_newer_peer_may_append_fields_when_the_caller_accepts_its_version():
    ack = codec.pack(MsgType.ACK, request_type=1, status=0, value=3) + b"\x09\x09"
    wire = codec.encode_frame(MsgType.ACK, 4, ack, version=spec.PROTOCOL_MAX + 1)[:-1]
    with pytest.raises(codec.VersionError):
        codec.decode_frame(wire)
    frame = codec.decode_frame(wire, check_version=False)
    assert codec.unpack(MsgType.ACK, frame.payload[:6])["value"] == 3
    same_version = codec.encode_frame(MsgType.ACK, 4, ack)[:-1]
    with pytest.raises(codec.PayloadLengthError):  # within a known version, lengths are exact
        codec.decode_frame(same_version)
