"""ed25519 signing keys for update bundles, and the trusted-key header built into the firmware.

Two kinds of key pair exist:

* the **development** pair in ``firmware/keys/`` (``dev_ed25519.key`` + ``.pub``). Its private
  half is committed on purpose and is therefore public: SIL/QEMU builds, the tests and the demo
  use it, and anyone can sign bundles that a unit built with it accepts. The tool warns loudly
  whenever it is involved (:data:`DEV_KEY_WARNING`).
* **production** pairs made by ``motocoach keys generate --out DIR``. The private key stays on
  the release machine (file mode 0600; ``*.key`` is git-ignored everywhere except the one dev
  key); the public key is compiled into the firmware as ``trusted_key.h``.

The unit reports the id of the key its firmware trusts in IDENTITY (``key_id``), so the host
refuses a bundle signed by any other key before it writes anything.

>>> f"{key_id(bytes(range(32))):08x}"
'29cd0d63'
>>> is_dev_key(DEV_KEY_ID), is_dev_key(0x29cd0d63)
(True, False)
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

REPO = Path(__file__).resolve().parent.parent
#: Repo-relative paths of the committed development pair and of the generated firmware header.
DEV_PUBLIC_KEY = Path("firmware/keys/dev_ed25519.pub")
DEV_PRIVATE_KEY = Path("firmware/keys/dev_ed25519.key")
TRUSTED_KEY_HEADER = Path("firmware/lib/coach_core/src/trusted_key.h")
#: Id of the development public key (a test checks it against the committed file).
DEV_KEY_ID = 0x96DD2542
#: Environment variable naming the public key that ``device update`` / ``bundle verify`` trust.
TRUSTED_KEY_ENV = "MOTOCOACH_TRUSTED_KEY"
DEV_KEY_WARNING = ("this unit trusts the public development key: anyone can sign updates for it. "
                   "Build production firmware with your own key (`motocoach keys generate --out DIR`)")
DEV_SIGNER_WARNING = ("this bundle is signed with the public development key: only units built with "
                      "that key (SIL, QEMU, development boards) accept it, and anyone can make such bundles")


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> int:
    """First 4 bytes (little-endian) of sha256 of the raw public key: what IDENTITY reports."""
    if len(public_raw) != 32:
        raise BundleError(f"an ed25519 public key has 32 bytes, got {len(public_raw)}")
    return int.from_bytes(hashlib.sha256(public_raw).digest()[:4], "little")


def is_dev_key(kid: int) -> bool:
    """True for the id of the committed (publicly known) development key."""
    return kid == DEV_KEY_ID


def dev_public_key() -> Path:
    """Absolute path of the development public key in this checkout."""
    return REPO / DEV_PUBLIC_KEY


def dev_private_key() -> Path:
    """Absolute path of the development private key in this checkout (public on purpose)."""
    return REPO / DEV_PRIVATE_KEY


def default_trusted_key() -> Path:
    """The public key the host trusts unless told otherwise: ``$MOTOCOACH_TRUSTED_KEY``, else the
    development key."""
    env = os.environ.get(TRUSTED_KEY_ENV)
    return Path(env) if env else dev_public_key()


@dataclass(frozen=True)
class KeyPair:
    """Where a generated key pair was written, and its id."""

    private_path: Path
    public_path: Path
    key_id: int


def generate(private_path: Path, public_path: Path, *, overwrite: bool = False) -> KeyPair:
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


def generate_in(out_dir: Path, name: str = "release_ed25519", *, overwrite: bool = False) -> KeyPair:
    """A production pair ``out_dir/<name>.key`` + ``.pub``; refuses the development key's place."""
    private = out_dir / f"{name}.key"
    if private.resolve() == dev_private_key().resolve():
        raise ConfigError(f"{DEV_PRIVATE_KEY} is the public development key; write a production key "
                          "outside the repository (e.g. --out ~/motocoach-release-key)")
    return generate(private, out_dir / f"{name}.pub", overwrite=overwrite)


def load_private(path: Path) -> Ed25519PrivateKey:
    """Load a signing key; refuses one that group or others can read (except the development
    key, which is public anyway and is checked out with the repository's file modes)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read private key {path}: {e.strerror}; "
                          "create one with `motocoach keys generate --out DIR`") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path} is not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an ed25519 key")
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and not is_dev_key(key_id(raw_public(key.public_key()))):
        raise ConfigError(f"private key {path} is readable by other users; run `chmod 600 {path}`")
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


def render_trusted_key_header(public: Ed25519PublicKey, source: str = str(DEV_PUBLIC_KEY)) -> str:
    """C header with the raw public key and its id, for the firmware's IDENTITY reply.

    ``source`` names the public key file in the banner (use a repository-relative path).
    """
    raw = raw_public(public)
    kid = key_id(raw)
    dev = is_dev_key(kid)
    body = ",\n".join("    " + ", ".join(f"0x{b:02x}" for b in raw[i:i + 8]) for i in range(0, 32, 8))
    note = (" * DEVELOPMENT KEY: its private half is committed (public), so anyone can sign bundles\n"
            " * this firmware accepts. Production builds: `motocoach keys generate --out DIR`.\n"
            if dev else " * A production key: its private half must never be in the repository.\n")
    return (
        f"/* Generated by `motocoach keys` from {source}. Do not edit.\n"
        " * The ed25519 public key whose bundles this firmware accepts; IDENTITY reports its id.\n"
        f"{note} */\n"
        "#ifndef MOTOCOACH_TRUSTED_KEY_H\n#define MOTOCOACH_TRUSTED_KEY_H\n\n#include <stdint.h>\n\n"
        f"#define COACH_TRUSTED_KEY_ID 0x{kid:08x}u /* first 4 bytes LE of sha256(key) */\n"
        f"#define COACH_TRUSTED_KEY_IS_DEVELOPMENT {int(dev)}\n\n"
        f"static const uint8_t COACH_TRUSTED_KEY[32] = {{\n{body}}};\n\n"
        "#endif /* MOTOCOACH_TRUSTED_KEY_H */\n")


def write_trusted_key_header(public_path: Path, root: Path = REPO) -> Path:
    """Write ``trusted_key.h`` for the key in ``public_path`` under ``root``; returns its path."""
    public = load_public(public_path)
    source = public_path.name  # outside the repository: never write a machine path into C
    for base in (root, REPO):
        try:
            source = str(public_path.resolve().relative_to(base.resolve()))
            break
        except ValueError:
            continue
    out = root / TRUSTED_KEY_HEADER
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_trusted_key_header(public, source))
    return out
