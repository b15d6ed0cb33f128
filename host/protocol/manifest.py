"""The signed update manifest: what a unit checks before it erases anything (MODEL_BEGIN's payload).

Layout (little-endian, :func:`motocoach.protocol.spec.manifest_fields`), 160 bytes:
magic ``CMF2``, format, flags (bit0: signed downgrade), engine version, reserved, model size,
model version, schema hash (32 bit), key id, board id, model id, model sha256, unit id (all zero:
any unit), and an ed25519 signature over the 96 bytes before it.

The unit verifies the signature with the public key compiled into its firmware, then board, unit,
schema, engine, size and its version floor, and answers a distinct status for each refusal
(``Status.BAD_SIGNATURE``, ``UNTRUSTED_KEY``, ``WRONG_BOARD``, ``WRONG_UNIT``, ``INCOMPATIBLE``,
``TOO_LARGE``, ``DOWNGRADE``). At MODEL_COMMIT it checks the blob's sha256 against this manifest.

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> k = Ed25519PrivateKey.from_private_bytes(bytes(32))
>>> m = UpdateManifest(model_size=3, model_version=7, schema_hash=1, key_id=2, board="esp32dev",
...                    model_id="m", sha256=bytes(32), engine_version=1)
>>> raw = m.sign(k)
>>> len(raw), UpdateManifest.parse(raw).model_version
(160, 7)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from motocoach.errors import BundleError
from motocoach.protocol import spec

_FIELDS = spec.manifest_fields()
FORMAT = "<" + "".join(f.fmt for f in _FIELDS)
SIZE = struct.calcsize(FORMAT)  #: 160
SIGNED_SIZE = SIZE - spec.SIGNATURE_LEN  #: bytes covered by the signature (96)


@dataclass(frozen=True)
class UpdateManifest:
    """One signed manifest. ``unit_id`` of 8 zero bytes means any unit."""

    model_size: int
    model_version: int
    schema_hash: int
    key_id: int
    board: str
    model_id: str
    sha256: bytes
    engine_version: int
    unit_id: bytes = bytes(spec.UNIT_ID_LEN)
    downgrade: bool = False
    signature: bytes = bytes(spec.SIGNATURE_LEN)

    @classmethod
    def for_blob(cls, blob: bytes, **kw) -> "UpdateManifest":
        """A manifest describing ``blob`` (size and sha256 from it)."""
        return cls(model_size=len(blob), sha256=hashlib.sha256(blob).digest(), **kw)

    def signed_bytes(self) -> bytes:
        """The 96 bytes the signature covers."""
        if not 0 <= self.model_version < 2**32 or not 0 < self.model_size < 2**32:
            raise BundleError(f"model version {self.model_version} / size {self.model_size} out of range")
        if len(self.sha256) != spec.SHA256_LEN or len(self.unit_id) != spec.UNIT_ID_LEN:
            raise BundleError("manifest sha256 must have 32 bytes and unit id 8 bytes")
        return struct.pack(FORMAT, spec.MANIFEST_MAGIC, spec.MANIFEST_FORMAT,
                           spec.MANIFEST_FLAG_DOWNGRADE if self.downgrade else 0, self.engine_version, 0,
                           self.model_size, self.model_version, self.schema_hash, self.key_id,
                           self.board.encode()[:spec.BOARD_ID_LEN], self.model_id.encode()[:spec.MODEL_ID_LEN],
                           self.sha256, self.unit_id, bytes(spec.SIGNATURE_LEN))[:SIGNED_SIZE]

    def sign(self, key: Ed25519PrivateKey) -> bytes:
        """The 160-byte wire form, signed with ``key``."""
        body = self.signed_bytes()
        return body + key.sign(body)

    def pack(self) -> bytes:
        """The wire form with the signature this object carries (e.g. a parsed one)."""
        return self.signed_bytes() + self.signature

    @classmethod
    def parse(cls, raw: bytes) -> "UpdateManifest":
        """Decode (the signature is NOT checked here; the unit and :func:`verify` do that)."""
        if len(raw) != SIZE:
            raise BundleError(f"a signed update manifest has {SIZE} bytes, got {len(raw)}")
        v = dict(zip((f.name for f in _FIELDS), struct.unpack(FORMAT, raw)))
        if v["magic"] != spec.MANIFEST_MAGIC or v["format"] != spec.MANIFEST_FORMAT:
            raise BundleError("not a signed update manifest (bad magic or format)")
        text = lambda b: b.split(b"\0", 1)[0].decode("utf-8", "replace")  # noqa: E731
        return cls(model_size=v["model_size"], model_version=v["model_version"], schema_hash=v["schema_hash"],
                   key_id=v["key_id"], board=text(v["board"]), model_id=text(v["model_id"]), sha256=v["sha256"],
                   engine_version=v["engine_version"], unit_id=v["unit_id"],
                   downgrade=bool(v["flags"] & spec.MANIFEST_FLAG_DOWNGRADE), signature=v["signature"])

    def with_changes(self, **kw) -> "UpdateManifest":
        return replace(self, **kw)


def verify(raw: bytes, public_raw: bytes) -> bool:
    """True when ``raw``'s signature verifies with the 32-byte public key (host-side check)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(raw) != SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(raw[SIGNED_SIZE:], raw[:SIGNED_SIZE])
    except InvalidSignature:
        return False
    return True


def for_model(blob: bytes, model_id: str, board: str, key: Ed25519PrivateKey, *, version: int,
              engine_version: int | None = None, schema_hash32: int | None = None,
              unit_id: bytes | None = None, downgrade: bool = False) -> bytes:
    """Sign a manifest for ``blob`` on ``board`` with ``key`` (schema hash from this checkout's
    feature schema, engine version from the generated engine unless given)."""
    from motocoach import keys

    if schema_hash32 is None:
        from motocoach.schema import load_schema

        schema_hash32 = int.from_bytes(bytes.fromhex(load_schema().hash)[:4], "little")
    if engine_version is None:
        from motocoach.quantization.codegen import ENGINE_VERSION

        engine_version = ENGINE_VERSION
    pub = keys.raw_public(key.public_key())
    m = UpdateManifest.for_blob(blob, model_version=version, schema_hash=schema_hash32, key_id=keys.key_id(pub),
                                board=board, model_id=model_id, engine_version=engine_version,
                                unit_id=unit_id or bytes(spec.UNIT_ID_LEN), downgrade=downgrade)
    return m.sign(key)
