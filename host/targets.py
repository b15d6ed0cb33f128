"""Build and start the firmware targets that run without a board: SIL (host) and QEMU (rv32).

These plain factory functions back the HIL fixtures, the demo and the field-update tests:

>>> from motocoach import targets
>>> targets.FIRMWARE_DIR.name
'firmware'

``start_sil()`` / ``start_qemu()`` return only once the firmware is ready to take bytes on its
pseudo-terminal (SIL: the ``PTY`` line; QEMU: the boot banner), so no early bytes are lost.
Motor outputs land in ``RunningTarget.motor_log`` as ``t_us,motor,duty_permille,freq_hz`` lines
(SIL: t_us on the host's CLOCK_MONOTONIC; QEMU: guest CLINT time since boot).
"""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from motocoach.errors import ToolError

REPO = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO / "firmware"
SIL_BIN = FIRMWARE_DIR / "build" / "sil" / "coach_sil"
QEMU_ELF = FIRMWARE_DIR / "build" / "qemu" / "coach_qemu.elf"
QEMU = "qemu-system-riscv32"
QEMU_BANNER = b"moto-edge-coach qemu-virt rv32imc ready"
_PTY_RE = re.compile(rb"char device redirected to (/dev/pts/\d+)")
_build_lock = threading.Lock()


def _make(target: str, tools: list[str]) -> None:
    missing = [t for t in ["make", *tools] if shutil.which(t) is None]
    if missing:
        raise ToolError(f"{', '.join(missing)} not found; run `make setup` (as root it installs the Debian packages)")
    with _build_lock:
        r = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), target], capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        hint = (" The factory model C files are missing: run `make models`."
                if "coach_default_model" in tail else "")
        raise ToolError(f"`make -C firmware {target}` failed.{hint}\n{tail}")


@functools.lru_cache(maxsize=None)
def _built_once(kind: str) -> Path:
    """Run the incremental build once per process, so a start never runs a stale binary
    and a campaign of hundreds of restarts does not re-run make each time."""
    return build_sil() if kind == "sil" else build_qemu()


def _existing(firmware: Path) -> Path:
    if not Path(firmware).is_file():
        raise ToolError(f"firmware {firmware} does not exist; build it first (make sil / make qemu, "
                        "or motocoach demo)")
    return Path(firmware)


def build_sil() -> Path:
    """Build ``firmware/build/sil/coach_sil`` with the host gcc (incremental); return its path."""
    _make("sil", ["gcc"])
    return SIL_BIN


def build_qemu() -> Path:
    """Build ``firmware/build/qemu/coach_qemu.elf`` with riscv64-unknown-elf-gcc; return its path."""
    _make("qemu", ["riscv64-unknown-elf-gcc"])
    return QEMU_ELF


@dataclass
class RunningTarget:
    """A started SIL or QEMU firmware. ``port`` is the pty (or the ``--link`` path) to open."""

    port: str
    kind: str
    proc: subprocess.Popen
    motor_log: Path | None
    _hold_fd: int | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _tmpdir: tempfile.TemporaryDirectory | None = None  #: holds QEMU's default motor log; removed at GC

    def _cleanup(self) -> None:
        if self._hold_fd is not None:
            os.close(self._hold_fd)
            self._hold_fd = None
        for t in self._threads:
            t.join(timeout=2)

    def stop(self) -> None:
        """Terminate cleanly (SIGTERM, then SIGKILL after 3 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()

    def kill(self) -> None:
        """Power cut: SIGKILL, no chance to finish a write."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._cleanup()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def __enter__(self) -> "RunningTarget":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(stream, deadline: float) -> bytes:
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf


def start_sil(*, slots: Path | None = None, motor_log: Path | None = None, link: Path | None = None,
              board: str | None = None, firmware: Path | None = None, timeout: float = 10.0) -> RunningTarget:
    """Start the SIL firmware; return once its pty is ready.

    ``slots``: backing file of the two model slots (kept across restarts; created if missing).
    ``motor_log``: append motor outputs there. ``link``: also make this symlink to the pty.
    ``board``: a board id from ``boards/`` (default: the default board).
    ``firmware``: run this SIL binary (e.g. a demo run's) instead of building the default one.
    """
    exe = _existing(firmware) if firmware is not None else _built_once("sil")
    cmd = [str(exe)]
    for flag, val in (("--slots", slots), ("--motor-log", motor_log), ("--link", link), ("--board", board)):
        if val is not None:
            cmd += [flag, str(val)]
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    line = _read_line(proc.stdout, time.monotonic() + timeout)
    m = re.match(rb"PTY (\S+)", line)
    if not m:
        proc.kill()
        proc.wait()
        err.seek(0)
        raise ToolError(f"SIL firmware did not report its pty within {timeout:g} s: "
                        f"{(line + err.read()).decode(errors='replace').strip() or 'no output'}")
    port = str(link) if link is not None else m.group(1).decode()
    return RunningTarget(port=port, kind="sil", proc=proc, motor_log=motor_log)


def _pump_qemu_stdout(proc: subprocess.Popen, log_path: Path) -> None:
    """Copy the guest's semihosting `MOTOR ...` lines (QEMU's stderr) into the motor log."""
    with open(log_path, "a") as log:
        for raw in proc.stderr:
            if raw.startswith(b"MOTOR "):
                log.write(raw[6:].decode(errors="replace"))
                log.flush()


def _drain(stream) -> None:
    for _ in stream:
        pass


def start_qemu(*, icount: bool = False, motor_log: Path | None = None, firmware: Path | None = None,
               timeout: float = 20.0) -> RunningTarget:
    """Start the QEMU rv32 firmware; return after its boot banner.

    ``icount=True`` adds ``-icount shift=0`` (deterministic instruction counts; slower).
    The UART is a pty; a private fd on it stays open for the target's lifetime so QEMU never
    sees the port hang up between clients. Model slots are guest RAM: lost when QEMU exits.
    ``firmware``: run this ELF instead of building the default one.
    """
    if shutil.which(QEMU) is None:
        raise ToolError(f"{QEMU} not found; run `make setup` (Debian package qemu-system-misc)")
    elf = _existing(firmware) if firmware is not None else _built_once("qemu")
    tmp = None
    if motor_log is None:
        tmp = tempfile.TemporaryDirectory(prefix="coach-qemu-")
        motor_log = Path(tmp.name) / "motor_log.csv"
    cmd = [QEMU, "-machine", "virt", "-bios", "none", "-kernel", str(elf), "-display", "none",
           "-monitor", "none", "-serial", "pty", "-semihosting-config", "enable=on,target=native"]
    if icount:
        cmd += ["-icount", "shift=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout

    def fail(why: str) -> ToolError:
        proc.kill()
        proc.wait()
        if tmp is not None:
            tmp.cleanup()
        return ToolError(f"QEMU firmware did not start: {why}")

    pts, seen = None, b""
    while pts is None:
        line = _read_line(proc.stdout, deadline)  # QEMU prints the pty path on stdout
        if not line:
            raise fail(f"no pty reported ({seen.decode(errors='replace').strip() or 'no output'})")
        seen += line
        m = _PTY_RE.search(line)
        pts = m.group(1).decode() if m else None
    threads = [threading.Thread(target=_pump_qemu_stdout, args=(proc, motor_log), daemon=True),
               threading.Thread(target=_drain, args=(proc.stdout,), daemon=True)]
    for t in threads:
        t.start()
    fd = os.open(pts, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIOFLUSH)
    got = b""
    while QEMU_BANNER not in got:
        if time.monotonic() > deadline or proc.poll() is not None:
            os.close(fd)
            raise fail(f"no boot banner on {pts} (got {got[-80:]!r})")
        if select.select([fd], [], [], 0.1)[0]:
            got += os.read(fd, 256)
    os.write(fd, b"\x00")  # any byte ends the banner loop; a lone 0x00 is an empty frame
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 0.3:  # let the last banner drain out of the port
        if select.select([fd], [], [], 0.05)[0] and os.read(fd, 256):
            quiet_since = time.monotonic()
    return RunningTarget(port=pts, kind="qemu", proc=proc, motor_log=motor_log, _hold_fd=fd,
                         _threads=threads, _tmpdir=tmp)
