"""ed25519 signing keys for update bundles, and the trusted-key header built into the firmware.

The private key signs bundles on a release machine and never leaves it (file mode 0600, never
committed: ``*.key`` is git-ignored). The public key is committed and compiled into the
firmware as ``trusted_key.h``; the unit reports the key's id in IDENTITY (``key_id``) so the
host can refuse a bundle signed by any other key before it writes anything.

>>> f"{key_id(bytes(range(32))):08x}"
'29cd0d63'
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from motocoach.errors import BundleError, ConfigError

#: Repo-relative defaults: the committed development public key and its git-ignored private key.
DEFAULT_PUBLIC_KEY = Path("keys/dev_ed25519.pub")
DEFAULT_PRIVATE_KEY = Path("keys/dev_ed25519.key")
TRUSTED_KEY_HEADER = Path("firmware/lib/coach_core/src/trusted_key.h")


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> int:
    """First 4 bytes (little-endian) of sha256 of the raw public key: what IDENTITY reports."""
    if len(public_raw) != 32:
        raise BundleError(f"an ed25519 public key has 32 bytes, got {len(public_raw)}")
    return int.from_bytes(hashlib.sha256(public_raw).digest()[:4], "little")


@dataclass(frozen=True)
class KeyPair:
    """Where a generated key pair was written, and its id."""

    private_path: Path
    public_path: Path
    key_id: int


def generate(private_path: Path = DEFAULT_PRIVATE_KEY, public_path: Path = DEFAULT_PUBLIC_KEY,
             *, overwrite: bool = False) -> KeyPair:
    """Create a key pair: private key PEM (PKCS#8) with mode 0600, public key PEM.

    Refuses to replace an existing private key unless ``overwrite`` (units built with the old
    public key would then refuse every new bundle).
    """
    if private_path.exists() and not overwrite:
        raise ConfigError(f"{private_path} exists; keep it, or pass --overwrite to replace it "
                          "(units built with the old public key will then refuse new bundles)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    if private_path.exists():
        private_path.unlink()
    # create with 0600 from the start: no window in which the key is world-readable
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private_path, public_path, key_id(raw_public(key.public_key())))


def load_private(path: Path) -> Ed25519PrivateKey:
    """Load a signing key; refuses one that group or others can read."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read private key {path}: {e.strerror}; "
                          "create one with `motocoach keys generate`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"private key {path} is readable by other users; run `chmod 600 {path}`")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path} is not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """Load a public key (PEM, or 32 raw bytes)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read public key {path}: {e.strerror}; pass --trusted-key") from None
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise ConfigError(f"{path} is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an ed25519 public key")
    return key


def verify(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is a valid ed25519 signature of ``message`` by ``public``."""
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def render_trusted_key_header(public: Ed25519PublicKey) -> str:
    """C header with the raw public key and its id, for the firmware's IDENTITY reply."""
    raw = raw_public(public)
    body = ",\n".join("    " + ", ".join(f"0x{b:02x}" for b in raw[i:i + 8]) for i in range(0, 32, 8))
    return (
        "/* Generated by `motocoach keys generate` from keys/dev_ed25519.pub. Do not edit.\n"
        " * The ed25519 public key whose bundles this firmware accepts; IDENTITY reports its id. */\n"
        "#ifndef MOTOCOACH_TRUSTED_KEY_H\n#define MOTOCOACH_TRUSTED_KEY_H\n\n#include <stdint.h>\n\n"
        f"#define COACH_TRUSTED_KEY_ID 0x{key_id(raw):08x}u /* first 4 bytes LE of sha256(key) */\n\n"
        f"static const uint8_t COACH_TRUSTED_KEY[32] = {{\n{body}}};\n\n"
        "#endif /* MOTOCOACH_TRUSTED_KEY_H */\n")


def write_trusted_key_header(public: Ed25519PublicKey, root: Path = Path(".")) -> Path:
    """Write ``trusted_key.h`` under ``root``; returns its path."""
    out = root / TRUSTED_KEY_HEADER
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_trusted_key_header(public))
    return out
