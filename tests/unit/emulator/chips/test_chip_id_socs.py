"""The ESP32-C3, ESP32-S3 and ESP32-C6 models (chips/chip_id_soc.py and the chip packages):
ROM banners held against golden transcriptions of real boards' logs (sources in
docs/chips.md), eFuse words decoded the way esptool 5.6 decodes them, GET_SECURITY_INFO's
layout, and the strapping latch."""

from __future__ import annotations

import struct

import pytest

from emulator.chips.chip_id_soc import POWERON, SocStrap, banner
from emulator.chips.esp32c3.registers import Esp32c3Identity
from emulator.chips.esp32c6.registers import Esp32c6Identity
from emulator.chips.esp32s3.registers import Esp32s3Identity
from emulator.chips.family import FAMILIES
from emulator.chips.rom_text import wire
from tests.support.golden import GOLDEN

IDENTITIES = {"esp32c3": Esp32c3Identity, "esp32s3": Esp32s3Identity,
              "esp32c6": Esp32c6Identity}


@pytest.mark.parametrize("chip, golden, strap, rst", [
    ("esp32c3", "esp32c3_usb_reset_download.txt", 0x5, (0x15, "USB_UART_CHIP_RESET")),
    ("esp32c3", "esp32c3_poweron_spi_boot_head.txt", 0xD, POWERON),
    ("esp32s3", "esp32s3_poweron_download.txt", 0x0, POWERON),
    ("esp32c6", "esp32c6_usb_reset_download.txt", 0x4, (0x15, "USB_UART_HPSYS")),
])
def test_banner_matches_real_log(chip, golden, strap, rst):
    facts = IDENTITIES[chip].facts
    assert wire(banner(facts, strap, rst)) == (GOLDEN / golden).read_bytes()


@pytest.mark.parametrize("chip, download, flash", [
    ("esp32c3", 0x5, 0xD), ("esp32s3", 0x0, 0x8), ("esp32c6", 0x4, 0xC)])
def test_latch_gives_the_logged_boot_values(chip, download, flash):
    """The boot pin low (the rest at their pulls) is download mode, high is SPI boot, with
    the boot:0x.. values real boards print."""
    family = FAMILIES[chip]
    boot_pin = family.spec.boot_pin

    class Pins:
        def __init__(self, levels):
            self.levels = levels

        def level(self, name):
            return self.levels.get(name)

    low = family.latch(Pins({boot_pin: False}), None)
    high = family.default_latch()
    assert isinstance(low, SocStrap) and low.download and not high.download
    assert (low.value, high.value) == (download, flash)
    assert family.is_download_mode(low.value) and not family.is_download_mode(high.value)


def _field(words, word, shift, width):
    return (words[word] >> shift) & ((1 << width) - 1)


def test_efuse_words_decode_as_esptool_reads_them():
    """Decoded with the bit layout of esptool 5.6's getters
    (targets/esp32c3.py get_minor_chip_version etc.), written by ours from the table."""
    c3 = Esp32c3Identity(revision=1, minor=9, package=1, flash_cap=2,
                         mac=bytes.fromhex("a0b1c2d3e4f5")).block1_words()
    assert struct.pack(">II", c3[1], c3[0])[2:] == bytes.fromhex("a0b1c2d3e4f5")
    assert _field(c3, 3, 21, 3) == 1                                   # pkg
    assert (_field(c3, 5, 23, 1) << 3) + _field(c3, 3, 18, 3) == 9     # minor
    assert _field(c3, 5, 24, 2) == 1                                   # major
    assert _field(c3, 3, 27, 3) == 2                                   # flash cap
    c6 = Esp32c6Identity(revision=1, minor=5).block1_words()
    assert (_field(c6, 3, 22, 2), _field(c6, 3, 18, 4)) == (1, 5)
    assert c6[1] >> 16 == 0xFFFE


@pytest.mark.parametrize("chip, chip_id", [("esp32c3", 5), ("esp32s3", 9), ("esp32c6", 13)])
def test_security_info_layout(chip, chip_id):
    """esptool unpacks 20 bytes as "<IBBBBBBBBII" and takes word 9 as the chip id."""
    info = IDENTITIES[chip]().security_info()
    fields = struct.unpack("<IBBBBBBBBII", info)
    assert fields[0] == 0 and fields[9] == chip_id


def test_out_of_range_identity_is_refused():
    with pytest.raises(ValueError, match="major 4"):
        Esp32c3Identity(revision=4)
    with pytest.raises(ValueError, match="40 MHz"):
        Esp32s3Identity(crystal_mhz=26)
