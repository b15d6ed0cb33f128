"""Firmware bundles are checked like model bundles: chip from the board file, unknown boards refused,
and every image read like `esptool image-info` (magic byte, chip id, checksum) before anything is flashed."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from motocoach import bundle as bundles
from motocoach import esp_image, keys
from motocoach.cli import main
from motocoach.errors import BundleError


def _random(n: int = 4096) -> bytes:
    return random.Random(18).randbytes(n)


@pytest.mark.parametrize("chip", ["esp32", "esp32c3", "esp32s3"])
def test_a_valid_image_passes_and_esptool_image_info_agrees(tmp_path, chip):
    data = esp_image.make_test_image(chip)
    info = esp_image.check_image(data, chip, 0x10000)
    assert info.kind == "app" and info.chip == chip and info.segments == 1
    (tmp_path / "a.bin").write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(tmp_path / "a.bin")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "(valid)" in r.stdout


def test_4kb_of_random_bytes_are_refused():
    with pytest.raises(BundleError, match="not an ESP firmware image"):
        esp_image.check_image(_random(), "esp32", 0x10000)


def test_an_image_for_another_chip_is_refused():
    with pytest.raises(BundleError, match="built for esp32c3"):
        esp_image.check_image(esp_image.make_test_image("esp32c3"), "esp32", 0x10000)


def test_a_damaged_image_fails_its_checksum():
    data = bytearray(esp_image.make_test_image("esp32"))
    data[200] ^= 0x01
    with pytest.raises(BundleError, match="checksum"):
        esp_image.check_image(bytes(data), "esp32", 0x10000)


def test_partition_table_otadata_and_a_missing_app():
    assert esp_image.check_image(b"\xaa\x50" + bytes(30), "esp32", 0x8000).kind == "partition-table"
    assert esp_image.check_image(b"\xff" * 8192, "esp32", 0xE000).kind == "otadata"
    with pytest.raises(BundleError, match="partition table"):
        esp_image.check_image(_random(), "esp32", 0x8000)
    with pytest.raises(BundleError, match="no app image"):
        esp_image.check_images([(0x1000, esp_image.make_test_image("esp32"))], "esp32")


def test_chip_comes_from_the_board_file_and_unknown_boards_are_refused():
    assert bundles.firmware_chip(["esp32-c3"]) == "esp32c3"
    assert bundles.firmware_chip(["esp32dev"]) == "esp32"
    with pytest.raises(BundleError, match="unknown board esp32-c4"):
        bundles.firmware_chip(["esp32-c4"])
    with pytest.raises(BundleError, match="different chips"):
        bundles.firmware_chip(["esp32dev", "esp32-s3"])


def _create(tmp_path: Path, *args: str) -> int:
    return main(["bundle", "create", "--out", str(tmp_path / "fw.mcb"), "--firmware-version", "1.0.0",
                 "--key", str(keys.dev_private_key()), *args])


def test_cli_writes_the_boards_chip_and_refuses_random_bytes_and_unknown_boards(tmp_path, capsys):
    (tmp_path / "c3.bin").write_bytes(esp_image.make_test_image("esp32c3"))
    assert _create(tmp_path, "--board", "esp32-c3", "--image", f"0x10000:{tmp_path / 'c3.bin'}") == 0
    assert bundles.read(tmp_path / "fw.mcb").firmware["chip"] == "esp32c3"
    (tmp_path / "fw.mcb").unlink()
    (tmp_path / "rand.bin").write_bytes(_random())
    assert _create(tmp_path, "--board", "esp32dev", "--image", f"0x10000:{tmp_path / 'rand.bin'}") == 2
    assert "not an ESP firmware image" in capsys.readouterr().err
    assert _create(tmp_path, "--board", "esp32dev-typo", "--image", f"0x10000:{tmp_path / 'c3.bin'}") == 2
    assert "unknown board esp32dev-typo" in capsys.readouterr().err
    assert _create(tmp_path, "--board", "esp32dev", "--chip", "esp32c3", "--image", f"0x10000:{tmp_path / 'c3.bin'}") == 2
    assert not (tmp_path / "fw.mcb").exists()


def test_an_already_signed_bundle_with_a_bad_image_is_refused_before_flashing():
    """A bundle signed by an older tool (no image check at creation) is still checked against the unit."""
    class B:
        firmware = {"chip": "esp32", "images": [{"offset": 0x10000, "file": "firmware/app.bin"}]}
        payloads = {"firmware/app.bin": _random()}
    problems = bundles._firmware_problems(B(), "esp32dev")
    assert problems and "not an ESP firmware image" in problems[0]
    B.firmware = {"chip": "esp32c3", "images": B.firmware["images"]}
    assert "the unit's board esp32dev is an esp32" in bundles._firmware_problems(B(), "esp32dev")[0]
