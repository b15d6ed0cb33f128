"""Signed bundles: create, verify, and every way a bundle can be wrong or tampered with."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from motocoach import bundle as bundles
from motocoach import esp_image
from motocoach import keys
from motocoach.cli import main
from motocoach.errors import BundleError, ConfigError
from motocoach.schema import load_schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_models import make_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def keypair(tmp_path: Path) -> keys.KeyPair:
    return keys.generate(tmp_path / "k" / "dev.key", tmp_path / "k" / "dev.pub")


@pytest.fixture
def model_bundle(tmp_path: Path, keypair) -> bundles.Bundle:
    return bundles.create(tmp_path / "b.mcb", private_key=keys.load_private(keypair.private_path),
                          boards=["esp32dev", "sil"], model=make_model(tmp_path))


def test_keys_generate_private_0600_and_refuses_to_overwrite(tmp_path: Path, keypair):
    assert stat.S_IMODE(keypair.private_path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="exists"):
        keys.generate(keypair.private_path, keypair.public_path)
    pub = keys.load_public(keypair.public_path)
    assert keys.key_id(keys.raw_public(pub)) == keypair.key_id


def test_a_world_readable_private_key_is_refused(keypair):
    keypair.private_path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        keys.load_private(keypair.private_path)


def test_committed_trusted_key_header_is_the_development_key():
    pub = keys.load_public(REPO / keys.DEV_PUBLIC_KEY)
    header = (REPO / keys.TRUSTED_KEY_HEADER).read_text()
    assert header == keys.render_trusted_key_header(pub), "run `motocoach keys header`"
    assert "DEVELOPMENT KEY" in header and "#define COACH_TRUSTED_KEY_IS_DEVELOPMENT 1" in header


def test_the_committed_development_pair_matches_its_published_id():
    pub = keys.load_public(keys.dev_public_key())
    priv = keys.load_private(keys.dev_private_key())
    assert keys.key_id(keys.raw_public(pub)) == keys.DEV_KEY_ID
    assert keys.raw_public(priv.public_key()) == keys.raw_public(pub)


def test_production_keys_are_git_ignored_but_the_development_pair_is_not():
    import subprocess

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0
    for path in ("firmware/keys/release_ed25519.key", "keys/release.key", "release.pem", "x/y/z.key"):
        assert ignored(path), path
    assert not ignored(str(keys.DEV_PRIVATE_KEY)) and not ignored(str(keys.DEV_PUBLIC_KEY))


def test_development_key_may_be_world_readable_a_production_key_may_not(tmp_path, keypair):
    import shutil

    dev = tmp_path / "dev.key"
    shutil.copy(keys.dev_private_key(), dev)
    dev.chmod(0o644)  # how git checks it out
    assert keys.key_id(keys.raw_public(keys.load_private(dev).public_key())) == keys.DEV_KEY_ID
    keypair.private_path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        keys.load_private(keypair.private_path)


def test_generate_in_refuses_the_development_key_place_and_existing_keys(tmp_path):
    with pytest.raises(ConfigError, match="public development key"):
        keys.generate_in(keys.dev_private_key().parent, "dev_ed25519", overwrite=True)
    kp = keys.generate_in(tmp_path / "rel")
    assert kp.private_path == tmp_path / "rel" / "release_ed25519.key" and not keys.is_dev_key(kp.key_id)
    with pytest.raises(ConfigError, match="exists"):
        keys.generate_in(tmp_path / "rel")


def test_model_bundle_round_trip(model_bundle, keypair):
    b = bundles.read(model_bundle.path)
    bundles.verify(b, keys.load_public(keypair.public_path))
    assert b.kind == "model" and b.boards == ["esp32dev", "sil"] and b.protocol == (2, 2)
    assert b.manifest["schema_hash32"] == load_schema().hash32
    assert hashlib.sha256(b.model_blob).hexdigest() == b.model["sha256"]
    assert set(b.manifest["payloads"]) == {"model.cmb", "model/esp32dev.manifest", "model/sil.manifest"}
    assert b.manifest["payloads"]["model.cmb"] == b.model["sha256"]
    # the unit's own signed manifest, one per board: same blob, signed by the bundle's key
    from motocoach.protocol import manifest as um
    for board in b.boards:
        raw = b.unit_manifest(board)
        m = um.UpdateManifest.parse(raw)
        assert m.board == board and m.sha256.hex() == b.model["sha256"] and m.model_version == 1
        assert um.verify(raw, keys.raw_public(keys.load_public(keypair.public_path)))


def test_wrong_key_is_refused(model_bundle, tmp_path):
    other = keys.generate(tmp_path / "o.key", tmp_path / "o.pub")
    with pytest.raises(BundleError, match="signed by key"):
        bundles.verify(model_bundle, keys.load_public(other.public_path))


def _rewrite(src: Path, dst: Path, change) -> Path:
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files = change(files) or files
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def test_tampered_payload_is_refused(model_bundle, tmp_path):
    def flip(files):
        blob = bytearray(files["model.cmb"]); blob[100] ^= 1; files["model.cmb"] = bytes(blob)
    bad = _rewrite(model_bundle.path, tmp_path / "t.mcb", flip)
    with pytest.raises(BundleError, match="tampered"):
        bundles.read(bad)


def test_tampered_manifest_is_refused_by_the_signature(model_bundle, tmp_path, keypair):
    def widen(files):
        m = json.loads(files["manifest.json"]); m["boards"].append("other-board")
        files["manifest.json"] = bundles.canonical_json(m)
    bad = bundles.read(_rewrite(model_bundle.path, tmp_path / "t.mcb", widen))
    with pytest.raises(BundleError, match="signature is invalid"):
        bundles.verify(bad, keys.load_public(keypair.public_path))


def test_resigned_by_an_attacker_key_is_refused(model_bundle, tmp_path, keypair):
    evil = Ed25519PrivateKey.generate()

    def resign(files):
        sig = json.loads(files["signature.json"])
        sig["signature"] = evil.sign(files["manifest.json"]).hex()
        files["signature.json"] = bundles.canonical_json(sig)  # keeps the trusted key id: still refused
    bad = bundles.read(_rewrite(model_bundle.path, tmp_path / "t.mcb", resign))
    with pytest.raises(BundleError, match="signature is invalid"):
        bundles.verify(bad, keys.load_public(keypair.public_path))


@pytest.mark.parametrize("change, match", [
    (lambda f: f.update({"extra.bin": b"x"}), "not covered by the signature"),
    (lambda f: f.pop("model.cmb"), "missing"),
    (lambda f: f.pop("signature.json"), "missing signature.json"),
    (lambda f: f.update({"manifest.json": b"{not json"}), "unreadable"),
    (lambda f: f.update({"manifest.json": json.dumps(json.loads(f["manifest.json"]), indent=1).encode()}),
     "canonical"),
])
def test_malformed_bundles_are_refused(model_bundle, tmp_path, change, match):
    with pytest.raises(BundleError, match=match):
        bundles.read(_rewrite(model_bundle.path, tmp_path / "t.mcb", lambda f: (change(f), None)[1]))


@pytest.mark.parametrize("data", [b"", b"garbage", b"PK\x03\x04truncated"])
def test_garbage_files_are_refused(tmp_path, data):
    p = tmp_path / "g.mcb"
    p.write_bytes(data)
    with pytest.raises(BundleError):
        bundles.read(p)


def test_model_that_does_not_match_its_manifest_is_refused_at_create(tmp_path, keypair):
    m = make_model(tmp_path)
    m.write_bytes(b"different")
    with pytest.raises(BundleError, match="does not match"):
        bundles.create(tmp_path / "b.mcb", private_key=keys.load_private(keypair.private_path),
                       boards=["sil"], model=m)


def test_firmware_bundle_records_images_and_offsets(tmp_path, keypair):
    (tmp_path / "app.bin").write_bytes(esp_image.make_test_image("esp32", size=500))
    (tmp_path / "boot.bin").write_bytes(esp_image.make_test_image("esp32", size=100))
    b = bundles.create(tmp_path / "fw.mcb", private_key=keys.load_private(keypair.private_path),
                       boards=["esp32dev"], images=[(0x10000, tmp_path / "app.bin"), (0x1000, tmp_path / "boot.bin")],
                       firmware_version="1.2.0")
    assert b.kind == "firmware" and b.firmware["chip"] == "esp32"  # from boards/esp32dev.toml
    assert [i["offset"] for i in b.firmware["images"]] == [0x1000, 0x10000]
    with pytest.raises(BundleError, match="firmware-version"):
        bundles.create(tmp_path / "x.mcb", private_key=keys.load_private(keypair.private_path),
                       boards=["esp32dev"], images=[(0x10000, tmp_path / "app.bin")])


def test_cli_keys_bundle_create_and_verify(tmp_path, capsys):
    assert main(["keys", "generate", "--out", str(tmp_path / "rel"), "--no-header"]) == 0
    k, p = tmp_path / "rel" / "release_ed25519.key", tmp_path / "rel" / "release_ed25519.pub"
    assert stat.S_IMODE(k.stat().st_mode) == 0o600
    m = make_model(tmp_path)
    out = tmp_path / "m.mcb"
    assert main(["bundle", "create", "--out", str(out), "--board", "esp32dev", "--model", str(m), "--key", str(k)]) == 0
    assert "development key" not in capsys.readouterr().err
    assert main(["bundle", "verify", str(out), "--trusted-key", str(p)]) == 0
    assert "OK: model test-model" in capsys.readouterr().out
    assert main(["bundle", "verify", str(out), "--trusted-key", str(keys.dev_public_key())]) == 2
    assert "signed by key" in capsys.readouterr().err


def test_cli_signing_with_the_development_key_warns_loudly(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(keys.TRUSTED_KEY_ENV, raising=False)
    out = tmp_path / "dev.mcb"
    assert main(["bundle", "create", "--out", str(out), "--board", "esp32dev", "--model", str(make_model(tmp_path))]) == 0
    assert "WARNING" in capsys.readouterr().err  # no --key: the development key signed it
    assert bundles.read(out).signer_key_id == keys.DEV_KEY_ID
    assert main(["bundle", "verify", str(out)]) == 0  # default trusted key: the development key
    assert "anyone can make such bundles" in " ".join(capsys.readouterr().err.split())


def test_cli_keys_generate_and_header_write_the_firmware_header(tmp_path, capsys):
    root = tmp_path / "repo"
    assert main(["keys", "generate", "--out", str(tmp_path / "rel"), "--root", str(root)]) == 0
    kp_pub = tmp_path / "rel" / "release_ed25519.pub"
    kid = keys.key_id(keys.raw_public(keys.load_public(kp_pub)))
    h = (root / keys.TRUSTED_KEY_HEADER).read_text()
    assert f"#define COACH_TRUSTED_KEY_ID 0x{kid:08x}u" in h and "IS_DEVELOPMENT 0" in h
    assert str(tmp_path) not in h  # no machine paths in generated C
    assert main(["keys", "header", "--root", str(root)]) == 0  # back to the development key
    assert (root / keys.TRUSTED_KEY_HEADER).read_text() == (REPO / keys.TRUSTED_KEY_HEADER).read_text()


def test_bundle_verify_of_a_bad_crc_zip_exits_2_without_a_traceback(tmp_path, model_bundle, keypair, capsys):
    raw = bytearray(model_bundle.path.read_bytes())
    blob = model_bundle.model_blob
    at = raw.find(blob)
    raw[at + 10] ^= 0x01  # stored member: its CRC-32 no longer matches
    bad = tmp_path / "bad-crc.mcb"
    bad.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="damaged"):
        bundles.read(bad)
    assert main(["bundle", "verify", str(bad), "--trusted-key", str(keypair.public_path)]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err
