"""HIL suite fixtures: one suite for the SIL build, the QEMU image and a real board.

Options (grouped under "motocoach-hil"; names as in pytest-embedded where they exist)::

    --target sil|qemu|serial   default sil; --port given without --target means serial
    --port PATH                a real board's serial port, e.g. /dev/ttyUSB0
    --baud N                   default 921600 (ptys ignore it)
    --hil-frames N             frames streamed by the latency test (default 400)
    --hil-report DIR           where report.json and latency_hist.png go
    --hil-manifest PATH        manifest of the model the unit runs (default: the factory model)
    --hil-firmware PATH        a SIL binary / QEMU ELF to run instead of the default build
                               (e.g. a demo run's: runs/demo/build/sil/coach_sil)

Every option is its own fixture, and the fixture bodies only call plain factory functions
(:mod:`motocoach.device.dut`), so a project can override any one of them in its own conftest.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from motocoach.device import dut as dutlib

REPO = Path(__file__).resolve().parents[1]
FACTORY_MANIFEST = REPO / "firmware/lib/coach_model/manifest.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("motocoach-hil", "moto-edge-coach hardware-in-the-loop")
    g.addoption("--target", choices=dutlib.TARGETS, default=None,
                help="unit to test: sil (default), qemu, or serial (a real board, needs --port)")
    g.addoption("--port", default=None, help="serial port of a real board, e.g. /dev/ttyUSB0")
    g.addoption("--baud", type=int, default=dutlib.DEFAULT_BAUD, help="baud rate (default 921600)")
    g.addoption("--hil-frames", type=int, default=400, help="frames streamed at 20 Hz by the latency test")
    g.addoption("--hil-report", default=None, help="directory for report.json and latency_hist.png")
    g.addoption("--hil-manifest", default=str(FACTORY_MANIFEST),
                help="manifest.json of the model the unit runs (default: the factory model)")
    g.addoption("--hil-firmware", default=None,
                help="SIL binary or QEMU ELF to run instead of the default build (pair it with --hil-manifest)")


# ---- one fixture per option ---------------------------------------------------------------

@pytest.fixture(scope="session")
def hil_port(request: pytest.FixtureRequest) -> str | None:
    return request.config.getoption("--port")


@pytest.fixture(scope="session")
def hil_target(request: pytest.FixtureRequest, hil_port: str | None) -> str:
    return dutlib.resolve_target(request.config.getoption("--target"), hil_port)


@pytest.fixture(scope="session")
def hil_baud(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--baud"))


@pytest.fixture(scope="session")
def hil_frames(request: pytest.FixtureRequest) -> int:
    n = int(request.config.getoption("--hil-frames"))
    if n < 100:
        raise pytest.UsageError("--hil-frames must be at least 100 (p99 needs 100 samples)")
    return n


@pytest.fixture(scope="session")
def hil_report_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   hil_target: str) -> Path:
    opt = request.config.getoption("--hil-report")
    path = Path(opt) if opt else tmp_path_factory.mktemp(f"hil-{hil_target}")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def hil_firmware(request: pytest.FixtureRequest) -> Path | None:
    opt = request.config.getoption("--hil-firmware")
    return Path(opt) if opt else None


@pytest.fixture(scope="session")
def hil_manifest_path(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.getoption("--hil-manifest"))


# ---- the unit and the references ----------------------------------------------------------

@pytest.fixture(scope="session")
def dut(hil_target: str, hil_port: str | None, hil_baud: int, hil_report_dir: Path, hil_firmware: Path | None):
    unit = dutlib.start_dut(hil_target, port=hil_port, baud=hil_baud, workdir=hil_report_dir / "unit",
                            firmware=hil_firmware)
    yield unit
    unit.close()


@pytest.fixture(scope="session")
def link(dut: dutlib.Dut):
    return dut.link


@pytest.fixture(scope="session")
def manifest(hil_manifest_path: Path) -> dict[str, Any]:
    return json.loads(hil_manifest_path.read_text())


@pytest.fixture(scope="session")
def host_engine(hil_manifest_path: Path):
    from motocoach.quantization.host_engine import HostEngine

    return HostEngine.from_manifest(hil_manifest_path)


@pytest.fixture(scope="session")
def ride_telemetry():
    """``ride_telemetry(frames, seed)`` -> (frames, n_features) float32 telemetry from the simulator."""
    from motocoach.training.rides import simulate_telemetry
    from motocoach.training.riders import builtin_riders
    from motocoach.training.tracks import builtin_tracks

    def make(frames: int, seed: int = 0) -> np.ndarray:
        tracks, riders = builtin_tracks(), builtin_riders()
        parts, k = [], 0
        while sum(len(p) for p in parts) < frames:  # concatenate rides over several tracks/riders
            parts.append(simulate_telemetry(tracks[k % len(tracks)], riders[k % len(riders)],
                                            seconds=max(10.0, frames / 20.0), seed=seed + k))
            k += 1
        return np.concatenate(parts)[:frames].astype(np.float32)

    return make


# ---- the report ---------------------------------------------------------------------------

class HilReport:
    """Sections added by tests; written as report.json (+ latency_hist.png) at session end."""

    def __init__(self, directory: Path, target: str) -> None:
        self.directory, self.target = directory, target
        self.sections: dict[str, Any] = {}
        self.latency_s: list[float] | None = None

    def add(self, name: str, data: dict[str, Any]) -> None:
        self.sections[name] = data

    def write(self) -> Path:
        where = {"serial": "hardware"}.get(self.target, self.target)
        doc = {"target": self.target, "where": where, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "notes": "latency = host send -> reply, measured on the host against this target; "
                        "a lost reply is counted as inf (null in latencies_ms) and kept in every statistic",
               "sections": _jsonable(self.sections)}
        if self.latency_s is not None:
            doc["latencies_ms"] = [None if math.isinf(v) else round(v * 1000, 4) for v in self.latency_s]
            dutlib.plot_latency_histogram(self.latency_s, self.directory / "latency_hist.png",
                                          f"HIL latency ({where})")
        path = self.directory / "report.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


@pytest.fixture(scope="session")
def hil_report(hil_report_dir: Path, hil_target: str):
    rep = HilReport(hil_report_dir, hil_target)
    yield rep
    path = rep.write()
    print(f"\nHIL report: {path}")
