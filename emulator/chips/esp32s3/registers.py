"""The ESP32-S3 as esptool sees it through READ_REG/WRITE_REG (the shared SocRegisters
model filled with the S3's table, spec.py)."""

from __future__ import annotations

from typing import ClassVar

from emulator.chips.chip_id_soc import SocFacts, SocIdentity, SocRegisters
from emulator.chips.esp32s3.spec import FACTS


class Esp32s3Identity(SocIdentity):
    facts: ClassVar[SocFacts] = FACTS
    family: ClassVar[str] = "esp32s3"


Esp32s3Registers = SocRegisters
