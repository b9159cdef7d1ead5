"""Fidelity facts of issue 12 that need no esptool: ESP8266 UART date register, GPIO4/GPIO5
strapping, the boot values real ESP32s print (docs/fidelity.md §1, §4)."""

import pytest

from emulator.board.board import Pins
from emulator.chips.esp32.rom_boot import Strapping, boot_mode_name
from emulator.chips.family import FAMILIES, STRAP_PINS, pin_name
from emulator.chips.esp8266.registers import Esp8266Identity, Esp8266Registers
from emulator.flash.nor import NorFlash


def test_esp8266_uart_date_register_at_its_native_address():
    regs = Esp8266Registers(Esp8266Identity(), NorFlash(4 << 20))
    assert regs.read(0x60000078) == 0x00062000       # esptool 2.x ESP8266ROM.DATE_REG_VALUE


def latch(bench: dict) -> Strapping:
    return FAMILIES["esp32"].latch(Pins(bench=bench), None)


def test_gpio4_pulled_down_gpio5_pulled_up():
    pulls = {pin.name: pin.pull_high for pin in FAMILIES["esp32"].spec.strapping}
    assert (pulls["gpio4"], pulls["gpio5"]) == (False, True)
    assert latch({}) == Strapping()
    assert STRAP_PINS[:6] == ("io0", "gpio2", "gpio4", "gpio5", "mtdi", "mtdo")
    assert set(STRAP_PINS[6:]) == {"gpio9", "gpio8", "gpio46", "gpio45"}   # C3, S3, C6
    assert pin_name("gpio15") == "mtdo" and pin_name("gpio4") == "gpio4"


@pytest.mark.parametrize("bench,value,name", [
    ({}, 0x13, "SPI_FAST_FLASH_BOOT"),
    ({"io0": False}, 0x03, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2)"),
    ({"io0": False, "gpio4": True, "gpio5": False}, 0x06,
     "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_FEO_V2)"),
    ({"io0": False, "gpio5": False}, 0x02, "DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_FEO_V2)"),
    ({"io0": False, "mtdo": False, "gpio5": False}, 0x00,
     "DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_FEO_V2)"),
    ({"gpio4": True}, 0x17, "SPI_FAST_FLASH_BOOT"),
    ({"gpio4": True, "gpio2": True}, 0x1F, "SPI_FAST_FLASH_BOOT"),
    ({"mtdi": True}, 0x33, "SPI_FAST_FLASH_BOOT"),
    ({"io0": False, "gpio2": True, "gpio4": True}, 0x0F, "UART_BOOT(UART0)"),
    ({"io0": False, "mtdo": False}, 0x01, "DOWNLOAD_BOOT(UART0/UART1/SDIO_FEI_REO_V2)"),
    ({"gpio2": True}, 0x1B, "SPI_FAST_FLASH_BOOT"),
    ({"mtdi": True, "gpio4": True}, 0x37, "SPI_FAST_FLASH_BOOT"),
])
def test_every_boot_value_reachable_from_the_pins(bench, value, name):
    """Values printed by real boards (docs/fidelity.md §4): 0x13, 0x3, 0x6, 0x2, 0x1, 0x17,
    0x1b, 0x33, 0x37; 0x1f and 0x0f complete the set reachable from the six pins."""
    strap = latch(bench)
    assert strap.value == value
    assert boot_mode_name(value) == name
