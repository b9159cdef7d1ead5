"""The ESP32-C6 as esptool sees it through READ_REG/WRITE_REG (the shared SocRegisters
model filled with the C6's table, spec.py)."""

from __future__ import annotations

from typing import ClassVar

from emulator.chips.chip_id_soc import SocFacts, SocIdentity, SocRegisters
from emulator.chips.esp32c6.spec import FACTS


class Esp32c6Identity(SocIdentity):
    facts: ClassVar[SocFacts] = FACTS
    family: ClassVar[str] = "esp32c6"


Esp32c6Registers = SocRegisters
