"""The ESP-IDF firmware (src/main_espidf.c plus the portable core) compiled against the real
ESP-IDF 5.5.3 headers for every board, by `check-hal.sh` from the ESP-IDF header pack.

The pack lives next to the project (`../shared/espidf`, or `MOTOCOACH_ESPIDF_PACK`). Where it is
absent (a user's machine) these tests skip and `make firmware` with PlatformIO is the real check;
in CI (`CI` set) the pack must be there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
PACK = Path(os.environ.get("MOTOCOACH_ESPIDF_PACK", ROOT.parent / "shared" / "espidf"))
CHECK = PACK / "check-hal.sh"
IN_CI = bool(os.environ.get("CI"))
SUMMARY = re.compile(r"^check-hal: (\d+) checked, (\d+) failed \((.*)\)$", re.M)

pytestmark = pytest.mark.skipif(
    not CHECK.exists() and not IN_CI,
    reason=f"ESP-IDF header pack not found at ../shared/espidf (set MOTOCOACH_ESPIDF_PACK); "
           f"`make firmware BOARD=<id>` with PlatformIO is the real check on this machine")


def run_check(firmware: Path, *args: str) -> tuple[subprocess.CompletedProcess, int, int]:
    """Run check-hal.sh from the project root; return the process and (checked, failed)."""
    p = subprocess.run([str(CHECK), *args, str(firmware)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    m = SUMMARY.search(p.stdout + p.stderr)
    assert m, f"check-hal.sh printed no summary line (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p, int(m.group(1)), int(m.group(2))


def _sources(firmware: Path) -> list[Path]:
    return sorted(firmware.glob("src/**/*.c")) + sorted(firmware.glob("lib/**/*.c"))


def test_every_file_compiles_for_every_board():
    p, checked, failed = run_check(FIRMWARE)
    boards = sorted(FIRMWARE.glob("include/board_*.h"))
    assert failed == 0 and p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert checked == len(_sources(FIRMWARE)) * len(boards) and checked > 0


def test_src_requires_the_split_driver_components():
    """The legacy `driver` umbrella is gone in ESP-IDF 6; the check sees exactly what CMake requires."""
    text = (FIRMWARE / "src" / "CMakeLists.txt").read_text()
    reqs = re.search(r"\bREQUIRES\b(.*?)\)", text, re.S).group(1).split()
    assert "driver" not in reqs
    assert {"esp_driver_gpio", "esp_driver_uart", "esp_driver_ledc", "esp_driver_i2c"} <= set(reqs)


def test_check_fails_when_a_required_component_is_missing(tmp_path):
    """The check can fail: without esp_driver_i2c, the DRV2605 board's I2C header is not visible."""
    fw = tmp_path / "firmware"
    for sub in ("src", "lib", "include"):
        shutil.copytree(FIRMWARE / sub, fw / sub)
    cm = fw / "src" / "CMakeLists.txt"
    cm.write_text(re.sub(r"\besp_driver_i2c\b", "", cm.read_text()))
    p, checked, failed = run_check(fw, "--target", "esp32s3")
    assert p.returncode == 1 and failed >= 1, p.stdout[-4000:]
    assert "driver/i2c_master.h" in p.stdout + p.stderr
