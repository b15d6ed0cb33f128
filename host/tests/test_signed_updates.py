"""The unit itself refuses every update that the trusted key did not sign (issue: signed updates).

Every attack is sent RAW by an outside pyserial client (:class:`motocoach.device.attacks.RawClient`,
hand-built frames, none of the host tool's checks), on SIL and on QEMU rv32. For each: the unit
answers its distinct refusal status, nothing is erased (IDENTITY's slot states and, on SIL, the
slot file are unchanged), and the previous model is still active and answering telemetry exactly
as before. Then anti-rollback (version floor, explicit signed downgrade) and trial boot (a reset
before the confirm returns to the previous model; good telemetry frames confirm).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from motocoach.device import attacks
from motocoach.device.powercut import expected_outputs, probe_telemetry, variant_model
from motocoach.protocol import codec, spec
from motocoach.protocol import manifest as um
from motocoach.protocol.spec import MsgType, SlotState, Status

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "firmware" / "lib" / "coach_model"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("signed")
    alt, alt_manifest = variant_model(MODEL_DIR, d)
    # the crafted, self-consistent model of the issue: saturated outputs on every frame
    evil, evil_manifest = variant_model(MODEL_DIR, d, "evil", bias_shift=[2_000_000] * 3)
    probe = probe_telemetry()
    out = {"alt": alt.read_bytes(), "evil": evil.read_bytes(),
           "alt_out": expected_outputs(alt_manifest, probe), "evil_out": expected_outputs(evil_manifest, probe),
           "factory_out": expected_outputs(MODEL_DIR / "manifest.json", probe)}
    assert len({tuple(out[k]) for k in ("alt_out", "evil_out", "factory_out")}) == 3
    return out


class Unit:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.slots = kind, (tmp / "slots.bin" if kind == "sil" else None)
        self.start()

    def start(self) -> None:
        from motocoach.targets import start_qemu, start_sil

        self.target = start_sil(slots=self.slots) if self.kind == "sil" else start_qemu()
        self.c = attacks.RawClient(self.target.port, timeout=3.0)

    def power_cut(self) -> None:
        """SIL: SIGKILL and restart on the same slot file. QEMU: a guest RESET (slots in RAM survive)."""
        if self.kind == "sil":
            self.c.close()
            self.target.kill()
            self.start()
        else:
            assert self.c.status(MsgType.RESET) == Status.OK
            self.c.close()
            time.sleep(0.5)  # the guest restarts; its slots (and unit id) stay in RAM
            self.c = attacks.RawClient(self.target.port, timeout=3.0)
            self.c.identity()

    def stop(self) -> None:
        self.c.close()
        self.target.stop()

    def ident(self) -> dict:
        return self.c.identity()

    @property
    def board(self) -> str:
        return self.ident()["board"].split(b"\0")[0].decode()

    def outputs(self) -> list[int]:
        h = self.c.haptic(probe_telemetry())
        return [h["out0"], h["out1"], h["out2"]]

    def signed(self, blob: bytes, version: int, **kw) -> bytes:
        return um.for_model(blob, kw.pop("model_id", "m"), self.board, attacks.dev_key(), version=version, **kw)

    def install(self, blob: bytes, version: int, confirm: bool = True, **kw) -> None:
        st = self.c.push(self.signed(blob, version, **kw), blob)
        assert st[-1] == Status.OK and all(s == Status.OK for s in st), st
        if confirm:
            assert self.c.status(MsgType.MODEL_CONFIRM) == Status.OK

    def slot_file(self) -> bytes:
        return self.slots.read_bytes() if self.slots else b""


@pytest.fixture(params=["sil", "qemu"])
def unit(request, tmp_path):
    u = Unit(request.param, tmp_path)
    yield u
    u.stop()


def _running(i: dict) -> tuple:
    return i["model_sha256"], i["active_slot"], i["slot_a_state"], i["slot_b_state"], i["version_floor"]


def test_every_raw_attack_is_refused_nothing_erased_previous_model_answers(unit, models):
    unit.install(models["alt"], version=3)  # run from a slot: more to lose
    before, slots_before = unit.ident(), unit.slot_file()
    assert before["version_floor"] == 3 and unit.outputs() == models["alt_out"]
    tried = 0
    for a in attacks.catalogue(models["alt"], models["evil"], unit.board, before["unit_id"], floor=3):
        statuses = unit.c.push(a.manifest, a.blob)
        tried += 1
        assert statuses[-1] == a.expect, f"{a.name}: {[Status(s).name for s in statuses]}"
        if not a.at_commit:
            assert len(statuses) == 1, f"{a.name}: refused only after MODEL_BEGIN"
            assert _running(unit.ident()) == _running(before), f"{a.name} changed the slots"
            if unit.slots:
                assert unit.slot_file() == slots_before, f"{a.name}: slot file touched"
        after = unit.ident()
        assert (after["model_sha256"], after["active_slot"]) == (before["model_sha256"], before["active_slot"]), a.name
        assert unit.outputs() == models["alt_out"], f"after {a.name} the previous model no longer answers"
        if a.at_commit:  # a correctly signed begin did erase the INACTIVE slot: the new baseline
            assert after["slot_b_state"] == SlotState.INVALID and after["slot_a_state"] == SlotState.ACTIVE
            before, slots_before = after, unit.slot_file()
    assert tried >= 12
    # and after a restart the unsigned models are nowhere
    unit.power_cut()
    assert unit.ident()["model_sha256"] == before["model_sha256"] and unit.outputs() == models["alt_out"]


def test_the_issue_crafted_model_never_runs_even_with_every_other_field_right(unit, models):
    evil = models["evil"]
    m = um.UpdateManifest.parse(unit.signed(evil, version=50))
    assert unit.c.push(m.with_changes(signature=bytes(64)).pack(), evil) == [Status.BAD_SIGNATURE]
    tampered = bytearray(m.pack())
    tampered[-1] ^= 1
    assert unit.c.push(bytes(tampered), evil) == [Status.BAD_SIGNATURE]
    # chunks and commit without an accepted MODEL_BEGIN do nothing
    assert unit.c.status(MsgType.MODEL_CHUNK, bytes(4) + evil[:200]) == Status.BAD_STATE
    assert unit.c.status(MsgType.MODEL_COMMIT) == Status.BAD_STATE
    assert unit.outputs() == models["factory_out"] != models["evil_out"]
    assert unit.ident()["active_slot"] == 0


def test_anti_rollback_floor_and_explicit_signed_downgrade(unit, models):
    unit.install(models["alt"], version=5, model_id="alt-v5")
    assert unit.ident()["version_floor"] == 5
    factory = (MODEL_DIR / "default_model.cmb").read_bytes()
    assert unit.c.push(unit.signed(factory, version=4), factory) == [Status.DOWNGRADE]
    unit.power_cut()
    assert unit.ident()["version_floor"] == 5, "the floor is kept with the slots"
    assert unit.c.push(unit.signed(factory, version=4), factory) == [Status.DOWNGRADE]
    # rollback to the factory model stays possible, and does not lower the floor
    assert unit.c.status(MsgType.MODEL_ROLLBACK) == Status.OK
    i = unit.ident()
    assert i["active_slot"] == 0 and i["version_floor"] == 5 and unit.outputs() == models["factory_out"]
    # ... nor does the update that overwrites the only slot that held it
    unit.install(factory, version=5, model_id="factory-v5")
    unit.power_cut()
    assert unit.ident()["version_floor"] == 5
    # an explicit, signed downgrade is accepted and lowers the floor once confirmed
    unit.install(models["alt"], version=2, downgrade=True)
    i = unit.ident()
    assert (i["model_version"], i["version_floor"]) == (2, 2) and unit.outputs() == models["alt_out"]


def test_trial_boot_reset_returns_to_the_previous_model_and_good_frames_confirm(unit, models):
    unit.install(models["alt"], version=1, confirm=False)
    i = unit.ident()
    assert i["trial"] == 1 and i["slot_a_state"] == SlotState.TRIAL and unit.outputs() == models["alt_out"]
    assert i["version_floor"] == 0
    unit.power_cut()  # reset while on trial
    i = unit.ident()
    assert (i["active_slot"], i["trial"], i["slot_a_state"]) == (0, 0, SlotState.INVALID)
    assert unit.outputs() == models["factory_out"]
    # again, and this time the unit runs it: good TELEMETRY frames confirm it
    unit.install(models["alt"], version=1, confirm=False)
    for _ in range(spec.TRIAL_FRAMES):
        assert unit.outputs() == models["alt_out"]
    i = unit.ident()
    assert (i["trial"], i["version_floor"]) == (0, 1)
    unit.power_cut()
    assert unit.ident()["model_sha256"] == hashlib.sha256(models["alt"]).digest()
    assert unit.outputs() == models["alt_out"]
    assert unit.c.status(MsgType.MODEL_CONFIRM) == Status.BAD_STATE  # nothing on trial


def test_unit_id_is_permanent_and_bound_manifests_only_fit_that_unit(unit, models):
    uid = unit.ident()["unit_id"]
    assert any(uid)
    unit.power_cut()
    assert unit.ident()["unit_id"] == uid
    unit.install(models["alt"], version=1, unit_id=uid)
    assert unit.outputs() == models["alt_out"]


def test_status_reports_tx_dropped_and_uart_errors_and_requests_obey_the_length_rule(unit):
    for t in (MsgType.STATUS_REQ, MsgType.LOG_REQ, MsgType.RESET, MsgType.MODEL_COMMIT, MsgType.MODEL_CONFIRM):
        for n in (1, 31):
            assert unit.c.status(t, bytes(n)) == Status.BAD_LENGTH, (t.name, n)
    st = codec.unpack(MsgType.STATUS, unit.c.request(MsgType.STATUS_REQ).payload)
    assert st["tx_dropped"] == 0 and st["uart_errors"] == 0 and st["frame_errors"] >= 10
    assert unit.ident()["model_sha256"]  # still there: no RESET was acted on
