"""The ESP32-S3's firmware task: its ROM banner, then the loader (chip_id_soc.SocFirmware)."""

from __future__ import annotations

from emulator.chips.chip_id_soc_firmware import SocFirmware
from emulator.chips.esp32s3.spec import FACTS, SPEC


class Esp32s3Firmware(SocFirmware):
    facts = FACTS
    rom_spec = SPEC.rom
