"""``device update`` / ``rollback`` / ``logs`` against a fake unit: every refusal happens before
any write, successes are confirmed via HELLO and logged. (The same flows run against the SIL
firmware in test_update_sil.py; the slot logic itself is tested in C in test_slots*.py.)"""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from motocoach import bundle as bundles
from motocoach import esp_image
from motocoach import keys
from motocoach.audit import AuditLog
from motocoach.device import ops
from motocoach.errors import BundleError, DeviceError, ToolError
from motocoach.protocol import codec, spec
from motocoach.protocol.spec import MsgType, Status
from motocoach.schema import load_schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_models  # noqa: E402


class FakeUnit:
    """Answers the update messages like the firmware does (slot logic simplified)."""

    def __init__(self, key_id: int, board: str = "sil", schema32: int | None = None, slot_size: int = 30000):
        self.key_id, self.board, self.slot_size = key_id, board, slot_size
        self.schema32 = load_schema().hash32 if schema32 is None else schema32
        self.model = (b"factory", "factory")
        self.slots: dict[int, tuple[bytes, str] | None] = {1: None, 2: None}
        self.active = 0
        self.writes: list[MsgType] = []
        self.pending: dict | None = None
        self.closed = 0
        self.trial = False
        self.log = ["boot", "self-test passed"]

    def close(self) -> None:
        self.closed += 1

    def _ack(self, req, st=0, value=0):
        return codec.Frame(1, MsgType.ACK, 0, codec.pack(MsgType.ACK, request_type=req, status=st, value=value))

    def request(self, t, payload=b"", timeout=None):
        if t == MsgType.HELLO:
            blob, mid = self.model
            return codec.Frame(1, MsgType.IDENTITY, 0, codec.pack(
                MsgType.IDENTITY, fw_major=0, fw_minor=2, fw_patch=0, proto_version=2, proto_min=2, proto_max=2,
                board=self.board, model_id=mid, model_sha256=hashlib.sha256(blob).digest(),
                schema_hash=self.schema32, engine_version=1, active_slot=self.active,
                slot_a_state=2 if self.active == 1 else (1 if self.slots[1] else 0),
                slot_b_state=2 if self.active == 2 else (1 if self.slots[2] else 0),
                selftest_ok=1, slot_size=self.slot_size, key_id=self.key_id, unit_id=bytes.fromhex("02aabbccddee0000"),
                model_version=0, version_floor=0, trial=int(self.trial)))
        if t == MsgType.LOG_REQ:
            line = self.log.pop(0) if self.log else ""
            return codec.Frame(1, MsgType.LOG, 0, codec.pack(MsgType.LOG, level=1, flags=int(bool(self.log)),
                                                              text=line))
        self.writes.append(t)
        if t == MsgType.MODEL_BEGIN:
            f = codec.unpack(t, payload)
            if f["key_id"] != self.key_id:
                return self._ack(t, Status.UNTRUSTED_KEY)
            if f["model_size"] > self.slot_size:
                return self._ack(t, Status.TOO_LARGE)
            self.pending = {"total": f["model_size"], "sha": f["sha256"], "id": codec.text(f["model_id"]), "data": b""}
            return self._ack(t)
        if t == MsgType.MODEL_CONFIRM:
            ok, self.trial = self.trial, False
            return self._ack(t, 0 if ok else Status.BAD_STATE)
        if t == MsgType.MODEL_CHUNK:
            f = codec.unpack(t, payload)
            if f["offset"] != len(self.pending["data"]):
                return self._ack(t, Status.BAD_OFFSET, len(self.pending["data"]))
            self.pending["data"] += f["data"]
            return self._ack(t, 0, len(self.pending["data"]))
        if t == MsgType.MODEL_COMMIT:
            p, self.pending = self.pending, None
            if hashlib.sha256(p["data"]).digest() != p["sha"]:
                return self._ack(t, Status.HASH_MISMATCH)
            target = 2 if self.active == 1 else 1
            self.slots[target] = (p["data"], p["id"])
            self.active, self.model = target, self.slots[target]
            self.trial = True
            return self._ack(t, 0, target)
        if t == MsgType.MODEL_ROLLBACK:  # the firmware's rules, without the retire/undo detail
            if self.active == 0:
                return self._ack(t, Status.NO_VALID_SLOT)
            other = 2 if self.active == 1 else 1
            if self.slots[other]:
                self.active, self.model = other, self.slots[other]
            else:
                self.active, self.model = 0, (b"factory", "factory")
            return self._ack(t, 0, self.active)
        if t == MsgType.MODEL_ABORT:
            self.pending = None
            return self._ack(t)
        raise AssertionError(t)


def make_model(d: Path, size: int = 3000, schema_hash: str | None = None) -> Path:
    return fake_models.make_model(d, size, schema_hash, model_id="coach-v2")


@pytest.fixture
def kp(tmp_path):
    return keys.generate(tmp_path / "k.key", tmp_path / "k.pub")


def _bundle(tmp_path, kp, name="b.mcb", boards=("sil",), **kw) -> Path:
    kw.setdefault("model", make_model(tmp_path))
    bundles.create(tmp_path / name, private_key=keys.load_private(kp.private_path), boards=list(boards), **kw)
    return tmp_path / name


def _update(unit, path, kp, tmp_path, **kw):
    return ops.update("fake", path, trusted_key=kp.public_path, audit=AuditLog(tmp_path / "audit.jsonl"),
                      open_link=lambda port: unit, **kw)


def test_model_update_streams_commits_confirms_and_logs(tmp_path, kp):
    unit = FakeUnit(kp.key_id)
    path = _bundle(tmp_path, kp)
    seen = []
    r = _update(unit, path, kp, tmp_path, progress=lambda s, d, t: seen.append((d, t)))
    b = bundles.read(path)
    assert r.result == "ok" and "updated" in r.line and "slot A" in r.line
    assert unit.model[0] == b.model_blob and unit.active == 1
    assert seen[-1] == (len(b.model_blob), len(b.model_blob))
    assert unit.writes.count(MsgType.MODEL_CHUNK) == -(-len(b.model_blob) // spec.MAX_CHUNK)
    (e,) = AuditLog(tmp_path / "audit.jsonl").entries()
    assert e["result"] == "ok" and e["bundle_sha256"] == b.sha256
    assert e["before"]["model_id"] == "factory" and e["after"]["model_sha256"] == b.model["sha256"]


@pytest.mark.parametrize("case, unit_kw, bundle_kw, reason", [
    ("wrong board", {}, {"boards": ("esp32dev",)}, "the unit is sil"),
    ("other key on the unit", {"key_id": 0x12345678}, {}, "trusts key 12345678"),
    ("incompatible schema", {"schema32": 0xDEADBEEF}, {}, "feature schema"),
    ("model larger than the slot", {"slot_size": 1000}, {}, "a slot on the unit holds 1000"),
    ("protocol range", {}, {"protocol": (3, 4)}, "needs protocol 3..4"),
])
def test_refusals_happen_before_any_write_and_are_logged(tmp_path, kp, case, unit_kw, bundle_kw, reason):
    unit = FakeUnit(unit_kw.pop("key_id", kp.key_id), **unit_kw)
    path = _bundle(tmp_path, kp, **bundle_kw)
    with pytest.raises(BundleError, match=reason):
        _update(unit, path, kp, tmp_path)
    assert unit.writes == [], f"{case}: something was written before the refusal"
    assert unit.model == (b"factory", "factory")
    (e,) = AuditLog(tmp_path / "audit.jsonl").entries()
    assert e["result"] == "refused" and reason in e["detail"]


def test_tampered_bundle_is_refused_before_any_write(tmp_path, kp):
    import zipfile

    path = _bundle(tmp_path, kp)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    blob = bytearray(files["model.cmb"]); blob[7] ^= 0x40; files["model.cmb"] = bytes(blob)
    bad = tmp_path / "bad.mcb"
    with zipfile.ZipFile(bad, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    unit = FakeUnit(kp.key_id)
    with pytest.raises(BundleError, match="tampered"):
        _update(unit, bad, kp, tmp_path)
    assert unit.writes == []


def test_dry_run_checks_but_writes_nothing(tmp_path, kp):
    unit = FakeUnit(kp.key_id)
    r = _update(unit, _bundle(tmp_path, kp), kp, tmp_path, dry_run=True)
    assert r.result == "dry-run" and "nothing was written" in r.line and unit.writes == []
    assert AuditLog(tmp_path / "audit.jsonl").entries()[0]["result"] == "dry-run"


def test_rollback_and_its_refusal(tmp_path, kp):
    unit = FakeUnit(kp.key_id)
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(DeviceError, match="factory model and holds no other model"):
        ops.rollback("fake", audit=audit, open_link=lambda p: unit)
    _update(unit, _bundle(tmp_path, kp, "1.mcb"), kp, tmp_path)
    first = unit.model
    _update(unit, _bundle(tmp_path, kp, "2.mcb"), kp, tmp_path)
    r = ops.rollback("fake", audit=audit, open_link=lambda p: unit)
    assert unit.model == first and "rolled back" in r.line and "from slot A" in r.line
    assert [e["result"] for e in audit.entries()] == ["failed", "ok", "ok", "ok"]


def test_rollback_after_the_first_update_reports_the_factory_model(tmp_path, kp):
    unit = FakeUnit(kp.key_id)
    _update(unit, _bundle(tmp_path, kp), kp, tmp_path)
    r = ops.rollback("fake", audit=AuditLog(tmp_path / "audit.jsonl"), open_link=lambda p: unit)
    assert "from the factory model" in r.line and "was coach-v2" in r.line
    assert r.after.active_slot == "factory"


def test_a_unit_that_trusts_the_development_key_is_warned_about_before_anything_else(tmp_path):
    """Signed with the development key (as SIL tests and the demo do): the update works, with a warning."""
    dev = keys.KeyPair(keys.dev_private_key(), keys.dev_public_key(), keys.DEV_KEY_ID)
    unit = FakeUnit(keys.DEV_KEY_ID)
    seen: list[str] = []
    r = _update(unit, _bundle(tmp_path, dev), dev, tmp_path, warn=seen.append)
    assert r.result == "ok" and seen == [keys.DEV_KEY_WARNING]
    assert AuditLog(tmp_path / "audit.jsonl").entries()[-1]["warnings"] == [keys.DEV_KEY_WARNING]
    seen.clear()  # a refusal is warned about too, and the warning comes first
    with pytest.raises(BundleError, match="the unit is sil"):
        _update(unit, _bundle(tmp_path, dev, "other.mcb", boards=("esp32dev",)), dev, tmp_path, warn=seen.append)
    assert seen == [keys.DEV_KEY_WARNING]


def test_a_production_unit_gets_no_development_key_warning(tmp_path, kp):
    seen: list[str] = []
    _update(FakeUnit(kp.key_id), _bundle(tmp_path, kp), kp, tmp_path, warn=seen.append)
    assert seen == []


def test_device_log_lines_drains_the_buffer(kp):
    unit = FakeUnit(kp.key_id)
    assert ops.device_log_lines(unit) == [("info", "boot"), ("info", "self-test passed")]


def test_lost_chunk_reply_is_resumed_not_resent_twice(kp):
    """A chunk whose ACK got lost is retried; the unit answers BAD_OFFSET with the new count."""
    unit = FakeUnit(kp.key_id)
    orig = unit.request
    dropped = []

    def lossy(t, payload=b"", timeout=None):
        r = orig(t, payload, timeout)
        if t == MsgType.MODEL_CHUNK and not dropped:
            dropped.append(1)
            orig(t, payload, timeout)  # host retried the same chunk after a timeout
        return r
    unit.request = lossy
    blob = os.urandom(1000)
    from motocoach.protocol import manifest as um
    signed = um.for_model(blob, "m", "sil", keys.load_private(kp.private_path), version=1)
    assert ops.send_model(unit, blob, signed) == 1 and unit.model[0] == blob
    assert not unit.trial and unit.writes[-1] == MsgType.MODEL_CONFIRM


# --- firmware via esptool --------------------------------------------------------------------

def _fw_bundle(tmp_path, kp, boards=("esp32dev",)) -> bundles.Bundle:
    (tmp_path / "boot.bin").write_bytes(esp_image.make_test_image("esp32", size=200))
    (tmp_path / "app.bin").write_bytes(esp_image.make_test_image("esp32", size=900))
    return bundles.create(tmp_path / "fw.mcb", private_key=keys.load_private(kp.private_path), boards=list(boards),
                          images=[(0x1000, tmp_path / "boot.bin"), (0x10000, tmp_path / "app.bin")],
                          firmware_version="0.3.0")


def test_esptool_command_lines_use_v5_dashed_verbs(tmp_path, kp):
    b = _fw_bundle(tmp_path, kp)
    (merge, write), merged = ops.esptool_commands(b, "/dev/ttyUSB0", tmp_path, baud=460800)
    assert merge[1:6] == ["-m", "esptool", "--chip", "esp32", "merge-bin"]
    assert merge[merge.index("--target-offset") + 1] == "0x1000"
    assert merge[-4:-2] == ["0x1000", str(tmp_path / "0x001000_boot.bin")]
    assert write[write.index("--port") + 1] == "/dev/ttyUSB0"
    assert write[-3:] == ["write-flash", "0x1000", str(merged)]
    subprocess.run(merge, check=True, capture_output=True)  # merge-bin runs offline: real output
    data = merged.read_bytes()
    boot, app = (b.payloads[i["file"]] for i in b.firmware["images"])
    assert data[:len(boot)] == boot
    assert data[0x10000 - 0x1000:][:len(app)] == app


def test_esptool_failure_is_reported_cleanly(tmp_path, kp):
    """esptool against a pty where nothing answers: exit 2, 'Failed to connect', as a ToolError."""
    b = _fw_bundle(tmp_path, kp)
    master, slave = pty.openpty()
    try:
        port = os.ttyname(slave)
        t0 = time.monotonic()
        with pytest.raises(ToolError, match=r"write-flash failed \(exit 2\).*Failed to connect"):
            ops.flash_firmware(b, port, baud=115200, connect_attempts=1)
        assert time.monotonic() - t0 < 60
    finally:
        os.close(master)
        os.close(slave)


def test_firmware_update_flashes_then_confirms_via_hello(tmp_path, kp):
    unit = FakeUnit(kp.key_id, board="esp32dev")
    flashed = []

    def fake_flash(b, port):
        flashed.append(port)
        unit.model = (b"factory", "factory")
        unit.fw = b.firmware["version"]
    _fw_bundle(tmp_path, kp)
    with pytest.raises(DeviceError, match="expected 0.3.0"):  # the fake unit still reports 0.2.0
        ops.update("fake", tmp_path / "fw.mcb", trusted_key=kp.public_path,
                   audit=AuditLog(tmp_path / "a.jsonl"), open_link=lambda p: unit, flash=fake_flash)
    assert flashed == ["fake"] and unit.closed >= 2
    assert AuditLog(tmp_path / "a.jsonl").entries()[-1]["result"] == "failed"


def _flip_stored_byte(path: Path, member: str) -> None:
    """Corrupt one byte of a stored (uncompressed) member in place: its CRC-32 no longer matches."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        data = z.read(member)
    raw = bytearray(path.read_bytes())
    at = raw.find(data)
    assert at > 0
    raw[at + len(data) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


def test_a_bundle_with_a_bad_crc_is_refused_logged_and_nothing_written(tmp_path, kp):
    path = _bundle(tmp_path, kp)
    _flip_stored_byte(path, "model.cmb")
    unit = FakeUnit(kp.key_id)
    with pytest.raises(BundleError, match="model.cmb is damaged"):
        _update(unit, path, kp, tmp_path)
    assert unit.writes == []
    (e,) = AuditLog(tmp_path / "audit.jsonl").entries()
    assert e["result"] == "refused" and "damaged" in e["detail"]
