"""Model-only updates against the real firmware over its pty: SIL (slots in a file) and QEMU
(rv32, slots in guest RAM).

* a bundle signed with the committed development key goes in through ``ops.update``, is
  confirmed via HELLO and by the unit's HAPTIC reply (the update model answers differently from
  the factory model), and rollback returns to the factory model and back;
* refusals: wrong board, incompatible schema, tampered bundle, model larger than a slot, a
  protocol range the unit does not speak, a bundle signed by another key than the one the unit
  trusts (the unit's real IDENTITY ``key_id``) and one not signed by the trusted key: each is
  refused before any write, with IDENTITY (and on SIL the slot file) unchanged;
* out-of-order / duplicated chunks, a wrong total size, a model larger than a slot and a hash
  mismatch are refused by the unit itself, which keeps running its model;
* SIL only: updates and rollbacks survive power cuts, and a small seeded power-cut campaign
  (the >= 100-cut one is ``bench/test_update.py``). QEMU keeps its slots in guest RAM, lost
  when QEMU exits, so persistence cannot be tested there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from motocoach import bundle as bundles
from motocoach import keys
from motocoach.audit import AuditLog
from motocoach.device import attacks, ops
from motocoach.device.powercut import expected_outputs, probe_telemetry, variant_model
from motocoach.errors import BundleError
from motocoach.protocol import codec
from motocoach.protocol import manifest as um
from motocoach.protocol.spec import MsgType, SlotState, Status
from motocoach.schema import load_schema

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "firmware" / "lib" / "coach_model"
FACTORY_BLOB = MODEL_DIR / "default_model.cmb"
FACTORY_SHA = hashlib.sha256(FACTORY_BLOB.read_bytes()).hexdigest()
QEMU_NO_PERSISTENCE = ("QEMU keeps the model slots in guest RAM, which is lost when QEMU exits: persistence "
                       "across power cuts cannot be tested there (it is tested on SIL and in test_slots_powercut.py)")


@dataclass
class Unit:
    kind: str
    target: Any
    link: Any
    slots: Path | None  #: SIL backing file; None on QEMU

    def outputs(self) -> list[int]:
        h = self.link.telemetry(probe_telemetry(), timeout=2.0)
        return [h["out0"], h["out1"], h["out2"]]

    def slot_bytes(self) -> bytes:
        return self.slots.read_bytes() if self.slots is not None and self.slots.exists() else b""


_STARTED: list = []  # every target a test started, restarts included; the fixture stops them all


def _start(kind: str, slots: Path | None):
    from motocoach.targets import start_qemu, start_sil

    target = start_sil(slots=slots) if kind == "sil" else start_qemu()
    _STARTED.append(target)
    return target


@pytest.fixture(params=["sil", "qemu"])
def unit(request, tmp_path):
    from motocoach.device.link import SerialLink

    slots = tmp_path / "slots.bin" if request.param == "sil" else None
    first = len(_STARTED)
    target = _start(request.param, slots)
    u = Unit(request.param, target, SerialLink(target.port, timeout=2.0), slots)
    yield u
    u.link.close()  # the link and target of the last power cycle, not the first ones
    mine = _STARTED[first:]
    del _STARTED[first:]
    for t in mine:
        t.stop()
    assert not [t for t in mine if t.alive], "a restarted target is still running after teardown"


@pytest.fixture(scope="module")
def alt(tmp_path_factory) -> dict[str, Any]:
    """The update model (factory weights with a shifted output bias) and what both models answer."""
    d = tmp_path_factory.mktemp("alt")
    blob, manifest = variant_model(MODEL_DIR, d)
    probe = probe_telemetry()
    out = {"blob": blob, "manifest": manifest, "sha": hashlib.sha256(blob.read_bytes()).hexdigest(),
           "out": expected_outputs(manifest, probe), "factory_out": expected_outputs(MODEL_DIR / "manifest.json", probe)}
    assert out["out"] != out["factory_out"], "the update model must be tellable from the factory model"
    return out


DEV = keys.KeyPair(keys.dev_private_key(), keys.dev_public_key(), keys.DEV_KEY_ID)


def _bundle(path: Path, model: Path, manifest: Path, boards: list[str], key: keys.KeyPair = DEV,
            protocol: tuple[int, int] | None = None) -> Path:
    bundles.create(path, private_key=keys.load_private(key.private_path), boards=boards, model=model,
                   model_manifest=manifest, protocol=protocol)
    return path


def test_signed_update_is_confirmed_by_hello_and_rollback_returns_to_the_factory_model(unit, alt, tmp_path):
    before = ops.identify(unit.link)
    assert (before.identity["active_slot"], before.model_sha256) == (0, FACTORY_SHA)
    assert before.identity["key_id"] == keys.DEV_KEY_ID  # SIL/QEMU builds trust the development key
    assert unit.outputs() == alt["factory_out"]
    path = _bundle(tmp_path / "alt.mcb", alt["blob"], alt["manifest"], [before.board])
    audit = AuditLog(tmp_path / "audit.jsonl")
    warned: list[str] = []
    r = ops.update(unit.target.port, path, trusted_key=DEV.public_path, audit=audit,
                   open_link=lambda p: unit.link, warn=warned.append)
    assert warned == [keys.DEV_KEY_WARNING]
    assert (r.after.model_sha256, r.after.model_id, r.after.active_slot) == (alt["sha"], "coach-alt", "A")
    assert r.after.identity["selftest_ok"] == 1
    assert unit.outputs() == alt["out"]  # the new weights answer, not just a new name

    r = ops.rollback(unit.target.port, audit=audit, open_link=lambda p: unit.link)
    assert "from the factory model" in r.line
    info = ops.identify(unit.link)
    assert (info.identity["active_slot"], info.model_sha256) == (0, FACTORY_SHA)
    assert info.identity["slot_a_state"] == SlotState.VALID  # kept, not booted
    assert unit.outputs() == alt["factory_out"]

    r = ops.rollback(unit.target.port, audit=audit, open_link=lambda p: unit.link)  # undo the rollback
    assert (r.after.active_slot, r.after.model_sha256) == ("A", alt["sha"])
    assert unit.outputs() == alt["out"]
    assert [(e["operation"], e["result"]) for e in audit.entries()] == [
        ("update", "ok"), ("rollback", "ok"), ("rollback", "ok")]
    assert audit.entries()[0]["warnings"] == [keys.DEV_KEY_WARNING]


def test_update_and_rollback_survive_power_cuts(unit, alt, tmp_path):
    if unit.kind == "qemu":
        pytest.skip(QEMU_NO_PERSISTENCE)
    from motocoach.device.link import SerialLink

    def power_cycle() -> ops.DeviceInfo:
        unit.link.close()
        unit.target.kill()
        unit.target = _start("sil", unit.slots)
        unit.link = SerialLink(unit.target.port, timeout=2.0)
        return ops.identify(unit.link)

    blob = alt["blob"].read_bytes()
    assert ops.send_model(unit.link, blob, _signed(unit.link, blob, "coach-alt")) == 1
    info = power_cycle()
    assert (info.identity["active_slot"], info.model_sha256) == (1, alt["sha"]) and unit.outputs() == alt["out"]
    audit = AuditLog(tmp_path / "audit.jsonl")
    ops.rollback(unit.target.port, audit=audit, open_link=lambda p: unit.link)
    info = power_cycle()
    assert (info.identity["active_slot"], info.model_sha256) == (0, FACTORY_SHA)
    assert unit.outputs() == alt["factory_out"]
    ops.rollback(unit.target.port, audit=audit, open_link=lambda p: unit.link)
    info = power_cycle()
    assert (info.identity["active_slot"], info.model_sha256) == (1, alt["sha"]) and unit.outputs() == alt["out"]


REFUSALS = ["wrong board", "incompatible schema", "tampered", "too large", "protocol range",
            "unit trusts another key", "not signed by the trusted key"]


@pytest.mark.parametrize("case", REFUSALS)
def test_host_refusals_leave_the_unit_unchanged(unit, alt, tmp_path, case):
    before = ops.identify(unit.link)
    model, manifest = variant_model(MODEL_DIR, tmp_path)
    boards, key, trusted, protocol = [before.board], DEV, DEV.public_path, None
    man = json.loads(manifest.read_text())
    if case == "wrong board":
        boards = ["esp32dev-other"]
    elif case == "incompatible schema":
        man["schema_hash"] = "ab" * 32
    elif case == "too large":
        big = os.urandom(before.identity["slot_size"] + 1)
        model.write_bytes(big)
        man["model_sha256"] = hashlib.sha256(big).hexdigest()
    elif case == "protocol range":
        protocol = (before.identity["proto_max"] + 1, before.identity["proto_max"] + 1)
    elif case == "unit trusts another key":  # technician trusts the signer, the unit does not
        key = keys.generate(tmp_path / "other.key", tmp_path / "other.pub")
        trusted = key.public_path
    elif case == "not signed by the trusted key":
        key = keys.generate(tmp_path / "other.key", tmp_path / "other.pub")
    manifest.write_text(json.dumps(man))
    path = _bundle(tmp_path / "b.mcb", model, manifest, boards, key, protocol)
    if case == "tampered":
        with zipfile.ZipFile(path) as z:
            files = {n: z.read(n) for n in z.namelist()}
        b = bytearray(files["model.cmb"]); b[200] ^= 1; files["model.cmb"] = bytes(b)
        with zipfile.ZipFile(path, "w") as z:
            for n, d in files.items():
                z.writestr(n, d)
    slot_bytes = unit.slot_bytes()
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(BundleError, match="refused|tampered|signed by key") as e:
        ops.update(unit.target.port, path, trusted_key=trusted, audit=audit, open_link=lambda p: unit.link)
    if case == "unit trusts another key":
        assert f"the unit trusts key {keys.DEV_KEY_ID:08x}" in str(e.value)
    assert ops.identify(unit.link).identity == before.identity
    assert unit.slot_bytes() == slot_bytes
    assert unit.outputs() == alt["factory_out"]
    assert [x["result"] for x in audit.entries()] == ["refused"]


def _ack(link, t, payload=b""):
    a = codec.unpack(MsgType.ACK, link.request(t, payload, timeout=3.0).payload)
    return a["status"], a["value"]


def _signed(link, blob: bytes, model_id: str = "x", **kw) -> bytes:
    """A manifest for ``blob`` signed with the development key for the unit's board."""
    return um.for_model(blob, model_id, ops.identify(link).board, attacks.dev_key(), version=kw.pop("version", 1), **kw)


def _begin(link, blob, total=None, sha=None):
    m = um.UpdateManifest.parse(_signed(link, blob))
    m = m.with_changes(model_size=len(blob) if total is None else total, sha256=sha or m.sha256)
    return _ack(link, MsgType.MODEL_BEGIN, m.sign(attacks.dev_key()))


def _chunk(link, off, data):
    return _ack(link, MsgType.MODEL_CHUNK, codec.pack(MsgType.MODEL_CHUNK, offset=off, data=data))


def _running(info: ops.DeviceInfo) -> tuple:
    """What a refusal must not change: the running model, its slot, and that slot's state.
    (The inactive slot shows WRITING during a transfer and INVALID after an abandoned one.)"""
    i = info.identity
    active_state = i["slot_a_state"] if i["active_slot"] == 1 else (i["slot_b_state"] if i["active_slot"] == 2 else 0)
    return i["model_id"], i["model_sha256"], i["active_slot"], active_state, i["selftest_ok"]


def test_unit_refuses_bad_chunks_sizes_and_hashes_and_keeps_its_model(unit, alt):
    link = unit.link
    blob = alt["blob"].read_bytes()
    factory = FACTORY_BLOB.read_bytes()
    assert ops.send_model(link, factory, _signed(link, factory, "default")) == 1  # run from a slot: more to break
    before = ops.identify(link)
    unchanged = _running(before)

    assert _begin(link, blob) == (Status.OK, 0)
    assert _chunk(link, 0, blob[:200]) == (Status.OK, 200)
    assert _chunk(link, 0, blob[:200]) == (Status.BAD_OFFSET, 200)       # duplicated
    assert _chunk(link, 400, blob[400:600]) == (Status.BAD_OFFSET, 200)  # out of order
    assert _ack(link, MsgType.MODEL_COMMIT)[0] == Status.BAD_LENGTH      # incomplete
    assert _running(ops.identify(link)) == unchanged

    assert _begin(link, blob, total=len(blob) - 10)[0] == Status.OK      # wrong total size
    off = 0
    while off < len(blob) - 10:
        n = min(200, len(blob) - 10 - off)
        assert _chunk(link, off, blob[off:off + n])[0] == Status.OK
        off += n
    assert _chunk(link, off, blob[off:])[0] == Status.BAD_LENGTH
    assert _ack(link, MsgType.MODEL_COMMIT)[0] == Status.HASH_MISMATCH
    assert _running(ops.identify(link)) == unchanged

    ident = ops.identify(link).identity
    assert _begin(link, b"\0" * (ident["slot_size"] + 1))[0] == Status.TOO_LARGE
    assert ops.identify(link).identity == ident  # refused before anything was touched

    assert _begin(link, blob, sha=hashlib.sha256(b"other").digest())[0] == Status.OK  # corrupted in transit
    for off in range(0, len(blob), 200):
        assert _chunk(link, off, blob[off:off + 200])[0] == Status.OK
    assert _ack(link, MsgType.MODEL_COMMIT)[0] == Status.HASH_MISMATCH
    assert _running(ops.identify(link)) == unchanged
    assert unit.outputs() == alt["factory_out"]


def test_power_cuts_during_model_updates_small_campaign(tmp_path):
    """60 seeded SIGKILL cuts on SIL (the >= 100-cut campaign is `make bench`, bench/test_update.py)."""
    from motocoach.device.powercut import sil_campaign

    res = sil_campaign(tmp_path, MODEL_DIR, cuts=60, seed=7)
    assert res.bricked == 0, res.problems
    assert res.valid_boots == 61 and res.powercuts == 60
    assert res.boots_new > 0 and res.boots_old > 0, res  # cuts landed on both sides of the commit
    assert res.attacks_sent > 0 and res.attacks_accepted == 0 and res.unsigned_active == 0, res


def test_cli_verbs_on_sil_warn_about_the_development_key(alt, tmp_path, capsys, monkeypatch):
    """`device info`, `device update`, `device rollback`, `device logs` as a technician types them."""
    from motocoach.cli import main
    from motocoach.targets import start_sil

    monkeypatch.delenv(keys.TRUSTED_KEY_ENV, raising=False)
    log = str(tmp_path / "audit.jsonl")
    with start_sil(slots=tmp_path / "slots.bin") as target:
        assert main(["device", "info", "--port", target.port]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "PUBLIC DEVELOPMENT KEY" in out and "factory model" in out
        from motocoach.device.link import SerialLink

        with SerialLink(target.port, timeout=2.0) as link:
            board, uid = ops.identify(link).board, ops.identify(link).unit_id
        assert re.search(f"unit id .* {uid} ", out) and re.search(r"model version .* 0 \(lowest accepted: 0\)", out)
        path = tmp_path / "alt.mcb"
        assert main(["bundle", "create", "--out", str(path), "--board", board, "--model", str(alt["blob"]),
                     "--model-manifest", str(alt["manifest"]), "--model-version", "4"]) == 0
        assert "WARNING" in capsys.readouterr().err
        assert main(["device", "update", "--port", target.port, "--bundle", str(path), "--audit-log", log]) == 0
        out, err = capsys.readouterr()
        assert "anyone can sign updates for it" in " ".join(err.split())
        assert "updated:" in out and "coach-alt" in out and "slot A" in out
        assert main(["device", "rollback", "--port", target.port, "--audit-log", log]) == 0
        assert "from the factory model" in " ".join(capsys.readouterr().out.split())
        assert main(["device", "logs", "--port", target.port, "--audit-log", log]) == 0
        out = capsys.readouterr().out
        assert "2 entries" in out and "model rolled back" in out
        # --json: one object a script can read; the schema hash in the one order every tool shows
        assert main(["device", "info", "--port", target.port, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["board"] == board and info["development_key"] is True
        assert info["schema_hash"] == load_schema().short_hash == load_schema().hash[:8]
        assert info["status"]["frames_ok"] >= 0 and info["slots"]["size"] > 0
        assert main(["device", "logs", "--port", target.port, "--audit-log", log, "--json"]) == 0
        logs = json.loads(capsys.readouterr().out)
        assert [e["result"] for e in logs["entries"]] == ["ok", "ok"] and isinstance(logs["unit_log"], list)
        entries = AuditLog(tmp_path / "audit.jsonl").entries()
        assert [e["device"]["unit_id"] for e in entries] == [uid, uid]  # the unit's own id, not a label
        assert entries[0]["after"]["model_version"] == 4 and entries[0]["after"]["version_floor"] == 4
