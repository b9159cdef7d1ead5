"""flasher.bundle.image_header: boot image flash-parameter patch, checked against esptool itself."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from esptool.bin_image import LoadFirmwareImage
from esptool.cmds import _update_image_flash_params
from esptool.targets import ESP32ROM

from flasher.bundle.image_header import (FlashParams, boot_offset, describe_header, flash_freqs,
                                  flash_sizes, patch_image_header, size_name)
from flasher.bundle.builder import esp32_image


def assert_valid_esp32(data: bytes) -> None:
    image = LoadFirmwareImage("esp32", data)
    assert image.checksum == image.calculate_checksum()
    if image.append_digest:
        assert image.stored_digest == image.calc_digest


def test_tables_come_from_esptool():
    assert flash_sizes("esp32")["4MB"] == 0x20 and flash_sizes("esp32")["128MB"] == 0x70
    assert flash_freqs("esp32") == {"80m": 0xF, "40m": 0x0, "26m": 0x1, "20m": 0x2}
    assert flash_sizes("esp8266")["4MB"] == 0x40
    assert boot_offset("esp32") == 0x1000 and boot_offset("esp8266") == 0
    assert size_name(4 * 1024 * 1024) == "4MB" and size_name(512 * 1024) == "512KB"
    with pytest.raises(ValueError):
        size_name(1000)


@pytest.mark.parametrize("digest", [True, False])
def test_patch_rewrites_bytes_2_3_and_keeps_image_valid(digest):
    image = esp32_image(7, digest=digest, flash_mode=2, size_freq=0x20)
    result = patch_image_header(image, FlashParams("qio", "80m", "16MB"))
    assert result.changed
    assert result.data[2] == 0 and result.data[3] == 0x40 | 0xF
    assert result.old_params == bytes([2, 0x20]) and result.new_params == bytes([0, 0x4F])
    assert result.digest_updated is digest
    assert len(result.data) == len(image)
    assert result.data[4:-32] == image[4:-32]          # only header (and digest) change
    assert_valid_esp32(result.data)
    if digest:
        assert result.data[-32:] == hashlib.sha256(result.data[:-32]).digest()
        assert result.data[-32:] != image[-32:]


MODES = ["keep", "qio", "qout", "dio", "dout"]
FREQS = ["keep", "40m", "26m", "20m", "80m"]
SIZES = ["keep", "1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB"]


@pytest.mark.parametrize("digest", [True, False])
def test_identical_to_esptool_for_every_combination(digest, capsys):
    image = esp32_image(11, digest=digest, flash_mode=3, size_freq=0x12) + b"\xAB" * 100
    for mode, freq, size in itertools.product(MODES, FREQS, SIZES):
        ours = patch_image_header(image, FlashParams(mode, freq, size)).data
        theirs = _update_image_flash_params(ESP32ROM, 0x1000, freq, mode, size, image)
        assert ours == theirs, (mode, freq, size)
    capsys.readouterr()   # esptool prints its own notes


def test_keep_means_untouched():
    image = esp32_image(1)
    result = patch_image_header(image, FlashParams())
    assert not result.changed and result.data is image
    assert "keep" in result.reason


def test_same_values_report_no_change():
    image = esp32_image(1, flash_mode=2, size_freq=0x20)
    result = patch_image_header(image, FlashParams("dio", "40m", "4MB"))
    assert not result.changed and result.data == image
    assert result.reason == "header already has these flash parameters"


@pytest.mark.parametrize("data, why", [
    (b"\x00" * 64, "does not start with the image magic"),
    (b"\xE9\x01", "too short"),
    (b"\xE9\x05\x02\x20" + b"\x00" * 60, "not a valid esp32 image"),
])
def test_non_images_are_left_unchanged(data, why):
    result = patch_image_header(data, FlashParams("qio", "80m", "4MB"))
    assert not result.changed and result.data == data
    assert why in result.reason


def test_bad_option_names():
    with pytest.raises(ValueError, match="flash mode 'fast'"):
        patch_image_header(esp32_image(1), FlashParams(mode="fast"))
    with pytest.raises(ValueError, match="flash size '3MB'"):
        FlashParams(size="3MB").validate()
    with pytest.raises(ValueError, match="flash frequency '90m'"):
        FlashParams(freq="90m").validate()
    with pytest.raises(ValueError, match="unsupported chip"):
        FlashParams(size="4MB").validate("z80")


def test_describe_header():
    info = describe_header(esp32_image(1, flash_mode=0, size_freq=0x3F))
    assert info is not None
    assert (info["mode"], info["size"], info["freq"]) == ("qio", "8MB", "80m")
    assert info["hash_appended"] is True and info["segments"] == 3
    assert describe_header(b"\x00\x00\x00\x00") is None
