"""flasher.formats.image: our image-format tables are esptool's (the host side's truth)."""

from esptool.bin_image import ESPLoader
from esptool.cmds import FLASH_MODES
from esptool.targets import ESP32C3ROM, ESP32C6ROM, ESP32ROM, ESP32S3ROM, ESP8266ROM

from flasher.formats import image


def test_magic_and_seed_match_esptool():
    assert image.IMAGE_MAGIC == ESPLoader.ESP_IMAGE_MAGIC
    assert image.CHECKSUM_SEED == ESPLoader.ESP_CHECKSUM_MAGIC


def test_header_tables_match_esptool():
    assert image.FLASH_MODES == dict(FLASH_MODES)
    for chip, rom in (("esp32", ESP32ROM), ("esp8266", ESP8266ROM), ("esp32c3", ESP32C3ROM),
                      ("esp32s3", ESP32S3ROM), ("esp32c6", ESP32C6ROM)):
        assert image.FLASH_SIZES[chip] == dict(rom.FLASH_SIZES)
        assert image.FLASH_FREQS[chip] == dict(rom.FLASH_FREQUENCY)
        if chip != "esp8266":
            assert image.IMAGE_CHIP_IDS[chip] == rom.IMAGE_CHIP_ID
    assert set(image.FLASH_SIZES) == set(image.FLASH_FREQS) == set(image.HEADER_LEN)


def test_xor_checksum_matches_esptool():
    data = bytes(range(256)) * 5 + b"\x01\x02\x03"
    assert image.xor_checksum(data) == ESPLoader.checksum(data)
    assert image.xor_checksum(b"") == 0xEF


def test_walk_image_finds_segments_and_checksum_of_an_esptool_image(tmp_path):
    from esptool.bin_image import LoadFirmwareImage

    from flasher.bundle.builder import esp32_image

    data = esp32_image(7, pad_to=0)
    path = tmp_path / "boot.bin"
    path.write_bytes(data)
    esptool_view = LoadFirmwareImage("esp32", str(path))
    walked = image.walk_image(lambda o, n: data[o:o + n], 0, "esp32", len(data))
    assert walked is not None
    assert [(s.load_addr, s.size) for s in walked.segments] == \
        [(s.addr, len(s.data)) for s in esptool_view.segments]
    assert data[walked.checksum_offset] == walked.checksum == esptool_view.checksum


def test_walk_image_refuses_what_does_not_fit():
    from flasher.bundle.builder import esp32_image

    data = esp32_image(7, pad_to=0)
    read = lambda o, n: data[o:o + n]   # noqa: E731
    assert image.walk_image(read, 0, "esp32", 40) is None               # truncated
    assert image.walk_image(lambda o, n: b"\xff" * n, 0, "esp32", 4096) is None   # blank
    assert image.walk_image(read, 0, "esp32", len(data), max_segments=0) is None

