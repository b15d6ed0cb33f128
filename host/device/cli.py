"""Field-technician verbs: ``device info|update|rollback|logs``, ``bundle create|verify``, ``keys generate|header``.

Thin wrappers over :mod:`motocoach.device.ops`, :mod:`motocoach.bundle`, :mod:`motocoach.keys`
and :mod:`motocoach.audit`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from motocoach.errors import ConfigError
from motocoach.schema import hash32_hex

console = Console()
err_console = Console(stderr=True)

device_app = typer.Typer(help="Identify, update, roll back and read logs of a unit.", no_args_is_help=True)
bundle_app = typer.Typer(help="Create and verify signed update bundles.", no_args_is_help=True)
keys_app = typer.Typer(help="Bundle signing keys.", no_args_is_help=True)

PORT = typer.Option(..., "--port", "-p", help="Serial port of the unit (/dev/ttyUSB0, or a SIL/QEMU pty).")
BAUD = typer.Option(921600, "--baud", help="Line rate of the coach protocol.")
AUDIT = typer.Option(None, "--audit-log", help="Audit log file (default: $MOTOCOACH_AUDIT_LOG or "
                     "~/.local/share/motocoach/audit.jsonl).")
UNIT = typer.Option(None, "--unit-id", help="Your label for the unit, recorded in the audit log next to the unit's "
                    "own id (which the unit reports itself).")
TRUSTED = typer.Option(None, "--trusted-key", help="Public key bundles must be signed with (default: "
                       "$MOTOCOACH_TRUSTED_KEY, else the public development key firmware/keys/dev_ed25519.pub).")


def warn(text: str) -> None:
    """A warning nobody can miss (stderr, bold)."""
    err_console.print(f"[bold yellow]WARNING:[/] [bold]{text}[/]", soft_wrap=True)


def _trusted(path: Optional[Path]) -> Path:
    from motocoach import keys

    return path if path is not None else keys.default_trusted_key()


def _open(baud: int):
    from motocoach.device.link import SerialLink

    return lambda port: SerialLink(port, baud=baud, timeout=1.0, retries=2)


def _audit(path: Optional[Path]):
    from motocoach.audit import AuditLog

    return AuditLog(path)


@device_app.command("info")
def info(port: str = PORT, baud: int = BAUD,
         as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table.")) -> None:
    """Say what is on the unit: board, firmware, protocol, model, slots and counters.

    Example: motocoach device info --port /dev/ttyUSB0 --json
    """
    from motocoach.device import ops

    link = _open(baud)(port)
    try:
        d = ops.identify(link, with_status=True)
    finally:
        link.close()
    if as_json:
        from motocoach import keys

        print(json.dumps({"port": port, **d.as_dict(), "development_key": keys.is_dev_key(d.identity["key_id"])}))
        return
    i = d.identity
    t = Table(show_header=False, title=f"unit on {port}")
    t.add_row("board", d.board)
    t.add_row("unit id", d.unit_id)
    t.add_row("firmware", d.firmware)
    t.add_row("protocol", f"{i['proto_version']} (speaks {i['proto_min']}..{i['proto_max']})")
    t.add_row("model", f"{d.model_id}  sha256 {d.model_sha256[:16]}...")
    t.add_row("model version", f"{i['model_version']} (lowest accepted: {i['version_floor']})"
              + ("  [bold yellow]ON TRIAL: a reset returns to the previous model[/]" if i["trial"] else ""))
    t.add_row("running from", f"slot {d.active_slot}" if i["active_slot"] else "factory model (built in)")
    t.add_row("slots", f"A {d.slot_state('a')}, B {d.slot_state('b')}, {i['slot_size']} bytes each")
    t.add_row("self-test", "passed" if i["selftest_ok"] else "[red]FAILED: motors disabled[/]")
    t.add_row("feature schema", f"{hash32_hex(i['schema_hash'])}, engine v{i['engine_version']}")
    from motocoach import keys

    dev = keys.is_dev_key(i["key_id"])
    t.add_row("trusted key", f"{i['key_id']:08x}" + ("  [bold yellow]PUBLIC DEVELOPMENT KEY: anyone can sign "
                                                      "updates for this unit[/]" if dev else ""))
    if d.status:
        s = d.status
        t.add_row("state", "ok" if s["state"] == 0 else f"[red]fault {s['fault']}[/]")
        t.add_row("counters", f"{s['frames_ok']} frames ok, {s['crc_errors']} CRC errors, "
                  f"{s['frame_errors']} bad frames, {s['value_errors']} bad values, "
                  f"{s['failsafe_trips']} failsafe trips, {s['deadline_misses']} deadline misses, "
                  f"{s['tx_dropped']} replies dropped, {s['uart_errors']} UART errors")
        t.add_row("uptime", f"{s['uptime_ms'] / 1000:.1f} s, slowest loop {s['max_loop_us']} us")
    console.print(t)


@device_app.command("update")
def update(port: str = PORT, bundle: Path = typer.Option(..., "--bundle", help="Signed bundle (.mcb)."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Only check that the bundle fits the unit."),
           trusted_key: Optional[Path] = TRUSTED, baud: int = BAUD, audit_log: Optional[Path] = AUDIT, unit_id: Optional[str] = UNIT) -> None:
    """Check a bundle against the unit, then install it (model: into the inactive slot).

    Nothing is written unless the signature, key, board, protocol range and schema all match.
    Warns loudly when the unit trusts the public development key.
    Example: motocoach device update --port /dev/ttyUSB0 --bundle model-v2.mcb --dry-run
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from motocoach.device import ops

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("model", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        r = ops.update(port, bundle, trusted_key=_trusted(trusted_key), audit=_audit(audit_log),
                       open_link=_open(baud), dry_run=dry_run, unit_id=unit_id, progress=progress, warn=warn)
    console.print(r.line)


@device_app.command("rollback")
def rollback(port: str = PORT, baud: int = BAUD, audit_log: Optional[Path] = AUDIT,
             unit_id: Optional[str] = UNIT) -> None:
    """Go back to the previous model: the other slot's, else the factory model built into the firmware.

    On a unit running its factory model after such a rollback, rollback undoes it.
    Example: motocoach device rollback --port /dev/ttyUSB0
    """
    from motocoach.device import ops

    console.print(ops.rollback(port, audit=_audit(audit_log), open_link=_open(baud), unit_id=unit_id).line)


@device_app.command("logs")
def logs(port: Optional[str] = typer.Option(None, "--port", "-p", help="Also read the unit's own log lines."),
         baud: int = BAUD, audit_log: Optional[Path] = AUDIT,
         last: int = typer.Option(20, "--last", help="Audit entries to show (0 = all)."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables.")) -> None:
    """Show the audit log of field operations, and the unit's log lines with --port.

    Example: motocoach device logs --port /dev/ttyUSB0 --last 5 --json
    """
    log = _audit(audit_log)
    entries = log.entries()
    if as_json:
        doc = {"audit_log": str(log.path), "entries": entries[-last if last else 0:]}
        if port:
            doc["unit_log"] = [{"level": lv, "text": tx} for lv, tx in _unit_log_lines(port, baud)]
        print(json.dumps(doc))
        return
    console.print(f"{len(entries)} entries in the audit log {log.path}", soft_wrap=True)
    t = Table()
    for col in ("time", "operation", "unit", "result", "detail"):
        t.add_column(col)
    for e in entries[-last if last else 0:]:
        dev = e.get("device") or {}
        t.add_row(e.get("time", "?"), e.get("operation", "?"),
                  " ".join(str(v) for v in (dev.get("unit_id"), dev.get("board"), dev.get("port")) if v),
                  e.get("result", "?"), e.get("detail", ""))
    console.print(t)
    if port:
        lines = _unit_log_lines(port, baud)
        console.print(f"unit log ({len(lines)} lines):")
        for level, text in lines:
            console.print(f"  [{level}] {text}", markup=False)


def _unit_log_lines(port: str, baud: int) -> list:
    from motocoach.device import ops

    link = _open(baud)(port)
    try:
        return ops.device_log_lines(link)
    finally:
        link.close()


def _parse_image(spec: str) -> tuple[int, Path]:
    off, sep, path = spec.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(off, 0), Path(path)
    except ValueError:
        raise ConfigError(f"--image wants OFFSET:FILE (e.g. 0x10000:firmware.bin), got {spec!r}") from None


@bundle_app.command("create")
def bundle_create(out: Path = typer.Option(..., "--out", "-o", help="Bundle file to write (.mcb)."),
                  board: list[str] = typer.Option(..., "--board", help="Board id the bundle is for (repeat)."),
                  model: Optional[Path] = typer.Option(None, "--model", help="Model blob (.cmb)."),
                  model_manifest: Optional[Path] = typer.Option(None, "--model-manifest",
                                                                help="Model manifest (default: manifest.json beside the blob)."),
                  image: list[str] = typer.Option([], "--image", help="Firmware image OFFSET:FILE (repeat)."),
                  firmware_version: Optional[str] = typer.Option(None, "--firmware-version"),
                  chip: Optional[str] = typer.Option(None, "--chip", help="esptool chip name for firmware images "
                                                     "(default: the MCU in the board file; a mismatch is refused)."),
                  key: Optional[Path] = typer.Option(None, "--key", help="Private signing key (default: the "
                                                     "public development key firmware/keys/dev_ed25519.key)."),
                  model_version: int = typer.Option(1, "--model-version", min=0, max=2**32 - 1,
                                                    help="Anti-rollback version of the model: units refuse a "
                                                         "model below the highest version they accepted."),
                  allow_downgrade: bool = typer.Option(False, "--allow-downgrade",
                                                       help="Sign permission to install this model below the "
                                                            "unit's version floor (explicit downgrade).")) -> None:
    """Pack a model and/or firmware images with their manifest and sign it.

    Warns loudly when signing with the public development key.

    Example: motocoach bundle create --out model.mcb --board esp32dev --model firmware/lib/coach_model/default_model.cmb
    """
    from motocoach import bundle as bundles
    from motocoach import keys

    bundles.check_board_ids(board)  # a typo would make a bundle that no unit accepts
    if image and chip is not None and chip != bundles.firmware_chip(board):
        raise ConfigError(f"--chip {chip} but board {', '.join(board)} is {bundles.firmware_chip(board)}; leave --chip out")
    b = bundles.create(out, private_key=keys.load_private(key or keys.dev_private_key()), boards=board,
                       model=model, model_manifest=model_manifest, images=[_parse_image(s) for s in image],
                       firmware_version=firmware_version, chip=chip, model_version=model_version,
                       allow_downgrade=allow_downgrade)
    if keys.is_dev_key(b.signer_key_id):
        warn(keys.DEV_SIGNER_WARNING)
    console.print(f"wrote {out}: {b.describe()}, signed by key {b.signer_key_id:08x}, sha256 {b.sha256[:16]}...")


@bundle_app.command("verify")
def bundle_verify(path: Path = typer.Argument(..., help="Bundle file."),
                  trusted_key: Optional[Path] = TRUSTED) -> None:
    """Check a bundle's payload hashes and signature against the trusted key.

    Example: motocoach bundle verify model.mcb --trusted-key release_ed25519.pub
    """
    from motocoach import bundle as bundles
    from motocoach import keys

    b = bundles.read(path)
    bundles.verify(b, keys.load_public(_trusted(trusted_key)))
    if keys.is_dev_key(b.signer_key_id):
        warn(keys.DEV_SIGNER_WARNING)
    console.print(f"OK: {b.describe()}; signed by key {b.signer_key_id:08x}; created {b.manifest['created']['utc']}")


@keys_app.command("generate")
def keys_generate(out: Path = typer.Option(..., "--out", help="Folder for <name>.key (mode 0600) and <name>.pub; "
                                           "keep it outside the repository."),
                  name: str = typer.Option("release_ed25519", "--name", help="File name stem of the pair."),
                  header: bool = typer.Option(True, "--header/--no-header",
                                              help="Also regenerate the firmware's trusted_key.h from the new key."),
                  root: Optional[Path] = typer.Option(None, "--root", help="Repository root for the header "
                                                      "(default: this checkout)."),
                  overwrite: bool = typer.Option(False, "--overwrite")) -> None:
    """Make a production signing key pair and point the firmware build at its public key.

    The private key never goes into git (*.key is ignored); keep it on the release machine.
    Example: motocoach keys generate --out ~/motocoach-release-key
    """
    from motocoach import keys

    kp = keys.generate_in(out, name, overwrite=overwrite)
    console.print(f"key {kp.key_id:08x}: private {kp.private_path} (mode 0600: keep it on this machine, "
                  f"never in git), public {kp.public_path}", soft_wrap=True)
    if header:
        h = keys.write_trusted_key_header(kp.public_path, root or keys.REPO)
        console.print(f"wrote {h}: firmware built from it trusts only key {kp.key_id:08x}. SIL/QEMU tests and "
                      "the demo need the development key: restore it with `motocoach keys header` before "
                      "committing", soft_wrap=True)


@keys_app.command("header")
def keys_header(public: Optional[Path] = typer.Option(None, "--public", help="Public key (default: the "
                                                      "development key firmware/keys/dev_ed25519.pub)."),
                root: Optional[Path] = typer.Option(None, "--root", help="Repository root (default: this checkout).")
                ) -> None:
    """Regenerate the firmware's trusted_key.h from a public key (rotation, release builds).

    Example: motocoach keys header --public ~/motocoach-release-key/release_ed25519.pub
    """
    from motocoach import keys

    pub = public or keys.dev_public_key()
    h = keys.write_trusted_key_header(pub, root or keys.REPO)
    kid = keys.key_id(keys.raw_public(keys.load_public(pub)))
    console.print(f"wrote {h} for key {kid:08x}; rebuild the firmware", soft_wrap=True)
    if keys.is_dev_key(kid):
        warn("firmware built from this header trusts the public development key: anyone can sign updates for it")


def register(app: typer.Typer) -> None:
    """Add the device, bundle and keys groups to the motocoach CLI."""
    app.add_typer(device_app, name="device")
    app.add_typer(bundle_app, name="bundle")
    app.add_typer(keys_app, name="keys")
