"""Field operations on a unit: identify, check a bundle, update (model or firmware), rollback, logs.

Each operation takes an open link (anything with ``request(msg_type, payload, timeout) -> Frame``
and ``close()``, i.e. :class:`motocoach.device.link.SerialLink`), so tests and other programs can
inject their own. The order in :func:`update` is the safety argument: read IDENTITY, check the
signature, trusted key, board, protocol range and schema, and only then write anything.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from motocoach import bundle as bundles
from motocoach import keys
from motocoach.audit import AuditLog
from motocoach.errors import BundleError, DeviceError, MotoCoachError, ToolError
from motocoach.protocol import codec, spec
from motocoach.device.link import old_unit_message
from motocoach.protocol.spec import MsgType, SlotState, Status

#: ``progress(stage, done, total)`` callback used for the progress bar.
Progress = Callable[[str, int, int], None]
#: ``warn(text)``: shown to the technician at once (before any refusal), and logged.
Warn = Callable[[str], None]
SLOT_NAMES = {0: "factory", 1: "A", 2: "B"}


class Link(Protocol):
    def request(self, msg_type: MsgType, payload: bytes = b"", timeout: float | None = None) -> codec.Frame: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DeviceInfo:
    """What a unit says about itself (IDENTITY, plus STATUS counters when asked)."""

    identity: dict[str, Any]
    status: dict[str, Any] | None = None

    @property
    def board(self) -> str:
        return codec.text(self.identity["board"])

    @property
    def firmware(self) -> str:
        i = self.identity
        return f"{i['fw_major']}.{i['fw_minor']}.{i['fw_patch']}"

    @property
    def model_id(self) -> str:
        return codec.text(self.identity["model_id"])

    @property
    def model_sha256(self) -> str:
        return bytes(self.identity["model_sha256"]).hex()

    @property
    def active_slot(self) -> str:
        return SLOT_NAMES.get(self.identity["active_slot"], "?")

    @property
    def unit_id(self) -> str:
        """The unit's own permanent id (hex), as IDENTITY reports it."""
        return bytes(self.identity.get("unit_id", b"")).hex()

    @property
    def model_version(self) -> int:
        return int(self.identity.get("model_version", 0))

    def slot_state(self, slot: str) -> str:
        v = self.identity[f"slot_{slot.lower()}_state"]
        return SlotState(v).name.lower() if v in SlotState._value2member_map_ else f"unknown({v})"

    def as_dict(self) -> dict[str, Any]:
        """Everything ``device info`` shows, as plain JSON types (``device info --json``)."""
        from motocoach.schema import hash32_hex

        i = self.identity
        return {"board": self.board, "firmware": self.firmware,
                "protocol": {"version": i["proto_version"], "min": i["proto_min"], "max": i["proto_max"]},
                "model": {"id": self.model_id, "sha256": self.model_sha256}, "active_slot": self.active_slot,
                "slots": {"a": self.slot_state("a"), "b": self.slot_state("b"), "size": i["slot_size"]},
                "selftest_ok": bool(i["selftest_ok"]), "schema_hash": hash32_hex(i["schema_hash"]),
                "engine_version": i["engine_version"], "trusted_key_id": f"{i['key_id']:08x}",
                "status": dict(self.status) if self.status else None}

    def versions(self) -> dict[str, Any]:
        """The 'before' / 'after' record of the audit log."""
        return {"firmware": self.firmware, "protocol": self.identity["proto_version"],
                "model_id": self.model_id, "model_sha256": self.model_sha256,
                "active_slot": self.active_slot, "model_version": self.model_version,
                "version_floor": int(self.identity.get("version_floor", 0)),
                "trial": bool(self.identity.get("trial", 0))}


def _ack(frame: codec.Frame, request: MsgType) -> tuple[int, int]:
    if frame.type != MsgType.ACK:
        raise DeviceError(f"unit answered {request.name} with {getattr(frame.type, 'name', frame.type)}, not ACK")
    a = codec.unpack(MsgType.ACK, frame.payload)
    return a["status"], a["value"]


def _status_name(code: int) -> str:
    return Status(code).name if code in Status._value2member_map_ else f"status {code}"


def identify(link: Link, *, with_status: bool = False, timeout: float = 1.0) -> DeviceInfo:
    """HELLO (and STATUS_REQ) -> :class:`DeviceInfo`."""
    f = link.request(MsgType.HELLO, codec.pack(MsgType.HELLO, proto_min=spec.PROTOCOL_MIN,
                                               proto_max=spec.PROTOCOL_MAX), timeout=timeout)
    size = spec.messages()[MsgType.IDENTITY].fixed_size
    if f.type == MsgType.ACK and len(f.payload) >= 6 and f.payload[1] == Status.BAD_VERSION:
        value = int.from_bytes(f.payload[2:6], "little")
        raise DeviceError(old_unit_message(value & 0xFF, (value >> 8) & 0xFF))
    if f.type != MsgType.IDENTITY:
        raise DeviceError(f"unit answered HELLO with {getattr(f.type, 'name', f.type)}: is it a motocoach unit?")
    if len(f.payload) < size:
        raise DeviceError(old_unit_message(f.payload[4] if len(f.payload) > 5 else 1,
                                           f.payload[5] if len(f.payload) > 5 else 1))
    ident = codec.unpack(MsgType.IDENTITY, f.payload[:size])  # newer firmware may append fields
    st = None
    if with_status:
        s = link.request(MsgType.STATUS_REQ, b"", timeout=timeout)
        st = codec.unpack(MsgType.STATUS, s.payload) if s.type == MsgType.STATUS else None
    return DeviceInfo(ident, st)


def key_warnings(info: DeviceInfo | None, b: bundles.Bundle | None = None) -> list[str]:
    """Loud warnings when the publicly known development key is involved."""
    out = []
    if info is not None and keys.is_dev_key(info.identity["key_id"]):
        out.append(keys.DEV_KEY_WARNING)
    if b is not None and keys.is_dev_key(b.signer_key_id) and not out:
        out.append(keys.DEV_SIGNER_WARNING)
    return out


def check_bundle(bundle_path: Path, info: DeviceInfo, trusted_key: Path) -> bundles.Bundle:
    """Read + verify the bundle and check it against the unit; raise BundleError with every reason.

    This is the host's half of the trust argument: the ed25519 signature over the manifest (which
    holds every payload's sha256) and the unit's trusted key id. The unit itself checks only the
    model's sha256 (against MODEL_BEGIN's) and its self-test, so nothing reaches it unchecked."""
    b = bundles.read(bundle_path)
    bundles.verify(b, keys.load_public(trusted_key))
    problems = bundles.compatibility_problems(b, info.identity)
    if problems:
        raise BundleError("refused, nothing was written: " + "; ".join(problems))
    return b


def send_model(link: Link, blob: bytes, manifest: bytes, *, progress: Progress | None = None,
               chunk: int = spec.MAX_CHUNK, timeout: float = 2.0, confirm: bool = True) -> int:
    """Stream a model blob into the unit's inactive slot. MODEL_BEGIN carries the signed manifest
    (``motocoach.protocol.manifest``), which the unit checks before it erases anything; at commit
    it checks the blob's sha256 against it and self-tests, and the model runs on trial. With
    ``confirm`` the host then confirms it once IDENTITY shows it running. Returns the new active
    slot (1 = A, 2 = B). On any error the update is aborted and the running model stays."""
    sha = hashlib.sha256(blob).digest()
    st, _ = _ack(link.request(MsgType.MODEL_BEGIN, manifest, timeout=timeout), MsgType.MODEL_BEGIN)
    if st != Status.OK:
        raise DeviceError(f"unit refused the model update at begin: {_status_name(st)}")
    try:
        off = 0
        while off < len(blob):
            data = blob[off:off + chunk]
            payload = codec.pack(MsgType.MODEL_CHUNK, offset=off, data=data)
            st, got = _ack(link.request(MsgType.MODEL_CHUNK, payload, timeout=timeout), MsgType.MODEL_CHUNK)
            # a retried chunk whose first reply was lost answers BAD_OFFSET with the new count
            if st != Status.OK and not (st == Status.BAD_OFFSET and got == off + len(data)):
                raise DeviceError(f"unit refused chunk at {off}: {_status_name(st)} (has {got} bytes)")
            off += len(data)
            if progress:
                progress("model", off, len(blob))
        st, slot = _ack(link.request(MsgType.MODEL_COMMIT, b"", timeout=max(timeout, 5.0)), MsgType.MODEL_COMMIT)
    except BaseException:
        try:
            link.request(MsgType.MODEL_ABORT, b"", timeout=timeout)
        except MotoCoachError:
            pass
        raise
    if st != Status.OK:
        raise DeviceError(f"unit did not activate the model: {_status_name(st)}; the previous model keeps running")
    if confirm:
        running = identify(link, timeout=timeout)
        if bytes(running.identity["model_sha256"]) != sha:
            raise DeviceError("unit does not run the model it just committed; not confirmed (a reset returns "
                              "to the previous model)")
        st, _ = _ack(link.request(MsgType.MODEL_CONFIRM, b"", timeout=max(timeout, 5.0)), MsgType.MODEL_CONFIRM)
        if st != Status.OK:
            raise DeviceError(f"unit did not confirm the model: {_status_name(st)}")
    return slot


def esptool_commands(b: bundles.Bundle, port: str, workdir: Path, *, baud: int = 460800,
                     connect_attempts: int | None = None) -> tuple[list[list[str]], Path]:
    """The esptool v5 command lines for a firmware bundle: ``merge-bin`` then ``write-flash``.

    Returns the commands and the merged image path. The payloads are written into ``workdir``.
    """
    fw = b.firmware
    if not fw:
        raise BundleError("the bundle has no firmware images")
    chip = fw["chip"]
    esptool = [sys.executable, "-m", "esptool", "--chip", chip]
    pairs: list[str] = []
    for img in fw["images"]:
        p = workdir / Path(img["file"]).name
        p.write_bytes(b.payloads[img["file"]])
        pairs += [f"{img['offset']:#x}", str(p)]
    start = min(img["offset"] for img in fw["images"])
    merged = workdir / "merged.bin"
    merge = esptool + ["merge-bin", "--output", str(merged), "--target-offset", f"{start:#x}", *pairs]
    write = esptool + ["--port", port, "--baud", str(baud)]
    if connect_attempts is not None:
        write += ["--connect-attempts", str(connect_attempts)]
    write += ["write-flash", f"{start:#x}", str(merged)]  # esptool verifies the flash after writing
    return [merge, write], merged


def flash_firmware(b: bundles.Bundle, port: str, *, baud: int = 460800, connect_attempts: int | None = None,
                   run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
    """Merge the bundle's images and write them with esptool; raise ToolError with esptool's reason."""
    with tempfile.TemporaryDirectory(prefix="motocoach-fw-") as tmp:
        cmds, _ = esptool_commands(b, port, Path(tmp), baud=baud, connect_attempts=connect_attempts)
        for cmd in cmds:
            r = run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                verb = next(a for a in cmd if a in ("merge-bin", "write-flash"))
                raise ToolError(f"esptool {verb} failed (exit {r.returncode}): {_esptool_reason(r)}. "
                                "Check the cable, hold BOOT while plugging the unit in, and run the update "
                                "again; the unit's ROM bootloader cannot be damaged by a failed write")


def _esptool_reason(r: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (r.stderr or "").splitlines() + (r.stdout or "").splitlines() if ln.strip()]
    for test in (lambda ln: "fatal error" in ln.lower(), lambda ln: ln.startswith("ERROR"),
                 lambda ln: "error" in ln.lower() or "failed" in ln.lower()):
        hit = next((ln for ln in lines if test(ln)), None)
        if hit:
            return hit.split("fatal error occurred:")[-1].strip()
    return lines[-1] if lines else "no output"


@dataclass
class Result:
    """Outcome of an operation, with the one line shown to the technician."""

    result: str
    line: str
    before: DeviceInfo | None = None
    after: DeviceInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _device_ref(port: str, info: DeviceInfo | None, unit_id: str | None) -> dict[str, Any]:
    # the unit's own id (IDENTITY) identifies it; the technician's --unit-id is kept as a label
    return {"port": port, "unit_id": info.unit_id if info else None, "label": unit_id,
            "board": info.board if info else None,
            "key_id": f"{info.identity['key_id']:08x}" if info else None}


def update(port: str, bundle_path: Path, *, trusted_key: Path, audit: AuditLog,
           open_link: Callable[[str], Link], dry_run: bool = False, unit_id: str | None = None,
           progress: Progress | None = None, flash: Callable[..., None] = flash_firmware,
           warn: Warn | None = None) -> Result:
    """identify -> check (before any write) -> update -> confirm via HELLO -> audit log.

    ``warn`` gets each warning (the development key) as soon as it is known."""
    bundle_sha = None
    link = open_link(port)
    before = None
    warnings: list[str] = []

    def note(texts: list[str]) -> None:
        for t in texts:
            if t not in warnings:
                warnings.append(t)
                if warn:
                    warn(t)
    try:
        before = identify(link)
        note(key_warnings(before))
        try:
            read_back = bundles.read(bundle_path)
            bundle_sha = read_back.sha256
            note(key_warnings(before, read_back))
            b = check_bundle(bundle_path, before, trusted_key)
        except BundleError as e:
            audit.append(operation="update", device=_device_ref(port, before, unit_id), result="refused",
                         before=before.versions(), bundle_sha256=bundle_sha, detail=str(e), warnings=warnings)
            raise
        if dry_run:
            line = f"dry run: {b.describe()} fits this {before.board} unit; nothing was written"
            audit.append(operation="update", device=_device_ref(port, before, unit_id), result="dry-run",
                         before=before.versions(), bundle_sha256=b.sha256, detail=line, warnings=warnings)
            return Result("dry-run", line, before, extra={"warnings": warnings})
        if b.firmware:
            link.close()
            flash(b, port)
            link = _reopen(open_link, port)
        if b.model and (b.firmware is None or identify(link).model_sha256 != b.model["sha256"]):
            manifest = b.unit_manifest(before.board)
            if manifest is None:
                raise BundleError(f"the bundle has no signed unit manifest for board {before.board}; "
                                  "re-create it with this version of `motocoach bundle create`")
            send_model(link, b.model_blob, manifest, progress=progress)
        after = identify(link)
    except MotoCoachError as e:
        if not isinstance(e, BundleError):
            audit.append(operation="update", device=_device_ref(port, before, unit_id), result="failed",
                         before=before.versions() if before else None, bundle_sha256=bundle_sha, detail=str(e),
                         warnings=warnings)
        raise
    finally:
        link.close()
    problems = []
    if b.model and after.model_sha256 != b.model["sha256"]:
        problems.append(f"unit runs model {after.model_sha256[:12]}, expected {b.model['sha256'][:12]}")
    if b.firmware and after.firmware != b.firmware["version"]:
        problems.append(f"unit runs firmware {after.firmware}, expected {b.firmware['version']}")
    result = "failed" if problems else "ok"
    line = ("update NOT confirmed: " + "; ".join(problems)) if problems else (
        f"updated: {before.board} now runs firmware {after.firmware}, model {after.model_id} "
        f"({after.model_sha256[:12]}) in slot {after.active_slot}")
    audit.append(operation="update", device=_device_ref(port, after, unit_id), result=result,
                 before=before.versions(), after=after.versions(), bundle_sha256=b.sha256, detail=line,
                 warnings=warnings)
    if problems:
        raise DeviceError(line)
    return Result(result, line, before, after, extra={"warnings": warnings})


def _reopen(open_link: Callable[[str], Link], port: str, wait_s: float = 10.0) -> Link:
    """Reconnect after esptool reset the unit; the app needs a moment to boot."""
    deadline, last = time.monotonic() + wait_s, None
    while time.monotonic() < deadline:
        try:
            link = open_link(port)
            identify(link, timeout=0.5)
            return link
        except MotoCoachError as e:
            last = e
            time.sleep(0.5)
    raise DeviceError(f"the unit did not answer after flashing ({last}); power-cycle it and run `device info`")


def rollback(port: str, *, audit: AuditLog, open_link: Callable[[str], Link],
             unit_id: str | None = None) -> Result:
    """Go back to the previous model: the other slot's model if that one is valid, else the
    factory model (the slot rolled back from is retired: kept, never booted, overwritten by the
    next update). On a unit running its factory model, rollback undoes such a retire."""
    link = open_link(port)
    before = None
    try:
        before = identify(link)
        st, slot = _ack(link.request(MsgType.MODEL_ROLLBACK, b"", timeout=5.0), MsgType.MODEL_ROLLBACK)
        if st != Status.OK:
            why = ("the unit runs its factory model and holds no other model" if st == Status.NO_VALID_SLOT
                   else _status_name(st))
            raise DeviceError(f"rollback refused: {why}; the current model keeps running")
        after = identify(link)
    except MotoCoachError as e:
        audit.append(operation="rollback", device=_device_ref(port, before, unit_id), result="failed",
                     before=before.versions() if before else None, detail=str(e))
        raise
    finally:
        link.close()
    where = "the factory model" if after.identity["active_slot"] == 0 else f"slot {after.active_slot}"
    line = (f"rolled back: model {after.model_id} ({after.model_sha256[:12]}) from {where}, "
            f"was {before.model_id} ({before.model_sha256[:12]})")
    audit.append(operation="rollback", device=_device_ref(port, after, unit_id), result="ok",
                 before=before.versions(), after=after.versions(), detail=line)
    return Result("ok", line, before, after)


LOG_LEVELS = {0: "debug", 1: "info", 2: "warn", 3: "error"}


def device_log_lines(link: Link, *, max_lines: int = 256, timeout: float = 1.0) -> list[tuple[str, str]]:
    """Drain the unit's LOG buffer with LOG_REQ: [(level, text)], oldest first."""
    out: list[tuple[str, str]] = []
    for _ in range(max_lines):
        f = link.request(MsgType.LOG_REQ, b"", timeout=timeout)
        if f.type != MsgType.LOG:
            raise DeviceError(f"unit answered LOG_REQ with {getattr(f.type, 'name', f.type)}")
        m = codec.unpack(MsgType.LOG, f.payload)
        txt = bytes(m["text"]).decode("utf-8", "replace")
        if txt:
            out.append((LOG_LEVELS.get(m["level"], str(m["level"])), txt))
        if not m["flags"] & 1:
            break
    return out
