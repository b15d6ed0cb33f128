"""HIL suite fixtures: one suite for the SIL build, the QEMU image and a real board.

Options (grouped under "motocoach-hil"; names as in pytest-embedded where they exist)::

    --target sil|qemu|serial   default sil; --port given without --target means serial
    --port PATH                a real board's serial port, e.g. /dev/ttyUSB0
    --baud N                   default 921600 (ptys ignore it)
    --hil-frames N             frames streamed by the latency test (default 400)
    --hil-report DIR           where report.json, latency_hist.png and junit.xml go
    --hil-manifest PATH        manifest of the model the unit runs (default: the factory model)
    --hil-firmware PATH        a SIL binary / QEMU ELF to run instead of the default build
                               (e.g. a demo run's: runs/demo/build/sil/coach_sil)

Every option is its own fixture, and the fixture bodies only call plain factory functions
(:mod:`motocoach.device.dut`), so a project can override any one of them in its own conftest.

At the end pytest prints a HIL summary (target, port, baud, latency percentiles against the 50 ms
budget, late/lost frames, mismatches, host load, report path). With ``--hil-report`` (as ``make hil``
gives it) a JUnit XML file is written there too unless ``--junitxml`` says otherwise. A unit that
cannot be started or opened stops the session once, with the reason, instead of failing every test.
Tests marked ``timing`` hold the timing assertions; the others are functional and do not depend on
how loaded the host is.
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
from motocoach.device import hil_summary
from motocoach.errors import MotoCoachError

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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timing: asserts a time limit (unreliable on a loaded host for sil/qemu)")
    report = config.getoption("--hil-report", default=None)
    if report and not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(Path(report) / "junit.xml")  # read by the junitxml plugin's configure


_REPORT = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    done = config.stash.get(_REPORT, None)
    if not done:
        return
    terminalreporter.section("HIL summary")
    for line in hil_summary.summary_lines(done["doc"], done["path"], getattr(config.option, "xmlpath", None)):
        terminalreporter.write_line(line)


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
    try:
        unit = dutlib.start_dut(hil_target, port=hil_port, baud=hil_baud, workdir=hil_report_dir / "unit",
                                firmware=hil_firmware)
    except MotoCoachError as e:
        hint = ("list the serial ports with `motocoach device list`; give one with PORT=... (make hil) or --port"
                if hil_target == "serial" else "see hil_tests/README.md")
        pytest.exit(f"HIL setup: cannot start the {hil_target} unit: {e}\nhint: {hint}", returncode=2)
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

    def __init__(self, directory: Path, target: str, port: str | None = None, baud: int | None = None) -> None:
        self.directory, self.target, self.port, self.baud = directory, target, port, baud
        self.sections: dict[str, Any] = {}
        self.latency_s: list[float] | None = None
        self.late = 0  # lost frames whose reply came after the budget
        load = hil_summary.host_load()
        self.host = {"cpus": load["cpus"], "load_1m_start": load["load_1m"]}

    def add(self, name: str, data: dict[str, Any]) -> None:
        self.sections[name] = data

    def write(self) -> tuple[Path, dict[str, Any]]:
        where = {"serial": "hardware"}.get(self.target, self.target)
        self.host["load_1m_end"] = hil_summary.host_load()["load_1m"]
        doc = {"target": self.target, "where": where, "port": self.port, "baud": self.baud,
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": self.host,
               "notes": "latency = host send -> reply, measured on the host against this target. A frame "
                        "without a reply within the 50 ms budget counts as inf (null in latencies_ms) in every "
                        "statistic: 'late' ones were answered after the budget, 'lost' ones never. On sil/qemu "
                        "the unit shares this host: a load above the CPU count makes timing unreliable.",
               "sections": _jsonable(self.sections)}
        if self.latency_s is not None:
            doc["latencies_ms"] = [None if math.isinf(v) else round(v * 1000, 4) for v in self.latency_s]
            dutlib.plot_latency_histogram(self.latency_s, self.directory / "latency_hist.png",
                                          f"HIL latency ({where})", late=self.late)
        path = self.directory / "report.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return path, doc


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
def hil_report(request: pytest.FixtureRequest, hil_report_dir: Path, hil_target: str, hil_port: str | None,
               hil_baud: int, dut: dutlib.Dut):
    rep = HilReport(hil_report_dir, hil_target, dut.port, hil_baud)
    yield rep
    path, doc = rep.write()
    request.config.stash[_REPORT] = {"path": str(path), "doc": doc}
