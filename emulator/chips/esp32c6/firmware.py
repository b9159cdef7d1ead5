"""The ESP32-C6's firmware task: its ROM banner, then the loader (chip_id_soc.SocFirmware)."""

from __future__ import annotations

from emulator.chips.chip_id_soc_firmware import SocFirmware
from emulator.chips.esp32c6.spec import FACTS, SPEC


class Esp32c6Firmware(SocFirmware):
    facts = FACTS
    rom_spec = SPEC.rom
