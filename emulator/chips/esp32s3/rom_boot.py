"""The ESP32-S3 ROM's output at reset (chip_id_soc.banner with the S3's table)."""

from __future__ import annotations

from emulator.chips.chip_id_soc import POWERON, banner
from emulator.chips.esp32s3.spec import FACTS


def rom_banner(strap_value: int, rst: tuple[int, str] = POWERON) -> str:
    return banner(FACTS, strap_value, rst)
