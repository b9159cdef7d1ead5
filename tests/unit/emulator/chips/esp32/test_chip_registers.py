"""Register model decoded by esptool's own ESP32 logic (esptool used as a library)."""

import pytest
from esptool.targets.esp32 import ESP32ROM

from emulator.chips.esp32.registers import ChipIdentity, Esp32Registers
from emulator.flash.nor import NorFlash


def esptool_view(identity: ChipIdentity) -> ESP32ROM:
    """An ESP32ROM whose register reads are answered by our register model."""
    regs = Esp32Registers(identity, NorFlash(4 << 20))
    rom = object.__new__(ESP32ROM)          # no serial port: only the decoding methods
    rom.read_reg = lambda addr, *a, **k: regs.read(addr)
    return rom


@pytest.mark.parametrize("rev,minor,expected", [
    (0, 0, "ESP32-D0WDQ6 (revision v0.0)"),
    (1, 0, "ESP32-D0WDQ6 (revision v1.0)"),
    (2, 0, "ESP32-D0WDQ6 (revision v2.0)"),
    (3, 0, "ESP32-D0WD-V3 (revision v3.0)"),
    (3, 1, "ESP32-D0WD-V3 (revision v3.1)"),
])
def test_description_per_revision(rev, minor, expected):
    assert esptool_view(ChipIdentity(revision=rev, minor=minor)).get_chip_description() == expected


def test_features_and_mac():
    ident = ChipIdentity(mac=bytes.fromhex("240ac4123456"))
    rom = esptool_view(ident)
    features = rom.get_chip_features()
    assert features[:4] == ["Wi-Fi", "BT", "Dual Core + LP Core", "240MHz"]
    assert "Coding Scheme None" in features
    assert rom.read_mac() == tuple(bytes.fromhex("240ac4123456"))
    assert not rom.get_flash_encryption_enabled()
    assert not rom.get_secure_boot_enabled()


@pytest.mark.parametrize("mhz", [26, 40])
def test_crystal_estimates(mhz):
    rom = esptool_view(ChipIdentity(crystal_mhz=mhz))
    assert rom.get_rom_cal_crystal_freq() == mhz * 1_000_000
    regs = Esp32Registers(ChipIdentity(crystal_mhz=mhz), NorFlash(4 << 20))
    div = regs.read(0x3FF40014)
    assert round(div * 115200 / 1e6) == mhz


def test_spi_rdid_through_user_command():
    regs = Esp32Registers(ChipIdentity(), NorFlash(16 << 20, jedec_id=0xC84018))
    base = 0x3FF42000
    regs.write(base + 0x2C, 23)                       # MISO_DLEN = 24 bits - 1
    regs.write(base + 0x1C, (1 << 31) | (1 << 28))    # USR: command + MISO
    regs.write(base + 0x24, (7 << 28) | 0x9F)         # USR2: 8-bit opcode RDID
    regs.write(base + 0x00, 1 << 18)                  # CMD: USR
    assert regs.read(base) & (1 << 18) == 0
    assert regs.read(base + 0x80) == 0x1840C8         # bytes in order received


def test_unknown_registers_remember_writes():
    regs = Esp32Registers(ChipIdentity(), NorFlash(1 << 20))
    regs.write(0x3FF00000, 0x12345678)
    regs.write(0x3FF00000, 0xFFFF0000, mask=0x0000FF00)
    assert regs.read(0x3FF00000) == 0x1234_0078
