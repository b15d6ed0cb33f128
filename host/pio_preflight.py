"""Before ``make firmware`` / ``make flash``: is the pinned PlatformIO platform there, or reachable?

Offline, ``pio run`` waits about 61 s for PlatformIO's registry and then prints a bare
``HTTPClientError:``. This check takes a second: if the platform that ``platformio.ini`` pins is
not installed and the registry cannot be reached, it says so with the README's hint and exits 2.

Example: python -m motocoach.pio_preflight firmware --pio .venv/bin/pio
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from motocoach.errors import ConfigError, ToolError

REGISTRY = "api.registry.platformio.org:443"
HINT = ("the ESP32 build needs PlatformIO's package registry (it downloads the espressif32 platform, "
        "the Xtensa/RISC-V toolchains and ESP-IDF). Build on a machine that can reach it, or install the "
        "platform on a connected machine of the same OS (`pio pkg install -g --platform {spec}`) and copy its ~/.platformio. Offline, `make sil` and "
        "`make qemu` still build, and `make test` checks the ESP-IDF sources against the real headers.")


def pinned_platform(ini: Path) -> str:
    """The ``platform =`` of the shared ``[env]`` section, e.g. ``espressif32@6.13.0``."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        cp.read_string(ini.read_text())
        return cp["env"]["platform"].strip()
    except (OSError, configparser.Error, KeyError) as e:
        raise ConfigError(f"{ini}: cannot read the [env] platform ({e}); run `motocoach boards generate`") from None


def is_installed(spec: str, platforms: list[dict]) -> bool:
    """Whether ``pio platform list --json-output`` shows the platform ``name@version`` (or any version)."""
    name, _, version = spec.partition("@")
    return any(p.get("name") == name and (not version or p.get("version") == version) for p in platforms)


def installed_platforms(pio: str, env: dict[str, str] | None = None) -> list[dict]:
    """Platforms PlatformIO has installed (works offline)."""
    try:
        r = subprocess.run([pio, "platform", "list", "--json-output"], capture_output=True, text=True,
                           timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolError(f"cannot run {pio} ({e}); run `make setup`") from None
    if r.returncode != 0:
        raise ToolError(f"`pio platform list` failed: {r.stderr.strip()[-300:]}")
    try:
        return json.loads(r.stdout or "[]")
    except ValueError:
        raise ToolError(f"`pio platform list` printed no JSON: {r.stdout[:200]!r}") from None


def reachable(hostport: str, timeout: float = 3.0) -> bool:
    """A TCP connection to ``host:port`` within ``timeout`` s (name lookup included)."""
    host, _, port = hostport.rpartition(":")
    ok: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                ok.append(True)
        except (OSError, ValueError):
            pass
    t = threading.Thread(target=attempt, daemon=True)  # name lookups have no timeout of their own
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def check(firmware: Path, pio: str, registry: str = REGISTRY) -> str:
    """Return a one-line status, or raise ToolError with the hint when the build cannot work."""
    spec = pinned_platform(firmware / "platformio.ini")
    if is_installed(spec, installed_platforms(pio)):
        return f"platform {spec} is installed"
    if reachable(registry):
        return f"platform {spec} is not installed; PlatformIO will download it from {registry}"
    raise ToolError(f"platform {spec} is not installed and PlatformIO's registry ({registry}) cannot be "
                    f"reached: {HINT.format(spec=spec)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m motocoach.pio_preflight", description=__doc__.split("\n")[0],
                                 epilog="Example: python -m motocoach.pio_preflight firmware --pio .venv/bin/pio")
    ap.add_argument("firmware", type=Path, help="Folder with platformio.ini.")
    ap.add_argument("--pio", default="pio", help="The pio executable.")
    ap.add_argument("--registry", default=os.environ.get("MOTOCOACH_PIO_REGISTRY", REGISTRY),
                    help="host:port of PlatformIO's registry (default: %(default)s).")
    a = ap.parse_args(argv)
    try:
        print(f"firmware: {check(a.firmware, a.pio, a.registry)}")
    except (ConfigError, ToolError) as e:
        print(f"make firmware: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
