"""One table of facts per chip: what tells it apart, and what its ROM does at power-on.

Why a table: every layer that needs a chip fact (the register model answering esptool's
chip-detect read, the board latching strapping pins and choosing the ROM's console baud,
the ROM loader's status length and buffer size) reads it from the chip's `ChipSpec`
(emulator/chips/<chip>/spec.py) rather than from an `if chip == ...`. Adding a chip means
adding a spec package and registering it in `chips.family`.

Sources: esptool 5.6 `targets/*.py` (CHIP_DETECT_MAGIC_VALUE, the register esptool reads
first), the ESP32 and ESP8266 technical reference manuals (strapping pins and pulls), and the
ROM console baud rule (115200 scaled by crystal/40: 74880 with a 26 MHz crystal) from the
ROM code's `uart_div_modify` call, see docs/boot-banners.md and docs/esp8266.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.loader.rom_spec import RomSpec

CHIP_DETECT_MAGIC_REG = 0x40001000   # esptool reads this first to tell chips apart
# CHIP_DETECT_MAGIC_REG values, by esptool's chip name (esptool targets/*.py). Chips we do
# not emulate are listed so a scenario can make a board claim to be one (wrong-chip tests).
DETECT_MAGIC = {
    "esp8266": 0xFFF0C101,
    "esp32": 0x00F01D83,
    "esp32s2": 0x000007C6,
    "esp32c3": 0x6921506F,
    "esp32s3": 0x00000009,
    "esp32c6": 0x2CE0806F,
}
ROM_BAUD_AT_40MHZ = 115200           # the ROM's console baud with a 40 MHz crystal


def rom_console_baud(crystal_mhz: int) -> int:
    """The ROM programs its UART divider for 115200 assuming a 40 MHz crystal, so the
    real rate scales with the crystal (26 MHz: 74880)."""
    return ROM_BAUD_AT_40MHZ * crystal_mhz // 40


@dataclass(frozen=True)
class StrapPin:
    """A pin the chip latches at reset, by the name the board and `emu-rom ctl pin` use."""

    name: str
    pull_high: bool                # the internal pull when nothing drives the pin
    role: str = ""                 # what the level selects (TRM's strapping table)


@dataclass(frozen=True)
class ChipSpec:
    """The facts of one chip (see the module docstring)."""

    name: str                      # esptool's --chip name
    title: str                     # how people name it
    rom: RomSpec
    strapping: tuple[StrapPin, ...]
    boot_pin: str = "io0"          # low at reset: the ROM waits for download
    chip_id: int | None = None     # GET_SECURITY_INFO chip id (ESP32-C3 and later)

    @property
    def detect_magic(self) -> int:
        """What esptool reads at CHIP_DETECT_MAGIC_REG from this chip."""
        return DETECT_MAGIC[self.name]
