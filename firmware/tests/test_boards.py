"""boards/*.toml are the source of the board headers and the PlatformIO envs; check they agree."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from motocoach import boards
from motocoach.errors import ConfigError

# Locally a missing tool skips (saying what installs it); in CI it must fail, since `make setup`
# installs every tool there.
IN_CI = bool(os.environ.get("CI"))

FIRMWARE = Path(__file__).resolve().parents[1]
PIO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pio"


def test_three_boards_with_esp32dev_default():
    b = boards.load_boards()
    assert list(b)[0] == "esp32dev" and b["esp32dev"].default
    assert {"esp32dev", "esp32-s3", "esp32-c3"} <= set(b)
    assert all(x.pwm_carrier_hz > 20_000 for x in b.values())
    assert {x.driver for x in b.values()} == {"erm_pwm", "lra_drv2605"}


def test_generated_files_are_up_to_date():
    assert boards.stale_files() == [], "run `motocoach boards generate`"


@pytest.mark.skipif(not PIO.exists() and not IN_CI, reason="PlatformIO is installed by `make setup`")
def test_pio_project_config_parses_and_matches_boards(tmp_path):
    # A private core dir: `pio project config` needs no network, and nothing lands in ~/.platformio.
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(tmp_path / "pio"))
    r = subprocess.run([str(PIO), "project", "config", "--json-output"], cwd=FIRMWARE, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sections = {name: dict(items) for name, items in json.loads(r.stdout)}
    envs = {k.split(":", 1)[1]: v for k, v in sections.items() if k.startswith("env:")}
    defs = boards.load_boards()
    assert set(envs) == set(defs)
    assert sections["platformio"]["default_envs"] == ["esp32dev"]
    for bid, e in envs.items():
        b = defs[bid]
        assert e["board"] == b.pio_board
        assert e["framework"] == ["espidf"]
        assert e["platform"] == "espressif32@6.13.0"  # ESP-IDF 5.5.3, what check-hal.sh checks against
        assert e["platform_packages"] == ["platformio/framework-espidf@~3.50503.0"]
        assert e["board_build.partitions"] == "partitions_ab.csv"
        assert e["monitor_speed"] == b.baud
        assert f'-DCOACH_BOARD_HEADER=\\"{b.header_name}\\"' in e["build_flags"]
        assert (FIRMWARE / "include" / b.header_name).exists()
    assert (FIRMWARE / "partitions_ab.csv").exists()


def test_partition_table_has_ab_apps_and_two_model_slots():
    rows = [[c.strip() for c in line.split(",")] for line in (FIRMWARE / "partitions_ab.csv").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    names = {r[0]: r for r in rows}
    assert names["ota_0"][2] == "ota_0" and names["ota_1"][2] == "ota_1" and "otadata" in names
    assert names["model_a"][1] == "data" and names["model_b"][1] == "data"
    assert names["model_a"][4] == names["model_b"][4]  # equal slot sizes


def test_partition_table_fits_every_boards_flash():
    """ESP-IDF's default flash size (2 MB) is too small; each chip's sdkconfig.defaults.<mcu> sets the board's."""
    rows = [[c.strip() for c in line.split(",")] for line in (FIRMWARE / "partitions_ab.csv").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    end = max(int(r[3], 0) + int(r[4], 0) for r in rows)
    assert end > 2 * 1024 * 1024
    for b in boards.load_boards().values():
        assert end <= b.flash_mb * 1024 * 1024, b.id
        text = (FIRMWARE / f"sdkconfig.defaults.{b.mcu}").read_text()
        assert f"CONFIG_ESPTOOLPY_FLASHSIZE_{b.flash_mb}MB=y" in text


def test_boards_sharing_a_chip_must_agree_on_flash_size():
    b = boards.load_boards()
    other = dataclasses.replace(b["esp32dev"], id="esp32dev-16", default=False, flash_mb=16)
    with pytest.raises(ConfigError, match="share mcu esp32"):
        boards.render_sdkconfig_defaults({**b, other.id: other})


BASE = Path(__file__).resolve().parents[2] / "boards" / "esp32dev.toml"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("pwm_carrier_hz = 25000", "pwm_carrier_hz = 8000"), "audible"),
    (lambda t: t.replace('driver = "erm_pwm"', 'driver = "piezo"'), "unknown"),
    (lambda t: t.replace("right_pin = 26", "right_pin = 25"), "different pins"),
    (lambda t: t.replace("duty_cap_permille = 900", "duty_cap_permille = 1500"), "1..1000"),
    (lambda t: t.replace('driver = "erm_pwm"', 'driver = "lra_drv2605"'), "LRA"),
    (lambda t: t.replace("left_pin = 25", 'left_pin = "25"'), "integer"),
    (lambda t: t.replace("[console]", "[console\n"), "TOML"),
    (lambda t: t.replace('id = "esp32dev"', 'id = "ESP32 DEV with a very long name"'), "id"),
])
def test_bad_board_files_are_refused(edit, message):
    with pytest.raises(ConfigError, match=message):
        boards.parse_board(edit(BASE.read_text()), "boards/test.toml")


def test_exactly_one_default(tmp_path):
    for name in ("esp32dev", "esp32-c3"):
        shutil.copy(BASE.parent / f"{name}.toml", tmp_path)
    (tmp_path / "esp32-c3.toml").write_text((tmp_path / "esp32-c3.toml").read_text().replace(
        'name = "ESP32-C3', 'default = true\nname = "ESP32-C3'))
    with pytest.raises(ConfigError, match="default"):
        boards.load_boards(tmp_path)


def test_boards_verbs():
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    boards.register(app)
    r = CliRunner().invoke(app, ["boards", "generate", "--check"])
    assert r.exit_code == 0 and "up to date" in r.output
    r = CliRunner().invoke(app, ["boards", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "esp32-s3" in r.output and "lra_drv2605" in r.output
