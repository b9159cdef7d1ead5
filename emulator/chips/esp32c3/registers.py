"""The ESP32-C3 as esptool sees it through READ_REG/WRITE_REG (the shared SocRegisters
model filled with the C3's table, spec.py)."""

from __future__ import annotations

from typing import ClassVar

from emulator.chips.chip_id_soc import SocFacts, SocIdentity, SocRegisters
from emulator.chips.esp32c3.spec import FACTS


class Esp32c3Identity(SocIdentity):
    facts: ClassVar[SocFacts] = FACTS
    family: ClassVar[str] = "esp32c3"


Esp32c3Registers = SocRegisters
