"""Esp8266Registers read and written by esptool's own ESP8266ROM code (read_mac, chip_id,
get_chip_description, get_crystal_freq, run_spiflash_command), so the register model cannot
drift from what the real esptool does with an ESP8266."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from esptool.targets import ESP8266ROM

from emulator.chips.esp8266.registers import ESP8266_MAGIC, Esp8266Identity, Esp8266Registers
from emulator.flash.nor import NorFlash


def esptool_on(regs: Esp8266Registers, host_baud: int = 115200) -> ESP8266ROM:
    """An ESP8266ROM whose register access goes straight to our model (no serial port)."""
    esp = ESP8266ROM.__new__(ESP8266ROM)
    esp.read_reg = lambda addr, timeout=None: regs.read(addr)             # type: ignore
    esp.write_reg = (lambda addr, value, mask=0xFFFFFFFF, delay_us=0, delay_after_us=0:  # type: ignore
                     regs.write(addr, value, mask))
    esp._port = SimpleNamespace(baudrate=host_baud)
    esp.cache = {"flash_id": None}
    return esp


def board_regs(**kw) -> Esp8266Registers:
    return Esp8266Registers(Esp8266Identity(**kw), NorFlash(4 << 20, 0xEF4016))


@pytest.mark.parametrize("mac", ["5ccf7f9a582c", "18fe34123456", "acd0748899aa", "840d8e010203"])
def test_mac_and_chip_id_through_esptool(mac):
    regs = board_regs(mac=bytes.fromhex(mac))
    esp = esptool_on(regs)
    assert bytes(esp.read_mac()) == bytes.fromhex(mac)
    assert esp.chip_id() == int(mac[6:], 16)
    assert esp.get_chip_description() == "ESP8266EX"
    assert esp.get_chip_features() == ["Wi-Fi", "160MHz"]
    assert regs.read(0x40001000) == ESP8266_MAGIC == ESP8266ROM.MAGIC_VALUE


@pytest.mark.parametrize("crystal,baud", [(26, 115200), (40, 115200), (26, 9600), (26, 460800)])
def test_crystal_from_the_uart_divider(crystal, baud):
    regs = board_regs(crystal_mhz=crystal)
    regs.uart_baud = baud                  # what the ROM's auto-baud measured
    assert esptool_on(regs, baud).get_crystal_freq() == crystal


def test_flash_id_status_and_sfdp_through_spi0():
    regs = board_regs()
    esp = esptool_on(regs)
    assert esp.flash_id() == 0x1640EF      # esptool's byte order: device, manufacturer
    regs.spi.flash.status[0] = 0x1C
    assert esp.read_status(1) == 0x1C
    assert esp.read_spiflash_sfdp(0, 32) == 0x50444653


def test_ram_upload_is_recognised_for_the_stub_jump():
    regs = board_regs()
    regs.load_ram(0x4010C500, b"\x00" * 64)
    regs.load_ram(0x4010C540, b"\x00" * 64)
    assert regs.ram_contains(0x4010C504) and regs.ram_contains(0x4010C57F)
    assert not regs.ram_contains(0x40100000)
    regs.on_reset(0x31)
    assert not regs.ram_contains(0x4010C504)
    assert regs.read(0x60000318) >> 16 & 7 == 1 and regs.read(0x60000318) >> 29 == 6
