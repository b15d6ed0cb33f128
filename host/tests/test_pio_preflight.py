"""`make firmware` offline: the missing platform is found in a second, with the README's hint, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from motocoach import pio_preflight as pf
from motocoach.errors import ToolError

REPO = Path(__file__).resolve().parents[2]
PIO = REPO / ".venv" / "bin" / "pio"


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return f"127.0.0.1:{port}"


def test_pinned_platform_is_read_from_platformio_ini():
    assert pf.pinned_platform(REPO / "firmware" / "platformio.ini") == "espressif32@6.13.0"


def test_installed_means_the_pinned_version():
    listed = [{"name": "espressif32", "version": "6.12.0"}, {"name": "native", "version": "1.2.1"}]
    assert not pf.is_installed("espressif32@6.13.0", listed)
    assert pf.is_installed("espressif32@6.13.0", listed + [{"name": "espressif32", "version": "6.13.0"}])


def test_reachable_sees_a_listening_port_and_not_a_closed_one():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        assert pf.reachable(f"127.0.0.1:{srv.getsockname()[1]}", timeout=1)
    finally:
        srv.close()
    assert not pf.reachable(_closed_port(), timeout=1)


@pytest.mark.skipif(not PIO.exists(), reason="PlatformIO is installed by `make setup`")
def test_offline_without_the_platform_exits_2_fast_with_the_hint(tmp_path):
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(tmp_path / "pio"))  # no platforms installed
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "motocoach.pio_preflight", str(REPO / "firmware"), "--pio", str(PIO),
                        "--registry", _closed_port()], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2, r.stderr
    assert time.monotonic() - t0 < 20
    assert "espressif32@6.13.0 is not installed" in r.stderr and "make sil" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_pio_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match="make setup"):
        pf.check(REPO / "firmware", str(tmp_path / "no-pio"))
