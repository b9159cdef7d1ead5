"""flasher.formats.image: our image-format tables are esptool's (the host side's truth)."""

from esptool.bin_image import ESPLoader
from esptool.cmds import FLASH_MODES
from esptool.targets import ESP32ROM, ESP8266ROM

from flasher.formats import image


def test_magic_and_seed_match_esptool():
    assert image.IMAGE_MAGIC == ESPLoader.ESP_IMAGE_MAGIC
    assert image.CHECKSUM_SEED == ESPLoader.ESP_CHECKSUM_MAGIC


def test_header_tables_match_esptool():
    assert image.FLASH_MODES == dict(FLASH_MODES)
    for chip, rom in (("esp32", ESP32ROM), ("esp8266", ESP8266ROM)):
        assert image.FLASH_SIZES[chip] == dict(rom.FLASH_SIZES)
        assert image.FLASH_FREQS[chip] == dict(rom.FLASH_FREQUENCY)


def test_xor_checksum_matches_esptool():
    data = bytes(range(256)) * 5 + b"\x01\x02\x03"
    assert image.xor_checksum(data) == ESPLoader.checksum(data)
    assert image.xor_checksum(b"") == 0xEF
