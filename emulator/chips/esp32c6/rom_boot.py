"""The ESP32-C6 ROM's output at reset (chip_id_soc.banner with the C6's table)."""

from __future__ import annotations

from emulator.chips.chip_id_soc import POWERON, banner
from emulator.chips.esp32c6.spec import FACTS


def rom_banner(strap_value: int, rst: tuple[int, str] = POWERON) -> str:
    return banner(FACTS, strap_value, rst)
