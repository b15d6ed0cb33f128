"""Device-under-test factories and latency statistics, shared by the HIL suite and the demo.

Plain functions (no pytest): :func:`start_dut` builds and starts the SIL or QEMU firmware,
or opens a real board's port, and returns a :class:`Dut` with a connected
:class:`~motocoach.device.link.SerialLink`. :func:`stream` sends telemetry at a fixed rate
and records the host-side send -> reply latency of every frame; a lost reply is recorded
as ``inf``, never dropped.

>>> s = latency_summary([0.001, 0.002, 0.003, float("inf")])
>>> (s["frames"], s["timeouts"], s["p50_ms"], s["max_ms"])
(4, 1, 2.0, inf)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from motocoach.device.link import DeviceNackError, DeviceTimeout, SerialLink
from motocoach.errors import ConfigError
from motocoach.protocol.spec import MsgType

TARGETS = ("sil", "qemu", "serial")
DEFAULT_BAUD = 921600


@dataclass
class Dut:
    """A connected unit. ``target`` is the running SIL/QEMU process (None for a real board)."""

    kind: str
    port: str
    link: SerialLink
    target: Any = None
    motor_log: Path | None = None

    @property
    def where(self) -> str:
        """Where measurements on this unit are made: sil, qemu or hardware."""
        return {"serial": "hardware"}.get(self.kind, self.kind)

    def close(self) -> None:
        self.link.close()
        if self.target is not None:
            self.target.stop()

    def __enter__(self) -> "Dut":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_target(target: str | None, port: str | None) -> str:
    """``--target`` wins; ``--port`` alone means a real board; otherwise SIL."""
    kind = target or ("serial" if port else "sil")
    if kind not in TARGETS:
        raise ConfigError(f"target {kind!r} is not one of {', '.join(TARGETS)}")
    if kind == "serial" and not port:
        raise ConfigError("--target serial needs --port, e.g. --port /dev/ttyUSB0")
    return kind


def start_firmware(kind: str, firmware: Path, **kwargs: Any) -> Any:
    """Start a SIL binary or QEMU ELF other than the default build (e.g. a demo run's).

    ``kwargs`` go to ``targets.start_sil`` / ``targets.start_qemu``.
    """
    from motocoach import targets

    start = {"sil": targets.start_sil, "qemu": targets.start_qemu}[kind]
    return start(firmware=Path(firmware), **kwargs)


def start_dut(kind: str, *, port: str | None = None, baud: int = DEFAULT_BAUD, workdir: Path | None = None,
              timeout: float = 0.5, firmware: Path | None = None) -> Dut:
    """Start (sil/qemu) or open (serial) a unit and connect a link to it.

    ``firmware``: run this SIL binary / QEMU ELF instead of the default build in firmware/build/.
    The motor log is kept for SIL only: its clock is the host's CLOCK_MONOTONIC, so tests can
    line it up with host timestamps (QEMU's log uses guest time).
    """
    from motocoach import targets  # the firmware targets' factories

    if kind == "serial":
        if not port:
            raise ConfigError("a real board needs a port, e.g. /dev/ttyUSB0")
        return Dut(kind, port, SerialLink(port, baud, timeout))
    if kind == "sil":
        motor_log = (workdir / "motor_log.csv") if workdir else None
        if motor_log is not None:
            motor_log.parent.mkdir(parents=True, exist_ok=True)
            motor_log.unlink(missing_ok=True)
        slots = (workdir / "slots.bin") if workdir else None
        if firmware is not None:
            running = start_firmware("sil", firmware, motor_log=motor_log, slots=slots)
        else:
            targets.build_sil()
            running = targets.start_sil(motor_log=motor_log, slots=slots)
    elif kind == "qemu":
        if firmware is not None:
            running = start_firmware("qemu", firmware)
        else:
            targets.build_qemu()
            running = targets.start_qemu()
    else:
        raise ConfigError(f"unknown target {kind!r}")
    try:
        link = SerialLink(running.port, baud, timeout)
    except Exception:
        running.stop()
        raise
    return Dut(kind, running.port, link, running, running.motor_log if kind == "sil" else None)


# ---- streaming ----------------------------------------------------------------------------

@dataclass
class StreamResult:
    """Per-frame outcome of :func:`stream` (index i = telemetry row i)."""

    latency_s: list[float] = field(default_factory=list)  #: inf = no reply within the timeout
    outputs: list[tuple[int, int, int] | None] = field(default_factory=list)  #: device out0..out2
    haptic: list[dict[str, Any] | None] = field(default_factory=list)
    nacks: int = 0
    late_starts: int = 0  #: frames sent more than one period behind schedule
    wall_s: float = 0.0
    #: lost frames whose reply did arrive after the timeout: row index -> real latency (s).
    #: They stay lost (inf) in ``latency_s``; this only tells a late reply from a missing one.
    late_replies: dict[int, float] = field(default_factory=dict)


def stream(link: SerialLink, telemetry: np.ndarray, *, rate_hz: float = 20.0, timeout: float | None = None,
           progress: Any = None) -> StreamResult:
    """Send each row at ``rate_hz`` on an absolute schedule; wait for its HAPTIC reply.

    ``timeout`` defaults to one period: a reply later than the next frame's slot is lost.
    ``progress`` is an optional callable ``(done, total)``.
    """
    period = 1.0 / rate_hz
    wait = period if timeout is None else timeout
    res = StreamResult()
    lost: dict[int, tuple[int, float]] = {}  # seq -> (row, sent)
    t0 = time.perf_counter()
    for i, row in enumerate(np.asarray(telemetry, np.float32)):
        due = t0 + i * period
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > period:
            res.late_starts += 1
        try:
            h = link.telemetry([float(v) for v in row], timeout=wait)
        except DeviceTimeout as e:
            lost[e.seq] = (i, e.sent_at)
            res.latency_s.append(math.inf)
            res.outputs.append(None)
            res.haptic.append(None)
        except DeviceNackError:
            res.nacks += 1
            res.latency_s.append(math.inf)
            res.outputs.append(None)
            res.haptic.append(None)
        else:
            res.latency_s.append(h["latency_s"])
            res.outputs.append((h["out0"], h["out1"], h["out2"]))
            res.haptic.append(h)
        if progress is not None:
            progress(i + 1, len(telemetry))
    res.wall_s = time.perf_counter() - t0
    time.sleep(min(1.0, 10 * wait))  # give stragglers a chance to show up before we look
    for f in list(link.unmatched):
        if f.seq in lost and f.type is MsgType.HAPTIC:
            row, sent = lost.pop(f.seq)
            res.late_replies[row] = f.received_at - sent
    return res


def latency_summary(latency_s: Sequence[float]) -> dict[str, float]:
    """frames, timeouts and p50/p95/p99/max in ms over ALL frames (lost = inf, kept in).

    Percentiles are order statistics (numpy ``inverted_cdf``: an actual sample, no
    interpolation), so one lost frame in 100 already makes p99 infinite.
    """
    a = np.asarray(latency_s, np.float64) * 1000.0
    if a.size == 0:
        raise ValueError("no latency samples")
    out: dict[str, float] = {"frames": int(a.size), "timeouts": int(np.isinf(a).sum())}
    for q in (50, 95, 99):
        out[f"p{q}_ms"] = float(np.percentile(a, q, method="inverted_cdf"))
    out["max_ms"] = float(a.max())
    finite = a[np.isfinite(a)]
    out["mean_ms"] = float(finite.mean()) if finite.size else math.inf
    return out


def plot_latency_histogram(latency_s: Sequence[float], path: Path, title: str, *, late: int = 0) -> Path:
    """PNG latency histogram with the 50 ms budget line; see :mod:`motocoach.device.hil_summary`."""
    from motocoach.device.hil_summary import plot_latency_histogram as plot

    return plot(latency_s, path, title, late=late)


def read_motor_log(path: Path | None) -> np.ndarray:
    """SIL ``--motor-log`` rows as an (N, 4) int64 array: t_us (CLOCK_MONOTONIC), motor, duty, freq.

    Returns an empty array when the target has no motor log (QEMU, a real board).
    """
    if path is None or not Path(path).exists():
        return np.zeros((0, 4), np.int64)
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) == 4 and all(p.lstrip("-").isdigit() for p in parts):
            rows.append([int(p) for p in parts])
    return np.asarray(rows, np.int64).reshape(-1, 4)


def motors_on_between(log: np.ndarray, t0_us: int, t1_us: int) -> bool:
    """True if any motor_set in [t0, t1) had a non-zero duty."""
    sel = (log[:, 0] >= t0_us) & (log[:, 0] < t1_us)
    return bool((log[sel, 2] > 0).any())


def first_all_off_after(log: np.ndarray, t_us: int) -> int | None:
    """Earliest time >= ``t_us`` from which both motors stay at duty 0 (to the end of the log)."""
    state = {m: 0 for m in (0, 1)}
    for t, motor, duty, _ in log[log[:, 0] < t_us].tolist():  # the state when the window opens
        state[motor] = duty
    off_since: int | None = t_us if not any(state.values()) else None
    for t, motor, duty, _ in log[log[:, 0] >= t_us].tolist():
        state[motor] = duty
        if any(state.values()):
            off_since = None
        elif off_since is None:
            off_since = t
    return off_since


def now_us() -> int:
    """Host CLOCK_MONOTONIC in microseconds: the SIL motor log's clock."""
    return time.monotonic_ns() // 1000
