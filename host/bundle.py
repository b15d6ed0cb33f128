"""Signed update bundles: one zip file with a manifest, payloads and an ed25519 signature.

Layout of a bundle (a zip, stored uncompressed)::

    manifest.json     canonical JSON (sorted keys, no spaces): kind, boards, protocol range,
                      schema hash, model info + model manifest, firmware images, the sha256 of
                      every payload, creation info
    signature.json    {"algorithm": "ed25519", "key_id": "xxxxxxxx", "signature": hex}
    model.cmb         the model blob (kind model | both)
    firmware/*.bin    firmware images with their flash offsets in the manifest (kind firmware | both)

The signature covers the exact bytes of manifest.json, and the manifest holds the sha256 of
every payload, so changing any byte of any file is detected. The signature is checked with the
key the *host* trusts (never a key carried in the bundle), and the unit reports which key its
firmware trusts (IDENTITY ``key_id``), so a bundle signed with another key is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from motocoach import __version__, keys
from motocoach.errors import BundleError
from motocoach.protocol import manifest as unit_manifest
from motocoach.protocol import spec
from motocoach.schema import hash32_hex

FORMAT = "motocoach-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
MODEL_FILE = "model.cmb"
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
KINDS = ("model", "firmware", "both")


def canonical_json(obj: Any) -> bytes:
    """The one byte encoding of a manifest that is signed.

    >>> canonical_json({"b": 1, "a": [1, "x"]})
    b'{"a":[1,"x"],"b":1}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A bundle read from disk. Payload hashes are already checked; the signature is checked by
    :func:`verify` against a trusted key."""

    path: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    signature: bytes
    signer_key_id: int
    payloads: dict[str, bytes]
    sha256: str  #: sha256 of the whole bundle file (what the audit log records)

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def boards(self) -> list[str]:
        return list(self.manifest["boards"])

    @property
    def protocol(self) -> tuple[int, int]:
        p = self.manifest["protocol"]
        return int(p["min"]), int(p["max"])

    @property
    def model(self) -> dict[str, Any] | None:
        return self.manifest.get("model")

    @property
    def model_blob(self) -> bytes | None:
        m = self.model
        return self.payloads[m["file"]] if m else None

    def unit_manifest(self, board: str) -> bytes | None:
        """The signed update manifest for ``board`` that MODEL_BEGIN carries (None if absent)."""
        m = self.model
        name = (m or {}).get("unit_manifests", {}).get(board)
        return self.payloads.get(name) if name else None

    @property
    def firmware(self) -> dict[str, Any] | None:
        return self.manifest.get("firmware")

    def describe(self) -> str:
        """One line: what the bundle contains."""
        parts = []
        if self.model:
            parts.append(f"model {self.model['model_id']} ({self.model['sha256'][:12]})")
        if self.firmware:
            parts.append(f"firmware {self.firmware['version']}")
        return f"{' + '.join(parts)} for {', '.join(self.boards)}, protocol {self.protocol[0]}..{self.protocol[1]}"


def _model_section(model: Path, model_manifest: Path | None) -> tuple[dict[str, Any], bytes]:
    blob = model.read_bytes()
    mpath = model_manifest or model.with_name("manifest.json")
    try:
        mman = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"cannot read the model manifest {mpath} ({e}); pass --model-manifest") from None
    digest = sha256_hex(blob)
    if mman.get("model_sha256") != digest:
        raise BundleError(f"{model} does not match {mpath}: blob sha256 {digest[:12]}..., manifest says "
                          f"{str(mman.get('model_sha256'))[:12]}...; regenerate with `make models`")
    for key in ("model_id", "schema_hash", "schema_hash32", "engine_version"):
        if key not in mman:
            raise BundleError(f"model manifest {mpath} has no `{key}`")
    section = {"file": MODEL_FILE, "sha256": digest, "size": len(blob), "model_id": mman["model_id"],
               "engine_version": int(mman["engine_version"]), "manifest": mman}
    return section, blob


def create(out: Path, *, private_key: Ed25519PrivateKey, boards: list[str], model: Path | None = None,
           model_manifest: Path | None = None, images: list[tuple[int, Path]] | None = None,
           firmware_version: str | None = None, chip: str | None = None,
           protocol: tuple[int, int] | None = None, schema_hash: str | None = None,
           model_version: int = 1, allow_downgrade: bool = False) -> Bundle:
    """Write a signed bundle to ``out`` and return it (read back and verified).

    Firmware images are checked like ``esptool image-info`` (magic, chip id, checksum) for ``chip``,
    which by default comes from the board files (:func:`firmware_chip`). A model bundle also
    carries, per board, the signed update manifest the unit itself checks
    (``motocoach.protocol.manifest``): ``model_version`` is its anti-rollback version, and
    ``allow_downgrade`` signs permission to go below the unit's version floor."""
    images = images or []
    if not boards:
        raise BundleError("name at least one board id (--board)")
    if model is None and not images:
        raise BundleError("a bundle needs a model (--model) and/or firmware images (--image)")
    if images and not firmware_version:
        raise BundleError("firmware images need --firmware-version (e.g. 1.2.0)")
    payloads: dict[str, bytes] = {}
    manifest: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "kind": "both" if (model and images) else ("model" if model else "firmware"),
        "boards": sorted(set(boards)), "model": None, "firmware": None,
        "created": {"utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "tool": f"motocoach {__version__}"},
    }
    pmin, pmax = protocol or (spec.PROTOCOL_MIN, spec.PROTOCOL_MAX)
    if model is not None:
        section, blob = _model_section(model, model_manifest)
        manifest["model"] = section
        payloads[MODEL_FILE] = blob
        mp = section["manifest"].get("protocol") or {}
        if protocol is None and mp:
            pmin, pmax = int(mp["min"]), int(mp["max"])
        schema_hash = schema_hash or section["manifest"]["schema_hash"]
        section["version"] = int(model_version)
        section["unit_manifests"] = {}
        for board in sorted(set(boards)):
            name = f"model/{board}.manifest"
            payloads[name] = unit_manifest.for_model(
                blob, section["model_id"], board, private_key, version=int(model_version),
                engine_version=section["engine_version"],
                schema_hash32=int.from_bytes(bytes.fromhex(schema_hash)[:4], "little"), downgrade=allow_downgrade)
            section["unit_manifests"][board] = name
    if images:
        from motocoach import esp_image

        chip = chip or firmware_chip(boards)
        try:
            datas = {offset: p.read_bytes() for offset, p in images}
        except OSError as e:
            raise BundleError(f"cannot read a firmware image ({e})") from None
        esp_image.check_images(sorted(datas.items()), chip)
        entries = []
        for offset, p in sorted(images):
            data = datas[offset]
            name = f"firmware/{offset:#08x}_{p.name}"
            payloads[name] = data
            entries.append({"file": name, "offset": offset, "sha256": sha256_hex(data), "size": len(data)})
        manifest["firmware"] = {"version": firmware_version, "chip": chip, "images": entries}
    if schema_hash is None:
        from motocoach.schema import load_schema

        schema_hash = load_schema().hash
    if pmin > pmax:
        raise BundleError(f"protocol range {pmin}..{pmax} is empty")
    manifest["protocol"] = {"min": pmin, "max": pmax}
    manifest["schema_hash"] = schema_hash
    manifest["schema_hash32"] = int.from_bytes(bytes.fromhex(schema_hash)[:4], "little")
    manifest["payloads"] = {name: sha256_hex(data) for name, data in sorted(payloads.items())}
    mbytes = canonical_json(manifest)
    pub_raw = keys.raw_public(private_key.public_key())
    sig = {"algorithm": "ed25519", "key_id": f"{keys.key_id(pub_raw):08x}",
           "signature": private_key.sign(mbytes).hex()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(MANIFEST, mbytes)
        z.writestr(SIGNATURE, canonical_json(sig))
        for name, data in sorted(payloads.items()):
            z.writestr(name, data)
    tmp.replace(out)
    b = read(out)
    verify(b, private_key.public_key())
    return b


def check_board_ids(ids: list[str], known: list[str] | None = None) -> None:
    """Refuse board ids that have no board file in ``boards/`` (typos would make a bundle no unit accepts)."""
    if known is None:
        from motocoach.boards import load_boards

        known = list(load_boards())
    unknown = [b for b in ids if b not in known]
    if unknown:
        raise BundleError(f"unknown board {', '.join(unknown)}; known boards: {', '.join(known)} "
                          "(`motocoach boards list`)")


def firmware_chip(board_ids: list[str]) -> str:
    """The esptool chip name of the boards' MCU (all boards of a firmware bundle share one chip)."""
    from motocoach.boards import load_boards

    defs = load_boards()
    check_board_ids(board_ids, list(defs))
    chips = sorted({defs[b].mcu for b in board_ids})
    if len(chips) != 1:
        raise BundleError(f"boards {', '.join(board_ids)} have different chips ({', '.join(chips)}); "
                          "one firmware image cannot run on all of them: make one bundle per chip")
    return chips[0]


def read(path: Path) -> Bundle:
    """Open a bundle and check its structure and every payload hash (not the signature)."""
    try:
        raw = path.read_bytes()
        z = zipfile.ZipFile(io.BytesIO(raw))
        infos = z.infolist()
    except (OSError, zipfile.BadZipFile) as e:
        raise BundleError(f"{path} is not a readable bundle ({e})") from None
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise BundleError(f"{path}: duplicate file names inside the bundle (tampered?)")
    for i in infos:
        if i.file_size > MAX_PAYLOAD_BYTES:
            raise BundleError(f"{path}: {i.filename} is larger than {MAX_PAYLOAD_BYTES} bytes")
    for required in (MANIFEST, SIGNATURE):
        if required not in names:
            raise BundleError(f"{path}: missing {required}; not a signed motocoach bundle")
    try:
        mbytes, sbytes = z.read(MANIFEST), z.read(SIGNATURE)
        manifest, sig = json.loads(mbytes), json.loads(sbytes)
    except (ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as e:
        raise BundleError(f"{path}: unreadable manifest or signature ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not a motocoach bundle")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {manifest.get('format_version')} is not supported "
                          f"(this tool reads {FORMAT_VERSION}); update motocoach")
    if canonical_json(manifest) != mbytes:
        raise BundleError(f"{path}: manifest.json is not in canonical form (tampered?)")
    try:
        signature = bytes.fromhex(sig["signature"])
        signer = int(sig["key_id"], 16)
        expected = dict(manifest["payloads"])
        _ = (manifest["kind"], manifest["boards"], manifest["protocol"]["min"], manifest["protocol"]["max"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{path}: incomplete manifest or signature ({e!r})") from None
    if manifest["kind"] not in KINDS:
        raise BundleError(f"{path}: unknown bundle kind {manifest['kind']!r}")
    extra = set(names) - {MANIFEST, SIGNATURE} - set(expected)
    if extra:
        raise BundleError(f"{path}: files not covered by the signature: {', '.join(sorted(extra))}")
    payloads = {}
    for name, digest in expected.items():
        if name not in names:
            raise BundleError(f"{path}: payload {name} is missing")
        try:
            data = z.read(name)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as e:
            # zipfile checks each member's CRC-32 as it reads; a damaged copy fails here
            raise BundleError(f"{path}: payload {name} is damaged ({e}); copy the bundle again") from None
        if sha256_hex(data) != digest:
            raise BundleError(f"{path}: payload {name} does not match its sha256 in the manifest (tampered)")
        payloads[name] = data
    return Bundle(path, manifest, mbytes, signature, signer, payloads, sha256_hex(raw))


def verify(bundle: Bundle, trusted: Ed25519PublicKey) -> None:
    """Raise :class:`BundleError` unless ``trusted`` signed this exact manifest."""
    tid = keys.key_id(keys.raw_public(trusted))
    if bundle.signer_key_id != tid:
        raise BundleError(f"bundle is signed by key {bundle.signer_key_id:08x}, but the trusted key is "
                          f"{tid:08x}; get a bundle signed with the unit's key or pass the right --trusted-key")
    if not keys.verify(trusted, bundle.signature, bundle.manifest_bytes):
        raise BundleError("bundle signature is invalid: the manifest was changed after signing (tampered)")


def _text(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).split(b"\0", 1)[0].decode("ascii", "replace")
    return str(v)


def compatibility_problems(bundle: Bundle, identity: dict[str, Any]) -> list[str]:
    """Reasons this bundle must not go onto the unit that sent ``identity`` (empty = fits).

    ``identity`` is the unit's IDENTITY reply (fields as in the protocol spec).
    """
    problems = []
    board = _text(identity["board"])
    if identity["key_id"] != bundle.signer_key_id:
        problems.append(f"the unit trusts key {identity['key_id']:08x}, the bundle is signed by "
                        f"{bundle.signer_key_id:08x}")
    if board not in bundle.boards:
        problems.append(f"the bundle is for board {', '.join(bundle.boards)}, the unit is {board}")
    bmin, bmax = bundle.protocol
    if bundle.model and not bundle.firmware:
        dmin, dmax = identity["proto_min"], identity["proto_max"]
        if max(bmin, dmin) > min(bmax, dmax):
            problems.append(f"the model needs protocol {bmin}..{bmax}, the unit speaks {dmin}..{dmax}")
        if bundle.manifest["schema_hash32"] != identity["schema_hash"]:
            problems.append(f"the model was trained on feature schema {hash32_hex(bundle.manifest['schema_hash32'])}, "
                            f"the unit's firmware reads schema {hash32_hex(identity['schema_hash'])}: update the firmware")
        if bundle.model["engine_version"] != identity["engine_version"]:
            problems.append(f"the model needs engine v{bundle.model['engine_version']}, "
                            f"the unit runs v{identity['engine_version']}: update the firmware")
        if bundle.model["size"] > identity["slot_size"]:
            problems.append(f"the model has {bundle.model['size']} bytes, a slot on the unit holds "
                            f"{identity['slot_size']}")
    if bundle.firmware and max(bmin, spec.PROTOCOL_MIN) > min(bmax, spec.PROTOCOL_MAX):
        problems.append(f"the new firmware speaks protocol {bmin}..{bmax}, this tool speaks "
                        f"{spec.PROTOCOL_MIN}..{spec.PROTOCOL_MAX}: update motocoach first")
    if bundle.firmware:
        problems += _firmware_problems(bundle, board)
        from motocoach.schema import load_schema

        if bundle.manifest["schema_hash32"] != load_schema().hash32:
            problems.append(f"the new firmware reads feature schema {hash32_hex(bundle.manifest['schema_hash32'])}, "
                            f"this tool sends {load_schema().short_hash}: update motocoach first")
    return problems


def _firmware_problems(bundle: Bundle, board: str) -> list[str]:
    """The firmware's chip against the unit's board file, and every image checked like esptool image-info."""
    from motocoach import esp_image
    from motocoach.boards import load_boards

    chip = bundle.firmware.get("chip")
    defs = load_boards()
    if board in defs and chip != defs[board].mcu:
        return [f"the firmware is built for {chip}, the unit's board {board} is an {defs[board].mcu}"]
    try:
        esp_image.check_images([(int(i["offset"]), bundle.payloads[i["file"]]) for i in bundle.firmware["images"]],
                               str(chip))
    except (BundleError, KeyError, TypeError, ValueError) as e:
        return [f"firmware image check failed: {e}"]
    return []
