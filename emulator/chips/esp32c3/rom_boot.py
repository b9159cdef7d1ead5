"""The ESP32-C3 ROM's output at reset (chip_id_soc.banner with the C3's table)."""

from __future__ import annotations

from emulator.chips.chip_id_soc import POWERON, banner
from emulator.chips.esp32c3.spec import FACTS


def rom_banner(strap_value: int, rst: tuple[int, str] = POWERON) -> str:
    return banner(FACTS, strap_value, rst)
