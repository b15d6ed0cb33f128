"""Field-update benchmark on the SIL firmware -> bench/results/update.json (where = "sil").

* >= 100 seeded power cuts (SIGKILL of the SIL process) at random moments of model-only updates,
  each followed by a restart on the same slot backing file: ``powercuts``, ``valid_boots``,
  ``bricked`` (must be 0);
* ``model_update_s``: median of 5 complete model-only updates (MODEL_BEGIN/CHUNK/COMMIT) of the
  default model over the SIL pty with the link at 921600 baud. A pty has no baud-rate limit, so
  ``model_wire_s_921600`` gives the time the same frames need on a real 921600-baud UART;
* ``refusals_tested``: each refusal below was checked to leave the unit's model unchanged.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path

import pytest

from motocoach.device import ops
from motocoach.protocol import codec, spec
from motocoach.protocol.spec import MsgType, Status

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "firmware" / "lib" / "coach_model"
CUTS = 120
SEED = 2026


def _upstream_or_fail():
    missing = [p for p in (REPO / "host" / "targets.py", MODEL_DIR / "default_model.cmb", MODEL_DIR / "manifest.json")
               if not p.exists()]
    if missing:
        pytest.fail("cannot measure: missing " + ", ".join(str(p.relative_to(REPO)) for p in missing))


def _ack(link, t, payload=b""):
    a = codec.unpack(MsgType.ACK, link.request(t, payload, timeout=2.0).payload)
    return a["status"]


def _device_refusals(link, blob: bytes) -> int:
    """Refusals the unit itself makes; each must leave the running model. Returns how many."""
    before = ops.identify(link).model_sha256
    sha = hashlib.sha256(blob).digest()

    def begin(total, digest=sha):
        return _ack(link, MsgType.MODEL_BEGIN, codec.pack(MsgType.MODEL_BEGIN, total_size=total, sha256=digest,
                                                          model_id=b"bench"))

    def chunk(off, data):
        return _ack(link, MsgType.MODEL_CHUNK, codec.pack(MsgType.MODEL_CHUNK, offset=off, data=data))

    checks = []
    assert begin(len(blob)) == Status.OK and chunk(0, blob[:100]) == Status.OK
    checks.append(chunk(0, blob[:100]) == Status.BAD_OFFSET)               # duplicated chunk
    checks.append(chunk(300, blob[300:400]) == Status.BAD_OFFSET)          # out of order
    assert begin(len(blob) - 1) == Status.OK
    for off in range(0, len(blob) - 1, 200):
        chunk(off, blob[off:min(off + 200, len(blob) - 1)])
    checks.append(_ack(link, MsgType.MODEL_COMMIT) == Status.HASH_MISMATCH)  # wrong total size
    checks.append(begin(ops.identify(link).identity["slot_size"] + 1) == Status.TOO_LARGE)
    assert begin(len(blob), hashlib.sha256(b"x").digest()) == Status.OK
    for off in range(0, len(blob), 200):
        chunk(off, blob[off:off + 200])
    checks.append(_ack(link, MsgType.MODEL_COMMIT) == Status.HASH_MISMATCH)  # corrupted in transit
    assert all(checks), checks
    assert ops.identify(link).model_sha256 == before
    return len(checks)


def _host_refusals(tmp_path: Path, info: ops.DeviceInfo) -> int:
    """Bundles the host must refuse for this SIL unit before writing anything. Returns how many."""
    import json
    import os
    import zipfile

    from motocoach import bundle as bundles
    from motocoach import keys
    from motocoach.device.powercut import variant_model
    from motocoach.errors import BundleError

    kp = keys.generate(tmp_path / "k.key", tmp_path / "k.pub")
    ident = dict(info.identity, key_id=kp.key_id)  # the unit trusts the dev key; sign with a test key
    refused = 0
    for case in ("wrong board", "incompatible schema", "too large", "protocol", "other key", "tampered"):
        model, manifest = variant_model(MODEL_DIR, tmp_path / case.replace(" ", "_"))
        man = json.loads(manifest.read_text())
        if case == "incompatible schema":
            man["schema_hash"] = "ab" * 32
        if case == "too large":
            big = os.urandom(info.identity["slot_size"] + 1)
            model.write_bytes(big)
            man["model_sha256"] = hashlib.sha256(big).hexdigest()
        manifest.write_text(json.dumps(man))
        path = tmp_path / f"{case}.mcb"
        bundles.create(path, private_key=keys.load_private(kp.private_path),
                       boards=["other-board"] if case == "wrong board" else [info.board],
                       model=model, model_manifest=manifest, protocol=(9, 9) if case == "protocol" else None)
        if case == "tampered":
            with zipfile.ZipFile(path) as z:
                files = {n: z.read(n) for n in z.namelist()}
            files["model.cmb"] = files["model.cmb"][:-1] + bytes([files["model.cmb"][-1] ^ 1])
            with zipfile.ZipFile(path, "w") as z:
                for n, d in files.items():
                    z.writestr(n, d)
        unit = ops.DeviceInfo(dict(ident, key_id=0x0BADC0DE) if case == "other key" else ident)
        try:
            ops.check_bundle(path, unit, kp.public_path)
        except BundleError:
            refused += 1
    assert refused == 6, f"only {refused} of 6 bad bundles were refused"
    return refused


def test_update_powercuts_and_speed(tmp_path, bench_result):
    _upstream_or_fail()
    from motocoach.device.link import SerialLink
    from motocoach.device.powercut import sil_campaign
    from motocoach.targets import start_sil

    blob = (MODEL_DIR / "default_model.cmb").read_bytes()
    target = start_sil(slots=tmp_path / "speed.bin")
    try:
        with SerialLink(target.port, baud=921600, timeout=1.0) as link:
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                ops.send_model(link, blob, "default")
                times.append(time.perf_counter() - t0)
            refusals = _device_refusals(link, blob)
            info = ops.identify(link)
    finally:
        target.stop()
    host_refusals = _host_refusals(tmp_path, info)
    res = sil_campaign(tmp_path / "cuts", MODEL_DIR, cuts=CUTS, seed=SEED)
    nchunks = -(-len(blob) // spec.MAX_CHUNK)
    frame_bytes = nchunks * (spec.HEADER_SIZE + 4 + spec.MAX_CHUNK + spec.CRC_SIZE + 3) + 2 * 80
    bench_result("update", "sil", {
        "powercuts": res.powercuts, "valid_boots": res.valid_boots, "bricked": res.bricked,
        "boots_on_new_model": res.boots_new, "boots_on_old_model": res.boots_old,
        "model_update_s": statistics.median(times), "model_bytes": len(blob),
        "model_wire_s_921600": frame_bytes * 10 / 921600,
        "refusals_tested": refusals + host_refusals,
    }, notes=f"SIL on a pty (no baud limit); {CUTS} SIGKILL cuts, seed {SEED}; refusals: {refusals} by the "
              f"unit over SIL, {host_refusals} by the host before any write (tests)")
    assert res.bricked == 0, res.problems
    assert res.powercuts >= 100 and res.valid_boots == res.powercuts + 1
