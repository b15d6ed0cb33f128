"""Field-update benchmark on the SIL firmware -> bench/results/update.json (where = "sil").

* >= 100 seeded power cuts (SIGKILL of the SIL process) at random moments of model-only updates
  between the factory model and a variant with other weights, each followed by a restart on the
  same slot backing file: ``powercuts``, ``valid_boots``, ``bricked`` (must be 0). A boot counts
  as valid only if IDENTITY names the old or the new model, its self-test passed and its HAPTIC
  reply equals the TFLM reference of that model;
* ``model_update_s``: median of 5 complete model-only updates (MODEL_BEGIN/CHUNK/COMMIT, the two
  models alternating) over the SIL pty with the link set to 921600 baud. A pty has no baud-rate
  limit, so ``model_wire_s_921600`` gives the time the same frames need on a real 921600-baud UART;
* ``refusals_tested``: refusals checked against the running SIL unit, each leaving its IDENTITY
  unchanged: the unit's own (duplicated / out-of-order chunk, wrong total size, model larger
  than a slot, hash mismatch) and the host's before any write (wrong board, incompatible schema,
  tampered, too large, protocol range, a key the unit does not trust, an untrusted signer).

Signed updates (the unit checks the signed manifest itself):

* ``raw_attacks_tried`` / ``raw_attacks_accepted`` (must be 0): every attack of
  :func:`motocoach.device.attacks.catalogue`, sent raw by an outside pyserial client to a SIL unit
  and to a QEMU rv32 unit, plus the unsigned MODEL_BEGINs sent during the power-cut campaign;
* ``powercuts_unsigned_active`` (must be 0): campaign boots that came up on a model no trusted
  key signed;
* ``verify_ms_sil``: one Ed25519 manifest verify through Debian's libsodium, host build with the
  SIL's flags (mean of 200); ``verify_instructions_rv32``: the same verify on rv32imc under QEMU
  ``-icount shift=0`` (minstret, exact); ``crypto_flash_bytes_rv32``: code + read-only data that
  the libsodium files add to the QEMU firmware image (from its linker map).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import time
import zipfile
from pathlib import Path

from motocoach import bundle as bundles
from motocoach import keys
from motocoach.audit import AuditLog
from motocoach.device import attacks, ops
from motocoach.device.powercut import sil_campaign, variant_model
from motocoach.errors import BundleError
from motocoach.protocol import codec, spec
from motocoach.protocol import manifest as um
from motocoach.protocol.spec import MsgType, Status

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "firmware" / "lib" / "coach_model"
CUTS = 500
SEED = 2026


def _ack(link, t, payload=b""):
    return codec.unpack(MsgType.ACK, link.request(t, payload, timeout=2.0).payload)["status"]


def _running(link) -> tuple:
    i = ops.identify(link).identity
    return i["model_id"], i["model_sha256"], i["active_slot"], i["selftest_ok"]


def _signed(link, blob: bytes, model_id: str = "bench") -> bytes:
    return um.for_model(blob, model_id, ops.identify(link).board, attacks.dev_key(), version=1)


def _device_refusals(link, blob: bytes) -> int:
    """Refusals the unit itself makes; each must leave the running model. Returns how many."""
    sha = hashlib.sha256(blob).digest()
    before = _running(link)
    good = um.UpdateManifest.parse(_signed(link, blob))

    def begin(total, digest=sha):
        return _ack(link, MsgType.MODEL_BEGIN,
                    good.with_changes(model_size=total, sha256=digest).sign(attacks.dev_key()))

    def chunk(off, data):
        return _ack(link, MsgType.MODEL_CHUNK, codec.pack(MsgType.MODEL_CHUNK, offset=off, data=data))

    checks = []
    assert begin(len(blob)) == Status.OK and chunk(0, blob[:100]) == Status.OK
    checks.append(chunk(0, blob[:100]) == Status.BAD_OFFSET)               # duplicated chunk
    checks.append(chunk(300, blob[300:400]) == Status.BAD_OFFSET)          # out of order
    assert begin(len(blob) - 1) == Status.OK
    for off in range(0, len(blob) - 1, 200):
        assert chunk(off, blob[off:min(off + 200, len(blob) - 1)]) == Status.OK
    checks.append(_ack(link, MsgType.MODEL_COMMIT) == Status.HASH_MISMATCH)  # wrong total size
    checks.append(begin(ops.identify(link).identity["slot_size"] + 1) == Status.TOO_LARGE)
    assert begin(len(blob), hashlib.sha256(b"x").digest()) == Status.OK
    for off in range(0, len(blob), 200):
        assert chunk(off, blob[off:off + 200]) == Status.OK
    checks.append(_ack(link, MsgType.MODEL_COMMIT) == Status.HASH_MISMATCH)  # corrupted in transit
    assert all(checks), checks
    assert _running(link) == before
    return len(checks)


def _host_refusals(tmp_path: Path, port: str, link) -> int:
    """Bundles the host must refuse for this SIL unit before writing anything. Returns how many."""
    info = ops.identify(link)
    dev = keys.dev_private_key()
    other = keys.generate(tmp_path / "other.key", tmp_path / "other.pub")
    cases = ("wrong board", "incompatible schema", "too large", "protocol range", "unit trusts another key",
             "untrusted signer", "tampered")
    refused = 0
    for case in cases:
        model, manifest = variant_model(MODEL_DIR, tmp_path / case.replace(" ", "_"))
        man = json.loads(manifest.read_text())
        if case == "incompatible schema":
            man["schema_hash"] = "ab" * 32
        if case == "too large":
            big = os.urandom(info.identity["slot_size"] + 1)
            model.write_bytes(big)
            man["model_sha256"] = hashlib.sha256(big).hexdigest()
        manifest.write_text(json.dumps(man))
        signer = other.private_path if case in ("unit trusts another key", "untrusted signer") else dev
        trusted = other.public_path if case == "unit trusts another key" else keys.dev_public_key()
        path = tmp_path / f"{case}.mcb"
        top = info.identity["proto_max"] + 1
        bundles.create(path, private_key=keys.load_private(signer),
                       boards=["other-board"] if case == "wrong board" else [info.board], model=model,
                       model_manifest=manifest, protocol=(top, top) if case == "protocol range" else None)
        if case == "tampered":
            with zipfile.ZipFile(path) as z:
                files = {n: z.read(n) for n in z.namelist()}
            files["model.cmb"] = files["model.cmb"][:-1] + bytes([files["model.cmb"][-1] ^ 1])
            with zipfile.ZipFile(path, "w") as z:
                for n, d in files.items():
                    z.writestr(n, d)
        try:
            ops.update(port, path, trusted_key=trusted, audit=AuditLog(tmp_path / "audit.jsonl"),
                       open_link=lambda p: link)
        except BundleError:
            refused += 1
        assert ops.identify(link).identity == info.identity, f"{case}: the unit changed"
    assert refused == len(cases), f"only {refused} of {len(cases)} bad bundles were refused"
    return refused


def _raw_attacks(kind: str, workdir: Path, good_blob: bytes) -> tuple[int, int]:
    """Every catalogue attack, raw, against a fresh unit of ``kind``: (tried, accepted)."""
    from motocoach.targets import start_qemu, start_sil

    workdir.mkdir(parents=True, exist_ok=True)
    evil = bytearray(good_blob)
    evil[len(evil) // 3] ^= 0x40
    target = start_sil(slots=workdir / "slots.bin") if kind == "sil" else start_qemu()
    try:
        with attacks.RawClient(target.port, timeout=3.0) as c:
            ident = c.identity()
            board = codec.text(ident["board"])
            cat = attacks.catalogue(good_blob, bytes(evil), board, ident["unit_id"], floor=ident["version_floor"])
            accepted = 0
            for a in cat:
                st = c.push(a.manifest, a.blob)
                accepted += st[-1] == Status.OK or st[-1] != a.expect
            assert c.identity()["model_sha256"] == ident["model_sha256"]
    finally:
        target.stop()
    return len(cat), accepted


def _verify_cost() -> tuple[float, int]:
    r = subprocess.run(["make", "-s", "-C", str(REPO / "firmware"), "verify-bench"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr  # QEMU prints the guest's semihosting output on stderr
    ms = float(re.search(r"verify_ms ([0-9.]+)", out).group(1))
    instr = int(re.search(r"verify_instructions (\d+)", out).group(1))
    return ms, instr


def _crypto_flash_bytes() -> int:
    """Bytes of kept .text/.rodata input sections from the libsodium archive in the QEMU image."""
    r = subprocess.run(["make", "-s", "-C", str(REPO / "firmware"), "qemu"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (REPO / "firmware/build/qemu/coach_qemu.map").read_text()
    text = text[text.index("Linker script and memory map"):]
    sections = re.finditer(r"^ (\.(?:text|rodata|srodata|data|sdata)\S*)\s*\n?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)",
                           text, re.M)
    total = sum(int(m.group(2), 16) for m in sections if "libsodium_verify.a" in m.group(3))
    assert total > 0, "no libsodium section found in the QEMU linker map"
    return total


def test_update_powercuts_and_speed(tmp_path, bench_result):
    from motocoach.device.link import SerialLink
    from motocoach.targets import start_sil

    blobs = [(MODEL_DIR / "default_model.cmb").read_bytes(), variant_model(MODEL_DIR, tmp_path)[0].read_bytes()]
    target = start_sil(slots=tmp_path / "speed.bin")
    try:
        with SerialLink(target.port, baud=921600, timeout=1.0) as link:
            host_refusals = _host_refusals(tmp_path / "host", target.port, link)
            signed = [_signed(link, b, m) for b, m in zip(blobs, ("default", "coach-alt"))]
            times = []
            for k in range(6):
                t0 = time.perf_counter()
                ops.send_model(link, blobs[k % 2], signed[k % 2])
                times.append(time.perf_counter() - t0)
                assert ops.identify(link).model_sha256 == hashlib.sha256(blobs[k % 2]).hexdigest()
            times = times[1:]  # the first one also pays the slot file's first-touch page faults
            refusals = _device_refusals(link, blobs[0])
    finally:
        target.stop()
    res = sil_campaign(tmp_path / "cuts", MODEL_DIR, cuts=CUTS, seed=SEED)
    raw = {kind: _raw_attacks(kind, tmp_path / f"raw-{kind}", blobs[1]) for kind in ("sil", "qemu")}
    verify_ms, verify_instr = _verify_cost()
    size = len(blobs[1])
    nchunks = -(-size // spec.MAX_CHUNK)
    # COBS adds 1 byte per 254 plus the delimiter; each request is answered by an ACK frame
    ack = spec.HEADER_SIZE + spec.messages()[MsgType.ACK].fixed_size + spec.CRC_SIZE + 2
    chunk = spec.HEADER_SIZE + 4 + spec.MAX_CHUNK + spec.CRC_SIZE + 3
    begin = spec.HEADER_SIZE + spec.messages()[MsgType.MODEL_BEGIN].fixed_size + spec.CRC_SIZE + 2
    frame_bytes = nchunks * (chunk + ack) + begin + ack + (spec.HEADER_SIZE + spec.CRC_SIZE + 2) + ack
    bench_result("update", "sil", {
        "powercuts": res.powercuts, "valid_boots": res.valid_boots, "bricked": res.bricked,
        "updates_interrupted": res.powercuts - res.completed_updates,
        "boots_on_new_model": res.boots_new, "boots_on_old_model": res.boots_old,
        "model_update_s": statistics.median(times), "model_bytes": size,
        "model_wire_s_921600": frame_bytes * 10 / 921600,
        "refusals_tested": refusals + host_refusals,
        "raw_attacks_tried": sum(t for t, _ in raw.values()) + res.attacks_sent,
        "raw_attacks_accepted": sum(a for _, a in raw.values()) + res.attacks_accepted,
        "verify_instructions_rv32": verify_instr, "verify_ms_sil": verify_ms,
        "crypto_flash_bytes_rv32": _crypto_flash_bytes(),
        "powercuts_unsigned_active": res.unsigned_active,
    }, notes=f"SIL on a pty (no baud limit: model_update_s is the pty time, model_wire_s_921600 the 8N1 time of "
              f"the same frames on a 921600-baud UART); {CUTS} SIGKILL cuts, seed {SEED}, between the factory "
              f"model and a variant with other weights, confirmed after each update, with an unsigned MODEL_BEGIN "
              f"sent raw in {res.attacks_sent} rounds; refusals: {refusals} by the unit, {host_refusals} by the "
              f"host before any write, each with IDENTITY unchanged. raw_attacks: {raw['sil'][0]} on sil + "
              f"{raw['qemu'][0]} on qemu (outside pyserial client) + {res.attacks_sent} in the campaign (sil). "
              "verify_ms_sil: host build, Debian libsodium; verify_instructions_rv32 and crypto_flash_bytes_rv32: "
              "qemu (rv32imc -Os, -icount shift=0)")
    assert res.bricked == 0, res.problems
    assert res.unsigned_active == 0 and res.attacks_accepted == 0
    assert all(a == 0 for _, a in raw.values()), raw
    assert res.powercuts >= 100 and res.valid_boots == res.powercuts + 1
    assert res.boots_new > 0 and res.boots_old > 0
