"""Golden frames shared by the Python and C codecs: ``host/protocol/golden_frames.json``.

Regenerate with ``python -m motocoach.protocol.golden`` (``--check`` exits 1 when the
committed file is stale). Everything here is derived from :mod:`.spec` and the schema.

JSON conventions: byte strings (``decoded``, ``encoded``, ``payload``, ``Ns`` fields and
tails) are lowercase hex; ``encoded`` is the COBS output WITHOUT the 0x00 delimiter;
non-finite floats are the strings ``"nan"``, ``"inf"``, ``"-inf"``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from cobs import cobs

from motocoach.protocol import codec, spec
from motocoach.protocol.spec import HapticFlag, MsgType, SlotState, Status
from motocoach.schema import load_schema

GOLDEN_NAME = "golden_frames.json"


def golden_path() -> Path:
    """Path of the committed golden file inside the package."""
    return Path(str(resources.files("motocoach.protocol") / GOLDEN_NAME))


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _telemetry(fraction: float) -> list[float]:
    """A sample at ``offset + fraction * scale`` per feature: binary fractions, exact in float32."""
    return [f.offset + fraction * f.scale for f in load_schema().features]


def _valid_cases() -> list[tuple[str, MsgType, int, dict[str, Any], str]]:
    sha = bytes(range(0xA0, 0xC0))
    nan_sample = _telemetry(0.25)
    nan_sample[1] = math.nan
    inf_sample = _telemetry(-0.5)
    inf_sample[0] = math.inf
    over_range = _telemetry(0.0)
    over_range[0] = load_schema().features[0].max * 4
    return [
        ("hello", MsgType.HELLO, 1, dict(proto_min=spec.PROTOCOL_MIN, proto_max=spec.PROTOCOL_MAX), ""),
        ("telemetry", MsgType.TELEMETRY, 2, dict(values=_telemetry(0.25)), ""),
        ("telemetry_seq_wrap", MsgType.TELEMETRY, 0xFFFF, dict(values=_telemetry(-0.75)), ""),
        ("telemetry_zero_seq", MsgType.TELEMETRY, 0, dict(values=[0.0] * load_schema().n_features),
         "many 0x00 bytes: exercises COBS"),
        ("telemetry_nan", MsgType.TELEMETRY, 3, dict(values=nan_sample),
         "frame is valid; the device answers ACK BAD_VALUE and leaves the motors as they were"),
        ("telemetry_inf", MsgType.TELEMETRY, 4, dict(values=inf_sample),
         "frame is valid; the device answers ACK BAD_VALUE"),
        ("telemetry_out_of_range", MsgType.TELEMETRY, 5, dict(values=over_range),
         "frame is valid; the device clamps and sets HAPTIC flag INPUT_CLAMPED"),
        ("status_req", MsgType.STATUS_REQ, 6, {}, ""),
        ("log_req", MsgType.LOG_REQ, 7, {}, ""),
        ("reset", MsgType.RESET, 8, {}, ""),
        ("model_begin", MsgType.MODEL_BEGIN, 9, _signed_manifest_fields(sha),
         "a manifest signed with the development key (ed25519 signatures are deterministic)"),
        ("model_chunk_max_nonzero", MsgType.MODEL_CHUNK, 10,
         dict(offset=0x01020304, data=bytes((i % 255) + 1 for i in range(spec.MAX_CHUNK))),
         "largest payload, no zero bytes"),
        ("model_chunk_max_zeros", MsgType.MODEL_CHUNK, 11, dict(offset=0, data=bytes(spec.MAX_CHUNK)),
         "largest payload, all zero bytes"),
        ("model_chunk_one_byte", MsgType.MODEL_CHUNK, 12, dict(offset=224, data=b"\x7f"), ""),
        ("model_commit", MsgType.MODEL_COMMIT, 13, {}, ""),
        ("model_abort", MsgType.MODEL_ABORT, 14, {}, ""),
        ("model_rollback", MsgType.MODEL_ROLLBACK, 15, {}, ""),
        ("model_confirm", MsgType.MODEL_CONFIRM, 16, {}, ""),
        ("ack_ok", MsgType.ACK, 9, dict(request_type=int(MsgType.MODEL_BEGIN), status=int(Status.OK),
                                        value=0), ""),
        ("ack_bad_value", MsgType.ACK, 3, dict(request_type=int(MsgType.TELEMETRY),
                                               status=int(Status.BAD_VALUE), value=0), ""),
        ("ack_bad_signature", MsgType.ACK, 9, dict(request_type=int(MsgType.MODEL_BEGIN),
                                                   status=int(Status.BAD_SIGNATURE), value=0),
         "refused before any erase; the previous model keeps running"),
        ("identity", MsgType.IDENTITY, 1, dict(
            fw_major=0, fw_minor=3, fw_patch=1, proto_version=spec.PROTOCOL_VERSION,
            proto_min=spec.PROTOCOL_MIN, proto_max=spec.PROTOCOL_MAX, board=b"esp32dev",
            model_id=b"coach-demo", model_sha256=sha, schema_hash=load_schema().hash32,
            engine_version=1, active_slot=1, slot_a_state=int(SlotState.ACTIVE),
            slot_b_state=int(SlotState.EMPTY), selftest_ok=1, slot_size=65_536, key_id=0x1234ABCD,
            unit_id=bytes.fromhex("0224a1b2c3d40000"), model_version=7, version_floor=7, trial=0), ""),
        ("haptic", MsgType.HAPTIC, 2, dict(left=200, right=0, freq_hz=250, out0=77, out1=-128, out2=-1,
                                           infer_us=412, loop_us=530,
                                           flags=int(HapticFlag.INPUT_CLAMPED)), ""),
        ("status", MsgType.STATUS, 6, dict(state=1, fault=1, frames_ok=123_456, crc_errors=3,
                                           frame_errors=4, value_errors=5, deadline_misses=0,
                                           failsafe_trips=2, max_loop_us=901, uptime_ms=3_600_000,
                                           tx_dropped=1, uart_errors=0), ""),
        ("fault", MsgType.FAULT, 0x0100, dict(fault=1, state=1), "unsolicited: the device's own seq"),
        ("log", MsgType.LOG, 7, dict(level=2, flags=1, text=b"boot selftest ok"), ""),
        ("log_empty", MsgType.LOG, 7, dict(level=0, flags=0, text=b""), "no lines pending"),
    ]


def _signed_manifest_fields(sha: bytes) -> dict[str, Any]:
    from motocoach import keys
    from motocoach.protocol import manifest

    key = keys.load_private(keys.dev_private_key())
    raw = manifest.UpdateManifest(model_size=10_880, model_version=7, schema_hash=load_schema().hash32,
                                  key_id=keys.DEV_KEY_ID, board="esp32dev", model_id="coach-demo", sha256=sha,
                                  engine_version=1).sign(key)
    return codec.unpack(MsgType.MODEL_BEGIN, raw)


def _valid_entry(name: str, t: MsgType, seq: int, fields: dict[str, Any], note: str) -> dict[str, Any]:
    payload = codec.pack(t, **fields)
    raw = codec.build_raw(spec.PROTOCOL_VERSION, t, seq, payload)
    enc = cobs.encode(raw)
    assert codec.encode_frame(t, seq, payload) == enc + b"\0"  # one encoder, two routes
    shown = codec.unpack(t, payload)
    entry = {"name": name, "version": spec.PROTOCOL_VERSION, "type": int(t), "type_name": t.name,
             "seq": seq, "payload": payload.hex(), "decoded": raw.hex(), "encoded": enc.hex(),
             "fields": {k: _jsonable(v) for k, v in shown.items()}}
    if t is MsgType.TELEMETRY:
        vals = codec.unpack_telemetry(payload)
        if not all(math.isfinite(v) for v in vals):
            entry["device_reply"] = {"type": "ACK", "status": "BAD_VALUE"}
        else:
            entry["device_reply"] = {"type": "HAPTIC"}
    if note:
        entry["note"] = note
    return entry


def _invalid_cases() -> list[dict[str, Any]]:
    """Each: encoded bytes (no delimiter), the decode error code and what the device does."""
    v = spec.PROTOCOL_VERSION
    tele = codec.pack_telemetry(_telemetry(0.25))
    good = codec.build_raw(v, MsgType.TELEMETRY, 20, tele)
    drop = {"action": "drop"}

    def ack(t: int, seq: int, status: Status) -> dict[str, Any]:
        return {"action": "ack", "request_type": t, "seq": seq, "status": status.name}

    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01
    flipped_payload = bytearray(good)
    flipped_payload[8] ^= 0x40
    big_payload = bytes((i % 255) + 1 for i in range(spec.MAX_PAYLOAD + 1))
    cases: list[tuple[str, bytes, str, dict[str, Any], str]] = [
        ("bad_crc", cobs.encode(bytes(bad_crc)), "bad_crc", drop, "last CRC byte flipped"),
        ("bad_crc_payload_bit", cobs.encode(bytes(flipped_payload)), "bad_crc", drop, "one payload bit flipped"),
        ("truncated_payload", cobs.encode(good[:-6]), "truncated", drop,
         "frame cut 6 bytes short, re-encoded: fewer bytes than payload_len says"),
        ("truncated_below_header", cobs.encode(good[:4]), "truncated", drop, "shorter than header + CRC"),
        ("truncated_on_wire", cobs.encode(good)[:-5], "truncated", drop,
         "encoded bytes cut at a COBS block boundary: decodes, but short"),
        ("truncated_mid_block", cobs.encode(good)[:-1], "bad_cobs", drop,
         "encoded bytes cut inside a block: the last COBS code points past the end"),
        ("bad_cobs_code", b"\x09\x01\x01", "bad_cobs", drop, "COBS code 9 with only 2 bytes following"),
        ("garbage_text", b"hello world\r\n", "bad_cobs", drop, "line noise"),
        ("oversized_encoded", b"\xff" + bytes(range(1, 255)) + b"\x05abcd", "oversized", drop,
         f"more than MAX_ENCODED={spec.MAX_ENCODED} encoded bytes"),
        ("oversized_frame", cobs.encode(codec.build_raw(v, MsgType.MODEL_CHUNK, 21, big_payload)),
         "oversized", drop, f"a whole frame with {spec.MAX_PAYLOAD + 1} payload bytes, CRC correct"),
        ("oversized_payload_len", cobs.encode(codec.build_raw(v, MsgType.TELEMETRY, 21, tele,
                                                              payload_len=spec.MAX_PAYLOAD + 1)),
         "oversized", drop, "header payload_len above MAX_PAYLOAD (checked before truncation)"),
        ("length_mismatch", cobs.encode(codec.build_raw(v, MsgType.STATUS_REQ, 22, b"\x01\x02", payload_len=0)),
         "length_mismatch", drop, "payload_len 0 but 2 payload bytes present"),
        ("version_0", cobs.encode(codec.build_raw(0, MsgType.TELEMETRY, 23, tele)), "bad_version",
         ack(MsgType.TELEMETRY, 23, Status.BAD_VERSION), ""),
        ("version_next", cobs.encode(codec.build_raw(v + 1, MsgType.TELEMETRY, 24, tele + b"\x01\x02")),
         "bad_version", ack(MsgType.TELEMETRY, 24, Status.BAD_VERSION),
         "a newer host's TELEMETRY with an appended field"),
        ("hello_version_next", cobs.encode(codec.build_raw(v + 1, MsgType.HELLO, 25, bytes([v, v + 1]))),
         "bad_version", {"action": "identity", "seq": 25},
         "a newer host (range v..v+1): HELLO is answered whatever its version, and the ranges overlap"),
        ("hello_long", cobs.encode(codec.build_raw(v + 1, MsgType.HELLO, 32, bytes([v, v + 1, 9]))),
         "bad_version", ack(MsgType.HELLO, 32, Status.BAD_LENGTH),
         "HELLO's payload is frozen at 2 bytes in every version: any other length is BAD_LENGTH"),
        ("hello_range_disjoint", cobs.encode(codec.build_raw(v + 5, MsgType.HELLO, 31, bytes([v + 5, v + 6]))),
         "bad_version", ack(MsgType.HELLO, 31, Status.BAD_VERSION),
         "a host that speaks no version the device knows: ACK BAD_VERSION, value = device min | max << 8"),
        ("unknown_type", cobs.encode(codec.build_raw(v, 0x7F, 26, b"\x01")), "unknown_type",
         ack(0x7F, 26, Status.UNKNOWN_TYPE), ""),
        ("telemetry_short", cobs.encode(codec.build_raw(v, MsgType.TELEMETRY, 27, tele[:-1])), "bad_length",
         ack(MsgType.TELEMETRY, 27, Status.BAD_LENGTH), "one byte short of the schema's features"),
        ("telemetry_long", cobs.encode(codec.build_raw(v, MsgType.TELEMETRY, 28, tele + b"\x00")),
         "bad_length", ack(MsgType.TELEMETRY, 28, Status.BAD_LENGTH), ""),
        ("chunk_empty", cobs.encode(codec.build_raw(v, MsgType.MODEL_CHUNK, 29, b"\0\0\0\0")), "bad_length",
         ack(MsgType.MODEL_CHUNK, 29, Status.BAD_LENGTH), "a chunk with no data"),
        ("chunk_too_big", cobs.encode(codec.build_raw(v, MsgType.MODEL_CHUNK, 30,
                                                      bytes(4) + b"\x01" * (spec.MAX_CHUNK + 1))),
         "bad_length", ack(MsgType.MODEL_CHUNK, 30, Status.BAD_LENGTH), f"MAX_CHUNK + 1 data bytes"),
    ]
    out = []
    for name, enc, err, device, note in cases:
        e = {"name": name, "encoded": enc.hex(), "error": err, "device": device}
        if note:
            e["note"] = note
        out.append(e)
    return out


def build_golden() -> dict[str, Any]:
    """The golden document (deterministic: same spec and schema -> same bytes)."""
    return {
        "about": "Golden frames for the moto-edge-coach wire protocol; see docs/protocol.md. "
                 "Generated by `python -m motocoach.protocol.golden`; do not edit.",
        "protocol": {"version": spec.PROTOCOL_VERSION, "min": spec.PROTOCOL_MIN, "max": spec.PROTOCOL_MAX,
                     "max_payload": spec.MAX_PAYLOAD, "max_frame": spec.MAX_FRAME,
                     "max_encoded": spec.MAX_ENCODED},
        "schema_hash32": load_schema().hash32,
        "crc": {"name": "CRC-16/CCITT-FALSE", "poly": 0x1021, "init": 0xFFFF, "check_123456789": 0x29B1,
                "byte_order": "little"},
        "conventions": "hex strings for bytes; `encoded` excludes the 0x00 delimiter; "
                       "non-finite floats as \"nan\"/\"inf\"/\"-inf\"",
        "valid": [_valid_entry(*c) for c in _valid_cases()],
        "invalid": _invalid_cases(),
    }


def render() -> str:
    return json.dumps(build_golden(), indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write or check host/protocol/golden_frames.json.")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    ap.add_argument("--out", type=Path, default=None, help="write here instead of the package file")
    a = ap.parse_args(argv)
    path = a.out or golden_path()
    text = render()
    if a.check:
        ok = path.exists() and path.read_text() == text
        print(f"{path}: {'up to date' if ok else 'STALE (run python -m motocoach.protocol.golden)'}")
        return 0 if ok else 1
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
