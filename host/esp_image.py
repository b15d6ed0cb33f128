"""Check firmware images the way ``esptool image-info`` reads them, before anything is flashed.

Every image in a firmware bundle is one of

- an **ESP image** (bootloader or app): magic byte ``0xE9``, the chip id in its extended header must be
  the bundle's chip, its segments must parse, and its checksum and (when appended) SHA-256 must match;
- the **partition table** at ``0x8000``: starts with the entry magic ``0xAA 0x50``;
- an erased **otadata** image (all ``0xFF``, as ESP-IDF's ``ota_data_initial.bin``).

A firmware bundle must hold at least one app image (an ESP image at ``0x10000`` or above).
The parsing is esptool's own (:func:`esptool.bin_image.LoadFirmwareImage`); the chip ids come from
esptool's target classes (``IMAGE_CHIP_ID``).

>>> check_image(b"\\x00" * 64, "esp32", 0x10000)
Traceback (most recent call last):
...
motocoach.errors.BundleError: image at 0x10000 is not an ESP firmware image: its first byte is 0x00, an ESP image starts with 0xe9 (esptool image-info would reject it)
"""

from __future__ import annotations

from dataclasses import dataclass

from motocoach.errors import BundleError

ESP_IMAGE_MAGIC = 0xE9
PARTITION_TABLE_OFFSET = 0x8000
PARTITION_MAGIC = b"\xaa\x50"
APP_MIN_OFFSET = 0x10000
_CHIP_ID_AT = 12  # 8-byte common header, then the extended header: wp_pin, 3 drive bytes, chip id


@dataclass(frozen=True)
class ImageInfo:
    """What an image is: ``kind`` is ``bootloader``, ``app``, ``partition-table`` or ``otadata``."""

    offset: int
    kind: str
    chip: str | None = None
    entry: int | None = None
    segments: int = 0


def _roms() -> dict[str, type]:
    from esptool.targets import CHIP_DEFS

    return dict(CHIP_DEFS)


def chip_names() -> list[str]:
    """Chips esptool knows (``esp32``, ``esp32c3``, ``esp32s3``, ...)."""
    return sorted(_roms())


def _chip_of_id(chip_id: int) -> str:
    return next((name for name, rom in _roms().items() if getattr(rom, "IMAGE_CHIP_ID", None) == chip_id),
                f"unknown chip id {chip_id}")


def check_image(data: bytes, chip: str, offset: int) -> ImageInfo:
    """Raise :class:`BundleError` unless ``data`` is a valid image for ``chip`` at ``offset``."""
    roms = _roms()
    if chip not in roms:
        raise BundleError(f"chip {chip!r} is not one esptool knows; use one of {', '.join(chip_names())}")
    where = f"image at {offset:#x}"
    if not data:
        raise BundleError(f"{where} is empty")
    if offset == PARTITION_TABLE_OFFSET:
        if data[:2] != PARTITION_MAGIC:
            raise BundleError(f"{where} should be the partition table, but it does not start with 0xAA50")
        return ImageInfo(offset, "partition-table")
    if data[0] != ESP_IMAGE_MAGIC and set(data) == {0xFF} and offset < APP_MIN_OFFSET:
        return ImageInfo(offset, "otadata")
    if data[0] != ESP_IMAGE_MAGIC:
        raise BundleError(f"{where} is not an ESP firmware image: its first byte is {data[0]:#04x}, an ESP image "
                          f"starts with {ESP_IMAGE_MAGIC:#04x} (esptool image-info would reject it)")
    if len(data) < 24:
        raise BundleError(f"{where} is too short for an ESP image header ({len(data)} bytes)")
    want = roms[chip].IMAGE_CHIP_ID
    if data[_CHIP_ID_AT] != want:
        raise BundleError(f"{where} is built for {_chip_of_id(data[_CHIP_ID_AT])}, the bundle's boards are {chip} "
                          f"(chip id {want}); build the firmware for this board")
    from esptool.bin_image import LoadFirmwareImage

    try:
        image = LoadFirmwareImage(chip, data)
        checksum_ok = image.checksum == image.calculate_checksum()
    except Exception as e:  # esptool raises FatalError, RuntimeError or struct errors for a damaged image
        raise BundleError(f"{where} is a damaged ESP image ({e})") from None
    if not checksum_ok:
        raise BundleError(f"{where} fails its image checksum (damaged or truncated)")
    if image.append_digest and image.stored_digest != image.calc_digest:
        raise BundleError(f"{where} fails its appended SHA-256 (damaged or truncated)")
    kind = "app" if offset >= APP_MIN_OFFSET else "bootloader"
    return ImageInfo(offset, kind, chip, image.entrypoint, len(image.segments))


def check_images(images: list[tuple[int, bytes]], chip: str) -> list[ImageInfo]:
    """Check every image of a firmware bundle; it must include an app image."""
    infos = [check_image(data, chip, offset) for offset, data in sorted(images)]
    if not any(i.kind == "app" for i in infos):
        raise BundleError(f"no app image at {APP_MIN_OFFSET:#x} or above; add --image 0x10000:firmware.bin")
    return infos


def make_test_image(chip: str, *, size: int = 512, entry: int | None = None) -> bytes:
    """A small but valid ESP app image for ``chip`` (one flash-mapped data segment), for tests and demos."""
    from esptool.bin_image import ESP32FirmwareImage, ImageSegment

    rom = _roms()[chip]
    img = ESP32FirmwareImage()
    img.ROM_LOADER = rom
    img.segments = [ImageSegment(rom.DROM_MAP_START + 0x20, bytes((i * 7) & 0xFF for i in range(size)))]
    img.entrypoint = entry if entry is not None else rom.IROM_MAP_START + 0x100
    out = img.save(None)
    if out is None:
        raise RuntimeError("esptool returned no image bytes")
    return out
