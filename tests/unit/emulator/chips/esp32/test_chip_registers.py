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


def rdid(regs: Esp32Registers, base: int) -> int:
    """esptool's run_spiflash_command(RDID) against SPI1 at `base`."""
    regs.write(base + 0x2C, 23)                       # MISO_DLEN = 24 bits - 1
    regs.write(base + 0x1C, (1 << 31) | (1 << 28))    # USR: command + MISO
    regs.write(base + 0x24, (7 << 28) | 0x9F)         # USR2: 8-bit opcode RDID
    regs.write(base + 0x80, 0)
    regs.write(base + 0x00, 1 << 18)                  # CMD: USR
    assert regs.read(base) & (1 << 18) == 0           # busy bit clears
    return regs.read(base + 0x80)


@pytest.mark.parametrize("base", [0x3FF42000, 0x60002000], ids=["native", "alias"])
def test_spi_rdid_through_user_command(base):
    regs = Esp32Registers(ChipIdentity(), NorFlash(16 << 20, jedec_id=0xC84018))
    regs.attach_flash()
    assert rdid(regs, base) == 0x1840C8               # bytes in order received


def test_flash_answers_only_after_attach():
    """Before SPI_ATTACH the flash pins are not SPI1's: RDID reads all ones (esptool#459);
    after it the user registers hold what the ROM set (esptool#921 trace)."""
    regs = Esp32Registers(ChipIdentity(), NorFlash(4 << 20, jedec_id=0x204016))
    assert rdid(regs, 0x3FF42000) == 0x00FFFFFF       # 24 bits of ones, W0 cleared before
    regs.attach_flash()
    assert regs.read(0x3FF4201C) == 0x80000040 and regs.read(0x3FF42024) == 0x70000000
    regs.on_reset(0x13)
    regs.attach_flash()
    assert rdid(regs, 0x3FF42000) == 0x164020


def test_alias_window_answers_as_the_peripherals():
    """esptool 2.x reads 0x6000_0000.. (UART date, eFuse); TRM: same as 0x3FF4_0000.."""
    regs = Esp32Registers(ChipIdentity(mac=bytes.fromhex("240ac4123456")), NorFlash(4 << 20))
    assert regs.read(0x60000078) == regs.read(0x3FF40078) == 0x15122500
    for word in range(7):
        assert regs.read(0x6001A000 + 4 * word) == regs.read(0x3FF5A000 + 4 * word)
    assert regs.read(0x60000014) == regs.read(0x3FF40014)
    regs.write(0x60010000, 0xABCD)                   # a plain register, via the alias
    assert regs.read(0x3FF50000) == 0xABCD
    assert regs.read(0x60040000) == 0                 # outside the window: not aliased


@pytest.mark.parametrize("package,rev,name,features", [
    ("D0WDQ6", 1, "ESP32-D0WDQ6 (revision v1.0)", ["Dual Core + LP Core", "240MHz"]),
    ("D0WD", 1, "ESP32-D0WD (revision v1.0)", ["Dual Core + LP Core", "240MHz"]),
    ("D0WD-V3", 3, "ESP32-D0WD-V3 (revision v3.0)", ["240MHz"]),
    ("D0WDQ6-V3", 3, "ESP32-D0WDQ6-V3 (revision v3.0)", ["240MHz"]),
    ("S0WD", 1, "ESP32-S0WD (revision v1.0)", ["Single Core + LP Core", "160MHz"]),
    ("D2WD", 1, "ESP32-D2WD (revision v1.0)", ["160MHz", "Embedded Flash"]),
    ("U4WDH", 3, "ESP32-U4WDH (revision v3.0)", ["240MHz", "Embedded Flash"]),
    ("PICO-D4", 1, "ESP32-PICO-D4 (revision v1.0)", ["Embedded Flash"]),
    ("PICO-V3", 3, "ESP32-PICO-V3 (revision v3.0)", ["240MHz", "Embedded Flash"]),
    ("PICO-V3-02", 3, "ESP32-PICO-V3-02 (revision v3.0)",
     ["240MHz", "Embedded Flash", "Embedded PSRAM"]),
    ("D0WDR2-V3", 3, "ESP32-D0WDR2-V3 (revision v3.0)", ["240MHz"]),
])
def test_packages_as_esptool_names_them(package, rev, name, features):
    rom = esptool_view(ChipIdentity(revision=rev, package=package))
    assert rom.get_chip_description() == name
    got = rom.get_chip_features()
    assert all(f in got for f in features), got
    if package == "PICO-D4":            # esptool#392: no rated clock on early PICO-D4s
        assert "240MHz" not in got and "160MHz" not in got


def test_revision_0_has_no_rated_clock_nor_vref():
    got = esptool_view(ChipIdentity(revision=0)).get_chip_features()
    assert got == ["Wi-Fi", "BT", "Dual Core + LP Core", "Coding Scheme None"]


def test_v3_only_package_refuses_older_revision():
    with pytest.raises(ValueError, match="only as revision 3"):
        ChipIdentity(revision=1, package="PICO-V3-02")
    with pytest.raises(ValueError, match="unknown ESP32 package"):
        ChipIdentity(package="XYZ")


def _rdid(regs):
    base = 0x3FF42000
    regs.write(base + 0x2C, 23)
    regs.write(base + 0x1C, (1 << 31) | (1 << 28))
    regs.write(base + 0x24, (7 << 28) | 0x9F)
    regs.write(base + 0x00, 1 << 18)
    return regs.read(base + 0x80) & 0xFFFFFF


def test_flash_is_detached_after_reset_until_spi_attach():
    """The ROM loader leaves the flash pads detached: RDID reads all ones (esptool's
    test_attach_flash: "Detected flash size: Unknown" before attach_flash)."""
    regs = Esp32Registers(ChipIdentity(), NorFlash(4 << 20, jedec_id=0x204016))
    regs.on_reset(0x13)
    assert _rdid(regs) == 0xFFFFFF
    regs.attach_flash()
    assert _rdid(regs) == 0x164020
    regs.on_reset(0x13)
    assert _rdid(regs) == 0xFFFFFF


def test_unknown_registers_remember_writes():
    regs = Esp32Registers(ChipIdentity(), NorFlash(1 << 20))
    regs.write(0x3FF00000, 0x12345678)
    regs.write(0x3FF00000, 0xFFFF0000, mask=0x0000FF00)
    assert regs.read(0x3FF00000) == 0x1234_0078
