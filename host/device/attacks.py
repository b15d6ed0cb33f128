"""Raw update attacks: what an outside serial client can send to a unit, bypassing the host tool.

Every attack here talks to the unit with its own pyserial port and hand-built frames; nothing
goes through :mod:`motocoach.device.ops` (whose checks an attacker would simply skip). Used by
``host/tests/test_signed_updates.py`` and ``bench/test_update.py``: each attack must be refused by
the unit itself, nothing erased, and the previous model must keep running and answering.

>>> [a.name for a in catalogue(b"x" * 8, b"y" * 8, "esp32dev", bytes(8), floor=0)][:3]
['unsigned manifest', 'zero signature', 'manifest edited after signing']
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import serial
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from motocoach import keys
from motocoach.errors import DeviceError
from motocoach.protocol import codec, spec
from motocoach.protocol import manifest as um
from motocoach.protocol.spec import MsgType, Status


def dev_key() -> Ed25519PrivateKey:
    """The committed (public) development key: what SIL/QEMU units trust."""
    return keys.load_private(keys.dev_private_key())


class RawClient:
    """A bare pyserial client: COBS frames in, ACK status out. No checks, no retries."""

    def __init__(self, port: str, timeout: float = 2.0) -> None:
        self.ser = serial.Serial(port, 115200, timeout=0.05)
        self.timeout = timeout
        self.seq = 100
        self.dec = codec.FrameDecoder(check_version=False)

    def close(self) -> None:
        self.ser.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, payload: bytes = b"") -> codec.Frame:
        self.seq = (self.seq + 1) & 0xFFFF
        self.ser.write(codec.encode_frame(msg_type, self.seq, payload))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for f in self.dec.feed(self.ser.read(256)):
                if f.seq == self.seq and f.type != MsgType.FAULT:
                    return f
        raise DeviceError(f"no reply to raw {MsgType(msg_type).name} within {self.timeout} s")

    def status(self, msg_type: int, payload: bytes = b"") -> int:
        """ACK status of a request (raises if the reply is not an ACK)."""
        f = self.request(msg_type, payload)
        if f.type != MsgType.ACK:
            raise DeviceError(f"raw {MsgType(msg_type).name} answered with {f.type}, not ACK")
        return f.payload[1]

    def identity(self) -> dict:
        f = self.request(MsgType.HELLO, bytes([spec.PROTOCOL_MIN, spec.PROTOCOL_MAX]))
        return codec.unpack(MsgType.IDENTITY, f.payload[:spec.messages()[MsgType.IDENTITY].fixed_size])

    def haptic(self, telemetry: list[float]) -> dict:
        f = self.request(MsgType.TELEMETRY, codec.pack_telemetry(telemetry))
        if f.type != MsgType.HAPTIC:
            raise DeviceError(f"TELEMETRY answered with {f.type}, not HAPTIC")
        return codec.unpack(MsgType.HAPTIC, f.payload)

    def push(self, manifest: bytes, blob: bytes) -> list[int]:
        """MODEL_BEGIN, every chunk, MODEL_COMMIT; stop at the first refusal. Returns the statuses."""
        out = [self.status(MsgType.MODEL_BEGIN, manifest)]
        if out[-1] != Status.OK:
            return out
        for off in range(0, len(blob), spec.MAX_CHUNK):
            out.append(self.status(MsgType.MODEL_CHUNK, off.to_bytes(4, "little") + blob[off:off + spec.MAX_CHUNK]))
            if out[-1] != Status.OK:
                return out
        out.append(self.status(MsgType.MODEL_COMMIT))
        return out


@dataclass
class Attack:
    name: str
    manifest: bytes
    blob: bytes
    expect: Status  #: the status the unit must answer (at MODEL_BEGIN unless at_commit)
    at_commit: bool = False  #: refused only at MODEL_COMMIT (a correctly signed manifest)
    note: str = field(default="")


def catalogue(good_blob: bytes, evil_blob: bytes, board: str, unit_id: bytes, *, floor: int,
              key: Ed25519PrivateKey | None = None, schema_hash32: int | None = None,
              engine_version: int = 1) -> list[Attack]:
    """Every raw attack, against a unit of ``board`` / ``unit_id`` whose version floor is ``floor``.

    ``good_blob`` is a real model; ``evil_blob`` a self-consistent model nobody signed."""
    key = key or dev_key()
    other = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not the trusted key").digest())
    if schema_hash32 is None:
        from motocoach.schema import load_schema

        schema_hash32 = int.from_bytes(bytes.fromhex(load_schema().hash)[:4], "little")

    def sign(blob: bytes, k: Ed25519PrivateKey = key, **kw) -> bytes:
        args = dict(version=floor + 1, engine_version=engine_version, schema_hash32=schema_hash32)
        args.update(kw)
        return um.for_model(blob, "attack", board, k, **args)

    good = um.UpdateManifest.parse(sign(good_blob))
    evil_unsigned = um.UpdateManifest.parse(sign(evil_blob)).with_changes(signature=bytes(64)).pack()
    edited = bytearray(sign(good_blob))
    sha_at = spec.messages()[MsgType.MODEL_BEGIN].offsets()["sha256"]
    edited[sha_at:sha_at + spec.SHA256_LEN] = hashlib.sha256(evil_blob).digest()
    flipped = bytearray(good_blob)
    flipped[len(flipped) // 2] ^= 0x01
    forged_id = um.UpdateManifest.parse(sign(evil_blob, other)).with_changes(key_id=good.key_id)
    forged = forged_id.signed_bytes() + other.sign(forged_id.signed_bytes())
    other_unit = bytes((b ^ 0xFF) for b in unit_id) if any(unit_id) else b"\x02unit-xx"
    attacks = [
        Attack("unsigned manifest", evil_unsigned, evil_blob, Status.BAD_SIGNATURE,
               note="a crafted, self-consistent model with no signature"),
        Attack("zero signature", good.with_changes(signature=bytes(64)).pack(), good_blob, Status.BAD_SIGNATURE),
        Attack("manifest edited after signing", bytes(edited), evil_blob, Status.BAD_SIGNATURE,
               note="a genuine signed manifest whose sha256 now names the evil blob"),
        Attack("signed by another key", sign(evil_blob, other), evil_blob, Status.UNTRUSTED_KEY),
        Attack("another key claiming the trusted key id", forged, evil_blob, Status.BAD_SIGNATURE),
        Attack("weight flipped, CRC-free blob under a genuine manifest", sign(good_blob), bytes(flipped),
               Status.HASH_MISMATCH, at_commit=True),
        Attack("wrong board", um.for_model(good_blob, "attack", "no-such-board", key, version=floor + 1,
                                           engine_version=engine_version, schema_hash32=schema_hash32),
               good_blob, Status.WRONG_BOARD),
        Attack("bound to another unit", sign(good_blob, unit_id=other_unit), good_blob, Status.WRONG_UNIT),
        Attack("wrong schema", sign(good_blob, schema_hash32=schema_hash32 ^ 0x5A5A5A5A), good_blob,
               Status.INCOMPATIBLE),
        Attack("protocol 1 MODEL_BEGIN (unsigned)", len(good_blob).to_bytes(4, "little")
               + hashlib.sha256(evil_blob).digest() + b"evil".ljust(16, b"\0"), evil_blob, Status.BAD_LENGTH),
        Attack("truncated manifest", sign(good_blob)[:-1], good_blob, Status.BAD_LENGTH),
    ]
    if floor > 0:
        attacks.append(Attack("downgrade below the floor", sign(good_blob, version=floor - 1), good_blob,
                              Status.DOWNGRADE))
    return attacks
