"""Wire protocol definition: the one source of truth for frame layout and message kinds.

The Python codec (``motocoach.protocol.codec``) and the C codec (through the generated
``protocol_defs.h``) both come from the tables here; ``docs/protocol.md`` explains them.

Frame, before COBS encoding (all integers little-endian)::

    0      1      2..3   4            5 .. 5+len-1   5+len .. 6+len
    ver    type   seq    payload_len  payload        crc16 (CRC-16/CCITT-FALSE over bytes 0..5+len-1)

On the wire each frame is COBS-encoded and followed by one 0x00 delimiter. The header
layout is frozen for every protocol version; payloads only ever grow by appending fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

PROTOCOL_VERSION = 2
PROTOCOL_MIN = 2  #: oldest version this build still speaks
PROTOCOL_MAX = 2  #: newest version this build speaks
#: Oldest firmware that speaks PROTOCOL_MIN: what the host tells the owner of an older unit to flash.
FIRMWARE_FOR_PROTOCOL = "0.2.0"

HEADER_FORMAT = "<BBHB"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 5
CRC_SIZE = 2
MAX_PAYLOAD = 240
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE  # decoded size, 247
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1  # COBS worst case, without delimiter
MAX_CHUNK = 224  #: model bytes in one MODEL_CHUNK (payload = u32 offset + data)
MAX_LOG_TEXT = 200
BOARD_ID_LEN = 16
MODEL_ID_LEN = 16
SHA256_LEN = 32
UNIT_ID_LEN = 8
SIGNATURE_LEN = 64
MANIFEST_MAGIC = b"CMF2"  #: first bytes of a signed update manifest (MODEL_BEGIN payload)
MANIFEST_FORMAT = 1
MANIFEST_FLAG_DOWNGRADE = 0x01  #: signed permission to go below the unit's version floor
TRIAL_FRAMES = 20  #: good TELEMETRY frames that confirm a model on trial


class MsgType(IntEnum):
    """Message kinds. Host requests are < 0x80; device messages have bit 7 set."""

    HELLO = 0x01  #: host -> device; reply IDENTITY
    TELEMETRY = 0x02  #: host -> device; reply HAPTIC (or ACK with an error status)
    STATUS_REQ = 0x03  #: host -> device; reply STATUS
    LOG_REQ = 0x05  #: host -> device; reply one LOG (flags bit0: more lines pending)
    RESET = 0x06  #: host -> device; reply ACK, then the device resets
    MODEL_BEGIN = 0x10  #: host -> device; start an update of the inactive model slot
    MODEL_CHUNK = 0x11  #: host -> device; reply ACK, value = bytes received so far
    MODEL_COMMIT = 0x12  #: host -> device; verify sha256, then switch slots; ACK value = slot
    MODEL_ABORT = 0x13  #: host -> device; drop the update in progress
    #: host -> device; go back to the previous model: the other valid slot, else the factory
    #: model (the running slot is retired); from the factory model, re-activate the retired slot
    MODEL_ROLLBACK = 0x14
    #: host -> device; confirm the model on trial now (else N good TELEMETRY frames confirm it,
    #: and a reset before that returns to the previous model)
    MODEL_CONFIRM = 0x15

    ACK = 0x80  #: device -> host; generic reply / error reply
    IDENTITY = 0x81
    HAPTIC = 0x82
    STATUS = 0x83
    FAULT = 0x84  #: device -> host, unsolicited, device's own seq counter
    LOG = 0x85


class Status(IntEnum):
    """ACK status codes (the device's answer to a request)."""

    OK = 0
    BAD_VERSION = 1  #: frame version outside the device's [min, max]
    UNKNOWN_TYPE = 2
    BAD_LENGTH = 3  #: payload length wrong for the message kind
    BAD_VALUE = 4  #: NaN / inf telemetry, or a field out of its range
    BAD_STATE = 5  #: e.g. a chunk with no update in progress
    BAD_OFFSET = 6  #: chunk out of order or duplicated
    TOO_LARGE = 7  #: model larger than a slot
    HASH_MISMATCH = 8  #: sha256 of received bytes differs from MODEL_BEGIN's
    STORAGE_ERROR = 9
    NO_VALID_SLOT = 10  #: rollback asked while the factory model runs and no slot holds a model
    SELFTEST_FAILED = 11  #: new model failed its golden vectors; not activated
    INCOMPATIBLE = 12  #: model blob for another schema / engine version
    BAD_SIGNATURE = 13  #: the manifest's ed25519 signature does not verify; nothing erased
    UNTRUSTED_KEY = 14  #: the manifest names a key this firmware does not trust; nothing erased
    DOWNGRADE = 15  #: model version below the unit's floor, without a signed downgrade
    WRONG_BOARD = 16  #: the manifest is for another board
    WRONG_UNIT = 17  #: the manifest is bound to another unit id


class Fault(IntEnum):
    """Fault codes in STATUS and FAULT messages."""

    NONE = 0
    STALE_TELEMETRY = 1  #: no valid TELEMETRY for FAILSAFE_MS: motors off
    SELFTEST_FAILED = 2  #: golden vectors failed at boot: motors stay off
    NO_MODEL = 3
    DEADLINE = 4  #: a control loop iteration exceeded its budget


class SlotState(IntEnum):
    """Model slot states, as reported in IDENTITY."""

    EMPTY = 0
    VALID = 1
    ACTIVE = 2
    INVALID = 3  #: torn, hash mismatch or failed self-test
    WRITING = 4  #: update in progress
    TRIAL = 5  #: active on trial: not yet confirmed; a reset returns to the previous model


class HapticFlag(IntEnum):
    """Bits of HAPTIC.flags."""

    FAILSAFE = 0x01  #: motors forced off (stale telemetry before this frame)
    MOTORS_DISABLED = 0x02  #: self-test failed; the report is computed but not driven
    INPUT_CLAMPED = 0x04  #: at least one feature was outside its schema range
    RAMP_LIMITED = 0x08  #: output limited by ramp / on-time / board cap


FAILSAFE_MS = 150
TICK_HZ = 20


@dataclass(frozen=True)
class Field:
    name: str
    fmt: str  #: one struct code, e.g. "B", "H", "I", "f", "b", "16s"
    doc: str = ""

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


@dataclass(frozen=True)
class Message:
    type: MsgType
    fields: tuple[Field, ...]
    tail: str | None = None  #: name of a variable-length bytes tail after the fields
    doc: str = ""

    @property
    def fixed_format(self) -> str:
        return "<" + "".join(f.fmt for f in self.fields)

    @property
    def fixed_size(self) -> int:
        return struct.calcsize(self.fixed_format)

    def offsets(self) -> dict[str, int]:
        out, off = {}, 0
        for f in self.fields:
            out[f.name] = off
            off += f.size
        return out


def _telemetry_fields() -> tuple[Field, ...]:
    from motocoach.schema import load_schema

    s = load_schema()
    return tuple(Field(f.name, "f", f"{f.unit}, {f.min:g}..{f.max:g}") for f in s.features)


def manifest_fields() -> tuple[Field, ...]:
    """The signed update manifest (``motocoach.protocol.manifest``): MODEL_BEGIN's payload."""
    F = Field
    return (
        F("magic", "4s", f"{MANIFEST_MAGIC.decode()}"), F("format", "B", f"{MANIFEST_FORMAT}"),
        F("flags", "B", "bit0: signed downgrade"), F("engine_version", "B"), F("reserved", "B", "0"),
        F("model_size", "I", "blob bytes"), F("model_version", "I", "anti-rollback version"),
        F("schema_hash", "I", "first 4 bytes of the feature-schema sha256, LE"),
        F("key_id", "I", "id of the signing key"),
        F("board", f"{BOARD_ID_LEN}s", "board id, NUL padded"),
        F("model_id", f"{MODEL_ID_LEN}s", "NUL padded"),
        F("sha256", f"{SHA256_LEN}s", "sha256 of the model blob"),
        F("unit_id", f"{UNIT_ID_LEN}s", "all zero: any unit; else only that unit"),
        F("signature", f"{SIGNATURE_LEN}s", "ed25519 over every byte before it"),
    )


def messages() -> dict[MsgType, Message]:
    """All message layouts, keyed by type. TELEMETRY follows the feature schema."""
    F = Field
    msgs = [
        Message(MsgType.HELLO, (F("proto_min", "B"), F("proto_max", "B")),
                doc="Host's supported protocol range."),
        Message(MsgType.TELEMETRY, _telemetry_fields(),
                doc="One telemetry sample, float32 per schema feature, physical units."),
        Message(MsgType.STATUS_REQ, ()),
        Message(MsgType.LOG_REQ, ()),
        Message(MsgType.RESET, ()),
        Message(MsgType.MODEL_BEGIN, manifest_fields(),
                doc="The signed update manifest. The unit checks key, signature, board, unit, schema, "
                    "engine, size and version floor BEFORE it erases the inactive slot."),
        Message(MsgType.MODEL_CHUNK, (F("offset", "I"),), tail="data",
                doc=f"1..{MAX_CHUNK} blob bytes at offset (must equal bytes received so far)."),
        Message(MsgType.MODEL_COMMIT, ()),
        Message(MsgType.MODEL_ABORT, ()),
        Message(MsgType.MODEL_ROLLBACK, ()),
        Message(MsgType.MODEL_CONFIRM, ()),
        Message(MsgType.ACK, (F("request_type", "B"), F("status", "B"), F("value", "I"))),
        Message(MsgType.IDENTITY, (
            F("fw_major", "B"), F("fw_minor", "B"), F("fw_patch", "B"),
            F("proto_version", "B"), F("proto_min", "B"), F("proto_max", "B"),
            F("board", f"{BOARD_ID_LEN}s", "board id, NUL padded"),
            F("model_id", f"{MODEL_ID_LEN}s", "NUL padded"),
            F("model_sha256", f"{SHA256_LEN}s", "sha256 of the running model blob"),
            F("schema_hash", "I", "first 4 bytes of the feature-schema sha256, LE"),
            F("engine_version", "B"),
            F("active_slot", "B", "0 factory (built in), 1 slot A, 2 slot B"),
            F("slot_a_state", "B"), F("slot_b_state", "B"),
            F("selftest_ok", "B", "1 if the boot self-test passed"),
            F("slot_size", "I", "bytes available per model slot"),
            F("key_id", "I", "first 4 bytes (LE) of sha256 of the trusted ed25519 public key"),
            F("unit_id", f"{UNIT_ID_LEN}s", "unique unit id (ESP32: factory MAC; SIL/QEMU: kept with the slots)"),
            F("model_version", "I", "signed version of the running model (0: factory)"),
            F("version_floor", "I", "lowest model version the unit accepts without a signed downgrade"),
            F("trial", "B", "1 while the running model is on trial"),
        )),
        Message(MsgType.HAPTIC, (
            F("left", "B", "commanded left intensity 0..255"),
            F("right", "B", "commanded right intensity 0..255"),
            F("freq_hz", "H", "commanded vibration frequency, 50..300"),
            F("out0", "b"), F("out1", "b"), F("out2", "b"),
            F("infer_us", "I", "device-side inference time"),
            F("loop_us", "I", "device-side time from frame complete to reply queued"),
            F("flags", "B", "HapticFlag bits"),
        )),
        Message(MsgType.STATUS, (
            F("state", "B", "0 ok, 1 fault"), F("fault", "B"),
            F("frames_ok", "I"), F("crc_errors", "I"), F("frame_errors", "I"),
            F("value_errors", "I"), F("deadline_misses", "I"), F("failsafe_trips", "I"),
            F("max_loop_us", "I"), F("uptime_ms", "I"),
            F("tx_dropped", "I", "replies that did not fit the TX ring"),
            F("uart_errors", "I", "UART driver errors"),
        )),
        Message(MsgType.FAULT, (F("fault", "B"), F("state", "B"))),
        Message(MsgType.LOG, (F("level", "B"), F("flags", "B")), tail="text"),
    ]
    return {m.type: m for m in msgs}
