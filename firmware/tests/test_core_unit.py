"""The C unit tests of the core (tests/c), on the host with ASan/UBSan and on rv32 under QEMU."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Locally a missing tool skips (saying what installs it); in CI it must fail, since `make setup`
# installs every tool there.
IN_CI = bool(os.environ.get("CI"))

FIRMWARE = Path(__file__).resolve().parents[1]


def make(*targets: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(FIRMWARE), *targets], capture_output=True, text=True,
                          timeout=timeout)



def _summary(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) checks, (\d+) failed", out)
    assert m, f"no test summary in output:\n{out[-2000:]}"
    return int(m.group(1)), int(m.group(2))


def test_core_unit_tests_on_host_with_sanitizers():
    r = make("unit")
    checks, failed = _summary(r.stdout)
    assert r.returncode == 0 and failed == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert checks > 250  # the suite really ran


@pytest.mark.skipif(not IN_CI and (shutil.which("qemu-system-riscv32") is None or shutil.which("riscv64-unknown-elf-gcc") is None),
                    reason="needs qemu-system-misc and gcc-riscv64-unknown-elf (make setup)")
def test_core_unit_tests_on_qemu_rv32_semihosting():
    r = make("unit-qemu")
    checks, failed = _summary(r.stdout + r.stderr)  # QEMU prints the guest's semihosting output on stderr
    # the guest's main() return value is QEMU's exit status
    assert r.returncode == 0 and failed == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert checks > 250
