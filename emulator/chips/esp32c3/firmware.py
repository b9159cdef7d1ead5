"""The ESP32-C3's firmware task: its ROM banner, then the loader (chip_id_soc.SocFirmware)."""

from __future__ import annotations

from emulator.chips.chip_id_soc_firmware import SocFirmware
from emulator.chips.esp32c3.spec import FACTS, SPEC


class Esp32c3Firmware(SocFirmware):
    facts = FACTS
    rom_spec = SPEC.rom
