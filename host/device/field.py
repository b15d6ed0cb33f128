"""``device list`` (serial ports, and who answers on them) and ``device monitor`` (live cues and counters).

Library functions first, so other programs can use them without the CLI:

- :func:`list_ports` lists the serial ports pyserial sees (plus any extra ones, e.g. a SIL pty) and
  asks each for its IDENTITY when ``probe`` is on.
- :func:`monitor` streams telemetry at 20 Hz to a unit and calls back with each cue and, once a second,
  the unit's STATUS counters. A unit only answers frames, so the monitor is the one sending them:
  by default a simulated ride, or rows from a CSV in schema order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from motocoach.errors import ConfigError, MotoCoachError


def list_ports(extra: list[str] | None = None, *, probe: bool = True, baud: int = 921600,
               timeout: float = 0.3) -> list[dict[str, Any]]:
    """One dict per port: ``port``, ``description``, ``hwid``, and ``unit`` (identity) or ``answer``."""
    from serial.tools import list_ports as lp

    found = {p.device: {"port": p.device, "description": p.description, "hwid": p.hwid}
             for p in sorted(lp.comports(), key=lambda p: p.device)}
    for port in extra or []:
        found.setdefault(port, {"port": port, "description": "given with --port", "hwid": "n/a"})
    rows = list(found.values())
    for row in rows:
        if probe:
            row.update(identify_port(row["port"], baud=baud, timeout=timeout))
    return rows


def identify_port(port: str, *, baud: int = 921600, timeout: float = 0.3) -> dict[str, Any]:
    """``{"unit": {...}}`` if a motocoach unit answers HELLO on ``port``, else ``{"answer": reason}``."""
    from motocoach.device import ops
    from motocoach.device.link import DeviceTimeout, SerialLink

    try:
        with SerialLink(port, baud=baud, timeout=timeout) as link:
            d = ops.identify(link, timeout=timeout)
    except DeviceTimeout:
        return {"unit": None, "answer": "no motocoach unit answered"}
    except MotoCoachError as e:
        return {"unit": None, "answer": str(e).split(". ")[0]}
    return {"unit": {"board": d.board, "firmware": d.firmware, "model_id": d.model_id,
                     "active_slot": d.active_slot, "selftest_ok": bool(d.identity["selftest_ok"])}, "answer": "ok"}


@dataclass
class MonitorState:
    """What the monitor shows; updated after every frame."""

    frames: int = 0
    timeouts: int = 0
    last: dict[str, Any] = field(default_factory=dict)  #: the last HAPTIC reply
    features: dict[str, float] = field(default_factory=dict)  #: the last telemetry row, by name
    latency_ms: list[float] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)  #: the unit's last STATUS

    def p(self, q: float) -> float:
        a = [v for v in self.latency_ms[-200:] if math.isfinite(v)]
        return float(np.percentile(a, q)) if a else math.nan


def ride_rows(seconds: float, seed: int = 0, track: Optional[str] = None, rider: str = "amateur",
              csv: Optional[Path] = None) -> np.ndarray:
    """Telemetry rows to stream: a CSV (schema order, optional header) or a simulated ride."""
    from motocoach.schema import load_schema

    n = load_schema().n_features
    if csv is not None:
        try:
            rows = np.loadtxt(csv, delimiter=",", dtype=np.float32, ndmin=2,
                              skiprows=1 if not csv.read_text()[:1].lstrip("-").replace(".", "").isdigit() else 0)
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"--csv {csv}: cannot read telemetry rows ({e})") from None
        if rows.shape[1] != n:
            raise ConfigError(f"--csv {csv}: {rows.shape[1]} columns, the feature schema has {n}")
        return rows
    from motocoach.training.rides import simulate_telemetry
    from motocoach.training.tracks import builtin_tracks

    return simulate_telemetry(track or builtin_tracks()[0], rider, seconds=max(seconds, 1.0), seed=seed)


def monitor(link: Any, rows: np.ndarray, *, seconds: float = 10.0, rate_hz: float = 20.0,
            on_update: Callable[[MonitorState], None] | None = None, status_every_s: float = 1.0) -> MonitorState:
    """Stream ``rows`` at ``rate_hz`` for ``seconds`` (0 = all rows, looping until interrupted)."""
    from motocoach.device.link import DeviceTimeout
    from motocoach.schema import load_schema

    names = load_schema().feature_names
    st = MonitorState()
    period, t0, next_status = 1.0 / rate_hz, time.perf_counter(), 0.0
    i = 0
    while seconds <= 0 or time.perf_counter() - t0 < seconds:
        row = rows[i % len(rows)]
        due = t0 + i * period
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        try:
            st.last = link.telemetry([float(v) for v in row], timeout=period)
            st.latency_ms.append(st.last["latency_s"] * 1000)
        except DeviceTimeout:
            st.timeouts += 1
            st.latency_ms.append(math.inf)
        st.frames += 1
        st.features = dict(zip(names, (float(v) for v in row)))
        if time.perf_counter() - t0 >= next_status:
            st.counters = link.status()
            next_status += status_every_s
        if on_update:
            on_update(st)
        i += 1
    st.counters = link.status()
    return st


def register(app: Any) -> None:
    """Add ``device list`` and ``device monitor`` to the ``device`` group."""
    import json

    import typer
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from motocoach.device.cli import BAUD, PORT, device_app

    console = Console()

    @device_app.command("list")
    def list_cmd(port: list[str] = typer.Option([], "--port", "-p", help="Also probe this port (repeat), e.g. a "
                                                "SIL/QEMU pty that the system does not list."),
                 probe: bool = typer.Option(True, "--probe/--no-probe", help="Ask each port for the unit's identity."),
                 baud: int = BAUD, as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """List serial ports, with the identity of the unit that answers on each.

        Example: motocoach device list --json
        """
        rows = list_ports(port, probe=probe, baud=baud)
        if as_json:
            print(json.dumps(rows))
            return
        t = Table(title=f"{len(rows)} serial port(s)")
        for col in ("port", "description", "unit"):
            t.add_column(col)
        for r in rows:
            u = r.get("unit")
            who = (f"{u['board']}  fw {u['firmware']}  model {u['model_id']} ({u['active_slot']})" if u
                   else r.get("answer", "not probed"))
            t.add_row(r["port"], r["description"], who)
        console.print(t)

    @device_app.command("monitor")
    def monitor_cmd(port: str = PORT, baud: int = BAUD,
                    seconds: float = typer.Option(10.0, "--seconds", help="How long to run (0 = until Ctrl-C)."),
                    csv: Optional[Path] = typer.Option(None, "--csv", help="Telemetry rows to send (schema order); "
                                                       "default: a simulated ride."),
                    track: Optional[str] = typer.Option(None, "--track", help="Track of the simulated ride."),
                    rider: str = typer.Option("amateur", "--rider", help="Rider of the simulated ride.")) -> None:
        """Drive the unit with telemetry at 20 Hz and show its cues, latency and counters live.

        Example: motocoach device monitor --port /dev/ttyUSB0 --seconds 30
        """
        from motocoach.device.link import SerialLink

        rows = ride_rows(seconds or 60.0, track=track, rider=rider, csv=csv)

        def render(st: MonitorState) -> Table:
            t = Table(title=f"unit on {port}: {st.frames} frames, {st.timeouts} without a reply in 50 ms",
                      show_header=False)
            f = st.features
            t.add_row("telemetry", "  ".join(f"{k} {v:.2f}" for k, v in list(f.items())[:6]))
            h = st.last
            if h:
                t.add_row("cue", f"left {h['left']:3d}  right {h['right']:3d}  {h['freq_hz']} Hz"
                          + ("  [red]FAILSAFE[/]" if h.get("flags") else ""))
                t.add_row("latency", f"p50 {st.p(50):.2f} ms  p99 {st.p(99):.2f} ms (last 200), "
                          f"device infer {h['infer_us']} us")
            c = st.counters
            if c:
                t.add_row("counters", f"{c['frames_ok']} ok, {c['crc_errors']} CRC, {c['frame_errors']} bad frames, "
                          f"{c['value_errors']} bad values, {c['failsafe_trips']} failsafe trips, "
                          f"{c['deadline_misses']} deadline misses, state {'ok' if c['state'] == 0 else 'FAULT'}")
            return t

        with SerialLink(port, baud=baud, timeout=0.5) as link, Live(render(MonitorState()), console=console,
                                                                     refresh_per_second=4) as live:
            try:
                st = monitor(link, rows, seconds=seconds, on_update=lambda s: live.update(render(s)))
            except KeyboardInterrupt:
                return
        console.print(f"sent {st.frames} frames, {st.timeouts} without a reply in 50 ms")
